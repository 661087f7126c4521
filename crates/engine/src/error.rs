//! Engine errors, by kind: the API maps each kind to Docker's status code.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404: "No such container: x", "No such image: x".
    #[error("{0}")]
    NotFound(String),
    /// 409: name in use, container running, image in use.
    #[error("{0}")]
    Conflict(String),
    /// 400: a request that cannot be honoured as given.
    #[error("{0}")]
    InvalidParameter(String),
    /// 401: a registry refused the credentials the request carried.
    #[error("{0}")]
    Unauthorized(String),
    /// 304: already in the wanted state (start a running container, stop a stopped one).
    #[error("{0}")]
    NotModified(String),
    /// 500: everything else, with context.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn internal(context: impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
        Error::Internal(format!("{context}: {e}"))
    }

    pub fn no_such_container(name: &str) -> Error {
        Error::NotFound(format!("No such container: {name}"))
    }

    pub fn no_such_image(name: &str) -> Error {
        Error::NotFound(format!("No such image: {name}"))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Internal(format!("state database: {e}"))
    }
}

impl From<berth_image::Error> for Error {
    fn from(e: berth_image::Error) -> Error {
        Error::Internal(format!("image store: {e}"))
    }
}

/// `.ctx("what")` on io results.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Internal(format!("{}: {e}", what())))
    }
}
