//! Paths inside the container's root, resolved by the kernel so nothing escapes it.
//!
//! Every lookup is an openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from a descriptor of the
//! rootfs: `..` and absolute symlinks are clamped at the rootfs, `/proc/self/root`-style magic
//! links are refused. Callers get an O_PATH descriptor and operate on that (mount onto its
//! /proc/self/fd magic link), so a symlink swapped in after the lookup cannot redirect them
//! (CVE-2021-30465).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};

use super::sys;

/// Symlinks followed while creating one path before giving up (the kernel's own limit).
const MAX_SYMLINKS: usize = 40;

/// What `RootDir::ensure` creates when the path is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// An open root directory; all paths given to it are taken as inside it.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
}

impl RootDir {
    /// Open `path` (a host path) as a root. Open it AFTER mounting anything on `path` itself:
    /// the descriptor pins the mount it was opened through.
    pub fn open(path: &Path) -> nix::Result<RootDir> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(RootDir { fd })
    }

    /// Open an existing path inside the root (O_PATH; symlinks followed but kept inside).
    pub fn resolve(&self, path: &Path) -> nix::Result<OwnedFd> {
        self.resolve_with(&relative(path), 0)
    }

    /// Like `resolve`, but a symlink as the last component is opened itself, not followed.
    pub fn resolve_nofollow(&self, path: &Path) -> nix::Result<OwnedFd> {
        self.resolve_with(&relative(path), libc::O_NOFOLLOW as u64)
    }

    fn resolve_with(&self, rel: &Path, extra_flags: u64) -> nix::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        sys::openat2(
            self.fd.as_raw_fd(),
            rel,
            (libc::O_PATH | libc::O_CLOEXEC) as u64 | extra_flags,
            0,
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
        )
    }

    /// Open `path`, creating missing directories (and the last component as `kind`) inside the
    /// root. Dangling symlinks on the way are followed inside the root, like the kernel would.
    pub fn ensure(&self, path: &Path, kind: Kind) -> nix::Result<OwnedFd> {
        let comps = components(path);
        let last_flag = match kind {
            Kind::File => 0,
            Kind::Dir => libc::O_DIRECTORY as u64,
        };
        // Most targets exist, or lack only their last component: one or two lookups then,
        // instead of one per component (a container's setup makes dozens of these).
        let full: PathBuf = comps.iter().collect();
        match self.resolve_with(&full, last_flag) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let (mut done, mut cur, mut pending, mut looked_up) = match self.existing_parent(&comps)? {
            Some((parent, fd)) => (
                parent,
                fd,
                VecDeque::from([comps.last().cloned().unwrap_or_default()]),
                true,
            ),
            None => (
                PathBuf::new(),
                self.resolve_with(Path::new(""), 0)?,
                comps.into(),
                false,
            ),
        };
        let mut detours = 0;
        while let Some(name) = pending.pop_front() {
            let candidate = done.join(&name);
            let last = pending.is_empty();
            let dir_flag = if last {
                last_flag
            } else {
                libc::O_DIRECTORY as u64
            };
            // The first candidate after `existing_parent` is the full path, just found missing.
            if !std::mem::take(&mut looked_up) {
                match self.resolve_with(&candidate, dir_flag) {
                    Ok(fd) => {
                        cur = fd;
                        done = candidate;
                        continue;
                    }
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(e),
                }
            }
            detours += 1;
            if detours > MAX_SYMLINKS + 8 {
                return Err(Errno::ELOOP);
            }
            // Missing, or a symlink pointing at something missing: look at the entry itself.
            match nix::sys::stat::fstatat(
                cur.as_fd(),
                name.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st)
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK =>
                {
                    let target = nix::fcntl::readlinkat(cur.as_fd(), name.as_os_str())?;
                    let target = Path::new(&target);
                    if target.is_absolute() {
                        done = PathBuf::new();
                        cur = self.resolve_with(&done, 0)?;
                    }
                    for c in components(target).into_iter().rev() {
                        pending.push_front(c);
                    }
                }
                // Appeared meanwhile: look it up again.
                Ok(_) => pending.push_front(name),
                Err(Errno::ENOENT) => {
                    create_in(&cur, &name, if last { kind } else { Kind::Dir })?;
                    pending.push_front(name);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(cur)
    }

    /// The parent of `comps` (a path of two or more components ending in a name) when it
    /// exists: its path and descriptor.
    fn existing_parent(&self, comps: &[OsString]) -> nix::Result<Option<(PathBuf, OwnedFd)>> {
        let Some((name, parent)) = comps.split_last() else {
            return Ok(None);
        };
        if parent.is_empty() || name == ".." {
            return Ok(None);
        }
        let parent: PathBuf = parent.iter().collect();
        match self.resolve_with(&parent, libc::O_DIRECTORY as u64) {
            Ok(fd) => Ok(Some((parent, fd))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The parent directory of `path` (created if missing) and the last component's name.
    pub fn ensure_parent(&self, path: &Path) -> nix::Result<(OwnedFd, OsString)> {
        let mut comps = components(path);
        let name = match comps.pop() {
            Some(n) if n != ".." => n,
            _ => return Err(Errno::EINVAL),
        };
        let parent: PathBuf = comps.iter().collect();
        Ok((self.ensure(&parent, Kind::Dir)?, name))
    }
}

fn create_in(dir: &OwnedFd, name: &OsStr, kind: Kind) -> nix::Result<()> {
    let res = match kind {
        Kind::Dir => nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755)),
        Kind::File => nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map(drop),
    };
    match res {
        // Someone (or a dangling symlink) got there first; the caller looks again.
        Err(Errno::EEXIST) => Ok(()),
        r => r,
    }
}

/// `path` as a root-relative path: leading `/` and `.` dropped, `..` kept (the kernel clamps it).
pub fn relative(path: &Path) -> PathBuf {
    components(path).iter().collect()
}

fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn real_path(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(sys::fd_path(fd.as_fd())).unwrap()
    }

    #[test]
    fn relative_drops_root_and_dots() {
        assert_eq!(
            relative(Path::new("/a/./b/../c")),
            PathBuf::from("a/b/../c")
        );
        assert_eq!(relative(Path::new("/")), PathBuf::new());
    }

    #[test]
    fn symlinks_and_dotdot_stay_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = outside.path().join("root");
        std::fs::create_dir(&root).unwrap();
        symlink("/", root.join("abs")).unwrap();
        symlink("../../../..", root.join("up")).unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        let r = RootDir::open(&root).unwrap();

        for p in ["/abs/secret", "/up/secret", "/../../secret"] {
            assert_eq!(r.resolve(Path::new(p)).unwrap_err(), Errno::ENOENT, "{p}");
        }
        let made = r
            .ensure(Path::new("/up/../abs/newdir/x"), Kind::Dir)
            .unwrap();
        assert_eq!(real_path(&made), root.join("newdir/x"));
        assert!(!outside.path().join("newdir").exists());
    }

    #[test]
    fn dangling_symlinks_are_created_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = outside.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let host_target = outside.path().join("hostfile");
        symlink(&host_target, root.join("etc/resolv.conf")).unwrap();
        symlink("../run/dir", root.join("etc/rel")).unwrap();
        let r = RootDir::open(&root).unwrap();

        let f = r.ensure(Path::new("/etc/resolv.conf"), Kind::File).unwrap();
        let expected = root.join(host_target.strip_prefix("/").unwrap());
        assert_eq!(real_path(&f), expected);
        assert!(expected.is_file());
        assert!(!host_target.exists());

        let d = r.ensure(Path::new("/etc/rel/sub"), Kind::Dir).unwrap();
        assert_eq!(real_path(&d), root.join("run/dir/sub"));
    }

    #[test]
    fn symlink_loops_fail() {
        let root = tempfile::tempdir().unwrap();
        symlink("b", root.path().join("a")).unwrap();
        symlink("a", root.path().join("b")).unwrap();
        let r = RootDir::open(root.path()).unwrap();
        assert!(r.ensure(Path::new("/a/x"), Kind::Dir).is_err());
    }

    #[test]
    fn ensure_finds_existing_targets_and_makes_missing_leaves() {
        let outside = tempfile::tempdir().unwrap();
        let root = outside.path().join("root");
        std::fs::create_dir_all(root.join("sys/fs")).unwrap();
        std::fs::write(root.join("sys/file"), "").unwrap();
        symlink("/sys/fs", root.join("link")).unwrap();
        let r = RootDir::open(&root).unwrap();

        let existing = r.ensure(Path::new("/sys/fs"), Kind::Dir).unwrap();
        assert_eq!(real_path(&existing), root.join("sys/fs"));
        // Only the last component missing, through a symlink to an absolute path.
        let leaf = r.ensure(Path::new("/link/cgroup"), Kind::Dir).unwrap();
        assert_eq!(real_path(&leaf), root.join("sys/fs/cgroup"));
        assert!(root.join("sys/fs/cgroup").is_dir());
        let file = r.ensure(Path::new("/sys/fs/new"), Kind::File).unwrap();
        assert!(root.join("sys/fs/new").is_file());
        assert_eq!(real_path(&file), root.join("sys/fs/new"));
        // A file where a directory is wanted is an error, found or on the way.
        assert_eq!(
            r.ensure(Path::new("/sys/file"), Kind::Dir).unwrap_err(),
            Errno::ENOTDIR
        );
        assert_eq!(
            r.ensure(Path::new("/sys/file/x"), Kind::Dir).unwrap_err(),
            Errno::ENOTDIR
        );
        // Several missing components are made one by one.
        let deep = r.ensure(Path::new("/a/b/c"), Kind::Dir).unwrap();
        assert_eq!(real_path(&deep), root.join("a/b/c"));
    }

    #[test]
    fn ensure_parent_splits_the_name() {
        let root = tempfile::tempdir().unwrap();
        let r = RootDir::open(root.path()).unwrap();
        let (dir, name) = r.ensure_parent(Path::new("/dev/net/tun")).unwrap();
        assert_eq!(name, "tun");
        assert_eq!(real_path(&dir), root.path().join("dev/net"));
    }
}
