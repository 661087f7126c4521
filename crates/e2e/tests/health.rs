//! HEALTHCHECK with the stock docker CLI: --health-* flags and an image's HEALTHCHECK, checks
//! run as execs in the container, State.Health in inspect, "(healthy)" in ps, health filters
//! and events, checks re-armed after a berthd restart, stopped with the container.

use berth_e2e::{eventually, prerequisites, unique, Daemon};

/// Seconds since the epoch, for `events --since/--until` (an until in the future would wait).
fn now_secs() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string()
}

fn health(d: &Daemon, name: &str) -> String {
    d.docker_ok(&["inspect", "--format", "{{.State.Health.Status}}", name])
        .trim()
        .to_string()
}

fn wait_for_health(d: &Daemon, name: &str, want: &str) {
    eventually(&format!("{name} to be {want}"), || {
        (health(d, name) == want).then_some(())
    });
}

#[test]
fn health_checks_turn_healthy_then_unhealthy_and_survive_a_daemon_restart() {
    if !prerequisites() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox("busybox:latest");
    let t0 = now_secs();
    let name = unique("healthy");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--health-cmd",
        "test -e /tmp/ok && echo fine",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 1000",
    ]);
    let cfg = d.docker_ok(&["inspect", "--format", "{{json .Config.Healthcheck}}", &name]);
    let cfg: serde_json::Value = serde_json::from_str(&cfg).expect("healthcheck json");
    assert_eq!(
        cfg["Test"],
        serde_json::json!(["CMD-SHELL", "test -e /tmp/ok && echo fine"])
    );
    assert_eq!(cfg["Interval"], 1_000_000_000i64);
    wait_for_health(&d, &name, "healthy");

    let ps = d.docker_ok(&[
        "ps",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Status}}",
    ]);
    assert!(ps.contains("(healthy)"), "ps status: {ps}");
    let healthy = d.docker_ok(&["ps", "-q", "--filter", "health=healthy"]);
    assert_eq!(healthy.lines().count(), 1, "health=healthy: {healthy}");
    let unhealthy = d.docker_ok(&["ps", "-q", "--filter", "health=unhealthy"]);
    assert!(unhealthy.trim().is_empty(), "health=unhealthy: {unhealthy}");
    let log = d.docker_ok(&["inspect", "--format", "{{json .State.Health}}", &name]);
    let h: serde_json::Value = serde_json::from_str(&log).expect("health json");
    let last = h["Log"]
        .as_array()
        .and_then(|l| l.last())
        .expect("a result");
    assert_eq!(last["ExitCode"], 0);
    assert_eq!(last["Output"], "fine\n");
    assert!(last["Start"].as_str().is_some_and(|s| !s.is_empty()));

    // A new berthd adopts the running container and keeps checking it.
    d.restart();
    assert_eq!(health(&d, &name), "healthy");
    d.docker_ok(&["exec", &name, "rm", "/tmp/ok"]);
    wait_for_health(&d, &name, "unhealthy");
    let h: serde_json::Value = serde_json::from_str(&d.docker_ok(&[
        "inspect",
        "--format",
        "{{json .State.Health}}",
        &name,
    ]))
    .expect("health json");
    assert!(h["FailingStreak"].as_i64().unwrap_or(0) >= 2, "{h}");
    let log = h["Log"].as_array().expect("log");
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    assert_eq!(log.last().expect("last")["ExitCode"], 1);
    let ps = d.docker_ok(&["ps", "-q", "--filter", "health=unhealthy"]);
    assert_eq!(ps.lines().count(), 1, "health=unhealthy: {ps}");

    // Stopping the container stops its checks: the log no longer changes.
    d.docker_ok(&["stop", "-t", "1", &name]);
    let after_stop = d.docker_ok(&["inspect", "--format", "{{json .State.Health.Log}}", &name]);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let later = d.docker_ok(&["inspect", "--format", "{{json .State.Health.Log}}", &name]);
    assert_eq!(after_stop, later, "checks ran after stop");

    // The transitions were events (the second daemon's own history holds the second one).
    let events = d.docker_ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &now_secs(),
        "--filter",
        &format!("container={name}"),
        "--format",
        "{{.Action}}",
    ]);
    assert!(
        events.lines().any(|l| l == "health_status: unhealthy"),
        "events: {events}"
    );
}

#[test]
fn image_healthcheck_is_inherited_overridden_disabled_and_timed_out() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    // An image with HEALTHCHECK CMD false (Docker's config JSON).
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).expect("mkdir");
    berth_testsupport::busybox_rootfs(&rootfs).expect("busybox rootfs");
    let tar = dir.path().join("hc.tar");
    berth_testsupport::oci_archive::busybox_image(&rootfs)
        .config_field(
            "Healthcheck",
            serde_json::json!({"Test": ["CMD", "false"], "Interval": 1_000_000_000i64, "Retries": 1}),
        )
        .write_tar(&tar, "hc:latest")
        .expect("write image");
    d.docker_ok(&["load", "-i", tar.to_str().expect("utf-8")]);

    // Inherited: the image's check fails, so the container turns unhealthy.
    let inherited = unique("inherit");
    d.docker_ok(&["run", "-d", "--name", &inherited, "hc", "sleep", "1000"]);
    wait_for_health(&d, &inherited, "unhealthy");

    // Overridden: our command, the image's interval and retries.
    let overridden = unique("override");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &overridden,
        "--health-cmd",
        "true",
        "hc",
        "sleep",
        "1000",
    ]);
    wait_for_health(&d, &overridden, "healthy");
    let cfg = d.docker_ok(&[
        "inspect",
        "--format",
        "{{json .Config.Healthcheck}}",
        &overridden,
    ]);
    let cfg: serde_json::Value = serde_json::from_str(&cfg).expect("json");
    assert_eq!(cfg["Test"], serde_json::json!(["CMD-SHELL", "true"]));
    assert_eq!(
        (cfg["Interval"].as_i64(), cfg["Retries"].as_i64()),
        (Some(1_000_000_000), Some(1))
    );

    // Disabled: no State.Health, no "(health" in ps.
    let disabled = unique("nohc");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &disabled,
        "--no-healthcheck",
        "hc",
        "sleep",
        "1000",
    ]);
    let h = d.docker_ok(&["inspect", "--format", "{{json .State.Health}}", &disabled]);
    assert_eq!(h.trim(), "null");
    let ps = d.docker_ok(&[
        "ps",
        "--filter",
        &format!("name={disabled}"),
        "--format",
        "{{.Status}}",
    ]);
    assert!(ps.starts_with("Up") && !ps.contains("health"), "ps: {ps}");
    let none = d.docker_ok(&["ps", "--filter", "health=none", "--format", "{{.Names}}"]);
    assert!(none.lines().any(|l| l == disabled), "health=none: {none}");

    // A check that overruns its timeout is killed and counts as a failure.
    let slow = unique("slow");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &slow,
        "--health-cmd",
        "sleep 30",
        "--health-timeout",
        "300ms",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_for_health(&d, &slow, "unhealthy");
    let out = d.docker_ok(&[
        "inspect",
        "--format",
        "{{(index .State.Health.Log 0).Output}}",
        &slow,
    ]);
    assert!(out.contains("exceeded timeout"), "output: {out}");
    // The killed check is gone from the container (the shim reaped it).
    let ps = eventually("the overrun check to be killed", || {
        let top = d.docker_ok(&["top", &slow]);
        let sleeps = top.lines().filter(|l| l.ends_with("sleep 30")).count();
        // One check may be running right now; a killed one must not pile up.
        (sleeps <= 1).then_some(top)
    });
    assert!(ps.contains("sleep 1000"), "top: {ps}");

    // Bad healthcheck settings are a 400.
    let o = d.docker(&[
        "create",
        "--health-cmd",
        "true",
        "--health-interval",
        "10us",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Interval in Healthcheck cannot be less than 1ms"),
        "{err}"
    );
}
