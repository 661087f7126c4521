//! Protection against CVE-2019-5736-class attacks: a process inside the container must never be
//! able to open and overwrite the runtime binary through /proc/PID/exe.
//!
//! Before touching a container, `berth-runtime` re-executes itself from a sealed memfd copy of its
//! own binary. Every process that enters a container is a fork of that copy, so its /proc/PID/exe
//! points at a memfd whose seals forbid writes, growth and shrinking; the file on disk is never
//! reachable from inside.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};

const MARKER_ENV: &str = "_BERTH_RUNTIME_SEALED";

/// True when the running binary is already a sealed memfd copy.
pub fn is_sealed() -> bool {
    // SAFETY: opening /proc/self/exe read-only and querying seals; the fd is owned by File.
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & libc::F_SEAL_WRITE != 0
}

/// Re-exec from a sealed memfd copy unless already running from one. Returns only on failure,
/// or when already sealed. Must be called before any thread is started.
pub fn ensure_sealed() -> io::Result<()> {
    if std::env::var_os(MARKER_ENV).is_some() {
        // We re-executed ourselves; hide the marker from containers and hooks.
        std::env::remove_var(MARKER_ENV);
        if is_sealed() {
            return Ok(());
        }
    }
    if is_sealed() {
        return Ok(());
    }
    let memfd = sealed_copy()?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())))
        .collect::<Result<_, _>>()
        .map_err(io::Error::other)?;
    std::env::set_var(MARKER_ENV, "1");
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = std::os::unix::ffi::OsStrExt::as_bytes(k.as_os_str()).to_vec();
            kv.push(b'=');
            kv.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()));
            CString::new(kv).ok()
        })
        .collect();
    std::env::remove_var(MARKER_ENV);
    let err = nix::unistd::fexecve(&memfd, &args, &env).unwrap_err();
    Err(io::Error::from(err))
}

/// A sealed, close-on-exec memfd holding a copy of our own executable.
fn sealed_copy() -> io::Result<File> {
    let name = c"berth-runtime";
    // SAFETY: memfd_create with a valid C string; the returned fd is owned by File below.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly created, valid descriptor that nothing else owns.
    let mut memfd = unsafe { File::from_raw_fd(fd) };
    let mut exe = File::open("/proc/self/exe")?;
    let len = exe.metadata()?.len();
    let mut copied = 0u64;
    while copied < len {
        // sendfile keeps the copy in the kernel: no user-space buffer for a multi-megabyte binary.
        let n = nix::sys::sendfile::sendfile(&memfd, &exe, None, (len - copied) as usize)
            .map_err(io::Error::from)?;
        if n == 0 {
            break;
        }
        copied += n as u64;
    }
    if copied != len {
        // Fall back to a plain copy if sendfile came up short.
        use std::io::Seek;
        exe.seek(io::SeekFrom::Start(0))?;
        memfd.set_len(0)?;
        memfd.seek(io::SeekFrom::Start(0))?;
        io::copy(&mut exe, &mut memfd)?;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a valid memfd.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(memfd)
}
