//! A spare cgroup v1 for a launcher (see `process::launcher`): made ahead of time with the
//! launcher in it, then renamed to a container's cgroup, so the container's process is cloned
//! into its cgroups instead of moved (a move waits for an RCU grace period on v1).

use std::path::{Path, PathBuf};

use super::path::{self, CgroupPath};
use super::v1::V1Manager;
use super::{fsutil, host_version, Version};
use crate::error::{Error, Result};

/// The name of a spare cgroup: `berth-spare-<launcher pid>` below the containers' parent.
const PREFIX: &str = "berth-spare-";

/// The spare's directory in every v1 hierarchy, the launcher already in each.
#[derive(Debug)]
pub struct SpareCgroup {
    dirs: Vec<PathBuf>,
}

impl SpareCgroup {
    /// mkdir `cgroups_path` (relative to our own cgroups) in every v1 hierarchy and move `pid`
    /// into each. Spares whose launcher is gone (a shim killed with SIGKILL) are removed first.
    pub(crate) fn prepare(cgroups_path: &str, pid: i32) -> Result<SpareCgroup> {
        if host_version() != Version::V1 {
            return Err(Error::Other(
                "spare cgroups are for cgroup v1 hosts (v2 clones into the cgroup)".into(),
            ));
        }
        let cgroup = CgroupPath::parse(Some(cgroups_path), "")?;
        let manager = V1Manager::from_mounts(&path::host_mounts()?, &cgroup)?;
        let spare = SpareCgroup {
            dirs: manager.hierarchy_dirs(),
        };
        for dir in &spare.dirs {
            if let Some(parent) = dir.parent() {
                remove_stale(parent);
            }
        }
        let made = manager.make_hierarchy_dirs().and_then(|()| {
            spare
                .dirs
                .iter()
                .try_for_each(|d| fsutil::write(d, "cgroup.procs", &pid.to_string()))
        });
        match made {
            Ok(()) => Ok(spare),
            Err(e) => {
                spare.remove();
                Err(e)
            }
        }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// rmdir the spare's directories (its launcher must have exited).
    pub(crate) fn remove(&self) {
        for d in &self.dirs {
            let _ = fsutil::remove_tree(d);
        }
    }
}

/// rmdir the spares in `parent` whose launcher no longer lives (empty, so rmdir is enough).
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid > 0 && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}
