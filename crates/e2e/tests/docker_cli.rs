//! The stock docker CLI against berthd: each test starts its own daemon on temporary roots.

use std::io::Write;
use std::process::Stdio;

use berth_e2e::{eventually, prerequisites, raw_request, unique, Daemon};

#[test]
fn version_and_info() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    let v = d.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(v.trim(), berth_api_version());
    let info = d.docker_ok(&[
        "info",
        "--format",
        "{{.Containers}} {{.Images}} {{.OSType}}",
    ]);
    assert_eq!(info.trim(), "0 0 linux");
    // _ping answers with the API version header, under any /v1.NN prefix too.
    let (status, body) = raw_request(&d.socket, "GET", "/v1.44/_ping", "");
    assert_eq!((status, body.as_str()), (200, "OK"));
}

fn berth_api_version() -> &'static str {
    "1.47"
}

#[test]
fn load_images_and_run_rm() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        images.lines().any(|l| l == "busybox:latest"),
        "images: {images}"
    );
    let id = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    assert!(id.trim().starts_with("sha256:"), "image id {id}");

    let out = d.docker(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(out.status.code(), Some(0));

    // Exit codes propagate; stdout and stderr stay apart.
    let out = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));

    // --rm removed them.
    let ps = d.docker_ok(&["ps", "-aq"]);
    assert!(ps.trim().is_empty(), "left behind: {ps}");
}

#[test]
fn stdin_reaches_the_container() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let mut child = d
        .docker_cmd(&["run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker run -i");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hello berth\n")
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO BERTH\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn detached_logs_exec_stop_rm_inspect() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let name = unique("web");
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-e",
        "GREETING=hello",
        "busybox",
        "sh",
        "-c",
        "echo started $GREETING; echo to-stderr >&2; exec sleep 1000",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "container id {id}");

    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert!(
        ps.lines().any(|l| l == format!("{name} running")),
        "ps: {ps}"
    );

    let logs = eventually("the first log line", || {
        let o = d.docker(&["logs", &name]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        out.contains("started hello")
            .then_some((out, String::from_utf8_lossy(&o.stderr).into_owned()))
    });
    assert!(logs.1.contains("to-stderr"), "stderr logs: {:?}", logs.1);
    assert!(!logs.0.contains("to-stderr"));

    let exec = d.docker(&[
        "exec",
        &name,
        "sh",
        "-c",
        "echo $GREETING from $(hostname); exit 5",
    ]);
    assert_eq!(exec.status.code(), Some(5));
    assert_eq!(
        String::from_utf8_lossy(&exec.stdout),
        format!("hello from {}\n", &id[..12])
    );

    let state = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.Running}} {{.Name}} {{.Config.Image}}",
        &name,
    ]);
    assert_eq!(state.trim(), format!("running true /{name} busybox"));
    let pid: i32 = d
        .docker_ok(&["inspect", "--format", "{{.State.Pid}}", &name])
        .trim()
        .parse()
        .expect("pid");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    // Removing a running container needs force.
    let rm = d.docker(&["rm", &name]);
    assert!(!rm.status.success());
    assert!(String::from_utf8_lossy(&rm.stderr).contains("container is running"));

    // sleep as PID 1 ignores SIGTERM: stop escalates to SIGKILL after the timeout.
    d.docker_ok(&["stop", "-t", "1", &name]);
    let state = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(state.trim(), "exited 137");
    let ps = d.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&format!("{name} Exited (137)"))),
        "ps -a: {ps}"
    );
    // Logs outlive the process.
    assert!(d.docker_ok(&["logs", &name]).contains("started hello"));

    d.docker_ok(&["rm", &name]);
    let gone = d.docker(&["inspect", &name]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains(&format!("No such container: {name}"))
            || String::from_utf8_lossy(&gone.stderr).contains("No such object")
    );
}

#[test]
fn follow_logs_until_exit_and_wait() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let name = unique("count");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; sleep 0.2; done; exit 4",
    ]);
    // logs -f ends by itself when the container exits, with every line.
    let out = d.docker_ok(&["logs", "-f", &name]);
    assert_eq!(out, "line 1\nline 2\nline 3\n");
    let code = d.docker_ok(&["wait", &name]);
    assert_eq!(code.trim(), "4");
    d.docker_ok(&["rm", &name]);
}

#[test]
fn docker_errors_and_status_codes() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let o = d.docker(&["rm", "nosuchthing"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such container: nosuchthing"));
    let (status, body) = raw_request(&d.socket, "GET", "/v1.47/containers/nosuchthing/json", "");
    assert_eq!(status, 404);
    assert_eq!(body, r#"{"message":"No such container: nosuchthing"}"#);

    let (status, body) = raw_request(
        &d.socket,
        "POST",
        "/v1.47/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("HostConfig.Memory"), "{body}");

    let (status, body) = raw_request(
        &d.socket,
        "POST",
        "/v1.47/containers/create",
        r#"{"Image":"nosuchimage"}"#,
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("No such image: nosuchimage"), "{body}");

    let name = unique("dup");
    d.docker_ok(&["create", "--name", &name, "busybox", "true"]);
    let o = d.docker(&["create", "--name", &name, "busybox", "true"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is already in use"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    d.docker_ok(&["rm", &name]);
}
