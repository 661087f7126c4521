//! Starting an extra process in a running container (`exec`): join its namespaces, its cgroup and
//! its root, apply the process's security settings, execve.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType as Ns, Process};

use super::child::{
    become_namespace_root, close_inherited_fds, cstrings, enter_cwd, resolve_executable,
};
use super::spawn::{clone_process, KillOnDrop, Spawned};
use super::sync::{self, Channel, Msg};
use crate::cgroups::Manager;
use crate::error::{Context, Error, Result};
use crate::namespaces::{self, clone_flag, proc_name};
use crate::security::{self, seccomp};
use crate::tty;

pub struct ExecOptions<'a> {
    /// The container's spec (its seccomp listener settings apply to exec'ed processes too).
    pub spec: &'a oci_spec::runtime::Spec,
    /// The container's OCI state, for a seccomp agent.
    pub container_state: serde_json::Value,
    pub seccomp: Option<&'a seccomp::Program>,
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: i32,
}

/// Start `process` inside the container whose init is `init_pid`. Returns once the program was
/// exec'ed (or failed to be).
pub fn exec_in(
    init_pid: i32,
    process: &Process,
    cgroup: &dyn Manager,
    opts: ExecOptions,
) -> Result<Spawned> {
    let nss = namespaces::namespaces_of(init_pid)?;
    // The container's root as its init sees it: after setns(mnt) we chroot there.
    let root = open(
        format!("/proc/{init_pid}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open the root of process {init_pid}"))?;
    // pid and time namespaces apply to children: enter them here, before forking.
    for (t, fd) in nss.iter().filter(|(t, _)| matches!(t, Ns::Pid | Ns::Time)) {
        setns(fd.as_fd(), clone_flag(*t)).ctx(|| format!("join {} namespace", proc_name(*t)))?;
    }
    let (parent_end, child_end) = sync::pair()?;
    let console = opts.console_socket.as_ref().map(|f| f.as_raw_fd());

    let pid = match clone_process(CloneFlags::empty())? {
        None => {
            drop(parent_end);
            let err = match child(
                &nss,
                &root,
                process,
                opts.seccomp,
                console,
                opts.preserve_fds,
                &child_end,
            ) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            let _ = child_end.send(&Msg::Failed(err.to_string()));
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(127) }
        }
        Some(pid) => pid,
    };
    drop(child_end);
    drop(opts.console_socket);
    let guard = KillOnDrop(Some(pid));
    cgroup.add_process(pid.as_raw())?;
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .map_err(|e| Error::config("process.oomScoreAdj", e.to_string()))?;
    }
    parent_end.send(&Msg::Go(Vec::new()))?;
    // The channel closes on execve (CLOEXEC): EOF means the program runs.
    match parent_end.recv()? {
        None => {}
        Some(Msg::Failed(m)) => return Err(Error::ChildFailed(m)),
        Some(m) => {
            return Err(Error::Other(format!(
                "unexpected message {m:?} from the exec process"
            )))
        }
    }
    guard.disarm();
    Ok(Spawned {
        pid,
        channel: parent_end,
        mount_ns: None,
    })
}

fn child(
    nss: &[(Ns, OwnedFd)],
    root: &OwnedFd,
    process: &Process,
    seccomp: Option<&seccomp::Program>,
    console: Option<RawFd>,
    preserve_fds: i32,
    chan: &Channel,
) -> Result<Infallible> {
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )
    .ctx(|| "reset signal mask".to_string())?;
    match chan.recv()? {
        Some(Msg::Go(_)) => {}
        other => return Err(Error::Other(format!("expected Go, got {other:?}"))),
    }
    for (t, fd) in nss.iter().filter(|(t, _)| !matches!(t, Ns::Pid | Ns::Time)) {
        setns(fd.as_fd(), clone_flag(*t)).ctx(|| format!("join {} namespace", proc_name(*t)))?;
        if *t == Ns::User {
            become_namespace_root()?;
        }
    }
    nix::unistd::fchdir(root).ctx(|| "enter the container's root".to_string())?;
    nix::unistd::chroot(".").ctx(|| "chroot into the container's root".to_string())?;

    if process.terminal().unwrap_or(false) {
        let sock = console
            .ok_or_else(|| Error::Console("terminal requested but no console socket".into()))?;
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        tty::setup_exec_console(sock, size)?;
        let _ = nix::unistd::close(sock);
    }
    let argv = cstrings(process.args().as_deref().unwrap_or(&[]), "process.args")?;
    let envp = cstrings(process.env().as_deref().unwrap_or(&[]), "process.env")?;
    let program = resolve_executable(process)?;
    enter_cwd(process)?;
    close_inherited_fds(preserve_fds)?;
    security::finalize_process_with_listener(process, seccomp, None, &mut |fd| {
        chan.send_listener(fd.as_fd())
    })?;
    let err = nix::unistd::execve(&program, &argv, &envp).unwrap_err();
    Err(Error::sys(
        format!("exec {}", program.to_string_lossy()),
        err,
    ))
}
