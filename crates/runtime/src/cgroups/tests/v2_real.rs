//! cgroup v2 for real on the host's cgroup2 mount (/sys/fs/cgroup itself on a v2 host, or
//! /sys/fs/cgroup/unified on a hybrid one): cgroup.freeze and the eBPF device program.

use std::fs;
use std::path::{Path, PathBuf};

use berth_testsupport::{require, require_root, unique_id};

use super::{make_char_node, resources, Helper, Sleeper};
use crate::cgroups::bpf;
use crate::cgroups::devices::DeviceRule;
use crate::cgroups::{open_at, Version};

/// The host's cgroup2 mount, if any.
fn cgroup2_root() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            nix::sys::statfs::statfs(p.as_path())
                .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
                .unwrap_or(false)
        })
}

fn v2_root() -> Option<PathBuf> {
    if !require_root!() {
        return None;
    }
    let root = cgroup2_root();
    if require(root.is_some(), "a cgroup2 mount") {
        root
    } else {
        None
    }
}

/// A helper that, each time it is released (two rounds), opens `zero` then `null` and reports
/// each (dd with count=0 only opens; its output goes to the inherited pipe).
fn device_helper(zero: &str, null: &str) -> Helper {
    Helper::spawn(&format!(
        "for round in 1 2; do\n\
           read x\n\
           dd if={zero} count=0; echo zero=$?\n\
           dd if={null} count=0; echo null=$?\n\
           echo round$round\n\
         done\n\
         read y"
    ))
}

fn result(out: &[String], key: &str) -> bool {
    let line = out
        .iter()
        .find(|l| l.starts_with(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {out:?}"));
    line == &format!("{key}=0")
}

#[test]
fn ebpf_device_program_denies_zero_allows_null_and_is_replaced() {
    let Some(root) = v2_root() else { return };
    let dir = root.join(unique_id("berth-bpf"));
    fs::create_dir(&dir).unwrap();
    let cleanup = scopeguard(&dir);

    bpf::apply_rules(
        &dir,
        &[DeviceRule::deny_all(), DeviceRule::allow_char(1, Some(3))],
    )
    .unwrap();
    let first = bpf::attached_program_ids(&dir).unwrap();
    assert_eq!(first.len(), 1, "{first:?}");

    let mut helper = device_helper("/dev/zero", "/dev/null");
    fs::write(dir.join("cgroup.procs"), helper.pid().to_string()).unwrap();
    helper.go();
    let out = helper.until("round1");
    assert!(!result(&out, "zero"), "zero must be denied: {out:?}");
    assert!(
        out.iter().any(|l| l.contains("Operation not permitted")),
        "{out:?}"
    );
    assert!(result(&out, "null"), "null must be allowed: {out:?}");

    // Replace: now zero allowed and null denied; still exactly one program attached.
    bpf::apply_rules(
        &dir,
        &[DeviceRule::deny_all(), DeviceRule::allow_char(1, Some(5))],
    )
    .unwrap();
    let second = bpf::attached_program_ids(&dir).unwrap();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second);
    helper.go();
    let out = helper.until("round2");
    assert!(result(&out, "zero"), "zero now allowed: {out:?}");
    assert!(!result(&out, "null"), "null now denied: {out:?}");
    drop(helper);
    drop(cleanup);
}

#[test]
fn v2_manager_freezes_and_applies_default_devices() {
    let Some(root) = v2_root() else { return };
    let id = unique_id("berth-v2");
    let m = open_at(&root, Version::V2, Some(&format!("/{id}")), &id).unwrap();
    let dir = root.join(&id);
    m.create(Some(&resources(
        r#"{"devices": [{"allow": false, "access": "rwm"}]}"#,
    )))
    .unwrap();
    assert!(m.exists() && dir.is_dir());
    assert_eq!(bpf::attached_program_ids(&dir).unwrap().len(), 1);

    // 1:11 is not among the default devices; 1:5 (zero) is.
    let tmp = tempfile::tempdir().unwrap();
    let kmsg = make_char_node(tmp.path(), "kmsg", 1, 11);
    std::fs::File::open(&kmsg).expect("open outside the cgroup");
    let mut helper = device_helper(&kmsg.display().to_string(), "/dev/zero");
    let sleeper = Sleeper::spawn();
    m.add_process(helper.pid()).unwrap();
    m.add_process(sleeper.pid()).unwrap();
    let pids = m.pids().unwrap();
    assert!(
        pids.contains(&helper.pid()) && pids.contains(&sleeper.pid()),
        "{pids:?}"
    );

    helper.go();
    let out = helper.until("round1");
    assert!(!result(&out, "zero"), "1:11 denied: {out:?}");
    assert!(
        result(&out, "null"),
        "/dev/zero allowed by default: {out:?}"
    );

    // An update without device rules keeps the program.
    m.update(&resources("{}")).unwrap();
    assert_eq!(bpf::attached_program_ids(&dir).unwrap().len(), 1);

    m.freeze().unwrap();
    assert!(m.is_frozen().unwrap());
    let events = fs::read_to_string(dir.join("cgroup.events")).unwrap();
    assert!(events.lines().any(|l| l == "frozen 1"), "{events}");
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());

    // Thawed, the helper runs again.
    helper.go();
    helper.until("round2");

    drop(helper);
    drop(sleeper);
    m.destroy().unwrap();
    assert!(!m.exists());
}

/// Remove a test cgroup (after its processes were killed) when dropped.
fn scopeguard(dir: &Path) -> impl Drop + '_ {
    struct Guard<'a>(&'a Path);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            for _ in 0..100 {
                if fs::remove_dir(self.0).is_ok() || !self.0.exists() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    Guard(dir)
}
