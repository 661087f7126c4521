//! The distribution crate's error type. Registry failures name the registry and the object
//! (repository, manifest reference or blob digest) so a user can tell what failed where.

use std::sync::Arc;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference the Docker grammar rejects; `reason` names the offending part.
    #[error("invalid reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },

    /// The registry answered, but not with what the API promises (HTML, garbage, bad JSON).
    #[error("registry {registry}: {object}: {reason}")]
    Protocol {
        registry: String,
        object: String,
        reason: String,
    },

    /// An HTTP error status, with the registry's own error code/message when it sent one.
    #[error("registry {registry}: {object}: HTTP {status}{detail}")]
    Status {
        registry: String,
        object: String,
        status: u16,
        detail: String,
    },

    #[error("registry {registry}: {object}: not found")]
    NotFound { registry: String, object: String },

    #[error("registry {registry}: {object}: unauthorized{detail}")]
    Unauthorized {
        registry: String,
        object: String,
        detail: String,
    },

    #[error("registry {registry}: {object}: {context}: {source}")]
    Http {
        registry: String,
        object: String,
        context: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("registry {registry}: {object} is larger than the {limit}-byte limit")]
    TooLarge {
        registry: String,
        object: String,
        limit: u64,
    },

    #[error("registry {registry}: {object}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        registry: String,
        object: String,
        expected: String,
        actual: String,
    },

    #[error("credentials: {0}")]
    Credentials(String),

    #[error("{context}: {source}")]
    Image {
        context: String,
        #[source]
        source: berth_image::Error,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// An error shared between pulls waiting on the same work.
    #[error("{0}")]
    Shared(Arc<Error>),

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn image(context: impl Into<String>, source: berth_image::Error) -> Self {
        Error::Image {
            context: context.into(),
            source,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Worth another attempt: connection trouble, truncated bodies, 5xx and 429.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Http { source, .. } => {
                source.is_connect()
                    || source.is_timeout()
                    || source.is_body()
                    || source.is_request()
                    || source.is_decode()
            }
            Error::Status { status, .. } => *status >= 500 || *status == 429,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::TimedOut
            ),
            Error::Shared(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// Attach context to berth-image results.
pub trait ImageContext<T> {
    fn img<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> ImageContext<T> for std::result::Result<T, berth_image::Error> {
    fn img<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::image(f(), e))
    }
}
