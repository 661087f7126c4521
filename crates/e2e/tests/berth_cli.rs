//! The `berth` CLI against berthd (images are loaded with berth itself).

use berth_e2e::{bin, eventually, prerequisites, unique, Daemon};

#[test]
fn berth_cli_drives_the_daemon() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    let tar = d.root.path().join("bb.tar");
    berth_e2e::busybox_tar(&tar, "busybox:latest");
    let (code, out, err) = d.berth(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "Loaded image: busybox:latest\n");

    let (_, out, _) = d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(out, "busybox:latest\n");

    let (code, out, _) = d.berth(&["run", "--rm", "busybox", "sh", "-c", "echo hi; exit 9"]);
    assert_eq!((code, out.as_str()), (Some(9), "hi\n"));

    let name = unique("cli");
    let (code, id, err) = d.berth(&[
        "run",
        "-d",
        "--name",
        &name,
        "-e",
        "X=1",
        "busybox",
        "sh",
        "-c",
        "echo up $X; exec sleep 1000",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(id.trim().len(), 64);
    let (_, ps, _) = d.berth(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert!(ps.lines().any(|l| l == format!("{name} running")), "{ps}");
    let (code, out, _) = d.berth(&["exec", &name, "sh", "-c", "echo in $X; exit 3"]);
    assert_eq!((code, out.as_str()), (Some(3), "in 1\n"));
    let logs = berth_e2e::eventually("logs", || {
        let (_, out, _) = d.berth(&["logs", &name]);
        out.contains("up 1").then_some(out)
    });
    assert_eq!(logs, "up 1\n");
    let (_, st, _) = d.berth(&["inspect", "-f", "{{.State.Status}}", &name]);
    assert_eq!(st.trim(), "running");
    let (code, _, _) = d.berth(&["stop", "-t", "1", &name]);
    assert_eq!(code, Some(0));
    let (_, st, _) = d.berth(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
    assert_eq!(st.trim(), "137");
    let (code, _, _) = d.berth(&["rm", &name]);
    assert_eq!(code, Some(0));
    let (code, _, err) = d.berth(&["rm", &name]);
    assert_eq!(code, Some(1));
    assert!(err.contains(&format!("No such container: {name}")), "{err}");
}

#[test]
fn berth_says_how_to_start_a_daemon() {
    berth_e2e::ensure_built();
    let o = std::process::Command::new(bin("berth"))
        .args(["-H", "unix:///nonexistent/berth.sock", "ps"])
        .output()
        .expect("run berth");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot connect to the berth daemon at unix:///nonexistent/berth.sock"),
        "{err}"
    );
    assert!(err.contains("berthd"), "{err}");
}

/// berth's `run` asks berthd to start the container for the attach that follows
/// (`prepare=start`): its output, more than a pipe holds, and its stderr reach the client in
/// full and in order, the exit code is the container's, and the log has the output too.
#[test]
fn run_started_for_its_attach_loses_no_output() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let script = "echo first; seq 1 30000; echo to-stderr >&2; exit 6";
    let (code, out, err) = d.berth(&["run", "--rm", "busybox", "sh", "-c", script]);
    assert_eq!(code, Some(6), "{err}");
    assert!(
        out.starts_with("first\n1\n2\n"),
        "{}",
        &out[..out.len().min(40)]
    );
    assert_eq!(out.lines().count(), 30001, "lines lost");
    assert!(out.ends_with("\n30000\n"));
    assert_eq!(err, "to-stderr\n");

    let name = unique("held");
    let (code, out, err) = d.berth(&["run", "--name", &name, "busybox", "echo", "once"]);
    assert_eq!((code, out.as_str()), (Some(0), "once\n"), "{err}");
    let (_, st, _) = d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(st.trim(), "exited 0");
    let (_, logs, _) = d.berth(&["logs", &name]);
    assert_eq!(logs, "once\n");
    // Its stdin, when asked for, is there from the start.
    let mut o = d
        .berth_cmd(&["run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run berth");
    std::io::Write::write_all(&mut o.stdin.take().expect("stdin"), b"piped in\n").expect("write");
    let done = o.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&done.stdout), "PIPED IN\n");
}

/// A command that cannot start: Docker's exit code (127: not found) and message, and a `--rm`
/// container is removed; through berth's `run` (whose create asks berthd to set the process up
/// ahead, so the failure is met up to three times) and through the docker CLI (which waits for
/// that removal after its failed start).
#[test]
fn a_command_that_cannot_start() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let (code, _, err) = d.berth(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(code, Some(127), "{err}");
    assert!(
        err.contains("\"no-such-command\": executable file not found in $PATH"),
        "{err}"
    );
    let out = d.docker(&["run", "--rm", "busybox", "no-such-command"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{err}");
    assert!(err.contains("executable file not found"), "{err}");
    let (_, all, _) = d.berth(&["ps", "-aq"]);
    assert_eq!(all, "", "--rm containers that could not start are gone");

    // Without --rm it stays, created; a second start meets the same error, not a leftover.
    let name = unique("nostart");
    let (code, _, _) = d.berth(&["run", "--name", &name, "busybox", "no-such-command"]);
    assert_eq!(code, Some(127));
    let (code, _, err) = d.berth(&["start", &name]);
    assert_eq!(code, Some(1));
    assert!(err.contains("executable file not found"), "{err}");
    let (_, state, _) = d.berth(&["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(state.trim(), "created");
}

/// berth's extension to attach: `start=1` starts the container once the stream is hooked up
/// and says so in the 101 (a running one just gets the attach); a plain attach (Docker's)
/// leaves it created.
#[test]
fn attach_with_start_starts_the_container() {
    use std::io::{Read, Write};
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let create = |name: &str| {
        let (code, id, err) = d.berth(&["create", "--name", name, "busybox", "echo", "hi"]);
        assert_eq!(code, Some(0), "{err}");
        id.trim().to_string()
    };
    let attach = |id: &str, extra: &str| {
        let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
        write!(
            s,
            "POST /containers/{id}/attach?stream=1&stdout=1&stderr=1{extra} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut b).unwrap(), 1, "headers ended early: {head:?}");
            head.push(b[0]);
        }
        (String::from_utf8_lossy(&head).to_lowercase(), s)
    };

    let plain = create(&unique("plain"));
    let (head, _s) = attach(&plain, "");
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("x-berth-started"), "{head}");
    let (_, state, _) = d.berth(&["inspect", "--format", "{{.State.Status}}", &plain]);
    assert_eq!(state.trim(), "created");

    let started = create(&unique("started"));
    let (head, mut s) = attach(&started, "&start=1");
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("x-berth-started: 1"), "{head}");
    let mut stream = Vec::new();
    s.read_to_end(&mut stream).unwrap();
    // One stdout frame: 8-byte header (stream 1, big-endian length), then the line.
    assert_eq!(stream, b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n");
    // (The exit is recorded a moment after the stream ends.)
    eventually("the started container's exit", || {
        let (_, state, _) = d.berth(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            &started,
        ]);
        (state.trim() == "exited 0").then_some(())
    });

    // Running already (started by someone else, or for this attach): the attach just hooks up.
    let running = unique("running");
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        &running,
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo late",
    ]);
    let (head, mut s) = attach(&running, "&start=1");
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("x-berth-started: 1"), "{head}");
    let mut stream = Vec::new();
    s.read_to_end(&mut stream).unwrap();
    assert_eq!(stream, b"\x01\x00\x00\x00\x00\x00\x00\x05late\n");
}

/// berth's extension to create: `prepare=1` (berth `run`) mounts the rootfs and sets the process
/// up before the start; a plain create (Docker's) leaves both to the start. Removing either
/// leaves nothing mounted.
#[test]
fn create_with_prepare_sets_the_process_up_ahead() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let body = r#"{"Image":"busybox","Cmd":["true"]}"#;
    let id_of = |resp: &str| {
        let v: serde_json::Value = serde_json::from_str(resp).expect("create answer");
        v["Id"].as_str().expect("Id").to_string()
    };
    let mounted = |id: &str| {
        let rootfs = d.data_root().join("containers").join(id).join("rootfs");
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(rootfs.to_str().unwrap()))
    };
    let (status, resp) = berth_e2e::raw_request(&d.socket, "POST", "/containers/create", body);
    assert_eq!(status, 201, "{resp}");
    let plain = id_of(&resp);
    assert!(!mounted(&plain), "a plain create mounts nothing");

    let (status, resp) =
        berth_e2e::raw_request(&d.socket, "POST", "/containers/create?prepare=1", body);
    assert_eq!(status, 201, "{resp}");
    let prepared = id_of(&resp);
    assert!(mounted(&prepared), "prepare=1 mounts the rootfs at create");
    // Its process is set up in the background: a shim serves it while it is still created.
    let shim_socket = |id: &str| {
        d.exec_root()
            .join("shims")
            .join(format!("{}.sock", &id[..16]))
    };
    eventually("the prepared process's shim", || {
        shim_socket(&prepared).exists().then_some(())
    });
    assert!(!shim_socket(&plain).exists(), "no shim for a plain create");
    let (_, state, _) = d.berth(&["inspect", "--format", "{{.State.Status}}", &prepared]);
    assert_eq!(state.trim(), "created");
    // Its (not started) init, in the container's cgroups.
    let holding = |id: &str| -> Vec<String> {
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let in_cgroup = std::fs::read_to_string(e.path().join("cgroup"))
                .map(|c| c.contains(id))
                .unwrap_or(false);
            if name.parse::<u32>().is_ok() && in_cgroup {
                pids.push(name);
            }
        }
        pids
    };
    eventually("the prepared container's init", || {
        (!holding(&prepared).is_empty()).then_some(())
    });
    for id in [&plain, &prepared] {
        d.berth_ok(&["rm", "-f", id]);
        assert!(!mounted(id), "{id} unmounted with its removal");
    }
    eventually("the prepared container's init gone with it", || {
        holding(&prepared).is_empty().then_some(())
    });
}
