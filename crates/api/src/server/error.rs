//! Engine errors → Docker status codes.

use berth_engine::Error;
use hyper::{Response, StatusCode};

use super::body::{self, Body};

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::InvalidParameter(_) => StatusCode::BAD_REQUEST,
        Error::NotModified(_) => StatusCode::NOT_MODIFIED,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub fn response(e: &Error) -> Response<Body> {
    let status = status_of(e);
    if status == StatusCode::NOT_MODIFIED {
        return body::empty(status);
    }
    body::error(status, e.to_string())
}
