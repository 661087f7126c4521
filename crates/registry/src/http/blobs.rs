//! GET/HEAD (with single byte ranges) and DELETE of blobs.

use std::sync::Arc;

use berth_image::Digest;
use hyper::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE};
use hyper::{Method, StatusCode};

use super::{blocking, body, Ctx, Response, State, DIGEST_HEADER};
use crate::api_error::{ApiError, Code};

pub(super) fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|e| ApiError::new(Code::DigestInvalid, e.to_string()))
}

pub(super) fn blob_unknown(d: &Digest) -> ApiError {
    ApiError::new(
        Code::BlobUnknown,
        format!("blob {d} unknown to this repository"),
    )
}

pub(super) async fn get(
    state: &Arc<State>,
    ctx: &Ctx,
    name: &str,
    digest: &str,
) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    let range = ctx.header(RANGE.as_str()).map(str::to_string);
    let head = ctx.method == Method::HEAD;
    let st = state.clone();
    let (name, dd) = (name.to_string(), d.clone());
    let (file, size) = blocking(move || {
        if !st.storage.has_blob(&name, &dd) {
            return Err(blob_unknown(&dd));
        }
        let store = st.storage.content();
        let size = store.size(&dd)?;
        let file = if head {
            None
        } else {
            Some(store.open_blob(&dd)?)
        };
        Ok((file, size))
    })
    .await?;

    let mut b = hyper::Response::builder()
        .header(DIGEST_HEADER, d.to_string())
        .header(ETAG, format!("\"{d}\""))
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(ACCEPT_RANGES, "bytes");
    let (start, len) = match range.as_deref().map(|r| parse_range(r, size)) {
        None => {
            b = b.status(StatusCode::OK);
            (0, size)
        }
        Some(Some((start, end))) => {
            b = b
                .status(StatusCode::PARTIAL_CONTENT)
                .header(CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
            (start, end - start + 1)
        }
        Some(None) => {
            return Err(
                ApiError::new(Code::BlobUnknown, "requested range not satisfiable")
                    .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .with_header("Content-Range", format!("bytes */{size}")),
            )
        }
    };
    let body = match file {
        Some(f) => body::file(f, start, len),
        None => body::empty(),
    };
    b.header(CONTENT_LENGTH, len)
        .body(body)
        .map_err(ApiError::internal)
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against a blob of `size` bytes → inclusive (start, end);
/// `None` if unsatisfiable or malformed. Multiple ranges are not supported.
pub(super) fn parse_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        return Some((size.saturating_sub(n), size - 1));
    }
    let start: u64 = a.parse().ok()?;
    let end = if b.is_empty() {
        size - 1
    } else {
        b.parse::<u64>().ok()?.min(size - 1)
    };
    (start <= end && start < size).then_some((start, end))
}

pub(super) async fn delete(
    state: &Arc<State>,
    name: &str,
    digest: &str,
) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    let st = state.clone();
    let name = name.to_string();
    let removed = blocking(move || Ok(st.storage.unlink_blob(&name, &d)?.then_some(d))).await?;
    match removed {
        Some(_) => Ok(hyper::Response::builder()
            .status(StatusCode::ACCEPTED)
            .header(CONTENT_LENGTH, 0)
            .body(body::empty())
            .map_err(ApiError::internal)?),
        None => Err(ApiError::new(
            Code::BlobUnknown,
            "blob unknown to this repository",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-1000", 100), Some((0, 99)));
        assert_eq!(parse_range("bytes=50-1000", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=0-0", 0), None);
    }
}
