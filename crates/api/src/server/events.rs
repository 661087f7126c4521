//! GET /events: Docker's event messages as a JSON stream.

use std::time::Duration;

use berth_engine::events::Event;
use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::json;

use super::body::{self, Body};
use super::convert::parse_rfc3339;
use super::Ctx;

fn when(v: Option<&str>) -> Option<f64> {
    let s = v.filter(|s| !s.is_empty())?;
    s.parse::<f64>().ok().or_else(|| parse_rfc3339(s))
}

fn message(e: &Event) -> serde_json::Value {
    let secs = (e.time_nano / 1_000_000_000) as i64;
    let mut m = json!({
        "Type": e.kind,
        "Action": e.action,
        "Actor": {"ID": e.id, "Attributes": e.attributes},
        "scope": "local",
        "time": secs,
        "timeNano": e.time_nano as i64,
    });
    if e.kind == "container" {
        // The pre-1.22 fields docker-py and older tools still read.
        m["status"] = json!(e.action);
        m["id"] = json!(e.id);
        m["from"] = json!(e.attributes.get("image").cloned().unwrap_or_default());
    }
    m
}

/// filters={"type":["container"],"event":["start"],"container":["name-or-id"]}.
fn matches(filters: &serde_json::Value, e: &Event) -> bool {
    let Some(m) = filters.as_object() else {
        return true;
    };
    m.iter().all(|(k, vals)| {
        let vals: Vec<&str> = match vals {
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
            serde_json::Value::Object(o) => o.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        vals.iter().any(|v| match k.as_str() {
            "type" => e.kind == *v,
            "event" => e.action == *v,
            "container" | "image" | "volume" => {
                e.id.starts_with(v) || e.attributes.get("name").is_some_and(|n| n == v)
            }
            "label" => true,
            _ => false,
        })
    })
}

pub fn events(ctx: &Ctx) -> Response<Body> {
    let since = when(ctx.query.get("since"));
    let until = when(ctx.query.get("until"));
    let filters: serde_json::Value = match ctx.query.get("filters").filter(|f| !f.is_empty()) {
        None => json!({}),
        Some(f) => match serde_json::from_str(f) {
            Ok(v) => v,
            Err(e) => return body::error(StatusCode::BAD_REQUEST, format!("invalid filters: {e}")),
        },
    };
    let (past, mut rx) = ctx
        .engine
        .events
        .subscribe(since.map(|s| (s * 1e9) as i128));
    let until_nano = until.map(|u| (u * 1e9) as i128);
    let (tx, b) = body::channel();
    tokio::spawn(async move {
        let mut last = i128::MIN;
        let send = |e: &Event| {
            let mut line = serde_json::to_vec(&message(e)).unwrap_or_default();
            line.push(b'\n');
            Bytes::from(line)
        };
        for e in past.iter().filter(|e| matches(&filters, e)) {
            if until_nano.is_some_and(|u| e.time_nano > u) {
                return;
            }
            last = e.time_nano;
            if tx.send(send(e)).await.is_err() {
                return;
            }
        }
        loop {
            let wait = match until_nano {
                Some(u) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos() as i128)
                        .unwrap_or(0);
                    if now >= u {
                        return;
                    }
                    Duration::from_nanos((u - now) as u64)
                }
                None => Duration::from_secs(3600),
            };
            let e = tokio::select! {
                r = rx.recv() => match r {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
                _ = tokio::time::sleep(wait) => {
                    if until_nano.is_some() { return; }
                    continue;
                }
                _ = tx.closed() => return,
            };
            if e.time_nano <= last || !matches(&filters, &e) {
                continue;
            }
            if tx.send(send(&e)).await.is_err() {
                return;
            }
        }
    });
    let mut r = Response::new(b);
    r.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
