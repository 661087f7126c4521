//! One entry of config.json `mounts`, mounted inside the rootfs.
//!
//! Targets are resolved with `RootDir` and mounted onto their /proc/self/fd magic link, so the
//! kernel mounts onto exactly the inode we checked, never onto a path an attacker re-pointed.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use libc::c_ulong;
use nix::errno::Errno;
use oci_spec::runtime::Mount;

use super::cgroup;
use super::options::MountOptions;
use super::safe_path::{Kind, RootDir};
use super::sys::{self, fd_path};
use crate::error::{Error, Result};

/// Flags a remount of a bind mount may carry; the rest only matter to a new mount.
const REMOUNT_KEEP: c_ulong = !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);

/// Flags an unprivileged (user-namespace) remount must keep when the host locked them.
const LOCKABLE: c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY;

/// atime flags statfs reports (strictatime shows as none of them).
const ATIME_FLAGS: c_ulong = libc::MS_NOATIME | libc::MS_NODIRATIME | libc::MS_RELATIME;

/// Paths under /proc that may be covered by a bind mount (what lxcfs emulates).
const ALLOWED_PROC_MOUNTS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// What every mount in one `prepare` shares.
pub struct MountContext<'a> {
    pub root: &'a RootDir,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub in_user_ns: bool,
    pub new_cgroup_ns: bool,
    /// See `RootfsOptions::host_cgroups`.
    pub host_cgroups: &'a dyn Fn() -> Option<String>,
}

/// A mount entry with its position, for error messages that point into config.json.
pub struct Entry<'a> {
    pub index: usize,
    pub mount: &'a Mount,
    pub options: MountOptions,
}

impl Entry<'_> {
    pub fn destination(&self) -> &Path {
        self.mount.destination()
    }

    pub fn fs_type(&self) -> &str {
        self.mount.typ().as_deref().unwrap_or("")
    }

    /// `mounts[3] (/dev/shm)`, the prefix of every error about this entry.
    pub fn label(&self) -> String {
        format!("mounts[{}] ({})", self.index, self.destination().display())
    }

    pub fn err(&self, what: impl std::fmt::Display, e: Errno) -> Error {
        Error::sys(format!("{}: {what}", self.label()), e)
    }

    /// The data argument for mount(2): the options that are not flags.
    pub fn data(&self) -> Option<String> {
        self.options.data_string()
    }
}

/// Mount `mounts[index]`. A relative destination is taken as relative to "/", like runc does.
pub fn mount_entry(ctx: &MountContext, index: usize, mount: &Mount) -> Result<()> {
    let options = MountOptions::parse(mount.options().as_deref().unwrap_or(&[]));
    let mut entry = Entry {
        index,
        mount,
        options,
    };
    if entry.options.idmap || mount.uid_mappings().is_some() {
        return Err(Error::config(
            format!("mounts[{index}].options"),
            "idmapped mounts are not supported",
        ));
    }
    if entry.fs_type() == "bind" {
        entry.options.flags |= libc::MS_BIND;
    }
    check_proc_destination(ctx, &entry)?;

    if entry.options.is_bind() {
        bind(ctx, &entry)?;
    } else {
        match entry.fs_type() {
            "cgroup" | "cgroup2" => return cgroup::mount(ctx, &entry),
            "sysfs" => sysfs(ctx, &entry)?,
            "tmpfs" if entry.options.tmpcopyup => tmpfs_copyup(ctx, &entry)?,
            _ => {
                let target = ensure(ctx, &entry, Kind::Dir)?;
                new_mount(&entry, &target, entry.options.flags)?;
            }
        }
    }
    apply_propagation_and_attrs(ctx, &entry)
}

/// Create (if needed) and open the mount target inside the rootfs.
pub fn ensure(ctx: &MountContext, entry: &Entry, kind: Kind) -> Result<OwnedFd> {
    ctx.root
        .ensure(entry.destination(), kind)
        .map_err(|e| entry.err("create mount target in rootfs", e))
}

/// The target after mounting: a fresh lookup lands on top of the new mount.
fn reopen(ctx: &MountContext, entry: &Entry) -> Result<OwnedFd> {
    ctx.root
        .resolve(entry.destination())
        .map_err(|e| entry.err("reopen mount target", e))
}

/// mount(2) of a new filesystem (proc, tmpfs, devpts, mqueue, ...) onto `target`.
pub fn new_mount(entry: &Entry, target: &OwnedFd, flags: c_ulong) -> Result<()> {
    let fs_type = entry.fs_type();
    let source = entry
        .mount
        .source()
        .clone()
        .unwrap_or_else(|| PathBuf::from(if fs_type.is_empty() { "none" } else { fs_type }));
    let data = entry.data();
    sys::mount(
        Some(&source),
        &fd_path(target.as_fd()),
        (!fs_type.is_empty()).then_some(fs_type),
        flags,
        data.as_deref(),
    )
    .map_err(|e| {
        entry.err(
            format_args!(
                "mount {fs_type} (source {:?}, data {:?})",
                source,
                data.as_deref().unwrap_or("")
            ),
            e,
        )
    })
}

/// Bind mounts: source from the host (relative to the bundle), then a remount for the flags.
fn bind(ctx: &MountContext, entry: &Entry) -> Result<()> {
    let source = bind_source(ctx, entry)?;
    let meta = std::fs::metadata(&source).map_err(|e| {
        Error::io(
            format!(
                "mounts[{}].source {}: bind source",
                entry.index,
                source.display()
            ),
            e,
        )
    })?;
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let target = ensure(ctx, entry, kind)?;
    bind_onto(ctx, entry, &source, &target)
}

/// Bind `source` onto `target` and remount with the entry's flags.
pub fn bind_onto(ctx: &MountContext, entry: &Entry, source: &Path, target: &OwnedFd) -> Result<()> {
    let flags = entry.options.flags;
    sys::mount(
        Some(source),
        &fd_path(target.as_fd()),
        None,
        libc::MS_BIND | (flags & libc::MS_REC),
        None,
    )
    .map_err(|e| entry.err(format_args!("bind {}", source.display()), e))?;
    if flags & REMOUNT_KEEP == 0 {
        return Ok(());
    }
    let mounted = reopen(ctx, entry)?;
    remount_bind(&mounted, flags, entry.options.has_atime_choice())
        .map_err(|e| entry.err(format_args!("remount bind of {}", source.display()), e))
}

/// `remount_bind_at` for the mount `mounted` is on, through its magic link.
pub fn remount_bind(mounted: &OwnedFd, flags: c_ulong, atime_chosen: bool) -> nix::Result<()> {
    let current = sys::mount_flags_of(mounted.as_fd())?;
    remount_bind_at(&fd_path(mounted.as_fd()), current, flags, atime_chosen)
}

/// MS_REMOUNT|MS_BIND with `flags` on the mount at `target`, whose flags are now `current`.
/// Such a remount clears what it does not set; the flags the host locked (a user namespace
/// cannot clear them) are kept like runc does, as is the atime mode unless the user chose one.
pub fn remount_bind_at(
    target: &Path,
    current: c_ulong,
    flags: c_ulong,
    atime_chosen: bool,
) -> nix::Result<()> {
    let mut wanted = libc::MS_BIND | libc::MS_REMOUNT | (flags & REMOUNT_KEEP);
    if !atime_chosen {
        wanted |= current & ATIME_FLAGS;
    }
    match sys::mount(None, target, None, wanted, None) {
        Err(Errno::EPERM) => sys::mount(None, target, None, wanted | (current & LOCKABLE), None),
        r => r,
    }
}

fn bind_source(ctx: &MountContext, entry: &Entry) -> Result<PathBuf> {
    let source = entry.mount.source().as_ref().ok_or_else(|| {
        Error::config(
            format!("mounts[{}].source", entry.index),
            "a bind mount needs a source",
        )
    })?;
    Ok(if source.is_absolute() {
        source.clone()
    } else {
        ctx.bundle.join(source)
    })
}

/// sysfs cannot be mounted from a user namespace that does not own the network namespace;
/// then the host's /sys is bound recursively instead, as runc does.
fn sysfs(ctx: &MountContext, entry: &Entry) -> Result<()> {
    let target = ensure(ctx, entry, Kind::Dir)?;
    match new_mount(entry, &target, entry.options.flags) {
        Err(Error::Sys {
            source: Errno::EPERM,
            ..
        }) if ctx.in_user_ns => {
            sys::mount(
                Some(Path::new("/sys")),
                &fd_path(target.as_fd()),
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )
            .map_err(|e| entry.err("bind /sys (sysfs fallback in a user namespace)", e))?;
            let mounted = reopen(ctx, entry)?;
            remount_bind(
                &mounted,
                entry.options.flags,
                entry.options.has_atime_choice(),
            )
            .map_err(|e| entry.err("remount /sys bind", e))
        }
        r => r,
    }
}

/// tmpfs with `tmpcopyup`: the directory's existing contents are copied into the new tmpfs.
fn tmpfs_copyup(ctx: &MountContext, entry: &Entry) -> Result<()> {
    let target = ensure(ctx, entry, Kind::Dir)?;
    // Mounted writable first so the copy can land; the final flags come with a remount.
    new_mount(entry, &target, entry.options.flags & !libc::MS_RDONLY)?;
    let mounted = reopen(ctx, entry)?;
    super::copy::copy_tree(&fd_path(target.as_fd()), &fd_path(mounted.as_fd()))
        .map_err(|e| Error::io(format!("{}: tmpcopyup", entry.label()), e))?;
    if entry.options.flags & libc::MS_RDONLY != 0 {
        let data = entry.data();
        sys::mount(
            None,
            &fd_path(mounted.as_fd()),
            None,
            entry.options.flags | libc::MS_REMOUNT,
            data.as_deref(),
        )
        .map_err(|e| entry.err("remount tmpfs read-only", e))?;
    }
    Ok(())
}

/// Propagation flags need one mount(2) each; `r*` options go through mount_setattr.
fn apply_propagation_and_attrs(ctx: &MountContext, entry: &Entry) -> Result<()> {
    let opts = &entry.options;
    if opts.propagation.is_empty() && opts.recursive.is_empty() {
        return Ok(());
    }
    let mounted = reopen(ctx, entry)?;
    for &p in &opts.propagation {
        sys::mount(None, &fd_path(mounted.as_fd()), None, p, None)
            .map_err(|e| entry.err(format_args!("set propagation {p:#x}"), e))?;
    }
    if !opts.recursive.is_empty() {
        sys::mount_setattr(mounted.as_fd(), &opts.recursive, true)
            .map_err(|e| entry.err("mount_setattr (recursive options)", e))?;
    }
    Ok(())
}

/// proc and sysfs must land on a real directory, not a symlink (CVE-2019-16884); nothing else
/// may cover /proc or paths inside it but the few files lxcfs emulates.
fn check_proc_destination(ctx: &MountContext, entry: &Entry) -> Result<()> {
    let fs_type = entry.fs_type();
    let dest = entry.destination();
    if matches!(fs_type, "proc" | "sysfs") {
        match ctx.root.resolve_nofollow(dest) {
            Ok(fd) => {
                let st = nix::sys::stat::fstat(fd.as_fd())
                    .map_err(|e| entry.err("stat mount target", e))?;
                if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                    return Err(Error::Rootfs(format!(
                        "{}: {fs_type} must be mounted on an ordinary directory, not a symlink or file",
                        entry.label()
                    )));
                }
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(entry.err("open mount target", e)),
        }
    }
    // Where the destination really is once symlinks are resolved inside the rootfs.
    let real = match ctx.root.resolve(dest) {
        Ok(fd) => in_rootfs_path(ctx, &fd),
        Err(_) => None,
    }
    .unwrap_or_else(|| super::safe_path::relative(dest));
    let real = Path::new("/").join(real);
    let Ok(under_proc) = real.strip_prefix("/proc") else {
        return Ok(());
    };
    if under_proc.as_os_str().is_empty() {
        if fs_type == "proc" || (entry.options.is_bind() && bind_source_is_proc(ctx, entry)) {
            return Ok(());
        }
    } else if ALLOWED_PROC_MOUNTS
        .iter()
        .any(|p| Path::new(p) == real.as_path())
    {
        return Ok(());
    }
    Err(Error::Rootfs(format!(
        "{}: {} cannot be mounted because it is inside /proc",
        entry.label(),
        real.display()
    )))
}

fn bind_source_is_proc(ctx: &MountContext, entry: &Entry) -> bool {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    let Ok(source) = bind_source(ctx, entry) else {
        return false;
    };
    nix::fcntl::open(
        &source,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .and_then(|fd| sys::fs_magic_of(fd.as_fd()))
    .is_ok_and(|m| m == PROC_SUPER_MAGIC)
}

/// The path `fd` is at, relative to the rootfs (None if the kernel says it is elsewhere).
fn in_rootfs_path(ctx: &MountContext, fd: &OwnedFd) -> Option<PathBuf> {
    let host = std::fs::read_link(fd_path(fd.as_fd())).ok()?;
    host.strip_prefix(ctx.rootfs).ok().map(Path::to_path_buf)
}
