//! Managing containers and images with the stock docker CLI: stats, top, pause, rename, ps
//! filters, tag/rmi, restart policies, memory limits (OOM → 137).

use berth_e2e::{eventually, prerequisites, unique, Daemon};

#[test]
fn stats_top_pause_rename_filters() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let name = unique("busy");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-m",
        "64m",
        "--label",
        "role=worker",
        "busybox",
        "sleep",
        "1000",
    ]);

    let stats = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        &name,
    ]);
    let fields: Vec<&str> = stats.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&name.as_str()), "stats: {stats}");
    assert!(stats.contains("/ 64MiB"), "memory limit in stats: {stats}");
    assert_eq!(fields.last(), Some(&"1"), "pids: {stats}");

    // update changes the live cgroup limit and what inspect reports.
    d.docker_ok(&[
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "192m",
        "--restart",
        "on-failure:3",
        &name,
    ]);
    let st = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}",
        &name,
    ]);
    assert_eq!(st.trim(), format!("{} on-failure", 96 << 20));
    let stats = d.docker_ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", &name]);
    assert!(stats.contains("/ 96MiB"), "limit after update: {stats}");

    let top = d.docker_ok(&["top", &name]);
    assert!(top.lines().any(|l| l.ends_with("sleep 1000")), "top: {top}");

    d.docker_ok(&["pause", &name]);
    let st = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.Paused}}",
        &name,
    ]);
    assert_eq!(st.trim(), "paused true");
    let frozen = d.docker(&["exec", &name, "true"]);
    assert!(!frozen.status.success() || st.contains("paused"));
    d.docker_ok(&["unpause", &name]);
    assert_eq!(d.docker_ok(&["exec", &name, "echo", "thawed"]), "thawed\n");

    let renamed = unique("renamed");
    d.docker_ok(&["rename", &name, &renamed]);
    let ps = d.docker_ok(&[
        "ps",
        "--filter",
        "label=role=worker",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(ps.trim(), renamed);
    let ps = d.docker_ok(&[
        "ps",
        "--filter",
        "label=role=other",
        "--format",
        "{{.Names}}",
    ]);
    assert!(ps.trim().is_empty(), "{ps}");
    let gone = d.docker(&["inspect", &name]);
    assert!(!gone.status.success());

    d.docker_ok(&["rm", "-f", &renamed]);
    let ps = d.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={renamed}"),
        "--format",
        "{{.Names}}",
    ]);
    assert!(ps.trim().is_empty(), "{ps}");
}

#[test]
fn tag_and_rmi() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    d.docker_ok(&["tag", "busybox", "mybox:v1"]);
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let ids: Vec<&str> = images
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(ids.len(), 2, "{images}");
    assert_eq!(ids[0], ids[1], "a tag names the same image: {images}");

    // In use by a container: refused without force.
    let name = unique("user");
    d.docker_ok(&["create", "--name", &name, "busybox", "true"]);
    let out = d.docker_ok(&["rmi", "mybox:v1"]);
    assert!(out.contains("Untagged: mybox:v1"), "{out}");
    let refused = d.docker(&["rmi", "busybox"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("conflict"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    d.docker_ok(&["rm", &name]);
    let out = d.docker_ok(&["rmi", "busybox"]);
    assert!(out.contains("Deleted: sha256:"), "{out}");
    assert!(d.docker_ok(&["images", "-q"]).trim().is_empty());
    // Blobs went with it: only empty blob directories are left.
    let blobs = std::fs::read_dir(d.data_root().join("blobs/sha256"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(blobs, 0, "blobs left after rmi");
    let o = d.docker(&["run", "--rm", "busybox", "true"]);
    assert!(!o.status.success());
}

#[test]
fn restart_policy_on_failure_and_oom() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let name = unique("flaky");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    // One run plus two restarts, then it stays down.
    let logs = eventually("three runs", || {
        let st = d.docker_ok(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}}",
            &name,
        ]);
        (st.trim() == "2 exited").then(|| d.docker_ok(&["logs", &name]))
    });
    assert_eq!(logs, "run\nrun\nrun\n");
    d.docker_ok(&["rm", &name]);

    // A memory limit the program exceeds: the kernel kills it, Docker's way of saying so.
    let name = unique("oom");
    let o = d.docker(&[
        "run",
        "--name",
        &name,
        "-m",
        "16m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(
        o.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let st = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.State.OOMKilled}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(st.trim(), "true 137");
    d.docker_ok(&["rm", &name]);
}

#[test]
fn json_file_logs_rotate() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let name = unique("chatty");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=1; while [ $i -le 300 ]; do echo line $i; i=$((i+1)); done",
    ]);
    d.docker_ok(&["wait", &name]);
    let logs = d.docker_ok(&["logs", &name]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.last(), Some(&"line 300"));
    assert!(
        !lines.contains(&"line 1"),
        "the oldest lines were rotated away"
    );
    // What is kept is contiguous: rotation drops whole old files only.
    let first: usize = lines[0]
        .trim_start_matches("line ")
        .parse()
        .expect("number");
    assert_eq!(lines.len(), 300 - first + 1);
    let log_path = d.docker_ok(&["inspect", "--format", "{{.LogPath}}", &name]);
    let log_path = std::path::Path::new(log_path.trim());
    let dir = log_path.parent().expect("log dir");
    let files = std::fs::read_dir(dir)
        .expect("container dir")
        .filter(|e| {
            e.as_ref()
                .map(|e| e.file_name().to_string_lossy().contains("-json.log"))
                .unwrap_or(false)
        })
        .count();
    assert_eq!(files, 2);
    assert!(std::fs::metadata(log_path).expect("log").len() <= 2048);
    // --tail reads across the rotated file too.
    assert_eq!(
        d.docker_ok(&["logs", "--tail", "2", &name]),
        "line 299\nline 300\n"
    );
    d.docker_ok(&["rm", &name]);
}

#[test]
fn save_load_round_trip() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    d.docker_ok(&["tag", "busybox", "second:v2"]);
    let id = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    let tar = d.root.path().join("saved.tar");
    d.docker_ok(&[
        "save",
        "-o",
        tar.to_str().expect("utf-8"),
        "busybox",
        "second:v2",
    ]);
    d.docker_ok(&["rmi", "-f", "busybox", "second:v2"]);
    assert!(d.docker_ok(&["images", "-q"]).trim().is_empty());
    let out = d.docker_ok(&["load", "-i", tar.to_str().expect("utf-8")]);
    assert!(
        out.contains("Loaded image: busybox:latest") && out.contains("Loaded image: second:v2"),
        "{out}"
    );
    // Same image id, and it runs.
    assert_eq!(
        d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "second:v2"]),
        id
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "second:v2", "echo", "round trip"]),
        "round trip\n"
    );
    let o = d.docker(&["save", "nosuchimage"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such image: nosuchimage"));
}

#[test]
fn events_stream_and_history() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let name = unique("ev");
    let o = d.docker(&[
        "run", "--rm", "--name", &name, "busybox", "sh", "-c", "exit 2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    // --until makes the stream finite: the history of what just happened, filtered.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
        .to_string();
    let out = d.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &now,
        "--filter",
        &format!("container={name}"),
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.exitCode}}",
    ]);
    let actions: Vec<&str> = out.lines().collect();
    assert_eq!(
        actions,
        [
            "container create <no value>",
            "container start <no value>",
            "container die 2",
            "container destroy <no value>"
        ],
        "{out}"
    );
}

#[test]
fn system_df_and_prune() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let stopped = unique("stopped");
    let running = unique("running");
    d.docker_ok(&["run", "--name", &stopped, "busybox", "true"]);
    d.docker_ok(&["run", "-d", "--name", &running, "busybox", "sleep", "1000"]);
    let vol = unique("dfvol");
    d.docker_ok(&["volume", "create", &vol]);
    let df = d.docker_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(df.lines().any(|l| l == "Images 1 1"), "{df}");
    assert!(df.lines().any(|l| l == "Containers 2 1"), "{df}");
    assert!(df.lines().any(|l| l == "Local Volumes 1 0"), "{df}");

    let out = d.docker_ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    let names = d.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.trim(), running, "only the running one is left");
    // The image is in use: image prune -a keeps it.
    d.docker_ok(&["image", "prune", "-af"]);
    assert_eq!(d.docker_ok(&["images", "-q"]).lines().count(), 1);
    d.docker_ok(&["rm", "-f", &running]);
    d.docker_ok(&["system", "prune", "-af", "--volumes"]);
    assert!(d.docker_ok(&["images", "-q"]).trim().is_empty());
    assert!(d.docker_ok(&["volume", "ls", "-q"]).trim().is_empty());
}
