//! berthd killed with SIGKILL and restarted: running containers keep running and stay manageable.

use berth_e2e::{eventually, prerequisites, unique, Daemon};

#[test]
fn containers_survive_daemon_sigkill() {
    if !prerequisites() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox("busybox:latest");
    let ticker = unique("ticker");
    let sleeper = unique("sleeper");
    d.docker_ok(&[
        "run", "-d", "--name", &ticker, "busybox", "sh", "-c",
        "trap 'echo bye; exit 7' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    ]);
    d.docker_ok(&["run", "-d", "--name", &sleeper, "busybox", "sleep", "1000"]);
    let pids: Vec<String> = [&ticker, &sleeper]
        .iter()
        .map(|n| {
            d.docker_ok(&["inspect", "--format", "{{.State.Pid}}", n])
                .trim()
                .to_string()
        })
        .collect();
    eventually("a tick", || {
        d.docker_ok(&["logs", &ticker])
            .contains("tick 1")
            .then_some(())
    });

    let old = d.pid();
    d.restart();
    assert_ne!(d.pid(), old);

    // Still listed as running, same processes.
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}}"]);
    assert!(
        ps.lines().any(|l| l == ticker) && ps.lines().any(|l| l == sleeper),
        "ps: {ps}"
    );
    for (n, pid) in [&ticker, &sleeper].iter().zip(&pids) {
        let now = d.docker_ok(&["inspect", "--format", "{{.State.Pid}}", n]);
        assert_eq!(&now.trim().to_string(), pid);
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
    // Logs continue: lines written after the restart show up.
    let before = d.docker_ok(&["logs", &ticker]).lines().count();
    eventually("new log lines after the restart", || {
        (d.docker_ok(&["logs", &ticker]).lines().count() > before + 1).then_some(())
    });
    // exec works through the re-adopted shim.
    let out = d.docker_ok(&["exec", &sleeper, "echo", "still here"]);
    assert_eq!(out, "still here\n");
    // stop reaches the container and its exit status is recorded.
    d.docker_ok(&["stop", &ticker]);
    let st = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &ticker,
    ]);
    assert_eq!(st.trim(), "exited 7");
    assert!(d
        .docker_ok(&["logs", "--tail", "1", &ticker])
        .contains("bye"));
    // A container that exits while berthd is down gets its status from the shim's exit file.
    d.kill9();
    let sleeper_pid: i32 = pids[1].parse().expect("pid");
    // SAFETY: kill(2) on a pid we own (the container's init).
    unsafe { libc::kill(sleeper_pid, libc::SIGKILL) };
    d.restart();
    let st = eventually("the sleeper's exit status", || {
        let s = d.docker_ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            &sleeper,
        ]);
        s.starts_with("exited").then_some(s)
    });
    assert_eq!(st.trim(), "exited 137");
    d.docker_ok(&["rm", &ticker, &sleeper]);
}

#[test]
fn restart_policy_holds_across_daemon_restart() {
    if !prerequisites() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox("busybox:latest");
    let always = unique("always");
    let plain = unique("plain");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &always,
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&["run", "-d", "--name", &plain, "busybox", "sleep", "1000"]);
    let pid_of = |d: &Daemon, n: &str| -> i32 {
        d.docker_ok(&["inspect", "--format", "{{.State.Pid}}", n])
            .trim()
            .parse()
            .expect("pid")
    };
    let (p1, p2) = (pid_of(&d, &always), pid_of(&d, &plain));
    // Both die while no daemon watches.
    d.kill9();
    // SAFETY: kill(2) on the containers' init processes.
    unsafe {
        libc::kill(p1, libc::SIGKILL);
        libc::kill(p2, libc::SIGKILL);
    }
    d.restart();
    // The policy brings one back; the other stays down with the status its shim recorded.
    let st = eventually("the always container restarted", || {
        let s = d.docker_ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.RestartCount}}",
            &always,
        ]);
        (s.trim() == "running 1").then_some(s)
    });
    assert_eq!(st.trim(), "running 1");
    assert_ne!(pid_of(&d, &always), p1);
    let st = eventually("the plain container's exit", || {
        let s = d.docker_ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            &plain,
        ]);
        s.starts_with("exited").then_some(s)
    });
    assert_eq!(st.trim(), "exited 137");
    // A user's stop is respected: it stays stopped.
    d.docker_ok(&["stop", "-t", "1", &always]);
    let st = d.docker_ok(&["inspect", "--format", "{{.State.Status}}", &always]);
    assert_eq!(st.trim(), "exited");
    d.docker_ok(&["rm", &always, &plain]);
}

/// Containers' and snapshots' directories are created and removed all the time: berthd marks
/// their parents as ext4 top directories (`chattr +T`) so new ones spread over block groups
/// (inode allocation near just-freed inodes is slow on ext4 without a journal). Kept across a
/// restart; skipped on file systems without the flag.
#[test]
fn churned_directories_are_marked_top_directories() {
    if !prerequisites() {
        return;
    }
    let mut d = Daemon::start();
    if !berth_testsupport::require(
        berth_testsupport::top_dir_flag_supported(&d.data_root()),
        "a file system with ext4's top-directory flag (chattr +T) under the test directory",
    ) {
        return;
    }
    let flags = |d: &Daemon, sub: &str| {
        let o = std::process::Command::new("lsattr")
            .arg("-d")
            .arg(d.data_root().join(sub))
            .output()
            .expect("lsattr");
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    for round in 0..2 {
        for sub in ["containers", "snapshots/active"] {
            assert!(flags(&d, sub).contains('T'), "{sub}: {}", flags(&d, sub));
        }
        assert!(!flags(&d, "volumes").contains('T'));
        if round == 0 {
            d.restart();
        }
    }
}
