//! Protection against CVE-2019-5736-class attacks: a process inside the container must never be
//! able to open and overwrite the runtime binary through /proc/PID/exe.
//!
//! Before touching a container, `berth-runtime` re-executes itself from a copy nobody can write.
//! Every process that enters a container is a fork of that, so its /proc/PID/exe never leads to
//! the writable file on disk. Two ways, cheapest first:
//! - a detached, read-only overlayfs mount of the binary's directory (new mount API, no copy, no
//!   namespace change; the mount lives only as long as a process runs from it): ~0.1 ms;
//! - a sealed memfd copy (seals forbid writes, growth and shrinking): copies the whole binary, ~3 ms.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};

const MARKER_ENV: &str = "_BERTH_RUNTIME_SEALED";

const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// True when the running binary cannot be written: a sealed memfd, or a file on a read-only overlay.
pub fn is_sealed() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: fcntl/fstatfs on a valid fd with a properly sized out-parameter.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & libc::F_SEAL_WRITE != 0 {
        return true;
    }
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    let ok = unsafe {
        libc::fstatfs(exe.as_raw_fd(), &mut st) == 0
            && libc::fstatvfs(exe.as_raw_fd(), &mut vfs) == 0
    };
    ok && st.f_type as i64 == OVERLAYFS_SUPER_MAGIC && vfs.f_flag & libc::ST_RDONLY != 0
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
    let exe = match readonly_overlay_exe() {
        Ok(fd) => fd,
        Err(_) => sealed_copy()?,
    };
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
    let err = nix::unistd::fexecve(&exe, &args, &env).unwrap_err();
    Err(io::Error::from(err))
}

/// Our own binary, opened from a detached read-only overlayfs of its directory.
fn readonly_overlay_exe() -> io::Result<File> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(io::Error::other("no directory for /proc/self/exe"));
    };
    // An overlay without an upper layer needs two lower layers: the second is an empty directory.
    let empty = std::path::Path::new("/run/berth-runtime.empty");
    if !empty.is_dir() {
        std::fs::create_dir_all(empty)?;
    }
    let cstr = |p: &std::path::Path| {
        CString::new(p.as_os_str().as_encoded_bytes()).map_err(io::Error::other)
    };
    let sys = |rc: libc::c_long| {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc as i32)
        }
    };
    // SAFETY: the new mount API with valid C strings; every fd returned is wrapped in an owner.
    unsafe {
        let fs = File::from_raw_fd(sys(libc::syscall(
            libc::SYS_fsopen,
            c"overlay".as_ptr(),
            libc::FSOPEN_CLOEXEC,
        ))?);
        for lower in [cstr(dir)?, cstr(empty)?] {
            sys(libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                libc::FSCONFIG_SET_STRING,
                c"lowerdir+".as_ptr(),
                lower.as_ptr(),
                0,
            ))?;
        }
        sys(libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            0,
            0,
            0,
        ))?;
        let mnt = File::from_raw_fd(sys(libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID,
        ))?);
        let name = CString::new(name.as_encoded_bytes()).map_err(io::Error::other)?;
        let fd = sys(libc::openat(
            mnt.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        ) as libc::c_long)?;
        Ok(File::from_raw_fd(fd))
    }
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
