//! Device nodes in the container's /dev: the defaults every container gets, `linux.devices`,
//! and the /dev symlinks (fd, stdin, stdout, stderr, ptmx, core).
//!
//! As root in the host user namespace nodes are mknod'ed; in a new user namespace mknod is not
//! allowed, so the host's node is bind-mounted onto an empty file instead.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{makedev, Mode, SFlag};
use nix::unistd::{Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::safe_path::{Kind, RootDir};
use super::sys::{self, fd_path};
use crate::error::{Error, Result};

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Devices every container gets (runtime-spec "Default Devices").
pub fn default_nodes() -> Vec<Node> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| Node {
        path: PathBuf::from(path),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// `linux.devices[index]` as a node.
pub fn node_from_spec(index: usize, d: &LinuxDevice) -> Result<Node> {
    let field = |f: &str| format!("linux.devices[{index}].{f}");
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::config(field("type"), "must be one of c, b, u, p"));
        }
    };
    if !d.path().is_absolute() {
        return Err(Error::config(field("path"), "must be an absolute path"));
    }
    let number =
        |v: i64, f: &str| u64::try_from(v).map_err(|_| Error::config(field(f), "negative"));
    Ok(Node {
        path: d.path().clone(),
        kind,
        major: number(d.major(), "major")?,
        minor: number(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Create `node` inside the root: mknod, or a bind of the host's node when `bind` (user
/// namespace) or when mknod is refused.
pub fn create(root: &RootDir, node: &Node, bind: bool) -> Result<()> {
    let ctx = |what: &str| format!("device {}: {what}", node.path.display());
    if bind && node.kind != SFlag::S_IFIFO {
        return bind_host_node(root, node);
    }
    let (dir, name) = root
        .ensure_parent(&node.path)
        .map_err(|e| Error::sys(ctx("create parent directory"), e))?;
    let dev = if node.kind == SFlag::S_IFIFO {
        0
    } else {
        makedev(node.major, node.minor)
    };
    // The umask must not trim the mode the spec asked for.
    let old = nix::sys::stat::umask(Mode::empty());
    let made = nix::sys::stat::mknodat(
        dir.as_fd(),
        name.as_os_str(),
        node.kind,
        Mode::from_bits_truncate(node.mode),
        dev,
    );
    nix::sys::stat::umask(old);
    match made {
        Ok(()) => {}
        // An existing node (an image's /dev, a bind-mounted host /dev) is kept.
        Err(Errno::EEXIST) => return Ok(()),
        Err(Errno::EPERM) if node.kind != SFlag::S_IFIFO => return bind_host_node(root, node),
        Err(e) => return Err(Error::sys(ctx("mknod"), e)),
    }
    nix::unistd::fchownat(
        dir.as_fd(),
        name.as_os_str(),
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::sys(ctx("chown"), e))
}

fn bind_host_node(root: &RootDir, node: &Node) -> Result<()> {
    let ctx = |what: &str| format!("device {}: {what}", node.path.display());
    let target = root
        .ensure(&node.path, Kind::File)
        .map_err(|e| Error::sys(ctx("create bind target"), e))?;
    sys::mount(
        Some(&node.path),
        &fd_path(target.as_fd()),
        None,
        libc::MS_BIND,
        None,
    )
    .map_err(|e| Error::sys(ctx("bind the host's node"), e))
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core and /dev/ptmx -> pts/ptmx.
pub fn create_symlinks(root: &RootDir) -> Result<()> {
    let dev = root
        .ensure(Path::new("/dev"), Kind::Dir)
        .map_err(|e| Error::sys("create /dev in rootfs", e))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    // ptmx must be the devpts instance's, whatever the image shipped.
    match nix::unistd::unlinkat(dev.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys("remove /dev/ptmx", e)),
    }
    links.push(("pts/ptmx", "ptmx"));
    for (target, name) in links {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink /dev/{name} -> {target}"), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    #[test]
    fn spec_devices_become_nodes() {
        let d = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .file_mode(0o20640u32)
            .uid(5u32)
            .build()
            .unwrap();
        let n = node_from_spec(0, &d).unwrap();
        assert_eq!(
            (n.kind, n.major, n.minor, n.mode, n.uid, n.gid),
            (SFlag::S_IFCHR, 10, 229, 0o640, 5, 0)
        );
    }

    #[test]
    fn bad_spec_devices_name_the_field() {
        let d = LinuxDeviceBuilder::default()
            .path("dev/x")
            .typ(LinuxDeviceType::C)
            .build()
            .unwrap();
        let e = node_from_spec(3, &d).unwrap_err().to_string();
        assert!(e.contains("linux.devices[3].path"), "{e}");
        let a = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::A)
            .build()
            .unwrap();
        assert!(node_from_spec(1, &a)
            .unwrap_err()
            .to_string()
            .contains("linux.devices[1].type"));
    }
}
