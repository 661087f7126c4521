//! /proc/self/mountinfo, parsed: which filesystems are mounted where, with which propagation.

use std::path::PathBuf;

use crate::error::{Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Path of the mounted directory inside the mount's filesystem (field 4).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,...`).
    pub options: String,
    /// Optional fields (`shared:1`, `master:2`, ...).
    pub optional: Vec<String>,
    pub fs_type: String,
    pub source: String,
    /// Per-superblock options (`rw,cpu,cpuacct` for a cgroup v1 hierarchy).
    pub super_options: String,
}

impl MountInfo {
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }
}

/// The host's cgroup hierarchies (`cgroup` and `cgroup2` mounts), as remembered by
/// `remember_cgroup_mounts` or read now.
pub fn host_cgroup_mounts() -> Result<Vec<MountInfo>> {
    match HOST_CGROUP_MOUNTS.get() {
        Some(known) => Ok(known.clone()),
        None => Ok(cgroup_mounts(read()?)),
    }
}

/// Read the host's cgroup hierarchies once and keep them for this process's life: a spare shim
/// does it while it waits, and the container's process it clones inherits the answer instead
/// of reading (and growing) its own mount table during setup.
pub fn remember_cgroup_mounts() -> Result<()> {
    if HOST_CGROUP_MOUNTS.get().is_none() {
        let _ = HOST_CGROUP_MOUNTS.set(cgroup_mounts(read()?));
    }
    Ok(())
}

static HOST_CGROUP_MOUNTS: std::sync::OnceLock<Vec<MountInfo>> = std::sync::OnceLock::new();

fn cgroup_mounts(all: Vec<MountInfo>) -> Vec<MountInfo> {
    all.into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .collect()
}

pub fn read() -> Result<Vec<MountInfo>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .ctx(|| "read /proc/self/mountinfo".to_string())?;
    Ok(parse(&text))
}

pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let _id = l.next()?;
    let _parent = l.next()?;
    let _dev = l.next()?;
    let root = unescape(l.next()?);
    let mount_point = unescape(l.next()?);
    let options = l.next()?.to_string();
    let optional = l.map(str::to_string).collect();
    let mut r = right.split(' ');
    Some(MountInfo {
        root: PathBuf::from(root),
        mount_point: PathBuf::from(mount_point),
        options,
        optional,
        fs_type: r.next()?.to_string(),
        source: unescape(r.next()?),
        super_options: r.next().unwrap_or("").to_string(),
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &s[i + 1..i + 4];
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_fields_and_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n\
                    40 25 0:35 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt two"));
        assert_eq!(m[0].root, PathBuf::from("/mnt1"));
        assert!(m[0].is_shared());
        assert_eq!(m[0].fs_type, "ext3");
        assert_eq!(m[1].super_options, "rw,cpu,cpuacct");
        assert!(!m[1].is_shared());
    }

    #[test]
    fn reads_this_process() {
        let m = read().unwrap();
        assert!(m.iter().any(|e| e.mount_point == Path::new("/")));
    }
}
