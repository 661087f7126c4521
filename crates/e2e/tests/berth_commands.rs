//! `berth` itself against a berthd: cp both ways (with `-`, -a, -L), update, events, system
//! df/prune, the management-command aliases, port, ps --filter and the --format templates ops
//! people type.

use std::io::{BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use berth_e2e::{bin, prerequisites, unique, Daemon};

fn daemon_with_busybox() -> Daemon {
    let d = Daemon::start();
    let tar = d.root.path().join("bb.tar");
    berth_e2e::busybox_tar(&tar, "busybox:latest");
    d.berth_ok(&["load", "-q", "-i", tar.to_str().expect("utf-8")]);
    d
}

/// A running container that sleeps; returns its name.
fn sleeper(d: &Daemon, extra: &[&str]) -> String {
    let name = unique("cmd");
    let mut args = vec!["run", "-d", "--name", &name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "1000"]);
    d.berth_ok(&args);
    name
}

#[test]
fn berth_cp_both_ways() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let name = sleeper(&d, &[]);
    let host = d.root.path().join("host");
    std::fs::create_dir_all(host.join("tree/sub")).expect("mkdir");
    std::fs::write(host.join("f.txt"), "file\n").expect("write");
    std::fs::write(host.join("tree/sub/deep.txt"), "deep\n").expect("write");
    let h = |p: &str| host.join(p).to_str().expect("utf-8").to_string();

    // host → container: into a directory keeps the name; a new path renames.
    d.berth_ok(&["cp", &h("f.txt"), &format!("{name}:/tmp/")]);
    d.berth_ok(&["cp", &h("tree"), &format!("{name}:/tmp/renamed")]);
    let out = d.berth_ok(&[
        "exec",
        &name,
        "cat",
        "/tmp/f.txt",
        "/tmp/renamed/sub/deep.txt",
    ]);
    assert_eq!(out, "file\ndeep\n");
    // Without -a the copy belongs to root; with -a it keeps the host's owner.
    std::os::unix::fs::chown(host.join("f.txt"), Some(1234), Some(2345)).expect("chown");
    d.berth_ok(&["cp", &h("f.txt"), &format!("{name}:/tmp/plain.txt")]);
    d.berth_ok(&["cp", "-a", &h("f.txt"), &format!("{name}:/tmp/kept.txt")]);
    let owners = d.berth_ok(&[
        "exec",
        &name,
        "stat",
        "-c",
        "%u:%g",
        "/tmp/plain.txt",
        "/tmp/kept.txt",
    ]);
    assert_eq!(owners, "0:0\n1234:2345\n");

    // container → host: a file to a new name, a directory's contents with `/.`.
    d.berth_ok(&["cp", &format!("{name}:/tmp/f.txt"), &h("back.txt")]);
    assert_eq!(
        std::fs::read_to_string(host.join("back.txt")).expect("read"),
        "file\n"
    );
    d.berth_ok(&["cp", &format!("{name}:/tmp/renamed/."), &h("merged")]);
    assert_eq!(
        std::fs::read_to_string(host.join("merged/sub/deep.txt")).expect("read"),
        "deep\n"
    );
    d.berth_ok(&["cp", "-a", &format!("{name}:/tmp/kept.txt"), &h("kept.txt")]);
    let md = std::fs::metadata(host.join("kept.txt")).expect("stat");
    assert_eq!((md.uid(), md.gid()), (1234, 2345));

    // -L follows a symlink in the source, on either side.
    d.berth_ok(&["exec", &name, "ln", "-s", "/tmp/f.txt", "/tmp/link"]);
    d.berth_ok(&["cp", "-L", &format!("{name}:/tmp/link"), &h("followed")]);
    let md = std::fs::symlink_metadata(host.join("followed")).expect("stat");
    assert!(md.is_file(), "{md:?}");
    // Without -L the link itself is copied; -L with a relative target follows it from the
    // link's directory.
    d.berth_ok(&["cp", &format!("{name}:/tmp/link"), &h("aslink")]);
    let target = std::fs::read_link(host.join("aslink")).expect("a symlink");
    assert_eq!(target, std::path::Path::new("/tmp/f.txt"));
    d.berth_ok(&["exec", &name, "ln", "-s", "f.txt", "/tmp/rel"]);
    d.berth_ok(&["cp", "-L", &format!("{name}:/tmp/rel"), &h("relfollowed")]);
    assert!(std::fs::symlink_metadata(host.join("relfollowed"))
        .expect("stat")
        .is_file());
    std::os::unix::fs::symlink(host.join("f.txt"), host.join("hostlink")).expect("symlink");
    d.berth_ok(&["cp", "-L", &h("hostlink"), &format!("{name}:/tmp/hl")]);
    let kind = d.berth_ok(&["exec", &name, "stat", "-c", "%F", "/tmp/hl"]);
    assert_eq!(kind.trim(), "regular file");

    // `-`: a tar on stdout, and a tar on stdin.
    let o = d
        .berth_cmd(&["cp", &format!("{name}:/tmp/renamed"), "-"])
        .output()
        .expect("cp to stdout");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(&o.stdout[..]);
    for e in ar.entries().expect("tar") {
        names.push(
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string(),
        );
    }
    assert!(
        names.iter().any(|n| n == "renamed/sub/deep.txt"),
        "{names:?}"
    );

    let mut b = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_gnu();
    hd.set_size(6);
    hd.set_mode(0o644);
    hd.set_uid(0);
    hd.set_gid(0);
    hd.set_mtime(0);
    b.append_data(&mut hd, "from-stdin.txt", &b"stdin\n"[..])
        .expect("append");
    let tar_bytes = b.into_inner().expect("tar");
    let mut child = d
        .berth_cmd(&["cp", "-", &format!("{name}:/tmp")])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cp");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&tar_bytes)
        .expect("feed tar");
    let o = child.wait_with_output().expect("wait");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        d.berth_ok(&["exec", &name, "cat", "/tmp/from-stdin.txt"]),
        "stdin\n"
    );

    // Errors say what is wrong.
    let (code, _, err) = d.berth(&["cp", &format!("{name}:/nope"), &h("x")]);
    assert_eq!(code, Some(1));
    assert!(err.contains("/nope"), "{err}");
    let (code, _, err) = d.berth(&["cp", &h("tree"), &format!("{name}:/tmp/f.txt")]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot copy a directory to a file"), "{err}");
}

#[test]
fn berth_update_then_inspect_shows_it() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let name = sleeper(&d, &[]);
    let out = d.berth_ok(&[
        "update",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--restart",
        "on-failure:3",
        &name,
    ]);
    assert_eq!(out.trim(), name);
    let got = d.berth_ok(
        &[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            &name,
        ],
    );
    assert_eq!(got.trim(), "67108864 500000000 50 on-failure:3");
    // `container update` is the same command.
    d.berth_ok(&["container", "update", "--memory", "96m", &name]);
    let got = d.berth_ok(&[
        "container",
        "inspect",
        "-f",
        "{{.HostConfig.Memory}}",
        &name,
    ]);
    assert_eq!(got.trim(), "100663296");
    let (code, _, err) = d.berth(&["update", &name]);
    assert_eq!(code, Some(1));
    assert!(err.contains("one or more flags"), "{err}");
    let st = d.berth_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        &name,
    ]);
    assert_eq!(st.trim(), format!("{name} 1"));
    assert_eq!(d.berth_ok(&["rm", "-fv", &name]).trim(), name);
}

#[test]
fn berth_events_show_start_and_die() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let name = unique("ev");
    let mut events = d
        .berth_cmd(&[
            "events",
            "--since",
            "1m",
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn events");
    let stdout = events.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // `--since 1m` replays what happened before the subscription, so nothing is missed even if
    // the run below wins the race with the events command.
    let (code, _, err) = d.berth(&["run", "--name", &name, "busybox", "true"]);
    assert_eq!(code, Some(0), "{err}");
    let mut seen = Vec::new();
    // A bound on how long to wait for lines, not a claim about speed.
    while let Ok(l) = rx.recv_timeout(std::time::Duration::from_secs(60)) {
        seen.push(l);
        if seen.iter().any(|l| l == &format!("container die {name}")) {
            break;
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    let _ = reader.join();
    assert!(
        seen.iter().any(|l| l == &format!("container start {name}")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|l| l == &format!("container die {name}")),
        "{seen:?}"
    );

    // --since/--until replay the past and end by themselves; system events is the same command.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1;
    let out = d.berth_ok(&[
        "system",
        "events",
        "--since",
        "10m",
        "--until",
        &now.to_string(),
        "--filter",
        "event=die",
    ]);
    let line = out
        .lines()
        .find(|l| l.contains(&format!("name={name}")))
        .unwrap_or_else(|| panic!("no die event for {name} in:\n{out}"));
    assert!(line.contains(" container die "), "{line}");
    let json_out = d.berth_ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        &now.to_string(),
        "--format",
        "{{json .}}",
    ]);
    for l in json_out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("each event is JSON");
        assert!(v["Type"].is_string(), "{l}");
    }
}

#[test]
fn berth_system_df_and_prune() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let running = sleeper(&d, &[]);
    let stopped = unique("stopped");
    d.berth_ok(&["create", "--name", &stopped, "busybox", "true"]);

    let df = d.berth_ok(&["system", "df"]);
    let header = df.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("TYPE") && header.contains("RECLAIMABLE"),
        "{df}"
    );
    let images = df
        .lines()
        .find(|l| l.starts_with("Images"))
        .unwrap_or_else(|| panic!("{df}"));
    assert_eq!(images.split_whitespace().nth(1), Some("1"), "{df}");
    let containers = df
        .lines()
        .find(|l| l.starts_with("Containers"))
        .unwrap_or_else(|| panic!("{df}"));
    let cols: Vec<&str> = containers.split_whitespace().collect();
    assert_eq!(&cols[1..3], &["2", "1"], "{df}");
    let verbose = d.berth_ok(&["system", "df", "-v"]);
    assert!(verbose.contains("Images space usage:"), "{verbose}");
    assert!(verbose.contains(&stopped), "{verbose}");
    let rows = d.berth_ok(&["system", "df", "--format", "{{json .}}"]);
    let types: Vec<String> = rows
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["Type"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        types,
        ["Images", "Containers", "Local Volumes", "Build Cache"]
    );

    // Declining the prompt (stdin closed) removes nothing.
    d.berth_ok(&["system", "prune"]);
    assert!(d
        .berth_ok(&["ps", "-a", "--format", "{{.Names}}"])
        .contains(&stopped));
    let out = d.berth_ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let names = d.berth_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!names.contains(&stopped), "{names}");
    assert!(names.contains(&running), "{names}");
    // The running container keeps its image, even with -a.
    d.berth_ok(&["system", "prune", "-a", "-f", "--volumes"]);
    assert!(d.berth_ok(&["image", "ls", "-q"]).lines().count() == 1);

    // container prune / image prune -a.
    d.berth_ok(&["rm", "-f", &running]);
    d.berth_ok(&["create", "busybox", "true"]);
    let out = d.berth_ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert_eq!(d.berth_ok(&["container", "ls", "-aq"]), "");
    // An empty table still has its header.
    assert_eq!(
        d.berth_ok(&[
            "container",
            "ls",
            "-a",
            "--format",
            r"table {{.ID}}\t{{.Names}}"
        ]),
        "CONTAINER ID   NAMES\n"
    );
    let out = d.berth_ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("deleted: sha256:"), "{out}");
    assert_eq!(d.berth_ok(&["image", "ls", "-q"]), "");
}

#[test]
fn berth_management_aliases_and_port() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let name = sleeper(&d, &["-p", "80", "--label", "role=web"]);
    for ls in [
        &["container", "ls", "--format", "{{.Names}}"][..],
        &["container", "ps", "--format", "{{.Names}}"][..],
        &["container", "list", "--format", "{{.Names}}"][..],
    ] {
        assert_eq!(d.berth_ok(ls).trim(), name, "{ls:?}");
    }
    assert_eq!(
        d.berth_ok(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:latest\n"
    );
    let id = d.berth_ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    assert!(id.starts_with("sha256:"), "{id}");
    d.berth_ok(&["image", "tag", "busybox", "busybox:two"]);
    d.berth_ok(&["image", "rm", "busybox:two"]);

    // ps --filter and the PORTS column.
    let filtered = d.berth_ok(&[
        "ps",
        "--filter",
        "label=role=web",
        "--format",
        "{{.Names}} {{.Ports}}",
    ]);
    let (fname, ports) = filtered.trim().split_once(' ').unwrap_or_default();
    assert_eq!(fname, name);
    assert!(ports.ends_with("->80/tcp"), "{filtered}");
    assert_eq!(d.berth_ok(&["ps", "--filter", "label=role=db", "-q"]), "");
    let mapped = d.berth_ok(&["port", &name, "80"]);
    let host_port = mapped.trim().rsplit(':').next().unwrap_or_default();
    assert!(host_port.parse::<u16>().is_ok(), "{mapped}");
    assert_eq!(
        d.berth_ok(&["container", "port", &name]).trim(),
        format!("80/tcp -> {}", mapped.trim())
    );
    let (code, _, err) = d.berth(&["port", &name, "81"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("No public port '81/tcp'"), "{err}");

    // volume ls / network ls take templates too.
    d.berth_ok(&["volume", "create", "vfmt"]);
    let vols = d.berth_ok(&["volume", "ls", "--format", "{{.Name}}:{{.Driver}}"]);
    assert!(vols.lines().any(|l| l == "vfmt:local"), "{vols}");
    let nets = d.berth_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(nets.lines().any(|l| l == "bridge bridge"), "{nets}");
    let table = d.berth_ok(&["network", "ls", "--format", r"table {{.ID}}\t{{.Name}}"]);
    // Docker's tabwriter: a 12-character ID column is 15 wide, header included.
    assert!(table.starts_with("NETWORK ID     NAME\n"), "{table}");

    d.berth_ok(&["container", "stop", "-t", "1", &name]);
    assert_eq!(d.berth_ok(&["container", "rm", &name]).trim(), name);
}

#[test]
fn berth_format_templates() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let vol = d.root.path().join("data");
    std::fs::create_dir_all(&vol).expect("mkdir");
    let vol = vol.to_str().expect("utf-8").to_string();
    let name = unique("fmt");
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "k=v",
        "-v",
        &format!("{vol}:/data"),
        "busybox",
        "sleep",
        "1000",
    ]);
    let f = |tpl: &str| {
        d.berth_ok(&["inspect", "-f", tpl, &name])
            .trim_end()
            .to_string()
    };
    assert_eq!(f("{{.State.Status}}"), "running");
    let config: serde_json::Value =
        serde_json::from_str(&f("{{json .Config}}")).expect("json .Config");
    assert_eq!(config["Image"], "busybox");
    assert_eq!(f("{{range .Mounts}}{{.Source}},{{end}}"), format!("{vol},"));
    assert_eq!(f(r#"{{index .Config.Labels "k"}}"#), "v");
    assert_eq!(f("{{upper .State.Status}}/{{lower \"UP\"}}"), "RUNNING/up");
    assert_eq!(f(r#"{{join .Args ","}}"#), "1000");
    assert_eq!(f(r#"{{join .Config.Cmd ","}}"#), "sleep,1000");
    assert_eq!(f("{{if .State.Running}}up{{else}}down{{end}}"), "up");
    assert_eq!(d.berth_ok(&["ps", "--format", "{{.Names}}"]).trim(), name);
    let table = d.berth_ok(&["ps", "--format", r"table {{.ID}}\t{{.Image}}"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "CONTAINER ID   IMAGE", "{table}");
    assert!(lines[1].ends_with("   busybox"), "{table}");
    assert_eq!(lines[1].split_whitespace().next().map(str::len), Some(12));
    let row: serde_json::Value =
        serde_json::from_str(d.berth_ok(&["ps", "--format", "{{json .}}"]).trim()).expect("json");
    assert_eq!(row["Names"], name.as_str());
    let (code, _, err) = d.berth(&["inspect", "-f", "{{.State.Status", &name]);
    assert_eq!(code, Some(1));
    assert!(err.contains("template parsing error"), "{err}");
}

#[test]
fn berth_host_env_names_the_daemon_and_how_to_start_one() {
    berth_e2e::ensure_built();
    let o = Command::new(bin("berth"))
        .arg("version")
        .env("BERTH_HOST", "unix:///nonexistent/berth-env.sock")
        .output()
        .expect("run berth");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot connect to the berth daemon at unix:///nonexistent/berth-env.sock"),
        "{err}"
    );
    assert!(err.contains("sudo berthd"), "{err}");
    assert!(err.contains("BERTH_HOST"), "{err}");
    // -H wins over BERTH_HOST.
    let o = Command::new(bin("berth"))
        .args(["-H", "unix:///nonexistent/flag.sock", "ps"])
        .env("BERTH_HOST", "unix:///nonexistent/berth-env.sock")
        .output()
        .expect("run berth");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unix:///nonexistent/flag.sock"), "{err}");
}

#[test]
fn berth_run_flags_reach_the_container() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let env_file = d.root.path().join("app.env");
    std::fs::write(&env_file, "# settings\nFROM_FILE=1\nOVERRIDDEN=file\n\n").expect("write");
    let name = unique("flags");
    let args = [
        "create",
        "--name",
        &name,
        "--env-file",
        env_file.to_str().expect("utf-8"),
        "-e",
        "OVERRIDDEN=flag",
        "--tmpfs",
        "/scratch:size=8m",
        "-c",
        "512",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        "--shm-size",
        "16m",
        "--pids-limit",
        "40",
        "-w",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo $FROM_FILE $OVERRIDDEN; pwd; grep ' /scratch ' /proc/mounts | cut -d' ' -f3",
    ];
    d.berth_ok(&args);
    let got = d.berth_ok(
        &[
            "container",
            "inspect",
            "-f",
            "{{.HostConfig.CpuShares}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.ShmSize}} {{.HostConfig.PidsLimit}}",
            &name,
        ],
    );
    assert_eq!(got.trim(), "512 67108864 134217728 16777216 40");
    let out = d.berth_ok(&["start", "-a", &name]);
    assert_eq!(out, "1 flag\n/scratch\ntmpfs\n");
    assert_eq!(d.berth_ok(&["wait", &name]).trim(), "0");

    let v = d.berth_ok(&[
        "version",
        "--format",
        "{{.Server.ApiVersion}} {{.Client.Os}}",
    ]);
    assert!(v.trim().ends_with(" linux") && v.starts_with("1."), "{v}");
    let info: serde_json::Value =
        serde_json::from_str(&d.berth_ok(&["system", "info", "--format", "{{json .}}"]))
            .expect("json");
    assert!(
        info["Containers"].as_i64().is_some_and(|n| n >= 1),
        "{info}"
    );
}
