//! Walking a directory tree through file descriptors: every step is an *at() call relative to
//! the already-open parent that never follows the entry itself, so a tree that changes while we
//! read it (a running container swapping a directory for a symlink to `/`) cannot lead the walk
//! outside of it.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

use crate::unpack::fsops;

/// One entry met by the walk.
pub struct Entry<'a> {
    /// Path relative to the walked root (never empty: the root itself is not visited).
    pub rel: &'a Path,
    pub stat: FileStat,
    parent: BorrowedFd<'a>,
    name: &'a std::ffi::OsStr,
    /// The entry's own directory fd, for directories.
    dir: Option<BorrowedFd<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

impl Entry<'_> {
    pub fn kind(&self) -> FileKind {
        kind_of(&self.stat)
    }

    /// Character device 0/0: how overlayfs records a deleted file.
    pub fn is_overlay_whiteout(&self) -> bool {
        self.kind() == FileKind::Char && self.stat.st_rdev == 0
    }

    /// A directory marked `trusted.overlay.opaque=y`: it hides everything below it in lower
    /// layers.
    pub fn is_opaque_dir(&self) -> bool {
        match self.dir {
            Some(fd) => fgetxattr(fd, "trusted.overlay.opaque").is_some_and(|v| v == b"y"),
            None => false,
        }
    }

    /// Open a regular file for reading, refusing a symlink put in its place.
    pub fn open_file(&self) -> io::Result<File> {
        let fd = openat(
            self.parent,
            self.name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )?;
        Ok(File::from(fd))
    }

    pub fn link_target(&self) -> io::Result<OsString> {
        Ok(readlinkat(self.parent, self.name)?)
    }
}

pub fn kind_of(st: &FileStat) -> FileKind {
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => FileKind::Dir,
        SFlag::S_IFLNK => FileKind::Symlink,
        SFlag::S_IFCHR => FileKind::Char,
        SFlag::S_IFBLK => FileKind::Block,
        SFlag::S_IFIFO => FileKind::Fifo,
        SFlag::S_IFSOCK => FileKind::Socket,
        _ => FileKind::File,
    }
}

/// Visit every entry under `root` in name order, parents before children, leaving out the
/// relative paths in `skip` (and what is below them).
pub fn walk(
    root: &Path,
    skip: &[PathBuf],
    visit: &mut dyn FnMut(&Entry<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let fd = nix::fcntl::open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    walk_dir(fd.as_fd(), &mut PathBuf::new(), skip, visit)
}

fn walk_dir(
    dir: BorrowedFd<'_>,
    rel: &mut PathBuf,
    skip: &[PathBuf],
    visit: &mut dyn FnMut(&Entry<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut names = fsops::list_dir(dir)?;
    names.sort();
    for name in names {
        let Some(stat) = fsops::lstat_at(dir, &name)? else {
            continue; // removed while we walked
        };
        rel.push(&name);
        if skip.iter().any(|s| s == rel) {
            rel.pop();
            continue;
        }
        let sub: Option<OwnedFd> = if kind_of(&stat) == FileKind::Dir {
            Some(fsops::open_subdir(dir, &name)?)
        } else {
            None
        };
        let entry = Entry {
            rel,
            stat,
            parent: dir,
            name: &name,
            dir: sub.as_ref().map(|f| f.as_fd()),
        };
        visit(&entry)?;
        if let Some(sub) = &sub {
            walk_dir(sub.as_fd(), rel, skip, visit)?;
        }
        rel.pop();
    }
    Ok(())
}

/// An extended attribute of an open file; None when absent or unreadable.
pub fn fgetxattr(fd: BorrowedFd<'_>, key: &str) -> Option<Vec<u8>> {
    let key = CString::new(key).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid fd, NUL-terminated key, buffer of the given length.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            key.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

/// An extended attribute of `path` (not following a final symlink).
pub fn lgetxattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let key = CString::new(key).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings, buffer of the given length.
    let n =
        unsafe { libc::lgetxattr(p.as_ptr(), key.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}
