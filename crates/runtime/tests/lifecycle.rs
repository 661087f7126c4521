//! End-to-end tests of the `berth-runtime` binary on busybox bundles: the real kernel, real
//! namespaces, real cgroups. Run as root (they fail loudly under CI=true otherwise).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod agent;

use berth_testsupport::{require_root, unique_id, TestBundle};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

/// A runtime with its own state root, removed (with any leftover containers) at the end.
struct Rt {
    root: tempfile::TempDir,
}

impl Rt {
    fn new() -> Rt {
        Rt {
            root: tempfile::Builder::new()
                .prefix("berth-rt-")
                .tempdir()
                .unwrap(),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(self.root.path());
        c
    }

    /// Run to completion. Output goes through files, not pipes: a detached container inherits
    /// our stdio and would hold a pipe open long after the runtime exited.
    fn out(&self, args: &[&str]) -> Output {
        let mut out = tempfile::tempfile().unwrap();
        let mut err = tempfile::tempfile().unwrap();
        let status = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .unwrap();
        let read = |f: &mut std::fs::File| {
            use std::io::{Read, Seek};
            let mut v = Vec::new();
            f.seek(std::io::SeekFrom::Start(0)).unwrap();
            f.read_to_end(&mut v).unwrap();
            v
        };
        Output {
            status,
            stdout: read(&mut out),
            stderr: read(&mut err),
        }
    }

    /// Run a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.out(args);
        assert!(
            o.status.success(),
            "berth-runtime {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn run(&self, b: &TestBundle) -> Output {
        let id = unique_id("run");
        self.out(&["run", "--bundle", b.path().to_str().unwrap(), &id])
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Ok(list) = std::fs::read_dir(self.root.path()) {
            for e in list.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if !id.starts_with('.') {
                    let _ = self.out(&["delete", "--force", &id]);
                }
            }
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sh(script: &str) -> TestBundle {
    TestBundle::busybox(&["sh", "-c", script])
}

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

#[test]
fn isolation_pid1_hostname_no_host_processes_mounts_or_interfaces() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let b = sh("echo pid=$$; hostname; ps -o pid | wc -l; cat /proc/net/dev | tail -n +3 | cut -d: -f1; cat /proc/self/mountinfo");
    let o = rt.run(&b);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("pid=1"));
    assert_eq!(lines.next(), Some("berth-test"));
    // header + sh + ps (+ wc, its sibling in the pipeline): nothing of the host's.
    let procs: usize = lines.next().unwrap().trim().parse().unwrap();
    assert!(procs <= 4, "container sees {procs} processes");
    let ifaces: Vec<&str> = lines
        .clone()
        .take_while(|l| !l.contains(" / "))
        .map(str::trim)
        .collect();
    assert_eq!(
        ifaces,
        vec!["lo"],
        "only loopback in a new network namespace"
    );
    let mounts = out
        .lines()
        .filter(|l| l.contains(" - "))
        .collect::<Vec<_>>();
    let host_work = mounts.iter().any(|l| {
        l.split_whitespace()
            .nth(4)
            .is_some_and(|mp| mp.starts_with("/work") || mp.starts_with("/run/berth"))
    });
    assert!(!host_work, "host mounts visible: {mounts:#?}");
    assert!(mounts
        .iter()
        .any(|l| l.split_whitespace().nth(4) == Some("/")));
}

#[test]
fn exit_codes_propagate() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    assert_eq!(rt.run(&sh("exit 3")).status.code(), Some(3));
    assert_eq!(rt.run(&sh("true")).status.code(), Some(0));
    // Without a pid namespace sh is not an init, so SIGKILL to itself is delivered: 128+9.
    let mut b = sh("kill -9 $$");
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
    });
    assert_eq!(rt.run(&b).status.code(), Some(137));
}

#[test]
fn signal_to_runtime_reaches_container() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let b = sh("trap 'exit 42' TERM; echo ready; while true; do sleep 0.05; done");
    let id = unique_id("sig");
    let mut child = rt
        .cmd()
        .args(["run", "--bundle", b.path().to_str().unwrap(), &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(42));
}

#[test]
fn create_start_state_kill_delete_leaves_nothing() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let b = TestBundle::busybox(&["sleep", "1000"]);
    let id = unique_id("life");
    let pid_file = b.path().join("pid");
    rt.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    // Not exec'ed yet: still the runtime's image.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    rt.ok(&["start", &id]);
    assert!(wait_until(|| std::fs::read_to_string(format!(
        "/proc/{pid}/comm"
    ))
    .is_ok_and(|c| c.trim() == "sleep")));
    assert_eq!(rt.state(&id)["status"], "running");
    let o = rt.out(&["start", &id]);
    assert!(!o.status.success(), "second start must fail");
    assert!(stderr(&o).contains("running"), "{}", stderr(&o));
    let o = rt.out(&["delete", &id]);
    assert!(
        !o.status.success(),
        "delete of a running container without --force must fail"
    );

    let cgroup_dirs: Vec<PathBuf> = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            (ctrl == "memory" || ctrl == "pids")
                .then(|| PathBuf::from(format!("/sys/fs/cgroup/{ctrl}{path}")))
        })
        .collect();
    assert!(!cgroup_dirs.is_empty() && cgroup_dirs.iter().all(|d| d.exists()));

    rt.ok(&["kill", &id, "KILL"]);
    assert!(wait_until(|| rt.state(&id)["status"] == "stopped"));
    rt.ok(&["delete", &id]);
    assert!(
        !rt.root.path().join(&id).exists(),
        "state directory removed"
    );
    for d in &cgroup_dirs {
        assert!(!d.exists(), "cgroup {} removed", d.display());
    }
    // Gone, or a zombie waiting for whoever adopted it after create's parent exited.
    let st = berth_runtime::state::proc_stat(pid as i32);
    assert!(
        st.is_none_or(|s| s.state == 'Z'),
        "container process still alive"
    );
    let o = rt.out(&["state", &id]);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}

#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let o = rt.run(&sh("cat /sys/class/net/lo/flags"));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let flags = u32::from_str_radix(out.trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("lo flags: {out:?}"));
    assert_eq!(flags & 1, 1, "IFF_UP not set on lo: {out}");
}

#[test]
fn failed_create_leaves_nothing_behind() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let b = TestBundle::busybox(&["/no/such/program"]);
    let id = unique_id("fail");
    let o = rt.out(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/no/such/program"), "{}", stderr(&o));
    assert!(!rt.root.path().join(&id).exists(), "no state directory");
    assert!(
        !Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}")).exists(),
        "no cgroup"
    );
    let list = rt.ok(&["list", "-q"]);
    assert!(!list.contains(&id));
}

#[test]
fn invalid_config_names_the_field() {
    let rt = Rt::new();
    let mut b = sh("true");
    b.edit(|s| s["linux"]["namespaces"][1]["type"] = json!("bogus"));
    let o = rt.run(&b);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("linux.namespaces[1].type"),
        "{}",
        stderr(&o)
    );

    b.edit(|s| {
        s["linux"]["namespaces"][1]["type"] = json!("network");
        s["process"]["args"] = json!([]);
    });
    let o = rt.run(&b);
    assert!(stderr(&o).contains("process.args"), "{}", stderr(&o));

    b.edit(|s| {
        s["process"]["args"] = json!(["true"]);
        s["root"]["path"] = json!("missing-rootfs");
    });
    let o = rt.run(&b);
    assert!(stderr(&o).contains("root.path"), "{}", stderr(&o));
}

#[test]
fn only_standard_fds_reach_the_container_unless_preserved() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let b = sh("ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let o = rt.run(&b);
    // ls itself holds one fd open on the directory it lists (3).
    assert_eq!(stdout(&o).trim(), "0 1 2 3", "{}", stderr(&o));

    // --preserve-fds 1 keeps fd 3: open a file on fd 3 for the runtime.
    let marker = b.path().join("marker");
    std::fs::write(&marker, "kept").unwrap();
    let b2 = sh("cat <&3");
    let id = unique_id("fds");
    let f = std::fs::File::open(&marker).unwrap();
    let mut cmd = rt.cmd();
    cmd.args([
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b2.path().to_str().unwrap(),
        &id,
    ]);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&f);
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            // dup2 onto itself keeps CLOEXEC: clear it explicitly so fd 3 survives exec.
            if libc::dup2(raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(stdout(&o), "kept", "{}", stderr(&o));
}

#[test]
fn exec_runs_in_the_container() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let b = TestBundle::busybox(&["sleep", "1000"]);
    let id = unique_id("exec");
    rt.ok(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let out = rt.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; ps -o pid,comm | grep sleep",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("berth-test"));
    assert!(lines.next().unwrap().trim().starts_with("1 sleep"), "{out}");
    let o = rt.out(&["exec", &id, "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5));
    // --process with a JSON Process, detached, pid file.
    let proc_json = b.path().join("process.json");
    std::fs::write(
        &proc_json,
        json!({"args": ["sh", "-c", "echo $FOO > /tmp/exec-out"], "cwd": "/", "env": ["FOO=bar", "PATH=/bin"],
               "user": {"uid": 0, "gid": 0}})
        .to_string(),
    )
    .unwrap();
    let pid_file = b.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--process",
        proc_json.to_str().unwrap(),
        &id,
    ]);
    assert!(pid_file.exists());
    assert!(wait_until(|| std::fs::read_to_string(
        b.rootfs().join("tmp/exec-out")
    )
    .is_ok_and(|s| s == "bar\n")));
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn pause_resume_and_kill_all() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let b = sh("sleep 1000 & sleep 1000 & wait");
    let id = unique_id("pause");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(wait_until(|| serde_json::from_str::<Vec<i32>>(
        &rt.ok(&["ps", "--format", "json", &id])
    )
    .unwrap()
    .len()
        == 3));
    rt.ok(&["pause", &id]);
    assert_eq!(rt.state(&id)["status"], "paused");
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    for p in &pids {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap();
        assert!(status
            .lines()
            .any(|l| l.starts_with("State:") && (l.contains("D") || l.contains("S"))));
    }
    rt.ok(&["resume", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    rt.ok(&["kill", "--all", &id, "9"]);
    assert!(wait_until(|| pids
        .iter()
        .all(|p| !Path::new(&format!("/proc/{p}")).exists())));
    rt.ok(&["delete", &id]);
}

#[test]
fn user_namespace_maps_root_to_unprivileged_uid() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = TestBundle::busybox(&["sleep", "1000"]);
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    let id = unique_id("userns");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "100000"),
        "{uid_line}"
    );
    let inside = rt.ok(&["exec", &id, "id", "-u"]);
    assert_eq!(inside.trim(), "0");
    let map = rt.ok(&["exec", &id, "cat", "/proc/self/uid_map"]);
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        vec!["0", "100000", "65536"]
    );
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn time_namespace_offsets_apply() {
    if !require_root!()
        || !berth_testsupport::require(Path::new("/proc/self/ns/time").exists(), "time namespaces")
    {
        return;
    }
    let rt = Rt::new();
    let mut b = sh("cut -d. -f1 /proc/uptime");
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        s["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    });
    let o = rt.run(&b);
    let uptime: u64 = stdout(&o)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}", stderr(&o)));
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uptime >= 864000 + host as u64 - 1,
        "uptime inside {uptime}, host {host}"
    );
}

#[test]
fn memory_limit_ends_in_oom_kill() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    // dd with a 256 MiB block size allocates and touches that much.
    let mut b = TestBundle::busybox(&["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"]);
    b.edit(|s| {
        s["linux"]["resources"]["memory"] =
            json!({"limit": 32 * 1024 * 1024, "swap": 32 * 1024 * 1024});
    });
    let o = rt.run(&b);
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = TestBundle::busybox(&["sleep", "1000"]);
    b.edit(|s| s["linux"]["resources"]["pids"] = json!({"limit": 10}));
    let id = unique_id("pids");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    // A shell that forks 50 sleepers; ash gives up at the first fork the kernel refuses.
    let o = rt.out(&[
        "exec",
        &id,
        "sh",
        "-c",
        "i=0; while [ $i -lt 50 ]; do sleep 300 & i=$((i+1)); done",
    ]);
    assert_ne!(o.status.code(), Some(0), "the fork bomb was not stopped");
    assert!(stderr(&o).contains("fork"), "{}", stderr(&o));
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    // init + the sleepers that fit (the exec'd shell, which held one slot, is gone).
    assert!(
        (2..=10).contains(&pids.len()),
        "{} processes under a limit of 10",
        pids.len()
    );
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn read_only_root_refuses_writes() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = sh("touch /newfile 2>&1; echo rc=$?; touch /dev/shm/ok && echo shm-ok");
    b.edit(|s| s["root"]["readonly"] = json!(true));
    let o = rt.run(&b);
    let out = stdout(&o);
    assert!(out.contains("Read-only file system"), "{out}{}", stderr(&o));
    assert!(out.contains("rc=1"));
    assert!(out.contains("shm-ok"), "tmpfs mounts stay writable");
    assert!(!b.rootfs().join("newfile").exists());
}

#[test]
fn rootfs_is_owned_as_given() {
    // Sanity of the fixture the other tests rely on.
    let b = TestBundle::busybox(&["true"]);
    let md = std::fs::metadata(b.rootfs().join("bin/busybox")).unwrap();
    assert_eq!(md.mode() & 0o111, 0o111);
}

#[test]
fn masked_paths_are_empty_and_readonly_paths_refuse_writes() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    // /proc/timer_list exists on every kernel here and is never empty on the host.
    assert!(!std::fs::read("/proc/timer_list").unwrap().is_empty());
    let mut b = sh(
        "echo kcore=$(wc -c < /proc/timer_list); echo fw=$(ls -A /sys/firmware | wc -l); \
        (echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo written || echo refused",
    );
    b.edit(|s| {
        s["linux"]["maskedPaths"] = json!(["/proc/timer_list", "/sys/firmware"]);
    });
    let o = rt.run(&b);
    let out = stdout(&o);
    assert!(
        out.contains("kcore=0"),
        "masked file reads empty: {out}{}",
        stderr(&o)
    );
    assert!(out.contains("fw=0"), "masked dir is empty: {out}");
    assert!(out.contains("refused"), "/proc/sys is read-only: {out}");
}

/// The capability mask the kernel shows for a list of CAP_* names.
fn cap_mask(names: &[&str]) -> u64 {
    names.iter().fold(0, |m, n| {
        let cap: caps::Capability = n.parse().unwrap();
        m | (1u64 << cap.index())
    })
}

#[test]
fn capabilities_are_exactly_as_configured() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = sh("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status");
    let bounding = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_KILL", "CAP_SETUID"];
    let effective = ["CAP_CHOWN", "CAP_KILL"];
    b.edit(|s| {
        s["process"]["capabilities"] = json!({
            "bounding": bounding, "effective": effective, "permitted": effective,
            "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]
        });
    });
    let o = rt.run(&b);
    let out = stdout(&o);
    let field = |name: &str| -> u64 {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{out}{}", stderr(&o)));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(field("CapBnd"), cap_mask(&bounding));
    // no_new_privileges (on in the default spec) keeps exec from raising root's sets beyond
    // what was configured: permitted and effective stay exactly as given.
    assert_eq!(field("CapPrm"), cap_mask(&effective));
    assert_eq!(field("CapEff"), cap_mask(&effective));
    assert_eq!(field("CapInh"), cap_mask(&["CAP_KILL"]));

    // As a non-root user the configured sets survive exec only through ambient.
    b.edit(|s| s["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    let o = rt.run(&b);
    let out2 = stdout(&o);
    let field2 = |name: &str| -> u64 {
        let line = out2
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{out2}{}", stderr(&o)));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(field2("CapBnd"), cap_mask(&bounding));
    assert_eq!(field2("CapAmb"), cap_mask(&["CAP_KILL"]));
    assert_eq!(field2("CapEff"), cap_mask(&["CAP_KILL"]));
    assert_eq!(field2("CapPrm"), cap_mask(&["CAP_KILL"]));
}

#[test]
fn seccomp_denies_a_chosen_syscall_with_the_chosen_errno() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = sh("mkdir /tmp/x 2>&1; echo rc=$?; ls -d /tmp/x 2>&1; echo alive");
    b.edit(|s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]
        });
    });
    let o = rt.run(&b);
    let out = stdout(&o);
    // errno 122 is EDQUOT: "Disk quota exceeded" — an errno mkdir would never produce here.
    assert!(
        out.contains("Disk quota exceeded") || out.contains("quota"),
        "{out}{}",
        stderr(&o)
    );
    assert!(out.contains("rc=1"));
    assert!(out.contains("alive"));
    assert!(!b.rootfs().join("tmp/x").exists());
    // The compiled filter is cached by the profile's hash.
    let cache = rt.root.path().join(".cache/seccomp");
    assert_eq!(
        std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0),
        1,
        "one cached filter"
    );
}

#[test]
fn seccomp_notify_fd_reaches_the_agent_at_listener_path() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = sh("mkdir /tmp/n 2>&1; echo rc=$?");
    let sock = b.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    b.edit(|s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock, "listenerMetadata": "from-lifecycle-test",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    // The agent: take the state and the fd, answer the first notification with EXDEV.
    let agent = std::thread::spawn(move || {
        let (state, fd) = agent::accept_listener_fd(&listener);
        agent::answer_next_with_errno(&fd, libc::EXDEV);
        state
    });
    let o = rt.run(&b);
    let state = agent.join().unwrap();
    assert_eq!(state["metadata"], "from-lifecycle-test");
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert!(state["state"]["id"].as_str().unwrap().starts_with("run-"));
    let out = stdout(&o);
    assert!(
        out.contains("cross-device"),
        "the agent's answer reached the process: {out}{}",
        stderr(&o)
    );
}

#[test]
fn foreground_run_with_a_terminal_proxies_the_pty() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = sh("tty; [ -t 0 ] && echo stdin-is-a-tty; exit 4");
    b.edit(|s| s["process"]["terminal"] = json!(true));
    let o = rt.run(&b);
    let out = stdout(&o);
    assert!(out.contains("/dev/pts/0"), "{out}{}", stderr(&o));
    assert!(out.contains("stdin-is-a-tty"));
    assert_eq!(o.status.code(), Some(4));
}

#[test]
fn console_socket_receives_the_pty_master() {
    use std::io::Read;
    use std::os::fd::AsFd;
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = sh("echo on-the-console; tty");
    b.edit(|s| s["process"]["terminal"] = json!(true));
    let sock = b.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        berth_runtime::tty::recv_pty_master(conn.as_fd()).unwrap()
    });
    let id = unique_id("console");
    rt.ok(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let master = receiver.join().unwrap();
    rt.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut text = Vec::new();
    let mut buf = [0u8; 256];
    // Read until the container hangs up (EIO once the last slave fd closes).
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("on-the-console"), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(wait_until(|| rt.state(&id)["status"] == "stopped"));
    rt.ok(&["delete", &id]);
}

#[test]
fn init_mode_reaps_forwards_and_the_runtime_binary_cannot_be_overwritten() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = sh("trap 'exit 9' TERM; (sleep 0.1 &); while true; do sleep 0.05; done");
    b.edit(|s| s["annotations"] = json!({"io.berth.init": "true"}));
    let id = unique_id("init");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    // PID 1 is the init (a fork of the runtime), the user's program is its child.
    let comm1 = rt.ok(&["exec", &id, "cat", "/proc/1/comm"]);
    assert_ne!(
        comm1.trim(),
        "sh",
        "PID 1 should be the init, not the program"
    );
    // The orphaned `sleep 0.1` is reparented to the init, which reaps it: no zombie of PID 1
    // stays. (The loop's own `sleep 0.05` is briefly a zombie of sh until sh waits for it: not
    // the init's to reap, and not counted.)
    std::thread::sleep(std::time::Duration::from_millis(400));
    let zombies = rt.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for f in /proc/[0-9]*/status; do grep -q '^State:.*Z' $f 2>/dev/null && \
         grep -q '^PPid:[[:space:]]*1$' $f && echo $f; done | wc -l",
    ]);
    assert_eq!(zombies.trim(), "0", "zombies of the init left: {zombies}");
    // CVE-2019-5736 class: /proc/1/exe is the runtime binary, and it cannot be written from inside.
    let o = rt.out(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo pwned >> /proc/1/exe && echo WROTE",
    ]);
    assert!(
        !stdout(&o).contains("WROTE"),
        "runtime binary writable from inside: {}",
        stderr(&o)
    );
    // Refused because the file is on a read-only mount, not merely because it is running.
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    let host_bin = std::fs::read(BIN).unwrap();
    assert!(!host_bin.ends_with(b"pwned\n"));
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let init_exe = std::fs::metadata(format!("/proc/{pid}/exe")).unwrap();
    assert_ne!(
        init_exe.dev(),
        std::fs::metadata(BIN).unwrap().dev(),
        "init runs the host's binary file"
    );
    // SIGTERM to the init reaches the program, whose exit status becomes the container's.
    let pid = pid as i32;
    rt.ok(&["kill", &id, "TERM"]);
    assert!(wait_until(|| rt.state(&id)["status"] == "stopped"));
    assert!(berth_runtime::state::proc_stat(pid).is_none_or(|s| s.state == 'Z'));
    rt.ok(&["delete", &id]);
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = sh("echo program >> /tmp/inside.log");
    let log = b.path().join("hooks.log");
    let state_file = b.path().join("state.json");
    let host_hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} >> {}", log.display())]});
    b.edit(|s| {
        s["hooks"] = json!({
            "prestart": [host_hook("prestart")],
            "createRuntime": [host_hook("createRuntime"),
                {"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", state_file.display())]}],
            "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo createContainer $(hostname) >> {}", log.display())]}],
            // Runs inside the container, after pivot_root: its paths are the container's.
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer >> /tmp/inside.log"]}],
            "poststart": [host_hook("poststart")],
            "poststop": [host_hook("poststop")]
        });
    });
    let o = rt.run(&b);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        vec![
            "prestart",
            "createRuntime",
            "createContainer berth-test",
            "poststart",
            "poststop"
        ]
    );
    let inside = std::fs::read_to_string(b.rootfs().join("tmp/inside.log")).unwrap();
    assert_eq!(inside, "startContainer\nprogram\n");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert!(state["id"].as_str().unwrap().starts_with("run-"));
    assert!(state["pid"].as_i64().unwrap() > 1);
    assert_eq!(
        state["bundle"].as_str().unwrap(),
        b.path().canonicalize().unwrap().to_str().unwrap()
    );

    // A failing createRuntime hook fails the create and leaves nothing.
    b.edit(|s| {
        s["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]})
    });
    let o = rt.run(&b);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("createRuntime"), "{}", stderr(&o));
    assert_eq!(rt.ok(&["list", "-q"]).trim(), "");
}

#[test]
fn joining_namespaces_by_path() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut first = TestBundle::busybox(&["sleep", "1000"]);
    first.edit(|s| s["hostname"] = json!("first-one"));
    let a = unique_id("join-a");
    rt.ok(&["run", "-d", "--bundle", first.path().to_str().unwrap(), &a]);
    let pid = rt.state(&a)["pid"].as_i64().unwrap();
    // Bring loopback of the first container's netns up, so the second can tell it is the same one.
    let mut second = sh("hostname; cat /proc/net/dev | grep -c lo; readlink /proc/self/ns/net");
    second.edit(|s| {
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network" && n["type"] != "uts");
        ns.push(json!({"type": "network", "path": format!("/proc/{pid}/ns/net")}));
        ns.push(json!({"type": "uts", "path": format!("/proc/{pid}/ns/uts")}));
        s.as_object_mut().unwrap().remove("hostname");
    });
    let o = rt.run(&second);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"first-one"), "{out}{}", stderr(&o));
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(lines.get(2).copied(), Some(theirs.to_str().unwrap()));
    // A path that is not a namespace of the named type is refused, naming the field.
    second.edit(|s| {
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "network", "path": format!("/proc/{pid}/ns/uts")}));
    });
    let o = rt.run(&second);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("linux.namespaces["), "{}", stderr(&o));
    rt.ok(&["delete", "--force", &a]);
}

#[test]
fn process_settings_user_groups_umask_cwd_env_rlimits_oom_score() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = sh("id; umask; pwd; echo $GREETING; ulimit -n; cat /proc/self/oom_score_adj");
    b.edit(|s| {
        s["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 65534], "umask": 63});
        s["process"]["cwd"] = json!("/home/app");
        s["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("GREETING=hello there"));
        s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 321, "soft": 123}]);
        s["process"]["oomScoreAdj"] = json!(500);
    });
    let o = rt.run(&b);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}{}", stderr(&o));
    assert!(
        lines[0].starts_with("uid=1000(app) gid=1000(app) groups="),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("10(wheel)") && lines[0].contains("65534(nogroup)"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], "0077");
    assert_eq!(lines[2], "/home/app");
    assert_eq!(lines[3], "hello there");
    assert_eq!(lines[4], "123");
    assert_eq!(lines[5], "500");
}

#[test]
fn stats_come_from_the_cgroup_and_impossible_mappings_are_refused() {
    if !require_root!() {
        return;
    }
    let rt = Rt::new();
    let mut b = TestBundle::busybox(&["sh", "-c", "x=$(seq 1 20000); sleep 1000"]);
    b.edit(|s| s["linux"]["resources"]["memory"] = json!({"limit": 64 * 1024 * 1024}));
    let id = unique_id("stats");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let ev: Value = serde_json::from_str(&rt.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(ev["type"], "stats");
    let mem = &ev["data"]["memory"];
    assert_eq!(mem["usage"]["limit"], json!(64 * 1024 * 1024), "{ev:#}");
    assert!(mem["usage"]["usage"].as_u64().unwrap_or(0) > 0, "{ev:#}");
    assert!(
        ev["data"]["pids"]["current"].as_u64().unwrap() >= 1,
        "{ev:#}"
    );
    rt.ok(&["update", "--memory", "134217728", &id]);
    let ev: Value = serde_json::from_str(&rt.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(
        ev["data"]["memory"]["usage"]["limit"],
        json!(128 * 1024 * 1024)
    );
    rt.ok(&["delete", "--force", &id]);

    let mut bad = sh("true");
    bad.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        s["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": 4294967290u64, "size": 100}]);
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 10}]);
    });
    let o = rt.run(&bad);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("linux.uidMappings[0]"),
        "{}",
        stderr(&o)
    );
}
