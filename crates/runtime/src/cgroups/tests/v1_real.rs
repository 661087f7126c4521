//! cgroup v1 on this host for real: limits land in the kernel's files, processes join, the
//! freezer stops them, stats count their work, devices are enforced, destroy cleans up.

use std::path::{Path, PathBuf};

use berth_testsupport::{require, require_root, unique_id};

use super::{
    make_char_node, proc_state, read_trim, remove_test_parents, resources, some_block_device,
    Helper, Sleeper,
};
use crate::cgroups::{devices, host_version, open, Version};

const V1_ROOT: &str = "/sys/fs/cgroup";

fn v1_host() -> bool {
    require_root!() && require(host_version() == Version::V1, "host uses cgroup v1")
}

fn dir(controller: &str, path: &str) -> PathBuf {
    Path::new(V1_ROOT)
        .join(controller)
        .join(path.trim_start_matches('/'))
}

#[test]
fn v1_limits_are_written_and_processes_are_limited() {
    if !v1_host() {
        return;
    }
    let id = unique_id("cgv1");
    let path = format!("/berth-test/{id}");
    let m = open(Some(&path), &id).unwrap();
    assert_eq!(m.version(), Version::V1);
    assert!(!m.exists());

    let (bmaj, bmin) = some_block_device().expect("a block device");
    // Proportional weights need the CFQ or BFQ scheduler's files; kernels without either (this
    // machine's, some CI hosts') must refuse a weight clearly rather than drop it.
    let has_weight = ["blkio.weight", "blkio.bfq.weight"]
        .iter()
        .any(|f| Path::new(V1_ROOT).join("blkio").join(f).exists());
    if !has_weight {
        let wid = unique_id("cgv1w");
        let wm = open(Some(&format!("/berth-test/{wid}")), &wid).unwrap();
        let err = wm
            .create(Some(&resources(r#"{"blockIO": {"weight": 300}}"#)))
            .expect_err("a blkio weight without a weight file");
        assert!(err.to_string().contains("blockIO.weight"), "{err}");
        let _ = wm.destroy();
    }
    let weight = if has_weight { r#""weight": 300,"# } else { "" };
    let r = resources(&format!(
        r#"{{
        "memory": {{"limit": 67108864, "reservation": 33554432, "swap": 134217728, "swappiness": 10,
                    "kernelTCP": 16777216, "disableOOMKiller": true}},
        "hugepageLimits": [{{"pageSize": "2MB", "limit": 4194304}}],
        "cpu": {{"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}},
        "pids": {{"limit": 50}},
        "blockIO": {{{weight}
                    "throttleReadBpsDevice": [{{"major": {bmaj}, "minor": {bmin}, "rate": 1048576}}]}},
        "devices": [{{"allow": false, "access": "rwm"}}]
    }}"#
    ));
    m.create(Some(&r)).unwrap();
    assert!(m.exists());

    let mem = dir("memory", &path);
    assert_eq!(read_trim(mem.join("memory.limit_in_bytes")), "67108864");
    assert_eq!(
        read_trim(mem.join("memory.memsw.limit_in_bytes")),
        "134217728"
    );
    assert_eq!(
        read_trim(mem.join("memory.soft_limit_in_bytes")),
        "33554432"
    );
    assert_eq!(read_trim(mem.join("memory.swappiness")), "10");
    assert_eq!(
        read_trim(mem.join("memory.kmem.tcp.limit_in_bytes")),
        "16777216"
    );
    let oom = read_trim(mem.join("memory.oom_control"));
    assert!(oom.lines().any(|l| l == "oom_kill_disable 1"), "{oom}");
    // hugetlb applies where the controller is mounted and is skipped elsewhere.
    let hugetlb = dir("hugetlb", &path);
    if Path::new(V1_ROOT).join("hugetlb").is_dir() {
        assert_eq!(
            read_trim(hugetlb.join("hugetlb.2MB.limit_in_bytes")),
            "4194304"
        );
    } else {
        assert!(!hugetlb.exists());
    }
    let cpu = dir("cpu", &path);
    assert_eq!(read_trim(cpu.join("cpu.shares")), "512");
    assert_eq!(read_trim(cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read_trim(cpu.join("cpu.cfs_period_us")), "100000");
    let cpuset = dir("cpuset", &path);
    assert_eq!(read_trim(cpuset.join("cpuset.cpus")), "0");
    assert_eq!(read_trim(cpuset.join("cpuset.mems")), "0");
    assert_eq!(read_trim(dir("pids", &path).join("pids.max")), "50");
    let blkio = dir("blkio", &path);
    if has_weight {
        let weight_file = ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .map(|f| blkio.join(f))
            .find(|p| p.exists());
        let w = read_trim(weight_file.expect("a blkio weight file"));
        assert!(w.ends_with("300"), "blkio weight {w:?}");
    }
    assert_eq!(
        read_trim(blkio.join("blkio.throttle.read_bps_device")),
        format!("{bmaj}:{bmin} 1048576")
    );
    let devices = read_trim(dir("devices", &path).join("devices.list"));
    assert!(!devices.contains("a *:* rwm"), "{devices}");
    for rule in [
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 136:* rwm",
        "c *:* m",
        "c 10:229 rwm",
    ] {
        assert!(
            devices.lines().any(|l| l == rule),
            "{rule} missing from {devices}"
        );
    }
    // The kernel's list is exactly what the v1 emulation (used to skip no-op updates) predicts.
    let mut listed: Vec<String> = devices.lines().map(str::to_string).collect();
    listed.sort();
    let rules = devices::effective_rules(r.devices().as_deref()).unwrap();
    assert_eq!(
        listed,
        devices::v1_expected_list(&devices::v1_lines(&rules))
    );

    // A node for 1:11 (kmsg), which no rule allows; the test process itself may open it.
    let tmp = tempfile::tempdir().unwrap();
    let kmsg = make_char_node(tmp.path(), "kmsg", 1, 11);
    std::fs::File::open(&kmsg).expect("open outside the cgroup");

    let mut helper = Helper::spawn(&format!(
        "read x\n\
         dd if={} of=/dev/null count=0; echo kmsg=$?\n\
         dd if=/dev/null of=/dev/null count=0; echo null=$?\n\
         /bin/busybox awk 'BEGIN{{s=\"x\"; for(i=0;i<22;i++) s=s s; n=0; for(i=0;i<200000;i++) n+=i; print length(s)}}'\n\
         echo done\n\
         read y",
        kmsg.display()
    ));
    let sleeper = Sleeper::spawn();
    m.add_process(helper.pid()).unwrap();
    m.add_process(sleeper.pid()).unwrap();
    let pids = m.pids().unwrap();
    assert!(
        pids.contains(&helper.pid()) && pids.contains(&sleeper.pid()),
        "{pids:?}"
    );
    let own = read_trim(format!("/proc/{}/cgroup", sleeper.pid()));
    assert!(own.contains(&format!(":memory:{path}")), "{own}");
    if Path::new(V1_ROOT)
        .join("unified/cgroup.controllers")
        .exists()
    {
        // Hybrid host: the cgroup2 hierarchy is joined too, for tools that look there.
        assert!(own.lines().any(|l| l == format!("0::{path}")), "{own}");
    }

    helper.go();
    let out = helper.until("done");
    let kmsg_line = out.iter().find(|l| l.starts_with("kmsg=")).unwrap();
    assert_ne!(kmsg_line, "kmsg=0", "{out:?}");
    assert!(
        out.iter().any(|l| l.contains("Operation not permitted")),
        "{out:?}"
    );
    assert!(out.iter().any(|l| l == "null=0"), "{out:?}");
    assert!(out.iter().any(|l| l == "4194304"), "awk ran: {out:?}");

    let stats = m.stats().unwrap();
    assert!(stats.cpu.usage.total > 0, "{:?}", stats.cpu);
    assert!(!stats.cpu.usage.per_cpu.is_empty());
    assert!(stats.memory.usage.usage > 0, "{:?}", stats.memory.usage);
    assert!(
        stats.memory.usage.max_usage >= 4 << 20,
        "{:?}",
        stats.memory.usage
    );
    assert_eq!(stats.memory.usage.limit, Some(64 << 20));
    assert!(!stats.memory.raw.is_empty());
    assert_eq!(stats.pids.limit, Some(50));
    assert!(stats.pids.current >= 2, "{:?}", stats.pids);

    // Freeze: both processes stop; the v1 freezer shows frozen tasks in D state.
    m.freeze().unwrap();
    assert!(m.is_frozen().unwrap());
    assert_eq!(proc_state(sleeper.pid()), 'D');
    assert_eq!(proc_state(helper.pid()), 'D');
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());
    assert_eq!(proc_state(sleeper.pid()), 'S');

    // Live update: a lower limit is written; one below usage is refused when asked to check.
    m.update(&resources(
        r#"{"memory": {"limit": 50331648, "swap": 100663296}}"#,
    ))
    .unwrap();
    assert_eq!(read_trim(mem.join("memory.limit_in_bytes")), "50331648");
    assert_eq!(
        read_trim(mem.join("memory.memsw.limit_in_bytes")),
        "100663296"
    );
    let err = m
        .update(&resources(
            r#"{"memory": {"limit": 4096, "checkBeforeUpdate": true}}"#,
        ))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("memory.limit") && err.contains("usage"),
        "{err}"
    );
    assert_eq!(read_trim(mem.join("memory.limit_in_bytes")), "50331648");

    // A device update takes effect (and the same rules again change nothing).
    let more = resources(
        r#"{"devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}]}"#,
    );
    m.update(&more).unwrap();
    m.update(&more).unwrap();
    let devices_list = read_trim(dir("devices", &path).join("devices.list"));
    assert!(
        devices_list.lines().any(|l| l == "c 1:11 r"),
        "{devices_list}"
    );

    drop(helper);
    drop(sleeper);
    m.destroy().unwrap();
    assert!(!m.exists());
    for c in [
        "memory", "cpu", "cpuset", "pids", "blkio", "devices", "freezer",
    ] {
        assert!(!dir(c, &path).exists(), "{c} dir left behind");
    }
    m.destroy().expect("destroy again is fine");
    remove_test_parents("berth-test");
}

#[test]
fn v1_relative_path_lands_below_own_cgroup() {
    if !v1_host() {
        return;
    }
    let id = unique_id("cgv1rel");
    let m = open(Some(&format!("berth-test-rel/{id}")), &id).unwrap();
    m.create(None).unwrap();
    // This process's memory cgroup is wherever the harness put it.
    let own = read_trim("/proc/self/cgroup");
    let mem_own = own
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
        .unwrap();
    let expected = dir("memory", &mem_own).join("berth-test-rel").join(&id);
    assert!(expected.is_dir(), "{} missing", expected.display());
    assert!(m.dirs().contains(&expected), "{:?}", m.dirs());
    m.destroy().unwrap();
    assert!(!expected.exists());
    let _ = std::fs::remove_dir(expected.parent().unwrap());
    remove_test_parents("berth-test-rel");
}

#[test]
fn v1_fake_tree_with_comounted_controllers() {
    // open_at needs no root: a fake v1 root with "cpu,cpuacct" (and a "cpu" symlink to it).
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let id = "fake1";
    for (hierarchy, files) in [
        ("memory", &["memory.limit_in_bytes", "cgroup.procs"][..]),
        ("cpu,cpuacct", &["cpu.shares", "cgroup.procs"][..]),
        (
            "devices",
            &["devices.allow", "devices.deny", "cgroup.procs"][..],
        ),
    ] {
        let leaf = root.join(hierarchy).join("pod").join(id);
        std::fs::create_dir_all(&leaf).unwrap();
        for f in files {
            std::fs::write(leaf.join(f), "").unwrap();
        }
    }
    std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpu")).unwrap();
    let m = crate::cgroups::open_at(root, Version::V1, Some("/pod/fake1"), id).unwrap();
    m.create(Some(&resources(
        r#"{"memory": {"limit": 1048576}, "cpu": {"shares": 256}}"#,
    )))
    .unwrap();
    let leaf = |h: &str| root.join(h).join("pod").join(id);
    assert_eq!(
        read_trim(leaf("memory").join("memory.limit_in_bytes")),
        "1048576"
    );
    assert_eq!(read_trim(leaf("cpu,cpuacct").join("cpu.shares")), "256");
    // Each write replaces the fake file, so the last device rule is what remains.
    assert_eq!(
        read_trim(leaf("devices").join("devices.allow")),
        "c 10:229 rwm"
    );
    m.add_process(4242).unwrap();
    assert_eq!(read_trim(leaf("cpu,cpuacct").join("cgroup.procs")), "4242");
    assert_eq!(m.pids().unwrap(), vec![4242]);
    // No pids hierarchy: a pids limit names the field.
    let err = m
        .update(&resources(r#"{"pids": {"limit": 5}}"#))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pids"), "{err}");
}
