//! The OCI runtime config.json for a container, generated from its record: Docker's defaults
//! (capabilities, masked and read-only paths, devices) plus what the create request asked.

use std::path::Path;

use serde_json::{json, Value};

use super::model::{ContainerRecord, DeviceMapping, HostSpec, MountKind, Ulimit};
use super::user;

/// Docker's default capability set.
/// The container's cgroupsPath (relative to the shim's own cgroups). Spare shims are told it
/// ahead, for the id they hold for their container (see `shim::Spares::reserve`).
pub(crate) fn cgroups_path(id: &str) -> String {
    format!("berth/{id}")
}

pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Every capability the kernel knows and the daemon holds, for --privileged: a capability
/// outside our own bounding set (berthd itself confined) cannot be granted, capset would fail.
fn all_caps() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    caps_list()
        .into_iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1u64 << bit) != 0)
        .map(|(_, name)| name)
        .collect()
}

fn caps_list() -> Vec<String> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    const NAMES: &[&str] = &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    NAMES
        .iter()
        .take(last as usize + 1)
        .map(|s| s.to_string())
        .collect()
}

fn cap_name(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability set after --privileged / --cap-add / --cap-drop.
pub fn capabilities(rec: &ContainerRecord) -> Vec<String> {
    capabilities_for(&rec.spec.host)
}

/// [`capabilities`] from the host config alone.
pub fn capabilities_for(h: &HostSpec) -> Vec<String> {
    if h.privileged {
        return all_caps();
    }
    let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    for a in &h.cap_add {
        if a.eq_ignore_ascii_case("ALL") {
            caps = all_caps();
        } else {
            let n = cap_name(a);
            if !caps.contains(&n) {
                caps.push(n);
            }
        }
    }
    for d in &h.cap_drop {
        if d.eq_ignore_ascii_case("ALL") {
            caps.clear();
        } else {
            let n = cap_name(d);
            caps.retain(|c| c != &n);
        }
    }
    caps
}

/// What a process runs as and with: the container's init or an exec.
pub struct ProcessParams<'a> {
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    /// Docker's User ("name", "uid:gid", …), resolved against the container's files.
    pub user: &'a str,
    pub tty: bool,
    pub caps: &'a [String],
    pub no_new_privileges: bool,
    /// [height, width] of the terminal.
    pub console_size: Option<[u16; 2]>,
    /// `--ulimit`s (an exec inherits the container's).
    pub ulimits: &'a [Ulimit],
}

/// The `process` object for the container's init or an exec.
pub fn process(rootfs: &Path, p: &ProcessParams) -> Result<Value, String> {
    let ProcessParams {
        args,
        env,
        cwd,
        user: user_spec,
        tty,
        caps,
        no_new_privileges,
        console_size,
        ulimits,
    } = *p;
    let ids = user::resolve(rootfs, user_spec)?;
    let mut env: Vec<String> = env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let mut p = json!({
        "terminal": tty,
        "user": {"uid": ids.uid, "gid": ids.gid},
        "args": args,
        "env": env,
        "cwd": if cwd.is_empty() { "/" } else { cwd },
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "noNewPrivileges": no_new_privileges,
    });
    if !ids.additional_gids.is_empty() {
        p["user"]["additionalGids"] = json!(ids.additional_gids);
    }
    if !ulimits.is_empty() {
        p["rlimits"] = rlimits(ulimits)?;
    }
    if let (true, Some([h, w])) = (tty, console_size) {
        p["consoleSize"] = json!({"height": h, "width": w});
    }
    Ok(p)
}

/// process.rlimits for `--ulimit`s (-1, unlimited, is RLIM_INFINITY).
pub fn rlimits(ulimits: &[Ulimit]) -> Result<Value, String> {
    let limit = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    ulimits
        .iter()
        .map(|u| {
            Ok(json!({"type": u.rlimit_type()?, "soft": limit(u.soft), "hard": limit(u.hard)}))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Value::Array)
}

/// The device nodes one `--device` gives the container, as (linux.devices entry, device
/// cgroup rule): a device node, or every device under a directory.
pub fn device_entries(d: &DeviceMapping) -> Result<Vec<(Value, Value)>, String> {
    let host = Path::new(&d.path_on_host);
    let target = if d.path_in_container.is_empty() {
        &d.path_on_host
    } else {
        &d.path_in_container
    };
    let access = if d.cgroup_permissions.is_empty() {
        "rwm"
    } else {
        d.cgroup_permissions.as_str()
    };
    if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(format!("invalid device mode: {access}"));
    }
    let gather = |e: std::io::Error| {
        format!(
            "error gathering device information while adding custom device {:?}: {}",
            d.path_on_host,
            e.to_string()
                .split(" (os error")
                .next()
                .unwrap_or_default()
                .to_lowercase()
        )
    };
    let meta = std::fs::metadata(host).map_err(gather)?;
    if meta.is_dir() {
        let mut out = Vec::new();
        let mut stack = vec![host.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(gather)? {
                let path = entry.map_err(gather)?.path();
                let Ok(m) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if m.is_dir() {
                    stack.push(path);
                } else if let Some(node) = device_entry(&path, &m, access) {
                    let rel = path.strip_prefix(host).unwrap_or(&path);
                    let dest = Path::new(target).join(rel);
                    out.push(with_path(node, &dest));
                }
            }
        }
        return Ok(out);
    }
    match device_entry(host, &meta, access) {
        Some(node) => Ok(vec![with_path(node, Path::new(target))]),
        None => Err(format!(
            "error gathering device information while adding custom device {:?}: not a device node",
            d.path_on_host
        )),
    }
}

fn with_path(mut node: (Value, Value), dest: &Path) -> (Value, Value) {
    node.0["path"] = json!(dest);
    node
}

/// A character or block device's entry and cgroup rule; None for anything else.
fn device_entry(_path: &Path, m: &std::fs::Metadata, access: &str) -> Option<(Value, Value)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let kind = if m.file_type().is_char_device() {
        "c"
    } else if m.file_type().is_block_device() {
        "b"
    } else {
        return None;
    };
    let (major, minor) = (
        nix::sys::stat::major(m.rdev()),
        nix::sys::stat::minor(m.rdev()),
    );
    Some((
        json!({"type": kind, "major": major, "minor": minor,
            "fileMode": m.permissions().mode() & 0o7777, "uid": m.uid(), "gid": m.gid()}),
        json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access}),
    ))
}

/// `--privileged` gives the container the host's devices, as Docker does: every character and
/// block device under /dev, skipping what the container mounts its own of (pts, shm, mqueue),
/// the fd links and the console (the runtime's own).
pub fn host_devices() -> Vec<Value> {
    const SKIP_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(m) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let name = entry.file_name();
            if m.is_dir() {
                if !SKIP_DIRS.iter().any(|s| name == *s) {
                    stack.push(path);
                }
            } else if name != "console" {
                if let Some((mut node, _)) = device_entry(&path, &m, "rwm") {
                    node["path"] = json!(path);
                    out.push(node);
                }
            }
        }
    }
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    out
}

/// linux.resources for the host config (also what `update` applies to a running container).
pub fn resources(h: &HostSpec) -> Value {
    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if h.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    let mut memory = serde_json::Map::new();
    if h.memory > 0 {
        memory.insert("limit".into(), json!(h.memory));
        // Docker: swap defaults to twice the memory limit.
        let swap = match h.memory_swap {
            0 => h.memory * 2,
            n => n,
        };
        memory.insert("swap".into(), json!(swap));
    }
    if h.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(h.memory_reservation));
    }
    if h.oom_kill_disable {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    if !memory.is_empty() {
        resources["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if h.nano_cpus > 0 {
        let period = 100_000i64;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!(h.nano_cpus * period / 1_000_000_000));
    } else {
        if h.cpu_quota > 0 {
            cpu.insert("quota".into(), json!(h.cpu_quota));
        }
        if h.cpu_period > 0 {
            cpu.insert("period".into(), json!(h.cpu_period));
        }
    }
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(h.cpu_shares));
    }
    if !h.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(h.cpuset_cpus));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = h.pids_limit.filter(|p| *p != 0) {
        resources["pids"] = json!({"limit": p});
    }
    resources
}

/// The whole config.json; `rootfs` is the mounted root of the container, `volume_dir` where a
/// named volume's data is.
pub fn config(
    rec: &ContainerRecord,
    rootfs: &Path,
    volume_dir: &dyn Fn(&str) -> std::path::PathBuf,
) -> Result<Value, String> {
    let s = &rec.spec;
    let h = &s.host;
    let caps = capabilities(rec);
    let no_new_privs = h.security_opt.iter().any(|o| {
        o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
    });
    let args = rec.argv();
    let process = process(
        rootfs,
        &ProcessParams {
            args: &args,
            env: &s.env,
            cwd: &s.working_dir,
            user: &s.user,
            tty: s.tty,
            caps: &caps,
            no_new_privileges: no_new_privs,
            console_size: h.console_size,
            ulimits: &h.ulimits,
        },
    )?;

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    if h.network_mode != "host" {
        namespaces.push(json!({"type": "network"}));
    }

    let shm = if h.shm_size > 0 { h.shm_size } else { 64 << 20 };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if h.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if h.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ];
    if h.network_mode == "host" {
        for f in ["/etc/resolv.conf", "/etc/hosts"] {
            if Path::new(f).exists() {
                mounts.push(json!({"destination": f, "type": "bind", "source": f, "options": ["rbind", "ro"]}));
            }
        }
    }
    for m in &h.mounts {
        let ro = if m.read_only { "ro" } else { "rw" };
        match m.kind {
            MountKind::Bind => mounts.push(json!({"destination": m.target, "type": "bind",
                "source": m.source, "options": ["rbind", ro]})),
            MountKind::Volume => mounts.push(json!({"destination": m.target, "type": "bind",
                "source": volume_dir(&m.source), "options": ["rbind", ro]})),
            MountKind::Tmpfs => {
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string(), ro.to_string()];
                if m.tmpfs_size > 0 {
                    opts.push(format!("size={}", m.tmpfs_size));
                }
                mounts.push(
                    json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs",
                    "options": opts}),
                );
            }
        }
    }

    let mut resources = resources(h);
    let mut devices = Vec::new();
    for d in &h.devices {
        for (node, rule) in device_entries(d)? {
            devices.push(node);
            if let Some(rules) = resources["devices"].as_array_mut() {
                rules.push(rule);
            }
        }
    }

    if h.privileged {
        // What --device mapped already keeps its place (and path).
        for node in host_devices() {
            if !devices.iter().any(|d| d["path"] == node["path"]) {
                devices.push(node);
            }
        }
    }

    let mut linux = json!({
        "resources": resources,
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path(&rec.id),
    });
    if !devices.is_empty() {
        linux["devices"] = Value::Array(devices);
    }
    if !h.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if !h.sysctls.is_empty() {
        linux["sysctl"] = json!(h.sysctls);
    }
    // Docker's default profile unless unconfined or privileged; rules follow the capabilities.
    if let Some(profile) = super::seccomp::linux_seccomp(&h.security_opt, h.privileged, &caps)
        .map_err(|e| e.to_string())?
    {
        linux["seccomp"] = profile;
    }
    let mut cfg = json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": rootfs, "readonly": h.readonly_rootfs},
        "hostname": if s.hostname.is_empty() { &rec.id[..12] } else { &s.hostname },
        "mounts": mounts,
        "linux": linux,
    });
    if h.init == Some(true) {
        cfg["annotations"] = json!({ berth_runtime::container::INIT_ANNOTATION: "true" });
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_become_rlimits() {
        let u = |name: &str, soft, hard| Ulimit {
            name: name.into(),
            soft,
            hard,
        };
        let r = rlimits(&[u("nofile", 10, 20), u("core", -1, -1)]).expect("rlimits");
        assert_eq!(
            r,
            json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20},
                {"type": "RLIMIT_CORE", "soft": u64::MAX, "hard": u64::MAX}])
        );
        assert!(rlimits(&[u("bogus", 1, 1)]).is_err());
        assert!(rlimits(&[u("nofile", 2, 1)]).is_err());
    }

    #[test]
    fn devices_are_stat_from_the_host() {
        let d = |host: &str, ctr: &str, perms: &str| DeviceMapping {
            path_on_host: host.into(),
            path_in_container: ctr.into(),
            cgroup_permissions: perms.into(),
        };
        let e = device_entries(&d("/dev/null", "/dev/mynull", "rw")).expect("/dev/null");
        assert_eq!(e.len(), 1);
        let (node, rule) = &e[0];
        assert_eq!(
            (&node["path"], &node["type"], &node["major"], &node["minor"]),
            (&json!("/dev/mynull"), &json!("c"), &json!(1), &json!(3))
        );
        assert_eq!(rule["access"], "rw");
        let e = device_entries(&d("/dev/null", "", "")).expect("defaults");
        assert_eq!(
            (e[0].0["path"].as_str(), e[0].1["access"].as_str()),
            (Some("/dev/null"), Some("rwm"))
        );
        let err = device_entries(&d("/dev/no-such", "", "")).unwrap_err();
        assert!(
            err.ends_with("\"/dev/no-such\": no such file or directory"),
            "{err}"
        );
        assert!(device_entries(&d("/etc/hostname", "", "")).is_err());
        assert!(device_entries(&d("/dev/null", "", "rx")).is_err());
    }
}
