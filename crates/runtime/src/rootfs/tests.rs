//! Root-only tests of prepare/pivot/finalize against the real kernel.
//!
//! Each test builds a busybox bundle, then runs this test binary again as a helper process under
//! unshare(1) (new mount namespace, plus whatever namespaces the test wants). The helper runs
//! `prepare`, checks that no mount appeared outside the rootfs, runs `pivot` and `finalize`, and
//! execs busybox `sh -c <script>` inside the new root; the test reads what the script printed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_testsupport::{busybox_rootfs, default_spec, require, require_root, which};
use serde_json::{json, Value};

use super::mountinfo::{self, MountInfo};
use super::{finalize, pivot, prepare, RootfsOptions};

const HELPER_ENV: &str = "BERTH_ROOTFS_HELPER_BUNDLE";
const SCRIPT_ENV: &str = "BERTH_ROOTFS_HELPER_SCRIPT";
const FLAGS_ENV: &str = "BERTH_ROOTFS_HELPER_FLAGS";
/// The test's own /proc/self/cgroup, which the helper (in the same cgroups) hands to `prepare`
/// as `host_cgroups` with the flag "host-cgroups".
const HOST_CGROUPS_ENV: &str = "BERTH_ROOTFS_HELPER_HOST_CGROUPS";
const HELPER_TEST: &str = "rootfs::tests::helper_process";

/// The helper process's entry point; a no-op unless started by `Case::run`.
#[test]
#[ignore = "helper process of the rootfs tests, started by them"]
fn helper_process() {
    let Ok(bundle) = std::env::var(HELPER_ENV) else {
        return;
    };
    let Err(e) = helper(Path::new(&bundle));
    eprintln!("HELPER-ERROR: {e}");
    std::process::exit(101);
}

fn helper(bundle: &Path) -> Result<Infallible, String> {
    let spec =
        oci_spec::runtime::Spec::load(bundle.join("config.json")).map_err(|e| e.to_string())?;
    let rootfs = fs::canonicalize(bundle.join("rootfs")).map_err(|e| e.to_string())?;
    let flags = std::env::var(FLAGS_ENV).unwrap_or_default();
    let has = |f: &str| flags.split(',').any(|x| x == f);
    let before = mount_counts(&mountinfo::read().map_err(|e| e.to_string())?);
    // Tells the test what was already mounted when the cgroup was needed.
    let mqueue = rootfs.join("dev/mqueue");
    let enter_cgroup = || {
        let mounted = mountinfo::read()
            .map(|v| v.iter().any(|m| m.mount_point == mqueue))
            .unwrap_or(false);
        println!("\nENTER-CGROUP mqueue-mounted={mounted}");
        Ok(())
    };
    let host_cgroups =
        has("host-cgroups").then(|| std::env::var(HOST_CGROUPS_ENV).unwrap_or_default());
    let opts = RootfsOptions {
        spec: &spec,
        rootfs: &rootfs,
        bundle,
        in_user_ns: has("userns"),
        new_cgroup_ns: has("cgroupns"),
        enter_cgroup: &enter_cgroup,
        host_cgroups: &|| host_cgroups.clone(),
    };
    prepare(&opts).map_err(|e| e.to_string())?;

    // Anything mounted outside the rootfs would be an escape.
    let after = mount_counts(&mountinfo::read().map_err(|e| e.to_string())?);
    for (point, n) in &after {
        if !point.starts_with(&rootfs) && before.get(point).copied().unwrap_or(0) < *n {
            return Err(format!(
                "LEAK: a mount appeared outside the rootfs at {}",
                point.display()
            ));
        }
    }

    pivot(&rootfs, has("nopivot")).map_err(|e| e.to_string())?;
    finalize(&spec).map_err(|e| e.to_string())?;
    let script = std::env::var(SCRIPT_ENV).unwrap_or_default();
    let argv = [
        c"sh".to_owned(),
        c"-c".to_owned(),
        std::ffi::CString::new(script).map_err(|e| e.to_string())?,
    ];
    let env = [c"PATH=/bin:/sbin:/usr/bin:/usr/sbin".to_owned()];
    nix::unistd::execve(c"/bin/sh", &argv, &env).map_err(|e| format!("exec /bin/sh: {e}"))
}

fn mount_counts(mounts: &[MountInfo]) -> HashMap<PathBuf, usize> {
    let mut counts = HashMap::new();
    for m in mounts {
        *counts.entry(m.mount_point.clone()).or_insert(0) += 1;
    }
    counts
}

/// A bundle plus how to run the helper on it.
struct Case {
    dir: tempfile::TempDir,
    spec: Value,
    unshare: Vec<&'static str>,
    flags: Vec<&'static str>,
    /// A shell command run as real root in an outer mount namespace before the helper's
    /// namespaces are made (to set up mounts a user namespace then sees locked).
    outer: Option<String>,
}

struct Outcome {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// Mounts as the container saw them, from the script's `cat /proc/self/mountinfo`.
    fn mounts(&self) -> Vec<MountInfo> {
        mountinfo::parse(&self.stdout)
    }

    fn mount_at(&self, point: &str) -> MountInfo {
        self.mounts()
            .into_iter()
            .rev()
            .find(|m| m.mount_point == Path::new(point))
            .unwrap_or_else(|| panic!("no mount at {point} in:\n{}", self.stdout))
    }

    fn assert_ok(&self) {
        assert!(
            self.ok,
            "helper failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
    }

    fn has_line(&self, line: &str) -> bool {
        self.stdout.lines().any(|l| l.trim() == line)
    }
}

fn options_of(m: &MountInfo) -> Vec<&str> {
    m.options.split(',').collect()
}

impl Case {
    /// Root and unshare(1) present? (Fails under CI when not.)
    fn available() -> bool {
        require_root!() && require(which("unshare").is_some(), "unshare(1) from util-linux")
    }

    /// A busybox rootfs with runc's default spec (running nothing; the script replaces it).
    fn new() -> Case {
        let dir = tempfile::Builder::new()
            .prefix("berth-rootfs-")
            .tempdir()
            .unwrap();
        busybox_rootfs(&dir.path().join("rootfs")).unwrap();
        Case {
            dir,
            spec: default_spec(&["true"]),
            unshare: vec![],
            flags: vec![],
            outer: None,
        }
    }

    /// A minimal spec whose mounts work in a user namespace too.
    fn minimal() -> Case {
        let mut c = Case::new();
        c.spec["mounts"] = json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}
        ]);
        c.spec["linux"]["maskedPaths"] = json!([]);
        c.spec["linux"]["readonlyPaths"] = json!([]);
        c
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn add_mount(&mut self, m: Value) {
        self.spec["mounts"].as_array_mut().unwrap().push(m);
    }

    fn run(&self, script: &str) -> Outcome {
        fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_string_pretty(&self.spec).unwrap(),
        )
        .unwrap();
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new("unshare");
        if let Some(setup) = &self.outer {
            cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(format!("{setup} && exec unshare \"$@\""))
                .arg("sh");
        }
        let out = cmd
            .args(["--mount", "--propagation", "unchanged"])
            .args(&self.unshare)
            .arg("--")
            .arg(exe)
            .args([
                "--ignored",
                "--exact",
                HELPER_TEST,
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, self.dir.path())
            // libtest's "test ... " has no newline yet when the script starts printing.
            .env(SCRIPT_ENV, format!("echo; {script}"))
            .env(FLAGS_ENV, self.flags.join(","))
            .env(
                HOST_CGROUPS_ENV,
                fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            )
            .output()
            .unwrap();
        Outcome {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[test]
fn mounts_get_the_requested_flags_and_data() {
    if !Case::available() {
        return;
    }
    let mut c = Case::new();
    let host = c.dir.path().join("host");
    fs::create_dir_all(host.join("dir/sub")).unwrap();
    fs::write(host.join("dir/sub/file"), "in dir").unwrap();
    fs::write(host.join("file"), "a host file\n").unwrap();
    c.add_mount(
        json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "nosymfollow", "size=1m", "mode=700"]}),
    );
    // A relative destination is relative to "/" (runc does the same).
    c.add_mount(json!({"destination": "rel/dir", "type": "tmpfs", "source": "tmpfs"}));
    c.add_mount(
        json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs",
        "options": ["shared"]}),
    );
    c.add_mount(
        json!({"destination": "/unbindable", "type": "tmpfs", "source": "tmpfs",
        "options": ["unbindable", "ro"]}),
    );
    // Relative source: resolved against the bundle directory.
    c.add_mount(
        json!({"destination": "/bind/dir", "type": "bind", "source": "host/dir",
        "options": ["bind", "ro", "nosuid"]}),
    );
    c.add_mount(
        json!({"destination": "/etc/from-host", "source": host.join("file"),
        "options": ["bind"]}),
    );
    c.add_mount(
        json!({"destination": "/hostdev-r", "source": "/dev", "options": ["rbind", "rro"]}),
    );
    c.add_mount(json!({"destination": "/hostdev", "source": "/dev", "options": ["bind"]}));
    let o = c.run(
        "cat /proc/self/mountinfo; echo ---; cat /etc/from-host /bind/dir/sub/file; echo; \
         touch /bind/dir/x 2>&1; touch /hostdev-r/pts/x 2>&1; touch /data/ok && echo DATA-WRITABLE",
    );
    o.assert_ok();

    let data = o.mount_at("/data");
    assert_eq!(data.fs_type, "tmpfs");
    for f in ["rw", "nosuid", "nodev", "noexec", "nosymfollow"] {
        assert!(options_of(&data).contains(&f), "/data lacks {f}: {data:?}");
    }
    assert!(data.super_options.contains("size=1024k"), "{data:?}");
    assert!(data.super_options.contains("mode=700"), "{data:?}");
    assert!(o.has_line("DATA-WRITABLE"));

    let shm = o.mount_at("/dev/shm");
    assert!(shm.super_options.contains("size=65536k"), "{shm:?}");
    assert!(options_of(&shm).contains(&"noexec"));
    let sys = o.mount_at("/sys");
    assert!(options_of(&sys).contains(&"ro"), "{sys:?}");
    assert_eq!(o.mount_at("/dev/pts").fs_type, "devpts");
    assert_eq!(o.mount_at("/dev/mqueue").fs_type, "mqueue");
    assert_eq!(o.mount_at("/proc").fs_type, "proc");

    assert_eq!(o.mount_at("/rel/dir").fs_type, "tmpfs");
    assert!(
        o.mount_at("/shared").is_shared(),
        "shared propagation missing"
    );
    let unb = o.mount_at("/unbindable");
    assert!(unb.optional.iter().any(|f| f == "unbindable"), "{unb:?}");
    assert!(options_of(&unb).contains(&"ro"));

    let bind = o.mount_at("/bind/dir");
    assert!(
        options_of(&bind).contains(&"ro") && options_of(&bind).contains(&"nosuid"),
        "{bind:?}"
    );
    assert!(o.stdout.contains("a host file\nin dir"), "{}", o.stdout);
    assert!(o.stdout.contains("Read-only file system"), "{}", o.stdout);
    o.mount_at("/etc/from-host");

    // rbind brings the submounts along and rro makes all of them read-only; bind does not.
    let pts = o.mount_at("/hostdev-r/pts");
    assert!(options_of(&pts).contains(&"ro"), "{pts:?}");
    assert!(options_of(&o.mount_at("/hostdev-r")).contains(&"ro"));
    o.mount_at("/hostdev");
    assert!(!o
        .mounts()
        .iter()
        .any(|m| m.mount_point == Path::new("/hostdev/pts")));
}

#[test]
fn readonly_root_masked_and_readonly_paths() {
    if !Case::available() {
        return;
    }
    let mut c = Case::new();
    let work = c.dir.path().join("work");
    fs::create_dir_all(work.join("sub")).unwrap();
    fs::write(c.rootfs().join("etc/secret"), "top secret").unwrap();
    fs::create_dir_all(c.rootfs().join("secretdir")).unwrap();
    fs::write(c.rootfs().join("secretdir/f"), "x").unwrap();
    c.add_mount(json!({"destination": "/work", "source": work, "options": ["rbind"]}));
    c.spec["root"]["readonly"] = json!(true);
    // Read-only paths keep the nosuid/nodev/noexec of the mount they are on.
    c.spec["mounts"][0]["options"] = json!(["nosuid", "nodev", "noexec"]);
    c.spec["linux"]["maskedPaths"] = json!([
        "/etc/secret",
        "/secretdir",
        "/does/not/exist",
        "/proc/kcore"
    ]);
    c.spec["linux"]["readonlyPaths"] = json!(["/work/sub", "/proc/sys", "/missing/too"]);
    let o = c.run(
        "erofs() { \"$@\" 2>&1 | grep -q 'Read-only file system'; }; \
         echo SECRET=$(cat /etc/secret | wc -c); echo DIR=$(ls -A /secretdir | wc -l); \
         echo KCORE=$(head -c 10 /proc/kcore | wc -c); \
         erofs touch /newfile && echo ROOT-RO; touch /work/w && echo WORK-RW; \
         erofs touch /work/sub/x && echo SUB-RO; \
         erofs sh -c 'echo 1 > /proc/sys/kernel/ns_last_pid' && echo PROCSYS-RO; \
         erofs touch /secretdir/y && echo MASKDIR-RO; \
         cat /proc/self/mountinfo",
    );
    o.assert_ok();
    for line in [
        "SECRET=0",
        "DIR=0",
        "KCORE=0",
        "ROOT-RO",
        "WORK-RW",
        "SUB-RO",
        "PROCSYS-RO",
        "MASKDIR-RO",
    ] {
        assert!(o.has_line(line), "missing {line}:\n{}", o.stdout);
    }
    assert!(options_of(&o.mount_at("/")).contains(&"ro"));
    let sub = o.mount_at("/work/sub");
    assert!(options_of(&sub).contains(&"ro"), "{sub:?}");
    let procsys = o.mount_at("/proc/sys");
    for f in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(
            options_of(&procsys).contains(&f),
            "/proc/sys lacks {f}: {procsys:?}"
        );
    }
    assert!(
        work.join("w").exists(),
        "the rw bind must have written to the host dir"
    );
}

#[test]
fn sysctls_are_written_before_proc_sys_turns_read_only() {
    if !Case::available() {
        return;
    }
    let mut c = Case::new();
    c.unshare = vec!["--net", "--ipc"];
    c.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "12345678"});
    let o = c.run("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax");
    o.assert_ok();
    assert_eq!(
        o.stdout.lines().rev().take(2).collect::<Vec<_>>(),
        ["12345678", "1"]
    );
}

#[test]
fn bad_sysctl_keys_are_refused() {
    if !Case::available() {
        return;
    }
    let mut c = Case::new();
    c.unshare = vec!["--ipc"];
    c.spec["linux"]["sysctl"] = json!({"kernel/../../sysrq-trigger": "h"});
    let o = c.run("true");
    assert!(!o.ok);
    assert!(o.stderr.contains("linux.sysctl"), "{}", o.stderr);
}

#[test]
fn default_devices_spec_devices_and_dev_symlinks() {
    if !Case::available() {
        return;
    }
    let mut c = Case::new();
    c.spec["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 1000, "gid": 1000},
        {"path": "/dev/disks/loop7", "type": "b", "major": 7, "minor": 7, "fileMode": 0o640},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o644}
    ]);
    let o = c.run(
        "for d in null zero full random urandom tty fuse disks/loop7 myfifo; do \
           stat -c 'DEV %n %F %t:%T %a %u:%g' /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx core; do echo LINK $l $(readlink /dev/$l); done; \
         echo hi > /dev/null && echo NULL-OK; head -c 4 /dev/zero | od -An -tx1",
    );
    o.assert_ok();
    for line in [
        "DEV /dev/null character special file 1:3 666 0:0",
        "DEV /dev/zero character special file 1:5 666 0:0",
        "DEV /dev/full character special file 1:7 666 0:0",
        "DEV /dev/random character special file 1:8 666 0:0",
        "DEV /dev/urandom character special file 1:9 666 0:0",
        "DEV /dev/tty character special file 5:0 666 0:0",
        "DEV /dev/fuse character special file a:e5 600 1000:1000",
        "DEV /dev/disks/loop7 block special file 7:7 640 0:0",
        "DEV /dev/myfifo fifo 0:0 644 0:0",
        "LINK fd /proc/self/fd",
        "LINK stdin /proc/self/fd/0",
        "LINK stdout /proc/self/fd/1",
        "LINK stderr /proc/self/fd/2",
        "LINK ptmx pts/ptmx",
        "NULL-OK",
        "00 00 00 00",
    ] {
        assert!(o.has_line(line), "missing {line:?}:\n{}", o.stdout);
    }
    // /dev/core only where the host has a /proc/kcore to point at.
    let core = if Path::new("/proc/kcore").exists() {
        "LINK core /proc/kcore"
    } else {
        "LINK core"
    };
    assert!(o.has_line(core), "missing {core:?}:\n{}", o.stdout);
}

#[test]
fn user_namespace_binds_devices_and_sysfs_and_keeps_locked_flags() {
    if !Case::available() {
        return;
    }
    let mut c = Case::minimal();
    c.unshare = vec!["--user", "--map-root-user", "--pid", "--fork"];
    c.flags = vec!["userns"];
    c.add_mount(
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"]}),
    );
    // The host's /dev/shm is nosuid,nodev... locked in our user namespace; asking only for ro
    // must keep them rather than fail.
    c.add_mount(
        json!({"destination": "/hostshm", "source": "/dev/shm", "options": ["bind", "ro"]}),
    );
    // A mount with flags a user namespace cannot clear: the ro remount of its bind must keep them.
    let locked = c.dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    c.outer = Some(format!(
        "mount -t tmpfs -o nosuid,nodev,noexec,noatime tmpfs {}",
        locked.display()
    ));
    c.add_mount(json!({"destination": "/locked", "source": locked, "options": ["bind", "ro"]}));
    // The rootfs mount's atime mode is locked too: the read-only remounts must keep it.
    c.spec["root"]["readonly"] = json!(true);
    c.spec["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    c.spec["linux"]["maskedPaths"] = json!(["/etc/group", "/home"]);
    let o = c.run(
        "stat -c 'DEV %n %t:%T' /dev/null /dev/tty; echo hi > /dev/null && echo NULL-OK; \
         ls /sys/class >/dev/null && echo SYS-OK; echo GROUP=$(cat /etc/group | wc -c); \
         touch /x 2>&1 | grep -q 'Read-only' && echo ROOT-RO; cat /proc/self/mountinfo",
    );
    o.assert_ok();
    assert!(
        o.has_line("DEV /dev/null 1:3") && o.has_line("DEV /dev/tty 5:0"),
        "{}",
        o.stdout
    );
    for line in ["NULL-OK", "SYS-OK", "GROUP=0", "ROOT-RO"] {
        assert!(o.has_line(line), "missing {line}:\n{}", o.stdout);
    }
    assert!(options_of(&o.mount_at("/proc/sys")).contains(&"ro"));
    assert_eq!(o.mount_at("/home").fs_type, "tmpfs");
    let l = o.mount_at("/locked");
    for f in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
        assert!(options_of(&l).contains(&f), "/locked lacks {f}: {l:?}");
    }
    // Bound, not mknod'ed: the node is a mount point of the host's devtmpfs.
    assert_eq!(o.mount_at("/dev/null").fs_type, "devtmpfs");
    let sys = o.mount_at("/sys");
    assert!(options_of(&sys).contains(&"ro"), "{sys:?}");
    let shm = o.mount_at("/hostshm");
    assert!(options_of(&shm).contains(&"ro"), "{shm:?}");
}

#[test]
fn symlinks_never_lead_a_mount_out_of_the_rootfs() {
    if !Case::available() {
        return;
    }
    let mut c = Case::minimal();
    let outside = tempfile::Builder::new()
        .prefix("berth-escape-")
        .tempdir()
        .unwrap();
    let target = outside.path().join("target");
    fs::create_dir(&target).unwrap();
    fs::write(outside.path().join("victim"), "host data").unwrap();
    let rootfs = c.rootfs();
    symlink("/", rootfs.join("abs")).unwrap();
    symlink("../../../../../../../../..", rootfs.join("up")).unwrap();
    symlink("/", rootfs.join("tmplink")).unwrap();
    fs::remove_dir_all(rootfs.join("home")).unwrap();
    symlink("/etc", rootfs.join("home")).unwrap();
    let t = target.to_str().unwrap().trim_start_matches('/');
    let victim = outside.path().join("victim");
    let v = victim.to_str().unwrap().trim_start_matches('/');
    c.add_mount(json!({"destination": format!("/abs/{t}"), "type": "tmpfs", "source": "tmpfs"}));
    c.add_mount(json!({"destination": format!("/up/{t}/a"), "type": "tmpfs", "source": "tmpfs"}));
    c.add_mount(
        json!({"destination": format!("/../../../../{t}/b"), "type": "tmpfs", "source": "tmpfs"}),
    );
    c.add_mount(
        json!({"destination": format!("/tmplink/{t}/c"), "type": "tmpfs", "source": "tmpfs"}),
    );
    c.add_mount(json!({"destination": format!("/tmplink/{v}"), "source": "/etc/hostname", "options": ["bind"]}));
    c.add_mount(json!({"destination": "/home/x", "type": "tmpfs", "source": "tmpfs"}));
    let o = c.run(&format!(
        "cat /proc/self/mountinfo; touch /{t}/inside /{t}/a/inside && echo WROTE"
    ));
    o.assert_ok();
    assert!(o.has_line("WROTE"));
    // Inside the container the mounts are where the symlinks lead within the rootfs...
    for p in [
        format!("/{t}"),
        format!("/{t}/a"),
        format!("/{t}/b"),
        format!("/{t}/c"),
        format!("/{v}"),
        "/etc/x".to_string(),
    ] {
        o.mount_at(&p);
    }
    // ...which is inside the rootfs on the host, and the host's own paths are untouched.
    assert!(rootfs.join(t).is_dir());
    assert!(rootfs.join(v).is_file());
    assert!(rootfs.join("etc/x").is_dir());
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "host data");
    assert!(!Path::new("/etc/x").exists());
}

#[test]
fn proc_on_a_symlink_is_refused() {
    if !Case::available() {
        return;
    }
    let c = Case::minimal();
    fs::remove_dir(c.rootfs().join("proc")).unwrap();
    symlink("/tmp", c.rootfs().join("proc")).unwrap();
    let o = c.run("true");
    assert!(!o.ok);
    assert!(
        o.stderr.contains("mounts[0] (/proc)") && o.stderr.contains("ordinary directory"),
        "{}",
        o.stderr
    );
}

#[test]
fn binds_over_proc_files_are_refused_except_lxcfs_ones() {
    if !Case::available() {
        return;
    }
    let mut c = Case::minimal();
    let file = c.dir.path().join("fake");
    fs::write(&file, "fake\n").unwrap();
    c.add_mount(json!({"destination": "/proc/uptime", "source": file, "options": ["bind"]}));
    let o = c.run("cat /proc/uptime");
    o.assert_ok();
    assert!(o.has_line("fake"));
    c.add_mount(
        json!({"destination": "/proc/self/attr/exec", "source": file, "options": ["bind"]}),
    );
    let o = c.run("true");
    assert!(!o.ok);
    assert!(
        o.stderr.contains("mounts[3]") && o.stderr.contains("inside /proc"),
        "{}",
        o.stderr
    );
}

#[test]
fn missing_bind_source_names_the_field() {
    if !Case::available() {
        return;
    }
    let mut c = Case::minimal();
    c.add_mount(json!({"destination": "/x", "source": "/does/not/exist", "options": ["rbind"]}));
    let o = c.run("true");
    assert!(!o.ok);
    assert!(
        o.stderr.contains("mounts[2].source /does/not/exist"),
        "{}",
        o.stderr
    );
}

#[test]
fn unknown_option_reaches_the_kernel_and_the_error_names_the_mount() {
    if !Case::available() {
        return;
    }
    let mut c = Case::minimal();
    c.add_mount(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "no-such-option=1"]}),
    );
    let o = c.run("true");
    assert!(!o.ok);
    assert!(
        o.stderr.contains("mounts[2] (/scratch)") && o.stderr.contains("no-such-option=1"),
        "{}",
        o.stderr
    );
}

#[test]
fn tmpcopyup_keeps_the_directory_contents() {
    if !Case::available() {
        return;
    }
    let mut c = Case::minimal();
    c.add_mount(
        json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
        "options": ["tmpcopyup", "mode=755"]}),
    );
    let o =
        c.run("cat /proc/self/mountinfo; grep -c root /etc/passwd; touch /etc/new && echo NEW-OK");
    o.assert_ok();
    assert_eq!(o.mount_at("/etc").fs_type, "tmpfs");
    assert!(o.has_line("1") && o.has_line("NEW-OK"), "{}", o.stdout);
    assert!(
        !c.rootfs().join("etc/new").exists(),
        "the write must land in the tmpfs"
    );
}

#[test]
fn no_pivot_moves_the_rootfs_onto_slash() {
    if !Case::available() {
        return;
    }
    let mut c = Case::minimal();
    c.flags = vec!["nopivot"];
    let o = c.run("cat /etc/hostname; ls /bin/busybox");
    o.assert_ok();
    assert!(
        o.has_line("busybox") && o.has_line("/bin/busybox"),
        "{}",
        o.stdout
    );
}

#[test]
fn cgroup_v1_hierarchies_bound_or_mounted_read_only() {
    if !Case::available() {
        return;
    }
    // No cgroup namespace: our directories bound. One, with our directories known (what a
    // container's process reads just before it makes its namespace): bound too. One, without:
    // new cgroup mounts.
    for (unshare, flags) in [
        (vec![], vec![]),
        (vec!["--cgroup"], vec!["cgroupns", "host-cgroups"]),
        (vec!["--cgroup"], vec!["cgroupns"]),
    ] {
        let mut c = Case::new();
        c.unshare = unshare;
        c.flags = flags;
        let o = c.run(
            "cat /proc/self/mountinfo; ls /sys/fs/cgroup | sed 's/^/CG /'; \
             ls /sys/fs/cgroup/memory/memory.limit_in_bytes && echo MEM-OK; \
             mkdir /sys/fs/cgroup/memory/x 2>/dev/null || echo CG-RO",
        );
        o.assert_ok();
        let host: Vec<MountInfo> = mountinfo::read()
            .unwrap()
            .into_iter()
            .filter(|m| m.fs_type.starts_with("cgroup"))
            .collect();
        if host
            .iter()
            .any(|m| m.mount_point == Path::new("/sys/fs/cgroup"))
        {
            // cgroup v2 host
            assert_eq!(o.mount_at("/sys/fs/cgroup").fs_type, "cgroup2");
            continue;
        }
        assert_eq!(o.mount_at("/sys/fs/cgroup").fs_type, "tmpfs");
        for h in &host {
            let name = h.mount_point.file_name().unwrap().to_str().unwrap();
            assert!(
                o.has_line(&format!("CG {name}")),
                "{name} missing:\n{}",
                o.stdout
            );
            let inside = o.mount_at(&format!("/sys/fs/cgroup/{name}"));
            assert_eq!(inside.fs_type, h.fs_type);
            assert!(options_of(&inside).contains(&"ro"), "{inside:?}");
        }
        assert!(o.has_line("MEM-OK") && o.has_line("CG-RO"), "{}", o.stdout);
    }
}

#[test]
fn cgroup_mounts_wait_for_the_cgroup_but_keep_their_order_against_overlapping_mounts() {
    if !Case::available() {
        return;
    }
    // runc's default spec: /sys/fs/cgroup comes before /dev/mqueue, which does not depend on
    // it, so mqueue is mounted while the cgroup is still being set up.
    let c = Case::new();
    let o = c.run("ls /sys/fs/cgroup | sed 's/^/CG /'");
    o.assert_ok();
    assert!(
        o.has_line("ENTER-CGROUP mqueue-mounted=true"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("CG "), "{}", o.stdout);

    // A later mount over /sys must still land on top of the cgroup mount below it.
    let mut c = Case::new();
    c.add_mount(json!({"destination": "/sys", "type": "tmpfs", "source": "tmpfs"}));
    let o = c.run("ls /sys | sed 's/^/SYS /'; echo END");
    o.assert_ok();
    assert!(o.has_line("END"), "{}", o.stdout);
    assert!(
        !o.stdout.contains("SYS "),
        "/sys is not the empty tmpfs:\n{}",
        o.stdout
    );
}

#[test]
fn rootfs_propagation_is_applied_to_the_container_root() {
    if !Case::available() {
        return;
    }
    for (propagation, shared) in [("rshared", true), ("rprivate", false)] {
        let mut c = Case::minimal();
        c.spec["linux"]["rootfsPropagation"] = json!(propagation);
        let o = c.run("cat /proc/self/mountinfo");
        o.assert_ok();
        let root = o.mount_at("/");
        assert_eq!(root.is_shared(), shared, "{propagation}: {root:?}");
        if !shared {
            assert!(root.optional.is_empty(), "{propagation}: {root:?}");
        }
    }
    let mut c = Case::minimal();
    c.spec["linux"]["rootfsPropagation"] = json!("sideways");
    let o = c.run("true");
    assert!(
        !o.ok && o.stderr.contains("linux.rootfsPropagation"),
        "{}",
        o.stderr
    );
}
