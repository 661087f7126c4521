//! `docker run -it` / `docker exec -it` through a pty (the docker CLI itself runs under
//! `script`, which gives it a terminal).

use berth_e2e::{prerequisites, unique, Daemon};

fn under_script(d: &Daemon, cmd: &str) -> (Option<i32>, String) {
    let o = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("stty cols 100 rows 30; {cmd}"),
            "/dev/null",
        ])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.path().join("docker-config"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn run_and_exec_with_a_terminal() {
    if !prerequisites()
        || !berth_testsupport::require(berth_testsupport::which("script").is_some(), "script(1)")
    {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");

    // The container's stdio is a pty sized like the client's terminal; output is raw.
    let (code, out) = under_script(
        &d,
        "docker run -it --rm busybox sh -c 'stty size; tty; exit 6'",
    );
    assert_eq!(code, Some(6), "output: {out}");
    assert!(out.contains("30 100"), "output: {out}");
    assert!(out.contains("/dev/pts/"), "output: {out}");

    // -t without -i (the stock CLI needs no terminal of its own for that).
    let o = d.docker(&["run", "-t", "--rm", "busybox", "sh", "-c", "tty"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("/dev/pts/"));

    let name = unique("tty");
    d.docker_ok(&["run", "-d", "--name", &name, "busybox", "sleep", "1000"]);
    let (code, out) = under_script(
        &d,
        &format!("docker exec -it {name} sh -c 'stty size; tty; exit 4'"),
    );
    assert_eq!(code, Some(4), "output: {out}");
    assert!(out.contains("30 100"), "output: {out}");
    assert!(out.contains("/dev/pts/"), "output: {out}");
    d.docker_ok(&["rm", "-f", &name]);
}
