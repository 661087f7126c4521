//! Starting: with `CreateOptions::start` the process runs its program as soon as it is set up,
//! without an exec fifo or a `start`, and the poststart hooks have run when create returns; a
//! `start` of a process that died before it fails at once instead of waiting forever.

use berth_runtime::container::{CreateOptions, Runtime};
use berth_runtime::process::MadeAhead;
use berth_runtime::state::Status;
use berth_testsupport::{require_root, unique_id, TestBundle};
use serde_json::json;

/// `b` created with `CreateOptions::start` under a fresh runtime root (kept alive with it).
fn create_started(
    b: &TestBundle,
    name: &str,
) -> (tempfile::TempDir, berth_runtime::container::Container) {
    let root = tempfile::tempdir().expect("tempdir");
    let opts = CreateOptions {
        start: true,
        ..CreateOptions::default()
    };
    let c = Runtime::new(root.path())
        .create_held(&unique_id(name), b.path(), &opts, MadeAhead::default())
        .expect("create");
    (root, c)
}

#[test]
fn a_container_created_started_runs_without_start() {
    if !require_root!() {
        return;
    }
    let mut b = TestBundle::busybox(&["sh", "-c", "echo ran > /tmp/ran; exit 5"]);
    let hook_log = b.path().join("poststart.log");
    b.edit(|s| {
        s["hooks"] = json!({"poststart": [{"path": "/bin/sh",
            "args": ["sh", "-c", format!("echo poststart >> {}", hook_log.display())]}]});
    });
    let (_root, c) = create_started(&b, "started");
    assert_eq!(
        std::fs::read_to_string(&hook_log).expect("the poststart hook ran"),
        "poststart\n"
    );
    assert!(!c.dir.fifo_path().exists(), "an exec fifo was made");
    assert_ne!(c.status(), Status::Created);
    // Nobody started it: it ran its program and exited with its code.
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(c.state.pid), None)
        .expect("wait for the container's process");
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(c.state.pid), 5)
    );
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("tmp/ran")).expect("the program ran"),
        "ran\n"
    );
    assert_eq!(c.status(), Status::Stopped);
    c.delete(true).expect("delete");
}

#[test]
fn a_start_after_the_process_died_fails_at_once() {
    if !require_root!() {
        return;
    }
    let b = TestBundle::busybox(&["true"]);
    let root = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new(root.path());
    let id = unique_id("died");
    let mut c = rt
        .create_held(
            &id,
            b.path(),
            &CreateOptions::default(),
            MadeAhead::default(),
        )
        .expect("create");
    // The process dies while created (killed, reaped: nothing reads its exec fifo any more)...
    let pid = nix::unistd::Pid::from_raw(c.state.pid);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill");
    nix::sys::wait::waitpid(pid, None).expect("reap");
    // ...but the start's liveness check still passes: the moment between a SIGKILL and the
    // process becoming a zombie, stood in for by a live process that is not the container's.
    let mut stand_in = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let real = (c.state.pid, c.state.pid_start_time);
    c.state.pid = stand_in.id() as i32;
    c.state.pid_start_time = berth_runtime::state::proc_stat(c.state.pid)
        .expect("the stand-in's stat")
        .start_time;
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let r = c.start();
        let _ = tx.send(r.map_err(|e| e.to_string()));
        c
    });
    let started = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("start hung on a process that is gone");
    let _ = stand_in.kill();
    let _ = stand_in.wait();
    let err = started.expect_err("a process that is gone was started");
    assert!(err.contains("its process is gone"), "{err}");
    let mut c = waiter.join().expect("join");
    (c.state.pid, c.state.pid_start_time) = real;
    c.delete(true).expect("delete");
}

/// `create_held` keeps the container's mount namespace open from its create: after the process
/// is gone the namespace is still there (its mounts with it), so tearing it down happens where
/// the holder lets go, not in the exit of the container's last process.
#[test]
fn the_mount_namespace_is_held_past_the_exit() {
    if !require_root!() {
        return;
    }
    let b = TestBundle::busybox(&["sleep", "0.3"]);
    std::fs::write(b.rootfs().join("held-marker"), "x").expect("marker");
    let (_root, c) = create_started(&b, "heldns");
    let fd = std::os::fd::AsRawFd::as_raw_fd(c.mount_ns.as_ref().expect("held mount namespace"));
    let link = |p: String| std::fs::read_link(p).expect("readlink");
    let held = link(format!("/proc/self/fd/{fd}"));
    assert_eq!(held, link(format!("/proc/{}/ns/mnt", c.state.pid)));
    assert_ne!(held, link("/proc/self/ns/mnt".into()));
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(c.state.pid), None).expect("wait");
    // Gone; its root is still mounted in the namespace we hold.
    let seen = std::process::Command::new("nsenter")
        .arg(format!("--mount=/proc/{}/fd/{fd}", std::process::id()))
        .args(["--", "/bin/sh", "-c", "test -e /held-marker"])
        .status()
        .expect("run nsenter");
    assert!(seen.success(), "the container's root is not there any more");
    c.delete(true).expect("delete");
}
