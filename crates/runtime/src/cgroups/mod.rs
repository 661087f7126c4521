//! cgroups v1 and v2 behind one interface.
//!
//! Contract used by the lifecycle code (`container`, `process`):
//! - `open(cgroups_path, id)` picks v1 or v2 from the host's mounts and returns a `Manager`.
//! - `Manager::create` makes the cgroup(s) and applies `LinuxResources` BEFORE the container's
//!   process is added (`add_process`), so limits hold from the first instruction.
//! - `freeze`/`thaw` implement pause/resume; `pids` lists every process for `kill --all` / `ps`;
//!   `stats` feeds `berth stats`/`events --stats`; `destroy` removes everything on delete.
//!
//! Device rules: the spec's `linux.resources.devices` in order, then runc's default devices
//! (see `devices::default_rules`); for each access bit the last matching rule wins, and what no
//! rule allows is denied. As with runc, `linux.devices` adds no rule of its own.

pub mod bpf;
pub mod devices;
mod fsutil;
mod path;
mod spare;
pub mod stats;
mod v1;
mod v2;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxRdma, LinuxResources};

use crate::error::Result;
use path::CgroupPath;

pub use spare::SpareCgroup;
pub use stats::Stats;
pub use v1::V1Manager;
pub use v2::V2Manager;

/// Where the host mounts its cgroup hierarchies.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Version {
    V1,
    V2,
}

/// The cgroup(s) of one container.
pub trait Manager: Send + Sync + std::fmt::Debug {
    fn version(&self) -> Version;
    /// mkdir the cgroup(s) (v2: enabling the needed controllers in the ancestors'
    /// cgroup.subtree_control) and apply `resources`, device rules included.
    fn create(&self, resources: Option<&LinuxResources>) -> Result<()>;
    fn add_process(&self, pid: i32) -> Result<()>;
    /// Apply new limits to a live cgroup. Device rules change only if `resources.devices` is set.
    fn update(&self, resources: &LinuxResources) -> Result<()>;
    /// Stop every process; returns once the kernel reports the cgroup frozen.
    fn freeze(&self) -> Result<()>;
    fn thaw(&self) -> Result<()>;
    fn is_frozen(&self) -> Result<bool>;
    /// Every process in the cgroup and its descendants.
    fn pids(&self) -> Result<Vec<i32>>;
    fn stats(&self) -> Result<Stats>;
    /// How many times the kernel's OOM killer acted in the cgroup (one file, not all stats).
    fn oom_kills(&self) -> Result<u64>;
    /// The same count, kept open to be read later with one pread (None: no memory controller).
    fn oom_counter(&self) -> Result<Option<OomCounter>>;
    /// rmdir the container's cgroup(s) and any cgroups below; Ok if already gone.
    fn destroy(&self) -> Result<()>;
    fn exists(&self) -> bool;
    /// The container's cgroup directories (v1: one per hierarchy). A relative cgroupsPath
    /// resolves against the calling process's own cgroup, so callers that reopen a container
    /// from another process should record these (or use an absolute path).
    fn dirs(&self) -> Vec<PathBuf>;
    /// Take over a spare cgroup (v1: one named for this cgroup as it is, else rename its
    /// directories to this cgroup's, which must not exist yet), so a launcher in it clones the
    /// container's process into place. None when they do not line up (another parent, another
    /// version): nothing changed.
    fn adopt(&self, _spare: &SpareCgroup) -> Result<Option<Adopted>> {
        Ok(None)
    }
}

/// A spare cgroup taken over by `Manager::adopt`.
#[derive(Debug)]
pub struct Adopted {
    /// A cgroup2 directory to clone into as well (a hybrid host's unified hierarchy).
    pub clone_into: Option<PathBuf>,
    /// The spare's own cgroup2 directory became the container's (false: the spare's, if it
    /// has one, is left to remove once its launcher is gone).
    pub spare_unified_taken: bool,
}

/// An open OOM-kill counter (v1 memory.oom_control, v2 memory.events). A shim opens it once
/// the container runs, so reading it at exit costs one pread instead of finding the cgroup.
#[derive(Debug)]
pub struct OomCounter {
    file: std::fs::File,
    path: PathBuf,
}

impl OomCounter {
    /// Open `path`; None if the file does not exist (no memory controller there).
    pub(crate) fn open(path: PathBuf) -> Result<Option<OomCounter>> {
        match std::fs::File::open(&path) {
            Ok(file) => Ok(Some(OomCounter { file, path })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fsutil::cgroup_err(&path, format!("open: {e}"))),
        }
    }

    /// The current count (its `oom_kill` line; 0 when the kernel has none).
    pub fn kills(&self) -> Result<u64> {
        use std::os::unix::fs::FileExt;
        // Both files are a few short lines.
        let mut buf = [0u8; 1024];
        let n = self
            .file
            .read_at(&mut buf, 0)
            .map_err(|e| fsutil::cgroup_err(&self.path, format!("read: {e}")))?;
        let text = String::from_utf8_lossy(&buf[..n]);
        Ok(fsutil::parse_flat_keyed(&text)
            .get("oom_kill")
            .copied()
            .unwrap_or(0))
    }
}

/// Remember this process's own cgroups and the host's cgroup mounts for the rest of its life
/// instead of reading them for each container operation: for a process that never moves
/// itself to another cgroup (a shim, whose spare calls this while it waits for work).
pub fn remember_host() -> Result<()> {
    path::remember()?;
    crate::rootfs::mountinfo::remember_cgroup_mounts()
}

/// The cgroup version of the host: v2 only if /sys/fs/cgroup itself is cgroup2 (hybrid hosts,
/// with cgroup2 at /sys/fs/cgroup/unified, count as v1).
pub fn host_version() -> Version {
    let v2 = nix::sys::statfs::statfs(CGROUP_ROOT)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    if v2 {
        Version::V2
    } else {
        Version::V1
    }
}

/// Open the cgroup for a container on the host.
///
/// `cgroups_path` is the spec's `linux.cgroupsPath`: absolute = from the hierarchy root,
/// relative = below the calling process's own cgroup, `None` = "/berth/<container_id>";
/// "slice:prefix:name" (systemd driver style) maps to "/<slices>/<prefix>-<name>.scope".
/// ".." components are refused. Nothing is created until `Manager::create`.
pub fn open(cgroups_path: Option<&str>, container_id: &str) -> Result<Box<dyn Manager>> {
    let cgroup = CgroupPath::parse(cgroups_path, container_id)?;
    match host_version() {
        Version::V2 => {
            let own = path::own_v2_path(&path::own_cgroups());
            let root = PathBuf::from(CGROUP_ROOT);
            let dir = cgroup.dir_in(&root, Path::new("/"), &own);
            Ok(Box::new(V2Manager::new(root, dir)))
        }
        Version::V1 => {
            let mounts = path::host_mounts()?;
            Ok(Box::new(V1Manager::from_mounts(&mounts, &cgroup)?))
        }
    }
}

/// Like `open` against an arbitrary root (fake cgroupfs trees in tests, or a cgroup2 mounted
/// elsewhere). v2: `root` is the hierarchy root. v1: `root` holds one directory per hierarchy
/// (root/memory, root/cpu, ...).
pub fn open_at(
    root: &Path,
    version: Version,
    cgroups_path: Option<&str>,
    container_id: &str,
) -> Result<Box<dyn Manager>> {
    let cgroup = CgroupPath::parse(cgroups_path, container_id)?;
    match version {
        Version::V2 => {
            let own = path::own_v2_path(&path::own_cgroups());
            let dir = cgroup.dir_in(root, Path::new("/"), &own);
            Ok(Box::new(V2Manager::new(root.to_path_buf(), dir)))
        }
        Version::V1 => Ok(Box::new(V1Manager::from_root(root, &cgroup)?)),
    }
}

/// rdma.max lines, identical in v1 and v2: "mlx4_0 hca_handle=2 hca_object=2000".
fn set_rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (device, limit) in devices {
        let num = |v: Option<u32>| v.map_or_else(|| "max".to_string(), |v| v.to_string());
        let line = format!(
            "{device} hca_handle={} hca_object={}",
            num(limit.hca_handles()),
            num(limit.hca_objects())
        );
        fsutil::set(dir, "rdma.max", &line, "rdma")?;
    }
    Ok(())
}
