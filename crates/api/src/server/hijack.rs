//! Docker's hijacked streams: answer 101 (`Upgrade: tcp`), then pump the engine's attachment
//! over the raw connection.

use berth_engine::containers::exec::Attachment;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::body::{self, Body};

pub fn upgrade(on_upgrade: hyper::upgrade::OnUpgrade, attachment: Attachment) -> Response<Body> {
    let content_type = if attachment.tty() {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => {
                let (r, w) = tokio::io::split(TokioIo::new(up));
                attachment.run(r, w).await;
            }
            Err(e) => tracing::warn!("upgrade: {e}"),
        }
    });
    let mut r = body::empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    h.insert(
        "Connection",
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    h.insert("Upgrade", hyper::header::HeaderValue::from_static("tcp"));
    r
}

/// The client asked to upgrade (every Docker client does for attach and exec start).
pub fn wants_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get("Upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}
