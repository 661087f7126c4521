//! Mounting prepared snapshots: overlay (mount(2), or the new mount API for long chains) and
//! bind mounts.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How to mount a prepared snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    Overlay {
        /// Topmost first, as overlayfs's lowerdir lists them.
        lowerdirs: Vec<PathBuf>,
        /// None (with `workdir` None) for a read-only view.
        upperdir: Option<PathBuf>,
        workdir: Option<PathBuf>,
    },
    Bind {
        source: PathBuf,
    },
}

impl Mount {
    /// The overlay mount data ("lowerdir=…,upperdir=…,workdir=…"), or None for a bind mount.
    pub fn overlay_options(&self) -> Option<String> {
        match self {
            Mount::Overlay {
                lowerdirs,
                upperdir,
                workdir,
            } => {
                let lower: Vec<String> =
                    lowerdirs.iter().map(|p| p.display().to_string()).collect();
                let mut data = format!("lowerdir={}", lower.join(":"));
                if let (Some(upper), Some(work)) = (upperdir, workdir) {
                    data.push_str(&format!(
                        ",upperdir={},workdir={}",
                        upper.display(),
                        work.display()
                    ));
                }
                Some(data)
            }
            Mount::Bind { .. } => None,
        }
    }

    /// Mount at `target` (needs root).
    pub fn mount(&self, target: &Path) -> Result<()> {
        self.mount_with(target, false)
    }

    /// Mount a writable layer that will be thrown away (a `--rm` container's): overlayfs's
    /// `volatile` option, so that unmounting does not sync the whole upper filesystem — on a busy
    /// host that sync is the slowest step of removing a container. Overlayfs refuses to mount a
    /// work directory a volatile mount has used (its "crashed, discard me" marker) until the
    /// marker is gone; a scratch layer has nothing worth keeping, so the marker is cleared here.
    pub fn mount_scratch(&self, target: &Path) -> Result<()> {
        if let Mount::Overlay {
            workdir: Some(work),
            ..
        } = self
        {
            // The marker is a directory holding a `dirty` file.
            match std::fs::remove_dir_all(work.join("work/incompat/volatile")) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::path("clear the volatile marker", work, e));
                }
                _ => {}
            }
        }
        self.mount_with(target, true)
    }

    fn mount_with(&self, target: &Path, volatile: bool) -> Result<()> {
        use nix::mount::{mount, MsFlags};
        let r = match self {
            Mount::Overlay { upperdir, .. } => {
                let mut data = self.overlay_options().unwrap_or_default();
                let volatile = volatile && upperdir.is_some();
                if volatile {
                    data.push_str(",volatile");
                }
                // mount(2) copies at most one page of options: long layer chains go through
                // the new mount API, which takes one lower layer per call.
                if data.len() >= PAGE_LIMIT {
                    return self
                        .mount_with_fsconfig(target, volatile)
                        .map_err(|e| Error::path("mount overlay (fsconfig)", target, e));
                }
                mount(
                    Some("overlay"),
                    target,
                    Some("overlay"),
                    MsFlags::empty(),
                    Some(data.as_str()),
                )
            }
            Mount::Bind { source } => mount(
                Some(source.as_path()),
                target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            ),
        };
        r.map_err(|e| Error::path("mount snapshot", target, e.into()))
    }

    fn mount_with_fsconfig(&self, target: &Path, volatile: bool) -> io::Result<()> {
        let Mount::Overlay {
            lowerdirs,
            upperdir,
            workdir,
        } = self
        else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        let fs_fd = fsopen(c"overlay")?;
        for lower in lowerdirs {
            // Appended in order: the first is the topmost, as with "lowerdir=a:b".
            fsconfig_string(&fs_fd, c"lowerdir+", &cstring(lower)?)?;
        }
        if let (Some(upper), Some(work)) = (upperdir, workdir) {
            fsconfig_string(&fs_fd, c"upperdir", &cstring(upper)?)?;
            fsconfig_string(&fs_fd, c"workdir", &cstring(work)?)?;
            if volatile {
                fsconfig_flag(&fs_fd, c"volatile")?;
            }
        }
        fsconfig_create(&fs_fd)?;
        let mnt = fsmount(&fs_fd)?;
        move_mount(&mnt, &cstring(target)?)
    }
}

const PAGE_LIMIT: usize = 4096;

// The new mount API (Linux 5.2; "lowerdir+" since 6.8). libc has the syscall numbers only.
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn fd_result(rc: libc::c_long) -> io::Result<OwnedFd> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new file descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) })
}

fn unit_result(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn fsopen(fs: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: valid NUL-terminated string.
    fd_result(unsafe { libc::syscall(libc::SYS_fsopen, fs.as_ptr(), FSOPEN_CLOEXEC) })
}

fn fsconfig_string(fd: &OwnedFd, key: &CStr, value: &CStr) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated strings.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    })
}

fn fsconfig_flag(fd: &OwnedFd, key: &CStr) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated key; a flag takes no value.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })
}

fn fsconfig_create(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: valid fd; CMD_CREATE takes no key or value.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })
}

fn fsmount(fd: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: valid fs context fd.
    fd_result(unsafe { libc::syscall(libc::SYS_fsmount, fd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) })
}

fn move_mount(mnt: &OwnedFd, target: &CStr) -> io::Result<()> {
    // SAFETY: valid mount fd, empty path with F_EMPTY_PATH, NUL-terminated target.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
}

/// Unmount what `Mount::mount` mounted.
pub fn unmount(target: &Path) -> Result<()> {
    nix::mount::umount2(target, nix::mount::MntFlags::empty())
        .map_err(|e| Error::path("unmount snapshot", target, e.into()))
}
