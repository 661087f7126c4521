//! Making the rootfs the process's root.

use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::MntFlags;
use nix::sys::stat::Mode;

use super::sys;
use crate::error::{Context, Result};

/// pivot_root(".", ".") stacks the old root on top of the new one at "/"; the old root is then
/// made rslave (so detaching it cannot propagate to the host) and lazily unmounted. This needs no
/// put_old directory inside the rootfs. With `no_pivot` (a ramfs root cannot be pivoted) the
/// rootfs is moved onto "/" and chrooted into. Either way the cwd ends as "/".
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        return move_root(rootfs);
    }
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old_root = nix::fcntl::open("/", dir, Mode::empty()).ctx(|| "open /".to_string())?;
    let new_root = nix::fcntl::open(rootfs, dir, Mode::empty())
        .ctx(|| format!("open {}", rootfs.display()))?;
    nix::unistd::fchdir(&new_root).ctx(|| format!("chdir {}", rootfs.display()))?;
    nix::unistd::pivot_root(".", ".").ctx(|| format!("pivot_root into {}", rootfs.display()))?;
    nix::unistd::fchdir(&old_root).ctx(|| "chdir to the old root".to_string())?;
    sys::mount(
        None,
        Path::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
    )
    .ctx(|| "make the old root rslave".to_string())?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).ctx(|| "unmount the old root".to_string())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".to_string())
}

fn move_root(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    sys::mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)
        .ctx(|| format!("move {} onto /", rootfs.display()))?;
    nix::unistd::chroot(".").ctx(|| format!("chroot {}", rootfs.display()))?;
    nix::unistd::chdir("/").ctx(|| "chdir /".to_string())
}
