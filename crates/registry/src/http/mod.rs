//! The HTTP API: routing of `/v2/...` paths (repository names contain slashes, so routes are
//! recognised from the end of the path), authentication, and the spec's response conventions.

mod blobs;
pub mod body;
mod listing;
mod manifests;
pub mod query;
mod uploads;

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING,
};
use hyper::{HeaderMap, Method, Request, StatusCode};

use crate::api_error::{ApiError, Code};
use crate::auth::{Auth, Granted, Need};
use crate::names::valid_repo_name;
use crate::storage::{Storage, Uploads};
use body::Body;

pub type Response = hyper::Response<Body>;

pub const API_VERSION_HEADER: &str = "Docker-Distribution-API-Version";
pub const DIGEST_HEADER: &str = "Docker-Content-Digest";

/// Everything a request handler may use.
pub struct State {
    pub storage: Storage,
    pub uploads: Uploads,
    pub auth: Auth,
    /// "http" or "https": how clients reach us, for the token realm.
    pub scheme: &'static str,
}

/// Per-request facts handlers need beside the body.
pub struct Ctx {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
    pub granted: Granted,
}

impl Ctx {
    pub fn query(&self, key: &str) -> Option<&str> {
        query::get(&self.query, key)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Base,
    Catalog,
    Token,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
    Referrers(String, String),
}

impl Route {
    fn repo(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog | Route::Token => None,
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::UploadStart(n)
            | Route::Upload(n, _)
            | Route::Referrers(n, _) => Some(n),
        }
    }
}

fn route(path: &str) -> Option<Route> {
    if path == "/token" {
        return Some(Route::Token);
    }
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name.to_string()));
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let name = |k: usize| segs[..n - k].join("/");
    if n >= 3 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
        return Some(Route::UploadStart(name(2)));
    }
    if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        let id = segs[n - 1];
        return Some(if id.is_empty() {
            Route::UploadStart(name(3))
        } else {
            Route::Upload(name(3), id.to_string())
        });
    }
    if n < 3 {
        return None;
    }
    let last = segs[n - 1].to_string();
    match segs[n - 2] {
        "manifests" => Some(Route::Manifest(name(2), last)),
        "blobs" => Some(Route::Blob(name(2), last)),
        "referrers" => Some(Route::Referrers(name(2), last)),
        _ => None,
    }
}

/// What the request needs from the auth layer.
fn needs(route: &Route, method: &Method) -> Vec<Need> {
    let Some(repo) = route.repo() else {
        return match route {
            Route::Catalog => vec![Need::catalog()],
            _ => Vec::new(),
        };
    };
    match *method {
        Method::GET | Method::HEAD => vec![Need::repo(repo, "pull")],
        Method::DELETE => match route {
            // Cancelling one's own upload is part of pushing.
            Route::Upload(..) => vec![Need::repo(repo, "pull"), Need::repo(repo, "push")],
            _ => vec![Need::repo(repo, "delete")],
        },
        _ => vec![Need::repo(repo, "pull"), Need::repo(repo, "push")],
    }
}

/// hyper service entry point.
pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let has_body = req.headers().contains_key(TRANSFER_ENCODING)
        || req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "0");
    let mut resp = match dispatch(&state, req).await {
        Ok(r) => r,
        Err(e) => {
            let mut resp = error_response(&e, &method);
            // The body may be unread: this connection cannot carry another request.
            if has_body {
                resp.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            resp
        }
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp.headers_mut()
        .insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    Ok(resp)
}

fn error_response(e: &ApiError, method: &Method) -> Response {
    let body = e.body();
    let mut b = hyper::Response::builder()
        .status(e.status)
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_LENGTH, body.len());
    for (k, v) in &e.headers {
        b = b.header(*k, v);
    }
    let body = if method == Method::HEAD {
        body::empty()
    } else {
        body::full(body)
    };
    b.body(body)
        .unwrap_or_else(|_| hyper::Response::new(body::empty()))
}

fn base_url(headers: &HeaderMap, scheme: &str) -> String {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

async fn dispatch(state: &Arc<State>, req: Request<Incoming>) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let route = route(path).ok_or_else(|| {
        ApiError::new(Code::NameUnknown, "no such endpoint").with_status(StatusCode::NOT_FOUND)
    })?;
    let query = query::parse(parts.uri.query().unwrap_or(""));
    if route == Route::Token {
        return listing::token(state, &parts.method, &parts.headers, query, body).await;
    }
    if let Some(repo) = route.repo() {
        if !valid_repo_name(repo) {
            return Err(ApiError::new(
                Code::NameInvalid,
                format!("invalid repository name {:?}", truncate(repo)),
            ));
        }
    }
    let base = base_url(&parts.headers, state.scheme);
    let granted = state
        .auth
        .check(&parts.headers, &base, &needs(&route, &parts.method))
        .await?;
    let ctx = Ctx {
        method: parts.method.clone(),
        headers: parts.headers,
        query,
        granted,
    };
    let m = &ctx.method;
    let head = *m == Method::HEAD;
    match route {
        Route::Base if *m == Method::GET || head => Ok(json(StatusCode::OK, b"{}".to_vec(), head)),
        Route::Catalog if *m == Method::GET => listing::catalog(state, &ctx).await,
        Route::Tags(name) if *m == Method::GET => listing::tags(state, &ctx, &name).await,
        Route::Referrers(name, d) if *m == Method::GET => {
            listing::referrers(state, &ctx, &name, &d).await
        }
        Route::Manifest(name, r) => match *m {
            Method::GET | Method::HEAD => manifests::get(state, &ctx, &name, &r).await,
            Method::PUT => manifests::put(state, &ctx, &name, &r, body).await,
            Method::DELETE => manifests::delete(state, &name, &r).await,
            _ => Err(unsupported()),
        },
        Route::Blob(name, d) => match *m {
            Method::GET | Method::HEAD => blobs::get(state, &ctx, &name, &d).await,
            Method::DELETE => blobs::delete(state, &name, &d).await,
            _ => Err(unsupported()),
        },
        Route::UploadStart(name) if *m == Method::POST => {
            uploads::start(state, &ctx, &name, body).await
        }
        Route::Upload(name, id) => match *m {
            Method::GET => uploads::status(state, &name, &id).await,
            Method::PATCH => uploads::patch(state, &ctx, &name, &id, body).await,
            Method::PUT => uploads::put(state, &ctx, &name, &id, body).await,
            Method::DELETE => uploads::cancel(state, &name, &id).await,
            _ => Err(unsupported()),
        },
        _ => Err(unsupported()),
    }
}

fn unsupported() -> ApiError {
    ApiError::new(Code::Unsupported, "method not allowed here")
}

fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}

pub(crate) fn json(status: StatusCode, body: Vec<u8>, head: bool) -> Response {
    let len = body.len();
    hyper::Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_LENGTH, len)
        .body(if head {
            body::empty()
        } else {
            body::full(body)
        })
        .unwrap_or_else(|_| hyper::Response::new(body::empty()))
}

/// Run blocking storage work off the async executor.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_recognised_from_the_end() {
        let r = |p| route(p);
        assert_eq!(r("/v2/"), Some(Route::Base));
        assert_eq!(r("/v2"), Some(Route::Base));
        assert_eq!(r("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(r("/token"), Some(Route::Token));
        assert_eq!(r("/v2/a/b/tags/list"), Some(Route::Tags("a/b".into())));
        assert_eq!(
            r("/v2/a/b/manifests/latest"),
            Some(Route::Manifest("a/b".into(), "latest".into()))
        );
        assert_eq!(
            r("/v2/x/blobs/sha256:00"),
            Some(Route::Blob("x".into(), "sha256:00".into()))
        );
        assert_eq!(
            r("/v2/x/y/blobs/uploads/"),
            Some(Route::UploadStart("x/y".into()))
        );
        assert_eq!(
            r("/v2/x/y/blobs/uploads"),
            Some(Route::UploadStart("x/y".into()))
        );
        assert_eq!(
            r("/v2/x/blobs/uploads/abc"),
            Some(Route::Upload("x".into(), "abc".into()))
        );
        assert_eq!(
            r("/v2/x/referrers/sha256:1"),
            Some(Route::Referrers("x".into(), "sha256:1".into()))
        );
        assert_eq!(
            r("/v2/../../etc/manifests/x"),
            Some(Route::Manifest("../../etc".into(), "x".into()))
        );
        assert_eq!(r("/v2/x/whatever/y"), None);
        assert_eq!(r("/etc/passwd"), None);
        assert_eq!(r("/v2/manifests/x"), None);
    }
}
