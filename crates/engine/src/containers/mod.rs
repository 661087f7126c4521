//! Containers: records in the database, one shim per live container.

pub mod archive;
pub mod changes;
pub mod create;
pub mod exec;
pub mod health;
pub mod lifecycle;
pub mod logs;
pub mod model;
pub mod ops;
pub mod seccomp;
pub mod shim;
pub(crate) mod spare_dirs;
pub mod spec;
pub mod stream;
pub mod user;
pub(crate) mod warm;

use std::sync::Arc;

use tokio::sync::watch;

use crate::{lock, Map};

/// What waiters watch: how many times the container exited, the last code, whether it is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitState {
    pub exits: u64,
    pub code: i32,
    pub removed: bool,
}

/// In-memory companions of container records: wait channels, per-container operation locks
/// and exec sessions.
#[derive(Default)]
pub struct Registry {
    watch: Map<watch::Sender<WaitState>>,
    locks: Map<Arc<tokio::sync::Mutex<()>>>,
    /// Readers of a running container's mounted rootfs (export, cp, diff) against the unmount
    /// when it exits (see `rootfs_lock`).
    rootfs: Map<Arc<std::sync::RwLock<()>>>,
    pub(crate) execs: Map<exec::ExecRecord>,
    /// Containers whose bundle (mounted rootfs, config.json) was made at create, for the start
    /// that follows (see `Engine::prepare_task_ahead`).
    bundles_ready: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Registry {
    pub fn watcher(&self, id: &str) -> watch::Receiver<WaitState> {
        let mut m = lock(&self.watch);
        m.entry(id.to_string())
            .or_insert_with(|| watch::channel(WaitState::default()).0)
            .subscribe()
    }

    pub fn notify(&self, id: &str, f: impl FnOnce(&mut WaitState)) {
        let mut m = lock(&self.watch);
        let tx = m
            .entry(id.to_string())
            .or_insert_with(|| watch::channel(WaitState::default()).0);
        tx.send_modify(f);
    }

    pub(crate) fn mark_bundle_ready(&self, id: &str) {
        lock(&self.bundles_ready).insert(id.to_string());
    }

    pub(crate) fn bundle_is_ready(&self, id: &str) -> bool {
        lock(&self.bundles_ready).contains(id)
    }

    /// Was the bundle made ahead? (Asked once: the next start makes it again.)
    pub(crate) fn take_bundle_ready(&self, id: &str) -> bool {
        lock(&self.bundles_ready).remove(id)
    }

    pub fn forget(&self, id: &str) {
        lock(&self.bundles_ready).remove(id);
        lock(&self.watch).remove(id);
        lock(&self.locks).remove(id);
        lock(&self.rootfs).remove(id);
        lock(&self.execs).retain(|_, e| e.container_id != id);
    }

    /// Held for reading while a container's mounted rootfs is read in place (`with_rootfs`),
    /// for writing by the unmount at its exit, which the exit handler does without the
    /// operation lock: an export right after a `kill` must not find the rootfs unmounted under
    /// it, half-read.
    pub fn rootfs_lock(&self, id: &str) -> Arc<std::sync::RwLock<()>> {
        lock(&self.rootfs)
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// Serialises start/stop/remove of one container.
    pub fn op_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.locks).entry(id.to_string()).or_default().clone()
    }
}
