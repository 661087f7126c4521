//! Bearer tokens: compact JWTs (HS256) carrying Docker's `access` claim
//! (`[{"type":"repository","name":"x/y","actions":["pull","push"]}]`). The registry issues them
//! from its `/token` endpoint and verifies them itself, so one shared secret suffices.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const ISSUER: &str = "berth-registry";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    /// `repository:x/y:pull,push` → Access. The name may itself hold no colon; a host:port
    /// prefix is not part of a repository scope.
    pub fn parse_scope(scope: &str) -> Option<Access> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        Some(Access {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    pub fn scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }

    /// Whether this grant covers `action` on `kind:name`.
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.kind == kind
            && self.name == name
            && self.actions.iter().any(|a| a == action || a == "*")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<Access>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
    WrongAudience,
}

pub fn sign(claims: &Claims, key: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{body}");
    let sig = URL_SAFE_NO_PAD.encode(mac(key, signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

/// Check the signature, the time window and the audience; return the claims.
pub fn verify(token: &str, key: &[u8], audience: &str, now: u64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    let mut m = HmacSha256::new_from_slice(key).map_err(|_| TokenError::Malformed)?;
    m.update(format!("{header}.{body}").as_bytes());
    // verify_slice compares in constant time.
    m.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)?;
    if header["alg"] != "HS256" {
        return Err(TokenError::Malformed);
    }
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)?;
    // A little leeway for clocks; tokens are issued and checked by the same host anyway.
    if now + 30 < claims.nbf || now >= claims.exp {
        return Err(TokenError::Expired);
    }
    if claims.aud != audience || claims.iss != ISSUER {
        return Err(TokenError::WrongAudience);
    }
    Ok(claims)
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: u64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "alice".into(),
            aud: "svc".into(),
            exp: now + 300,
            nbf: now,
            iat: now,
            jti: "1".into(),
            access: vec![Access::parse_scope("repository:x/y:pull,push").unwrap()],
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let key = b"0123456789abcdef0123456789abcdef";
        let t = sign(&claims(1000), key);
        let c = verify(&t, key, "svc", 1001).unwrap();
        assert!(c.access[0].allows("repository", "x/y", "push"));
        assert!(!c.access[0].allows("repository", "x/y", "delete"));
        assert!(!c.access[0].allows("repository", "x/z", "pull"));
        assert_eq!(
            verify(&t, b"other key", "svc", 1001),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify(&t, key, "svc", 1300), Err(TokenError::Expired));
        assert_eq!(
            verify(&t, key, "other", 1001),
            Err(TokenError::WrongAudience)
        );
        let mut forged = claims(1000);
        forged.access[0].actions.push("delete".into());
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let parts: Vec<&str> = t.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_body, parts[2]);
        assert_eq!(
            verify(&tampered, key, "svc", 1001),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify("a.b", key, "svc", 1001), Err(TokenError::Malformed));
    }

    #[test]
    fn scopes_parse() {
        let a = Access::parse_scope("repository:a/b:pull").unwrap();
        assert_eq!((a.kind.as_str(), a.name.as_str()), ("repository", "a/b"));
        assert_eq!(a.scope(), "repository:a/b:pull");
        let c = Access::parse_scope("registry:catalog:*").unwrap();
        assert!(c.allows("registry", "catalog", "*"));
        assert!(Access::parse_scope("nonsense").is_none());
    }
}
