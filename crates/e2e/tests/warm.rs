//! Warm spares: after a `run`, a spare shim makes the next container of the same shape ahead
//! but for its process (berth_runtime::sandbox); the next such `run` takes it, with its own
//! command, environment, user and directory. Another shape lets it go, and so do the image's
//! removal, the daemon's death and its shutdown, leaving nothing behind.

use std::path::{Path, PathBuf};

use berth_e2e::{eventually_within, prerequisites, Daemon};

/// Spares and sandboxes are made in SCHED_IDLE: on a machine busy with other tests that takes
/// seconds.
const ROUNDS: u32 = 2400;

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Every process: (pid, ppid, comm).
fn processes() -> Vec<(u32, u32, String)> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = read(format!("/proc/{pid}/stat"));
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            // After ")": state (field 3), ppid (field 4).
            (f.first() != Some(&"Z")).then_some((pid, f.get(1)?.parse().ok()?, comm))
        })
        .collect()
}

/// A sandbox waiting in a spare of `daemon`'s: (its pid, the spare's container id). The spare
/// is a `--standby --owner <daemon>` shim; the sandbox, its child named berth-sandbox.
fn warm_sandbox(daemon: u32) -> Option<(u32, String)> {
    let owner = ["--standby", "--owner", &daemon.to_string()].join("\0");
    let all = processes();
    all.iter()
        .filter(|(_, _, comm)| comm == "berth-sandbox")
        .find_map(|(pid, ppid, _)| {
            let cmd = read(format!("/proc/{ppid}/cmdline"));
            if !cmd.contains(&owner) {
                return None;
            }
            let id = cmd.split('\0').skip_while(|a| *a != "--cgroup").nth(1)?;
            Some((*pid, id.strip_prefix("berth/")?.to_string()))
        })
}

/// /proc/PID/stat field 22: when the process started (clock ticks since boot).
fn start_time(stat: &str) -> String {
    stat.rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().nth(22 - 3))
        .unwrap_or("?")
        .to_string()
}

fn rootfs_mounted(dir: &Path) -> bool {
    let want = dir.join("rootfs").display().to_string();
    read("/proc/self/mounts")
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(want.as_str()))
}

fn container_dir(d: &Daemon, id: &str) -> PathBuf {
    d.data_root().join("containers").join(id)
}

const RUN: &[&str] = &["run", "--rm", "--network", "none"];

fn run(d: &Daemon, more: &[&str]) -> String {
    let args: Vec<&str> = RUN.iter().chain(more).copied().collect();
    d.berth_ok(&args)
}

#[test]
fn the_next_run_of_the_same_shape_takes_the_container_made_ahead() {
    if !prerequisites() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox("busybox:latest");
    let owner = d.pid();
    run(&d, &["busybox", "true"]);

    // A spare makes the same container ahead, for an id of its own: its rootfs mounted, its
    // process set up and waiting, but nobody's container yet.
    let (sandbox, id) = eventually_within("a warm spare", ROUNDS, || warm_sandbox(owner));
    let dir = container_dir(&d, &id);
    assert!(rootfs_mounted(&dir), "{} not mounted", dir.display());
    assert!(
        !d.berth_ok(&["ps", "-a", "--no-trunc", "-q"]).contains(&id),
        "a container made ahead is listed"
    );
    let born = start_time(&read(format!("/proc/{sandbox}/stat")));

    // The next run of that shape is that process, with its own command, environment, user
    // and working directory; its hostname is the id the spare was made for.
    let out = run(
        &d,
        &[
            "-e",
            "X=sent",
            "-u",
            "1000",
            "-w",
            "/tmp",
            "busybox",
            "sh",
            "-c",
            "echo $X $(id -u) $(pwd) $(hostname); cut -d' ' -f22 /proc/1/stat",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("sent 1000 /tmp {}", &id[..12]).as_str()),
        "{out}"
    );
    assert_eq!(
        lines.get(1).copied(),
        Some(born.as_str()),
        "the container's process is not the one made ahead"
    );
    // --rm: gone with its files, as any container.
    eventually_within("the container's files to go", ROUNDS, || {
        (!rootfs_mounted(&dir) && !dir.exists()).then_some(())
    });

    // A run of another shape (a memory limit) cannot use the next warm spare: it is let go,
    // with its files, and one is made for the new shape.
    let (stale, stale_id) = eventually_within("the next warm spare", ROUNDS, || {
        warm_sandbox(owner).filter(|(_, i)| *i != id)
    });
    let out = run(&d, &["-m", "64m", "busybox", "cat", "/proc/1/comm"]);
    assert_eq!(out.trim(), "cat");
    let stale_dir = container_dir(&d, &stale_id);
    eventually_within("the stale warm spare to go", ROUNDS, || {
        (!Path::new(&format!("/proc/{stale}")).exists()
            && !rootfs_mounted(&stale_dir)
            && !stale_dir.exists())
        .then_some(())
    });
    let (_, limited_id) = eventually_within("a warm spare for the new shape", ROUNDS, || {
        warm_sandbox(owner).filter(|(_, i)| *i != stale_id)
    });
    let limit = run(
        &d,
        &[
            "-m",
            "64m",
            "busybox",
            "sh",
            "-c",
            "hostname; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
    );
    assert_eq!(
        limit.lines().collect::<Vec<_>>(),
        vec![&limited_id[..12], "67108864"],
        "the warm container has the shape's limit"
    );

    // Removing the image lets the warm spare made from it go.
    let (warm, warm_id) = eventually_within("a warm spare again", ROUNDS, || {
        warm_sandbox(owner).filter(|(_, i)| *i != limited_id)
    });
    d.berth_ok(&["rmi", "busybox:latest"]);
    let warm_dir = container_dir(&d, &warm_id);
    eventually_within("the warm spare to go with its image", ROUNDS, || {
        (!Path::new(&format!("/proc/{warm}")).exists() && !warm_dir.exists()).then_some(())
    });

    // A daemon killed with a warm spare: the sandbox goes with it, its files at the restart.
    d.load_busybox("busybox:latest");
    run(&d, &["busybox", "true"]);
    let (warm, warm_id) = eventually_within("a warm spare after the reload", ROUNDS, || {
        warm_sandbox(owner)
    });
    d.kill9();
    eventually_within("the sandbox to go with its daemon", ROUNDS, || {
        (!Path::new(&format!("/proc/{warm}")).exists()).then_some(())
    });
    d.restart();
    let warm_dir = container_dir(&d, &warm_id);
    eventually_within("the orphaned files to go", ROUNDS, || {
        (!rootfs_mounted(&warm_dir) && !warm_dir.exists()).then_some(())
    });

    // A daemon stopped with SIGTERM takes its warm spare's files along at once.
    run(&d, &["busybox", "true"]);
    let (warm, warm_id) = eventually_within("a warm spare after the restart", ROUNDS, || {
        warm_sandbox(d.pid())
    });
    let warm_dir = container_dir(&d, &warm_id);
    assert!(rootfs_mounted(&warm_dir));
    d.stop();
    assert!(
        !rootfs_mounted(&warm_dir) && !warm_dir.exists(),
        "a stopped daemon left its warm container's files"
    );
    eventually_within("the sandbox to go with its daemon", ROUNDS, || {
        (!Path::new(&format!("/proc/{warm}")).exists()).then_some(())
    });
}
