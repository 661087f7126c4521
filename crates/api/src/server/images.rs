//! /images/…

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Response, StatusCode};
use serde_json::json;

use super::body::{self, Body};
use super::{error, Ctx};
use crate::types::{ImageSummary, StreamLine};

pub async fn load(ctx: Ctx) -> Response<Body> {
    let reader = body::reader(ctx.req.into_body());
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
                    id: i.id,
                    parent_id: String::new(),
                    repo_tags: i.repo_tags,
                    repo_digests: Vec::new(),
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
            "RepoDigests": [],
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

/// GET /images/get?names=a&names=b and GET /images/{name}/get.
pub fn save(ctx: &Ctx, names: Vec<String>) -> Response<Body> {
    if names.is_empty() {
        return body::error(StatusCode::BAD_REQUEST, "no image names given");
    }
    let (tx, b) = body::channel();
    let writer = body::ChannelWriter::new(tx);
    let oci = ctx.query.get("format") == Some("oci");
    match ctx.engine.save_images(&names, oci, Box::new(writer)) {
        Ok(job) => {
            tokio::spawn(async move {
                if let Ok(Err(e)) = job.await {
                    tracing::warn!("{e}");
                }
            });
            let mut r = Response::new(b);
            r.headers_mut().insert(
                "Content-Type",
                hyper::header::HeaderValue::from_static("application/x-tar"),
            );
            r
        }
        Err(e) => error::response(&e),
    }
}

/// POST /images/prune?filters={"dangling":["false"]}: false means every unused image.
pub fn prune(ctx: &Ctx) -> Response<Body> {
    let all = ctx
        .query
        .get("filters")
        .and_then(|f| serde_json::from_str::<serde_json::Value>(f).ok())
        .map(|v| {
            let d = &v["dangling"];
            d.as_array()
                .is_some_and(|a| a.iter().any(|x| x == "false" || x == "0"))
                || d.get("false").is_some()
                || d.get("0").is_some()
        })
        .unwrap_or(false);
    match ctx.engine.prune_images(all) {
        Ok((ids, freed)) => body::json(
            StatusCode::OK,
            &json!({
                "ImagesDeleted": ids.iter().map(|i| json!({"Deleted": i})).collect::<Vec<_>>(),
                "SpaceReclaimed": freed,
            }),
        ),
        Err(e) => error::response(&e),
    }
}

/// POST /images/create?fromImage=NAME&tag=TAG: pull, streaming Docker's progress messages.
pub fn create(ctx: &Ctx) -> Response<Body> {
    let Some(from) = ctx.query.get("fromImage").filter(|f| !f.is_empty()) else {
        return body::error(
            StatusCode::BAD_REQUEST,
            "importing a rootfs (fromSrc) is not supported yet; use fromImage",
        );
    };
    let image = match ctx.query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let (tx, b) = body::channel();
    let engine = ctx.engine.clone();
    tokio::spawn(async move {
        let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
        let pull = engine.pull_image(&image, ptx);
        tokio::pin!(pull);
        let line = |s: String| Bytes::from(format!("{s}\n"));
        let result = loop {
            tokio::select! {
                r = &mut pull => break r,
                Some(ev) = prx.recv() => { let _ = tx.send(line(ev.to_json())).await; }
            }
        };
        while let Ok(ev) = prx.try_recv() {
            let _ = tx.send(line(ev.to_json())).await;
        }
        let last = match result {
            Ok(name) => json!({"status": format!("Status: Downloaded newer image for {name}")}),
            Err(e) => json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()}),
        };
        let _ = tx.send(line(last.to_string())).await;
    });
    let mut r = Response::new(b);
    r.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
