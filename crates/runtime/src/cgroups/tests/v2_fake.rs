//! cgroup v2 translation against a fake cgroupfs tree: the exact file contents a real kernel
//! would receive, and controllers enabled top-down.

use std::fs;
use std::path::Path;

use super::{read_trim, resources};
use crate::cgroups::{open_at, Manager, Version};

const LEAF_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.freeze",
    "cgroup.subtree_control",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "memory.max",
    "memory.low",
    "memory.high",
    "memory.swap.max",
    "memory.current",
    "pids.max",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
];

/// root/{cgroup.controllers, cgroup.subtree_control}, an intermediate "pod" level and the
/// container's leaf with its (empty) knob files, as a kernel would show them.
fn fake_tree(root: &Path, id: &str) -> std::path::PathBuf {
    fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    )
    .unwrap();
    fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    let pod = root.join("pod");
    fs::create_dir(&pod).unwrap();
    fs::write(pod.join("cgroup.subtree_control"), "").unwrap();
    let leaf = pod.join(id);
    fs::create_dir(&leaf).unwrap();
    for f in LEAF_FILES {
        fs::write(leaf.join(f), "").unwrap();
    }
    fs::write(leaf.join("memory.current"), "1048576\n").unwrap();
    leaf
}

fn manager(root: &Path, id: &str) -> Box<dyn Manager> {
    open_at(root, Version::V2, Some(&format!("/pod/{id}")), id).unwrap()
}

#[test]
fn v2_resources_translate_to_exact_files() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_tree(tmp.path(), "c1");
    let m = manager(tmp.path(), "c1");
    assert_eq!(m.version(), Version::V2);
    m.create(Some(&resources(
        r#"{
        "memory": {"limit": 268435456, "reservation": 134217728, "swap": 536870912},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "idle": 0,
                "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 100},
        "blockIO": {"weight": 500,
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "200000000"}
    }"#,
    )))
    .unwrap();

    let f = |name: &str| read_trim(leaf.join(name));
    assert_eq!(f("cpu.weight"), "39");
    assert_eq!(f("cpu.max"), "50000 100000");
    assert_eq!(f("cpu.max.burst"), "1000");
    assert_eq!(f("cpu.idle"), "0");
    assert_eq!(f("cpuset.cpus"), "0-1");
    assert_eq!(f("cpuset.mems"), "0");
    assert_eq!(f("memory.max"), "268435456");
    assert_eq!(
        f("memory.swap.max"),
        "268435456",
        "swap alone = 512M - 256M"
    );
    assert_eq!(f("memory.low"), "134217728");
    assert_eq!(f("memory.high"), "200000000");
    assert_eq!(f("pids.max"), "100");
    assert_eq!(f("io.weight"), "4950");
    assert_eq!(f("io.max"), "8:0 rbps=1048576 wiops=100");
    assert_eq!(f("hugetlb.2MB.max"), "4194304");
    // The leaf's own subtree_control is left alone: it will hold processes.
    assert_eq!(f("cgroup.subtree_control"), "");

    let enabled = "+cpu +cpuset +hugetlb +io +memory +pids";
    assert_eq!(
        read_trim(tmp.path().join("cgroup.subtree_control")),
        enabled
    );
    assert_eq!(
        read_trim(tmp.path().join("pod/cgroup.subtree_control")),
        enabled
    );

    // Update: unlimited memory means unlimited swap; quota -1 keeps the period.
    m.update(&resources(
        r#"{"memory": {"limit": -1}, "cpu": {"quota": -1, "period": 200000}, "pids": {"limit": -1}}"#,
    ))
    .unwrap();
    assert_eq!(f("memory.max"), "max");
    assert_eq!(f("memory.swap.max"), "max");
    assert_eq!(f("cpu.max"), "max 200000");
    assert_eq!(f("pids.max"), "max");
    assert_eq!(
        f("cpu.weight"),
        "39",
        "untouched by an update without shares"
    );

    // checkBeforeUpdate refuses a limit below memory.current (1 MiB here).
    let err = m
        .update(&resources(
            r#"{"memory": {"limit": 4096, "checkBeforeUpdate": true}}"#,
        ))
        .unwrap_err()
        .to_string();
    assert!(err.contains("memory.limit"), "{err}");
    assert_eq!(f("memory.max"), "max");
}

#[test]
fn v2_bfq_weight_is_written_unconverted() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_tree(tmp.path(), "c2");
    fs::write(leaf.join("io.bfq.weight"), "").unwrap();
    let m = manager(tmp.path(), "c2");
    m.create(Some(&resources(r#"{"blockIO": {"weight": 500}}"#)))
        .unwrap();
    assert_eq!(read_trim(leaf.join("io.bfq.weight")), "500");
    assert_eq!(read_trim(leaf.join("io.weight")), "");
}

#[test]
fn v2_missing_controller_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
    fs::write(tmp.path().join("cgroup.subtree_control"), "").unwrap();
    let m = open_at(tmp.path(), Version::V2, Some("/c3"), "c3").unwrap();
    let err = m
        .create(Some(&resources(r#"{"pids": {"limit": 10}}"#)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pids"), "{err}");
    assert!(!tmp.path().join("c3").exists());
}

#[test]
fn v2_unknown_unified_key_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    fake_tree(tmp.path(), "c4");
    let m = manager(tmp.path(), "c4");
    let err = m
        .create(Some(&resources(r#"{"unified": {"memory.nonsense": "1"}}"#)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unified.memory.nonsense"), "{err}");
}

#[test]
fn v2_freeze_and_pids_on_fake_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_tree(tmp.path(), "c5");
    fs::write(leaf.join("cgroup.procs"), "10\n11\n").unwrap();
    fs::create_dir(leaf.join("sub")).unwrap();
    fs::write(leaf.join("sub/cgroup.procs"), "12\n").unwrap();
    let m = manager(tmp.path(), "c5");
    assert_eq!(m.pids().unwrap(), vec![10, 11, 12]);
    m.freeze().unwrap();
    assert_eq!(read_trim(leaf.join("cgroup.freeze")), "1");
    assert!(m.is_frozen().unwrap());
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());
}

#[test]
fn v2_failure_after_mkdir_removes_what_it_made() {
    // "new" is made by create, but (being a plain directory) cannot take the controllers it must
    // delegate: create fails and leaves no "new" behind.
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    fs::write(tmp.path().join("cgroup.subtree_control"), "").unwrap();
    let m = open_at(tmp.path(), Version::V2, Some("/new/c6"), "c6").unwrap();
    let err = m
        .create(Some(&resources(r#"{"pids": {"limit": 10}}"#)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("subtree_control"), "{err}");
    assert!(!tmp.path().join("new").exists());
}
