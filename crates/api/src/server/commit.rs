//! Images from containers and root filesystems: `POST /commit`, `POST /images/create?fromSrc=`
//! (import), `GET /images/{name}/history`, `GET /containers/{id}/changes` (diff) and
//! `GET /containers/{id}/export`.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Response, StatusCode};
use serde_json::json;

use super::body::{self, Body};
use super::{error, Ctx};
use crate::image_types::{ContainerChange, HistoryItem};
use crate::types::IdResponse;
use berth_engine::commit::{reference, CommitOptions, ImportOptions};
use berth_engine::image_config::ConfigOverrides;

/// GET /containers/{id}/changes.
pub async fn changes(ctx: &Ctx, id: &str) -> Response<Body> {
    match ctx.engine.container_changes(id).await {
        Ok(v) => {
            let out: Vec<ContainerChange> = v
                .into_iter()
                .map(|c| ContainerChange {
                    path: c.path,
                    kind: c.kind as u8,
                })
                .collect();
            body::json(StatusCode::OK, &out)
        }
        Err(e) => error::response(&e),
    }
}

/// GET /containers/{id}/export: a tar of the container's root filesystem, streamed.
pub async fn export(ctx: &Ctx, id: &str) -> Response<Body> {
    // Unknown containers are a 404 before any byte of the stream.
    if let Err(e) = ctx.engine.container(id) {
        return error::response(&e);
    }
    let (tx, b) = body::channel();
    let engine = ctx.engine.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        let w = body::ChannelWriter::new(tx);
        if let Err(e) = engine.export_container(&id, Box::new(w)).await {
            tracing::warn!("export {id}: {e}");
        }
    });
    let mut r = Response::new(b);
    r.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static("application/x-tar"),
    );
    r
}

/// The commit body: a container config, or nothing (empty or `null`). 400 names the field.
async fn overrides(req: hyper::Request<hyper::body::Incoming>) -> Result<ConfigOverrides, String> {
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("read body: {e}"))?
        .to_bytes();
    let text = std::str::from_utf8(&bytes).unwrap_or("").trim();
    if text.is_empty() || text == "null" {
        return Ok(ConfigOverrides::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de)
        .map_err(|e| format!("invalid JSON at {}: {}", e.path(), e.inner()))
}

/// POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=.
pub async fn commit(ctx: Ctx) -> Response<Body> {
    let q = &ctx.query;
    let Some(container) = q
        .get("container")
        .filter(|c| !c.is_empty())
        .map(str::to_string)
    else {
        return body::error(
            StatusCode::BAD_REQUEST,
            "container: a container is required",
        );
    };
    let pause = match q.get("pause") {
        None | Some("") => true,
        Some("1" | "true" | "True" | "TRUE") => true,
        Some("0" | "false" | "False" | "FALSE") => false,
        Some(other) => {
            return body::error(
                StatusCode::BAD_REQUEST,
                format!("pause: invalid boolean {other:?}"),
            )
        }
    };
    let reference = match reference(q.get("repo"), q.get("tag")) {
        Ok(r) => r,
        Err(e) => return error::response(&e),
    };
    let mut opts = CommitOptions {
        reference,
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        pause,
        changes: q.all("changes"),
        overrides: ConfigOverrides::default(),
    };
    opts.overrides = match overrides(ctx.req).await {
        Ok(o) => o,
        Err(m) => return body::error(StatusCode::BAD_REQUEST, m),
    };
    match ctx.engine.commit_container(&container, opts).await {
        Ok(id) => body::json(StatusCode::CREATED, &IdResponse { id }),
        Err(e) => error::response(&e),
    }
}

/// POST /images/create?fromSrc=-&repo=&tag=&changes=&message=&platform=: the body is a root
/// filesystem tarball. Answers Docker's stream: one status line carrying the new image id.
pub async fn import(ctx: Ctx) -> Response<Body> {
    let q = &ctx.query;
    let src = q.get("fromSrc").unwrap_or("");
    if src != "-" {
        return body::error(
            StatusCode::BAD_REQUEST,
            format!(
                "fromSrc: only \"-\" (the tarball in the request body) is supported; {src:?} cannot be fetched"
            ),
        );
    }
    // Docker's import takes the name from repo (which may carry the tag) or repo + tag.
    let reference = match reference(q.get("repo"), q.get("tag")) {
        Ok(r) => r,
        Err(e) => return error::response(&e),
    };
    let opts = ImportOptions {
        reference,
        message: q.get("message").unwrap_or("").to_string(),
        changes: q.all("changes"),
        platform: q.get("platform").map(str::to_string),
    };
    let reader = body::reader(ctx.req.into_body());
    match ctx.engine.import_image(Box::new(reader), opts).await {
        Ok(id) => {
            let mut line = serde_json::to_vec(&json!({ "status": id })).unwrap_or_default();
            line.push(b'\n');
            let mut r = Response::new(http_body_util::Full::new(Bytes::from(line)).boxed());
            r.headers_mut().insert(
                "Content-Type",
                hyper::header::HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => error::response(&e),
    }
}

/// GET /images/{name}/history.
pub fn history(ctx: &Ctx, name: &str) -> Response<Body> {
    match ctx.engine.image_history(name) {
        Ok(v) => {
            let out: Vec<HistoryItem> = v
                .into_iter()
                .enumerate()
                .map(|(i, h)| HistoryItem {
                    id: h.id,
                    created: h.created,
                    created_by: h.created_by,
                    tags: (i == 0).then_some(h.tags),
                    size: h.size,
                    comment: h.comment,
                })
                .collect();
            body::json(StatusCode::OK, &out)
        }
        Err(e) => error::response(&e),
    }
}
