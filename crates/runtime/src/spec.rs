//! Loading and validating a bundle's config.json.
//!
//! Parsing goes through `serde_path_to_error` so a type error names the JSON path of the field
//! (`linux.namespaces[2].type`); the checks after parsing do the same for what serde cannot know.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// A parsed, validated bundle: the spec plus absolute paths derived from it.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    /// Read `<dir>/config.json`, parse it and validate it against the host.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir)
            .map_err(|e| Error::io(format!("bundle directory {}", dir.display()), e))?;
        let config = dir.join("config.json");
        let bytes = std::fs::read(&config)
            .map_err(|e| Error::io(format!("read {}", config.display()), e))?;
        let spec = parse(&bytes)?;
        validate(&spec)?;
        let root = spec.root().as_ref().ok_or_else(|| {
            Error::config("root", "missing: a Linux container needs a root filesystem")
        })?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| {
            Error::config(
                "root.path",
                format!("root filesystem {} is not usable: {e}", rootfs.display()),
            )
        })?;
        if !rootfs.is_dir() {
            return Err(Error::config(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        Ok(Bundle { dir, rootfs, spec })
    }
}

/// Parse config.json bytes; errors name the JSON path of the bad field.
pub fn parse(bytes: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "(document)".to_string()
        } else {
            path
        };
        Error::config(path, e.into_inner().to_string())
    })
}

/// Checks that serde cannot express: required fields, consistency, impossible requests.
pub fn validate(spec: &Spec) -> Result<()> {
    if let Some(process) = spec.process() {
        match process.args() {
            Some(args) if !args.is_empty() && !args[0].is_empty() => {}
            _ => {
                return Err(Error::config(
                    "process.args",
                    "must name a program to run (it is empty)",
                ))
            }
        }
        if !process.cwd().is_absolute() {
            return Err(Error::config(
                "process.cwd",
                format!("{:?} is not an absolute path", process.cwd()),
            ));
        }
        if let Some(env) = process.env() {
            for (i, e) in env.iter().enumerate() {
                if !e.contains('=') {
                    return Err(Error::config(
                        format!("process.env[{i}]"),
                        format!("{e:?} is not of the form KEY=value"),
                    ));
                }
            }
        }
    }

    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::config(
                format!("linux.namespaces[{i}].type"),
                format!("namespace {} is listed twice", ns.typ()),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(Error::config(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} is not an absolute path", p.display()),
                ));
            }
        }
    }
    let has = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    let new_user_ns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());

    for (field, maps) in [
        ("uidMappings", linux.uid_mappings()),
        ("gidMappings", linux.gid_mappings()),
    ] {
        let Some(maps) = maps else { continue };
        if !maps.is_empty() && !has(LinuxNamespaceType::User) {
            return Err(Error::config(
                format!("linux.{field}"),
                "mappings given but there is no user namespace",
            ));
        }
        check_mappings(field, maps)?;
    }
    if new_user_ns {
        let empty = |m: &Option<Vec<LinuxIdMapping>>| m.as_ref().is_none_or(|v| v.is_empty());
        if empty(linux.uid_mappings()) || empty(linux.gid_mappings()) {
            return Err(Error::config(
                "linux.uidMappings",
                "a new user namespace needs both uidMappings and gidMappings",
            ));
        }
    }
    if linux.time_offsets().is_some() && !has(LinuxNamespaceType::Time) {
        return Err(Error::config(
            "linux.timeOffsets",
            "offsets given but there is no time namespace",
        ));
    }
    if let Some(offsets) = linux.time_offsets() {
        for key in offsets.keys() {
            if key != "monotonic" && key != "boottime" {
                return Err(Error::config(
                    format!("linux.timeOffsets.{key}"),
                    "only the monotonic and boottime clocks can be offset",
                ));
            }
        }
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            if key.contains("..") || key.starts_with('/') || key.starts_with('.') {
                return Err(Error::config(
                    format!("linux.sysctl.{key}"),
                    "not a sysctl name",
                ));
            }
        }
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(Error::config(
            "hostname",
            "setting a hostname needs a uts namespace",
        ));
    }
    Ok(())
}

fn check_mappings(field: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            return Err(Error::config(
                format!("linux.{field}[{i}].size"),
                "size must be at least 1",
            ));
        }
        let end = m.container_id() as u64 + m.size() as u64;
        let host_end = m.host_id() as u64 + m.size() as u64;
        if end > u32::MAX as u64 || host_end > u32::MAX as u64 {
            return Err(Error::config(
                format!("linux.{field}[{i}]"),
                "the range runs past the largest id (4294967295)",
            ));
        }
        for (j, other) in maps.iter().enumerate().take(i) {
            let overlap = |a: u32, b: u32| {
                (a as u64) < b as u64 + other.size() as u64
                    && (b as u64) < a as u64 + m.size() as u64
            };
            if overlap(m.container_id(), other.container_id()) {
                return Err(Error::config(
                    format!("linux.{field}[{i}]"),
                    format!("containerID range overlaps entry {j}"),
                ));
            }
        }
    }
    if maps.len() > 340 {
        return Err(Error::config(
            format!("linux.{field}"),
            "the kernel accepts at most 340 mappings",
        ));
    }
    Ok(())
}

/// The config.json `spec` writes: runc's default, so tools that expect it find what they know.
/// With `rootless`, a user namespace maps the caller's ids and cgroups and network are left alone.
pub fn default_spec(rootless: bool) -> serde_json::Value {
    let mut spec = serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if rootless {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let linux = &mut spec["linux"];
        linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = serde_json::json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}
        ]);
        linux.as_object_mut().map(|l| l.remove("resources"));
        let mounts = spec["mounts"].as_array_mut();
        if let Some(mounts) = mounts {
            mounts.retain(|m| m["type"] != "cgroup");
            for m in mounts.iter_mut() {
                if m["type"] == "sysfs" {
                    *m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                }
                if m["type"] == "devpts" {
                    m["options"] = serde_json::json!([
                        "nosuid",
                        "noexec",
                        "newinstance",
                        "ptmxmode=0666",
                        "mode=0620"
                    ]);
                }
            }
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_path(json: &str) -> String {
        match parse(json.as_bytes()).and_then(|s| validate(&s).map(|_| s)) {
            Err(Error::InvalidConfig { path, .. }) => path,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn type_error_names_json_path() {
        let p = err_path(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#,
        );
        assert_eq!(p, "linux.namespaces[1].type");
    }

    #[test]
    fn empty_args_rejected() {
        let p = err_path(
            r#"{"ociVersion":"1.0.2","process":{"cwd":"/","args":[],"user":{"uid":0,"gid":0}}}"#,
        );
        assert_eq!(p, "process.args");
    }

    #[test]
    fn user_ns_without_mappings_rejected() {
        let p = err_path(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"user"}]}}"#);
        assert_eq!(p, "linux.uidMappings");
    }

    #[test]
    fn zero_size_mapping_rejected() {
        let p = err_path(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"user"}],
            "uidMappings":[{"containerID":0,"hostID":1000,"size":0}],
            "gidMappings":[{"containerID":0,"hostID":1000,"size":1}]}}"#,
        );
        assert_eq!(p, "linux.uidMappings[0].size");
    }

    #[test]
    fn duplicate_namespace_rejected() {
        let p = err_path(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#,
        );
        assert_eq!(p, "linux.namespaces[1].type");
    }

    #[test]
    fn default_spec_parses_and_validates() {
        for rootless in [false, true] {
            let text = serde_json::to_vec(&default_spec(rootless)).unwrap();
            let spec = parse(&text).unwrap();
            validate(&spec).unwrap();
            assert_eq!(
                spec.process().as_ref().unwrap().args().as_ref().unwrap(),
                &vec!["sh".to_string()]
            );
        }
    }

    #[test]
    fn valid_minimal_spec_passes() {
        let s = parse(br#"{"ociVersion":"1.2.0","process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}},"root":{"path":"rootfs"}}"#).unwrap();
        validate(&s).unwrap();
    }
}
