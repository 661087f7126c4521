//! Thin wrappers over the mount-related syscalls that nix does not cover (openat2, mount_setattr)
//! or that we want to call with raw flag words (mount with every MS_* bit, including ones nix's
//! `MsFlags` may not name, such as MS_NOSYMFOLLOW).

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::c_ulong;
use nix::errno::Errno;

fn cstring(p: &[u8]) -> nix::Result<CString> {
    CString::new(p).map_err(|_| Errno::EINVAL)
}

/// mount(2) with raw flags. `None` arguments become NULL pointers.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: c_ulong,
    data: Option<&str>,
) -> nix::Result<()> {
    let source = source
        .map(|s| cstring(s.as_os_str().as_bytes()))
        .transpose()?;
    let target = cstring(target.as_os_str().as_bytes())?;
    let fstype = fstype.map(|s| cstring(s.as_bytes())).transpose()?;
    let data = data.map(|s| cstring(s.as_bytes())).transpose()?;
    // SAFETY: every pointer is either NULL or a NUL-terminated string that outlives the call.
    let res = unsafe {
        libc::mount(
            source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    Errno::result(res).map(drop)
}

/// The magic link through which a syscall taking a path reaches exactly the inode `fd` holds,
/// whatever happens to the path the fd was opened by.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// openat2(2). Retries EAGAIN, which RESOLVE_IN_ROOT returns when a concurrent rename raced it.
pub fn openat2(
    dirfd: RawFd,
    path: &Path,
    flags: u64,
    mode: u64,
    resolve: u64,
) -> nix::Result<OwnedFd> {
    let path = cstring(path.as_os_str().as_bytes())?;
    // SAFETY: open_how is plain integers; all-zero is its "nothing set" value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags;
    how.mode = mode;
    how.resolve = resolve;
    let mut attempts = 0;
    loop {
        // SAFETY: `how` and `path` are valid for the duration of the call; the size matches.
        let res = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match Errno::result(res) {
            // SAFETY: the kernel returned a new descriptor we now own.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) if attempts < 32 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Attributes for mount_setattr(2), as the kernel's `struct mount_attr`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
}

impl MountAttr {
    pub fn is_empty(&self) -> bool {
        self.attr_set == 0 && self.attr_clr == 0 && self.propagation == 0
    }
}

/// mount_setattr(2) on the mount `fd` is on (AT_EMPTY_PATH), recursively when `recursive`.
pub fn mount_setattr(fd: BorrowedFd<'_>, attr: &MountAttr, recursive: bool) -> nix::Result<()> {
    let raw = libc::mount_attr {
        attr_set: attr.attr_set,
        attr_clr: attr.attr_clr,
        propagation: attr.propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `raw` is a valid mount_attr, the empty path is NUL-terminated.
    let res = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &raw as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(res).map(drop)
}

/// The MS_* flags of the mount `fd` is on (statvfs's ST_* equal MS_* on Linux).
pub fn mount_flags_of(fd: BorrowedFd<'_>) -> nix::Result<c_ulong> {
    Ok(nix::sys::statvfs::fstatvfs(fd)?.flags().bits() as c_ulong)
}

/// The filesystem magic of the file `fd` refers to.
pub fn fs_magic_of(fd: BorrowedFd<'_>) -> nix::Result<i64> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: as in mount_flags_of.
    let res = unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) };
    Errno::result(res)?;
    // SAFETY: initialised by the successful call above.
    let st = unsafe { st.assume_init() };
    // f_type's integer type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}
