//! Helpers for end-to-end tests: build the binaries, start a berthd on temporary roots with its
//! own socket, run the stock `docker` CLI (or `berth`) against it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::Duration;

/// target/debug (where cargo put this test's executable, one level up from deps/).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir
}

/// Build berthd, berth-shim and berth once per test process (cargo makes it a no-op when fresh).
pub fn ensure_built() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-p",
                "berth-daemon",
                "-p",
                "berth-shim",
                "-p",
                "berth-cli",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building berthd/berth-shim/berth failed");
    });
}

pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// Write the busybox test image as an archive `docker load` accepts, tagged `name`.
pub fn busybox_tar(path: &Path, name: &str) {
    berth_testsupport::oci_archive::write_busybox_oci_tar(path, name).expect("write busybox image");
}

/// A berthd on temporary roots; killed (SIGKILL) and its containers removed on drop.
pub struct Daemon {
    pub root: tempfile::TempDir,
    pub socket: PathBuf,
    child: Option<Child>,
    /// This daemon's own nftables table, default bridge and subnets (daemons run in parallel).
    pub net: NetSettings,
    /// More berthd flags (e.g. --registry-mirror), kept across restarts.
    extra_args: Vec<String>,
}

/// What `BERTH_NETWORK_SETTINGS` gives one test daemon.
#[derive(Debug, Clone)]
pub struct NetSettings {
    pub table: String,
    pub bridge: String,
    pub subnet: String,
    pub pool: String,
}

impl NetSettings {
    /// A table, bridge and /24 no other daemon on this host is using now.
    fn unique() -> NetSettings {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let used = Command::new("ip")
            .args(["-o", "-4", "addr", "show"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let start = (std::process::id().wrapping_mul(7) + n * 13) % 250;
        let third = (0..250)
            .map(|i| (start + i) % 250)
            .find(|t| {
                !used.contains(&format!(" 10.77.{t}.")) && !used.contains(&format!(" 10.78.{t}."))
            })
            .unwrap_or(start);
        let tag = format!("{:x}{n:x}", std::process::id() % 0xfffff);
        NetSettings {
            table: format!("berth_e2e_{tag}"),
            bridge: format!("be{tag}"),
            subnet: format!("10.77.{third}.0/24"),
            pool: format!("10.78.{third}.0/24"),
        }
    }

    fn json(&self) -> String {
        serde_json::json!({
            "table": self.table,
            "default_network": "bridge",
            "default_bridge": self.bridge,
            "default_subnet": self.subnet,
            "pool": self.pool,
            "pool_prefix": 28,
        })
        .to_string()
    }
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with_args(&[])
    }

    /// A daemon with more berthd flags.
    pub fn start_with_args(extra_args: &[&str]) -> Daemon {
        ensure_built();
        let root = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir_in(
                std::env::var_os("BERTH_E2E_TMP")
                    .map(PathBuf::from)
                    .unwrap_or_else(std::env::temp_dir),
            )
            .expect("tempdir");
        let socket = root.path().join("exec/berth.sock");
        let mut d = Daemon {
            root,
            socket,
            child: None,
            net: NetSettings::unique(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        };
        d.spawn();
        d
    }

    pub fn data_root(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.root.path().join("exec")
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("berthd.log"))
            .expect("log file");
        let child = Command::new(bin("berthd"))
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--log-level")
            .arg("debug")
            .env("BERTH_NETWORK_SETTINGS", self.net.json())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berthd");
        self.child = Some(child);
        // Ready when the socket answers.
        for _ in 0..600 {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("berthd did not start; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("berthd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL berthd (its shims and containers live on).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM berthd and wait for it to exit (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        for _ in 0..200 {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A `docker` command pointed at this daemon.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        c
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).output().expect("run docker")
    }

    /// Run docker, assert success, return stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}): {}\n--- berthd log tail:\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr),
            tail(&self.log(), 40)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("berth"));
        c.args(args)
            .env("BERTH_HOST", self.host())
            .stdin(Stdio::null());
        c
    }

    /// Run `berth ARGS` against this daemon: (exit code, stdout, stderr).
    pub fn berth(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let o = self.berth_cmd(args).output().expect("run berth");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// stdout of a `berth ARGS` that must succeed (the daemon's log tail on failure).
    pub fn berth_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.berth(args);
        assert_eq!(
            code,
            Some(0),
            "berth {args:?}: {err}\n{out}\n{}",
            self.log()
        );
        out
    }

    /// Load the busybox test image as `name`.
    pub fn load_busybox(&self, name: &str) {
        let tar = self
            .root
            .path()
            .join(format!("{}.tar", name.replace(['/', ':'], "_")));
        busybox_tar(&tar, name);
        let out = self.docker_ok(&["load", "-i", tar.to_str().expect("utf-8 path")]);
        assert!(out.contains("Loaded image"), "docker load said: {out}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        // Remove every container so shims and mounts do not outlive the test.
        if let Ok(o) = self.docker_cmd(&["ps", "-aq"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.docker_cmd(&["rm", "-f", id]).output();
            }
        }
        let _ = self.docker_cmd(&["network", "prune", "-f"]).output();
        self.stop();
        // A failed test may leave a container's rootfs mounted: not past the test.
        let root = self.root.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut left: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&root))
            .collect();
        left.sort_unstable_by(|a, b| b.cmp(a));
        for m in left {
            let _ = Command::new("umount").args(["-l", m]).output();
        }
        // The daemon's default bridge and table outlive it; nothing else uses them.
        for family in ["ip", "ip6"] {
            let _ = Command::new("nft")
                .args(["delete", "table", family, &self.net.table])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.net.bridge])
            .output();
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn unique(prefix: &str) -> String {
    berth_testsupport::unique_id(prefix)
}

/// Root and the docker CLI, or skip (fail under CI).
pub fn prerequisites() -> bool {
    berth_testsupport::require_root!()
        && berth_testsupport::require(
            berth_testsupport::which("docker").is_some(),
            "the docker CLI",
        )
}

/// Poll `f` until it returns Some (a bounded number of rounds, not a timing assertion).
pub fn eventually<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    eventually_within(what, 400, f)
}

/// `eventually` with `rounds` polls 50 ms apart: for what only gets idle CPU time (berthd makes
/// its spare shims in SCHED_IDLE, which a machine busy with other tests starves for seconds).
pub fn eventually_within<T>(what: &str, rounds: u32, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..rounds {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("gave up waiting for {what}");
}

/// One raw HTTP/1.1 request over the daemon's socket; returns (status, body).
pub fn raw_request(socket: &Path, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
