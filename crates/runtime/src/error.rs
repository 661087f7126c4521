//! The runtime's error type. Every variant carries enough context (a path, a field, an id)
//! for the message to stand on its own in front of a user.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// config.json could not be parsed; `path` is the JSON path of the offending field.
    #[error("invalid config.json at `{path}`: {reason}")]
    InvalidConfig { path: String, reason: String },

    #[error("container {0:?} does not exist")]
    NotFound(String),

    #[error("container {0:?} already exists")]
    AlreadyExists(String),

    #[error("invalid container id {0:?}: use letters, digits, '_', '-', '.', '+' (max 1024 bytes, not starting with '.')")]
    InvalidId(String),

    #[error("container {id:?} is {status}; {action} needs it to be {wanted}")]
    BadState {
        id: String,
        status: String,
        action: &'static str,
        wanted: &'static str,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },

    #[error("cgroup {path}: {reason}")]
    Cgroup { path: PathBuf, reason: String },

    #[error("seccomp: {0}")]
    Seccomp(String),

    #[error("capabilities: {0}")]
    Capabilities(String),

    #[error("rootfs: {0}")]
    Rootfs(String),

    #[error("hook {path}: {reason}")]
    Hook { path: PathBuf, reason: String },

    #[error("console: {0}")]
    Console(String),

    /// The container's setup failed inside the child; the message comes from the child.
    #[error("container init failed: {0}")]
    ChildFailed(String),

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn sys(context: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys {
            context: context.into(),
            source,
        }
    }

    pub fn config(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Attach context to io and nix errors: `fs::read(p).ctx(|| format!("read {}", p.display()))?`.
pub trait Context<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::sys(f(), e))
    }
}
