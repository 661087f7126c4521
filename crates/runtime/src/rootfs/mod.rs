//! TEMPORARY minimal rootfs (replaced by the rootfs branch).
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Context, Result};

pub struct RootfsOptions<'a> {
    pub spec: &'a oci_spec::runtime::Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub in_user_ns: bool,
    pub new_cgroup_ns: bool,
}

pub fn prepare(o: &RootfsOptions) -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "slave /".into())?;
    mount(
        Some(o.rootfs),
        o.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "bind rootfs".into())?;
    for m in o.spec.mounts().as_deref().unwrap_or(&[]) {
        let typ = m.typ().clone().unwrap_or_default();
        if typ == "cgroup" || typ == "sysfs" {
            continue;
        }
        let dest = o
            .rootfs
            .join(m.destination().strip_prefix("/").unwrap_or(m.destination()));
        std::fs::create_dir_all(&dest).ctx(|| format!("mkdir {}", dest.display()))?;
        let mut data = Vec::new();
        let mut flags = MsFlags::empty();
        for opt in m.options().as_deref().unwrap_or(&[]) {
            match opt.as_str() {
                "nosuid" => flags |= MsFlags::MS_NOSUID,
                "noexec" => flags |= MsFlags::MS_NOEXEC,
                "nodev" => flags |= MsFlags::MS_NODEV,
                "ro" => flags |= MsFlags::MS_RDONLY,
                "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
                "bind" => flags |= MsFlags::MS_BIND,
                "strictatime" | "relatime" | "rw" => {}
                o => data.push(o.to_string()),
            }
        }
        let data = data.join(",");
        mount(
            m.source().as_deref(),
            &dest,
            Some(typ.as_str()),
            flags,
            if data.is_empty() {
                None
            } else {
                Some(data.as_str())
            },
        )
        .ctx(|| format!("mount {}", m.destination().display()))?;
    }
    for d in ["null", "zero", "full", "random", "urandom", "tty"] {
        let t = o.rootfs.join("dev").join(d);
        let _ = std::fs::File::create(&t);
        mount(
            Some(Path::new("/dev").join(d).as_path()),
            &t,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("bind /dev/{d}"))?;
    }
    let _ = std::os::unix::fs::symlink("pts/ptmx", o.rootfs.join("dev/ptmx"));
    Ok(())
}

pub fn pivot(rootfs: &Path, _no_pivot: bool) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx(|| "chdir rootfs".into())?;
    nix::unistd::pivot_root(".", ".").ctx(|| "pivot_root".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "umount old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

pub fn finalize(spec: &oci_spec::runtime::Spec) -> Result<()> {
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .ctx(|| "ro /".into())?;
    }
    Ok(())
}
