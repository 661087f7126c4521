//! /containers/…

use bytes::Bytes;
use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::{convert, error, hijack, json_body, Ctx};
use crate::types::{CreateBody, CreateResponse, WaitError, WaitResponse};
use crate::STARTED_HEADER;
use berth_engine::containers::create::Prepare;
use berth_engine::containers::lifecycle::WaitCondition;
use berth_engine::containers::logs::LogOptions;

pub async fn create(ctx: Ctx) -> Response<Body> {
    let name = ctx.query.get("name").map(str::to_string);
    let b: CreateBody = match json_body(ctx.req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (network, publish_all) = match super::networks::create_parts(&b) {
        Ok(x) => x,
        Err(m) => return body::error(StatusCode::BAD_REQUEST, m),
    };
    let mut req = convert::create_request(name, b);
    req.platform = ctx.query.get("platform").map(str::to_string);
    req.spec.host.network = network;
    req.publish_all_ports = publish_all;
    // berth's extension: the client starts the container right away (berth `run`); with
    // `prepare=start` it attaches first and berthd may start the container for that attach.
    req.prepare = match ctx.query.get("prepare") {
        Some("start") => Prepare::StartForAttach,
        _ if ctx.query.flag("prepare", false) => Prepare::Process,
        _ => Prepare::Nothing,
    };
    match ctx.engine.create_container(req).await {
        Ok(c) => body::json(
            StatusCode::CREATED,
            &CreateResponse {
                id: c.id,
                warnings: c.warnings,
            },
        ),
        Err(e) => error::response(&e),
    }
}

pub fn list(ctx: &Ctx) -> Response<Body> {
    let all = ctx.query.flag("all", false);
    let filters = match Filters::parse(ctx.query.get("filters")) {
        Ok(f) => f,
        Err(m) => return body::error(StatusCode::BAD_REQUEST, m),
    };
    let limit = ctx.query.int("limit").filter(|n| *n > 0);
    let size = ctx.query.flag("size", false);
    // A status filter or a limit looks at stopped containers too, as Docker's does.
    let all = all || filters.0.contains_key("status") || limit.is_some();
    match ctx.engine.list_containers(all) {
        Ok(v) => {
            let mut matched: Vec<_> = v.iter().filter(|c| filters.matches(c)).collect();
            if let Some(n) = limit {
                matched.truncate(n as usize);
            }
            let out: Vec<_> = matched
                .into_iter()
                .map(|c| {
                    let mut s = convert::summary(c);
                    s.ports = super::networks::summary_ports(&ctx.engine, c);
                    if size {
                        let (rw, root) = sizes(&ctx.engine, c);
                        s.size_rw = Some(rw);
                        s.size_root_fs = Some(root);
                    }
                    s
                })
                .collect();
            body::json(StatusCode::OK, &out)
        }
        Err(e) => error::response(&e),
    }
}

/// (SizeRw, SizeRootFs): the writable layer's bytes, and those plus the image's.
pub fn sizes(e: &berth_engine::Engine, c: &berth_engine::ContainerRecord) -> (i64, i64) {
    let upper = e
        .config()
        .data_root
        .join("snapshots/active")
        .join(&c.id)
        .join("fs");
    let rw = berth_engine::volumes::du(&upper) as i64;
    (rw, rw + e.image_size(&c.image_id))
}

pub fn inspect(ctx: &Ctx, id: &str) -> Response<Body> {
    match ctx.engine.container(id) {
        Ok(rec) => {
            let mut v =
                convert::inspect(&rec, &ctx.engine.config().data_root.display().to_string());
            v["NetworkSettings"] = super::networks::settings_json(&ctx.engine, &rec);
            super::networks::host_config_json(&rec, &mut v);
            if ctx.query.flag("size", false) {
                let (rw, root) = sizes(&ctx.engine, &rec);
                v["SizeRw"] = serde_json::json!(rw);
                v["SizeRootFs"] = serde_json::json!(root);
            }
            body::json(StatusCode::OK, &v)
        }
        Err(e) => error::response(&e),
    }
}

pub async fn start(ctx: &Ctx, id: &str) -> Response<Body> {
    match ctx.engine.start_container(id).await {
        Ok(()) => body::empty(StatusCode::NO_CONTENT),
        Err(e) => error::response(&e),
    }
}

pub async fn stop(ctx: &Ctx, id: &str) -> Response<Body> {
    let t = ctx.query.int("t").or_else(|| ctx.query.int("timeout"));
    match ctx
        .engine
        .stop_container(id, t, ctx.query.get("signal").filter(|s| !s.is_empty()))
        .await
    {
        Ok(()) => body::empty(StatusCode::NO_CONTENT),
        Err(e) => error::response(&e),
    }
}

pub async fn restart(ctx: &Ctx, id: &str) -> Response<Body> {
    let t = ctx.query.int("t");
    match ctx.engine.stop_container(id, t, None).await {
        Ok(()) | Err(berth_engine::Error::NotModified(_)) => {}
        Err(e) => return error::response(&e),
    }
    match ctx.engine.start_container(id).await {
        Ok(()) => body::empty(StatusCode::NO_CONTENT),
        Err(e) => error::response(&e),
    }
}

pub async fn kill(ctx: &Ctx, id: &str) -> Response<Body> {
    match ctx
        .engine
        .kill_container(id, ctx.query.get("signal").filter(|s| !s.is_empty()))
        .await
    {
        Ok(()) => body::empty(StatusCode::NO_CONTENT),
        Err(e) => error::response(&e),
    }
}

/// Headers go out at once (the client knows the wait is registered), the status when it ends.
pub fn wait(ctx: &Ctx, id: &str) -> Response<Body> {
    let cond = match WaitCondition::parse(ctx.query.get("condition").unwrap_or("")) {
        Ok(c) => c,
        Err(e) => return error::response(&e),
    };
    let fut = match ctx.engine.wait_container(id, cond) {
        Ok(f) => f,
        Err(e) => return error::response(&e),
    };
    let (tx, b) = body::channel();
    tokio::spawn(async move {
        let code = fut.await;
        let r = WaitResponse {
            status_code: code as i64,
            error: None::<WaitError>,
        };
        let mut bytes = serde_json::to_vec(&r).unwrap_or_default();
        bytes.push(b'\n');
        let _ = tx.send(Bytes::from(bytes)).await;
    });
    let mut resp = Response::new(b);
    resp.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

pub async fn attach(ctx: &mut Ctx, id: &str) -> Response<Body> {
    if !hijack::wants_upgrade(&ctx.req) {
        return body::error(
            StatusCode::BAD_REQUEST,
            "attach needs a connection upgrade (Connection: Upgrade, Upgrade: tcp)",
        );
    }
    let q = &ctx.query;
    let (stdin, stdout, stderr) = (
        q.flag("stdin", false),
        q.flag("stdout", false),
        q.flag("stderr", false),
    );
    // berth's extension: start the container as the stream is hooked up (berth `run`: one
    // round trip less); the 101 then says so in `X-Berth-Started`.
    let start = q.flag("start", false);
    // (A container running already just gets the attach.)
    let attached = if start {
        ctx.engine.attach_and_start(id, stdin, stdout, stderr).await
    } else {
        ctx.engine.attach_container(id, stdin, stdout, stderr).await
    };
    let a = match attached {
        Ok(a) => a,
        Err(e) => return error::response(&e),
    };
    let mut resp = hijack::upgrade(hyper::upgrade::on(&mut ctx.req), a);
    if start {
        resp.headers_mut()
            .insert(STARTED_HEADER, hyper::header::HeaderValue::from_static("1"));
    }
    resp
}

pub async fn resize(ctx: &Ctx, id: &str) -> Response<Body> {
    let h = ctx.query.int("h").unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = ctx.query.int("w").unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    match ctx.engine.resize_container(id, h, w).await {
        Ok(()) => body::empty(StatusCode::OK),
        Err(e) => error::response(&e),
    }
}

/// since/until: unix seconds (possibly fractional) or RFC 3339.
fn time_param(v: Option<&str>) -> f64 {
    match v {
        None | Some("") => 0.0,
        Some(s) => s
            .parse::<f64>()
            .ok()
            .or_else(|| convert::parse_rfc3339(s))
            .unwrap_or(0.0),
    }
}

pub fn logs(ctx: &Ctx, id: &str) -> Response<Body> {
    let q = &ctx.query;
    let opts = LogOptions {
        follow: q.flag("follow", false),
        stdout: q.flag("stdout", false),
        stderr: q.flag("stderr", false),
        since: time_param(q.get("since")),
        until: time_param(q.get("until")),
        tail: q.get("tail").and_then(|t| t.parse().ok()),
    };
    if !opts.stdout && !opts.stderr {
        return body::error(
            StatusCode::BAD_REQUEST,
            "Bad parameters: you must choose at least one stream",
        );
    }
    let timestamps = q.flag("timestamps", false);
    // Docker's --details: the log's extra attributes (log-opt labels=/env=), then a space.
    let details = match q.flag("details", false) {
        true => match ctx.engine.container(id) {
            Ok(rec) => Some(log_details(&rec)),
            Err(e) => return error::response(&e),
        },
        false => None,
    };
    let (tty, mut rx) = match ctx.engine.logs(id, opts) {
        Ok(x) => x,
        Err(e) => return error::response(&e),
    };
    let (tx, b) = body::channel();
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            let mut payload = Vec::with_capacity(line.text.len() + 40);
            if timestamps {
                payload.extend_from_slice(line.time.as_bytes());
                payload.push(b' ');
            }
            if let Some(d) = &details {
                payload.extend_from_slice(d.as_bytes());
                payload.push(b' ');
            }
            payload.extend_from_slice(&line.text);
            let chunk = if tty {
                payload
            } else {
                berth_engine_frame(line.stream, &payload)
            };
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
    });
    let mut resp = Response::new(b);
    resp.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    resp
}

/// The attributes json-file records with each line: the container labels named by the
/// `labels` log option and the environment variables named by `env`, as "k=v,k2=v2" sorted by
/// key, each part query-escaped (Docker's format).
fn log_details(rec: &berth_engine::ContainerRecord) -> String {
    let mut attrs = std::collections::BTreeMap::new();
    let keys = |opt: &str| -> Vec<String> {
        rec.spec
            .host
            .log_opts
            .get(opt)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    for k in keys("labels") {
        if let Some(v) = rec.spec.labels.get(&k) {
            attrs.insert(k, v.clone());
        }
    }
    for k in keys("env") {
        let value = rec
            .spec
            .env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix(&format!("{k}=")));
        if let Some(v) = value {
            attrs.insert(k, v.to_string());
        }
    }
    attrs
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Go's url.QueryEscape.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Docker's 8-byte header + payload.
fn berth_engine_frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    let l = (payload.len() as u32).to_be_bytes();
    v.extend_from_slice(&[stream, 0, 0, 0, l[0], l[1], l[2], l[3]]);
    v.extend_from_slice(payload);
    v
}

pub async fn remove(ctx: &Ctx, id: &str) -> Response<Body> {
    match ctx
        .engine
        .remove_container_with(
            id,
            ctx.query.flag("force", false),
            ctx.query.flag("v", false),
        )
        .await
    {
        Ok(()) => body::empty(StatusCode::NO_CONTENT),
        Err(e) => error::response(&e),
    }
}

/// Docker's list filters: {"name":["x"],"status":["running"],"label":["k=v"],"id":["abc"]}.
/// Values of one key are OR'ed, keys are AND'ed.
pub struct Filters(std::collections::BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(raw: Option<&str>) -> Result<Filters, String> {
        Filters::parse_for(
            raw,
            &["name", "status", "label", "id", "ancestor", "health"],
        )
    }

    /// Docker's `filters` JSON, refusing keys not in `allowed`.
    pub fn parse_for(raw: Option<&str>, allowed: &[&str]) -> Result<Filters, String> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(Filters(Default::default()));
        };
        let v: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| format!("invalid filters: {e}"))?;
        let mut out = std::collections::BTreeMap::new();
        if let Some(m) = v.as_object() {
            for (k, vals) in m {
                // Either ["a","b"] or the older {"a":true}.
                let list: Vec<String> = match vals {
                    serde_json::Value::Array(a) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                    serde_json::Value::Object(o) => o.keys().cloned().collect(),
                    _ => Vec::new(),
                };
                if !allowed.contains(&k.as_str()) {
                    return Err(format!("invalid filter '{k}'"));
                }
                out.insert(k.clone(), list);
            }
        }
        Ok(Filters(out))
    }

    /// The values given for `key` (empty when not filtered on).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn matches(&self, c: &berth_engine::ContainerRecord) -> bool {
        self.0.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "name" => c.name.contains(v.trim_start_matches('/')),
                "status" => c.state.status.as_str() == v,
                "id" => c.id.starts_with(v.as_str()),
                "ancestor" => &c.spec.image == v || c.image_id == *v,
                "health" => crate::server::convert::health_status(c) == v,
                "label" => match v.split_once('=') {
                    Some((key, val)) => c.spec.labels.get(key).is_some_and(|x| x == val),
                    None => c.spec.labels.contains_key(v.as_str()),
                },
                _ => false,
            })
        })
    }
}

pub async fn pause(ctx: &Ctx, id: &str) -> Response<Body> {
    match ctx.engine.pause_container(id).await {
        Ok(()) => body::empty(StatusCode::NO_CONTENT),
        Err(e) => error::response(&e),
    }
}

pub async fn unpause(ctx: &Ctx, id: &str) -> Response<Body> {
    match ctx.engine.unpause_container(id).await {
        Ok(()) => body::empty(StatusCode::NO_CONTENT),
        Err(e) => error::response(&e),
    }
}

pub fn rename(ctx: &Ctx, id: &str) -> Response<Body> {
    let Some(name) = ctx.query.get("name").filter(|n| !n.is_empty()) else {
        return body::error(StatusCode::BAD_REQUEST, "name is required");
    };
    match ctx.engine.rename_container(id, name) {
        Ok(()) => body::empty(StatusCode::NO_CONTENT),
        Err(e) => error::response(&e),
    }
}

pub fn top(ctx: &Ctx, id: &str) -> Response<Body> {
    match ctx.engine.top_container(id) {
        Ok(t) => body::json(
            StatusCode::OK,
            &serde_json::json!({"Titles": t.titles, "Processes": t.processes}),
        ),
        Err(e) => error::response(&e),
    }
}

pub async fn prune(ctx: &Ctx) -> Response<Body> {
    match ctx.engine.prune_containers().await {
        Ok(ids) => body::json(
            StatusCode::OK,
            &serde_json::json!({"ContainersDeleted": ids, "SpaceReclaimed": 0}),
        ),
        Err(e) => error::response(&e),
    }
}

fn stat_header(stat: &berth_engine::containers::archive::PathStat) -> hyper::header::HeaderValue {
    use base64::Engine as _;
    let json = serde_json::to_vec(stat).unwrap_or_default();
    let b64 = base64::engine::general_purpose::STANDARD.encode(json);
    hyper::header::HeaderValue::from_str(&b64)
        .unwrap_or_else(|_| hyper::header::HeaderValue::from_static(""))
}

fn archive_path(ctx: &Ctx) -> Option<String> {
    ctx.query
        .get("path")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

fn no_path() -> Response<Body> {
    body::error(StatusCode::BAD_REQUEST, "path is required")
}

/// HEAD /containers/{id}/archive: the path's stat in a header.
pub async fn archive_head(ctx: &Ctx, id: &str) -> Response<Body> {
    let Some(path) = archive_path(ctx) else {
        return no_path();
    };
    match ctx.engine.stat_path(id, &path).await {
        Ok(stat) => {
            let mut r = body::empty(StatusCode::OK);
            r.headers_mut()
                .insert("X-Docker-Container-Path-Stat", stat_header(&stat));
            r
        }
        Err(e) => error::response(&e),
    }
}

/// GET /containers/{id}/archive: a tar of the path.
pub async fn archive_get(ctx: &Ctx, id: &str) -> Response<Body> {
    let Some(path) = archive_path(ctx) else {
        return no_path();
    };
    let stat = match ctx.engine.stat_path(id, &path).await {
        Ok(s) => s,
        Err(e) => return error::response(&e),
    };
    let (tx, b) = body::channel();
    let engine = ctx.engine.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        let w = body::ChannelWriter::new(tx);
        if let Err(e) = engine.archive_get(&id, &path, Box::new(w)).await {
            tracing::warn!("archive {path} of {id}: {e}");
        }
    });
    let mut r = Response::new(b);
    r.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static("application/x-tar"),
    );
    r.headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&stat));
    r
}

/// PUT /containers/{id}/archive?path=DIR: extract the tar body into DIR.
pub async fn archive_put(ctx: Ctx, id: &str) -> Response<Body> {
    let Some(path) = archive_path(&ctx) else {
        return no_path();
    };
    let reader = body::reader(ctx.req.into_body());
    match ctx.engine.archive_put(id, &path, Box::new(reader)).await {
        Ok(()) => body::empty(StatusCode::OK),
        Err(e) => error::response(&e),
    }
}

pub async fn update(ctx: Ctx, id: &str) -> Response<Body> {
    let engine = ctx.engine.clone();
    let b: crate::types::UpdateBody = match json_body(ctx.req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // Docker's CLI sends zeros for what it does not change.
    let nz = |v: Option<i64>| v.filter(|n| *n != 0);
    let u = berth_engine::containers::ops::Update {
        memory: nz(b.memory),
        memory_swap: nz(b.memory_swap),
        memory_reservation: nz(b.memory_reservation),
        nano_cpus: nz(b.nano_cpus),
        cpu_shares: nz(b.cpu_shares),
        cpu_quota: nz(b.cpu_quota),
        cpu_period: nz(b.cpu_period),
        cpuset_cpus: b.cpuset_cpus.filter(|c| !c.is_empty()),
        pids_limit: nz(b.pids_limit),
        restart_policy: b.restart_policy.filter(|p| !p.name.is_empty()).map(|p| {
            berth_engine::RestartPolicy {
                name: p.name,
                maximum_retry_count: p.maximum_retry_count,
            }
        }),
    };
    match engine.update_container(id, u).await {
        Ok(()) => body::json(StatusCode::OK, &serde_json::json!({"Warnings": []})),
        Err(e) => error::response(&e),
    }
}
