//! The registry's error type for storage, configuration and serving failures. HTTP-facing
//! errors are `api_error::ApiError`.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] berth_image::Error),

    #[error("{context}: {path}: {source}")]
    Path {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("configuration: {0}")]
    Config(String),

    #[error("TLS: {0}")]
    Tls(String),

    #[error("registry root {0} is in use (a server is running on it, or a gc); stop it first")]
    Busy(PathBuf),

    #[error("corrupt registry state at {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl Error {
    pub fn path(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Path {
            context,
            path: path.into(),
            source,
        }
    }
}

/// `.at("open", &path)` on io results.
pub trait PathContext<T> {
    fn at(self, context: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> PathContext<T> for std::result::Result<T, std::io::Error> {
    fn at(self, context: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::path(context, path, e))
    }
}
