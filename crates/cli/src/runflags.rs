//! More of `run`/`create`'s flags (resources, --env-file, --tmpfs, --sysctl, --shm-size), kept
//! apart from args.rs so the common flags stay readable.

use berth_api::client::ClientError;
use berth_api::types::{CreateBody, Mount, TmpfsOptions};
use clap::Args;

use crate::run::parse_bytes;

#[derive(Args, Debug, Clone, Default)]
pub struct MoreRunFlags {
    /// Read in a file of environment variables (KEY=VALUE lines; a bare KEY takes the host's).
    #[arg(long)]
    pub env_file: Vec<String>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    /// Sysctl options (net.ipv4.ip_forward=1).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Size of /dev/shm (e.g. 64m).
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Mount a tmpfs directory (PATH[:size=64m]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
}

/// Resource flags `run`, `create` and `update` share (beyond -m, --cpus, --pids-limit).
#[derive(Args, Debug, Clone, Default)]
pub struct ResourceFlags {
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long)]
    pub cpu_period: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
}

fn bad(m: String) -> ClientError {
    ClientError::Protocol(m)
}

/// KEY=VALUE lines; `#` comments and blank lines skipped; a bare KEY is taken from our env.
pub fn read_env_file(path: &str) -> Result<Vec<String>, ClientError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(format!("open env file {path}: {e}")))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some(("", _)) => {
                return Err(bad(format!(
                    "{path}:{}: variable without a name: {line:?}",
                    n + 1
                )))
            }
            Some(_) => out.push(line.to_string()),
            None => {
                if let Ok(v) = std::env::var(line.trim()) {
                    out.push(format!("{}={v}", line.trim()));
                }
            }
        }
    }
    Ok(out)
}

/// `/run:size=64m,mode=1777` → a tmpfs mount (size honoured, other options ignored).
fn tmpfs_mount(spec: &str) -> Result<Mount, ClientError> {
    let (target, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !target.starts_with('/') {
        return Err(bad(format!(
            "invalid --tmpfs {spec:?}: the path must be absolute"
        )));
    }
    let mut size = 0;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        if let Some(s) = o.strip_prefix("size=") {
            size = parse_bytes(s)?;
        }
    }
    Ok(Mount {
        kind: "tmpfs".into(),
        target: target.into(),
        tmpfs_options: (size > 0).then_some(TmpfsOptions { size_bytes: size }),
        ..Mount::default()
    })
}

pub fn apply(f: &MoreRunFlags, body: &mut CreateBody) -> Result<(), ClientError> {
    if !f.env_file.is_empty() {
        // Docker: the files first, then -e, so -e wins.
        let mut env = Vec::new();
        for p in &f.env_file {
            env.extend(read_env_file(p)?);
        }
        env.extend(body.config.env.take().unwrap_or_default());
        body.config.env = Some(env);
    }
    let h = &mut body.host_config;
    if let Some(s) = &f.resources.memory_swap {
        h.memory_swap = if s.trim() == "-1" {
            -1
        } else {
            parse_bytes(s)?
        };
    }
    if let Some(s) = &f.resources.memory_reservation {
        h.memory_reservation = parse_bytes(s)?;
    }
    h.cpu_shares = f.resources.cpu_shares.unwrap_or(h.cpu_shares);
    h.cpu_quota = f.resources.cpu_quota.unwrap_or(h.cpu_quota);
    h.cpu_period = f.resources.cpu_period.unwrap_or(h.cpu_period);
    if let Some(c) = &f.resources.cpuset_cpus {
        h.cpuset_cpus = c.clone();
    }
    if !f.sysctl.is_empty() {
        let mut m = h.sysctls.take().unwrap_or_default();
        for s in &f.sysctl {
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| bad(format!("invalid --sysctl {s:?}: use KEY=VALUE")))?;
            m.insert(k.to_string(), v.to_string());
        }
        h.sysctls = Some(m);
    }
    if let Some(s) = &f.shm_size {
        h.shm_size = parse_bytes(s)?;
    }
    if !f.tmpfs.is_empty() {
        let mut mounts = h.mounts.take().unwrap_or_default();
        for t in &f.tmpfs {
            mounts.push(tmpfs_mount(t)?);
        }
        h.mounts = Some(mounts);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_specs_parse() {
        let m = tmpfs_mount("/run:size=64m,mode=1777").expect("parse");
        assert_eq!((m.kind.as_str(), m.target.as_str()), ("tmpfs", "/run"));
        assert_eq!(m.tmpfs_options.map(|o| o.size_bytes), Some(64 << 20));
        assert!(tmpfs_mount("run").is_err());
    }
}
