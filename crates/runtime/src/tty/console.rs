//! The container side of `process.terminal`: allocate a pty from the container's devpts, hand the
//! master to whoever listens on the console socket, and make the slave our controlling terminal
//! and stdio. Allocation-free on success (the container's child may be a fork of a threaded
//! process).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::fdpass::send_pty_master;
use super::winsize::set_window_size;
use crate::error::{Error, Result};

const CONSOLE: &CStr = c"/dev/console";

/// In the container's process after pivot_root (devpts with newinstance at /dev/pts, /dev/ptmx a
/// symlink to pts/ptmx): open a pty, bind-mount its slave onto /dev/console (created if
/// missing), send the master over `console_socket` the way runc does, close our master, start a
/// new session with the slave as controlling terminal, and make the slave fds 0, 1 and 2.
/// `size` (process.consoleSize, rows × cols) sets the initial window size when both are non-zero.
/// `console_socket` stays open (it is close-on-exec when it came from `connect_console_socket`).
pub fn setup_console(console_socket: RawFd, size: Option<(u16, u16)>) -> Result<()> {
    setup(console_socket, size, true)
}

/// [`setup_console`] for a process joining a running container (`exec -t`): the same, except
/// that /dev/console is left alone, as runc does.
pub fn setup_exec_console(console_socket: RawFd, size: Option<(u16, u16)>) -> Result<()> {
    setup(console_socket, size, false)
}

fn setup(console_socket: RawFd, size: Option<(u16, u16)>, mount_console: bool) -> Result<()> {
    let master = open_fd(c"/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY)?;
    // SAFETY: unlockpt takes a descriptor.
    if unsafe { libc::unlockpt(master.as_raw_fd()) } != 0 {
        return Err(last_error("unlock the pty from /dev/ptmx"));
    }
    let mut name = [0u8; 64];
    let slave_path = slave_name(&master, &mut name)?;
    if let Some((rows, cols)) = size.filter(|&(rows, cols)| rows > 0 && cols > 0) {
        set_window_size(master.as_fd(), rows, cols)?;
    }
    let slave = open_fd(slave_path, libc::O_RDWR | libc::O_NOCTTY)?;
    if mount_console {
        bind_onto_console(slave_path)?;
    }
    // SAFETY: the caller passes an open descriptor that outlives this call.
    let socket = unsafe { BorrowedFd::borrow_raw(console_socket) };
    send_pty_master(socket, master.as_fd())?;
    drop(master);

    become_session_leader()?;
    // SAFETY: TIOCSCTTY takes an int argument (0: don't steal a terminal from another session).
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(last_error("make the pty slave the controlling terminal"));
    }
    make_stdio(slave)
}

/// The slave's path ("/dev/pts/N") written into `buf`.
fn slave_name<'a>(master: &OwnedFd, buf: &'a mut [u8; 64]) -> Result<&'a CStr> {
    // SAFETY: buf is writable for its length; ptsname_r NUL-terminates on success.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(Error::io(
            "find the pty slave's name",
            io::Error::from_raw_os_error(rc),
        ));
    }
    CStr::from_bytes_until_nul(buf).map_err(|_| Error::Console("pty slave name without NUL".into()))
}

/// Bind-mount the slave onto /dev/console, creating an empty file to mount over if needed.
fn bind_onto_console(slave_path: &CStr) -> Result<()> {
    // SAFETY: NUL-terminated path; returns a new fd or -1.
    let fd = unsafe {
        libc::open(
            CONSOLE.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o666,
        )
    };
    if fd >= 0 {
        // SAFETY: fd was just opened by us.
        unsafe { libc::close(fd) };
    } else if io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
        return Err(last_error("create /dev/console to mount the terminal on"));
    }
    // SAFETY: NUL-terminated paths; null fstype and data are allowed for MS_BIND.
    let rc = unsafe {
        libc::mount(
            slave_path.as_ptr(),
            CONSOLE.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::io(
            format!(
                "bind-mount {} onto /dev/console",
                slave_path.to_string_lossy()
            ),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// setsid(), tolerating "already a session leader" (then there is nothing to do).
fn become_session_leader() -> Result<()> {
    // SAFETY: setsid/getsid/getpid take no pointers.
    unsafe {
        if libc::setsid() < 0 && libc::getsid(0) != libc::getpid() {
            return Err(last_error("start a new session for the terminal"));
        }
    }
    Ok(())
}

/// Make `slave` fds 0, 1 and 2 (without close-on-exec), then drop the original.
fn make_stdio(slave: OwnedFd) -> Result<()> {
    // dup2(fd, fd) would keep close-on-exec set, so first move a low slave fd out of the way.
    let slave = if slave.as_raw_fd() <= libc::STDERR_FILENO {
        // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor >= 3 or -1.
        let moved = unsafe { libc::fcntl(slave.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
        if moved < 0 {
            return Err(last_error("move the pty slave above stdio"));
        }
        // SAFETY: moved is a fresh descriptor owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(moved) }
    } else {
        slave
    };
    for target in [libc::STDIN_FILENO, libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: dup2 on descriptors; replaces target atomically.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(last_error("make the pty slave the process's stdio"));
        }
    }
    Ok(())
}

fn open_fd(path: &CStr, flags: libc::c_int) -> Result<OwnedFd> {
    // SAFETY: NUL-terminated path; returns a new fd or -1.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::io(
            format!("open {}", path.to_string_lossy()),
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn last_error(context: &str) -> Error {
    Error::io(context, io::Error::last_os_error())
}
