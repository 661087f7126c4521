//! Container lifecycle: create, start, run, state, kill, delete, pause, resume, exec, ps, list.
//! This is the library API the engine calls in-process and the CLI wraps.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};
use serde::Serialize;

use crate::cgroups::{self, Manager};
use crate::console::LocalConsole;
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::process::{self, ExecOptions, SpawnOptions, Spawned};
use crate::security::seccomp;
use crate::spec::Bundle;
use crate::state::{self, ContainerState, StateDir, Status};
use crate::tty;

/// Annotation asking for a tini-like init as PID 1 (the engine's `--init`); value "group" also
/// forwards signals to the child's whole process group.
pub const INIT_ANNOTATION: &str = "io.berth.init";

/// The runtime, rooted at its state directory.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
    /// Use MS_MOVE + chroot instead of pivot_root (ramfs roots).
    pub no_pivot: bool,
}

#[derive(Debug, Default)]
pub struct CreateOptions {
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
    /// `exec` only: run the process without the container's seccomp filter (Docker's
    /// `exec --privileged`).
    pub no_seccomp: bool,
    /// `create` only: the process runs its program as soon as it is set up, not at `start`
    /// (no exec fifo; the poststart hooks run before create returns). For a caller that would
    /// start it right away (a shim holding the output for its first client).
    pub start: bool,
}

/// runc's `state` output.
#[derive(Debug, Clone, Serialize)]
pub struct StateReport {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::HashMap<String, String>>,
}

/// A loaded container: its persisted state, its directory and its cgroup.
pub struct Container {
    pub state: ContainerState,
    pub dir: StateDir,
    pub cgroup: Box<dyn Manager>,
    /// Its mount namespace, held since its create (by `create_held`'s caller, see
    /// `Spawned::mount_ns`); None for a container loaded from its state.
    pub mount_ns: Option<OwnedFd>,
}

impl Container {
    pub fn status(&self) -> Status {
        if !state::process_alive(&self.state) {
            return Status::Stopped;
        }
        if self.dir.fifo_path().exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn report(&self) -> StateReport {
        let status = self.status();
        StateReport {
            oci_version: self.state.spec.version().clone(),
            id: self.state.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.state.pid
            },
            status,
            bundle: self.state.bundle.clone(),
            rootfs: self.state.rootfs.clone(),
            created: self.state.created.clone(),
            owner: self.state.owner.clone(),
            annotations: self.state.spec.annotations().clone(),
        }
    }

    /// The OCI state JSON given to hooks.
    pub fn hook_state(&self, status: Status) -> Vec<u8> {
        hook_state_json(
            &self.state.spec,
            &self.state.id,
            self.state.pid,
            status,
            &self.state.bundle,
        )
    }

    /// Write the state file (what `state`, `list`, `exec` and the other commands read).
    pub fn save_state(&self) -> Result<()> {
        self.dir.save(&self.state)
    }

    /// `start` for a container held since its create (a shim's): no state file is read.
    pub fn start(&self) -> Result<()> {
        if !(state::process_alive(&self.state) && self.dir.fifo_path().exists()) {
            self.require("start", "created", &[Status::Created])?;
        }
        signal_start(&self.dir, &self.state)
    }

    /// `delete` of this container (a shim's, held since its create: no state file is read).
    pub fn delete(self, force: bool) -> Result<()> {
        match self.status() {
            Status::Stopped => {}
            // A created container was never started: it can go (runc does the same).
            Status::Created => kill_and_wait(&self)?,
            s if force => {
                let _ = s;
                kill_and_wait(&self)?
            }
            s => {
                return Err(Error::BadState {
                    id: self.state.id.clone(),
                    status: s.to_string(),
                    action: "delete",
                    wanted: "stopped (or use --force)",
                })
            }
        }
        self.cgroup.destroy()?;
        self.dir.remove()?;
        if let Some(h) = self
            .state
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().as_deref())
        {
            if let Err(e) = hooks::run_hooks("poststop", h, &self.hook_state(Status::Stopped)) {
                tracing::warn!("{e}");
            }
        }
        Ok(())
    }

    fn require(&self, action: &'static str, wanted: &'static str, ok: &[Status]) -> Result<Status> {
        let status = self.status();
        if ok.contains(&status) {
            Ok(status)
        } else {
            Err(Error::BadState {
                id: self.state.id.clone(),
                status: status.to_string(),
                action,
                wanted,
            })
        }
    }
}

pub(crate) fn hook_state_json(
    spec: &Spec,
    id: &str,
    pid: i32,
    status: Status,
    bundle: &Path,
) -> Vec<u8> {
    let v = serde_json::json!({
        "ociVersion": spec.version(),
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": spec.annotations().clone().unwrap_or_default(),
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Let the created process go (one byte through its exec fifo), then run poststart hooks.
fn signal_start(dir: &StateDir, state: &ContainerState) -> Result<()> {
    let fifo = dir.fifo_path();
    // Non-blocking: a live process holds the fifo open for reading, so this opens at once; one
    // that died (killed between its create and this start, not yet reaped) leaves no reader,
    // and a blocking open would wait forever (ENXIO instead).
    let f = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => Error::Other(format!(
                "container {}: its process is gone (nothing waits on its exec fifo)",
                state.id
            )),
            _ => Error::io(format!("open {}", fifo.display()), e),
        })?;
    std::io::Write::write_all(&mut &f, b"0")
        .ctx(|| "signal start through the exec fifo".to_string())?;
    fs::remove_file(&fifo).ctx(|| format!("remove {}", fifo.display()))?;
    run_poststart_hooks(state);
    Ok(())
}

/// The spec: a failing poststart hook is logged, the container keeps running.
fn run_poststart_hooks(state: &ContainerState) {
    if let Some(h) = state
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().as_deref())
    {
        let hook_state = hook_state_json(
            &state.spec,
            &state.id,
            state.pid,
            Status::Running,
            &state.bundle,
        );
        if let Err(e) = hooks::run_hooks("poststart", h, &hook_state) {
            tracing::warn!("{e}");
        }
    }
}

/// The user running the runtime, as runc's state names it. uid 0 is "root" without asking the
/// user database (NSS: nscd, nsswitch.conf, /etc/passwd), which costs a shim's create ~0.5 ms.
fn owner() -> String {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return "root".into();
    }
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// A bundle loaded for a create, and what its process is spawned with.
pub(crate) struct CreatePlan {
    pub bundle: Bundle,
    pub cgroups_path: Option<String>,
    pub seccomp: Option<seccomp::Program>,
    pub resources: Option<oci_spec::runtime::LinuxResources>,
    /// `Some(kill_group)`: a built-in init runs as PID 1 (see `INIT_ANNOTATION`).
    pub init: Option<bool>,
    pub terminal: bool,
}

impl CreatePlan {
    /// What the process is spawned with, for `runtime`'s create with `opts`.
    pub(crate) fn spawn_options(
        &self,
        runtime: &Runtime,
        opts: &CreateOptions,
        console_socket: Option<OwnedFd>,
        exec_fifo: Option<OwnedFd>,
        ahead: process::MadeAhead,
    ) -> SpawnOptions<'_> {
        SpawnOptions {
            seccomp: self.seccomp.as_ref(),
            console_socket,
            exec_fifo,
            no_pivot: runtime.no_pivot,
            preserve_fds: opts.preserve_fds,
            init: self.init,
            resources: self.resources.as_ref(),
            ahead,
        }
    }
}

/// The state of a container whose process `pid` was just created.
pub(crate) fn created_state(
    id: &str,
    pid: i32,
    bundle: Bundle,
    cgroups_path: Option<String>,
) -> ContainerState {
    ContainerState {
        id: id.to_string(),
        pid,
        pid_start_time: state::proc_stat(pid).map(|s| s.start_time).unwrap_or(0),
        bundle: bundle.dir,
        rootfs: bundle.rootfs,
        created: state::now_rfc3339(),
        owner: owner(),
        cgroups_path,
        spec: bundle.spec,
    }
}

/// What a create does once its process is made: the state file (unless its caller writes it
/// later), the pid file, and the poststart hooks of a container created running.
pub(crate) fn finish_create(
    st: &ContainerState,
    dir: &StateDir,
    opts: &CreateOptions,
    save_state: bool,
) -> Result<()> {
    if save_state {
        dir.save(st)?;
    }
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, st.pid)?;
    }
    if opts.start {
        run_poststart_hooks(st);
    }
    Ok(())
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    state::write_atomic(path, pid.to_string().as_bytes(), 0o644)
}

/// Removes what a failed create made (state dir, cgroup), unless disarmed.
pub(crate) struct CreateCleanup<'a> {
    pub dir: &'a StateDir,
    pub cgroup: Option<&'a dyn Manager>,
    pub armed: bool,
}

impl Drop for CreateCleanup<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some(cg) = self.cgroup {
                let _ = cg.destroy();
            }
            let _ = self.dir.remove();
        }
    }
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            root: root.into(),
            no_pivot: false,
        }
    }

    fn seccomp_cache(&self) -> PathBuf {
        self.root.join(".cache").join("seccomp")
    }

    pub fn load(&self, id: &str) -> Result<Container> {
        let dir = StateDir::new(&self.root, id)?;
        let state = dir.load(id)?;
        let cgroup = cgroups::open(state.cgroups_path.as_deref(), id)?;
        Ok(Container {
            state,
            dir,
            cgroup,
            mount_ns: None,
        })
    }

    /// `create`: set everything up and leave the process waiting for `start`.
    pub fn create(&self, id: &str, bundle_dir: &Path, opts: &CreateOptions) -> Result<i32> {
        self.create_launched(id, bundle_dir, opts, process::MadeAhead::default())
    }

    /// `create`, the process cloned by `launcher` when it can (see `process::launcher`).
    pub fn create_launched(
        &self,
        id: &str,
        bundle_dir: &Path,
        opts: &CreateOptions,
        ahead: process::MadeAhead,
    ) -> Result<i32> {
        let (_, c) = self.create_inner(id, bundle_dir, opts, ahead, true)?;
        Ok(c.state.pid)
    }

    /// `create_launched`, keeping the container (state and cgroup) for whoever made it: a
    /// shim starts it, reads its cgroup and deletes it without loading the state file. That
    /// file is not written yet: the caller writes it (`Container::save_state`) once it has told
    /// whoever waits for the create (a shim: after its readiness line).
    pub fn create_held(
        &self,
        id: &str,
        bundle_dir: &Path,
        opts: &CreateOptions,
        ahead: process::MadeAhead,
    ) -> Result<Container> {
        Ok(self.create_inner(id, bundle_dir, opts, ahead, false)?.1)
    }

    /// Load the bundle and work out what its process is spawned with.
    pub(crate) fn plan_create(&self, bundle_dir: &Path) -> Result<CreatePlan> {
        let bundle = Bundle::load(bundle_dir)?;
        let process = bundle
            .spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::config("process", "missing: nothing to run"))?;
        let terminal = process.terminal().unwrap_or(false);
        let linux = bundle.spec.linux().as_ref();
        let cgroups_path = linux
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned());
        let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
            Some(profile) => Some(seccomp::compile(profile, Some(&self.seccomp_cache()))?),
            None => None,
        };
        crate::security::check(process, linux.and_then(|l| l.personality().as_ref()))?;
        // As runc: the spec's device rules are the whole story (no extra rule for the devices
        // it creates: `--device /dev/x:r` must stay read-only).
        let resources = linux.and_then(|l| l.resources().clone());
        let init = bundle
            .spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(INIT_ANNOTATION))
            .map(|v| v == "group");
        Ok(CreatePlan {
            bundle,
            cgroups_path,
            seccomp,
            resources,
            init,
            terminal,
        })
    }

    fn create_inner(
        &self,
        id: &str,
        bundle_dir: &Path,
        opts: &CreateOptions,
        ahead: process::MadeAhead,
        save_state: bool,
    ) -> Result<(Spawned, Container)> {
        let plan = self.plan_create(bundle_dir)?;
        if plan.terminal && opts.console_socket.is_none() {
            return Err(Error::Console(
                "process.terminal is true: pass --console-socket (or use `run` in the foreground)"
                    .into(),
            ));
        }
        let cgroup = cgroups::open(plan.cgroups_path.as_deref(), id)?;
        let dir = StateDir::create(&self.root, id)?;
        let mut cleanup = CreateCleanup {
            dir: &dir,
            cgroup: None,
            armed: true,
        };
        // Created by spawn (v2: before clone, v1: after; see process::spawn); removed with the
        // rest on failure.
        cleanup.cgroup = Some(cgroup.as_ref());

        let exec_fifo = if opts.start {
            None
        } else {
            Some(make_exec_fifo(&dir.fifo_path())?)
        };
        let console_socket = match &opts.console_socket {
            Some(p) if plan.terminal => Some(tty::connect_console_socket(p)?),
            _ => None,
        };
        let bundle = &plan.bundle;
        let spawned = process::spawn(
            bundle,
            cgroup.as_ref(),
            plan.spawn_options(self, opts, console_socket, exec_fifo, ahead),
            &|pid| hook_state_json(&bundle.spec, id, pid, Status::Creating, &bundle.dir),
        )?;
        let st = created_state(id, spawned.pid.as_raw(), plan.bundle, plan.cgroups_path);
        finish_create(&st, &dir, opts, save_state)?;
        cleanup.armed = false;
        drop(cleanup);
        let dir = dir.clone();
        let mut spawned = spawned;
        let mount_ns = spawned.mount_ns.take();
        Ok((
            spawned,
            Container {
                state: st,
                dir,
                cgroup,
                mount_ns,
            },
        ))
    }

    /// `start`: let a created container run its program.
    pub fn start(&self, id: &str) -> Result<()> {
        // Created means a live process and its exec fifo: the state file tells both, so the
        // common case skips finding the cgroups (the full load names the state otherwise).
        let dir = StateDir::new(&self.root, id)?;
        let state = dir.load(id)?;
        if !(state::process_alive(&state) && dir.fifo_path().exists()) {
            self.load(id)?
                .require("start", "created", &[Status::Created])?;
        }
        signal_start(&dir, &state)
    }

    /// `run`: create and start. In the foreground (detach false) wait for the program, forward
    /// signals to it, delete the container and return its exit code (128+N if killed by signal N).
    pub fn run(
        &self,
        id: &str,
        bundle_dir: &Path,
        opts: &CreateOptions,
        detach: bool,
    ) -> Result<i32> {
        let bundle_spec_terminal = Bundle::load(bundle_dir)?
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        if detach {
            self.create(id, bundle_dir, opts)?;
            self.start(id)?;
            return Ok(0);
        }
        let signals = crate::signals::ForwardedSignals::block()?;
        // A terminal without a console socket: we are the console's other end.
        let local_console;
        let opts_owned;
        let opts: &CreateOptions = if bundle_spec_terminal && opts.console_socket.is_none() {
            let console = LocalConsole::new(&self.root, id)?;
            opts_owned = CreateOptions {
                console_socket: Some(console.path.clone()),
                pid_file: opts.pid_file.clone(),
                preserve_fds: opts.preserve_fds,
                no_seccomp: opts.no_seccomp,
                start: false,
            };
            local_console = Some(console);
            &opts_owned
        } else {
            local_console = None;
            opts
        };
        let result = (|| {
            let (spawned, c) =
                self.create_inner(id, bundle_dir, opts, process::MadeAhead::default(), true)?;
            let master = match &local_console {
                Some(l) => Some(l.accept_master()?),
                None => None,
            };
            self.start(id)?;
            drop(spawned.channel);
            let status = match master {
                Some(m) => {
                    let pid = spawned.pid;
                    signals.wait_with_terminal(pid, m)?
                }
                None => signals.wait_forwarding(spawned.pid)?,
            };
            drop(c);
            Ok(status)
        })();
        drop(local_console);
        // Foreground run deletes the container whatever happened, like runc.
        let _ = self.delete(id, true);
        result
    }

    pub fn state(&self, id: &str) -> Result<StateReport> {
        Ok(self.load(id)?.report())
    }

    pub fn list(&self) -> Result<Vec<StateReport>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(format!("list {}", self.root.display()), e)),
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Ok(c) = self.load(&name) {
                out.push(c.report());
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(out)
    }

    /// `kill`: send `sig` to the container's init, or to every process in its cgroup with `all`.
    pub fn kill(&self, id: &str, sig: Signal, all: bool) -> Result<()> {
        let c = self.load(id)?;
        let status = c.require(
            "kill",
            "created, running or paused",
            &[Status::Created, Status::Running, Status::Paused],
        )?;
        if all {
            for pid in c.cgroup.pids()? {
                let _ = kill(Pid::from_raw(pid), sig);
            }
        } else {
            kill(Pid::from_raw(c.state.pid), sig)
                .ctx(|| format!("send {sig} to {}", c.state.pid))?;
        }
        // A frozen process cannot die: thaw so the signal is delivered.
        if status == Status::Paused && matches!(sig, Signal::SIGKILL | Signal::SIGTERM) {
            c.cgroup.thaw()?;
        }
        Ok(())
    }

    /// `delete`: remove a stopped container (with `force`, kill it first).
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        self.load(id)?.delete(force)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let c = self.load(id)?;
        c.require("pause", "running", &[Status::Running])?;
        c.cgroup.freeze()
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let c = self.load(id)?;
        c.require("resume", "paused", &[Status::Paused])?;
        c.cgroup.thaw()
    }

    /// Host pids of every process in the container.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let c = self.load(id)?;
        c.cgroup.pids()
    }

    pub fn stats(&self, id: &str) -> Result<cgroups::Stats> {
        self.load(id)?.cgroup.stats()
    }

    /// The OOM killer's count in the container's cgroup (what `stats` reports as
    /// memory.oom_kill, without reading every other statistic).
    pub fn oom_kills(&self, id: &str) -> Result<u64> {
        self.load(id)?.cgroup.oom_kills()
    }

    /// The OOM killer's count kept open, to read later with one pread (see `OomCounter`).
    pub fn oom_counter(&self, id: &str) -> Result<Option<crate::cgroups::OomCounter>> {
        self.load(id)?.cgroup.oom_counter()
    }

    pub fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let c = self.load(id)?;
        c.require(
            "update",
            "created, running or paused",
            &[Status::Created, Status::Running, Status::Paused],
        )?;
        c.cgroup.update(resources)
    }

    /// `exec`: run `process` in the container. Returns the new process's host pid; when not
    /// detached, waits for it and returns its exit code instead.
    pub fn exec(
        &self,
        id: &str,
        process: &Process,
        opts: &CreateOptions,
        detach: bool,
    ) -> Result<ExecResult> {
        let c = self.load(id)?;
        c.require("exec", "running", &[Status::Running, Status::Created])?;
        let terminal = process.terminal().unwrap_or(false);
        if terminal && detach && opts.console_socket.is_none() {
            return Err(Error::Console(
                "a detached exec with a terminal needs --console-socket".into(),
            ));
        }
        let profile = c
            .state
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .filter(|_| !opts.no_seccomp);
        let seccomp = match profile {
            Some(p) => Some(seccomp::compile(p, Some(&self.seccomp_cache()))?),
            None => None,
        };
        let signals = if detach {
            None
        } else {
            Some(crate::signals::ForwardedSignals::block()?)
        };
        let mut local_console = None;
        let console_socket = if terminal {
            match &opts.console_socket {
                Some(p) => Some(tty::connect_console_socket(p)?),
                None => {
                    let console = LocalConsole::new(&self.root, id)?;
                    let sock = tty::connect_console_socket(&console.path)?;
                    local_console = Some(console);
                    Some(sock)
                }
            }
        } else {
            None
        };
        let spawned = process::exec_in(
            c.state.pid,
            process,
            c.cgroup.as_ref(),
            ExecOptions {
                spec: &c.state.spec,
                container_state: serde_json::to_value(c.report()).unwrap_or_default(),
                seccomp: seccomp.as_ref(),
                console_socket,
                preserve_fds: opts.preserve_fds,
            },
        )?;
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, spawned.pid.as_raw())?;
        }
        let Some(signals) = signals else {
            return Ok(ExecResult::Started(spawned.pid.as_raw()));
        };
        let code = match local_console {
            Some(l) => {
                let master = l.accept_master()?;
                signals.wait_with_terminal(spawned.pid, master)?
            }
            None => signals.wait_forwarding(spawned.pid)?,
        };
        Ok(ExecResult::Exited(code))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ExecResult {
    Started(i32),
    Exited(i32),
}

/// SIGKILL everything in the container and wait until its init is gone.
fn kill_and_wait(c: &Container) -> Result<()> {
    let pids = c.cgroup.pids().unwrap_or_default();
    for pid in pids.iter().copied().chain(std::iter::once(c.state.pid)) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = c.cgroup.thaw();
    // Not our child (after create the parent exited): poll until the kernel has reaped it.
    for _ in 0..2000 {
        if !state::process_alive(&c.state) && c.cgroup.pids().map(|p| p.is_empty()).unwrap_or(true)
        {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err(Error::Other(format!(
        "container {:?} did not die after SIGKILL",
        c.state.id
    )))
}

/// Create the exec fifo and open it read-write: the child blocks reading it until `start` writes.
pub(crate) fn make_exec_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
        .ctx(|| format!("create {}", path.display()))?;
    open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open {}", path.display()))
}
