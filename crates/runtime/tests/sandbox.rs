//! Sandboxes (`Runtime::create_sandbox`): a container set up ahead but for its process, which
//! the create that follows sends it; a spec that differs elsewhere does not fit and leaves
//! nothing behind.

use berth_runtime::container::{CreateOptions, Runtime};
use berth_runtime::process::MadeAhead;
use berth_runtime::state::Status;
use berth_testsupport::{require_root, unique_id, TestBundle};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde_json::json;

fn started() -> CreateOptions {
    CreateOptions {
        start: true,
        ..CreateOptions::default()
    }
}

/// The mount points of process `pid`'s mount namespace.
fn mount_points(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

#[test]
fn a_sandbox_is_set_up_ahead_and_runs_the_process_it_is_sent() {
    if !require_root!() {
        return;
    }
    let mut b = TestBundle::busybox(&["sh", "-c", "exit 9"]);
    b.edit(|s| s["process"]["env"] = json!(["PATH=/bin", "X=template"]));
    let root = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new(root.path());
    let id = unique_id("sandbox");
    let sandbox = rt
        .create_sandbox(&id, b.path(), &started(), MadeAhead::default())
        .expect("create the sandbox");
    let pid = sandbox.pid().expect("a sandbox's process");
    // Set up already: its root is the rootfs with the container's mounts on it, and it
    // waits (it has not run the template's `exit 9`).
    let mounts = mount_points(pid);
    for want in ["/", "/proc", "/dev", "/dev/pts", "/sys"] {
        assert!(mounts.iter().any(|m| m == want), "no {want} in {mounts:?}");
    }
    assert!(
        std::fs::read_dir(format!("/proc/{pid}/root/bin")).is_ok(),
        "the sandbox's root is not the rootfs"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the sandbox did not wait"
    );

    // The create it was made for: another program, environment, user and directory.
    b.edit(|s| {
        s["process"]["args"] = json!([
            "sh",
            "-c",
            "[ \"$X\" = final ] && [ \"$(id -u)\" = 1000 ] && [ \"$(pwd)\" = /tmp ] && exit 3; exit 1"
        ]);
        s["process"]["env"] = json!(["PATH=/bin", "X=final"]);
        s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        s["process"]["cwd"] = json!("/tmp");
    });
    assert!(sandbox.fits(
        &berth_runtime::spec::Bundle::load(b.path())
            .expect("bundle")
            .spec
    ));
    let c = sandbox
        .finish(&id, b.path(), &started())
        .expect("finish the sandbox");
    assert_eq!(c.state.pid, pid, "the container's process is the sandbox's");
    let status = waitpid(Pid::from_raw(pid), None).expect("wait");
    assert_eq!(
        status,
        WaitStatus::Exited(Pid::from_raw(pid), 3),
        "the sent process did not run as sent"
    );
    assert_eq!(c.status(), Status::Stopped);
    c.delete(true).expect("delete");
}

#[test]
fn a_spec_changed_outside_its_process_does_not_fit_and_leaves_nothing() {
    if !require_root!() {
        return;
    }
    let mut b = TestBundle::busybox(&["true"]);
    let root = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new(root.path());
    let id = unique_id("misfit");
    let sandbox = rt
        .create_sandbox(&id, b.path(), &started(), MadeAhead::default())
        .expect("create the sandbox");
    let pid = sandbox.pid().expect("a sandbox's process");
    b.edit(|s| s["hostname"] = json!("another"));
    let spec = berth_runtime::spec::Bundle::load(b.path())
        .expect("bundle")
        .spec;
    assert!(!sandbox.fits(&spec), "a new hostname fit the sandbox");
    let Err(err) = sandbox.finish(&id, b.path(), &started()) else {
        panic!("a misfit was finished");
    };
    assert!(err.to_string().contains("does not fit"), "{err}");
    // Let go: its process killed and reaped, its state gone; the usual create works.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the sandbox's process is still there"
    );
    assert!(
        !root.path().join(&id).exists(),
        "the sandbox's state directory is still there"
    );
    let c = rt
        .create_held(&id, b.path(), &started(), MadeAhead::default())
        .expect("create as usual");
    let status = waitpid(Pid::from_raw(c.state.pid), None).expect("wait");
    assert_eq!(status, WaitStatus::Exited(Pid::from_raw(c.state.pid), 0));
    c.delete(true).expect("delete");
}

#[test]
fn a_terminal_is_not_made_ahead() {
    if !require_root!() {
        return;
    }
    let mut b = TestBundle::busybox(&["true"]);
    b.edit(|s| s["process"]["terminal"] = json!(true));
    let root = tempfile::tempdir().expect("tempdir");
    let err = Runtime::new(root.path())
        .create_sandbox(
            &unique_id("tty"),
            b.path(),
            &started(),
            MadeAhead::default(),
        )
        .expect_err("a sandbox with a terminal");
    assert!(err.to_string().contains("terminal"), "{err}");
    assert_eq!(
        std::fs::read_dir(root.path()).expect("root").count(),
        0,
        "state left behind"
    );
}
