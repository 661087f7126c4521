//! Creating the container's processes: clone into namespaces, set up, wait for start, exec;
//! and joining a running container for `exec`.

pub mod child;
pub mod exec;
pub mod launcher;
mod listener;
pub mod spawn;
pub mod sync;

use std::os::fd::OwnedFd;

pub use exec::{exec_in, ExecOptions};
pub use launcher::Launcher;
pub use spawn::{spawn, spawn_sandbox, Sandboxed, SpawnOptions, Spawned};

/// What a spare shim made while it waited for a container, so that creating one does less.
#[derive(Debug, Default)]
pub struct MadeAhead {
    /// cgroup v1: a launcher in a spare cgroup (see `launcher`).
    pub launcher: Option<Launcher>,
    /// A network namespace with its loopback up (see `namespaces::make_network`), used by a
    /// container that would create one.
    pub network: Option<OwnedFd>,
}
