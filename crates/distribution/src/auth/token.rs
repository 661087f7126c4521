//! Bearer tokens from a registry's token service, cached until shortly before they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The spec's default lifetime when the service gives none.
const DEFAULT_EXPIRES_IN: u64 = 60;
/// Renew this early so a token does not expire mid-request.
const EARLY_RENEWAL: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Token {
    pub value: String,
    pub expires: Instant,
    /// An OAuth2 refresh token the service handed out (kept as docker's identitytoken).
    pub refresh_token: Option<String>,
}

/// The token endpoint's answer: docker's `token`, OAuth2's `access_token`.
#[derive(Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    pub fn into_token(self) -> Option<Token> {
        let value = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        let secs = self
            .expires_in
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_EXPIRES_IN);
        Some(Token {
            value,
            expires: Instant::now() + Duration::from_secs(secs),
            refresh_token: self.refresh_token,
        })
    }
}

/// Tokens by (realm, service, scopes, identity).
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, Token>>,
}

impl TokenCache {
    pub fn key(realm: &str, service: &str, scopes: &[String], who: &str) -> String {
        format!("{realm}\n{service}\n{}\n{who}", scopes.join(" "))
    }

    pub fn get(&self, key: &str) -> Option<Token> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(key)
            .filter(|t| t.expires > Instant::now() + EARLY_RENEWAL)
            .cloned()
    }

    pub fn put(&self, key: String, token: Token) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.retain(|_, t| t.expires > Instant::now());
        tokens.insert(key, token);
    }

    pub fn len(&self) -> usize {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses_and_expiry() {
        let r: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":300}"#).unwrap();
        let t = r.into_token().unwrap();
        assert_eq!(t.value, "a");
        let cache = TokenCache::default();
        cache.put("k".into(), t);
        assert!(cache.get("k").is_some());
        // A token about to expire is not handed out.
        let r: TokenResponse = serde_json::from_str(r#"{"token":"b","expires_in":5}"#).unwrap();
        cache.put("short".into(), r.into_token().unwrap());
        assert!(cache.get("short").is_none());
        let none: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(none.into_token().is_none());
    }
}
