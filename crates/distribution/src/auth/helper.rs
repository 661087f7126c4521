//! Docker credential helpers: `docker-credential-<name>` on PATH, named by config.json's
//! `credHelpers` (per registry) or `credsStore` (all registries). The protocol
//! (docker/docker-credential-helpers): `get` and `erase` read the server URL on stdin; `store`
//! reads `{"ServerURL","Username","Secret"}`; `get` prints the same object, with Username
//! `<token>` when Secret is an identity token; "not found" is a failed exit whose output says
//! "credentials not found".

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::credentials::Credential;
use crate::error::{Error, Result};

/// The username a helper stores with an identity token.
const TOKEN_USER: &str = "<token>";

/// One named helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialHelper {
    name: String,
}

impl CredentialHelper {
    /// `name` as found in config.json; only a plain name is accepted (it becomes part of a
    /// program name looked up on PATH, never a path).
    pub fn new(name: &str) -> Result<CredentialHelper> {
        let plain = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !plain {
            return Err(Error::Credentials(format!(
                "credential helper name {name:?} is not a plain name"
            )));
        }
        Ok(CredentialHelper {
            name: name.to_string(),
        })
    }

    pub fn program(&self) -> String {
        format!("docker-credential-{}", self.name)
    }

    /// The credential for `server` (a config.json key), None when the helper has none.
    pub fn get(&self, server: &str) -> Result<Option<Credential>> {
        let out = self.run("get", server.as_bytes())?;
        if !out.status.success() {
            let said = said(&out);
            if said.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            return Err(self.failed("get", &said));
        }
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            Error::Credentials(format!("{} get: answer is not JSON: {e}", self.program()))
        })?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (user, secret) = (field("Username"), field("Secret"));
        if user.is_empty() && secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if user == TOKEN_USER {
            Credential {
                username: String::new(),
                password: String::new(),
                identity_token: Some(secret),
            }
        } else {
            Credential::basic(user, secret)
        }))
    }

    pub fn store(&self, server: &str, cred: &Credential) -> Result<()> {
        let (user, secret) = match &cred.identity_token {
            Some(t) => (TOKEN_USER, t.as_str()),
            None => (cred.username.as_str(), cred.password.as_str()),
        };
        let body = json!({"ServerURL": server, "Username": user, "Secret": secret}).to_string();
        let out = self.run("store", body.as_bytes())?;
        if !out.status.success() {
            return Err(self.failed("store", &said(&out)));
        }
        Ok(())
    }

    /// Returns whether the helper had a credential to erase.
    pub fn erase(&self, server: &str) -> Result<bool> {
        let out = self.run("erase", server.as_bytes())?;
        if out.status.success() {
            return Ok(true);
        }
        let said = said(&out);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(false);
        }
        Err(self.failed("erase", &said))
    }

    fn run(&self, action: &str, input: &[u8]) -> Result<std::process::Output> {
        let mut child = Command::new(self.program())
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::Credentials(format!(
                    "run {} {action} (is it installed and on PATH?): {e}",
                    self.program()
                ))
            })?;
        // A helper that exits without reading its input is answered by its exit status.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input);
        }
        child
            .wait_with_output()
            .map_err(|e| Error::io(format!("wait for {} {action}", self.program()), e))
    }

    fn failed(&self, action: &str, said: &str) -> Error {
        Error::Credentials(format!("{} {action} failed: {said}", self.program()))
    }
}

/// What a helper printed (stdout first: that is where the helpers put their errors).
fn said(out: &std::process::Output) -> String {
    let text = [&out.stdout[..], &out.stderr[..]]
        .iter()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let mut text: String = text.chars().take(512).collect();
    if text.is_empty() {
        text = format!("exit status {}", out.status);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_names_cannot_be_paths() {
        for bad in ["", "../../bin/sh", "a/b", ".hidden", "x y", "pass\0"] {
            assert!(CredentialHelper::new(bad).is_err(), "{bad:?}");
        }
        let h = CredentialHelper::new("pass").unwrap();
        assert_eq!(h.program(), "docker-credential-pass");
    }
}
