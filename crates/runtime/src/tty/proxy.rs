//! Foreground `berth-runtime run` with a terminal: relay between our own stdio and the
//! container's pty master in one poll loop, with our terminal in raw mode and window size changes
//! (SIGWINCH, read through a signalfd) passed on. No allocation on the way, no threads.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::winsize::{get_window_size, set_window_size};
use crate::error::{Error, Result};

const STDIN: RawFd = libc::STDIN_FILENO;
const STDOUT: RawFd = libc::STDOUT_FILENO;

/// Copy stdin → `master` and `master` → stdout until the master hangs up (every slave descriptor
/// closed: the container's processes are gone). If stdin is a terminal it is put in raw mode and
/// restored on return; its window size is copied to the pty now and on every SIGWINCH. Reaching
/// EOF on stdin stops input only; output keeps flowing until the hang-up. Expects to run in a
/// single-threaded process (SIGWINCH is blocked in the calling thread and read via signalfd).
pub fn proxy_terminal(master: OwnedFd) -> Result<()> {
    // SAFETY: isatty takes a descriptor.
    let stdin_is_tty = unsafe { libc::isatty(STDIN) } == 1;
    let size_source = if stdin_is_tty {
        Some(STDIN)
    } else if unsafe { libc::isatty(STDOUT) } == 1 {
        Some(STDOUT)
    } else {
        None
    };
    let _raw = if stdin_is_tty {
        Some(RawMode::enter(STDIN)?)
    } else {
        None
    };
    let winch = WinchSignal::watch()?;
    copy_window_size(size_source, &master);
    set_nonblocking(master.as_raw_fd())?;

    let mut input = [0u8; 4096];
    let (mut in_start, mut in_end) = (0usize, 0usize);
    let mut stdin_open = true;
    let mut output = [0u8; 8192];
    loop {
        let pending = in_start < in_end;
        let mut fds = [
            pollfd(winch.fd.as_raw_fd(), libc::POLLIN),
            // Read more input only once the last chunk reached the master.
            pollfd(
                if stdin_open && !pending { STDIN } else { -1 },
                libc::POLLIN,
            ),
            pollfd(
                master.as_raw_fd(),
                libc::POLLIN | if pending { libc::POLLOUT } else { 0 },
            ),
        ];
        // SAFETY: fds is a valid array of pollfd for the call.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io("wait for terminal input or output", err));
        }
        // Resize before passing on input that may have been typed after the resize.
        if fds[0].revents != 0 {
            winch.drain();
            copy_window_size(size_source, &master);
        }
        if fds[1].revents != 0 {
            match read(STDIN, &mut input) {
                Ok(0) => stdin_open = false,
                Ok(n) => (in_start, in_end) = (0, n),
                Err(e) if retryable(&e) => {}
                // A vanished stdin (closed fd, terminal gone) only stops input.
                Err(_) => stdin_open = false,
            }
        }
        if fds[2].revents & libc::POLLOUT != 0 && in_start < in_end {
            match write(master.as_raw_fd(), &input[in_start..in_end]) {
                Ok(n) => in_start += n,
                Err(e) if retryable(&e) => {}
                // The container side is gone; the read below sees the hang-up.
                Err(_) => in_start = in_end,
            }
        }
        if fds[2].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            match read(master.as_raw_fd(), &mut output) {
                Ok(0) => return Ok(()),
                Ok(n) => write_all(STDOUT, &output[..n])?,
                Err(e) if retryable(&e) => {}
                // EIO: the last slave descriptor closed — the normal end.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(()),
                Err(e) => return Err(Error::io("read from the container's terminal", e)),
            }
        }
    }
}

/// Our terminal in raw mode for as long as this lives.
struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    fn enter(fd: RawFd) -> Result<Self> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(Error::io(
                "read terminal settings of stdin",
                io::Error::last_os_error(),
            ));
        }
        let mut raw = saved;
        // SAFETY: raw is a valid termios.
        unsafe { libc::cfmakeraw(&mut raw) };
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(Error::io(
                "put stdin in raw mode",
                io::Error::last_os_error(),
            ));
        }
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in enter().
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// SIGWINCH delivered through a signalfd; the previous signal mask comes back on drop.
struct WinchSignal {
    fd: OwnedFd,
    old_mask: libc::sigset_t,
}

impl WinchSignal {
    fn watch() -> Result<Self> {
        // SAFETY: sigset_t is plain data initialised by sigemptyset; pointers are valid.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old_mask: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGWINCH);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old_mask);
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                let err = io::Error::last_os_error();
                libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut());
                return Err(Error::io("watch SIGWINCH with a signalfd", err));
            }
            Ok(Self {
                fd: OwnedFd::from_raw_fd(fd),
                old_mask,
            })
        }
    }

    fn drain(&self) {
        // SAFETY: signalfd_siginfo is plain data.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of_val(&info);
        // SAFETY: reads whole signalfd_siginfo records into a buffer of that size.
        while unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        } == size as isize
        {}
    }
}

impl Drop for WinchSignal {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in watch().
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut()) };
    }
}

/// Give the pty our terminal's size; best effort (our side may not be a terminal).
fn copy_window_size(source: Option<RawFd>, master: &OwnedFd) {
    let Some(source) = source else { return };
    // SAFETY: source is one of our stdio descriptors, open for this call.
    let source = unsafe { BorrowedFd::borrow_raw(source) };
    if let Ok((rows, cols)) = get_window_size(source) {
        if rows > 0 && cols > 0 {
            let _ = set_window_size(std::os::fd::AsFd::as_fd(master), rows, cols);
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn retryable(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    )
}

fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is readable for its length.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Write everything, waiting for room if `fd` happens to be non-blocking.
fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [pollfd(fd, libc::POLLOUT)];
                // SAFETY: fds is a valid pollfd array.
                unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) };
            }
            Err(e) => {
                return Err(Error::io(
                    "write the container's terminal output to stdout",
                    e,
                ))
            }
        }
    }
    Ok(())
}

fn set_nonblocking(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
    };
    if !ok {
        return Err(Error::io(
            "make the pty master non-blocking",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}
