//! Helpers shared by the runtime's integration tests: which runtime binaries to drive, running one
//! on a bundle, and cleaning up containers a failed test leaves behind.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A runc-compatible runtime binary under test.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Short name for messages ("runc", "berth-runtime").
    pub name: String,
    pub path: PathBuf,
}

/// Debian's runc: the reference every runtime test compares against. None if it is not installed.
pub fn runc() -> Option<Runtime> {
    berth_testsupport::which("runc").map(|path| Runtime {
        name: "runc".into(),
        path,
    })
}

/// The runtime under test. THIS IS WHERE berth-runtime IS PLUGGED IN: the binary cargo built for
/// this package. `BERTH_TEST_RUNTIME=/path/to/runc` swaps in another binary, which is how the suite
/// was checked against runc before berth-runtime had a lifecycle (runc vs runc must always agree).
pub fn runtime_under_test() -> Runtime {
    match std::env::var_os("BERTH_TEST_RUNTIME") {
        Some(path) if !path.is_empty() => Runtime {
            name: format!("{} (BERTH_TEST_RUNTIME)", Path::new(&path).display()),
            path: PathBuf::from(path),
        },
        _ => Runtime {
            name: "berth-runtime".into(),
            path: PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime")),
        },
    }
}

/// What a runtime command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code; 128+N when the runtime itself died of signal N.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn from_output(out: Output) -> Outcome {
        use std::os::unix::process::ExitStatusExt;
        let code = out
            .status
            .code()
            .or_else(|| out.status.signal().map(|s| 128 + s))
            .unwrap_or(-1);
        Outcome {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Run `cmd` to completion, capturing its output.
pub fn outcome(cmd: &mut Command) -> Outcome {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Outcome::from_output(out)
}

/// A runtime with its own state directory (`--root`), so tests never see each other's containers.
/// Dropping it force-deletes whatever containers are still listed, so a failing test leaves no
/// processes or cgroups behind.
pub struct RuntimeRoot {
    pub runtime: Runtime,
    pub root: tempfile::TempDir,
    ids: std::cell::RefCell<Vec<String>>,
}

impl RuntimeRoot {
    pub fn new(runtime: Runtime) -> RuntimeRoot {
        let root = tempfile::Builder::new()
            .prefix("berth-runtime-root-")
            .tempdir()
            .expect("create runtime root");
        RuntimeRoot {
            runtime,
            root,
            ids: Default::default(),
        }
    }

    /// `<runtime> --root <root> <args...>`, not yet run.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.runtime.path);
        cmd.arg("--root").arg(self.root.path()).args(args);
        cmd
    }

    /// Run `<runtime> --root <root> <args...>` to completion.
    pub fn exec<I, S>(&self, args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        outcome(&mut self.command(args))
    }

    /// Remember `id` so Drop deletes it if the test does not.
    pub fn track(&self, id: &str) {
        self.ids.borrow_mut().push(id.to_string());
    }

    /// `run --bundle <bundle> <id>` in the foreground; the container's stdio is ours.
    pub fn run(&self, bundle: &Path, id: &str) -> Outcome {
        self.track(id);
        self.exec([
            OsStr::new("run"),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            id.as_ref(),
        ])
    }

    /// The `status` field of `state <id>`, or None when the runtime does not know the container.
    pub fn status(&self, id: &str) -> Option<String> {
        let out = self.exec(["state", id]);
        if out.code != 0 {
            return None;
        }
        let state: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{} state {id}: not JSON ({e}): {}",
                self.runtime.name, out.stdout
            )
        });
        state["status"].as_str().map(str::to_string)
    }

    /// The `pid` field of `state <id>`.
    pub fn pid(&self, id: &str) -> Option<i32> {
        let out = self.exec(["state", id]);
        let state: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        state["pid"].as_i64().map(|p| p as i32)
    }
}

impl Drop for RuntimeRoot {
    fn drop(&mut self) {
        // No checks here: panicking in Drop while a test panics would abort the whole binary.
        for id in self.ids.borrow().iter() {
            let _ = self.command(["delete", "--force", id]).output();
        }
    }
}

/// Wait (polling, no deadline assertion) until `cond` holds; panics with `what` after `tries`
/// attempts 50ms apart so a broken runtime fails the test instead of hanging it.
pub fn wait_until(what: &str, tries: u32, mut cond: impl FnMut() -> bool) {
    for _ in 0..tries {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("gave up waiting for {what}");
}
