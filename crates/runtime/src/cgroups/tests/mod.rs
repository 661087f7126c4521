//! Tests of the managers: v1 and the eBPF device program against the real kernel, v2 file
//! translation against a fake cgroupfs tree, and bad input.

mod invalid;
mod v1_real;
mod v2_fake;
mod v2_real;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

pub(super) fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("test resources parse")
}

pub(super) fn read_trim(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// A shell script run as a helper process, driven line by line: the test moves it into a cgroup
/// while it blocks on `read`, then lets it go on. Killed when dropped.
pub(super) struct Helper {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Helper {
    pub fn spawn(script: &str) -> Helper {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("exec 2>&1\n{script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn /bin/sh");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Helper {
            child,
            stdin,
            lines,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Release the script from its next `read`.
    pub fn go(&mut self) {
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Output lines up to and including the first that starts with `marker`. The wait is only a
    /// guard against a hung helper, not a timing assertion.
    pub fn until(&mut self, marker: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("helper never printed {marker:?}; got {out:?}"));
            let done = line.starts_with(marker);
            out.push(line);
            if done {
                return out;
            }
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `sleep` to move into cgroups; killed when dropped.
pub(super) struct Sleeper(Child);

impl Sleeper {
    pub fn spawn() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("1000")
                .spawn()
                .expect("spawn sleep"),
        )
    }
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The "State:" letter of a process, e.g. 'S' or 'D'.
pub(super) fn proc_state(pid: i32) -> char {
    let status = read_trim(format!("/proc/{pid}/status"));
    let line = status
        .lines()
        .find(|l| l.starts_with("State:"))
        .expect("State line");
    line["State:".len()..].trim().chars().next().unwrap()
}

/// A character device node for `major:minor` in `dir` (made by the test process, outside any
/// test cgroup).
pub(super) fn make_char_node(dir: &Path, name: &str, major: u64, minor: u64) -> PathBuf {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let path = dir.join(name);
    mknod(
        &path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(major, minor),
    )
    .expect("mknod");
    path
}

/// A block device of this machine as (major, minor), preferring a real disk over loop/zram.
pub(super) fn some_block_device() -> Option<(u64, u64)> {
    let mut devs: Vec<(bool, u64, u64)> = std::fs::read_dir("/sys/block")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
            let (a, b) = dev.trim().split_once(':')?;
            let virt =
                name.starts_with("loop") || name.starts_with("zram") || name.starts_with("ram");
            Some((virt, a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    devs.sort();
    devs.first().map(|&(_, a, b)| (a, b))
}

/// rmdir `name` in every hierarchy under /sys/fs/cgroup if empty: intermediate test directories that destroy rightly leaves alone.
pub(super) fn remove_test_parents(name: &str) {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let _ = std::fs::remove_dir(e.path().join(name));
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(name));
}
