//! Helpers shared by the process-level tests (init, tty).
#![allow(dead_code)]

use std::ffi::{c_char, CString};
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
