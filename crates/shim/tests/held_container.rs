//! A spare shim given a real container: it keeps what its create made (`create_held`), so the
//! start, the exit and the clean-up need no state file, and the state it writes names root without a
//! user-database lookup.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_testsupport::{require_root, unique_id, TestBundle};

fn spare() -> UnixStream {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let status = Command::new(env!("CARGO_BIN_EXE_berth-shim"))
        .args(["--standby", "--owner", "0", "--nice", "0"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .status()
        .expect("run berth-shim --standby");
    assert!(status.success(), "{status}");
    ours.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut mark = [0u8; 1];
    std::io::Read::read_exact(&mut &ours, &mut mark).expect("the ready mark");
    ours
}

fn line(s: &UnixStream) -> String {
    let mut l = String::new();
    BufReader::new(s).read_line(&mut l).expect("read a line");
    l
}

/// Poll `cond` for up to 20 s; fail naming `what` never happened.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn call(socket: &std::path::Path, request: &str) -> String {
    let mut s = UnixStream::connect(socket).expect("connect to the shim");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(format!("{request}\n").as_bytes())
        .expect("send");
    line(&s)
}

#[test]
fn a_held_container_starts_and_exits_without_its_state_file() {
    if !require_root!() {
        return;
    }
    let bundle = TestBundle::busybox(&["sh", "-c", "exit 7"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let id = unique_id("held");
    let (root, socket, log, exit_file) = (
        dir.path().join("runtime"),
        dir.path().join("s.sock"),
        dir.path().join("log.json"),
        dir.path().join("exit.json"),
    );
    let flags = serde_json::json!([
        "--id",
        id,
        "--bundle",
        bundle.path(),
        "--runtime-root",
        root,
        "--socket",
        socket,
        "--log",
        log,
        "--exit-file",
        exit_file
    ]);
    let mut s = spare();
    s.write_all(format!("{flags}\n").as_bytes()).expect("flags");
    let ready = line(&s);
    assert!(ready.contains("\"error\":null"), "{ready}");

    // Written just after the readiness line (off the start's path).
    let state_file = root.join(&id).join("state.json");
    wait_until("no state file", || state_file.exists());
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).expect("state.json")).expect("json");
    assert_eq!(state["owner"], "root", "{state}");
    // What a start or an exit would have read from disk is gone: the shim must not need it.
    std::fs::remove_file(&state_file).expect("remove state.json");

    let started = call(&socket, r#"{"op":"start"}"#);
    assert!(started.contains("\"ok\":true"), "{started}");
    wait_until("no exit file", || exit_file.exists());
    let exit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&exit_file).expect("exit file")).expect("json");
    assert_eq!(exit["code"], 7, "{exit}");
    assert_eq!(exit["oom_killed"], false, "{exit}");
    // And it cleans up after it from what it holds: its socket goes last.
    wait_until("the shim did not finish", || !socket.exists());
    assert!(
        !root.join(&id).exists(),
        "the container's state directory is left"
    );
}
