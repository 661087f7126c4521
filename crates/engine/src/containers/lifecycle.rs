//! start, stop, kill, wait, remove, and the monitors that learn about exits from shims;
//! `recover` re-adopts the shims of a previous berthd.

use std::sync::Arc;
use std::time::Duration;

use berth_shim::{ExitStatus, Request};
use nix::sys::signal::Signal;

use super::model::{ContainerRecord, Status};
use super::shim::{self, Launch};
use super::spec;
use super::WaitState;
use crate::error::{Error, Result};
use crate::{ids, Engine};

/// The files of one container's shim (see `Engine::shim_files`).
pub(crate) struct ShimFiles {
    pub socket: std::path::PathBuf,
    pub exit_file: std::path::PathBuf,
    pub log: std::path::PathBuf,
    pub runtime_root: std::path::PathBuf,
    pub bundle: std::path::PathBuf,
}

/// Docker's wait conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(Error::InvalidParameter(format!(
                "invalid condition: {other:?}"
            ))),
        }
    }
}

/// Parse "SIGTERM", "TERM", "15".
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| Error::InvalidParameter(format!("Invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::InvalidParameter(format!("Invalid signal: {s}")))
}

/// The shim's answer to a Wait: the exit, once the container is gone (None: no shim, or it died
/// without one). A failed request is tried again while the shim's socket is there: taking a
/// live container for gone would lose track of its shim.
async fn wait_for_exit(socket: &std::path::Path) -> Option<berth_shim::ExitStatus> {
    const TRIES: u32 = 5;
    for attempt in 1..=TRIES {
        match shim::request(socket, &Request::Wait).await {
            Ok((reply, _)) => return reply.exit,
            Err(e) if attempt < TRIES && socket.exists() => {
                tracing::debug!("wait on shim {}: {e}; again", socket.display());
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            Err(_) => return None,
        }
    }
    None
}

/// The record of a container whose process is let go now.
fn mark_started(rec: &mut ContainerRecord) {
    rec.state.status = Status::Running;
    rec.state.manually_stopped = false;
    rec.state.started_at = ids::now_rfc3339();
    rec.state.finished_at.clear();
    rec.state.exit_code = 0;
}

impl Engine {
    /// By id, name or unique id prefix; 404 with Docker's wording.
    pub fn container(&self, key: &str) -> Result<ContainerRecord> {
        self.db()
            .find_container(key)?
            .ok_or_else(|| Error::no_such_container(key))
    }

    pub fn list_containers(&self, all: bool) -> Result<Vec<ContainerRecord>> {
        let mut v: Vec<ContainerRecord> = self
            .db()
            .containers()?
            .into_iter()
            .filter(|c| all || c.state.running())
            .collect();
        v.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(v)
    }

    fn save(&self, rec: &ContainerRecord) -> Result<()> {
        self.db().update_container(rec)
    }

    fn rootfs(&self, id: &str) -> std::path::PathBuf {
        self.container_dir(id).join("rootfs")
    }

    /// `scratch`: the writable layer is thrown away with the container (`--rm`), so it is
    /// mounted volatile and its unmount does not wait for a sync of the data root's filesystem.
    pub(crate) fn mount_rootfs(&self, id: &str, scratch: bool) -> Result<()> {
        let target = self.rootfs(id);
        let _ = unmount(&target);
        let m = self.snapshots.mounts(id)?;
        if scratch {
            m.mount_scratch(&target)?;
        } else {
            m.mount(&target)?;
        }
        Ok(())
    }

    pub(crate) fn unmount_rootfs(&self, id: &str) {
        let _ = unmount(&self.rootfs(id));
    }

    /// Docker's copy-up: an empty volume mounted over image content starts with a copy of it.
    fn fill_new_volumes(&self, rec: &ContainerRecord) -> Result<()> {
        for m in &rec.spec.host.mounts {
            if m.kind != super::model::MountKind::Volume {
                continue;
            }
            let dir = self.volume_dir(&m.source);
            let from = self.rootfs(&rec.id).join(m.target.trim_start_matches('/'));
            if crate::volumes::is_empty_dir(&dir)
                && from.is_dir()
                && !crate::volumes::is_empty_dir(&from)
            {
                crate::volumes::copy_tree(&from, &dir).map_err(|e| {
                    Error::internal(format!("copy {} into volume {}", m.target, m.source), e)
                })?;
            }
        }
        Ok(())
    }

    /// The bundle of the container's process: its rootfs mounted, new volumes filled,
    /// config.json written. Blocking; on failure the rootfs is unmounted again.
    pub(crate) fn prepare_bundle(&self, r: &ContainerRecord) -> Result<()> {
        self.prepare_bundle_with(r, false)
    }

    /// `prepare_bundle`; `mounted`: the rootfs is mounted already (for a spare made warm),
    /// and the container has no volumes to fill.
    pub(crate) fn prepare_bundle_with(&self, r: &ContainerRecord, mounted: bool) -> Result<()> {
        let made = (|| -> Result<()> {
            if !mounted {
                self.mount_rootfs(&r.id, r.spec.host.auto_remove)?;
                self.fill_new_volumes(r)?;
            }
            let mut cfg = spec::config(r, &self.rootfs(&r.id), &|v| self.volume_dir(v))
                .map_err(Error::InvalidParameter)?;
            self.net_prepare_spec(r, &mut cfg)?;
            let bytes =
                serde_json::to_vec(&cfg).map_err(|e| Error::internal("encode config.json", e))?;
            berth_image::overwrite::overwrite(
                &self.container_dir(&r.id).join("config.json"),
                &bytes,
            )
            .map_err(|e| Error::internal("write config.json", e))
        })();
        made.inspect_err(|_| self.unmount_rootfs(&r.id))
    }

    /// Where the shim of container `rec` keeps its files.
    pub(crate) fn shim_files(&self, rec: &ContainerRecord) -> ShimFiles {
        ShimFiles {
            socket: self.shim_socket(&rec.id),
            exit_file: self.exit_file(&rec.id),
            log: std::path::PathBuf::from(&rec.log_path),
            runtime_root: self.runtime_root(),
            bundle: self.container_dir(&rec.id),
        }
    }

    /// What a shim is started with for container `rec` (see `shim::Launch`).
    pub(crate) fn launch_of<'a>(
        &'a self,
        rec: &'a ContainerRecord,
        files: &'a ShimFiles,
        start_held: bool,
    ) -> Result<Launch<'a>> {
        let (log_max_size, log_max_files) = rec
            .spec
            .host
            .log_rotation()
            .map_err(Error::InvalidParameter)?;
        Ok(Launch {
            binary: &self.shim_binary,
            id: &rec.id,
            bundle: &files.bundle,
            runtime_root: &files.runtime_root,
            socket: &files.socket,
            log: &files.log,
            exit_file: &files.exit_file,
            tty: rec.spec.tty,
            stdin: rec.spec.open_stdin,
            stdin_once: rec.spec.stdin_once,
            log_max_size,
            log_max_files,
            start_held,
        })
    }

    /// Make sure a shim holds a (created or running) process for the container.
    pub(crate) async fn ensure_task(self: &Arc<Self>, rec: &mut ContainerRecord) -> Result<()> {
        self.ensure_task_with(rec, false).await
    }

    /// `start_held`: a new process is started at once, its output held for the next attach
    /// (the caller has marked `rec` started; it is saved with the process).
    async fn ensure_task_with(
        self: &Arc<Self>,
        rec: &mut ContainerRecord,
        start_held: bool,
    ) -> Result<()> {
        if rec.state.task || (rec.state.running() && !start_held) {
            return Ok(());
        }
        let id = rec.id.clone();
        if !self.containers.take_bundle_ready(&id) {
            let engine = self.clone();
            let r = rec.clone();
            tokio::task::spawn_blocking(move || engine.prepare_bundle(&r))
                .await
                .map_err(|e| Error::internal("prepare bundle", e))??;
        }

        let files = self.shim_files(rec);
        let _ = std::fs::remove_file(&files.exit_file);
        let launched = shim::launch(
            &self.launch_of(rec, &files, start_held)?,
            self.spares.take_for(&id),
        )
        .await;
        self.spares.refill_soon();
        let pid = match launched {
            Ok(p) => p,
            Err(e) => {
                self.unmount_rootfs(&id);
                return Err(e);
            }
        };
        rec.state.task = true;
        rec.state.pid = pid;
        self.save(rec)?;
        self.spawn_monitor(id.clone());
        // The process exists (not started yet): give it its network.
        if self.net_to_attach(rec).is_none() {
            return Ok(());
        }
        let engine = self.clone();
        let r = rec.clone();
        let attached = tokio::task::spawn_blocking(move || engine.net_attach(&r, pid))
            .await
            .map_err(|e| Error::internal("attach network", e))
            .and_then(|r| r);
        if let Err(e) = attached {
            let _ = shim::call(
                &self.shim_socket(&id),
                &Request::Kill {
                    signal: 9,
                    all: true,
                },
            )
            .await;
            return Err(e);
        }
        Ok(())
    }

    /// Set the container's process up now, in the background: the client said it starts the
    /// container at once (berth's `run`), so the attach and start that follow find it made.
    /// `start`: the client attaches next, so start it too, its output held for that attach
    /// (not with a tty, whose size the client sets after the start, nor with a network that
    /// is joined once the process exists). Errors are left to the attach and start to report:
    /// they try again and answer with it.
    pub fn prepare_task_ahead(self: &Arc<Self>, id: &str, start: bool) {
        let engine = self.clone();
        let id = id.to_string();
        let mut task = Box::pin(async move {
            let lock = engine.containers.op_lock(&id);
            let _g = lock.lock().await;
            let Ok(mut rec) = engine.container(&id) else {
                return;
            };
            // Links to containers not running: the start reports it (see attach).
            if rec.state.task || rec.state.running() || engine.links_unready(&rec) {
                return;
            }
            let start = start && !rec.spec.tty && engine.net_to_attach(&rec).is_none();
            if start {
                mark_started(&mut rec);
            }
            match engine.ensure_task_with(&mut rec, start).await {
                Ok(()) if start => {
                    engine.emit(&rec, "start", &[]);
                    engine.arm_healthcheck(&rec, true);
                }
                Ok(()) => {}
                Err(e) => tracing::debug!("prepare {id} ahead of its start: {e}"),
            }
        });
        // Run here up to its first real wait (the lock is free, the flags go to a spare shim
        // at once), so the container is being set up while the create's answer goes out; a
        // spawned task would only start after that answer. The runtime polls it from there
        // (with its own waker: the one used here does nothing).
        let mut first = std::task::Context::from_waker(std::task::Waker::noop());
        if std::future::Future::poll(task.as_mut(), &mut first).is_pending() {
            tokio::spawn(task);
        }
    }

    pub async fn start_container(self: &Arc<Self>, key: &str) -> Result<()> {
        self.start_with(key, None).await.map(|_| ())
    }

    /// `attach`: Some(stdin) to attach as the container starts (its stream is returned).
    pub(crate) async fn start_with(
        self: &Arc<Self>,
        key: &str,
        attach: Option<bool>,
    ) -> Result<Option<tokio::net::UnixStream>> {
        let rec = self.container(key)?;
        let r = self.start_locked(&rec.id, attach).await;
        // Docker's: a container meant to go when it stops also goes when it cannot start
        // (`docker run --rm` waits for that removal after a failed start).
        if rec.spec.host.auto_remove && matches!(&r, Err(e) if !matches!(e, Error::NotModified(_)))
        {
            if let Err(e) = self.remove_container(&rec.id, true).await {
                tracing::warn!("auto-remove {} after its failed start: {e}", rec.id);
            }
        }
        r
    }

    async fn start_locked(
        self: &Arc<Self>,
        id: &str,
        attach: Option<bool>,
    ) -> Result<Option<tokio::net::UnixStream>> {
        let lock = self.containers.op_lock(id);
        let _g = lock.lock().await;
        let mut rec = self.container(id)?;
        if rec.state.running() {
            // Started for this attach (`Prepare::StartForAttach`), or by someone else: the
            // attach just hooks up.
            if let Some(stdin) = attach {
                return self.attach_shim(id, stdin).await.map(Some);
            }
            return Err(Error::NotModified("container already started".into()));
        }
        self.ensure_task(&mut rec).await?;
        // Recorded as running *before* the process is let go: a process that exits at once is
        // then seen by the exit monitor as a started container's exit (exit code, restart
        // policy), and nothing here writes over what the monitor records afterwards.
        mark_started(&mut rec);
        self.save(&rec)?;
        let req = match attach {
            Some(stdin) => Request::Attach { stdin, start: true },
            None => Request::Start,
        };
        let stream = match shim::call(&self.shim_socket(id), &req).await {
            Ok((_, stream)) => stream,
            Err(e) => {
                let _ = shim::call(
                    &self.shim_socket(id),
                    &Request::Kill {
                        signal: 9,
                        all: true,
                    },
                )
                .await;
                return Err(e);
            }
        };
        self.emit(&rec, "start", &[]);
        self.arm_healthcheck(&rec, true);
        Ok(attach.map(|_| stream))
    }

    pub(crate) fn emit(&self, rec: &ContainerRecord, action: &str, extra: &[(&str, &str)]) {
        let mut attrs: Vec<(&str, &str)> = vec![("name", &rec.name), ("image", &rec.spec.image)];
        attrs.extend_from_slice(extra);
        self.events.emit("container", action, &rec.id, &attrs);
    }

    fn spawn_monitor(self: &Arc<Self>, id: String) {
        let engine = self.clone();
        tokio::spawn(async move {
            let socket = engine.shim_socket(&id);
            let exit = wait_for_exit(&socket).await;
            let exit = exit
                .or_else(|| shim::read_exit_file(&engine.exit_file(&id)))
                .unwrap_or_else(|| ExitStatus {
                    code: 255,
                    finished_at: ids::now_rfc3339(),
                    oom_killed: false,
                });
            // On a blocking thread: it writes the record and unmounts, and the waiters it wakes
            // then run at once on a free worker instead of queueing behind that work. An
            // auto-removed container goes right there too (no hop to another task).
            let _ = tokio::task::spawn_blocking(move || {
                if engine.on_exit(&id, exit.clone()) {
                    let removed =
                        tokio::runtime::Handle::current().block_on(engine.remove_exited(&id));
                    if let Err(e) = removed {
                        tracing::warn!("auto-remove {id}: {e}");
                        engine.record_exit_after_failed_removal(&id, &exit);
                    }
                }
            })
            .await;
        });
    }

    /// Record an exit; true: the container is to be auto-removed now (the caller does it; its
    /// record was left as it was, to be deleted).
    #[must_use]
    fn on_exit(self: &Arc<Self>, id: &str, exit: ExitStatus) -> bool {
        let Ok(mut rec) = self.container(id) else {
            return false;
        };
        let was_started = rec.state.running();
        rec.state.status = if was_started || rec.state.status != Status::Created {
            Status::Exited
        } else {
            Status::Created
        };
        rec.state.task = false;
        rec.state.pid = 0;
        if was_started {
            rec.state.exit_code = exit.code;
            rec.state.finished_at = exit.finished_at.clone();
            rec.state.oom_killed = exit.oom_killed;
        }
        let restart = was_started
            && rec.spec.host.restart_policy.restarts_after(
                exit.code,
                rec.restart_count,
                rec.state.manually_stopped,
            );
        if restart {
            rec.state.status = Status::Restarting;
            rec.restart_count += 1;
        }
        let removing = rec.spec.host.auto_remove && was_started && !restart;
        // A record about to be deleted is not written first, and an auto-removed container's
        // rootfs goes after its `removed` waiters are answered.
        if !removing {
            if let Err(e) = self.save(&rec) {
                tracing::error!("record the exit of {id}: {e}");
            }
            // Not under a reader of the mounted rootfs (an export right after a kill).
            let rootfs_lock = self.containers.rootfs_lock(id);
            let _unmounting = rootfs_lock.write().unwrap_or_else(|e| e.into_inner());
            self.unmount_rootfs(id);
        }
        self.net_detach(id);
        let _ = std::fs::remove_file(self.exit_file(id));
        // The shim removes its socket; one killed outright leaves it behind.
        let _ = std::fs::remove_file(self.shim_socket(id));
        if was_started {
            let code = exit.code.to_string();
            if exit.oom_killed {
                self.emit(&rec, "oom", &[]);
            }
            self.emit(&rec, "die", &[("exitCode", &code)]);
        }
        self.containers.notify(id, |w| {
            w.exits += 1;
            w.code = exit.code;
        });
        if restart {
            self.schedule_restart(rec.id.clone(), rec.restart_count - 1);
            return false;
        }
        removing
    }

    /// An auto-removed container whose removal failed: its exit is recorded after all.
    fn record_exit_after_failed_removal(&self, id: &str, exit: &ExitStatus) {
        if let Ok(mut rec) = self.container(id) {
            rec.state.status = Status::Exited;
            rec.state.task = false;
            rec.state.pid = 0;
            rec.state.exit_code = exit.code;
            rec.state.finished_at = exit.finished_at.clone();
            rec.state.oom_killed = exit.oom_killed;
            if let Err(e) = self.save(&rec) {
                tracing::error!("record the exit of {id}: {e}");
            }
        }
    }

    /// `on_exit` from async code: an auto-removal goes to a task of its own.
    fn on_exit_in_task(self: &Arc<Self>, id: &str, exit: ExitStatus) {
        if self.on_exit(id, exit.clone()) {
            let engine = self.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                if let Err(e) = engine.remove_exited(&id).await {
                    tracing::warn!("auto-remove {id}: {e}");
                    engine.record_exit_after_failed_removal(&id, &exit);
                }
            });
        }
    }

    /// Start again after Docker's backoff (100 ms, doubling, at most 10 s here).
    fn schedule_restart(self: &Arc<Self>, id: String, count: i64) {
        let engine = self.clone();
        let delay = Duration::from_millis(100u64.saturating_mul(1 << count.clamp(0, 7) as u64))
            .min(Duration::from_secs(10));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // Stopped or removed meanwhile: leave it.
            match engine.container(&id) {
                Ok(r) if r.state.status == Status::Restarting && !r.state.manually_stopped => {}
                _ => return,
            }
            if let Err(e) = engine.start_container(&id).await {
                tracing::warn!("restart {id}: {e}");
            }
        });
    }

    /// Mark a user's stop or kill, so restart policies hold off.
    fn mark_manually_stopped(&self, id: &str) -> Result<()> {
        let mut rec = self.container(id)?;
        rec.state.manually_stopped = true;
        self.save(&rec)
    }

    /// Register a wait for `cond` now (so no exit after this call is missed) and return the
    /// future that resolves to the exit code.
    pub fn wait_container(
        self: &Arc<Self>,
        key: &str,
        cond: WaitCondition,
    ) -> Result<std::pin::Pin<Box<dyn std::future::Future<Output = i32> + Send>>> {
        let rec = self.container(key)?;
        let mut rx = self.containers.watcher(&rec.id);
        let start = *rx.borrow();
        // The record may have changed between the lookup and the subscription.
        let rec = match self.db().find_container(&rec.id)? {
            Some(r) => r,
            None if cond == WaitCondition::Removed => {
                return Ok(Box::pin(std::future::ready(start.code)))
            }
            None => return Err(Error::no_such_container(key)),
        };
        if cond == WaitCondition::NotRunning && !rec.state.running() {
            return Ok(Box::pin(std::future::ready(rec.state.exit_code)));
        }
        Ok(Box::pin(async move {
            loop {
                let w: WaitState = *rx.borrow_and_update();
                match cond {
                    WaitCondition::Removed if w.removed => return w.code,
                    WaitCondition::NotRunning | WaitCondition::NextExit
                        if w.exits > start.exits =>
                    {
                        return w.code
                    }
                    _ => {}
                }
                if rx.changed().await.is_err() {
                    return w.code;
                }
            }
        }))
    }

    pub async fn kill_container(self: &Arc<Self>, key: &str, signal: Option<&str>) -> Result<()> {
        let rec = self.container(key)?;
        if !rec.state.running() {
            return Err(Error::Conflict(format!(
                "Cannot kill container: {key}: Container {} is not running",
                rec.id
            )));
        }
        let sig = parse_signal(signal.unwrap_or("SIGKILL"))?;
        if matches!(sig, Signal::SIGKILL | Signal::SIGTERM | Signal::SIGINT) {
            self.mark_manually_stopped(&rec.id)?;
        }
        self.emit(&rec, "kill", &[("signal", &(sig as i32).to_string())]);
        shim::call(
            &self.shim_socket(&rec.id),
            &Request::Kill {
                signal: sig as i32,
                all: false,
            },
        )
        .await?;
        Ok(())
    }

    /// Signal (StopSignal or SIGTERM), wait `timeout` seconds (-1: forever), then SIGKILL.
    pub async fn stop_container(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let id = self.container(key)?.id;
        let lock = self.containers.op_lock(&id);
        let _g = lock.lock().await;
        let mut rec = self.container(&id)?;
        if rec.state.status == Status::Restarting {
            // Waiting for its next start: cancel that.
            rec.state.manually_stopped = true;
            rec.state.status = Status::Exited;
            return self.save(&rec);
        }
        if !rec.state.running() {
            return Err(Error::NotModified("container already stopped".into()));
        }
        let sig = parse_signal(
            signal
                .or(rec.spec.stop_signal.as_deref())
                .unwrap_or("SIGTERM"),
        )?;
        let timeout = timeout.or(rec.spec.stop_timeout).unwrap_or(10);
        self.mark_manually_stopped(&rec.id)?;
        self.emit(&rec, "kill", &[("signal", &(sig as i32).to_string())]);
        self.stop_task(&rec, sig, timeout).await?;
        self.emit(&rec, "stop", &[]);
        Ok(())
    }

    async fn stop_task(
        self: &Arc<Self>,
        rec: &ContainerRecord,
        sig: Signal,
        timeout: i64,
    ) -> Result<()> {
        let mut rx = self.containers.watcher(&rec.id);
        let before = rx.borrow_and_update().exits;
        let socket = self.shim_socket(&rec.id);
        let exited = |rx: &mut tokio::sync::watch::Receiver<WaitState>| {
            let mut rx = rx.clone();
            async move {
                while rx.borrow_and_update().exits <= before {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }
        };
        // The shim may already be gone (it exited between the lookup and now): that is fine.
        let _ = shim::call(
            &socket,
            &Request::Kill {
                signal: sig as i32,
                all: false,
            },
        )
        .await;
        if timeout >= 0 {
            let wait = exited(&mut rx);
            if tokio::time::timeout(Duration::from_secs(timeout as u64), wait)
                .await
                .is_ok()
            {
                return Ok(());
            }
            let _ = shim::call(
                &socket,
                &Request::Kill {
                    signal: 9,
                    all: true,
                },
            )
            .await;
        }
        // The monitor records the exit; should the shim be gone without one (killed outright
        // while berthd was down, say), don't wait forever: record the kill ourselves.
        loop {
            if tokio::time::timeout(Duration::from_secs(10), exited(&mut rx))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if shim::call(&socket, &Request::State).await.is_err() {
                tracing::warn!(
                    "container {}: its shim is gone and no exit was recorded; recording a kill",
                    rec.id
                );
                let exit = shim::read_exit_file(&self.exit_file(&rec.id)).unwrap_or(ExitStatus {
                    code: 137,
                    finished_at: ids::now_rfc3339(),
                    oom_killed: false,
                });
                self.on_exit_in_task(&rec.id, exit);
                return Ok(());
            }
        }
    }

    pub async fn remove_container(self: &Arc<Self>, key: &str, force: bool) -> Result<()> {
        self.remove_container_with(key, force, false).await
    }

    /// `rm [-f] [-v]`: with `volumes`, the container's anonymous volumes go too.
    pub async fn remove_container_with(
        self: &Arc<Self>,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        self.remove(key, force, volumes, false).await
    }

    /// Auto-remove a container whose exit was just handled (its record, not rewritten, may
    /// still say running: there is nothing to stop).
    async fn remove_exited(self: &Arc<Self>, id: &str) -> Result<()> {
        self.remove(id, true, false, true).await
    }

    async fn remove(
        self: &Arc<Self>,
        key: &str,
        force: bool,
        volumes: bool,
        exited: bool,
    ) -> Result<()> {
        let id = self.container(key)?.id;
        let lock = self.containers.op_lock(&id);
        let _g = lock.lock().await;
        let rec = match self.db().find_container(&id)? {
            Some(r) => r,
            // Removed meanwhile (auto-remove racing a `rm -f`).
            None => return Ok(()),
        };
        if rec.state.running() && !force {
            return Err(Error::Conflict(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                rec.name
            )));
        }
        if (rec.state.running() || rec.state.task) && !exited {
            self.stop_task(&rec, Signal::SIGKILL, 0).await?;
        } else if !exited && self.shim_socket(&id).exists() {
            // A shim still listening holds a process the record lost track of (a wait on it
            // that failed): it must not live on, unseen, after its container's files went.
            let kill = Request::Kill {
                signal: 9,
                all: true,
            };
            if shim::call(&self.shim_socket(&id), &kill).await.is_ok() {
                tracing::warn!("container {id}: killed the process of a shim it had lost track of");
            }
        }
        let _ = std::fs::remove_file(self.exit_file(&id));
        self.db().delete_container(&id)?;
        self.spares.release(&id);
        self.net_forget(&id);
        if volumes || rec.spec.host.auto_remove {
            for m in rec.spec.host.mounts.iter().filter(|m| m.anonymous) {
                if let Err(e) = self.remove_volume(&m.source, true) {
                    tracing::warn!("remove volume {}: {e}", m.source);
                }
            }
        }
        self.emit(&rec, "destroy", &[]);
        self.containers.notify(&id, |w| w.removed = true);
        self.containers.forget(&id);
        // Its start's work is over (see `Spares::refill_soon`).
        self.spares.refill();
        // The files go after the record, so `removed` waiters (`run --rm`) are answered without
        // waiting for the unmount (on a blocking thread: the woken waiters run meanwhile);
        // files a killed daemon left here are collected at startup. An auto-removal has no
        // one else waiting: it unmounts with CPU time nothing else wants.
        let engine = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let _idle = exited.then(super::shim::IdleThread::enter);
            engine.discard_container_files(&id)
        })
        .await;
        Ok(())
    }

    /// Unmount the rootfs; the writable layer and the container's directory leave at once and
    /// are deleted in the background (see trash).
    pub(crate) fn discard_container_files(&self, id: &str) {
        self.unmount_rootfs(id);
        if let Ok(layer) = self.snapshots.active_path(id) {
            if let Err(e) = self.trash.discard(&layer) {
                tracing::warn!("remove {}: {e}", layer.display());
            }
        }
        let dir = self.container_dir(id);
        if let Err(e) = self.trash.discard(&dir) {
            tracing::warn!("remove {}: {e}", dir.display());
        }
    }

    /// Directories of containers the database no longer has (a daemon killed between deleting
    /// the record and discarding the files, or during a create): gone too.
    pub(crate) fn collect_orphans(&self) -> Result<()> {
        let known: std::collections::HashSet<String> =
            self.db().containers()?.into_iter().map(|r| r.id).collect();
        let dir = self.cfg.data_root.join("containers");
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::internal(format!("list {}", dir.display()), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str() else { continue };
            if ids::is_full_id(id) && !known.contains(id) {
                tracing::info!("removing the files of container {id}, which no longer exists");
                self.discard_container_files(id);
            }
        }
        Ok(())
    }

    pub async fn resize_container(
        self: &Arc<Self>,
        key: &str,
        height: u16,
        width: u16,
    ) -> Result<()> {
        let rec = self.container(key)?;
        if !rec.state.running() && !rec.state.task {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        shim::call(
            &self.shim_socket(&rec.id),
            &Request::Resize {
                height,
                width,
                exec_id: None,
            },
        )
        .await?;
        Ok(())
    }

    /// After a berthd restart: containers whose shim still answers are re-adopted; the others
    /// get the exit status their shim left (or 255 when it left none).
    pub(crate) async fn recover(self: &Arc<Self>) -> Result<()> {
        let recs = self.db().containers()?;
        for mut rec in recs {
            if !rec.state.running() && !rec.state.task {
                // A restart the previous daemon had scheduled, or a policy that starts with it.
                let pending = rec.state.status == Status::Restarting && !rec.state.manually_stopped;
                if pending
                    || rec
                        .spec
                        .host
                        .restart_policy
                        .starts_with_daemon(rec.state.manually_stopped)
                {
                    let engine = self.clone();
                    let id = rec.id.clone();
                    tokio::spawn(async move {
                        if let Err(e) = engine.start_container(&id).await {
                            tracing::warn!("start {id} (restart policy): {e}");
                        }
                    });
                }
                continue;
            }
            let socket = self.shim_socket(&rec.id);
            match shim::request(&socket, &Request::State).await {
                Ok((reply, _)) if reply.ok && reply.exit.is_none() => {
                    tracing::info!("re-adopted container {} (pid {})", rec.id, reply.pid);
                    if reply.running && rec.state.status != Status::Running {
                        rec.state.status = Status::Running;
                        self.save(&rec)?;
                    }
                    self.spawn_monitor(rec.id.clone());
                    self.arm_healthcheck(&rec, false);
                }
                Ok(_) => {
                    // Exiting right now: its monitor will get the status.
                    self.spawn_monitor(rec.id.clone());
                }
                Err(_) => {
                    let exit =
                        shim::read_exit_file(&self.exit_file(&rec.id)).unwrap_or_else(|| {
                            ExitStatus {
                                code: 255,
                                finished_at: ids::now_rfc3339(),
                                oom_killed: false,
                            }
                        });
                    self.on_exit_in_task(&rec.id, exit);
                }
            }
        }
        Ok(())
    }
}

/// Lazy unmount: a process still inside (an exec racing the exit) must not keep us stuck.
fn unmount(target: &std::path::Path) -> nix::Result<()> {
    nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_docker() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("kill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn wait_conditions() {
        assert_eq!(WaitCondition::parse("").unwrap(), WaitCondition::NotRunning);
        assert_eq!(
            WaitCondition::parse("removed").unwrap(),
            WaitCondition::Removed
        );
        assert!(WaitCondition::parse("x").is_err());
    }
}
