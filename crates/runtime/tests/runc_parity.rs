//! Parity with runc: the same busybox bundle run by `runc run` and by the runtime under test (each
//! with its own `--root`) must exit the same way and show the container the same world: exit codes,
//! capabilities, cgroup limits, hostname, ids, /dev, mounts.
//!
//! runc is the reference; the runtime under test is berth-runtime (see `common::runtime_under_test`,
//! `BERTH_TEST_RUNTIME` overrides it). Needs root and runc.

mod common;

use std::process::Stdio;

use berth_testsupport::{require, require_root, unique_id, TestBundle};
use common::{runc, runtime_under_test, Outcome, Runtime, RuntimeRoot};
use serde_json::{json, Value};

/// runc and the runtime under test, or None (test skipped) when this box cannot run them.
fn runtimes() -> Option<(Runtime, Runtime)> {
    if !require_root!() {
        return None;
    }
    let reference = runc();
    if !require(
        reference.is_some(),
        "runc is installed (apt-get install runc)",
    ) {
        return None;
    }
    Some((reference?, runtime_under_test()))
}

/// Run `args` in a fresh busybox bundle (spec changed by `edit`) with both runtimes, one after the
/// other, and return (runc's outcome, the runtime under test's outcome).
fn run_both(args: &[&str], edit: impl FnOnce(&mut Value)) -> Option<(Outcome, Outcome)> {
    let (reference, tested) = runtimes()?;
    let mut bundle = TestBundle::busybox(args);
    bundle.edit(edit);
    let [reference, tested] = [reference, tested].map(|runtime| {
        let root = RuntimeRoot::new(runtime);
        let id = unique_id("parity");
        let out = root.run(bundle.path(), &id);
        // `run` deletes the container when it exits; a leftover means the runtime leaked it.
        assert_eq!(
            root.status(&id),
            None,
            "{}: container {id} still listed after run returned",
            root.runtime.name
        );
        out
    });
    Some((reference, tested))
}

/// Assert both runtimes exited with `code` and printed the same stdout; returns runc's stdout.
fn assert_same(what: &str, reference: &Outcome, tested: &Outcome, code: i32) -> String {
    assert_eq!(
        reference.code, code,
        "{what}: runc itself exited {} (stderr: {})",
        reference.code, reference.stderr
    );
    assert_eq!(
        tested.code, reference.code,
        "{what}: exit code differs from runc\nrunc stdout:\n{}\nunder test stdout:\n{}\nunder test stderr:\n{}",
        reference.stdout, tested.stdout, tested.stderr
    );
    assert_eq!(
        tested.stdout, reference.stdout,
        "{what}: output differs from runc (left: runtime under test, right: runc)\nunder test stderr:\n{}",
        tested.stderr
    );
    reference.stdout.clone()
}

fn no_change(_: &mut Value) {}

#[test]
fn exit_code_zero() {
    let Some((r, t)) = run_both(&["true"], no_change) else {
        return;
    };
    assert_same("true", &r, &t, 0);
}

#[test]
fn exit_code_three() {
    let Some((r, t)) = run_both(&["sh", "-c", "exit 3"], no_change) else {
        return;
    };
    assert_same("sh -c 'exit 3'", &r, &t, 3);
}

/// Killed by SIGKILL → 128+9. Without a PID namespace, so `sh` is not an init the kernel protects
/// from its own signals.
#[test]
fn killed_by_own_signal_reports_137() {
    let Some((r, t)) = run_both(&["sh", "-c", "kill -9 $$; echo survived"], |spec| {
        let ns = spec["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    }) else {
        return;
    };
    assert_same("sh -c 'kill -9 $$' without pid ns", &r, &t, 128 + 9);
}

/// `kill <id> KILL` on a container's init while `run` waits in the foreground: `run` exits 137.
#[test]
fn killed_from_outside_reports_137() {
    let Some((reference, tested)) = runtimes() else {
        return;
    };
    let bundle = TestBundle::busybox(&["sleep", "1000"]);
    let codes = [reference, tested].map(|runtime| {
        let root = RuntimeRoot::new(runtime);
        let id = unique_id("parity-kill");
        root.track(&id);
        let child = root
            .command(["run", "--bundle"])
            .arg(bundle.path())
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn run");
        common::wait_until(
            &format!("{} container {id} running", root.runtime.name),
            600,
            || root.status(&id).as_deref() == Some("running"),
        );
        let kill = root.exec(["kill", &id, "KILL"]);
        assert_eq!(
            kill.code, 0,
            "{} kill {id} KILL: {}",
            root.runtime.name, kill.stderr
        );
        let out = child.wait_with_output().expect("wait for run");
        Outcome::from_output(out)
    });
    assert_eq!(codes[0].code, 137, "runc run after kill: {:?}", codes[0]);
    assert_eq!(
        codes[1].code, codes[0].code,
        "run after kill: {:?}",
        codes[1]
    );
}

/// The default spec's three capabilities, and a richer set kept across a switch to uid 1000 (ambient).
#[test]
fn capability_masks_match() {
    let script = "grep ^Cap /proc/self/status";
    let Some((r, t)) = run_both(&["sh", "-c", script], no_change) else {
        return;
    };
    let out = assert_same("default capabilities", &r, &t, 0);
    assert!(out.contains("CapBnd:\t0000000020000420"), "{out}");

    let Some((r, t)) = run_both(&["sh", "-c", script], |spec| {
        spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        spec["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"]
        });
    }) else {
        return;
    };
    let out = assert_same("capabilities as uid 1000 with ambient", &r, &t, 0);
    assert!(out.contains("CapAmb:\t0000000000000020"), "{out}");
}

/// Limits written to the container's cgroups, read from inside through its cgroup namespace.
#[test]
fn cgroup_limits_match() {
    let script = "cd /sys/fs/cgroup && cat /proc/self/cgroup \
        memory/memory.limit_in_bytes pids/pids.max \
        cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us";
    let Some((r, t)) = run_both(&["sh", "-c", script], |spec| {
        spec["linux"]["resources"]["memory"] = json!({"limit": 64 * 1024 * 1024});
        spec["linux"]["resources"]["pids"] = json!({"limit": 100});
        spec["linux"]["resources"]["cpu"] =
            json!({"shares": 512, "quota": 50000, "period": 100000});
    }) else {
        return;
    };
    let out = assert_same("cgroup limits", &r, &t, 0);
    assert!(out.contains("67108864\n100\n512\n50000\n100000\n"), "{out}");
}

#[test]
fn hostname_and_ids_match() {
    let script = "hostname; id; grep -E '^(Uid|Gid|Groups):' /proc/self/status";
    let Some((r, t)) = run_both(&["sh", "-c", script], |spec| {
        spec["hostname"] = json!("parity-host");
        spec["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 65534]});
    }) else {
        return;
    };
    let out = assert_same("hostname and ids", &r, &t, 0);
    assert!(
        out.starts_with("parity-host\nuid=1000(app) gid=1000(app)"),
        "{out}"
    );
}

/// Every /dev entry with its type, mode, device numbers, owner and link target.
#[test]
fn dev_entries_match() {
    let script = "stat -c '%n|%F|%a|%t:%T|%u:%g|%N' /dev/* /dev/pts/*";
    let Some((r, t)) = run_both(&["sh", "-c", script], no_change) else {
        return;
    };
    let out = assert_same("/dev entries", &r, &t, 0);
    assert!(
        out.contains("/dev/null|character special file|666|1:3|"),
        "{out}"
    );
}

/// A spec device is only as usable as `linux.resources.devices` says: runc adds no rule of its
/// own for it (Docker's `--device /dev/x:/dev/y:r` relies on that).
#[test]
fn spec_devices_get_only_the_cgroup_access_the_spec_grants() {
    let script = "echo x > /dev/kmsg-ro && echo WRITE-OK || echo WRITE-DENIED";
    let Some((r, t)) = run_both(&["sh", "-c", script], |spec| {
        spec["linux"]["devices"] = json!([{"path": "/dev/kmsg-ro", "type": "c", "major": 1,
            "minor": 11, "fileMode": 0o666, "uid": 0, "gid": 0}]);
        spec["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}]);
    }) else {
        return;
    };
    let out = assert_same("read-only spec device", &r, &t, 0);
    assert!(out.contains("WRITE-DENIED"), "{out}");
}

/// /proc/self/mountinfo with the per-boot numbers (mount ids, device numbers) replaced by the
/// parent's mount point, so the shape (what is mounted where, with which options) is compared.
#[test]
fn mount_list_shape_matches() {
    let Some((r, t)) = run_both(&["cat", "/proc/self/mountinfo"], no_change) else {
        return;
    };
    assert_eq!(r.code, 0, "runc: {}", r.stderr);
    assert_eq!(t.code, 0, "under test: {}", t.stderr);
    // Known, intended difference under /sys/fs/cgroup on cgroup v1 hosts: berth keeps the tmpfs
    // read-only (as Docker shows it), names hierarchies by their source "cgroup", and also mounts the
    // hybrid host's unified cgroup2 hierarchy so v2-aware tools work. Everything else must match.
    let outside_cgroupfs = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|m| !m.contains(" /sys/fs/cgroup"))
            .collect()
    };
    let (r, t) = (
        outside_cgroupfs(mount_shape(&r.stdout)),
        outside_cgroupfs(mount_shape(&t.stdout)),
    );
    assert!(r.iter().any(|m| m.contains(" /proc ")), "{r:#?}");
    assert_eq!(
        t, r,
        "mounts differ (left: runtime under test, right: runc)"
    );
}

fn mount_shape(mountinfo: &str) -> Vec<String> {
    let lines: Vec<Vec<&str>> = mountinfo.lines().map(|l| l.split(' ').collect()).collect();
    let mount_point = |id: &str| {
        lines
            .iter()
            .find(|f| f[0] == id)
            .map(|f| f[4])
            .unwrap_or("<outside>")
    };
    lines
        .iter()
        .map(|f| format!("parent={} {}", mount_point(f[1]), f[3..].join(" ")))
        .collect()
}

/// Limits as the host sees them: the cgroup files of the container's init, found from `state`'s pid
/// and /proc/PID/cgroup (cgroup v1 hierarchies under /sys/fs/cgroup).
fn host_cgroup_values(pid: i32) -> Vec<String> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read cgroup");
    let file = |controller: &str, name: &str| -> String {
        let line = cgroups
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == controller))
            })
            .unwrap_or_else(|| panic!("no {controller} line in /proc/{pid}/cgroup:\n{cgroups}"));
        let mut fields = line.splitn(3, ':').skip(1);
        let (hierarchy, path) = (fields.next().unwrap(), fields.next().unwrap());
        let path = format!("/sys/fs/cgroup/{hierarchy}{path}/{name}");
        let value = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("<{path}: {e}>"));
        format!("{name}={}", value.trim())
    };
    vec![
        file("memory", "memory.limit_in_bytes"),
        file("pids", "pids.max"),
        file("cpu", "cpu.shares"),
        file("cpu", "cpu.cfs_quota_us"),
        file("cpu", "cpu.cfs_period_us"),
    ]
}

/// create / state / start / ps / exec / pause / resume / list / kill / delete, step by step, as a
/// list of observations that must be the same for both runtimes.
fn lifecycle_report(root: &RuntimeRoot, bundle: &TestBundle) -> Vec<String> {
    let id = unique_id("parity-life");
    root.track(&id);
    let name = &root.runtime.name;
    let mut report = Vec::new();
    let state = |root: &RuntimeRoot| -> Value {
        let out = root.exec(["state", &id]);
        assert_eq!(out.code, 0, "{name} state {id}: {}", out.stderr);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{name} state {id}: not JSON ({e}): {}", out.stdout))
    };

    // The container's stdio outlives `create`: a file, not a pipe we would wait on forever.
    let container_out = tempfile::NamedTempFile::new().expect("stdio file");
    let out = common::outcome(
        root.command(["create", "--bundle"])
            .arg(bundle.path())
            .arg(&id)
            .stdout(container_out.reopen().expect("reopen"))
            .stderr(container_out.reopen().expect("reopen")),
    );
    assert_eq!(out.code, 0, "{name} create: {}", out.stderr);
    let s = state(root);
    let pid = s["pid"].as_i64().unwrap_or(0) as i32;
    report.push(format!(
        "after create: status={} id={} bundle={} pid>0={} ociVersion set={}",
        s["status"],
        s["id"] == json!(id),
        s["bundle"] == json!(bundle.path()),
        pid > 0,
        s["ociVersion"].is_string()
    ));
    report.extend(host_cgroup_values(pid));

    let out = root.exec(["start", &id]);
    report.push(format!("start: exit {}", out.code));
    report.push(format!("after start: status={}", state(root)["status"]));

    let out = root.exec(["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_str(&out.stdout).unwrap_or_default();
    report.push(format!(
        "ps: exit {} lists init={}",
        out.code,
        pids.contains(&pid)
    ));

    let out = root.exec(["exec", &id, "sh", "-c", "echo hi; exit 4"]);
    report.push(format!("exec: exit {} stdout={:?}", out.code, out.stdout));

    let out = root.exec(["pause", &id]);
    report.push(format!(
        "pause: exit {} status={}",
        out.code,
        state(root)["status"]
    ));
    let out = root.exec(["resume", &id]);
    report.push(format!(
        "resume: exit {} status={}",
        out.code,
        state(root)["status"]
    ));

    let out = root.exec(["list", "--quiet"]);
    report.push(format!(
        "list: exit {} shows id={}",
        out.code,
        out.stdout.lines().any(|l| l == id)
    ));

    let out = root.exec(["kill", &id, "KILL"]);
    report.push(format!("kill KILL: exit {}", out.code));
    common::wait_until(&format!("{name} {id} stopped"), 600, || {
        state(root)["status"] == "stopped"
    });

    let out = root.exec(["delete", &id]);
    report.push(format!("delete: exit {}", out.code));
    report.push(format!(
        "state after delete: exit {}",
        root.exec(["state", &id]).code != 0
    ));
    report
}

#[test]
fn lifecycle_matches() {
    let Some((reference, tested)) = runtimes() else {
        return;
    };
    let mut bundle = TestBundle::busybox(&["sleep", "1000"]);
    bundle.edit(|spec| {
        spec["linux"]["resources"]["memory"] = json!({"limit": 64 * 1024 * 1024});
        spec["linux"]["resources"]["pids"] = json!({"limit": 100});
        spec["linux"]["resources"]["cpu"] =
            json!({"shares": 512, "quota": 50000, "period": 100000});
    });
    let [r, t] = [reference, tested].map(|runtime| {
        let root = RuntimeRoot::new(runtime);
        lifecycle_report(&root, &bundle)
    });
    let expected_statuses = [
        "status=\"created\"",
        "after start: status=\"running\"",
        "status=\"paused\"",
        "resume: exit 0 status=\"running\"",
        "memory.limit_in_bytes=67108864",
        "cpu.shares=512",
    ];
    for want in expected_statuses {
        assert!(
            r.iter().any(|l| l.contains(want)),
            "runc report lacks {want}: {r:#?}"
        );
    }
    assert_eq!(
        t, r,
        "lifecycle differs (left: runtime under test, right: runc)"
    );
}
