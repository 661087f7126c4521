//! The container's root filesystem: mounts, devices, pivot_root, masked and read-only paths.
//!
//! Called in the container's child process, inside its new mount namespace, in three steps:
//! 1. `prepare` (before pivot_root): root propagation, the rootfs bound onto itself, every
//!    `mounts` entry in order, then /dev's devices and symlinks.
//! 2. `pivot` makes the rootfs "/".
//! 3. `finalize` (after pivot and the console): sysctls, read-only and masked paths, the
//!    read-only root.
//!
//! Every path inside the rootfs is resolved by the kernel with openat2(RESOLVE_IN_ROOT) and
//! mounted onto through its descriptor (see `safe_path`), so symlinks in an image cannot send a
//! mount outside the rootfs.

mod cgroup;
mod copy;
pub mod devices;
mod masked;
pub mod mountinfo;
mod mounts;
pub mod options;
mod pivot;
pub mod safe_path;
mod sys;
pub mod sysctl;

use std::path::Path;

use libc::c_ulong;
use oci_spec::runtime::{Linux, Spec};

use crate::error::{Context, Error, Result};
use mounts::MountContext;
use safe_path::RootDir;

pub use pivot::pivot;

pub struct RootfsOptions<'a> {
    pub spec: &'a Spec,
    /// Absolute and canonical.
    pub rootfs: &'a Path,
    /// Relative bind sources resolve against the bundle directory.
    pub bundle: &'a Path,
    /// A new user namespace: devices are bind-mounted from the host, not mknod'ed.
    pub in_user_ns: bool,
    pub new_cgroup_ns: bool,
    /// Called before the first step that needs the container's cgroup (a cgroup mount); the
    /// other mounts run while the parent is still placing the process. May be called again.
    pub enter_cgroup: &'a dyn Fn() -> Result<()>,
    /// With a new cgroup namespace: /proc/self/cgroup as read just before `enter_cgroup` made
    /// it (host paths), so cgroup v1 hierarchies are bound from the container's own host
    /// directories instead of mounted anew. None: mounted anew.
    pub host_cgroups: &'a dyn Fn() -> Option<String>,
}

/// In the child, inside its new mount namespace, before pivot_root.
pub fn prepare(opts: &RootfsOptions) -> Result<()> {
    let linux = opts.spec.linux().as_ref();
    let propagation = root_propagation(linux)?.unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    sys::mount(None, Path::new("/"), None, propagation, None)
        .ctx(|| format!("set propagation of / to {propagation:#x}"))?;
    // After a recursive slave or private change nothing is shared: no need to look.
    let nothing_shared =
        propagation & libc::MS_REC != 0 && propagation & (libc::MS_SLAVE | libc::MS_PRIVATE) != 0;
    if !nothing_shared {
        make_parent_private(opts.rootfs)?;
    }
    sys::mount(
        Some(opts.rootfs),
        opts.rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .ctx(|| format!("bind rootfs {} onto itself", opts.rootfs.display()))?;

    // Opened after the bind so lookups start on the bind mount, where everything else lands.
    let root =
        RootDir::open(opts.rootfs).ctx(|| format!("open rootfs {}", opts.rootfs.display()))?;
    let ctx = MountContext {
        root: &root,
        rootfs: opts.rootfs,
        bundle: opts.bundle,
        in_user_ns: opts.in_user_ns,
        new_cgroup_ns: opts.new_cgroup_ns,
        host_cgroups: opts.host_cgroups,
    };
    let spec_mounts = opts.spec.mounts().as_deref().unwrap_or(&[]);
    // cgroupfs mounts need the container's cgroup (namespace), which the parent may still be
    // setting up: they wait, in order, until a later mount overlaps one of them or the list
    // ends, so the mounts that do not depend on them go first.
    let mut waiting: Vec<(usize, &oci_spec::runtime::Mount)> = Vec::new();
    let flush = |waiting: &mut Vec<(usize, &oci_spec::runtime::Mount)>| -> Result<()> {
        if !waiting.is_empty() {
            (opts.enter_cgroup)()?;
        }
        for (index, mount) in waiting.drain(..) {
            mounts::mount_entry(&ctx, index, mount)?;
        }
        Ok(())
    };
    for (index, mount) in spec_mounts.iter().enumerate() {
        if matches!(mount.typ().as_deref(), Some("cgroup" | "cgroup2")) {
            waiting.push((index, mount));
            continue;
        }
        let dest = mount.destination();
        if waiting
            .iter()
            .any(|(_, w)| dest.starts_with(w.destination()) || w.destination().starts_with(dest))
        {
            flush(&mut waiting)?;
        }
        mounts::mount_entry(&ctx, index, mount)?;
    }
    flush(&mut waiting)?;

    if !dev_is_bind_mounted(opts.spec) {
        for node in devices::default_nodes() {
            devices::create(&root, &node, opts.in_user_ns)?;
        }
        let spec_devices = linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]);
        for (index, device) in spec_devices.iter().enumerate() {
            let node = devices::node_from_spec(index, device)?;
            devices::create(&root, &node, opts.in_user_ns)?;
        }
        devices::create_symlinks(&root)?;
    }
    Ok(())
}

/// After pivot (and after the console was set up).
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    // prepare() set it on the host's "/" mount in our namespace; the container's "/" is a
    // different mount now. Private needs nothing: the parent was already made private.
    if let Some(p) = root_propagation(linux)? {
        if p & libc::MS_PRIVATE == 0 {
            sys::mount(None, Path::new("/"), None, p, None)
                .ctx(|| format!("set propagation of the container's / to {p:#x}"))?;
        }
    }
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        sysctl::apply(sysctl)?;
    }
    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or(&[])
    {
        masked::readonly_path(Path::new(path))?;
    }
    for path in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or(&[])
    {
        masked::mask_path(Path::new(path))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        masked::readonly_root()?;
    }
    Ok(())
}

/// linux.rootfsPropagation as mount flags; None when unset.
fn root_propagation(linux: Option<&Linux>) -> Result<Option<c_ulong>> {
    let Some(value) = linux.and_then(|l| l.rootfs_propagation().as_deref()) else {
        return Ok(None);
    };
    let flags = match value {
        "" => return Ok(None),
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        other => {
            return Err(Error::config(
                "linux.rootfsPropagation",
                format!("unknown propagation {other:?}"),
            ))
        }
    };
    Ok(Some(flags))
}

/// pivot_root refuses a new root whose parent mount is shared; make just that one private.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mounts = mountinfo::read()?;
    let parent = mounts
        .iter()
        .filter(|m| rootfs.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len());
    match parent {
        Some(m) if m.is_shared() => sys::mount(None, &m.mount_point, None, libc::MS_PRIVATE, None)
            .ctx(|| format!("make {} private", m.mount_point.display())),
        _ => Ok(()),
    }
}

/// A /dev bound from the host already has its nodes; runc skips creating them too.
fn dev_is_bind_mounted(spec: &Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    })
}

#[cfg(test)]
mod tests;
