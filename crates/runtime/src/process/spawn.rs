//! The parent's side of starting a container: clone into new namespaces, map ids, create the
//! cgroup and place the child in it, run the createRuntime hooks when asked, and wait until the
//! child is ready.
//!
//! Without a user namespace the child does not wait for the parent to begin its mounts: it
//! waits only before it needs its cgroup (the cgroup namespace and cgroupfs mounts). Creating
//! the cgroup and moving a process into it (on cgroup v1 that waits for an RCU grace period,
//! milliseconds) then overlap the child's mount setup instead of preceding it.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType as Ns, LinuxResources};

use super::child::{self, ChildConfig};
use super::sync::{self, Channel, Msg};
use crate::cgroups::Manager;
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
    /// The cgroup's limits, applied by the parent after clone (see the module's note).
    pub resources: Option<&'a LinuxResources>,
}

/// A container process that finished its setup and waits for start (or runs, without a fifo).
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    /// Still open: in `run`, EOF on it tells the program was exec'ed.
    pub channel: Channel,
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

/// Start the container's process. `state_json(pid)` renders the state given to hooks.
pub fn spawn(
    bundle: &Bundle,
    cgroup: &dyn Manager,
    opts: SpawnOptions,
    state_json: &dyn Fn(i32) -> Vec<u8>,
) -> Result<Spawned> {
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref();
    let plan = NamespacePlan::from_spec(linux)?;
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
    };

    let pid = match clone_process(plan.clone_flags())? {
        None => {
            drop(parent_end);
            child::run(&cfg, &child_end)
        }
        Some(pid) => pid,
    };
    drop(child_end);
    drop(opts.console_socket);
    drop(opts.exec_fifo);

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
        cgroup.create(opts.resources)?;
        cgroup.add_process(pid.as_raw())?;
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
    let setup = || -> Result<()> {
        loop {
            match parent_end.recv()? {
                Some(Msg::RunCreateHooks) => {
                    if let Some(h) = hooks {
                        // prestart is deprecated but still honoured, at the same point as runc.
                        hooks::run_hooks(
                            "prestart",
                            h.prestart().as_deref().unwrap_or(&[]),
                            &state,
                        )?;
                        hooks::run_hooks(
                            "createRuntime",
                            h.create_runtime().as_deref().unwrap_or(&[]),
                            &state,
                        )?;
                    }
                    parent_end.send(&Msg::HooksDone)?;
                }
                Some(Msg::Ready) => return Ok(()),
                Some(Msg::SeccompListener(fd)) => {
                    super::listener::forward(spec, pid.as_raw(), &state, fd)?;
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
    };
    setup()?;
    guard.disarm();
    Ok(Spawned {
        pid,
        channel: parent_end,
    })
}

/// Kills and reaps a half-started child unless disarmed: a failed create leaves no process behind.
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
