//! Wait for a hook with a deadline while collecting the tail of its output: one poll loop over a
//! pidfd and the two output pipes, so no threads are needed.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

use super::keep_tail;

/// How often to look at the hook when the kernel has no pidfd_open (before Linux 5.3).
const FALLBACK_TICK: Duration = Duration::from_millis(20);
/// After the hook exits, read at most this much more of what it (or what it left behind) wrote.
const DRAIN_LIMIT: usize = 64 * 1024;

pub(super) enum Outcome {
    Exited(ExitStatus),
    TimedOut(Duration),
}

pub(super) struct Supervised {
    pub outcome: Outcome,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Wait for `child` (spawned as its own process group leader, stdout and stderr piped). On
/// timeout, SIGKILL its process group and reap it.
pub(super) fn supervise(mut child: Child, timeout: Option<Duration>) -> io::Result<Supervised> {
    let pidfd = pidfd_open(child.id() as libc::pid_t);
    let mut stdout = OutputTail::new(child.stdout.take().map(OwnedFd::from))?;
    let mut stderr = OutputTail::new(child.stderr.take().map(OwnedFd::from))?;
    let deadline = timeout.map(|t| (Instant::now() + t, t));

    let waited = wait_with_deadline(
        &mut child,
        pidfd.as_ref(),
        [&mut stdout, &mut stderr],
        deadline,
    );
    let outcome = match waited {
        Ok(outcome) => outcome,
        Err(e) => {
            // Never leave a hook running behind an error.
            kill_group(&mut child);
            return Err(e);
        }
    };
    stdout.drain();
    stderr.drain();
    Ok(Supervised {
        outcome,
        stdout: stdout.buf,
        stderr: stderr.buf,
    })
}

fn wait_with_deadline(
    child: &mut Child,
    pidfd: Option<&OwnedFd>,
    [stdout, stderr]: [&mut OutputTail; 2],
    deadline: Option<(Instant, Duration)>,
) -> io::Result<Outcome> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Outcome::Exited(status));
        }
        let now = Instant::now();
        if let Some((at, limit)) = deadline {
            if now >= at {
                kill_group(child);
                return Ok(Outcome::TimedOut(limit));
            }
        }
        let mut wait = deadline.map(|(at, _)| at - now);
        if pidfd.is_none() {
            wait = Some(wait.map_or(FALLBACK_TICK, |w| w.min(FALLBACK_TICK)));
        }
        wait_for_event(pidfd, [&mut *stdout, &mut *stderr], wait)?;
    }
}

/// SIGKILL the hook's whole process group (a shell script's `sleep` must not outlive its hook)
/// and reap the hook.
fn kill_group(child: &mut Child) {
    // SAFETY: kill with a negative pid signals that process group; no memory involved.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.kill();
    let _ = child.wait();
}

/// Block until the hook exits, one of its pipes has data, or `wait` passes; read what arrived.
fn wait_for_event(
    pidfd: Option<&OwnedFd>,
    outputs: [&mut OutputTail; 2],
    wait: Option<Duration>,
) -> io::Result<()> {
    // poll(2) skips entries with a negative fd, so absent or closed pipes simply stay -1.
    let mut fds = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; 3];
    fds[0].fd = pidfd.map_or(-1, |fd| fd.as_raw_fd());
    for (slot, output) in fds[1..].iter_mut().zip(&outputs) {
        slot.fd = output.fd.as_ref().map_or(-1, |fd| fd.as_raw_fd());
    }
    // Round up so a sub-millisecond remainder doesn't turn into a busy loop.
    let timeout_ms = wait.map_or(-1, |w| {
        i32::try_from(w.as_millis().saturating_add(1)).unwrap_or(i32::MAX)
    });
    // SAFETY: fds is a valid array of 3 pollfd structs for the duration of the call.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted {
            Ok(())
        } else {
            Err(err)
        };
    }
    for (slot, output) in fds[1..].iter().zip(outputs) {
        if slot.revents != 0 {
            output.read_available(usize::MAX);
        }
    }
    Ok(())
}

/// One output pipe of the hook and the last bytes read from it.
struct OutputTail {
    fd: Option<OwnedFd>,
    buf: Vec<u8>,
}

impl OutputTail {
    fn new(fd: Option<OwnedFd>) -> io::Result<Self> {
        if let Some(fd) = &fd {
            set_nonblocking(fd.as_fd())?;
        }
        Ok(Self {
            fd,
            buf: Vec::new(),
        })
    }

    /// Read what is there without blocking; forget the pipe at EOF or on error.
    fn read_available(&mut self, limit: usize) {
        let Some(fd) = &self.fd else { return };
        let mut chunk = [0u8; 4096];
        let mut total = 0;
        while total < limit {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => {
                    self.fd = None;
                    return;
                }
                Ok(n) => {
                    total += n;
                    self.buf.extend_from_slice(&chunk[..n]);
                    keep_tail(&mut self.buf);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.fd = None;
                    return;
                }
            }
        }
    }

    /// After the hook exited: take what is buffered, but don't wait for EOF — a process the hook
    /// left running may hold the pipe open forever.
    fn drain(&mut self) {
        self.read_available(DRAIN_LIMIT);
        self.fd = None;
    }
}

fn set_nonblocking(fd: BorrowedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// A pidfd for `pid` (readable once it exits), or None on kernels without pidfd_open.
fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(pid, flags) returns a new fd or -1; no pointers involved.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the syscall returned a fresh fd that nobody else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }).filter(|fd| fd.as_raw_fd() >= 0)
}
