//! Test support shared by every berth crate.
//!
//! - `busybox_rootfs`: a root filesystem from Debian's `busybox-static`, every applet linked,
//!   with /etc/passwd and /etc/group. Later issues pack it into images.
//! - `TestBundle`: an OCI bundle (rootfs + config.json) in a temporary directory.
//! - `require_root!` / `require`: a test that needs root or a kernel feature skips with a message
//!   on a developer machine but FAILS under `CI=true`, so CI never passes by skipping.

pub mod oci_archive;

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

/// Where Debian's busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// True when running under CI (`CI=true`): missing prerequisites are failures there.
pub fn on_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Decide whether a test can run. Returns false (test should return early) when `ok` is false on a
/// developer machine; panics under CI so the missing prerequisite is loud.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if on_ci() {
        panic!("test prerequisite missing under CI=true: {what}");
    }
    eprintln!("SKIPPED: {what}");
    false
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `if !require_root!() { return; }` at the top of a test that needs root.
#[macro_export]
macro_rules! require_root {
    () => {
        $crate::require($crate::is_root(), "this test needs root")
    };
}

/// Path of a program on PATH, if any.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Build a busybox root filesystem in `dir` (which may exist and be empty).
pub fn busybox_rootfs(dir: &Path) -> io::Result<()> {
    let busybox = Path::new(BUSYBOX);
    if !busybox.exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "/bin/busybox missing: apt-get install busybox-static",
        ));
    }
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home",
        "var/tmp", "run",
    ] {
        fs::create_dir_all(dir.join(d))?;
    }
    fs::copy(busybox, dir.join("bin/busybox"))?;
    let out = Command::new(busybox).arg("--list-full").output()?;
    if !out.status.success() {
        return Err(io::Error::other("busybox --list-full failed"));
    }
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        let link = dir.join(applet);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        let depth = applet.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        match symlink(&target, &link) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            r => r?,
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
         app:x:1000:1000:app:/home/app:/bin/sh\n",
    )?;
    fs::write(
        dir.join("etc/group"),
        "root:x:0:\ndaemon:x:1:\nwheel:x:10:root\napp:x:1000:\nnogroup:x:65534:\n",
    )?;
    fs::write(dir.join("etc/hostname"), "busybox\n")?;
    fs::set_permissions(
        dir.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )?;
    Ok(())
}

/// runc's default config.json (as `berth-runtime spec` writes it) running `args`, without a
/// terminal and with a writable root, which is what most tests want.
pub fn default_spec(args: &[&str]) -> Value {
    let mut spec = berth_runtime::spec::default_spec(false);
    spec["process"]["args"] = json!(args);
    spec["process"]["terminal"] = json!(false);
    spec["root"]["readonly"] = json!(false);
    spec["hostname"] = json!("berth-test");
    spec
}

/// An OCI bundle in a temporary directory: `rootfs/` from busybox and a `config.json`.
pub struct TestBundle {
    pub dir: tempfile::TempDir,
    pub spec: Value,
}

impl TestBundle {
    /// A busybox bundle running `args` with the default spec.
    pub fn busybox(args: &[&str]) -> TestBundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle-")
            .tempdir()
            .expect("create bundle tempdir");
        busybox_rootfs(&dir.path().join("rootfs")).expect("build busybox rootfs");
        let b = TestBundle {
            dir,
            spec: default_spec(args),
        };
        b.write();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Change the spec with `f` and write config.json again.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.spec);
        self.write();
        self
    }

    pub fn write(&self) {
        let text = serde_json::to_string_pretty(&self.spec).expect("serialize spec");
        fs::write(self.dir.path().join("config.json"), text).expect("write config.json");
    }
}

/// Whether the file system holding `dir` keeps ext4's top-directory flag (`chattr +T` on a new
/// directory under `dir` succeeds): only ext2/3/4 do.
pub fn top_dir_flag_supported(dir: &Path) -> bool {
    let probe = dir.join(".top-dir-probe");
    if std::fs::create_dir(&probe).is_err() {
        return false;
    }
    let ok = std::process::Command::new("chattr")
        .arg("+T")
        .arg(&probe)
        .status()
        .is_ok_and(|s| s.success());
    let _ = std::fs::remove_dir(&probe);
    ok
}

/// A unique container id for a test, so parallel tests never collide.
pub fn unique_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
