//! Where a container's cgroup lives: `linux.cgroupsPath` resolution, the calling process's own
//! cgroups (/proc/self/cgroup) and the host's cgroup mounts (/proc/self/mountinfo).

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::fsutil::cgroup_err;
use crate::error::Result;

/// A validated `linux.cgroupsPath`, before it is placed in a hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupPath {
    /// From the hierarchy's root.
    Absolute(PathBuf),
    /// Below the calling process's own cgroup in that hierarchy.
    Relative(PathBuf),
}

impl CgroupPath {
    /// `None` means "/berth/<container_id>". A systemd-style "slice:prefix:name" (what containerd
    /// and kubelet send with the systemd driver) maps to the directory systemd would use.
    pub(crate) fn parse(cgroups_path: Option<&str>, container_id: &str) -> Result<Self> {
        let raw = match cgroups_path {
            None | Some("") => format!("/berth/{container_id}"),
            Some(p) if is_systemd_style(p) => systemd_to_path(p)?,
            Some(p) => p.to_string(),
        };
        let path = PathBuf::from(&raw);
        for c in path.components() {
            match c {
                Component::Normal(_) | Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(cgroup_err(
                        &path,
                        "linux.cgroupsPath must not contain \"..\"",
                    ))
                }
            }
        }
        // Normalise away "." and duplicate slashes so equal paths compare equal.
        let rel: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if rel.as_os_str().is_empty() {
            return Err(cgroup_err(
                &path,
                "linux.cgroupsPath names the hierarchy root itself",
            ));
        }
        Ok(if path.is_absolute() {
            CgroupPath::Absolute(rel)
        } else {
            CgroupPath::Relative(rel)
        })
    }

    /// The cgroup directory in a hierarchy mounted at `mountpoint`, whose root is `mount_root`
    /// inside the hierarchy, for a process that sits in `own` (from /proc/self/cgroup).
    pub(crate) fn dir_in(&self, mountpoint: &Path, mount_root: &Path, own: &Path) -> PathBuf {
        match self {
            CgroupPath::Absolute(rel) => mountpoint.join(rel),
            CgroupPath::Relative(rel) => {
                // Our own cgroup is given from the hierarchy root; the mount may show a subtree.
                let own = own.strip_prefix(mount_root).unwrap_or(own);
                let own = own.strip_prefix("/").unwrap_or(own);
                mountpoint.join(own).join(rel)
            }
        }
    }
}

fn is_systemd_style(p: &str) -> bool {
    !p.starts_with('/') && p.matches(':').count() == 2
}

/// "system.slice:docker:abc" -> "/system.slice/docker-abc.scope";
/// "kubepods-besteffort.slice:cri:x" -> "/kubepods.slice/kubepods-besteffort.slice/cri-x.scope".
fn systemd_to_path(p: &str) -> Result<String> {
    let mut parts = p.splitn(3, ':');
    let (slice, prefix, name) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if name.is_empty() || name.contains('/') || prefix.contains('/') || slice.contains('/') {
        return Err(cgroup_err(
            p,
            "linux.cgroupsPath in \"slice:prefix:name\" form needs a name and no '/'",
        ));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let mut path = String::new();
    if slice != "-.slice" {
        let stem = slice.strip_suffix(".slice").ok_or_else(|| {
            cgroup_err(p, "linux.cgroupsPath: systemd slice must end in \".slice\"")
        })?;
        // Each dash starts a nested slice: a-b.slice lives in a.slice.
        let mut acc = String::new();
        for piece in stem.split('-') {
            if piece.is_empty() {
                return Err(cgroup_err(p, "linux.cgroupsPath: bad systemd slice name"));
            }
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(piece);
            path.push('/');
            path.push_str(&acc);
            path.push_str(".slice");
        }
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(format!("{path}/{unit}"))
}

/// One line of /proc/<pid>/cgroup: the controllers of a hierarchy ("" for cgroup v2) and the
/// process's cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnCgroup {
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<OwnCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let _id = it.next()?;
            let controllers = it.next()?;
            let path = it.next()?;
            Some(OwnCgroup {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// Our own cgroups. Read once per process when `remember` was called (a shim, which never
/// moves itself), else every time.
pub(crate) fn own_cgroups() -> Vec<OwnCgroup> {
    if let Some(known) = REMEMBERED.get() {
        return known.own.clone();
    }
    read_own_cgroups()
}

fn read_own_cgroups() -> Vec<OwnCgroup> {
    fs::read_to_string("/proc/self/cgroup")
        .map(|s| parse_proc_cgroup(&s))
        .unwrap_or_default()
}

/// What a long-lived process that does not move itself may read once: its own cgroups and
/// the host's cgroup mounts.
struct Remembered {
    own: Vec<OwnCgroup>,
    mounts: Vec<CgroupMount>,
}

static REMEMBERED: std::sync::OnceLock<Remembered> = std::sync::OnceLock::new();

/// Read our own cgroups and the host's cgroup mounts now and keep them for this process's
/// life (see `cgroups::remember_host`).
pub(crate) fn remember() -> Result<()> {
    if REMEMBERED.get().is_none() {
        let mounts = read_host_mounts()?;
        let _ = REMEMBERED.set(Remembered {
            own: read_own_cgroups(),
            mounts,
        });
    }
    Ok(())
}

/// The calling process's cgroup in the v2 hierarchy ("0::/path"), or "/" if unknown.
pub(crate) fn own_v2_path(own: &[OwnCgroup]) -> PathBuf {
    own.iter()
        .find(|o| o.controllers.is_empty())
        .map(|o| o.path.clone())
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The calling process's cgroup in the v1 hierarchy holding exactly `controllers`.
pub(crate) fn own_v1_path(own: &[OwnCgroup], controllers: &[String]) -> PathBuf {
    let mut want: Vec<&str> = controllers.iter().map(String::as_str).collect();
    want.sort_unstable();
    own.iter()
        .find(|o| {
            let mut have: Vec<&str> = o.controllers.iter().map(String::as_str).collect();
            have.sort_unstable();
            !have.is_empty() && have == want
        })
        .map(|o| o.path.clone())
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// A cgroup filesystem mount from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    pub mountpoint: PathBuf,
    /// The part of the hierarchy this mount shows ("/" normally).
    pub root: PathBuf,
    /// v1 controllers (and "name=..." for named hierarchies); empty for cgroup2.
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// cgroup and cgroup2 mounts in mountinfo text. `known` lists the kernel's v1 controller names
/// (/proc/cgroups) so mount options like "rw" or "clone_children" are not taken for controllers.
pub(crate) fn parse_mountinfo(text: &str, known: &[String]) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let fstype = post[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let controllers = if fstype == "cgroup" {
            post[2]
                .split(',')
                .filter(|o| o.starts_with("name=") || known.iter().any(|k| k == o))
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        out.push(CgroupMount {
            mountpoint: PathBuf::from(unescape_octal(pre[4])),
            root: PathBuf::from(unescape_octal(pre[3])),
            controllers,
            v2: fstype == "cgroup2",
        });
    }
    out
}

/// mountinfo writes space, tab, newline and backslash as \ooo.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// v1 controller names the kernel knows, from /proc/cgroups.
pub(crate) fn kernel_controllers() -> Vec<String> {
    fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

pub(crate) fn host_mounts() -> Result<Vec<CgroupMount>> {
    if let Some(known) = REMEMBERED.get() {
        return Ok(known.mounts.clone());
    }
    read_host_mounts()
}

fn read_host_mounts() -> Result<Vec<CgroupMount>> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| cgroup_err("/proc/self/mountinfo", format!("read: {e}")))?;
    Ok(parse_mountinfo(&text, &kernel_controllers()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_berth_id() {
        assert_eq!(
            CgroupPath::parse(None, "c1").unwrap(),
            CgroupPath::Absolute(PathBuf::from("berth/c1"))
        );
    }

    #[test]
    fn relative_and_absolute_paths() {
        assert_eq!(
            CgroupPath::parse(Some("a/./b//c"), "x").unwrap(),
            CgroupPath::Relative(PathBuf::from("a/b/c"))
        );
        let abs = CgroupPath::parse(Some("/x/y"), "x").unwrap();
        assert_eq!(
            abs.dir_in(
                Path::new("/sys/fs/cgroup/memory"),
                Path::new("/"),
                Path::new("/me")
            ),
            PathBuf::from("/sys/fs/cgroup/memory/x/y")
        );
        let rel = CgroupPath::parse(Some("y"), "x").unwrap();
        assert_eq!(
            rel.dir_in(Path::new("/mnt"), Path::new("/"), Path::new("/me/too")),
            PathBuf::from("/mnt/me/too/y")
        );
        assert_eq!(
            rel.dir_in(Path::new("/mnt"), Path::new("/me"), Path::new("/me/too")),
            PathBuf::from("/mnt/too/y")
        );
    }

    #[test]
    fn dotdot_is_rejected() {
        let err = CgroupPath::parse(Some("/a/../b"), "x").unwrap_err();
        assert!(err.to_string().contains("cgroupsPath"), "{err}");
        assert!(CgroupPath::parse(Some("../b"), "x").is_err());
        assert!(CgroupPath::parse(Some("/"), "x").is_err());
    }

    #[test]
    fn systemd_style_paths_map_to_scopes() {
        assert_eq!(
            systemd_to_path("system.slice:docker:abc").unwrap(),
            "/system.slice/docker-abc.scope"
        );
        assert_eq!(
            systemd_to_path("kubepods-besteffort.slice:cri:x").unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice/cri-x.scope"
        );
        assert_eq!(systemd_to_path("-.slice::n").unwrap(), "/n.scope");
        assert!(systemd_to_path("bad:p:n").is_err());
    }

    #[test]
    fn proc_cgroup_and_mountinfo() {
        let own = parse_proc_cgroup("4:memory:/a/b\n1:cpu,cpuacct:/c\n0::/u\n9:name=systemd:/\n");
        assert_eq!(own_v2_path(&own), PathBuf::from("/u"));
        assert_eq!(own_v1_path(&own, &["memory".into()]), PathBuf::from("/a/b"));
        assert_eq!(
            own_v1_path(&own, &["cpuacct".into(), "cpu".into()]),
            PathBuf::from("/c")
        );
        assert_eq!(own_v1_path(&own, &["pids".into()]), PathBuf::from("/"));

        let known: Vec<String> = ["cpu", "cpuacct", "memory"].map(String::from).to_vec();
        let mounts = parse_mountinfo(
            "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct,clone_children\n\
             31 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
             32 25 0:28 /sub /mnt/with\\040space rw - cgroup2 cgroup2 rw\n\
             33 25 0:29 / /proc rw - proc proc rw\n",
            &known,
        );
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(mounts[1].controllers, vec!["name=systemd"]);
        assert!(mounts[2].v2);
        assert_eq!(mounts[2].mountpoint, PathBuf::from("/mnt/with space"));
        assert_eq!(mounts[2].root, PathBuf::from("/sub"));
    }
}
