//! `run`'s healthcheck flags → Config.Healthcheck (Docker's JSON, durations in nanoseconds).

use berth_api::client::ClientError;
use serde_json::{json, Value};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct HealthFlags {
    /// Command to run to check health (run by /bin/sh -c in the container).
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h), default 30s.
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h), default 30s.
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy, default 3.
    #[arg(long)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before failures count (ms|s|m|h).
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Time between checks during the start period (ms|s|m|h), default 5s.
    #[arg(long)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub no_healthcheck: bool,
}

impl HealthFlags {
    /// None: no flag given (the image's healthcheck applies as it is).
    pub fn healthcheck(&self) -> Result<Option<Value>, ClientError> {
        let any = self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some()
            || self.health_start_interval.is_some();
        if self.no_healthcheck {
            if any {
                return Err(ClientError::Protocol(
                    "--no-healthcheck conflicts with --health-* options".into(),
                ));
            }
            return Ok(Some(json!({"Test": ["NONE"]})));
        }
        if !any {
            return Ok(None);
        }
        let d = |flag: &str, v: &Option<String>| -> Result<i64, ClientError> {
            v.as_deref().map_or(Ok(0), |s| {
                parse_duration(s).ok_or_else(|| {
                    ClientError::Protocol(format!("invalid argument {s:?} for \"--{flag}\""))
                })
            })
        };
        Ok(Some(json!({
            "Test": self.health_cmd.as_ref().map(|c| vec!["CMD-SHELL".to_string(), c.clone()]),
            "Interval": d("health-interval", &self.health_interval)?,
            "Timeout": d("health-timeout", &self.health_timeout)?,
            "StartPeriod": d("health-start-period", &self.health_start_period)?,
            "StartInterval": d("health-start-interval", &self.health_start_interval)?,
            "Retries": self.health_retries.unwrap_or(0),
        })))
    }
}

/// Go's duration syntax ("1s", "500ms", "1m30s") → nanoseconds.
fn parse_duration(s: &str) -> Option<i64> {
    let mut total: f64 = 0.0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("1s"), Some(1_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn flags_make_dockers_healthcheck() {
        let f = HealthFlags {
            health_cmd: Some("true".into()),
            health_interval: Some("1s".into()),
            ..HealthFlags::default()
        };
        let h = f.healthcheck().unwrap().unwrap();
        assert_eq!(h["Test"], json!(["CMD-SHELL", "true"]));
        assert_eq!(h["Interval"], 1_000_000_000i64);
        let none = HealthFlags {
            no_healthcheck: true,
            ..HealthFlags::default()
        };
        assert_eq!(
            none.healthcheck().unwrap().unwrap()["Test"],
            json!(["NONE"])
        );
        assert!(HealthFlags::default().healthcheck().unwrap().is_none());
        let both = HealthFlags {
            no_healthcheck: true,
            health_retries: Some(2),
            ..HealthFlags::default()
        };
        assert!(both.healthcheck().is_err());
    }
}
