//! The parent's side of starting a container: clone into new namespaces, map ids, create the
//! cgroup and place the child in it, run the createRuntime hooks when asked, and wait until the
//! child is ready.
//!
//! Without a user namespace the child does not wait for the parent to begin its mounts: it
//! waits only before it needs its cgroup (the cgroup namespace and cgroupfs mounts). Creating
//! the cgroup and moving a process into it (on cgroup v1 that waits for an RCU grace period,
//! milliseconds) then overlap the child's mount setup instead of preceding it.
//!
//! On a pure cgroup v2 host the cgroup is instead created before the clone and the child is
//! born in it with clone3(CLONE_INTO_CGROUP) (Linux >= 5.7): nothing is moved, so the global
//! cgroup_threadgroup_rwsem is never taken for writing (which waits for an RCU grace period
//! unless cgroup2 is mounted with favordynmods). Kernels without it take the path above.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType as Ns, LinuxResources};

use super::child::{self, ChildConfig};
use super::launcher::Launcher;
use super::sync::{self, Channel, Msg};
use crate::cgroups::{Manager, Version};
use crate::error::{Error, Result};
use crate::hooks;
use crate::namespaces::{self, NamespacePlan};
use crate::security::seccomp;
use crate::spec::Bundle;

pub struct SpawnOptions<'a> {
    pub seccomp: Option<&'a seccomp::Program>,
    pub console_socket: Option<OwnedFd>,
    pub exec_fifo: Option<OwnedFd>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    pub init: Option<bool>,
    /// The cgroup's limits, applied by the parent after clone (v2: before, see the module's note).
    pub resources: Option<&'a LinuxResources>,
    /// Made ahead by a spare shim: a launcher (v1), a network namespace.
    pub ahead: super::MadeAhead,
}

/// A container process that finished its setup and waits for start (or runs, without a fifo).
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    /// Still open: in `run`, EOF on it tells the program was exec'ed.
    pub channel: Channel,
    /// The container's new mount namespace, opened as soon as it existed: while this is held,
    /// the exit of the container's last process does not unmount everything in it (an RCU
    /// grace period, ~0.5–1 ms), whoever holds it lets go once the exit is reported.
    pub mount_ns: Option<OwnedFd>,
}

/// fork-like clone(2): no new stack, the child continues here on a copy-on-write copy of ours.
/// Only sound in a single-threaded process, which the runtime is.
pub(crate) fn clone_process(flags: CloneFlags) -> Result<Option<Pid>> {
    // SAFETY: raw clone with a NULL stack behaves like fork; we are single-threaded.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match rc {
        -1 => Err(Error::sys(
            format!("clone({flags:?})"),
            nix::errno::Errno::last(),
        )),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// The kernel's struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2, Linux 5.7).
#[repr(C)]
#[derive(Default)]
pub(crate) struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// libc's constant is a deprecated, overflowing c_int.
pub(crate) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Why `clone3_into` did not clone.
#[derive(Debug)]
pub(crate) enum Clone3Error {
    /// The kernel has no clone3 or no CLONE_INTO_CGROUP: use clone + cgroup.procs instead.
    Unsupported(nix::errno::Errno),
    Failed(Error),
}

/// Like `clone_process`, but the child starts in the cgroup v2 directory `cgroup`.
pub(crate) fn clone3_into(
    flags: CloneFlags,
    cgroup: BorrowedFd,
) -> std::result::Result<Option<Pid>, Clone3Error> {
    use nix::errno::Errno;
    let fd = u64::try_from(cgroup.as_raw_fd())
        .map_err(|_| Clone3Error::Failed(Error::Other("negative cgroup fd".into())))?;
    let args = CloneArgs {
        // The namespace flags fit in 32 bits: the bit pattern is kept as is.
        flags: u64::from(flags.bits() as u32) | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: fd,
        ..Default::default()
    };
    // SAFETY: stack 0 makes clone3 behave like fork, as in clone_process; we are
    // single-threaded. `args` outlives the call and its size is passed with it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        // ENOSYS: no clone3 (< 5.3, or a seccomp filter); E2BIG: struct larger than the
        // kernel knows (< 5.7); EINVAL/EOPNOTSUPP: CLONE_INTO_CGROUP unknown or refused;
        // EPERM: an outer seccomp profile that denies clone3 itself (old Docker profiles do).
        // A real permission problem fails again, and is reported, on the plain clone.
        -1 => Err(match Errno::last() {
            e @ (Errno::ENOSYS
            | Errno::E2BIG
            | Errno::EINVAL
            | Errno::EOPNOTSUPP
            | Errno::EPERM) => Clone3Error::Unsupported(e),
            e => Clone3Error::Failed(Error::sys(
                format!("clone3({flags:?} | CLONE_INTO_CGROUP)"),
                e,
            )),
        }),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// Start the container's process. `state_json(pid)` renders the state given to hooks.
pub fn spawn(
    bundle: &Bundle,
    cgroup: &dyn Manager,
    opts: SpawnOptions,
    state_json: &dyn Fn(i32) -> Vec<u8>,
) -> Result<Spawned> {
    let mut begun = begin(bundle, cgroup, opts, state_json, false)?;
    begun.wait_until_ready(&bundle.spec)?;
    Ok(begun.into_spawned())
}

/// A container process set up but for its process (`ChildConfig::sandbox`): it waits for
/// `Sandboxed::finish`. Killed when dropped unfinished.
#[derive(Debug)]
pub struct Sandboxed(Begun);

/// Start a sandbox: `spawn` up to the container's process (see `ChildConfig::sandbox`).
pub fn spawn_sandbox(
    bundle: &Bundle,
    cgroup: &dyn Manager,
    opts: SpawnOptions,
    state_json: &dyn Fn(i32) -> Vec<u8>,
) -> Result<Sandboxed> {
    let mut begun = begin(bundle, cgroup, opts, state_json, true)?;
    match begun.wait_setup(&bundle.spec)? {
        Reached::Sandboxed => Ok(Sandboxed(begun)),
        Reached::Ready => Err(Error::Other(
            "the sandbox's process did not wait for its process".into(),
        )),
    }
}

impl Sandboxed {
    pub fn pid(&self) -> Pid {
        self.0.pid
    }

    /// Send the sandbox its `process` and wait until it is ready, as `spawn` would. `spec` is
    /// the container's final spec (its seccomp listener, if any, is told of this process).
    pub fn finish(mut self, spec: &oci_spec::runtime::Spec) -> Result<Spawned> {
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::config("process", "missing: nothing to run"))?;
        let json =
            serde_json::to_vec(process).map_err(|e| Error::config("process", e.to_string()))?;
        if json.len() >= sync::MAX_MSG {
            return Err(Error::config("process", "too large to send to a sandbox"));
        }
        self.0.channel.send(&Msg::Process(json))?;
        self.0.wait_until_ready(spec)?;
        Ok(self.0.into_spawned())
    }
}

/// Where `Begun::wait_setup` stopped.
enum Reached {
    Ready,
    Sandboxed,
}

/// A cloned container process whose setup is under way.
#[derive(Debug)]
struct Begun {
    pid: Pid,
    channel: Channel,
    mount_ns: Option<OwnedFd>,
    state: Vec<u8>,
    guard: KillOnDrop,
}

impl Begun {
    /// Serve the child's requests (hooks, a seccomp listener) until it is ready or sandboxed.
    fn wait_setup(&mut self, spec: &oci_spec::runtime::Spec) -> Result<Reached> {
        loop {
            match self.channel.recv()? {
                Some(Msg::RunCreateHooks) => {
                    if let Some(h) = spec.hooks().as_ref() {
                        // prestart is deprecated but still honoured, at the same point as runc.
                        hooks::run_hooks(
                            "prestart",
                            h.prestart().as_deref().unwrap_or(&[]),
                            &self.state,
                        )?;
                        hooks::run_hooks(
                            "createRuntime",
                            h.create_runtime().as_deref().unwrap_or(&[]),
                            &self.state,
                        )?;
                    }
                    self.channel.send(&Msg::HooksDone)?;
                }
                Some(Msg::Ready) => return Ok(Reached::Ready),
                Some(Msg::Sandboxed) => return Ok(Reached::Sandboxed),
                Some(Msg::SeccompListener(fd)) => {
                    super::listener::forward(spec, self.pid.as_raw(), &self.state, fd)?;
                }
                Some(Msg::Failed(m)) => return Err(Error::ChildFailed(m)),
                Some(m) => {
                    return Err(Error::Other(format!(
                        "unexpected message {m:?} from the container process"
                    )))
                }
                None => {
                    return Err(Error::ChildFailed(
                        "the container process exited during setup".into(),
                    ))
                }
            }
        }
    }

    fn wait_until_ready(&mut self, spec: &oci_spec::runtime::Spec) -> Result<()> {
        match self.wait_setup(spec)? {
            Reached::Ready => Ok(()),
            Reached::Sandboxed => Err(Error::Other(
                "the container process waits for a process it was never to get".into(),
            )),
        }
    }

    fn into_spawned(self) -> Spawned {
        let Begun {
            pid,
            channel,
            mount_ns,
            guard,
            ..
        } = self;
        guard.disarm();
        Spawned {
            pid,
            channel,
            mount_ns,
        }
    }
}

/// Clone the container's process and place it (ids, cgroup); its setup goes on meanwhile.
fn begin(
    bundle: &Bundle,
    cgroup: &dyn Manager,
    opts: SpawnOptions,
    state_json: &dyn Fn(i32) -> Vec<u8>,
    sandbox: bool,
) -> Result<Begun> {
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref();
    let mut plan = NamespacePlan::from_spec(linux)?;
    if let Some(net) = opts.ahead.network {
        plan.use_made_network(net);
    }
    // Namespaces that apply to our children must be entered by us, before clone.
    if plan.creates(Ns::Time) {
        if let Some(l) = linux {
            namespaces::unshare_time(l)?;
        }
    }
    plan.join_types(&[Ns::Pid, Ns::Time])?;

    let hooks = spec.hooks().as_ref();
    let parent_hooks = hooks.is_some_and(|h| {
        h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
            || h.prestart().as_ref().is_some_and(|v| !v.is_empty())
    });
    let (parent_end, child_end) = sync::pair()?;
    let cfg = ChildConfig {
        bundle,
        plan: &plan,
        seccomp: opts.seccomp,
        console_socket: opts.console_socket.as_ref().map(|f| f.as_raw_fd()),
        exec_fifo: opts.exec_fifo.as_ref().map(|f| f.as_raw_fd()),
        no_pivot: opts.no_pivot,
        preserve_fds: opts.preserve_fds,
        init: opts.init,
        parent_hooks,
        sandbox,
    };

    // v2: create the cgroup now and clone straight into it (see the module's note). A
    // failure here is cleaned up by the caller, as one in `place` would be.
    let precreated = if cgroup.version() == Version::V2 {
        cgroup.create(opts.resources)?;
        Some(open_cgroup_dir(cgroup)?)
    } else {
        None
    };
    let flags = plan.clone_flags();
    let mut placed = false;
    // v1: cloned by the launcher from its spare cgroup, renamed to ours. Not when we must
    // enter namespaces for our children first (the launcher's are its own).
    let launched = match opts.ahead.launcher {
        Some(launcher)
            if cgroup.version() == Version::V1
                && !plan.creates(Ns::Time)
                && !plan.joins(Ns::Pid)
                && !plan.joins(Ns::Time) =>
        {
            let parent_fd = parent_end.0.as_raw_fd();
            launch(launcher, cgroup, flags, &mut || {
                // SAFETY: in the new process: its copy of the parent's end, which it must not
                // hold (the parent's death would not be an EOF); run never returns.
                unsafe { libc::close(parent_fd) };
                child::run(&cfg, &child_end);
            })?
        }
        _ => None,
    };
    let cloned = match (launched, &precreated) {
        (Some(pid), _) => {
            placed = true;
            Some(pid)
        }
        (None, Some((dir, fd))) => match clone3_into(flags, fd.as_fd()) {
            Ok(r) => {
                placed = true;
                if r.is_some() {
                    tracing::debug!("cloned into cgroup {}", dir.display());
                }
                r
            }
            Err(Clone3Error::Unsupported(e)) => {
                tracing::debug!("clone3(CLONE_INTO_CGROUP): {e}; cloning, then moving");
                clone_process(flags)?
            }
            Err(Clone3Error::Failed(e)) => return Err(e),
        },
        (None, None) => clone_process(flags)?,
    };
    let created = precreated.is_some();
    drop(precreated);
    let pid = match cloned {
        None => {
            drop(parent_end);
            child::run(&cfg, &child_end)
        }
        Some(pid) => pid,
    };
    drop(child_end);
    drop(opts.console_socket);
    drop(opts.exec_fifo);
    // While the child sets itself up (a short program may be gone soon after).
    let mount_ns = plan
        .creates(Ns::Mount)
        .then(|| std::fs::File::open(format!("/proc/{pid}/ns/mnt")).ok())
        .flatten()
        .map(OwnedFd::from);

    let mut guard = KillOnDrop(Some(pid));
    let place = || -> Result<Vec<u8>> {
        if plan.creates(Ns::User) {
            let l = linux.ok_or_else(|| Error::config("linux", "missing"))?;
            namespaces::write_id_mappings(
                pid.as_raw(),
                l.uid_mappings().as_deref().unwrap_or(&[]),
                l.gid_mappings().as_deref().unwrap_or(&[]),
            )?;
        }
        if !created {
            cgroup.create(opts.resources)?;
        }
        if !placed {
            cgroup.add_process(pid.as_raw())?;
        }
        if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
            std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
                .map_err(|e| Error::config("process.oomScoreAdj", e.to_string()))?;
        }
        let state = state_json(pid.as_raw());
        parent_end.send(&Msg::Go(state.clone()))?;
        Ok(state)
    };
    let state = match place() {
        Ok(state) => state,
        // The child works meanwhile: when it failed first (and so, say, left nothing to move
        // into the cgroup), its own message is the one that explains.
        Err(e) => {
            guard.kill_now();
            return Err(match parent_end.recv() {
                Ok(Some(Msg::Failed(m))) => Error::ChildFailed(m),
                _ => e,
            });
        }
    };
    Ok(Begun {
        pid,
        channel: parent_end,
        mount_ns,
        state,
        guard,
    })
}

/// Clone the container's process from `launcher` in its spare cgroup, named for the container
/// or renamed to the container's; on a hybrid host it is born in the cgroup2 directory too
/// (the launcher's own, or by clone3's CLONE_INTO_CGROUP). None when the spare does not fit
/// (another cgroup parent): the caller clones as usual.
fn launch(
    mut launcher: Launcher,
    cgroup: &dyn Manager,
    flags: CloneFlags,
    child: &mut dyn FnMut(),
) -> Result<Option<Pid>> {
    let Some(spare) = launcher.cgroup() else {
        return Ok(None);
    };
    let adopted = match cgroup.adopt(spare) {
        Ok(Some(adopted)) => adopted,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::debug!("spare cgroup not taken over: {e}");
            return Ok(None);
        }
    };
    // The directories are the container's now (removed with it on failure).
    launcher.forget_cgroup(adopted.spare_unified_taken);
    let cgroup2 = adopted.clone_into.as_ref().and_then(|dir| {
        nix::fcntl::open(
            dir.as_path(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| tracing::warn!("hybrid cgroup2 hierarchy skipped: {}: {e}", dir.display()))
        .ok()
        .map(|fd| (dir, fd))
    });
    let launched =
        launcher.clone_child(flags, cgroup2.as_ref().map(|(_, fd)| fd.as_fd()), child)?;
    match &cgroup2 {
        Some((dir, _)) if !launched.into_cgroup2 => {
            // A kernel without CLONE_INTO_CGROUP: join cgroup2 as `add_process` would.
            if let Err(e) = std::fs::write(dir.join("cgroup.procs"), launched.pid.to_string()) {
                tracing::warn!("hybrid cgroup2 hierarchy not joined: {e}");
            }
        }
        _ => tracing::debug!("launched {} in its cgroups", launched.pid),
    }
    Ok(Some(launched.pid))
}

/// The v2 cgroup's directory and an fd on it for clone3's `cgroup` (close-on-exec).
fn open_cgroup_dir(cgroup: &dyn Manager) -> Result<(std::path::PathBuf, OwnedFd)> {
    let dir = cgroup
        .dirs()
        .into_iter()
        .next()
        .ok_or_else(|| Error::Other("cgroup v2 manager without a directory".into()))?;
    let fd = nix::fcntl::open(
        &dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {}", dir.display()), e))?;
    Ok((dir, fd))
}

/// Kills and reaps a half-started child unless disarmed: a failed create leaves no process behind.
#[derive(Debug)]
pub(crate) struct KillOnDrop(pub Option<Pid>);

impl KillOnDrop {
    pub fn disarm(mut self) {
        self.0 = None;
    }

    /// Kill and reap now (what drop would do).
    pub fn kill_now(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup2 mount of this host (/sys/fs/cgroup, or /sys/fs/cgroup/unified when hybrid).
    fn cgroup2_mount() -> Option<std::path::PathBuf> {
        let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
        mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| std::path::PathBuf::from(f[1]))
        })
    }

    #[test]
    fn clone3_into_starts_the_child_in_the_cgroup() {
        let Some(mount) = cgroup2_mount().filter(|_| nix::unistd::geteuid().is_root()) else {
            eprintln!("skipped: needs root and a cgroup2 mount");
            return;
        };
        let name = format!("berth-clone3-test-{}", std::process::id());
        let dir = mount.join(&name);
        std::fs::create_dir(&dir).expect("mkdir test cgroup");
        let fd = nix::fcntl::open(
            &dir,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .expect("open test cgroup");
        let child = match clone3_into(CloneFlags::empty(), fd.as_fd()) {
            // The test harness is multi-threaded: the child only waits to be killed.
            Ok(None) => loop {
                // SAFETY: pause is async-signal-safe.
                unsafe { libc::pause() };
            },
            Ok(Some(pid)) => Some(pid),
            Err(Clone3Error::Unsupported(e)) => {
                eprintln!("skipped: kernel without CLONE_INTO_CGROUP ({e})");
                None
            }
            Err(Clone3Error::Failed(e)) => {
                let _ = std::fs::remove_dir(&dir);
                panic!("clone3_into: {e}");
            }
        };
        let Some(pid) = child else {
            let _ = std::fs::remove_dir(&dir);
            return;
        };
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        KillOnDrop(Some(pid)).kill_now();
        let _ = std::fs::remove_dir(&dir);
        assert!(
            cgroup.lines().any(|l| l == format!("0::/{name}")),
            "child's /proc/PID/cgroup: {cgroup}"
        );
        assert_eq!(procs.trim(), pid.to_string());
    }
}
