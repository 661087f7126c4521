//! An htpasswd file of bcrypt hashes (`user:$2y$...`, as `htpasswd -B` writes). Verified
//! passwords are remembered (as a sha256, never in clear) so a push of many blobs does not pay
//! bcrypt's deliberate slowness on every request.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, PathContext, Result};

pub struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashSet<(String, [u8; 32])>>,
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd> {
        let text = std::fs::read_to_string(path).at("read htpasswd file", path)?;
        Htpasswd::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> std::result::Result<Htpasswd, String> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected user:hash", i + 1))?;
            if !hash.starts_with("$2") {
                return Err(format!(
                    "line {}: user {user:?} has a non-bcrypt hash (use htpasswd -B)",
                    i + 1
                ));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Whether `password` is `user`'s. Slow (bcrypt) the first time for a pair: call it off the
    /// async executor.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let key = (user.to_string(), Sha256::digest(password.as_bytes()).into());
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.contains(&key) {
            return true;
        }
        drop(cache);
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            cache.insert(key);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_bcrypt_entries() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let file = format!("# users\nalice:{hash}\n\n");
        let h = Htpasswd::parse(&file).unwrap();
        assert!(h.verify("alice", "s3cret"));
        assert!(h.verify("alice", "s3cret"), "cached path");
        assert!(!h.verify("alice", "wrong"));
        assert!(!h.verify("bob", "s3cret"));
        assert!(Htpasswd::parse("bob:{SHA}abc").is_err());
        assert!(Htpasswd::parse("garbage").is_err());
    }
}
