//! What the engine knows about a container: how it was asked for (`ContainerSpec`, already
//! merged with its image's config) and where it is (`State`). Persisted as JSON in the database.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The create request, merged with the image config (env, cmd, entrypoint, workdir, user).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSpec {
    /// The image as the user named it.
    pub image: String,
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// HEALTHCHECK, merged with the image's (Test ["NONE"]: disabled).
    pub healthcheck: Option<super::health::HealthConfig>,
    pub host: HostSpec,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostSpec {
    pub auto_remove: bool,
    /// "bridge" (the default), "none", "host", "container:<name|id>" or a user network.
    pub network_mode: String,
    /// Ports, aliases, addresses, DNS and extra hosts.
    pub network: crate::networks::NetworkSpec,
    /// As the client gave them ("host-path:container-path[:ro]", "volume:path").
    pub binds: Vec<String>,
    /// Binds, volumes and tmpfs mounts, resolved at create.
    pub mounts: Vec<MountSpec>,
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpuset_cpus: String,
    pub pids_limit: Option<i64>,
    /// cgroup v1 memory.oom_control (v2 has no equivalent: dropped at create with a warning).
    pub oom_kill_disable: bool,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub init: Option<bool>,
    pub restart_policy: RestartPolicy,
    pub security_opt: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub shm_size: i64,
    /// json-file options ("max-size": "10m", "max-file": "3").
    pub log_opts: BTreeMap<String, String>,
    /// [height, width] for the terminal, set before the process starts.
    pub console_size: Option<[u16; 2]>,
    /// POSIX resource limits of the container's processes (`--ulimit`).
    pub ulimits: Vec<Ulimit>,
    /// Host devices made available in the container (`--device`).
    pub devices: Vec<DeviceMapping>,
}

/// One `--ulimit`: "nofile", soft and hard limits (-1: unlimited).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

impl Ulimit {
    /// The OCI rlimit type ("RLIMIT_NOFILE"), refusing names the kernel has no limit for.
    pub fn rlimit_type(&self) -> Result<String, String> {
        const NAMES: &[&str] = &[
            "as",
            "core",
            "cpu",
            "data",
            "fsize",
            "locks",
            "memlock",
            "msgqueue",
            "nice",
            "nofile",
            "nproc",
            "rss",
            "rtprio",
            "rttime",
            "sigpending",
            "stack",
        ];
        let n = self.name.to_ascii_lowercase();
        if !NAMES.contains(&n.as_str()) {
            return Err(format!("invalid ulimit type: {}", self.name));
        }
        if self.soft > self.hard && self.hard >= 0 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                self.soft, self.hard
            ));
        }
        Ok(format!("RLIMIT_{}", n.to_ascii_uppercase()))
    }
}

/// One `--device`: a host device node, where it appears in the container and what the
/// container may do with it ("rwm").
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// Log rotation by default: 10 MB per file, three files.
pub const DEFAULT_LOG_MAX_SIZE: u64 = 10 << 20;
pub const DEFAULT_LOG_MAX_FILES: u32 = 3;

impl HostSpec {
    /// (bytes per file, files kept) from the json-file options.
    pub fn log_rotation(&self) -> Result<(u64, u32), String> {
        let size = match self.log_opts.get("max-size") {
            None => DEFAULT_LOG_MAX_SIZE,
            Some(s) if s == "-1" => 0,
            Some(s) => parse_size(s).ok_or_else(|| format!("invalid log opt max-size: {s:?}"))?,
        };
        let files = match self.log_opts.get("max-file") {
            None => DEFAULT_LOG_MAX_FILES,
            Some(f) => f
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("invalid log opt max-file: {f:?}"))?,
        };
        Ok((size, files))
    }
}

/// "10m", "512k", "1g", "100" (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let l = s.trim().to_ascii_lowercase();
    let l = l.strip_suffix('b').unwrap_or(&l);
    let (num, mult) = match l.chars().last()? {
        'k' => (&l[..l.len() - 1], 1u64 << 10),
        'm' => (&l[..l.len() - 1], 1 << 20),
        'g' => (&l[..l.len() - 1], 1 << 30),
        _ => (l, 1),
    };
    num.parse::<f64>().ok().map(|n| (n * mult as f64) as u64)
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    #[default]
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct MountSpec {
    pub kind: MountKind,
    /// Host path (bind), volume name (volume; empty: anonymous), unused for tmpfs.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// tmpfs size in bytes (0: the kernel's default).
    pub tmpfs_size: i64,
    /// A volume made for this container alone (removed with it by `rm -v` and `--rm`).
    pub anonymous: bool,
}

impl MountSpec {
    /// Docker's -v syntax: "/host:/ctr[:ro]" (bind) or "name:/ctr[:ro]" (volume) or "/ctr"
    /// (anonymous volume).
    pub fn parse_bind(b: &str) -> Result<MountSpec, String> {
        let parts: Vec<&str> = b.split(':').collect();
        let (source, target, opts) = match parts.as_slice() {
            [t] => ("", *t, ""),
            [s, t] => (*s, *t, ""),
            [s, t, o] => (*s, *t, *o),
            _ => return Err(format!("invalid volume specification: '{b}'")),
        };
        if !target.starts_with('/') {
            return Err(format!(
                "invalid volume specification: '{b}': the container path must be absolute"
            ));
        }
        let read_only = opts.split(',').any(|o| o == "ro");
        let kind = if source.starts_with('/') {
            MountKind::Bind
        } else {
            MountKind::Volume
        };
        Ok(MountSpec {
            kind,
            source: source.to_string(),
            target: target.to_string(),
            read_only,
            tmpfs_size: 0,
            anonymous: false,
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct RestartPolicy {
    /// "", "no", "always", "on-failure", "unless-stopped".
    pub name: String,
    pub maximum_retry_count: i64,
}

impl RestartPolicy {
    pub fn is_none(&self) -> bool {
        matches!(self.name.as_str(), "" | "no")
    }

    /// Restart after an exit with `code`, the container having restarted `count` times?
    pub fn restarts_after(&self, code: i32, count: i64, manually_stopped: bool) -> bool {
        if manually_stopped {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0 && (self.maximum_retry_count <= 0 || count < self.maximum_retry_count)
            }
            _ => false,
        }
    }

    /// Start it when the daemon starts (it was not running then)?
    pub fn starts_with_daemon(&self, manually_stopped: bool) -> bool {
        match self.name.as_str() {
            "always" => true,
            "unless-stopped" => !manually_stopped,
            _ => false,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        match self.name.as_str() {
            "" | "no" | "always" | "unless-stopped" if self.maximum_retry_count == 0 => Ok(()),
            "on-failure" if self.maximum_retry_count >= 0 => Ok(()),
            "" | "no" | "always" | "unless-stopped" => Err(format!(
                "maximum retry count cannot be used with restart policy '{}'",
                self.name
            )),
            "on-failure" => Err("maximum retry count cannot be negative".into()),
            other => Err(format!("invalid restart policy '{other}'")),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    /// RFC 3339; empty when never.
    pub started_at: String,
    pub finished_at: String,
    /// A shim holds a created-but-not-started process for this container.
    pub task: bool,
    /// Stopped or killed by a user: restart policies leave it alone (Docker's
    /// HasBeenManuallyStopped).
    pub manually_stopped: bool,
    /// Present while a healthcheck is configured and the container has run.
    pub health: Option<super::health::Health>,
}

impl State {
    pub fn running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without Docker's leading '/'.
    pub name: String,
    pub created: String,
    /// The image's id (its config digest, "sha256:…").
    pub image_id: String,
    pub spec: ContainerSpec,
    pub state: State,
    #[serde(default)]
    pub restart_count: i64,
    /// Where the container's files are: rootfs mount point, bundle, log.
    #[serde(default)]
    pub log_path: String,
}

impl ContainerRecord {
    /// Entrypoint followed by cmd: what runs.
    pub fn argv(&self) -> Vec<String> {
        self.spec
            .entrypoint
            .iter()
            .chain(self.spec.cmd.iter())
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::RestartPolicy;

    fn p(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn restart_decisions_follow_docker() {
        assert!(p("always", 0).restarts_after(0, 5, false));
        assert!(!p("always", 0).restarts_after(1, 0, true));
        assert!(p("on-failure", 2).restarts_after(1, 1, false));
        assert!(!p("on-failure", 2).restarts_after(1, 2, false));
        assert!(!p("on-failure", 0).restarts_after(0, 0, false));
        assert!(!p("no", 0).restarts_after(1, 0, false));
        assert!(p("unless-stopped", 0).starts_with_daemon(false));
        assert!(!p("unless-stopped", 0).starts_with_daemon(true));
        assert!(p("always", 0).starts_with_daemon(true));
        assert!(p("bogus", 0).validate().is_err());
        assert!(p("always", 3).validate().is_err());
    }

    #[test]
    fn log_rotation_options() {
        let mut h = super::HostSpec::default();
        assert_eq!(h.log_rotation().unwrap(), (10 << 20, 3));
        h.log_opts.insert("max-size".into(), "1k".into());
        h.log_opts.insert("max-file".into(), "2".into());
        assert_eq!(h.log_rotation().unwrap(), (1024, 2));
        h.log_opts.insert("max-file".into(), "0".into());
        assert!(h.log_rotation().is_err());
    }
}
