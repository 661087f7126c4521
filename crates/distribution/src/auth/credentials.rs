//! Credentials where docker keeps them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`), under `auths`, keyed by registry ("https://index.docker.io/v1/" for
//! Docker Hub, "host:port" otherwise), each `{"auth": base64("user:pass")}` and possibly an
//! `identitytoken` (an OAuth2 refresh token). `store`/`erase` keep every other key of the file,
//! and write it atomically with mode 0600 like docker.
//!
//! When `credHelpers` names a helper for the registry, or `credsStore` one for all, the
//! credential lives with that helper instead (`helper.rs`); `auths` then keeps an empty entry
//! for the registry, as docker writes it.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::helper::CredentialHelper;
use crate::error::{Error, Result};
use crate::reference::DEFAULT_DOMAIN;

/// Docker Hub's key in `auths`, kept from the v1 days.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credential {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token from an earlier login, used instead of the password for tokens.
    pub identity_token: Option<String>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets.
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credential {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credential {
        Credential {
            username: username.into(),
            password: password.into(),
            identity_token: None,
        }
    }

    /// Decode docker's `X-Registry-Auth` header (base64url JSON of an AuthConfig), which the
    /// engine receives from the docker CLI.
    pub fn from_registry_auth_header(header: &str) -> Result<Option<Credential>> {
        let trimmed = header.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(trimmed)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(trimmed))
            .map_err(|e| Error::Credentials(format!("X-Registry-Auth is not base64: {e}")))?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Credentials(format!("X-Registry-Auth is not JSON: {e}")))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let cred = Credential {
            username: s("username"),
            password: s("password"),
            identity_token: Some(s("identitytoken")).filter(|t| !t.is_empty()),
        };
        if cred.username.is_empty() && cred.identity_token.is_none() {
            return Ok(None);
        }
        Ok(Some(cred))
    }
}

/// The `auths` key docker uses for a reference's domain.
pub fn config_key(domain: &str) -> String {
    if domain == DEFAULT_DOMAIN || domain == "index.docker.io" || domain == "registry-1.docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        domain.to_string()
    }
}

/// The registry domain of a login server address (docker's `serveraddress`):
/// "https://index.docker.io/v1/" and "" are Docker Hub ("docker.io"); "http://127.0.0.1:5000/"
/// is "127.0.0.1:5000".
pub fn server_domain(address: &str) -> String {
    let s = address.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    match s.split('/').next().unwrap_or(s) {
        "" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DEFAULT_DOMAIN.to_string()
        }
        host => host.to_string(),
    }
}

/// "https://host:port/v1/" and "host:port" name the same registry: compare by host.
fn normalize_key(key: &str) -> &str {
    let no_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    no_scheme.split('/').next().unwrap_or(no_scheme)
}

/// A docker client configuration file.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_location() -> DockerConfig {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .unwrap_or_else(|| PathBuf::from("/root/.docker"));
        DockerConfig {
            path: dir.join("config.json"),
        }
    }

    pub fn at(path: impl Into<PathBuf>) -> DockerConfig {
        DockerConfig { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<Map<String, Value>> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(e) => return Err(Error::io(format!("read {}", self.path.display()), e)),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(Error::Credentials(format!(
                "{}: not a JSON object",
                self.path.display()
            ))),
            Err(e) => Err(Error::Credentials(format!("{}: {e}", self.path.display()))),
        }
    }

    /// The helper that keeps `key`'s credential: `credHelpers[key]`, else `credsStore`.
    fn helper_for(
        &self,
        config: &Map<String, Value>,
        key: &str,
    ) -> Result<Option<CredentialHelper>> {
        let per_registry = match config.get("credHelpers") {
            Some(Value::Object(helpers)) => helpers
                .get(key)
                .or_else(|| {
                    helpers
                        .iter()
                        .find(|(k, _)| normalize_key(k) == normalize_key(key))
                        .map(|(_, v)| v)
                })
                .and_then(Value::as_str),
            _ => None,
        };
        let name = per_registry.or_else(|| config.get("credsStore").and_then(Value::as_str));
        match name.filter(|n| !n.is_empty()) {
            Some(n) => CredentialHelper::new(n)
                .map(Some)
                .map_err(|e| Error::Credentials(format!("{}: {e}", self.path.display()))),
            None => Ok(None),
        }
    }

    /// The credential stored for `domain` (a reference's domain), if any.
    pub fn get(&self, domain: &str) -> Result<Option<Credential>> {
        let config = self.read()?;
        if let Some(helper) = self.helper_for(&config, &config_key(domain))? {
            return helper.get(&config_key(domain));
        }
        let Some(Value::Object(auths)) = config.get("auths") else {
            return Ok(None);
        };
        let want = config_key(domain);
        let entry = auths.get(&want).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| normalize_key(k) == normalize_key(&want))
                .map(|(_, v)| v)
        });
        let Some(entry) = entry else { return Ok(None) };
        let field = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("");
        let mut cred = Credential {
            username: field("username").to_string(),
            password: field("password").to_string(),
            identity_token: Some(field("identitytoken").to_string()).filter(|t| !t.is_empty()),
        };
        let auth = field("auth");
        if !auth.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| {
                    Error::Credentials(format!(
                        "{}: auths[{want:?}].auth is not base64: {e}",
                        self.path.display()
                    ))
                })?;
            let text = String::from_utf8(decoded).map_err(|_| {
                Error::Credentials(format!(
                    "{}: auths[{want:?}].auth is not UTF-8",
                    self.path.display()
                ))
            })?;
            let (user, pass) = text.split_once(':').ok_or_else(|| {
                Error::Credentials(format!(
                    "{}: auths[{want:?}].auth is not \"user:password\"",
                    self.path.display()
                ))
            })?;
            cred.username = user.to_string();
            cred.password = pass.to_string();
        }
        if cred.username.is_empty() && cred.identity_token.is_none() {
            return Ok(None);
        }
        Ok(Some(cred))
    }

    /// Save `cred` for `domain` the way `docker login` does.
    pub fn store(&self, domain: &str, cred: &Credential) -> Result<()> {
        let mut config = self.read()?;
        let helper = self.helper_for(&config, &config_key(domain))?;
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(auths) = auths else {
            return Err(Error::Credentials(format!(
                "{}: \"auths\" is not an object",
                self.path.display()
            )));
        };
        let mut entry = Map::new();
        let key = config_key(domain);
        if let Some(helper) = &helper {
            helper.store(&key, cred)?;
        } else if let Some(token) = &cred.identity_token {
            // Docker keeps only the token then, with the user name in "auth" as "user:".
            entry.insert(
                "auth".into(),
                Value::String(
                    base64::engine::general_purpose::STANDARD.encode(format!("{}:", cred.username)),
                ),
            );
            entry.insert("identitytoken".into(), Value::String(token.clone()));
        } else {
            entry.insert(
                "auth".into(),
                Value::String(
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{}", cred.username, cred.password)),
                ),
            );
        }
        auths.insert(config_key(domain), Value::Object(entry));
        self.write(&config)
    }

    /// Forget the credential for `domain` (`docker logout`). Returns whether one was stored.
    pub fn erase(&self, domain: &str) -> Result<bool> {
        let mut config = self.read()?;
        let want = config_key(domain);
        let helped = match self.helper_for(&config, &want)? {
            Some(helper) => helper.erase(&want)?,
            None => false,
        };
        let Some(Value::Object(auths)) = config.get_mut("auths") else {
            return Ok(helped);
        };
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| normalize_key(k) == normalize_key(&want))
            .cloned()
            .collect();
        for k in &keys {
            auths.remove(k);
        }
        if keys.is_empty() {
            return Ok(helped);
        }
        self.write(&config)?;
        Ok(true)
    }

    fn write(&self, config: &Map<String, Value>) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let text = serde_json::to_vec_pretty(config)
            .map_err(|e| Error::Credentials(format!("serialize config: {e}")))?;
        let tmp = self
            .path
            .with_extension(format!("json.tmp-{}", std::process::id()));
        let written = (|| -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            // Keep the owner's chosen mode if the file existed.
            if let Ok(old) = fs::metadata(&self.path) {
                fs::set_permissions(&tmp, fs::Permissions::from_mode(old.permissions().mode()))?;
            }
            fs::rename(&tmp, &self.path)
        })();
        written.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(format!("write {}", self.path.display()), e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_written_auths_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        // As docker writes it, with other keys we must keep.
        fs::write(
            &path,
            r#"{
  "auths": {
    "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldDpwYXJ0"},
    "https://quay.io": {"auth": "cTp3"},
    "localhost:5000": {"identitytoken": "refresh-me", "auth": "dG9rdXNlcjo="}
  },
  "psFormat": "table {{.ID}}"
}"#,
        )
        .unwrap();
        let cfg = DockerConfig::at(&path);
        let hub = cfg.get("docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret:part")
        );
        let quay = cfg.get("quay.io").unwrap().unwrap();
        assert_eq!((quay.username.as_str(), quay.password.as_str()), ("q", "w"));
        let local = cfg.get("localhost:5000").unwrap().unwrap();
        assert_eq!(local.identity_token.as_deref(), Some("refresh-me"));
        assert_eq!(local.username, "tokuser");
        assert!(cfg.get("example.com").unwrap().is_none());
        assert!(!format!("{hub:?}").contains("secret"));

        cfg.store("127.0.0.1:5001", &Credential::basic("u", "p"))
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["auths"]["127.0.0.1:5001"]["auth"], "dTpw");
        assert_eq!(v["psFormat"], "table {{.ID}}", "other keys kept");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(cfg.get("127.0.0.1:5001").unwrap().unwrap().password, "p");
        assert!(cfg.erase("quay.io").unwrap());
        assert!(!cfg.erase("quay.io").unwrap());
        assert!(cfg.get("quay.io").unwrap().is_none());
        assert!(cfg.get("docker.io").unwrap().is_some());
    }

    #[test]
    fn new_config_is_private_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DockerConfig::at(dir.path().join("sub/config.json"));
        assert!(cfg.get("docker.io").unwrap().is_none());
        cfg.store("docker.io", &Credential::basic("me", "pw"))
            .unwrap();
        let v: Value = serde_json::from_slice(&fs::read(cfg.path()).unwrap()).unwrap();
        assert!(v["auths"][DOCKER_HUB_KEY]["auth"].is_string());
        assert_eq!(
            fs::metadata(cfg.path()).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::write(cfg.path(), "{not json").unwrap();
        let e = cfg.get("docker.io").unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
    }

    #[test]
    fn decodes_x_registry_auth() {
        let header = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"username":"a","password":"b","serveraddress":"x"}"#);
        let c = Credential::from_registry_auth_header(&header)
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("a", "b"));
        let empty = base64::engine::general_purpose::URL_SAFE.encode("{}");
        assert!(Credential::from_registry_auth_header(&empty)
            .unwrap()
            .is_none());
        assert!(Credential::from_registry_auth_header("%%%").is_err());
    }
}
