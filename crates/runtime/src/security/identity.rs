//! The container process's identity: `process.user` (uid, gid, additionalGids, umask).
//!
//! Raw system calls only affect the calling thread; that is what we want in the container's
//! single-threaded child, and it keeps glibc's all-threads setxid machinery out of a forked
//! process. Nothing here allocates unless it fails.

use oci_spec::runtime::User;

use crate::error::{Error, Result};

/// runc's umask when `process.user.umask` is absent.
pub const DEFAULT_UMASK: u32 = 0o022;

/// Field checks for the parent, before fork.
pub fn check(user: &User) -> Result<()> {
    if let Some(umask) = user.umask() {
        if umask > 0o777 {
            return Err(Error::config(
                "process.user.umask",
                format!("{umask:#o} is not a file mode mask (at most 0o777)"),
            ));
        }
    }
    Ok(())
}

/// Set the umask from `process.user.umask` (0o022 if absent).
pub fn apply_umask(user: &User) {
    let mask = user.umask().unwrap_or(DEFAULT_UMASK) & 0o777;
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Supplementary groups, then gid, then uid. Needs CAP_SETGID/CAP_SETUID (so it runs before the
/// capability sets are reduced) and PR_SET_KEEPCAPS so the permitted set survives setuid.
pub fn apply_user(user: &User) -> Result<()> {
    if setgroups_allowed() {
        let gids: &[u32] = user.additional_gids().as_deref().unwrap_or(&[]);
        // SAFETY: gid_t is u32 on Linux; the slice outlives the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_setgroups,
                gids.len() as libc::size_t,
                gids.as_ptr() as *const libc::gid_t,
            )
        };
        if rc < 0 {
            return Err(Error::sys(
                "setgroups(process.user.additionalGids)",
                nix::Error::last(),
            ));
        }
    }
    let (uid, gid) = (user.uid(), user.gid());
    // SAFETY: integer-only system calls.
    let rc = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    if rc < 0 {
        let err = nix::Error::last();
        return Err(Error::sys(
            format!("setgid({gid}) for process.user.gid"),
            err,
        ));
    }
    // SAFETY: integer-only system call.
    let rc = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    if rc < 0 {
        let err = nix::Error::last();
        return Err(Error::sys(
            format!("setuid({uid}) for process.user.uid"),
            err,
        ));
    }
    Ok(())
}

/// False when `/proc/self/setgroups` says "deny" (an unprivileged user namespace): setgroups
/// would fail with EPERM there, and runc skips it too. Read with raw calls into a stack buffer.
fn setgroups_allowed() -> bool {
    let path = c"/proc/self/setgroups";
    // SAFETY: path is a valid C string; the fd is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        // No /proc or an old kernel: setgroups is allowed as far as we can tell.
        return true;
    }
    let mut buf = [0u8; 16];
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    n <= 0 || !buf[..n as usize].starts_with(b"deny")
}
