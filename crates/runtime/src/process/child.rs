//! The container's first process, from clone() to execve().
//!
//! It runs in a forked copy of the (single-threaded) runtime, already inside the namespaces clone()
//! created. Any error is sent to the parent over the sync channel and ends the process; after
//! `Ready` the parent may be gone (create/start), so late errors also go to stderr.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType as Ns, Process, Spec};

use super::sync::{Channel, Msg};
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::namespaces::NamespacePlan;
use crate::rootfs::{self, RootfsOptions};
use crate::security::{self, seccomp};
use crate::spec::Bundle;
use crate::tty;

/// Everything the child needs; prepared by the parent before clone().
pub struct ChildConfig<'a> {
    pub bundle: &'a Bundle,
    pub plan: &'a NamespacePlan,
    pub seccomp: Option<&'a seccomp::Program>,
    /// runc's --console-socket, connected by the parent.
    pub console_socket: Option<RawFd>,
    /// The exec fifo opened O_RDWR: reading one byte from it is `start`'s go. None: start at once.
    pub exec_fifo: Option<RawFd>,
    pub no_pivot: bool,
    /// fds 3 .. 3+preserve_fds stay open in the container (runc's --preserve-fds).
    pub preserve_fds: i32,
    /// Run a tini-like init as PID 1 (Some(kill_group)), with the user's process as its child.
    pub init: Option<bool>,
    /// Ask the parent to run createRuntime/prestart hooks between mounts and pivot_root.
    pub parent_hooks: bool,
    /// Made ahead (`Runtime::create_sandbox`): once everything but the process is set up, say
    /// `Sandboxed` and run the process the parent sends instead of the spec's.
    pub sandbox: bool,
}

/// Entry point in the child. Never returns.
pub fn run(cfg: &ChildConfig, chan: &Channel) -> ! {
    let err = match setup_and_exec(cfg, chan) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    // The parent reports errors it receives; only when it is gone (after create) say it ourselves.
    if chan.send(&Msg::Failed(err.to_string())).is_err() {
        eprintln!("berth-runtime: {err}");
    }
    // SAFETY: _exit is always safe; we must not run the parent's atexit handlers or destructors.
    unsafe { libc::_exit(127) }
}

fn setup_and_exec(cfg: &ChildConfig, chan: &Channel) -> Result<Infallible> {
    // The parent blocks signals to forward them; the container starts with a clean mask.
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .ctx(|| "reset signal mask".to_string())?;
    if cfg.sandbox {
        // What `ps` and top show while it waits (its program's name once it runs).
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"berth-sandbox".as_ptr(), 0, 0, 0) };
    }
    let spec = &cfg.bundle.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing"))?;

    // The parent maps our ids, then creates our cgroup and moves us into it, then says Go. In a
    // new user namespace nothing can be done before the mapping; otherwise the mounts go ahead
    // and we wait only before the first step that needs the cgroup (see process::spawn).
    let go = std::cell::RefCell::new(None::<Vec<u8>>);
    let entered = std::cell::Cell::new(false);
    let host_cgroups = std::cell::RefCell::new(None::<String>);
    let enter_cgroup = || -> Result<()> {
        if entered.get() {
            return Ok(());
        }
        if go.borrow().is_none() {
            *go.borrow_mut() = Some(wait_for_go(chan)?);
        }
        if cfg.plan.creates(Ns::Cgroup) {
            *host_cgroups.borrow_mut() = std::fs::read_to_string("/proc/self/cgroup").ok();
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                .ctx(|| "create cgroup namespace".to_string())?;
        }
        entered.set(true);
        Ok(())
    };
    let user_ns = cfg.plan.has(Ns::User);
    if user_ns {
        *go.borrow_mut() = Some(wait_for_go(chan)?);
    }

    cfg.plan.join_types(&[Ns::User])?;
    if user_ns {
        become_namespace_root()?;
    }
    cfg.plan
        .join_types(&[Ns::Ipc, Ns::Uts, Ns::Network, Ns::Cgroup, Ns::Mount])?;
    if user_ns {
        enter_cgroup()?;
    }
    if cfg.plan.has(Ns::Uts) {
        set_names(spec)?;
    }
    if cfg.plan.creates(Ns::Network) {
        crate::namespaces::loopback_up()?;
    }
    if !cfg.plan.has(Ns::Mount) {
        return Err(Error::config(
            "linux.namespaces",
            "a mount namespace is required",
        ));
    }

    rootfs::prepare(&RootfsOptions {
        spec,
        rootfs: &cfg.bundle.rootfs,
        bundle: &cfg.bundle.dir,
        in_user_ns: cfg.plan.has(Ns::User),
        new_cgroup_ns: cfg.plan.creates(Ns::Cgroup),
        enter_cgroup: &enter_cgroup,
        host_cgroups: &|| host_cgroups.borrow().clone(),
    })?;
    enter_cgroup()?;
    let state_json = go.take().unwrap_or_default();
    if cfg.parent_hooks {
        chan.send(&Msg::RunCreateHooks)?;
        chan.expect(Msg::HooksDone)?;
    }
    let spec_hooks = spec.hooks().as_ref();
    if let Some(h) = spec_hooks.and_then(|h| h.create_container().as_deref()) {
        hooks::run_hooks("createContainer", h, &state_json)?;
    }
    rootfs::pivot(&cfg.bundle.rootfs, cfg.no_pivot)?;

    if process.terminal().unwrap_or(false) {
        let sock = cfg.console_socket.ok_or_else(|| {
            Error::Console("process.terminal is true but no console socket was given".into())
        })?;
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        tty::setup_console(sock, size)?;
        let _ = nix::unistd::close(sock);
    }
    rootfs::finalize(spec)?;

    // A sandbox's process comes now, from the create it was made for.
    let sent;
    let process = if cfg.sandbox {
        chan.send(&Msg::Sandboxed)?;
        sent = wait_for_process(chan)?;
        &sent
    } else {
        process
    };
    let argv = cstrings(process.args().as_deref().unwrap_or(&[]), "process.args")?;
    let envp = cstrings(process.env().as_deref().unwrap_or(&[]), "process.env")?;
    let program = resolve_executable(process)?;
    enter_cwd(process)?;
    close_inherited_fds(cfg.preserve_fds)?;

    // Like runc: identity, capabilities and seccomp are applied before reporting ready, so a
    // seccomp notify fd can still reach the parent, and `start` only releases a finished process.
    let personality = spec.linux().as_ref().and_then(|l| l.personality().as_ref());
    security::finalize_process_with_listener(process, cfg.seccomp, personality, &mut |fd| {
        chan.send_listener(fd.as_fd())
    })?;
    chan.send(&Msg::Ready)?;
    if let Some(fifo) = cfg.exec_fifo {
        wait_for_start(fifo)?;
    }
    if let Some(h) = spec_hooks.and_then(|h| h.start_container().as_deref()) {
        hooks::run_hooks("startContainer", h, &state_json)?;
    }
    Ok(match cfg.init {
        Some(kill_group) => crate::init::run_as_init(kill_group, || exec(&program, &argv, &envp)),
        None => exec(&program, &argv, &envp),
    })
}

fn wait_for_go(chan: &Channel) -> Result<Vec<u8>> {
    match chan.recv()? {
        Some(Msg::Go(state)) => Ok(state),
        other => Err(Error::Other(format!(
            "expected Go from the runtime, got {other:?}"
        ))),
    }
}

fn wait_for_process(chan: &Channel) -> Result<Process> {
    match chan.recv()? {
        Some(Msg::Process(json)) => serde_json::from_slice(&json)
            .map_err(|e| Error::config("process", format!("sent to the sandbox: {e}"))),
        None => Err(Error::Other("the sandbox was let go".into())),
        other => Err(Error::Other(format!(
            "expected the process from the runtime, got {other:?}"
        ))),
    }
}

/// execve, reporting the failure on stderr (the parent may be gone by now).
fn exec(program: &CString, argv: &[CString], envp: &[CString]) -> Infallible {
    let err = nix::unistd::execve(program, argv, envp).unwrap_err();
    eprintln!("berth-runtime: exec {}: {err}", program.to_string_lossy());
    // 126: found but could not run, like a shell.
    // SAFETY: _exit is always safe.
    unsafe {
        libc::_exit(if err == nix::errno::Errno::ENOENT {
            127
        } else {
            126
        })
    }
}

/// In a new user namespace our host ids are unmapped until we switch to the namespace's root.
pub(crate) fn become_namespace_root() -> Result<()> {
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .ctx(|| "setgid(0) in the user namespace (is gid 0 mapped?)".to_string())?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .ctx(|| "setuid(0) in the user namespace (is uid 0 mapped?)".to_string())
}

fn set_names(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| Error::config("hostname", e.to_string()))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: setdomainname with a valid pointer and its length.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(Error::config(
                "domainname",
                std::io::Error::last_os_error().to_string(),
            ));
        }
    }
    Ok(())
}

pub(crate) fn cstrings(items: &[String], field: &str) -> Result<Vec<CString>> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            CString::new(s.as_bytes())
                .map_err(|_| Error::config(format!("{field}[{i}]"), "contains a NUL byte"))
        })
        .collect()
}

/// Find args[0] like execvp would, but with the container's PATH, inside the container's root,
/// so "not found" is reported by create, not lost after start.
pub(crate) fn resolve_executable(process: &Process) -> Result<CString> {
    let arg0 = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .ok_or_else(|| Error::config("process.args", "empty"))?;
    let found = if arg0.contains('/') {
        let p = if Path::new(arg0).is_absolute() {
            PathBuf::from(arg0)
        } else {
            process.cwd().join(arg0)
        };
        p.is_file().then_some(p)
    } else {
        let path = process
            .env()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .to_string();
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(arg0))
            .find(|p| is_executable(p))
    };
    let found = found.ok_or_else(|| {
        Error::config(
            "process.args[0]",
            format!("exec: {arg0:?}: executable file not found in $PATH"),
        )
    })?;
    CString::new(found.into_os_string().into_encoded_bytes())
        .map_err(|_| Error::config("process.args[0]", "contains a NUL byte"))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub(crate) fn enter_cwd(process: &Process) -> Result<()> {
    let cwd = process.cwd();
    // Like runc: a missing cwd is created (owned by root), so images with a WORKDIR that was never
    // populated still start.
    if !cwd.exists() {
        std::fs::create_dir_all(cwd).ctx(|| format!("create cwd {}", cwd.display()))?;
    }
    nix::unistd::chdir(cwd.as_path())
        .map_err(|e| Error::config("process.cwd", format!("{}: {e}", cwd.display())))
}

/// Mark every fd above the preserved ones close-on-exec, so only 0-2 (+ preserved) reach the
/// container's program while the runtime's own fds keep working until execve.
pub(crate) fn close_inherited_fds(preserve_fds: i32) -> Result<()> {
    let first = 3 + preserve_fds.max(0) as u32;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // Older kernels: walk /proc/self/fd.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .ctx(|| "list /proc/self/fd".to_string())?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as RawFd)
        .collect();
    for fd in fds {
        // SAFETY: setting FD_CLOEXEC on an fd we may or may not own is harmless.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Block until `start` writes a byte into the exec fifo.
fn wait_for_start(fifo: RawFd) -> Result<()> {
    let mut b = [0u8; 1];
    // SAFETY: the fd stays open for the duration of this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fifo) };
    loop {
        match nix::unistd::read(fd, &mut b) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Error::Other("exec fifo closed before start".into())),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for start on the exec fifo", e)),
        }
    }
}
