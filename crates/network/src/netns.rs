//! Naming a network namespace (a process's or a bind-mounted file) and running code inside it.
//!
//! `setns(CLONE_NEWNET)` changes only the calling thread, so work for another namespace runs on a
//! short-lived scoped thread that enters it and then exits: the caller's thread never moves, and
//! sockets created there stay bound to the namespace after the thread is gone.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// A container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetnsRef {
    /// The namespace of a running process (`/proc/<pid>/ns/net`).
    Pid(u32),
    /// A namespace file, e.g. `/run/netns/<name>` or a bind mount the engine keeps.
    Path(PathBuf),
}

impl NetnsRef {
    pub fn path(&self) -> PathBuf {
        match self {
            NetnsRef::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
            NetnsRef::Path(p) => p.clone(),
        }
    }

    pub fn open(&self) -> Result<File> {
        let path = self.path();
        File::open(&path).ctx(|| format!("open network namespace {}", path.display()))
    }
}

/// Run `f` on a thread that has joined the namespace `ns`.
pub fn run_in<T, F>(ns: &NetnsRef, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> Result<T> + Send,
{
    let file = ns.open()?;
    let path = ns.path();
    std::thread::scope(|s| {
        s.spawn(move || {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                .ctx(|| format!("enter network namespace {}", path.display()))?;
            f()
        })
        .join()
        .map_err(|_| {
            Error::io(
                format!("work in network namespace {}", ns.path().display()),
                std::io::Error::other("thread panicked"),
            )
        })?
    })
}
