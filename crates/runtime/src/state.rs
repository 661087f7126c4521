//! Per-container state on disk: `<root>/<id>/state.json`, the exec fifo, and how the status is
//! derived from the living process rather than trusted from the file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// Default state root, like runc's /run/runc.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";
const STATE_FILE: &str = "state.json";
const EXEC_FIFO: &str = "exec.fifo";

/// Container status as the runtime-spec names it (plus `paused`, as runc reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What we persist about a container. The spec is kept as it was at create time so that later
/// commands (exec, delete's poststop hooks) do not depend on the bundle staying unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// Host pid of the container's init process.
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), to detect pid reuse.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: String,
    /// The cgroup path the container lives in, as passed to the cgroup manager.
    pub cgroups_path: Option<String>,
    /// The container's spec as it was at create time.
    pub spec: Spec,
}

/// A container's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
}

/// Ids become directory names: restrict them like runc does.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

impl StateDir {
    /// The state directory of `id` under `root` (it may not exist).
    pub fn new(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        Ok(StateDir { dir: root.join(id) })
    }

    /// Create the directory; fails with AlreadyExists if a container of that id exists.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        let sd = StateDir::new(root, id)?;
        fs::create_dir_all(root).ctx(|| format!("create state root {}", root.display()))?;
        match fs::create_dir(&sd.dir) {
            Ok(()) => Ok(sd),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(id.to_string()))
            }
            Err(e) => Err(Error::io(format!("create {}", sd.dir.display()), e)),
        }
    }

    pub fn exists(&self) -> bool {
        self.dir.join(STATE_FILE).exists()
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join(EXEC_FIFO)
    }

    pub fn load(&self, id: &str) -> Result<ContainerState> {
        let path = self.dir.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Other(format!("corrupt state file {}: {e}", path.display())))
    }

    /// Write state.json atomically (write a temporary file, rename).
    pub fn save(&self, state: &ContainerState) -> Result<()> {
        let bytes =
            serde_json::to_vec(state).map_err(|e| Error::Other(format!("serialize state: {e}")))?;
        write_atomic(&self.dir.join(STATE_FILE), &bytes, 0o600)
    }

    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("remove {}", self.dir.display()), e))
            }
            _ => Ok(()),
        }
    }
}

/// Write `bytes` to `path` atomically: a crashing writer leaves either the old or the new
/// content. No fsync: runtime state describes processes, which do not outlive a host crash
/// (runc does not sync its state either), and a sync costs milliseconds per container.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(bytes)
        .ctx(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))
}

/// Fields of /proc/PID/stat we need: state letter and start time.
pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: the fields we need follow the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        // field 22 overall; index 19 after "pid (comm)".
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Is the recorded process still the container's (alive, not a zombie, same start time)?
pub fn process_alive(state: &ContainerState) -> bool {
    if state.pid <= 0 {
        return false;
    }
    match proc_stat(state.pid) {
        Some(st) => st.start_time == state.pid_start_time && st.state != 'Z' && st.state != 'X',
        None => false,
    }
}

/// RFC 3339 timestamp of now, nanosecond precision.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_restricted() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn own_process_is_alive_and_reuse_is_detected() {
        let me = std::process::id() as i32;
        let st = proc_stat(me).unwrap();
        let mut state = ContainerState {
            id: "x".into(),
            pid: me,
            pid_start_time: st.start_time,
            bundle: "/".into(),
            rootfs: "/".into(),
            created: now_rfc3339(),
            owner: "root".into(),
            cgroups_path: None,
            spec: Spec::default(),
        };
        assert!(process_alive(&state));
        state.pid_start_time += 1;
        assert!(
            !process_alive(&state),
            "a different start time means the pid was reused"
        );
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
