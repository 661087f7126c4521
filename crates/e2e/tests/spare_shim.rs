//! The spare shim berthd keeps ready (`berth-shim --standby`), and the files of containers the
//! database no longer has (a daemon killed between deleting a record and its files).

use std::path::Path;

use berth_e2e::{eventually, eventually_within, prerequisites, Daemon};

/// How many spare shims berthd keeps (`containers::shim::SPARES`).
const SPARES: usize = 3;

/// Spares are made in SCHED_IDLE: on a machine busy with other tests that takes seconds.
const SPARE_ROUNDS: u32 = 2400;

/// Pids of the spare shims waiting for `daemon_pid`'s berthd (a spare that took a container
/// keeps its command line but is named berth-shim again).
fn spares_of(daemon_pid: u32) -> Vec<u32> {
    let want = ["--standby", "--owner", &daemon_pid.to_string()].join("\0");
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let cmd = String::from_utf8_lossy(&cmd);
            // Not a zombie: a spare that exited but was not reaped yet does not count.
            let live = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false);
            let waiting = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "berth-spare");
            live && waiting && cmd.contains("berth-shim") && cmd.contains(&want)
        })
        .collect()
}

/// (policy, nice) from a /proc/PID/stat line.
fn policy_and_nice(stat_line: &str) -> (String, String) {
    // /proc/PID/stat: fields after the command; nice is field 19, policy field 41.
    let after = stat_line.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // after ")" the first field is the state (field 3): field N is f[N - 3].
    (
        f.get(41 - 3).unwrap_or(&"?").to_string(),
        f.get(19 - 3).unwrap_or(&"?").to_string(),
    )
}

#[test]
fn a_spare_shim_takes_the_next_container_and_goes_with_the_daemon() {
    if !prerequisites() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox("busybox:latest");
    let owner = d.pid();
    // Three wait (making one takes longer than a `run --rm`, and a loop of runs uses one per
    // run); made in SCHED_IDLE, they wait back in the normal class (policy 0) at berthd's nice.
    let spares = eventually_within("three spare shims", SPARE_ROUNDS, || {
        let s = spares_of(owner);
        (s.len() == SPARES).then_some(s)
    });
    for spare in &spares {
        let stat = std::fs::read_to_string(format!("/proc/{spare}/stat")).expect("spare stat");
        assert_eq!(policy_and_nice(&stat), ("0".into(), "0".into()), "{stat}");
    }
    // Each was made for a container id of its own (its cgroups are that container's, made
    // ahead on cgroup v1); the next container created to run at once takes one, and its id.
    let waiting: Vec<(u32, String, Vec<std::path::PathBuf>)> = spares
        .iter()
        .map(|&s| (s, reserved_id_of(s), spare_cgroups_of(s)))
        .collect();
    if v1_host() {
        for (_, reserved, waiting_in) in &waiting {
            assert!(!waiting_in.is_empty(), "no launcher in a cgroup");
            for dir in waiting_in {
                assert!(
                    dir.ends_with(format!("berth/{reserved}")),
                    "{}",
                    dir.display()
                );
            }
        }
    }

    // The next container is held by one of them (the shim forks the container's init).
    let id = d.berth_ok(&["run", "-d", "busybox", "sleep", "100"]);
    let pid = d
        .berth_ok(&["inspect", "--format", "{{.State.Pid}}", id.trim()])
        .trim()
        .to_string();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let ppid = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .map(|v| v.trim().to_string());
    let (first, reserved, waiting_in) = waiting
        .into_iter()
        .find(|(s, _, _)| ppid == Some(s.to_string()))
        .expect("a spare holds the container");
    assert_eq!(id.trim(), reserved, "the container took the spare's id");
    // On cgroup v1 the spare's launcher cloned it into the cgroups it waited in, made for this
    // container: in every hierarchy it is in berth/<id>, alone.
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let want = format!("/berth/{}", id.trim());
    assert!(
        cgroups.lines().all(|l| l.ends_with(&want)),
        "{pid} not in {want}:\n{cgroups}"
    );
    let procs = std::fs::read_to_string(
        cgroup_dir_of(pid.parse().expect("pid"), "pids").join("cgroup.procs"),
    )
    .expect("pids cgroup.procs");
    for dir in &waiting_in {
        assert!(dir.is_dir(), "{} went", dir.display());
    }
    assert_eq!(
        procs.trim(),
        pid,
        "only the container's process is in its cgroup"
    );
    // And the container runs in the normal class (policy 0) at berthd's nice, not SCHED_IDLE.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    assert_eq!(policy_and_nice(&stat), ("0".into(), "0".into()), "{stat}");
    // A new spare replaces it.
    let others = eventually_within("a new spare shim", SPARE_ROUNDS, || {
        let s = spares_of(owner);
        (s.len() == SPARES && !s.contains(&first)).then_some(s)
    });

    // Spares killed from outside cost nothing but time: the next start execs a shim.
    for spare in &others {
        let killed = std::process::Command::new("kill")
            .args(["-9", &spare.to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success());
    }
    let (code, out, err) = d.berth(&["run", "--rm", "busybox", "echo", "still fine"]);
    assert_eq!((code, out.as_str()), (Some(0), "still fine\n"), "{err}");

    d.berth_ok(&["rm", "-f", id.trim()]);

    // Stopping the daemon takes its spares along: nothing is left waiting.
    let spare = eventually_within("spares after the kill", SPARE_ROUNDS, || {
        let s = spares_of(owner);
        (s.len() == SPARES).then(|| oldest(&s))
    });
    let spare_cgroups = spare_cgroups_of(spare);
    if v1_host() {
        assert!(
            !spare_cgroups.is_empty(),
            "a spare on a cgroup v1 host waits with a launcher in a spare cgroup"
        );
    }
    d.kill9();
    eventually("the spare to exit with its daemon", || {
        (!Path::new(&format!("/proc/{spare}")).exists() || spares_of(owner).is_empty())
            .then_some(())
    });
    eventually("its spare cgroup to go with it", || {
        spare_cgroups.iter().all(|d| !d.exists()).then_some(())
    });
}

/// The network namespaces a process holds open (`net:[N]` links among its fds).
fn network_namespaces_held_by(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|l| l.to_string_lossy().into_owned())
                .filter(|l| l.starts_with("net:["))
                .collect()
        })
        .unwrap_or_default()
}

/// A spare makes the network namespace of its container while it waits (creating one costs
/// about a millisecond at start): the container gets that one, with its loopback up; each
/// container its own; `--network host` stays in the host's.
#[test]
fn a_spare_makes_the_network_namespace_ahead() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let owner = d.pid();
    let host = std::fs::read_link("/proc/self/ns/net")
        .expect("our network namespace")
        .to_string_lossy()
        .into_owned();
    let spares = eventually_within("three spare shims", SPARE_ROUNDS, || {
        let s = spares_of(owner);
        (s.len() == SPARES).then_some(s)
    });
    let mut made = Vec::new();
    for spare in &spares {
        let held = network_namespaces_held_by(*spare);
        assert_eq!(
            held.len(),
            1,
            "a spare holds one namespace it made: {held:?}"
        );
        assert_ne!(held[0], host);
        // The spare itself stays in the host's namespace.
        let own = std::fs::read_link(format!("/proc/{spare}/ns/net")).expect("spare's namespace");
        assert_eq!(own.to_string_lossy(), host);
        made.extend(held);
    }

    let id = d.berth_ok(&["run", "-d", "--network", "none", "busybox", "sleep", "100"]);
    let pid = d
        .berth_ok(&["inspect", "--format", "{{.State.Pid}}", id.trim()])
        .trim()
        .to_string();
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("container's namespace");
    let ns = ns.to_string_lossy().into_owned();
    assert!(made.contains(&ns), "the container got a spare's namespace");
    let lo = d.berth_ok(&["exec", id.trim(), "ip", "-o", "link", "show", "lo"]);
    assert!(lo.contains("UP"), "lo is up: {lo}");
    let ping = d.berth(&["exec", id.trim(), "ping", "-c", "1", "-W", "2", "127.0.0.1"]);
    assert_eq!(ping.0, Some(0), "{ping:?}");

    let other = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "readlink",
        "/proc/self/ns/net",
    ]);
    assert_ne!(other.trim(), ns, "each container has its own");
    assert_ne!(other.trim(), host);
    let shared = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "readlink",
        "/proc/self/ns/net",
    ]);
    assert_eq!(shared.trim(), host, "--network host: the host's namespace");
    d.berth_ok(&["rm", "-f", id.trim()]);
}

/// The spare started first (/proc/PID/stat field 22, its start time).
fn oldest(pids: &[u32]) -> u32 {
    let start = |pid: &u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let after = s.rsplit(')').next()?.to_string();
                after.split_whitespace().nth(22 - 3)?.parse().ok()
            })
            .unwrap_or(u64::MAX)
    };
    *pids
        .iter()
        .min_by_key(|p| (start(p), **p))
        .expect("at least one spare")
}

fn v1_host() -> bool {
    !Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The cgroup directory of `pid` in the v1 hierarchy of `controller` ("name=systemd" for a
/// named one).
fn cgroup_dir_of(pid: u32, controller: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let line = text
        .lines()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == controller))
        })
        .or_else(|| text.lines().find(|l| l.starts_with("0::")))
        .expect("a cgroup line");
    let path = line.splitn(3, ':').nth(2).expect("path");
    let root = if line.starts_with("0::") && !v1_host() {
        "/sys/fs/cgroup".to_string()
    } else {
        let dir = controller.strip_prefix("name=").unwrap_or(controller);
        format!("/sys/fs/cgroup/{dir}")
    };
    Path::new(&root).join(path.trim_start_matches('/'))
}

/// The container id a spare shim was made for: its `--cgroup berth/<id>` flag.
fn reserved_id_of(spare: u32) -> String {
    let cmd = std::fs::read(format!("/proc/{spare}/cmdline")).expect("spare cmdline");
    let args: Vec<String> = cmd
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let path = args
        .iter()
        .position(|a| a == "--cgroup")
        .and_then(|i| args.get(i + 1))
        .expect("a --cgroup flag");
    let id = path.strip_prefix("berth/").expect("below berth/");
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "not a container id: {id}"
    );
    id.to_string()
}

/// The cgroups (v1: one directory per hierarchy, below berth/) the launcher of the spare shim
/// `spare` waits in: its launcher is its child named berth-launcher.
fn spare_cgroups_of(spare: u32) -> Vec<std::path::PathBuf> {
    let Ok(children) = std::fs::read_to_string(format!("/proc/{spare}/task/{spare}/children"))
    else {
        return Vec::new();
    };
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm"))
                .is_ok_and(|n| n.trim() == "berth-launcher")
        })
        .flat_map(|launcher| {
            let text =
                std::fs::read_to_string(format!("/proc/{launcher}/cgroup")).unwrap_or_default();
            text.lines()
                .filter(|l| l.contains("/berth/") && !l.starts_with("0::"))
                .filter_map(|l| {
                    let controller = l.split(':').nth(1)?.split(',').next()?.to_string();
                    Some(cgroup_dir_of(launcher, &controller))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn files_of_containers_the_database_lost_are_collected_at_startup() {
    if !prerequisites() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox("busybox:latest");
    // A real container's files, then its record removed behind berthd's back (as if the
    // daemon died between deleting the record and discarding the files).
    let id = d
        .berth_ok(&["create", "busybox", "true"])
        .trim()
        .to_string();
    let keep = d
        .berth_ok(&["create", "busybox", "true"])
        .trim()
        .to_string();
    let dir = d.data_root().join("containers").join(&id);
    let layer = d.data_root().join("snapshots/active").join(&id);
    assert!(dir.is_dir() && layer.is_dir());
    d.kill9();
    let deleted = std::process::Command::new("sqlite3")
        .arg(d.data_root().join("berth.db"))
        .arg(format!("DELETE FROM containers WHERE id = '{id}'"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        deleted,
        "sqlite3 (scripts/install-deps installs it) could not edit the database"
    );
    // Not a container id: never touched.
    let stray = d.data_root().join("containers/not-a-container");
    std::fs::create_dir_all(&stray).expect("stray dir");
    d.restart();
    eventually("the orphan's files to go", || {
        (!dir.exists() && !layer.exists()).then_some(())
    });
    assert!(
        stray.is_dir(),
        "a directory that is not a container's stays"
    );
    // The container that still has its record keeps its files and runs.
    assert!(d.data_root().join("containers").join(&keep).is_dir());
    d.berth_ok(&["start", &keep]);
    let code = d.berth_ok(&["wait", &keep]);
    assert_eq!(code.trim(), "0");
}
