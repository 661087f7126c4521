//! A spare shim given a real container: it keeps what its create made (`create_held`), so the
//! start, the exit and the clean-up need no state file, and the state it writes names root without a
//! user-database lookup. With `--start-held` it starts the container at once and keeps its
//! output, and the report of its exit, for the first client that attaches.

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

/// A container handed to a spare shim (with `extra` flags), created and reported ready.
struct Handed {
    _bundle: TestBundle,
    dir: tempfile::TempDir,
    id: String,
    root: std::path::PathBuf,
    socket: std::path::PathBuf,
    exit_file: std::path::PathBuf,
}

impl Handed {
    fn new(args: &[&str], extra: &[&str]) -> Handed {
        let bundle = TestBundle::busybox(args);
        let dir = tempfile::tempdir().expect("tempdir");
        let id = unique_id("held");
        let p = |name: &str| dir.path().join(name);
        let mut flags = serde_json::json!([
            "--id",
            id,
            "--bundle",
            bundle.path(),
            "--runtime-root",
            p("runtime"),
            "--socket",
            p("s.sock"),
            "--log",
            p("log.json"),
            "--exit-file",
            p("exit.json")
        ]);
        if let Some(v) = flags.as_array_mut() {
            v.extend(extra.iter().map(|f| serde_json::json!(f)));
        }
        let mut s = spare();
        s.write_all(format!("{flags}\n").as_bytes()).expect("flags");
        let ready = line(&s);
        assert!(ready.contains("\"error\":null"), "{ready}");
        Handed {
            root: p("runtime"),
            socket: p("s.sock"),
            exit_file: p("exit.json"),
            _bundle: bundle,
            dir,
            id,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log.json")).unwrap_or_default()
    }
}

/// A `wait` request sent now; its reply is read later.
fn send_wait(socket: &std::path::Path) -> UnixStream {
    let mut s = UnixStream::connect(socket).expect("connect to the shim");
    s.write_all(b"{\"op\":\"wait\"}\n").expect("send wait");
    s
}

/// Every byte of the stdout frames on an attached stream, until the shim closes it.
fn stdout_of(mut s: &UnixStream) -> String {
    let mut all = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut all).expect("read the stream");
    let mut out = Vec::new();
    let mut rest = &all[..];
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let body = &rest[8..(8 + len).min(rest.len())];
        if rest[0] == 1 {
            out.extend_from_slice(body);
        }
        rest = &rest[(8 + len).min(rest.len())..];
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn start_held_runs_at_once_and_keeps_output_and_exit_for_the_first_attach() {
    if !require_root!() {
        return;
    }
    // More than a pipe holds: the container blocks until the client is there to read it.
    let h = Handed::new(
        &["sh", "-c", "echo first; seq 1 20000; exit 4"],
        &["--start-held", "20000"],
    );
    // It runs with nobody attached (no start request): it prints its first line...
    wait_until("the container did not run before the attach", || {
        call(&h.socket, r#"{"op":"state"}"#).contains("\"running\":true")
    });
    // ...but neither its output nor its exit goes anywhere yet.
    let waiter = send_wait(&h.socket);
    waiter
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut b = [0u8; 1];
    let early = std::io::Read::read(&mut &waiter, &mut b);
    assert!(
        early.is_err(),
        "the exit was reported before the attach: {early:?}"
    );
    assert!(
        h.log().is_empty(),
        "output was read before the attach: {}",
        h.log()
    );

    let mut a = UnixStream::connect(&h.socket).expect("connect to the shim");
    a.write_all(b"{\"op\":\"attach\",\"stdin\":false}\n")
        .expect("attach");
    let ok = line(&a);
    assert!(ok.contains("\"ok\":true"), "{ok}");
    let out = stdout_of(&a);
    assert!(
        out.starts_with("first\n1\n2\n"),
        "{:?}",
        &out[..out.len().min(40)]
    );
    assert!(
        out.ends_with("\n19999\n20000\n"),
        "the output was cut short"
    );
    waiter
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let exit = line(&waiter);
    assert!(exit.contains("\"code\":4"), "{exit}");
}

#[test]
fn start_held_lets_go_of_the_output_when_nobody_attaches() {
    if !require_root!() {
        return;
    }
    let h = Handed::new(
        &["sh", "-c", "echo unattended; exit 2"],
        &["--start-held", "300"],
    );
    let waiter = send_wait(&h.socket);
    waiter
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let exit = line(&waiter);
    assert!(exit.contains("\"code\":2"), "{exit}");
    assert!(h.log().contains("unattended"), "not logged: {}", h.log());
}

#[test]
fn a_held_container_starts_and_exits_without_its_state_file() {
    if !require_root!() {
        return;
    }
    let h = Handed::new(&["sh", "-c", "exit 7"], &[]);
    let (root, socket, exit_file, id) = (&h.root, &h.socket, &h.exit_file, &h.id);

    // Written just after the readiness line (off the start's path).
    let state_file = root.join(id).join("state.json");
    wait_until("no state file", || state_file.exists());
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).expect("state.json")).expect("json");
    assert_eq!(state["owner"], "root", "{state}");
    // What a start or an exit would have read from disk is gone: the shim must not need it.
    std::fs::remove_file(&state_file).expect("remove state.json");

    let started = call(socket, r#"{"op":"start"}"#);
    assert!(started.contains("\"ok\":true"), "{started}");
    wait_until("no exit file", || exit_file.exists());
    let exit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(exit_file).expect("exit file")).expect("json");
    assert_eq!(exit["code"], 7, "{exit}");
    assert_eq!(exit["oom_killed"], false, "{exit}");
    // And it cleans up after it from what it holds: its socket goes last.
    wait_until("the shim did not finish", || !socket.exists());
    assert!(
        !root.join(id).exists(),
        "the container's state directory is left"
    );
}
