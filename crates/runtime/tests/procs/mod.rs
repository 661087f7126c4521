//! Helpers shared by the process-level tests (init, tty).
#![allow(dead_code)]

use std::ffi::{c_char, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Bounds every wait, only so a broken build fails instead of hanging.
pub const HANG_LIMIT: Duration = Duration::from_secs(60);

/// argv for execv, built before a fork so the child allocates nothing.
pub struct Argv {
    _strings: Vec<CString>,
    pointers: Vec<*const c_char>,
}
// SAFETY: the pointers point into `_strings`, which the struct owns and never mutates.
unsafe impl Send for Argv {}
unsafe impl Sync for Argv {}

impl Argv {
    pub fn new(args: &[&str]) -> Argv {
        let strings: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
        let mut pointers: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        pointers.push(std::ptr::null());
        Argv {
            _strings: strings,
            pointers,
        }
    }

    /// execv this argv; _exit(127) if that fails. Async-signal-safe.
    pub fn exec(&self) -> ! {
        // SAFETY: null-terminated array of pointers to NUL-terminated strings owned by self.
        unsafe {
            libc::execv(self.pointers[0], self.pointers.as_ptr());
            libc::_exit(127)
        }
    }
}

/// Wait for `child`; the limit only turns a hang into a failure.
pub fn wait_bounded(child: &mut Child) -> ExitStatus {
    let limit = Instant::now() + HANG_LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > limit {
            let _ = child.kill();
            panic!("process {} did not exit", child.id());
        }
        sleep(Duration::from_millis(20));
    }
}

pub fn wait_for_file(path: &Path) {
    let limit = Instant::now() + HANG_LIMIT;
    while !path.exists() {
        assert!(Instant::now() < limit, "{} never appeared", path.display());
        sleep(Duration::from_millis(10));
    }
}

/// A pty pair whose fds are close-on-exec from the start, so no concurrently spawned test
/// process inherits them.
pub fn cloexec_pty() -> (OwnedFd, OwnedFd) {
    // SAFETY: plain syscalls; each returned fd is checked and then owned.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(master >= 0);
        let master = OwnedFd::from_raw_fd(master);
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0);
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0);
        let mut name = [0 as libc::c_char; 64];
        assert_eq!(
            libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
            0
        );
        let slave = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(slave >= 0);
        (master, OwnedFd::from_raw_fd(slave))
    }
}

/// Read `fd` until EOF/EIO (the other side hung up) or until `until` shows up.
pub fn read_terminal(fd: BorrowedFd, until: Option<&str>) -> String {
    let limit = Instant::now() + HANG_LIMIT;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(needle) = until {
            if String::from_utf8_lossy(&out).contains(needle) {
                break;
            }
        }
        let left = limit.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "terminal output so far: {:?}",
            String::from_utf8_lossy(&out)
        );
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd is a valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) } == 0 {
            continue; // the limit check above fails the test
        }
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => break,
            n if n > 0 => out.extend_from_slice(&buf[..n as usize]),
            _ => match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EIO) => break,
                Some(libc::EAGAIN) | Some(libc::EINTR) => {}
                _ => panic!("read terminal: {}", std::io::Error::last_os_error()),
            },
        }
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// Give up on reads from `sock` after [`HANG_LIMIT`] instead of blocking forever.
pub fn bound_reads(sock: BorrowedFd) {
    let limit = libc::timeval {
        tv_sec: HANG_LIMIT.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: SO_RCVTIMEO reads a timeval through a valid pointer.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&limit as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}
