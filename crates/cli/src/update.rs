//! `berth update`: change a container's resources or restart policy while it runs.

use berth_api::client::{Client, ClientError};
use berth_api::query::percent_encode;
use clap::Args;
use serde_json::{json, Map, Value};

use crate::run::parse_bytes;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Memory limit (e.g. 256m).
    #[arg(short, long)]
    pub memory: Option<String>,
    #[command(flatten)]
    pub resources: crate::runflags::ResourceFlags,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N]).
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

fn bytes_or_unlimited(s: &str) -> Result<i64, ClientError> {
    if s.trim() == "-1" {
        Ok(-1)
    } else {
        parse_bytes(s)
    }
}

/// The update body: only what was asked for (the daemon treats absent fields as unchanged).
fn body(a: &UpdateArgs) -> Result<Value, ClientError> {
    let mut m = Map::new();
    if let Some(v) = &a.memory {
        m.insert("Memory".into(), json!(parse_bytes(v)?));
    }
    if let Some(v) = &a.resources.memory_swap {
        m.insert("MemorySwap".into(), json!(bytes_or_unlimited(v)?));
    }
    if let Some(v) = &a.resources.memory_reservation {
        m.insert("MemoryReservation".into(), json!(parse_bytes(v)?));
    }
    if let Some(c) = a.cpus {
        if !(c > 0.0 && c.is_finite()) {
            return Err(ClientError::Protocol(format!(
                "invalid --cpus {c}: must be a positive number"
            )));
        }
        m.insert("NanoCpus".into(), json!((c * 1e9) as i64));
    }
    for (k, v) in [
        ("CpuShares", a.resources.cpu_shares),
        ("CpuQuota", a.resources.cpu_quota),
        ("CpuPeriod", a.resources.cpu_period),
        ("PidsLimit", a.pids_limit),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(c) = &a.resources.cpuset_cpus {
        m.insert("CpusetCpus".into(), json!(c));
    }
    if let Some(r) = &a.restart {
        let (name, n) = match r.split_once(':') {
            Some((name, n)) => (
                name,
                n.parse::<i64>().map_err(|_| {
                    ClientError::Protocol(format!("invalid restart policy {r:?}: bad retry count"))
                })?,
            ),
            None => (r.as_str(), 0),
        };
        if !matches!(name, "no" | "always" | "unless-stopped" | "on-failure") {
            return Err(ClientError::Protocol(format!(
                "invalid restart policy {name:?}: use no, always, unless-stopped or on-failure[:N]"
            )));
        }
        m.insert(
            "RestartPolicy".into(),
            json!({"Name": name, "MaximumRetryCount": n}),
        );
    }
    if m.is_empty() {
        return Err(ClientError::Protocol(
            "you must provide one or more flags when using this command".into(),
        ));
    }
    Ok(Value::Object(m))
}

pub async fn update(c: &Client, a: UpdateArgs) -> Result<i32, ClientError> {
    let b = body(&a)?;
    let mut code = 0;
    for n in &a.containers {
        let r: Result<Value, _> = c
            .post(&format!("/containers/{}/update", percent_encode(n)), &b)
            .await;
        match r {
            Ok(v) => {
                for w in v["Warnings"].as_array().into_iter().flatten() {
                    eprintln!("WARNING: {}", w.as_str().unwrap_or_default());
                }
                println!("{n}");
            }
            Err(e @ ClientError::Connect { .. }) => return Err(e),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}
