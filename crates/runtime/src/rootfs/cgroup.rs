//! The `cgroup` mount entry.
//!
//! - cgroup v2 hosts: a cgroup2 mount (it shows the container's own cgroup when the container
//!   has a cgroup namespace); without one, a bind of the container's own cgroup directory.
//! - cgroup v1 (and hybrid) hosts: a tmpfs at the destination and, per host hierarchy, a bind
//!   of the container's own cgroup directory in that hierarchy (what a new cgroup mount shows
//!   in its cgroup namespace, without the kernel's cgroup_mutex, which a cgroup mount takes
//!   and another process's move into a cgroup holds through an RCU grace period), plus `cpu
//!   -> cpu,cpuacct` style symlinks; then the flags (and `ro`) on all of them at once, by one
//!   recursive mount_setattr. A new cgroup mount per hierarchy only when the container's
//!   directories are not known (a cgroup namespace made without `host_cgroups`).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use libc::c_ulong;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::mountinfo::{self, MountInfo};
use super::mounts::{remount_bind, Entry, MountContext};
use super::safe_path::Kind;
use super::sys::{self, fd_path};
use crate::error::{Context, Result};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const BASE_FLAGS: c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

/// Superblock options of a v1 hierarchy that are not controller names.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "xattr",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "favordynmods",
];

pub fn mount(ctx: &MountContext, entry: &Entry) -> Result<()> {
    if host_is_unified()? {
        v2(ctx, entry)
    } else {
        v1(ctx, entry)
    }
}

fn host_is_unified() -> Result<bool> {
    let fd = nix::fcntl::open(
        "/sys/fs/cgroup",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "open /sys/fs/cgroup".to_string())?;
    Ok(
        sys::fs_magic_of(fd.as_fd()).ctx(|| "statfs /sys/fs/cgroup".to_string())?
            == CGROUP2_SUPER_MAGIC,
    )
}

fn v2(ctx: &MountContext, entry: &Entry) -> Result<()> {
    let target = super::mounts::ensure(ctx, entry, Kind::Dir)?;
    let flags = entry.options.flags & !(libc::MS_BIND | libc::MS_REC);
    let data = entry.data();
    let res = sys::mount(
        Some(Path::new("cgroup2")),
        &fd_path(target.as_fd()),
        Some("cgroup2"),
        flags,
        data.as_deref(),
    );
    match res {
        Ok(()) => Ok(()),
        // No cgroup namespace of our own in a user namespace: show our cgroup by a bind.
        Err(Errno::EPERM) | Err(Errno::EBUSY) => {
            let own = own_cgroups()?;
            let path = own
                .iter()
                .find(|(c, _)| c.is_empty())
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| PathBuf::from("/"));
            let source = Path::new("/sys/fs/cgroup").join(path.strip_prefix("/").unwrap_or(&path));
            let dest = entry.destination();
            bind_hierarchy(entry, &source, &target, dest, flags, || {
                ctx.root.resolve(dest)
            })
        }
        Err(e) => Err(entry.err("mount cgroup2", e)),
    }
}

fn v1(ctx: &MountContext, entry: &Entry) -> Result<()> {
    let target = super::mounts::ensure(ctx, entry, Kind::Dir)?;
    sys::mount(
        Some(Path::new("tmpfs")),
        &fd_path(target.as_fd()),
        Some("tmpfs"),
        BASE_FLAGS,
        Some("mode=755"),
    )
    .map_err(|e| entry.err("mount tmpfs for cgroup v1 hierarchies", e))?;
    let dest = entry.destination();
    // This tmpfs was made just now and nothing else runs in the mount namespace yet: its
    // directories are made and opened by name, not looked up through the rootfs each time.
    let top = ctx
        .root
        .resolve(dest)
        .map_err(|e| entry.err("reopen cgroup tmpfs", e))?;
    let ro = entry.options.flags & libc::MS_RDONLY;
    // The container's own directories (host paths), to bind; None: new cgroup mounts.
    let own = if ctx.new_cgroup_ns {
        (ctx.host_cgroups)().map(|text| parse_own_cgroups(&text))
    } else {
        Some(own_cgroups()?)
    };
    let mut seen = BTreeSet::new();
    let mut bound = Vec::new();
    for hierarchy in mountinfo::host_cgroup_mounts()?
        .iter()
        .filter(|m| is_hierarchy(m))
    {
        let Some(name) = hierarchy.mount_point.file_name() else {
            continue;
        };
        if !seen.insert(name.to_os_string()) {
            continue;
        }
        let sub = dest.join(name);
        let sub_fd = subdir(&top, name)
            .map_err(|e| entry.err(format_args!("create {}", sub.display()), e))?;
        let controllers = controllers_of(hierarchy);
        match &own {
            Some(own) => {
                let path = own_path_in(hierarchy, &controllers, own);
                sys::mount(
                    Some(&path),
                    &fd_path(sub_fd.as_fd()),
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )
                .map_err(|e| entry.err(format_args!("bind {}", path.display()), e))?;
                bound.push(name.to_os_string());
            }
            None => {
                let (fs_type, data) = if hierarchy.fs_type == "cgroup2" {
                    ("cgroup2", None)
                } else {
                    (
                        "cgroup",
                        Some(controllers.iter().cloned().collect::<Vec<_>>().join(",")),
                    )
                };
                sys::mount(
                    Some(Path::new(fs_type)),
                    &fd_path(sub_fd.as_fd()),
                    Some(fs_type),
                    BASE_FLAGS | ro,
                    data.as_deref(),
                )
                .map_err(|e| entry.err(format_args!("mount {fs_type} at {}", sub.display()), e))?;
            }
        }
        link_controllers(&top, entry, name.to_string_lossy().as_ref())?;
    }
    // The binds keep their host mount's flags: ours go on them and the tmpfs in one call.
    let mut attr = sys::MountAttr {
        attr_set: libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC,
        ..Default::default()
    };
    if ro != 0 {
        attr.attr_set |= libc::MOUNT_ATTR_RDONLY;
    }
    if !bound.is_empty() {
        match sys::mount_setattr(top.as_fd(), &attr, true) {
            Ok(()) => return Ok(()),
            // A kernel before 5.12: one remount per bind.
            Err(Errno::ENOSYS) => {
                for name in &bound {
                    let sub = dest.join(name);
                    let mounted = open_dir_in(&top, name)
                        .map_err(|e| entry.err(format_args!("reopen {}", sub.display()), e))?;
                    remount_bind(&mounted, BASE_FLAGS | ro, false)
                        .map_err(|e| entry.err(format_args!("remount {}", sub.display()), e))?;
                }
            }
            Err(e) => return Err(entry.err("mount_setattr (cgroup hierarchies)", e)),
        }
    }
    if ro != 0 {
        sys::mount(
            None,
            &fd_path(top.as_fd()),
            None,
            libc::MS_REMOUNT | BASE_FLAGS | libc::MS_RDONLY,
            Some("mode=755"),
        )
        .map_err(|e| entry.err("remount cgroup tmpfs read-only", e))?;
    }
    Ok(())
}

/// `dir/name` made (if missing) and opened, in a directory only we write to.
fn subdir(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    match nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => open_dir_in(dir, name),
        Err(e) => Err(e),
    }
}

/// `dir/name` as an O_PATH descriptor; a symlink there is refused, not followed.
fn open_dir_in(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        dir.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn is_hierarchy(m: &MountInfo) -> bool {
    m.fs_type == "cgroup"
        || (m.fs_type == "cgroup2" && m.mount_point.starts_with("/sys/fs/cgroup/"))
}

/// Bind `source` (a host cgroup directory) onto `target` (which is `dest` inside the rootfs),
/// then remount it with `flags`; `reopen` looks `dest` up again, landing on the new mount.
fn bind_hierarchy(
    entry: &Entry,
    source: &Path,
    target: &OwnedFd,
    dest: &Path,
    flags: c_ulong,
    reopen: impl FnOnce() -> nix::Result<OwnedFd>,
) -> Result<()> {
    sys::mount(
        Some(source),
        &fd_path(target.as_fd()),
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(|e| entry.err(format_args!("bind {}", source.display()), e))?;
    let mounted = reopen().map_err(|e| entry.err(format_args!("reopen {}", dest.display()), e))?;
    remount_bind(&mounted, flags, false)
        .map_err(|e| entry.err(format_args!("remount {}", dest.display()), e))
}

/// `cpu -> cpu,cpuacct` and `cpuacct -> cpu,cpuacct` for co-mounted controllers, in `dir`.
fn link_controllers(dir: &OwnedFd, entry: &Entry, name: &str) -> Result<()> {
    if !name.contains(',') {
        return Ok(());
    }
    for part in name.split(',').filter(|p| !p.starts_with("name=")) {
        match nix::unistd::symlinkat(name, dir.as_fd(), part) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(entry.err(format_args!("symlink {part} -> {name}"), e)),
        }
    }
    Ok(())
}

fn controllers_of(m: &MountInfo) -> BTreeSet<String> {
    m.super_options
        .split(',')
        .filter(|o| {
            !o.is_empty() && !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent=")
        })
        .map(str::to_string)
        .collect()
}

/// Our own cgroup directory in `hierarchy`, as a host path.
fn own_path_in(
    hierarchy: &MountInfo,
    controllers: &BTreeSet<String>,
    own: &[(BTreeSet<String>, PathBuf)],
) -> PathBuf {
    let wanted = if hierarchy.fs_type == "cgroup2" {
        BTreeSet::new()
    } else {
        controllers.clone()
    };
    let path = own
        .iter()
        .find(|(c, _)| *c == wanted)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| PathBuf::from("/"));
    // mountinfo's root field says which part of the hierarchy the mount shows.
    let rel = path.strip_prefix(&hierarchy.root).unwrap_or(&path);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    hierarchy.mount_point.join(rel)
}

/// /proc/self/cgroup as (controller set, path); cgroup2's line has an empty set.
fn own_cgroups() -> Result<Vec<(BTreeSet<String>, PathBuf)>> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .ctx(|| "read /proc/self/cgroup".to_string())?;
    Ok(parse_own_cgroups(&text))
}

fn parse_own_cgroups(text: &str) -> Vec<(BTreeSet<String>, PathBuf)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some((controllers, PathBuf::from(parts.next()?)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_lines() {
        let own = parse_own_cgroups("4:cpu,cpuacct:/a/b\n1:name=systemd:/s\n0::/u\n");
        assert_eq!(own.len(), 3);
        let cpu: BTreeSet<String> = ["cpu".to_string(), "cpuacct".to_string()].into();
        assert_eq!(own[0], (cpu, PathBuf::from("/a/b")));
        assert!(own[2].0.is_empty());
    }

    #[test]
    fn own_path_strips_the_mount_root() {
        let m = mountinfo::parse(
            "40 25 0:35 /a /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpuacct,cpu\n",
        );
        let controllers = controllers_of(&m[0]);
        let own = parse_own_cgroups("4:cpu,cpuacct:/a/b\n");
        assert_eq!(
            own_path_in(&m[0], &controllers, &own),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/b")
        );
    }
}
