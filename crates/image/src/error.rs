//! The image crate's error type. Every variant names what it was working on (a digest, a path,
//! a tar entry) so the message stands on its own in front of a user.

use std::path::PathBuf;

use crate::digest::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest { input: String, reason: String },

    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },

    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    #[error("blob {0} not found in the content store")]
    BlobNotFound(Digest),

    #[error("blob {what} is {size} bytes, more than the {limit}-byte limit for JSON documents")]
    TooLarge { what: String, size: u64, limit: u64 },

    #[error("{context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType { media_type: String, what: String },

    #[error("no manifest for platform {wanted} in index (available: {available})")]
    NoMatchingPlatform { wanted: String, available: String },

    /// A layer entry tried to escape the target root, or to do something the unpack policy forbids.
    #[error("unsafe layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },

    #[error("layer entry {entry:?}: {context}: {source}")]
    Unpack {
        entry: String,
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("snapshot {id}: {reason}")]
    Snapshot { id: String, reason: String },

    #[error("archive: {0}")]
    Archive(String),

    #[error("invalid ingest ref {0:?}")]
    InvalidRef(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {path}: {source}")]
    Path {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn path(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Path {
            context,
            path: path.into(),
            source,
        }
    }

    pub fn json(context: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            context: context.into(),
            source,
        }
    }

    pub fn unsafe_entry(entry: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::UnsafeEntry {
            entry: entry.into(),
            reason: reason.into(),
        }
    }
}

/// Attach context to io results: `.ctx(|| format!("open {}", p.display()))`.
pub trait Context<T> {
    fn ctx<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::io(f(), std::io::Error::from(e)))
    }
}

/// Context for a path-shaped io failure: `.at("open", &path)`.
pub trait PathContext<T> {
    fn at(self, context: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> PathContext<T> for std::result::Result<T, std::io::Error> {
    fn at(self, context: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::path(context, path, e))
    }
}
