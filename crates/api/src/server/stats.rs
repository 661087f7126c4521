//! GET /containers/{id}/stats in Docker's JSON, from the runtime's cgroup stats.

use std::time::Duration;

use berth_engine::containers::ops::{BlkioEntry, Stats};
use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::body::{self, Body};
use super::{error, Ctx};

/// Host CPU time in nanoseconds (the "cpu" line of /proc/stat), as Docker's system_cpu_usage.
fn system_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
        .max(1) as u64;
    ticks.saturating_mul(1_000_000_000 / hz)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|k| k.parse::<u64>().ok())
                })
        })
        .unwrap_or(0)
        * 1024
}

fn cpu_json(s: &Stats, system: u64) -> Value {
    let online = if s.cpu.usage.per_cpu.is_empty() {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        s.cpu.usage.per_cpu.len()
    };
    json!({
        "cpu_usage": {
            "total_usage": s.cpu.usage.total,
            "percpu_usage": s.cpu.usage.per_cpu,
            "usage_in_kernelmode": s.cpu.usage.system,
            "usage_in_usermode": s.cpu.usage.user,
        },
        "system_cpu_usage": system,
        "online_cpus": online,
        "throttling_data": {
            "periods": s.cpu.throttling.periods,
            "throttled_periods": s.cpu.throttling.throttled_periods,
            "throttled_time": s.cpu.throttling.throttled_time,
        },
    })
}

fn blkio(entries: &[BlkioEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect(),
    )
}

fn doc(id: &str, name: &str, cur: &Stats, cur_sys: u64, pre: Option<(&Stats, u64, &str)>) -> Value {
    let mut raw: serde_json::Map<String, Value> = cur
        .memory
        .raw
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    raw.entry("cache").or_insert(json!(cur.memory.cache));
    raw.entry("rss").or_insert(json!(cur.memory.rss));
    let limit = cur
        .memory
        .usage
        .limit
        .filter(|l| *l < u64::MAX / 2)
        .unwrap_or_else(host_memory);
    json!({
        "read": humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        "preread": pre.map(|p| p.2.to_string()).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        "id": id,
        "name": format!("/{name}"),
        "pids_stats": {"current": cur.pids.current, "limit": cur.pids.limit},
        "blkio_stats": {
            "io_service_bytes_recursive": blkio(&cur.blkio.io_service_bytes_recursive),
            "io_serviced_recursive": blkio(&cur.blkio.io_serviced_recursive),
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(cur, cur_sys),
        "precpu_stats": pre.map(|p| cpu_json(p.0, p.1)).unwrap_or_else(|| json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}})),
        "memory_stats": {
            "usage": cur.memory.usage.usage,
            "max_usage": cur.memory.usage.max_usage,
            "failcnt": cur.memory.usage.failcnt,
            "limit": limit,
            "stats": raw,
        },
        "networks": {},
    })
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// stream=true: one document a second; otherwise one (two samples apart unless one-shot).
pub async fn stats(ctx: &Ctx, key: &str) -> Response<Body> {
    let stream = ctx.query.flag("stream", true);
    let one_shot = ctx.query.flag("one-shot", false);
    let engine = ctx.engine.clone();
    let (rec, first) = match engine.stats_container(key).await {
        Ok(x) => x,
        Err(e) => return error::response(&e),
    };
    let first_sys = system_cpu_ns();
    let first_at = now();
    if !stream {
        if one_shot {
            let mut d = doc(&rec.id, &rec.name, &first, first_sys, None);
            d["networks"] = super::networks::stats_json(&engine, &rec.id);
            return body::json(StatusCode::OK, &d);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let cur = match engine.stats_container(&rec.id).await {
            Ok((_, s)) => s,
            Err(e) => return error::response(&e),
        };
        let mut d = doc(
            &rec.id,
            &rec.name,
            &cur,
            system_cpu_ns(),
            Some((&first, first_sys, &first_at)),
        );
        d["networks"] = super::networks::stats_json(&engine, &rec.id);
        return body::json(StatusCode::OK, &d);
    }
    let (tx, b) = body::channel();
    tokio::spawn(async move {
        let mut pre = (first, first_sys, first_at);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok((_, cur)) = engine.stats_container(&rec.id).await else {
                return;
            };
            let sys = system_cpu_ns();
            let mut d = doc(&rec.id, &rec.name, &cur, sys, Some((&pre.0, pre.1, &pre.2)));
            d["networks"] = super::networks::stats_json(&engine, &rec.id);
            let mut line = serde_json::to_vec(&d).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
            pre = (cur, sys, now());
        }
    });
    let mut r = Response::new(b);
    r.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
