//! The engine's `--init`: a tini-like PID 1 built into the runtime, so images need no extra
//! binary. The container's first process forks; the child becomes the user's program, the parent
//! stays behind as init — forwarding signals, reaping orphans and exiting with the child's status.
//!
//! Everything between the fork and the exit is async-signal-safe (raw syscalls, no allocation),
//! so this also works in a process forked from a multi-threaded one.

mod fds;

use std::convert::Infallible;

pub use fds::close_cloexec_fds;

/// Replace "execve the user's program" in the container's PID 1.
///
/// Blocks all signals and forks. The child restores the signal mask, moves into its own process
/// group (the terminal's foreground group when stdin is a tty, as tini does) and calls
/// `exec_child`, which must execve the program (and `_exit` if that fails). The parent becomes the
/// init: it forwards every catchable signal to the child — to the child's whole process group when
/// `kill_group` is true (tini -g) —, reaps every zombie, and when the child exits, exits with its
/// status (the exit code, or 128+signal).
///
/// When it is not PID 1 (e.g. the container shares the host's PID namespace) the init makes
/// itself a child subreaper so orphans are still reparented to it. Like the execve it stands in
/// for, it closes its own close-on-exec descriptors, so pipes the runtime expects to see closed at
/// exec time are not held open by the init.
pub fn run_as_init(kill_group: bool, exec_child: impl FnOnce() -> Infallible) -> ! {
    let mut original_mask = empty_sigset();
    let all = full_sigset();
    // SAFETY: both sigset pointers are valid for the call.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &all, &mut original_mask) };
    // SAFETY: getpid/prctl take no pointers; PR_SET_CHILD_SUBREAPER only changes this process.
    if unsafe { libc::getpid() } != 1 {
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    // SAFETY: fork in a single-threaded or signal-safe context; both sides only make syscalls.
    match unsafe { libc::fork() } {
        -1 => {
            // No init is better than no container: run the program directly.
            write_stderr(b"berth init: fork failed; running the program without an init\n");
            restore_mask(&original_mask);
            match exec_child() {}
        }
        0 => {
            become_foreground_child();
            restore_mask(&original_mask);
            match exec_child() {}
        }
        child => {
            // Also set the group from here so a signal forwarded before the child ran its
            // setpgid already reaches the group. Fails harmlessly once the child has exec'd.
            // SAFETY: setpgid takes no pointers.
            unsafe { libc::setpgid(child, child) };
            close_cloexec_fds();
            supervise(child, kill_group)
        }
    }
}

/// In the child: own process group, made the terminal's foreground group if stdin is a tty.
/// Signals are still blocked, so tcsetpgrp from a background group doesn't stop us with SIGTTOU.
fn become_foreground_child() {
    // SAFETY: plain syscalls without pointers.
    unsafe {
        libc::setpgid(0, 0);
        if libc::isatty(libc::STDIN_FILENO) == 1 {
            // ENOTTY (not our controlling terminal) is fine: there is no job control to hand over.
            libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
        }
    }
}

/// The init's loop: wait for signals, forward them, reap children, exit with the child's status.
fn supervise(child: libc::pid_t, kill_group: bool) -> ! {
    let waited = full_sigset();
    // A periodic wake-up reaps even if a SIGCHLD was somehow missed.
    let tick = libc::timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    loop {
        if let Some(status) = reap_all(child) {
            // SAFETY: _exit never returns and skips atexit handlers, as after an execve.
            unsafe { libc::_exit(status) };
        }
        // SAFETY: the sigset and timespec are valid; a null siginfo pointer is allowed.
        let signal = unsafe { libc::sigtimedwait(&waited, std::ptr::null_mut(), &tick) };
        if signal > 0 && signal != libc::SIGCHLD {
            forward(signal, child, kill_group);
        }
    }
}

fn forward(signal: libc::c_int, child: libc::pid_t, kill_group: bool) {
    // SAFETY: kill takes no pointers. ESRCH (group not there yet, or gone) falls back to the child.
    unsafe {
        if !kill_group || libc::kill(-child, signal) != 0 {
            libc::kill(child, signal);
        }
    }
}

/// Reap every exited child; Some(exit status for the init) once the main child is among them.
fn reap_all(child: libc::pid_t) -> Option<i32> {
    let mut result = None;
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return result;
        }
        if pid == child {
            if libc::WIFEXITED(status) {
                result = Some(libc::WEXITSTATUS(status));
            } else if libc::WIFSIGNALED(status) {
                result = Some(128 + libc::WTERMSIG(status));
            }
        }
    }
}

fn full_sigset() -> libc::sigset_t {
    let mut set = empty_sigset();
    // SAFETY: set is a valid sigset_t.
    unsafe { libc::sigfillset(&mut set) };
    set
}

fn empty_sigset() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe { libc::sigemptyset(&mut set) };
    set
}

fn restore_mask(mask: &libc::sigset_t) {
    // SAFETY: mask is a valid sigset_t; the old-mask pointer may be null.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
}

fn write_stderr(message: &[u8]) {
    // SAFETY: message is a valid buffer of the given length.
    unsafe { libc::write(libc::STDERR_FILENO, message.as_ptr().cast(), message.len()) };
}
