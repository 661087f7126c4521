//! HEALTHCHECK: the check runs as an exec in the container (through its shim) every Interval,
//! is killed after Timeout, and its results make State.Health (starting → healthy/unhealthy,
//! the failing streak and the last five results). One monitor task per running container; it
//! ends when the container exits or is removed, and is re-armed when berthd re-adopts it.

use std::sync::Arc;
use std::time::Duration;

use berth_shim::frame::{parse_header, HEADER_LEN};
use berth_shim::{Request, STREAM_EXIT, STREAM_STDERR, STREAM_STDOUT};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::model::{ContainerRecord, Status};
use super::{shim, spec};
use crate::error::{Error, Result};
use crate::{ids, Engine};

/// Docker's defaults (nanoseconds, like the API).
const SECOND: i64 = 1_000_000_000;
pub const DEFAULT_INTERVAL: i64 = 30 * SECOND;
pub const DEFAULT_TIMEOUT: i64 = 30 * SECOND;
pub const DEFAULT_START_INTERVAL: i64 = 5 * SECOND;
pub const DEFAULT_RETRIES: i64 = 3;
/// Results kept in State.Health.Log, and bytes of output kept per result (Docker's).
const LOG_ENTRIES: usize = 5;
const MAX_OUTPUT: usize = 4096;
/// Shortest duration Docker accepts for the intervals and the timeout.
const MIN_DURATION: i64 = 1_000_000;

/// Config.Healthcheck as Docker's API and image configs spell it (durations in nanoseconds;
/// 0 = inherit, then the default).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// ["CMD", args…], ["CMD-SHELL", "command"], ["NONE"]; empty: inherit.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

impl HealthConfig {
    /// Fields left unset (empty, 0) come from the image's healthcheck (Docker's merge).
    pub fn inherit(mut self, image: Option<&HealthConfig>) -> HealthConfig {
        let Some(img) = image else { return self };
        if self.test.is_empty() {
            self.test = img.test.clone();
        }
        let pick = |mine: &mut i64, theirs: i64| {
            if *mine == 0 {
                *mine = theirs;
            }
        };
        pick(&mut self.interval, img.interval);
        pick(&mut self.timeout, img.timeout);
        pick(&mut self.start_period, img.start_period);
        pick(&mut self.start_interval, img.start_interval);
        pick(&mut self.retries, img.retries);
        self
    }

    /// Is there a check to run?
    pub fn enabled(&self) -> bool {
        !self.test.is_empty() && self.test[0] != "NONE"
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, v) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
        ] {
            if v != 0 && v < MIN_DURATION {
                return Err(format!("{name} in Healthcheck cannot be less than 1ms"));
            }
        }
        if self.retries < 0 {
            return Err("Retries in Healthcheck cannot be negative".into());
        }
        match self.test.first().map(String::as_str) {
            None | Some("NONE") => Ok(()),
            Some("CMD") if self.test.len() > 1 => Ok(()),
            Some("CMD-SHELL") if self.test.len() == 2 => Ok(()),
            Some(other) => Err(format!(
                "Healthcheck.Test must be [\"CMD\", args...], [\"CMD-SHELL\", command] or [\"NONE\"], not {other:?} with {} argument(s)",
                self.test.len() - 1
            )),
        }
    }

    /// What the exec runs.
    fn argv(&self) -> Vec<String> {
        match self.test.first().map(String::as_str) {
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), self.test[1..].join(" ")],
            _ => self.test[1..].to_vec(),
        }
    }

    fn or_default(v: i64, default: i64) -> Duration {
        Duration::from_nanos(if v > 0 { v } else { default } as u64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// State.Health.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: i64,
    pub log: Vec<ProbeResult>,
}

/// One run of the check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ProbeResult {
    /// RFC 3339.
    pub start: String,
    pub end: String,
    /// 0 healthy, anything else a failure; -1 when it could not run or timed out.
    pub exit_code: i32,
    pub output: String,
}

impl Health {
    /// Fold one result in (Docker's rules): success resets the streak and makes it healthy;
    /// failures within the start period do not count; `retries` failures in a row make it
    /// unhealthy.
    fn record(&mut self, r: ProbeResult, in_start_period: bool, retries: i64) {
        if r.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !in_start_period || self.status != HealthStatus::Starting {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push(r);
        let excess = self.log.len().saturating_sub(LOG_ENTRIES);
        self.log.drain(..excess);
    }
}

impl Engine {
    /// Start the container's health monitor, if it has a check. `fresh`: a (re)start, so the
    /// health starts over at "starting"; otherwise (re-adoption) it continues as recorded.
    pub(crate) fn arm_healthcheck(self: &Arc<Self>, rec: &ContainerRecord, fresh: bool) {
        let Some(cfg) = rec.spec.healthcheck.clone().filter(|c| c.enabled()) else {
            return;
        };
        let id = rec.id.clone();
        // Subscribed now, so an exit right after this call still stops the monitor.
        let mut rx = self.containers.watcher(&id);
        let exits = rx.borrow_and_update().exits;
        if fresh || rec.state.health.is_none() {
            if let Err(e) = self.update_health(&id, |h| *h = Health::default()) {
                tracing::warn!("health of {id}: {e}");
            }
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let start_period = Duration::from_nanos(cfg.start_period.max(0) as u64);
            let interval = HealthConfig::or_default(cfg.interval, DEFAULT_INTERVAL);
            let start_interval =
                HealthConfig::or_default(cfg.start_interval, DEFAULT_START_INTERVAL);
            let timeout = HealthConfig::or_default(cfg.timeout, DEFAULT_TIMEOUT);
            let retries = if cfg.retries > 0 {
                cfg.retries
            } else {
                DEFAULT_RETRIES
            };
            loop {
                let in_start = started.elapsed() < start_period;
                let wait = if in_start { start_interval } else { interval };
                let gone = async {
                    while rx.borrow_and_update().exits == exits && !rx.borrow().removed {
                        if rx.changed().await.is_err() {
                            return;
                        }
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = gone => return,
                }
                let rec = match engine.container(&id) {
                    Ok(r) => r,
                    Err(_) => return,
                };
                match rec.state.status {
                    Status::Running => {}
                    // Docker does not probe a paused container.
                    Status::Paused => continue,
                    _ => return,
                }
                let result = engine.probe(&rec, &cfg, timeout).await;
                let in_start = started.elapsed() < start_period;
                let mut changed = None;
                let updated = engine.update_health(&id, |h| {
                    let before = h.status;
                    h.record(result, in_start, retries);
                    if h.status != before {
                        changed = Some(h.status);
                    }
                });
                if let Err(e) = updated {
                    tracing::warn!("health of {id}: {e}");
                    return;
                }
                if let Some(s) = changed {
                    engine.emit(&rec, &format!("health_status: {}", s.as_str()), &[]);
                }
            }
        });
    }

    /// Read-modify-write of State.Health under one database lock, so it never overwrites a
    /// status change made meanwhile.
    fn update_health(&self, id: &str, f: impl FnOnce(&mut Health)) -> Result<()> {
        let mut db = self.db();
        let Some(mut rec) = db.find_container(id)? else {
            return Err(Error::no_such_container(id));
        };
        f(rec.state.health.get_or_insert_with(Health::default));
        db.update_container(&rec)
    }

    /// Run the check once as an exec in the container.
    async fn probe(
        &self,
        rec: &ContainerRecord,
        cfg: &HealthConfig,
        timeout: Duration,
    ) -> ProbeResult {
        let start = ids::now_rfc3339();
        let (exit_code, output) = match self.run_check(rec, cfg, timeout).await {
            Ok(r) => r,
            Err(e) => (-1, e.to_string()),
        };
        ProbeResult {
            start,
            end: ids::now_rfc3339(),
            exit_code,
            output,
        }
    }

    async fn run_check(
        &self,
        rec: &ContainerRecord,
        cfg: &HealthConfig,
        timeout: Duration,
    ) -> Result<(i32, String)> {
        let rootfs = self.container_dir(&rec.id).join("rootfs");
        let caps = spec::capabilities(rec);
        let args = cfg.argv();
        let process = spec::process(
            &rootfs,
            &spec::ProcessParams {
                args: &args,
                env: &rec.spec.env,
                cwd: &rec.spec.working_dir,
                user: &rec.spec.user,
                tty: false,
                caps: &caps,
                no_new_privileges: false,
                console_size: None,
                ulimits: &rec.spec.host.ulimits,
            },
        )
        .map_err(Error::InvalidParameter)?;
        let request = Request::Exec {
            exec_id: format!("health-{}", ids::random_hex(8)),
            process,
            stdin: false,
            privileged: false,
        };
        let (reply, stream) = shim::call(&self.shim_socket(&rec.id), &request).await?;
        match tokio::time::timeout(timeout, read_output(stream)).await {
            Ok(r) => Ok(r),
            Err(_) => {
                // Docker kills a check that overruns; the shim reaps it.
                if reply.pid > 0 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(reply.pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                Ok((
                    -1,
                    format!(
                        "Health check exceeded timeout ({})",
                        humantime::format_duration(timeout)
                    ),
                ))
            }
        }
    }
}

/// Stdout and stderr together (the first MAX_OUTPUT bytes) and the exit code from the last
/// frame; -1 when the stream ends without one.
async fn read_output(mut s: tokio::net::UnixStream) -> (i32, String) {
    let mut out = Vec::new();
    let mut header = [0u8; HEADER_LEN];
    let mut payload = Vec::new();
    let mut code = -1;
    while s.read_exact(&mut header).await.is_ok() {
        let (stream, len) = parse_header(&header);
        payload.resize(len, 0);
        if s.read_exact(&mut payload).await.is_err() {
            break;
        }
        match stream {
            STREAM_STDOUT | STREAM_STDERR => {
                let room = MAX_OUTPUT.saturating_sub(out.len());
                out.extend_from_slice(&payload[..payload.len().min(room)]);
            }
            STREAM_EXIT => {
                code = std::str::from_utf8(&payload)
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(-1);
                break;
            }
            _ => {}
        }
    }
    (code, String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i32) -> ProbeResult {
        ProbeResult {
            exit_code: code,
            ..ProbeResult::default()
        }
    }

    #[test]
    fn status_follows_results_like_docker() {
        let mut h = Health::default();
        assert_eq!(h.status, HealthStatus::Starting);
        // Failures in the start period do not count while still starting.
        h.record(result(1), true, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        h.record(result(0), true, 2);
        assert_eq!(h.status, HealthStatus::Healthy);
        h.record(result(1), false, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 1));
        h.record(result(1), false, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        for _ in 0..5 {
            h.record(result(0), false, 2);
        }
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        assert_eq!(h.log.len(), LOG_ENTRIES);
    }

    #[test]
    fn config_inherits_and_validates() {
        let image = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 5 * SECOND,
            retries: 4,
            ..HealthConfig::default()
        };
        let mine = HealthConfig {
            interval: 2 * SECOND,
            ..HealthConfig::default()
        }
        .inherit(Some(&image));
        assert_eq!(mine.test, image.test);
        assert_eq!((mine.interval, mine.retries), (2 * SECOND, 4));
        assert_eq!(mine.argv(), vec!["/bin/sh", "-c", "true"]);
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        }
        .inherit(Some(&image));
        assert!(!none.enabled());
        let bad = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: 10,
            ..HealthConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("Interval"));
        let bad = HealthConfig {
            test: vec!["BOGUS".into()],
            ..HealthConfig::default()
        };
        assert!(bad.validate().is_err());
        let cmd = HealthConfig {
            test: vec!["CMD".into(), "cat".into(), "/x".into()],
            ..HealthConfig::default()
        };
        assert_eq!(cmd.argv(), vec!["cat", "/x"]);
    }
}
