//! Access control. Three modes:
//! - none: everything is allowed;
//! - basic: every `/v2/` request carries `Authorization: Basic` credentials from the htpasswd
//!   file, otherwise 401 with `WWW-Authenticate: Basic realm=...`;
//! - token: requests carry `Authorization: Bearer <token>`; without one (or with too little
//!   access) the answer is 401 with `WWW-Authenticate: Bearer realm=<this registry>/token,
//!   service=..., scope=...`, and `/token` hands out tokens to htpasswd users, Docker's
//!   token-auth flow as `docker login`, skopeo, podman and containerd speak it.
//!
//! Every authenticated user may do everything: the htpasswd file is the access list.

pub mod htpasswd;
pub mod token;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::header::{HeaderMap, AUTHORIZATION};

use crate::api_error::{ApiError, Code};
use crate::error::{PathContext, Result};
use crate::names::{fill_random, random_id, valid_repo_name};
use htpasswd::Htpasswd;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
pub use token::Access;

/// How long an issued token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(300);
const BASIC_REALM: &str = "berth-registry";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    None,
    Basic { htpasswd: PathBuf },
    Token { htpasswd: PathBuf, service: String },
}

enum Mode {
    None,
    Basic(Arc<Htpasswd>),
    Token {
        users: Arc<Htpasswd>,
        service: String,
        key: Vec<u8>,
    },
}

pub struct Auth {
    mode: Mode,
}

/// Something a request needs: `action` on `kind:name` (e.g. pull on repository:x/y).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub kind: &'static str,
    pub name: String,
    pub action: &'static str,
}

impl Need {
    pub fn repo(name: &str, action: &'static str) -> Need {
        Need {
            kind: "repository",
            name: name.to_string(),
            action,
        }
    }

    pub fn catalog() -> Need {
        Need {
            kind: "registry",
            name: "catalog".into(),
            action: "*",
        }
    }
}

/// Who a request is and, with tokens, what it may do.
#[derive(Debug, Clone)]
pub struct Granted {
    pub user: Option<String>,
    /// `None`: unrestricted (no auth, or basic auth).
    access: Option<Vec<Access>>,
}

impl Granted {
    pub fn allows(&self, need: &Need) -> bool {
        match &self.access {
            None => true,
            Some(list) => list
                .iter()
                .any(|a| a.allows(need.kind, &need.name, need.action)),
        }
    }
}

impl Auth {
    /// Load the htpasswd file and, for tokens, the signing key (kept in `root/token.key` so
    /// tokens survive a restart).
    pub fn new(config: &AuthConfig, root: &Path) -> Result<Auth> {
        let mode = match config {
            AuthConfig::None => Mode::None,
            AuthConfig::Basic { htpasswd } => Mode::Basic(Arc::new(Htpasswd::load(htpasswd)?)),
            AuthConfig::Token { htpasswd, service } => Mode::Token {
                users: Arc::new(Htpasswd::load(htpasswd)?),
                service: service.clone(),
                key: signing_key(&root.join("token.key"))?,
            },
        };
        Ok(Auth { mode })
    }

    pub fn is_token_mode(&self) -> bool {
        matches!(self.mode, Mode::Token { .. })
    }

    /// Authenticate a `/v2/` request needing `needs`. `base_url` (scheme://host) names the
    /// token realm in challenges.
    pub async fn check(
        &self,
        headers: &HeaderMap,
        base_url: &str,
        needs: &[Need],
    ) -> std::result::Result<Granted, ApiError> {
        match &self.mode {
            Mode::None => Ok(Granted {
                user: None,
                access: None,
            }),
            Mode::Basic(users) => match basic_credentials(headers) {
                Some((user, pass)) if verify(users, &user, &pass).await => Ok(Granted {
                    user: Some(user),
                    access: None,
                }),
                _ => Err(ApiError::new(Code::Unauthorized, "authentication required")
                    .with_header("WWW-Authenticate", format!("Basic realm=\"{BASIC_REALM}\""))),
            },
            Mode::Token { service, key, .. } => {
                let challenge = |error: Option<&str>| {
                    let mut c = format!("Bearer realm=\"{base_url}/token\",service=\"{service}\"");
                    let scopes = scopes_of(needs);
                    if !scopes.is_empty() {
                        c.push_str(&format!(",scope=\"{scopes}\""));
                    }
                    if let Some(e) = error {
                        c.push_str(&format!(",error=\"{e}\""));
                    }
                    c
                };
                let Some(token) = bearer(headers) else {
                    return Err(ApiError::new(Code::Unauthorized, "authentication required")
                        .with_header("WWW-Authenticate", challenge(None)));
                };
                let claims = match token::verify(token, key, service, now_secs()) {
                    Ok(c) => c,
                    Err(e) => {
                        return Err(ApiError::new(
                            Code::Unauthorized,
                            format!("invalid token: {e:?}"),
                        )
                        .with_header("WWW-Authenticate", challenge(Some("invalid_token"))))
                    }
                };
                let granted = Granted {
                    user: Some(claims.sub),
                    access: Some(claims.access),
                };
                if needs.iter().all(|n| granted.allows(n)) {
                    Ok(granted)
                } else {
                    Err(ApiError::new(Code::Unauthorized, "insufficient scope")
                        .with_header("WWW-Authenticate", challenge(Some("insufficient_scope"))))
                }
            }
        }
    }

    /// The `/token` endpoint. `params` are the query (GET) or form (POST) parameters; the
    /// credentials come from Basic auth or, for OAuth2 password grants, the form.
    pub async fn issue_token(
        &self,
        headers: &HeaderMap,
        params: &[(String, String)],
    ) -> std::result::Result<serde_json::Value, ApiError> {
        let Mode::Token {
            users,
            service,
            key,
        } = &self.mode
        else {
            return Err(
                ApiError::new(Code::Unsupported, "token auth is not enabled")
                    .with_status(hyper::StatusCode::NOT_FOUND),
            );
        };
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let Some(s) = param("service") {
            if &s != service {
                return Err(ApiError::new(
                    Code::Denied,
                    format!("unknown service {s:?}"),
                ));
            }
        }
        let creds = basic_credentials(headers).or_else(|| {
            match (
                param("grant_type").as_deref(),
                param("username"),
                param("password"),
            ) {
                (Some("password"), Some(u), Some(p)) => Some((u, p)),
                _ => None,
            }
        });
        let user = match creds {
            Some((user, pass)) if verify(users, &user, &pass).await => user,
            _ => {
                return Err(ApiError::new(Code::Unauthorized, "invalid credentials")
                    .with_header("WWW-Authenticate", format!("Basic realm=\"{BASIC_REALM}\"")))
            }
        };
        let mut access = Vec::new();
        for (_, scopes) in params.iter().filter(|(k, _)| k == "scope") {
            for scope in scopes.split(' ').filter(|s| !s.is_empty()) {
                if let Some(a) = grant(scope) {
                    access.push(a);
                }
            }
        }
        let now = now_secs();
        let claims = token::Claims {
            iss: token::ISSUER.into(),
            sub: user,
            aud: service.clone(),
            exp: now + TOKEN_LIFETIME.as_secs(),
            nbf: now,
            iat: now,
            jti: random_id(),
            access,
        };
        let scope = claims
            .access
            .iter()
            .map(Access::scope)
            .collect::<Vec<_>>()
            .join(" ");
        let t = token::sign(&claims, key);
        let issued = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(now));
        Ok(serde_json::json!({
            "token": t,
            "access_token": t,
            "expires_in": TOKEN_LIFETIME.as_secs(),
            "issued_at": issued.to_string(),
            "scope": scope,
        }))
    }
}

/// What a token request may get: the actions asked for, among those that exist.
fn grant(scope: &str) -> Option<Access> {
    let mut a = Access::parse_scope(scope)?;
    match a.kind.as_str() {
        "repository" if valid_repo_name(&a.name) => {
            a.actions
                .retain(|x| matches!(x.as_str(), "pull" | "push" | "delete" | "*"));
        }
        "registry" if a.name == "catalog" => a.actions.retain(|x| x == "*"),
        _ => return None,
    }
    (!a.actions.is_empty()).then_some(a)
}

/// Space-separated scopes for a challenge; actions on the same resource merged.
fn scopes_of(needs: &[Need]) -> String {
    let mut merged: Vec<Access> = Vec::new();
    for n in needs {
        match merged
            .iter_mut()
            .find(|a| a.kind == n.kind && a.name == n.name)
        {
            Some(a) if !a.actions.iter().any(|x| x == n.action) => {
                a.actions.push(n.action.to_string())
            }
            Some(_) => {}
            None => merged.push(Access {
                kind: n.kind.to_string(),
                name: n.name.clone(),
                actions: vec![n.action.to_string()],
            }),
        }
    }
    merged
        .iter()
        .map(Access::scope)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn verify(users: &Arc<Htpasswd>, user: &str, pass: &str) -> bool {
    let (users, user, pass) = (users.clone(), user.to_string(), pass.to_string());
    tokio::task::spawn_blocking(move || users.verify(&user, &pass))
        .await
        .unwrap_or(false)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn signing_key(path: &Path) -> Result<Vec<u8>> {
    if let Ok(key) = std::fs::read(path) {
        if key.len() >= 32 {
            return Ok(key);
        }
    }
    let mut key = vec![0u8; 32];
    fill_random(&mut key);
    // Created 0600 from the start, then renamed into place.
    let tmp = path.with_extension(format!("tmp-{}", random_id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&key)?;
            f.sync_all()
        })
        .at("write token key", &tmp)?;
    std::fs::rename(&tmp, path).at("install token key", path)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_only_known_actions_on_valid_names() {
        let a = grant("repository:x/y:pull,push,frobnicate").unwrap();
        assert_eq!(a.actions, vec!["pull", "push"]);
        assert!(grant("repository:../etc:pull").is_none());
        assert!(grant("repository:x:frobnicate").is_none());
        assert!(grant("registry:catalog:*").is_some());
        assert!(grant("other:thing:pull").is_none());
    }

    #[test]
    fn challenge_scopes_merge_actions() {
        let s = scopes_of(&[
            Need::repo("a", "pull"),
            Need::repo("a", "push"),
            Need::repo("b", "pull"),
        ]);
        assert_eq!(s, "repository:a:pull,push repository:b:pull");
    }
}
