//! The runtime behind containerd: a private containerd (own root, state, socket; CRI disabled)
//! imports the busybox test image, and `ctr` drives the io.containerd.runc.v2 shim with
//! `--runc-binary <runtime>`: run to completion, output, exit codes, a detached task with exec, ps,
//! pause/resume, kill and delete.
//!
//! The same scenario runs against runc (the baseline: if that fails, the harness is broken) and
//! against the runtime under test (berth-runtime; see `common::runtime_under_test`).
//! Needs root, containerd, ctr and containerd-shim-runc-v2.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use berth_testsupport::oci_archive::write_busybox_oci_tar;
use berth_testsupport::{require, require_root, unique_id, which};
use common::{outcome, runc, runtime_under_test, wait_until, Outcome, Runtime};

/// A containerd daemon of our own in a temporary directory; Drop stops its tasks and the daemon.
struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
    socket: PathBuf,
    /// containerd namespace, unique so each daemon's cgroup parent (/<namespace>) is its own.
    namespace: String,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("berth-ctrd-")
            .tempdir()
            .expect("containerd tempdir");
        let d = dir.path().display();
        let socket = dir.path().join("c.sock");
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/c.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
        );
        let config_path = dir.path().join("config.toml");
        fs::write(&config_path, config).expect("write containerd config");
        let log = fs::File::create(dir.path().join("containerd.log")).expect("create log");
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let mut c = Containerd {
            dir,
            daemon,
            socket,
            namespace: unique_id("berth-test"),
        };
        wait_until("containerd to answer on its socket", 1200, || {
            if let Ok(Some(status)) = c.daemon.try_wait() {
                panic!("containerd exited ({status}):\n{}", c.log());
            }
            c.socket.exists() && c.ctr(["version"]).code == 0
        });
        c
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr -a <socket> -n <namespace> <args...>`.
    fn ctr_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new("ctr");
        cmd.arg("-a")
            .arg(&self.socket)
            .arg("-n")
            .arg(&self.namespace)
            .args(args);
        cmd
    }

    fn ctr<I, S>(&self, args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        outcome(&mut self.ctr_command(args))
    }

    /// Run `ctr args` and fail the test (with ctr's and containerd's words) unless it exits 0.
    fn ctr_ok(&self, args: &[&str]) -> Outcome {
        let out = self.ctr(args);
        assert_eq!(
            out.code,
            0,
            "ctr {}: exit {}\nstdout: {}\nstderr: {}\ncontainerd log tail:\n{}",
            args.join(" "),
            out.code,
            out.stdout,
            out.stderr,
            tail(&self.log(), 30)
        );
        out
    }

    /// STATUS column of `ctr task ls` for `id` (RUNNING, PAUSED, STOPPED, ...).
    fn task_status(&self, id: &str) -> Option<String> {
        let out = self.ctr_ok(&["task", "ls"]);
        out.stdout.lines().skip(1).find_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.first() == Some(&id)).then(|| cols.last().unwrap_or(&"").to_string())
        })
    }

    fn runc_root(&self) -> PathBuf {
        self.dir.path().join("runc-root")
    }

    /// Unmount whatever is still mounted under our directory (a test that failed mid-way can leave
    /// a task's rootfs), deepest first, so the temporary directory can be removed.
    fn unmount_leftovers(&self) {
        let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
            return;
        };
        let mut points: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| Path::new(p).starts_with(self.dir.path()))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

impl Containerd {
    /// ctr puts containers in /<namespace>/<id> of every hierarchy; the runtime removes <id>,
    /// the empty parent is ours to remove.
    fn remove_namespace_cgroups(&self) {
        let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        for h in hierarchies.filter_map(|e| e.ok()) {
            let _ = fs::remove_dir(h.path().join(&self.namespace));
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Tasks first: their shims outlive containerd and would keep the containers running.
        // Nothing here may panic (it runs while a failed test unwinds).
        if let Ok(out) = self.ctr_command(["containers", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self
                    .ctr_command(["task", "kill", "-s", "SIGKILL", id])
                    .output();
                let _ = self.ctr_command(["task", "delete", "--force", id]).output();
                let _ = self.ctr_command(["containers", "delete", id]).output();
            }
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.daemon.wait();
        self.unmount_leftovers();
        self.remove_namespace_cgroups();
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The prerequisites, or false (skip) on a dev box without them.
fn prerequisites() -> bool {
    if !require_root!() {
        return false;
    }
    ["containerd", "ctr", "containerd-shim-runc-v2"]
        .iter()
        .all(|p| {
            require(
                which(p).is_some(),
                &format!("{p} installed (apt-get install containerd)"),
            )
        })
}

/// The whole scenario against one runtime binary.
fn ctr_lifecycle(runtime: &Runtime) {
    let ctrd = Containerd::start();
    let image_tar = ctrd.dir.path().join("busybox.tar");
    let image = unique_id("localhost/berth-test/busybox") + ":latest";
    write_busybox_oci_tar(&image_tar, &image).expect("write busybox image tar");
    ctrd.ctr_ok(&["images", "import", image_tar.to_str().unwrap()]);
    let images = ctrd.ctr_ok(&["images", "ls", "-q"]);
    assert!(
        images.stdout.lines().any(|l| l == image),
        "imported image {image} not listed: {}",
        images.stdout
    );

    let runtime_path = runtime.path.to_str().expect("utf-8 runtime path");
    let runc_root = ctrd.runc_root();
    let runc_root = runc_root.to_str().expect("utf-8 runc root");
    // `ctr run <flags> --runc-binary <runtime> <image> <id> <command...>`: the runc v2 shim execs
    // <runtime> for create/start/state/kill/delete/exec/ps/pause/resume.
    let run = |flags: &[&str], id: &str, command: &[&str]| -> Outcome {
        let mut args = vec![
            "run",
            "--runc-binary",
            runtime_path,
            "--runc-root",
            runc_root,
        ];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[image.as_str(), id]);
        args.extend_from_slice(command);
        ctrd.ctr(&args)
    };
    let ctx = |what: &str, out: &Outcome| {
        format!(
            "{} — {what}: exit {}\nstdout: {}\nstderr: {}\ncontainerd log tail:\n{}",
            runtime.name,
            out.code,
            out.stdout,
            out.stderr,
            tail(&ctrd.log(), 30)
        )
    };

    // Foreground runs: exit status and output travel back through the shim.
    let out = run(&["--rm"], &unique_id("true"), &["true"]);
    assert_eq!(out.code, 0, "{}", ctx("ctr run --rm true", &out));
    let out = run(&["--rm"], &unique_id("echo"), &["echo", "hello"]);
    assert_eq!(out.code, 0, "{}", ctx("ctr run --rm echo hello", &out));
    assert_eq!(out.stdout, "hello\n", "{}", ctx("echo hello output", &out));
    let out = run(&["--rm"], &unique_id("exit3"), &["sh", "-c", "exit 3"]);
    assert_eq!(out.code, 3, "{}", ctx("ctr run --rm sh -c 'exit 3'", &out));

    // A detached task: exec, ps, pause/resume, kill, delete.
    let id = unique_id("detached");
    let out = run(&["-d"], &id, &["sleep", "1000"]);
    assert_eq!(out.code, 0, "{}", ctx("ctr run -d sleep 1000", &out));
    assert_eq!(ctrd.task_status(&id).as_deref(), Some("RUNNING"));
    // The shim really drives our binary with our --runc-root (<root>/<namespace>).
    let state_entries = || -> Vec<std::ffi::OsString> {
        fs::read_dir(ctrd.runc_root().join(&ctrd.namespace))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default()
    };
    assert!(
        !state_entries().is_empty(),
        "{}: no state under {runc_root}/{} while a task runs",
        runtime.name,
        ctrd.namespace
    );

    let out = ctrd.ctr(["task", "exec", "--exec-id", "x", &id, "echo", "hi"]);
    assert_eq!(out.code, 0, "{}", ctx("ctr task exec echo hi", &out));
    assert_eq!(out.stdout, "hi\n", "{}", ctx("exec output", &out));
    let out = ctrd.ctr(["task", "exec", "--exec-id", "y", &id, "sh", "-c", "exit 5"]);
    assert_eq!(out.code, 5, "{}", ctx("ctr task exec sh -c 'exit 5'", &out));

    let tasks = ctrd.ctr_ok(&["task", "ls"]);
    let pid = tasks
        .stdout
        .lines()
        .find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.first() == Some(&id.as_str())).then(|| cols[1].to_string())
        })
        .expect("task listed");
    let out = ctrd.ctr(["task", "ps", &id]);
    assert_eq!(out.code, 0, "{}", ctx("ctr task ps", &out));
    assert!(
        out.stdout
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some(&pid)),
        "{}",
        ctx(&format!("ctr task ps lists init pid {pid}"), &out)
    );

    let out = ctrd.ctr(["task", "pause", &id]);
    assert_eq!(out.code, 0, "{}", ctx("ctr task pause", &out));
    assert_eq!(ctrd.task_status(&id).as_deref(), Some("PAUSED"));
    let out = ctrd.ctr(["task", "resume", &id]);
    assert_eq!(out.code, 0, "{}", ctx("ctr task resume", &out));
    assert_eq!(ctrd.task_status(&id).as_deref(), Some("RUNNING"));

    let out = ctrd.ctr(["task", "kill", "-s", "SIGKILL", &id]);
    assert_eq!(out.code, 0, "{}", ctx("ctr task kill -s SIGKILL", &out));
    wait_until(&format!("task {id} to stop after SIGKILL"), 1200, || {
        ctrd.task_status(&id).as_deref() == Some("STOPPED")
    });
    let out = ctrd.ctr(["task", "delete", &id]);
    assert_eq!(out.code, 0, "{}", ctx("ctr task delete", &out));
    assert_eq!(
        ctrd.task_status(&id),
        None,
        "task still listed after delete"
    );
    let out = ctrd.ctr(["containers", "delete", &id]);
    assert_eq!(out.code, 0, "{}", ctx("ctr containers delete", &out));
    let containers = ctrd.ctr_ok(&["containers", "ls", "-q"]);
    assert!(
        containers.stdout.trim().is_empty(),
        "containers left after --rm runs and delete: {}",
        containers.stdout
    );
    // The runtime's own state is gone too.
    let leftovers = state_entries();
    assert!(
        leftovers.is_empty(),
        "{}: state left in runc root: {leftovers:?}",
        runtime.name
    );
}

#[test]
fn ctr_drives_runc() {
    if !prerequisites() {
        return;
    }
    let Some(runc) = runc() else {
        require(false, "runc installed");
        return;
    };
    ctr_lifecycle(&runc);
}

/// The runtime under test (berth-runtime) behind containerd's runc shim.
#[test]
fn ctr_drives_runtime_under_test() {
    if !prerequisites() {
        return;
    }
    ctr_lifecycle(&runtime_under_test());
}
