//! Bad input fails with the field's name and creates nothing.

use std::path::Path;

use berth_testsupport::{require_root, unique_id};

use super::resources;
use crate::cgroups::{open, open_at, Version};

#[test]
fn dotdot_in_cgroups_path_is_refused() {
    let err = open(Some("/berth/../etc"), "x").unwrap_err().to_string();
    assert!(err.contains("cgroupsPath"), "{err}");
}

#[test]
fn bad_values_on_the_host_create_nothing() {
    if !require_root!() {
        return;
    }
    for (json, field) in [
        (r#"{"cpu": {"cpus": "0-2,x"}}"#, "cpu.cpus"),
        (r#"{"cpu": {"mems": "1-0"}}"#, "cpu.mems"),
        (
            r#"{"memory": {"limit": 268435456, "swap": 134217728}}"#,
            "memory.swap",
        ),
        (r#"{"memory": {"limit": -2}}"#, "memory.limit"),
        (r#"{"cpu": {"shares": 1}}"#, "cpu.shares"),
        (r#"{"blockIO": {"weight": 5000}}"#, "blockIO.weight"),
        (
            r#"{"devices": [{"allow": true, "access": "rwx"}]}"#,
            "devices",
        ),
    ] {
        let id = unique_id("cgbad");
        let m = open(Some(&format!("/berth-test-bad/{id}")), &id).unwrap();
        let err = m.create(Some(&resources(json))).unwrap_err().to_string();
        assert!(err.contains(field), "{json}: {err}");
        assert!(!m.exists(), "{json}: cgroup created anyway");
        for hierarchy in ["memory", "cpu", "pids", "unified", ""] {
            let p = Path::new("/sys/fs/cgroup")
                .join(hierarchy)
                .join("berth-test-bad")
                .join(&id);
            assert!(!p.exists(), "{json}: {} created", p.display());
        }
    }
}

#[test]
fn bad_values_on_fake_v2_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("cgroup.controllers"), "cpu cpuset memory\n").unwrap();
    std::fs::write(tmp.path().join("cgroup.subtree_control"), "").unwrap();
    let m = open_at(tmp.path(), Version::V2, None, "bad").unwrap();
    let err = m
        .create(Some(&resources(
            r#"{"memory": {"limit": 1000000, "swap": 10}}"#,
        )))
        .unwrap_err()
        .to_string();
    assert!(err.contains("memory.swap"), "{err}");
    let err = m
        .create(Some(&resources(r#"{"cpu": {"cpus": "zero"}}"#)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cpu.cpus"), "{err}");
    assert!(!tmp.path().join("berth").exists());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("cgroup.subtree_control")).unwrap(),
        ""
    );
}

#[test]
fn kernel_refusal_after_mkdir_removes_what_create_made() {
    if !require_root!() {
        return;
    }
    // Valid syntax, but no such CPU: only the kernel can refuse it, after the mkdirs.
    let id = unique_id("cgkern");
    let parent = format!("berth-test-kern-{id}");
    let m = open(Some(&format!("/{parent}/{id}")), &id).unwrap();
    let err = m
        .create(Some(&resources(r#"{"cpu": {"cpus": "4000"}}"#)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cpu.cpus"), "{err}");
    assert!(!m.exists());
    for hierarchy in ["memory", "cpuset", "devices", "unified", ""] {
        let p = Path::new("/sys/fs/cgroup").join(hierarchy).join(&parent);
        assert!(!p.exists(), "{} left behind", p.display());
    }
}
