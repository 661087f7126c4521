//! Reading registry answers defensively: bounded bodies, the spec's error JSON, and a clear
//! word when what came back is HTML or garbage rather than the API.

use futures_util::StreamExt;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};

use crate::error::{Error, Result};

/// Most of an error body we read.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// Read a whole body of at most `limit` bytes; larger is `Error::TooLarge`.
pub async fn read_bounded(
    registry: &str,
    object: &str,
    resp: Response,
    limit: u64,
) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(Error::TooLarge {
            registry: registry.to_string(),
            object: object.to_string(),
            limit,
        });
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::Http {
            registry: registry.to_string(),
            object: object.to_string(),
            context: "read body".into(),
            source: e,
        })?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(Error::TooLarge {
                registry: registry.to_string(),
                object: object.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A short, printable look at a body, for error messages.
pub fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "{:?}{}",
        flat.trim(),
        if body.len() > 120 { "…" } else { "" }
    )
}

pub fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    let ct_html = content_type.is_some_and(|c| c.to_ascii_lowercase().contains("html"));
    let head = String::from_utf8_lossy(&body[..body.len().min(64)]).to_ascii_lowercase();
    let trimmed = head.trim_start();
    ct_html || trimmed.starts_with("<!doctype html") || trimmed.starts_with("<html")
}

/// Turn a failed response into an error carrying the registry's own code and message.
pub async fn status_error(registry: &str, object: &str, resp: Response) -> Error {
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_bounded(registry, object, resp, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let detail = describe_error_body(content_type.as_deref(), &body);
    match status {
        StatusCode::NOT_FOUND => Error::NotFound {
            registry: registry.to_string(),
            object: format!("{object}{detail}"),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized {
            registry: registry.to_string(),
            object: object.to_string(),
            detail: format!(" (HTTP {}){detail}", status.as_u16()),
        },
        _ => Error::Status {
            registry: registry.to_string(),
            object: object.to_string(),
            status: status.as_u16(),
            detail,
        },
    }
}

/// ": CODE: message" from `{"errors":[{"code","message"}]}`, or a word on what came instead.
fn describe_error_body(content_type: Option<&str>, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if body.is_empty() {
        return String::new();
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|i| format!("{}: {}", i.code, i.message))
            .collect();
        if !parts.is_empty() {
            return format!(": {}", parts.join("; "));
        }
    }
    if is_html(content_type, body) {
        return ": the server answered with an HTML page, not the registry API".into();
    }
    format!(": {}", preview(body))
}
