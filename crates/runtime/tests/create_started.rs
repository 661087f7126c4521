//! `CreateOptions::start`: the process runs its program as soon as it is set up, without an
//! exec fifo or a `start`, and the poststart hooks have run when create returns.

use berth_runtime::container::{CreateOptions, Runtime};
use berth_runtime::process::MadeAhead;
use berth_runtime::state::Status;
use berth_testsupport::{require_root, unique_id, TestBundle};
use serde_json::json;

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
    let root = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new(root.path());
    let id = unique_id("started");
    let opts = CreateOptions {
        start: true,
        ..CreateOptions::default()
    };
    let c = rt
        .create_held(&id, b.path(), &opts, MadeAhead::default())
        .expect("create");
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
