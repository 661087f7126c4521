//! A spare cgroup v1 for a launcher (see `process::launcher`): made ahead of time with the
//! launcher in it, so the container's process is cloned into its cgroups instead of moved (a
//! move waits for an RCU grace period on v1). Either named for the container it will hold (its
//! creator knows the id ahead: nothing to do at create) or `berth-spare-<pid>`, renamed to the
//! container's at create.

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
    /// On a hybrid host, its directory in the cgroup2 hierarchy, the launcher in it too (only
    /// for a spare named for its container: a cgroup2 directory cannot be renamed).
    unified: Option<PathBuf>,
}

impl SpareCgroup {
    /// mkdir `cgroups_path` (relative to our own cgroups) in every v1 hierarchy and move `pid`
    /// into each; with `join_unified`, in a hybrid host's cgroup2 hierarchy too (best effort).
    /// Spares whose launcher is gone (a shim killed with SIGKILL) are removed first.
    pub(crate) fn prepare(cgroups_path: &str, pid: i32, join_unified: bool) -> Result<SpareCgroup> {
        if host_version() != Version::V1 {
            return Err(Error::Other(
                "spare cgroups are for cgroup v1 hosts (v2 clones into the cgroup)".into(),
            ));
        }
        let cgroup = CgroupPath::parse(Some(cgroups_path), "")?;
        let manager = V1Manager::from_mounts(&path::host_mounts()?, &cgroup)?;
        let mut spare = SpareCgroup {
            dirs: manager.hierarchy_dirs(),
            unified: None,
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
        if let (Ok(()), true, Some(u)) = (&made, join_unified, manager.unified_dir()) {
            // Not fatal: the container's process is then cloned into it (CLONE_INTO_CGROUP).
            match fsutil::create_dirs(u)
                .and_then(|_| fsutil::write(u, "cgroup.procs", &pid.to_string()))
            {
                Ok(()) => spare.unified = Some(u.to_path_buf()),
                Err(e) => {
                    tracing::debug!("spare cgroup: hybrid cgroup2 hierarchy not joined: {e}");
                    let _ = std::fs::remove_dir(u);
                }
            }
        }
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

    /// Its cgroup2 directory on a hybrid host, when the launcher is in it.
    pub fn unified(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// What is left to remove once the v1 directories were taken over: its cgroup2 directory
    /// unless that was taken too.
    pub fn left_after_adoption(self, unified_taken: bool) -> Option<SpareCgroup> {
        (!unified_taken && self.unified.is_some()).then_some(SpareCgroup {
            dirs: Vec::new(),
            unified: self.unified,
        })
    }

    /// rmdir the spare's directories (its launcher must have exited).
    pub(crate) fn remove(&self) {
        for d in self.dirs.iter().chain(self.unified.iter()) {
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
