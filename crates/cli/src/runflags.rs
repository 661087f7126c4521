//! More of `run`/`create`'s flags (resources, --env-file, --tmpfs, --sysctl, --shm-size), kept
//! apart from args.rs so the common flags stay readable.

use berth_api::client::ClientError;
use berth_api::types::{CreateBody, DeviceMapping, Mount, TmpfsOptions, Ulimit};
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
    /// Ulimit options (nofile=1024[:2048]).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add a host device to the container (/dev/x[:/dev/y][:rwm]).
    #[arg(long)]
    pub device: Vec<String>,
    /// Write the container ID to the file.
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Set platform if server is multi-platform capable (linux/amd64).
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, value_enum, default_value_t)]
    pub pull: crate::registry::PullPolicy,
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

/// `nofile=1024:2048` (soft:hard) or `nofile=1024` (both); -1 or "unlimited" for no limit.
pub fn parse_ulimit(spec: &str) -> Result<Ulimit, ClientError> {
    let invalid = || bad(format!("invalid argument {spec:?} for \"--ulimit\" flag"));
    let (name, limits) = spec.split_once('=').ok_or_else(invalid)?;
    let num = |v: &str| -> Result<i64, ClientError> {
        match v {
            "unlimited" => Ok(-1),
            v => v.parse::<i64>().map_err(|_| invalid()),
        }
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => (num(limits)?, num(limits)?),
    };
    if name.is_empty() {
        return Err(invalid());
    }
    if hard >= 0 && (soft > hard || soft < 0) {
        return Err(bad(format!(
            "invalid argument {spec:?} for \"--ulimit\" flag: ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

fn device_mode(m: &str) -> bool {
    !m.is_empty() && m.len() <= 3 && m.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

/// Docker's `--device`: `/dev/x`, `/dev/x:/dev/y`, `/dev/x:rw`, `/dev/x:/dev/y:rwm`.
pub fn parse_device(spec: &str) -> Result<DeviceMapping, ClientError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, perms) = match parts.as_slice() {
        [s] => (*s, *s, "rwm"),
        [s, m] if device_mode(m) => (*s, *s, *m),
        [s, d] => (*s, *d, "rwm"),
        [s, d, m] if device_mode(m) => (*s, *d, *m),
        _ => return Err(bad(format!("invalid device specification: {spec}"))),
    };
    if !src.starts_with('/') || !dst.starts_with('/') {
        return Err(bad(format!(
            "invalid device specification: {spec}: the paths must be absolute"
        )));
    }
    Ok(DeviceMapping {
        path_on_host: src.to_string(),
        path_in_container: dst.to_string(),
        cgroup_permissions: perms.to_string(),
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
    if !f.ulimit.is_empty() {
        h.ulimits = Some(
            f.ulimit
                .iter()
                .map(|u| parse_ulimit(u))
                .collect::<Result<_, _>>()?,
        );
    }
    if !f.device.is_empty() {
        h.devices = Some(
            f.device
                .iter()
                .map(|d| parse_device(d))
                .collect::<Result<_, _>>()?,
        );
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

    #[test]
    fn ulimits_parse() {
        let u = parse_ulimit("nofile=1024:2048").expect("parse");
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u = parse_ulimit("nproc=512").expect("parse");
        assert_eq!((u.soft, u.hard), (512, 512));
        assert_eq!(parse_ulimit("core=-1").expect("parse").hard, -1);
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("nofile=2048:1024").is_err());
        assert!(parse_ulimit("nofile=lots").is_err());
    }

    #[test]
    fn devices_parse() {
        let d = parse_device("/dev/null").expect("parse");
        assert_eq!(
            (d.path_on_host.as_str(), d.path_in_container.as_str()),
            ("/dev/null", "/dev/null")
        );
        assert_eq!(d.cgroup_permissions, "rwm");
        let d = parse_device("/dev/zero:r").expect("parse");
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/zero", "r")
        );
        let d = parse_device("/dev/zero:/dev/z:rw").expect("parse");
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/z", "rw")
        );
        let d = parse_device("/dev/zero:/dev/z").expect("parse");
        assert_eq!(d.cgroup_permissions, "rwm");
        assert!(parse_device("/dev/zero:/dev/z:rx").is_err());
        assert!(parse_device("dev/zero").is_err());
    }
}
