//! Foreground `run`/`exec`: the runtime forwards the signals it receives to the container's
//! process and returns its exit status like a shell would (128+N when killed by signal N).

use std::os::fd::OwnedFd;

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Context, Error, Result};
use crate::tty;

/// Signals are blocked while this lives; `wait_*` pick them up synchronously.
pub struct ForwardedSignals {
    set: SigSet,
    old: SigSet,
}

impl ForwardedSignals {
    /// Block every signal we forward (all catchable ones) plus SIGCHLD.
    pub fn block() -> Result<ForwardedSignals> {
        let mut set = SigSet::all();
        for s in [
            Signal::SIGKILL,
            Signal::SIGSTOP,
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGILL,
            Signal::SIGFPE,
        ] {
            set.remove(s);
        }
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .ctx(|| "block signals".to_string())?;
        Ok(ForwardedSignals { set, old })
    }

    /// Wait for `pid` to exit, forwarding every other signal to it.
    pub fn wait_forwarding(&self, pid: Pid) -> Result<i32> {
        loop {
            if let Some(code) = reap(pid)? {
                return Ok(code);
            }
            let sig = self.set.wait().ctx(|| "wait for signals".to_string())?;
            match sig {
                Signal::SIGCHLD => continue,
                // Window changes make no sense without a terminal.
                Signal::SIGWINCH => continue,
                s => {
                    let _ = kill(pid, s);
                }
            }
        }
    }

    /// Proxy the terminal until the container hangs up, then collect its status.
    pub fn wait_with_terminal(&self, pid: Pid, master: OwnedFd) -> Result<i32> {
        tty::proxy_terminal(master)?;
        loop {
            match waitpid(pid, None) {
                Ok(status) => {
                    if let Some(code) = exit_code(status) {
                        return Ok(code);
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys(format!("wait for {pid}"), e)),
            }
        }
    }
}

impl Drop for ForwardedSignals {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

fn reap(pid: Pid) -> Result<Option<i32>> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(status) => Ok(exit_code(status)),
        Err(nix::errno::Errno::EINTR) => Ok(None),
        Err(e) => Err(Error::sys(format!("wait for {pid}"), e)),
    }
}

/// A shell's view of a wait status: the exit code, or 128+signal.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}
