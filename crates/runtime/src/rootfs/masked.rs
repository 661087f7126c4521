//! After pivot_root: masked paths, read-only paths and the read-only root. Paths are plain
//! paths now: "/" is the container's root, so a symlink cannot lead out of it.

use std::path::Path;

use libc::c_ulong;
use nix::errno::Errno;

use super::mounts::remount_bind_at;
use super::sys;
use crate::error::{Context, Result};

/// Flags a read-only remount carries over from the mount it covers.
const KEEP: c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

fn current_flags(path: &Path) -> nix::Result<c_ulong> {
    let st = nix::sys::statvfs::statvfs(path)?;
    Ok(st.flags().bits() as c_ulong)
}

/// Hide `path`: /dev/null over a file, an empty read-only tmpfs over a directory. A missing
/// path is nothing to hide.
pub fn mask_path(path: &Path) -> Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("masked path {}", path.display())),
    };
    let res = if meta.is_dir() {
        sys::mount(
            Some(Path::new("tmpfs")),
            path,
            Some("tmpfs"),
            libc::MS_RDONLY,
            None,
        )
    } else {
        sys::mount(
            Some(Path::new("/dev/null")),
            path,
            None,
            libc::MS_BIND,
            None,
        )
    };
    match res {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).ctx(|| format!("mask {}", path.display())),
    }
}

/// Make `path` read-only with a bind mount onto itself. A missing path is skipped.
pub fn readonly_path(path: &Path) -> Result<()> {
    match sys::mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC, None) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("read-only path {}: bind", path.display())),
    }
    let current = current_flags(path).ctx(|| format!("statvfs {}", path.display()))?;
    remount_bind_at(path, current, libc::MS_RDONLY | (current & KEEP), false)
        .ctx(|| format!("read-only path {}: remount", path.display()))
}

/// root.readonly: remount "/" read-only, keeping its other flags.
pub fn readonly_root() -> Result<()> {
    let root = Path::new("/");
    let current = current_flags(root).ctx(|| "statvfs /".to_string())?;
    remount_bind_at(root, current, libc::MS_RDONLY | (current & KEEP), false)
        .ctx(|| "remount / read-only".to_string())
}
