//! /images/…

use std::io::Read;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Response, StatusCode};
use serde_json::json;

use super::body::{self, Body};
use super::{error, Ctx};
use crate::types::{ImageSummary, StreamLine};

/// A blocking reader over body chunks arriving through a channel (for the image crate's
/// synchronous archive reader, run on a blocking thread).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

pub async fn load(ctx: Ctx) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let mut incoming = ctx.req.into_body();
    tokio::spawn(async move {
        while let Some(frame) = incoming.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(data) = f.into_data() {
                        if tx.send(data).await.is_err() {
                            return;
                        }
                    }
                }
                Err(_) => return,
            }
        }
    });
    let reader = ChannelReader {
        rx,
        cur: Bytes::new(),
    };
    let lines = match ctx.engine.load_images(Box::new(reader)).await {
        Ok(l) => l,
        Err(e) => {
            // Docker reports load failures in the stream with status 200 only after it began;
            // nothing was sent yet, so a plain error status is clearer.
            return error::response(&e);
        }
    };
    let mut out = Vec::new();
    for l in lines {
        let line = StreamLine {
            stream: Some(format!("{l}\n")),
            ..StreamLine::default()
        };
        out.extend_from_slice(&serde_json::to_vec(&line).unwrap_or_default());
        out.push(b'\n');
    }
    let mut r = Response::new(http_body_util::Full::new(Bytes::from(out)).boxed());
    r.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

pub fn list(ctx: &Ctx) -> Response<Body> {
    match ctx.engine.list_images() {
        Ok(v) => {
            let out: Vec<ImageSummary> = v
                .into_iter()
                .map(|i| ImageSummary {
                    repo_digests: ctx.engine.repo_digests(&i.id),
                    id: i.id,
                    parent_id: String::new(),
                    repo_tags: i.repo_tags,
                    created: i.created,
                    size: i.size,
                    shared_size: -1,
                    labels: i.labels,
                    containers: -1,
                })
                .collect();
            body::json(StatusCode::OK, &out)
        }
        Err(e) => error::response(&e),
    }
}

pub fn inspect(ctx: &Ctx, name: &str) -> Response<Body> {
    let d = match ctx.engine.inspect_image(name) {
        Ok(d) => d,
        Err(e) => return error::response(&e),
    };
    let c = d.config.config().clone().unwrap_or_default();
    body::json(
        StatusCode::OK,
        &json!({
            "Id": d.summary.id,
            "RepoTags": d.summary.repo_tags,
            "RepoDigests": ctx.engine.repo_digests(&d.summary.id),
            "Parent": "",
            "Comment": "",
            "Created": d.created,
            "DockerVersion": "",
            "Author": d.config.author(),
            "Config": {
                "User": c.user().clone().unwrap_or_default(),
                "Env": c.env(),
                "Cmd": c.cmd(),
                "Entrypoint": c.entrypoint(),
                "WorkingDir": c.working_dir().clone().unwrap_or_default(),
                "Labels": c.labels(),
                "StopSignal": c.stop_signal(),
                "ExposedPorts": c.exposed_ports(),
                "Volumes": c.volumes(),
            },
            "Architecture": d.config.architecture().to_string(),
            "Os": d.config.os().to_string(),
            "Size": d.summary.size,
            "GraphDriver": {"Name": "overlay2", "Data": {}},
            "RootFS": {"Type": "layers", "Layers": d.diff_ids},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
            "Descriptor": {"digest": d.manifest_digest},
        }),
    )
}

pub fn tag(ctx: &Ctx, name: &str) -> Response<Body> {
    let Some(repo) = ctx.query.get("repo").filter(|r| !r.is_empty()) else {
        return body::error(StatusCode::BAD_REQUEST, "repo is required");
    };
    let target = match ctx.query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    match ctx.engine.tag_image(name, &target) {
        Ok(()) => body::empty(StatusCode::CREATED),
        Err(e) => error::response(&e),
    }
}

pub fn remove(ctx: &Ctx, name: &str) -> Response<Body> {
    match ctx
        .engine
        .remove_image(name, ctx.query.flag("force", false))
    {
        Ok(report) => {
            let out: Vec<serde_json::Value> =
                report.into_iter().map(|(k, v)| json!({ k: v })).collect();
            body::json(StatusCode::OK, &out)
        }
        Err(e) => error::response(&e),
    }
}
