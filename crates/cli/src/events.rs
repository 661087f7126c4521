//! `berth events` (and `system events`): the daemon's event stream, Docker's line format or a
//! `--format` template per event.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_api::client::{Client, ClientError};
use berth_api::query::percent_encode;
use clap::Args;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

#[derive(Args, Debug, Clone)]
pub struct EventsArgs {
    /// Show all events created since timestamp (unix seconds, RFC 3339, or a duration like 10m).
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided (type=container, event=start, container=NAME).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a template ('{{json .}}', '{{.Action}} {{.Actor.Attributes.name}}').
    #[arg(long)]
    pub format: Option<String>,
}

/// Docker's time arguments: a duration ("10m", "1h30m") counts back from now; anything else
/// (unix seconds, RFC 3339) goes to the daemon as it is.
pub fn time_arg(s: &str) -> Result<String, ClientError> {
    let s = s.trim();
    if s.chars().next().is_some_and(|c| c.is_ascii_digit()) && s.ends_with(['s', 'm', 'h']) {
        let d = humantime::parse_duration(s)
            .map_err(|e| ClientError::Protocol(format!("invalid duration {s:?}: {e}")))?;
        let t = SystemTime::now()
            .checked_sub(d)
            .unwrap_or(UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        return Ok(format!("{}.{:09}", t.as_secs(), t.subsec_nanos()));
    }
    Ok(s.to_string())
}

/// `key=value` flags → Docker's filters JSON ({"key":["value",…]}).
pub fn filters_json(filters: &[String]) -> Result<Option<String>, ClientError> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            ClientError::Protocol(format!("bad format of filter (expected name=value): {f}"))
        })?;
        m.entry(k.trim().to_string())
            .or_default()
            .push(v.to_string());
    }
    Ok(Some(serde_json::to_string(&m).unwrap_or_default()))
}

/// Docker's line: `2024-…Z container start 3f2a… (image=busybox, name=web)`.
fn line(e: &Value) -> String {
    let nanos = e["timeNano"].as_u64().unwrap_or(0);
    let t = UNIX_EPOCH + Duration::from_nanos(nanos);
    let attrs = e["Actor"]["Attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "{} {} {} {} ({attrs})",
        humantime::format_rfc3339_nanos(t),
        e["Type"].as_str().unwrap_or_default(),
        e["Action"].as_str().unwrap_or_default(),
        e["Actor"]["ID"].as_str().unwrap_or_default(),
    )
}

pub async fn events(c: &Client, a: EventsArgs) -> Result<i32, ClientError> {
    let mut q = Vec::new();
    if let Some(s) = &a.since {
        q.push(format!("since={}", percent_encode(&time_arg(s)?)));
    }
    if let Some(u) = &a.until {
        q.push(format!("until={}", percent_encode(&time_arg(u)?)));
    }
    if let Some(f) = filters_json(&a.filter)? {
        q.push(format!("filters={}", percent_encode(&f)));
    }
    // Parse the template before the first event arrives, so a typo fails at once.
    let tpl = a.format.as_deref().map(crate::format::parse).transpose()?;
    let body = c.events(&q.join("&")).await?;
    let mut lines = tokio::io::BufReader::new(body).lines();
    while let Some(l) = lines
        .next_line()
        .await
        .map_err(|e| ClientError::Protocol(format!("read events: {e}")))?
    {
        if l.trim().is_empty() {
            continue;
        }
        let e: Value = serde_json::from_str(&l)
            .map_err(|e| ClientError::Protocol(format!("bad event from the daemon: {e}")))?;
        match &tpl {
            Some(t) => println!("{}", crate::format::exec(t, &e)?),
            None => println!("{}", line(&e)),
        }
    }
    Ok(0)
}
