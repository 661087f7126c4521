//! Process-level effects of `security::finalize_process` and seccomp programs, observed in a
//! separate process: `Command::pre_exec` runs our code in the forked (single-threaded) child,
//! an allocation-free probe reports raw system call results on stdout, then busybox runs and
//! reports what survived execve (/proc/self/status, /proc/self/limits, id, umask).

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output, Stdio};
use std::str::FromStr;

mod agent;

use berth_runtime::security::{self, seccomp};
use oci_spec::runtime::{LinuxPersonality, LinuxSeccomp, Process};
use serde_json::{json, Value};

const BUSYBOX: &str = "/bin/busybox";

// ---- allocation-free output from the child -------------------------------------------------

fn out(bytes: &[u8]) {
    // SAFETY: writing a valid buffer to stdout.
    unsafe { libc::write(1, bytes.as_ptr().cast(), bytes.len()) };
}

fn out_num(n: i64) {
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    out(&buf[i..]);
}

/// `key=<result>`: the return value, or `e<errno>` on failure.
fn report(key: &[u8], rc: libc::c_long) {
    out(key);
    out(b"=");
    if rc < 0 {
        out(b"e");
        out_num(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64);
    } else {
        out_num(rc);
    }
    out(b"\n");
}

/// Copy a /proc file to stdout between `BEGIN <tag>` and `END` lines.
fn dump(path: &std::ffi::CStr, tag: &[u8]) {
    out(b"BEGIN ");
    out(tag);
    out(b"\n");
    // SAFETY: valid C string; the fd is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: buf is writable.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out(&buf[..n as usize]);
    }
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    out(b"END\n");
}

// ---- running a child ---------------------------------------------------------------------

struct Run {
    process: Process,
    seccomp: Option<seccomp::Program>,
    personality: Option<LinuxPersonality>,
    probe: fn(),
}

fn process(extra: Value) -> Process {
    let mut p = json!({"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"]});
    merge(&mut p, extra);
    serde_json::from_value(p).expect("process json")
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (&mut *into, from.clone()) {
        for (k, v) in b {
            merge(a.entry(k).or_insert(Value::Null), v);
        }
    } else {
        *into = from;
    }
}

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("seccomp json")
}

fn no_probe() {}

impl Run {
    fn new(process: Process) -> Run {
        Run {
            process,
            seccomp: None,
            personality: None,
            probe: no_probe,
        }
    }

    /// Finalize in the child, run the probe, then exec busybox with `argv`.
    fn exec(self, argv: &[&str]) -> Output {
        let Run {
            process,
            seccomp,
            personality,
            probe,
        } = self;
        let mut cmd = Command::new(BUSYBOX);
        cmd.args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the closure runs in the forked child; it only makes system calls and, on
        // failure, formats one message before _exit.
        unsafe {
            cmd.pre_exec(move || {
                if let Err(e) =
                    security::finalize_process(&process, seccomp.as_ref(), personality.as_ref())
                {
                    let msg = format!("finalize_process: {e}\n");
                    libc::write(2, msg.as_ptr().cast(), msg.len());
                    libc::_exit(99);
                }
                probe();
                Ok(())
            });
        }
        cmd.output().expect("spawn busybox")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `BEGIN tag` ... `END` sections of the output.
fn section(text: &str, tag: &str) -> String {
    let begin = format!("BEGIN {tag}\n");
    let start = text.find(&begin).map(|i| i + begin.len());
    let start = start.unwrap_or_else(|| panic!("no section {tag} in:\n{text}"));
    let end = text[start..].find("END\n").expect("END") + start;
    text[start..end].to_string()
}

/// `Key:\tvalue` lines of /proc/<pid>/status.
fn status_fields(status: &str) -> HashMap<String, String> {
    status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn hex_mask(fields: &HashMap<String, String>, key: &str) -> u64 {
    let v = fields.get(key).unwrap_or_else(|| panic!("{key} missing"));
    u64::from_str_radix(v, 16).unwrap()
}

/// Expected mask computed with the caps crate (independent of berth's own table).
fn caps_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| caps::Capability::from_str(n).unwrap().bitmask())
        .fold(0, |a, b| a | b)
}

/// `key=value` lines printed by a probe.
fn probe_results(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ready() -> bool {
    berth_testsupport::require_root!()
        && berth_testsupport::require(
            std::path::Path::new(BUSYBOX).exists(),
            "/bin/busybox (busybox-static)",
        )
}

// ---- tests -------------------------------------------------------------------------------

fn dump_thread_status() {
    dump(c"/proc/thread-self/status", b"before-exec");
}

#[test]
fn capabilities_identity_rlimits_umask_and_no_new_privs() {
    if !ready() {
        return;
    }
    let bounding = [
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_CHOWN",
        "CAP_SETUID",
    ];
    let effective = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let permitted = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"];
    let inheritable = ["CAP_NET_BIND_SERVICE", "CAP_KILL"];
    let ambient = ["CAP_NET_BIND_SERVICE"];
    let p = process(json!({
        "user": {"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027},
        "capabilities": {
            "bounding": bounding, "effective": effective, "permitted": permitted,
            "inheritable": inheritable, "ambient": ambient
        },
        "rlimits": [
            {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
            {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192}
        ],
        "noNewPrivileges": true
    }));
    security::check(&p, None).unwrap();
    let mut run = Run::new(p);
    run.probe = dump_thread_status;
    let o = run.exec(&[
        "sh",
        "-c",
        "echo \"umask=$(umask)\"; echo \"id=$(id -u):$(id -g)\"; \
         echo BEGIN status; cat /proc/self/status; echo END; \
         echo BEGIN limits; cat /proc/self/limits; echo END",
    ]);
    let text = stdout(&o);
    assert!(
        o.status.success(),
        "{:?} {text} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );

    // Exactly the configured sets right before execve.
    let before = status_fields(&section(&text, "before-exec"));
    assert_eq!(hex_mask(&before, "CapBnd"), caps_mask(&bounding));
    assert_eq!(hex_mask(&before, "CapEff"), caps_mask(&effective));
    assert_eq!(hex_mask(&before, "CapPrm"), caps_mask(&permitted));
    assert_eq!(hex_mask(&before, "CapInh"), caps_mask(&inheritable));
    assert_eq!(hex_mask(&before, "CapAmb"), caps_mask(&ambient));
    assert_eq!(before["Uid"], "1000\t1000\t1000\t1000");
    assert_eq!(before["Gid"], "1001\t1001\t1001\t1001");
    assert_eq!(before["Groups"], "10 20");
    assert_eq!(before["NoNewPrivs"], "1");
    assert_eq!(before["Umask"], "0027");

    // After execve as uid 1000, only the ambient capabilities stay effective and permitted.
    let after = status_fields(&section(&text, "status"));
    assert_eq!(hex_mask(&after, "CapAmb"), caps_mask(&ambient));
    assert_eq!(hex_mask(&after, "CapEff"), caps_mask(&ambient));
    assert_eq!(hex_mask(&after, "CapPrm"), caps_mask(&ambient));
    assert_eq!(hex_mask(&after, "CapBnd"), caps_mask(&bounding));
    assert_eq!(after["NoNewPrivs"], "1");
    assert_eq!(after["Groups"], "10 20");

    let kv = probe_results(&text);
    assert_eq!(kv["umask"], "0027");
    assert_eq!(kv["id"], "1000:1001");

    let limits = section(&text, "limits");
    let row = |name: &str| -> Vec<String> {
        let line = limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not in {limits}"));
        line[name.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("Max open files")[..2], ["123", "456"]);
    assert_eq!(row("Max core file size")[..2], ["4096", "8192"]);
}

#[test]
fn root_keeps_configured_bounding_and_no_new_privs_off() {
    if !ready() {
        return;
    }
    let set = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let p = process(json!({
        "capabilities": {"bounding": set, "effective": set, "permitted": set},
        "noNewPrivileges": false
    }));
    let mut run = Run::new(p);
    run.probe = dump_thread_status;
    let o = run.exec(&["cat", "/proc/self/status"]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}");
    let before = status_fields(&section(&text, "before-exec"));
    assert_eq!(hex_mask(&before, "CapEff"), caps_mask(&set));
    assert_eq!(hex_mask(&before, "CapInh"), 0);
    assert_eq!(hex_mask(&before, "CapAmb"), 0);
    assert_eq!(before["NoNewPrivs"], "0");
    // Root regains its bounding set as permitted/effective at execve: still only `set`.
    let after_text = text.rsplit("END\n").next().unwrap();
    let after = status_fields(after_text);
    assert_eq!(hex_mask(&after, "CapEff"), caps_mask(&set));
    assert_eq!(hex_mask(&after, "CapBnd"), caps_mask(&set));
    assert_eq!(after["Uid"], "0\t0\t0\t0");
}

#[test]
fn seccomp_errno_denies_mkdir_without_no_new_privs() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("denied");
    let prog = seccomp::compile(
        &profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat", "not_a_real_syscall"], "action": "SCMP_ACT_ERRNO",
                 "errnoRet": 38}
            ]
        })),
        None,
    )
    .unwrap();
    let mut run = Run::new(process(json!({"noNewPrivileges": false})));
    run.seccomp = Some(prog);
    let target_s = target.to_str().unwrap();
    let script =
        format!("mkdir {target_s}; echo rc=$?; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status");
    let o = run.exec(&["sh", "-c", &script]);
    let text = stdout(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text} {err}");
    assert!(!target.exists(), "mkdir was not blocked");
    assert!(text.contains("rc=1"), "{text}");
    assert!(
        err.contains("Function not implemented"),
        "errno 38 expected: {err}"
    );
    let fields = status_fields(&text);
    assert_eq!(fields["Seccomp"], "2");
    assert_eq!(fields["NoNewPrivs"], "0");
}

fn getpriority_probe() {
    let gp = |which: libc::c_long, who: libc::c_long| unsafe {
        // SAFETY: integer-only system call.
        libc::syscall(libc::SYS_getpriority, which, who)
    };
    report(b"eq", gp(10, 0));
    report(b"masked", gp(0x2ff, 0));
    report(b"masked_miss", gp(0x1ff, 0));
    report(b"and_both", gp(0x20000, 5));
    report(b"and_one", gp(0x20000, 6));
    report(b"plain", gp(0, 0));
    // SAFETY: integer-only system call.
    let pgid = |pid: libc::c_long| unsafe { libc::syscall(libc::SYS_getpgid, pid) };
    report(b"or_a", pgid(999_991));
    report(b"or_b", pgid(999_992));
    report(b"or_miss", pgid(999_993));
    report(b"ge_unsigned", pgid(-5));
}

#[test]
fn seccomp_argument_conditions() {
    if !ready() {
        return;
    }
    let prog = seccomp::compile(
        &profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 71,
                 "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 72,
                 "args": [{"index": 0, "value": 0xf00, "valueTwo": 0x200, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 73,
                 "args": [{"index": 0, "value": 0x10000, "op": "SCMP_CMP_GT"},
                          {"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 74,
                 "args": [{"index": 0, "value": 999_991, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 999_992, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 75,
                 "args": [{"index": 0, "value": 0x8000_0000_0000_0000u64, "op": "SCMP_CMP_GE"}]}
            ]
        })),
        None,
    )
    .unwrap();
    let mut run = Run::new(process(json!({"noNewPrivileges": true})));
    run.seccomp = Some(prog);
    run.probe = getpriority_probe;
    let o = run.exec(&["true"]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}");
    let r = probe_results(&text);
    assert_eq!(r["eq"], "e71", "EQ");
    assert_eq!(r["masked"], "e72", "MASKED_EQ hit");
    assert_eq!(
        r["masked_miss"],
        format!("e{}", libc::EINVAL),
        "MASKED_EQ miss"
    );
    assert_eq!(r["and_both"], "e73", "both conditions");
    assert_eq!(
        r["and_one"],
        format!("e{}", libc::EINVAL),
        "one of two conditions"
    );
    assert!(
        !r["plain"].starts_with('e'),
        "unconditional getpriority allowed"
    );
    assert_eq!(r["or_a"], "e74");
    assert_eq!(r["or_b"], "e74");
    assert_eq!(r["or_miss"], format!("e{}", libc::ESRCH));
    // -5 as u64 is >= 2^63: SCMP_CMP_GE is unsigned 64-bit.
    assert_eq!(r["ge_unsigned"], "e75");
}

fn getppid_probe() {
    // SAFETY: integer-only system call.
    let rc = unsafe { libc::syscall(libc::SYS_getppid) };
    report(b"getppid", rc);
}

#[test]
fn seccomp_kill_and_trap_actions_deliver_sigsys() {
    if !ready() {
        return;
    }
    for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_KILL"] {
        let prog = seccomp::compile(
            &profile(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                          "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "syscalls": [{"names": ["getppid"], "action": action}]
            })),
            None,
        )
        .unwrap();
        let mut run = Run::new(process(json!({"noNewPrivileges": true})));
        run.seccomp = Some(prog);
        run.probe = getppid_probe;
        let o = run.exec(&["true"]);
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGSYS),
            "{action}: {:?}",
            o.status
        );
        assert!(!stdout(&o).contains("getppid="), "{action}");
    }
    // Same filter with SCMP_ACT_LOG lets the call through.
    let prog = seccomp::compile(
        &profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG"}]})),
        None,
    )
    .unwrap();
    let mut run = Run::new(process(json!({"noNewPrivileges": true})));
    run.seccomp = Some(prog);
    run.probe = getppid_probe;
    let o = run.exec(&["true"]);
    assert!(o.status.success());
    assert!(!probe_results(&stdout(&o))["getppid"].starts_with('e'));
}

#[test]
fn seccomp_default_errno_with_allow_list() {
    if !ready() {
        return;
    }
    // A whitelist profile like Docker's: everything busybox `true` needs is allowed; getppid
    // is not, so it gets defaultErrnoRet.
    let allowed: Vec<String> = (0..450)
        .filter_map(|n| {
            libseccomp::ScmpSyscall::from(n)
                .get_name_by_arch(libseccomp::ScmpArch::native())
                .ok()
        })
        .filter(|n| n != "getppid")
        .collect();
    let prog = seccomp::compile(
        &profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
        })),
        None,
    )
    .unwrap();
    let mut run = Run::new(process(json!({"noNewPrivileges": true})));
    run.seccomp = Some(prog);
    run.probe = getppid_probe;
    let o = run.exec(&["true"]);
    assert!(o.status.success(), "{:?}", o);
    assert_eq!(probe_results(&stdout(&o))["getppid"], "e1");
}

#[test]
fn personality_linux32_changes_uname() {
    if !ready() {
        return;
    }
    let persona: LinuxPersonality = serde_json::from_value(json!({"domain": "LINUX32"})).unwrap();
    let mut run = Run::new(process(json!({})));
    run.personality = Some(persona);
    let o = run.exec(&["uname", "-m"]);
    assert!(o.status.success());
    let m = stdout(&o);
    assert_eq!(m.trim(), "i686", "uname -m under LINUX32");
}

fn sched_probe() {
    // SAFETY: integer-only system calls.
    unsafe {
        report(b"policy", libc::syscall(libc::SYS_sched_getscheduler, 0));
        // The raw getpriority returns 20 - nice.
        report(
            b"prio",
            libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0),
        );
        report(b"ioprio", libc::syscall(libc::SYS_ioprio_get, 1, 0));
    }
}

#[test]
fn scheduler_and_io_priority() {
    if !ready() {
        return;
    }
    let p = process(json!({
        "scheduler": {"policy": "SCHED_BATCH", "nice": 7},
        "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    }));
    let mut run = Run::new(p);
    run.probe = sched_probe;
    let o = run.exec(&["true"]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}");
    let r = probe_results(&text);
    assert_eq!(r["policy"], libc::SCHED_BATCH.to_string());
    assert_eq!(r["prio"], (20 - 7).to_string());
    assert_eq!(r["ioprio"], (3 << 13).to_string());
}

fn mkdirat_probe() {
    // SAFETY: valid C string; integer arguments.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mkdirat,
            libc::AT_FDCWD,
            c"/nonexistent-berth-notify".as_ptr(),
            0o755,
        )
    };
    report(b"mkdirat", rc);
}

#[test]
fn seccomp_notify_reaches_the_agent_and_its_answer_the_process() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let prof = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "berth-test",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    let prog = seccomp::compile(&prof, None).unwrap();
    assert!(prog.needs_listener());

    // The agent: receive the state + fd, answer the first notification with EXDEV.
    let agent = std::thread::spawn(move || {
        let (state, fd) = agent::accept_listener_fd(&listener);
        let (syscall, args) = agent::answer_next_with_errno(&fd, libc::EXDEV);
        (state, syscall, args[2])
    });

    let p = process(json!({"noNewPrivileges": true}));
    let mut cmd = Command::new(BUSYBOX);
    cmd.arg("true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let metadata = prof.listener_metadata().clone();
    // SAFETY: runs in the forked child (see Run::exec); allocation there is fine with glibc.
    unsafe {
        cmd.pre_exec(move || {
            let mut send = |fd: OwnedFd| {
                let state: oci_spec::runtime::ContainerProcessState =
                    serde_json::from_value(json!({
                        "ociVersion": "1.2.0", "fds": ["seccompFd"], "pid": libc::getpid(),
                        "metadata": metadata, "state": {"ociVersion": "1.2.0", "id": "notify-test",
                        "status": "creating", "pid": libc::getpid(), "bundle": "/"}
                    }))
                    .unwrap();
                seccomp::send_to_agent(&sock, &state, fd.as_fd())
            };
            if let Err(e) =
                security::finalize_process_with_listener(&p, Some(&prog), None, &mut send)
            {
                let msg = format!("finalize: {e}\n");
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(99);
            }
            mkdirat_probe();
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    let text = stdout(&o);
    assert!(
        o.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (state, syscall, mode) = agent.join().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "berth-test");
    assert_eq!(
        syscall,
        libseccomp::ScmpSyscall::from_name("mkdirat").unwrap()
    );
    assert_eq!(mode, 0o755);
    assert_eq!(probe_results(&text)["mkdirat"], format!("e{}", libc::EXDEV));
}

#[test]
fn finalize_without_listener_support_refuses_a_notify_profile() {
    if !ready() {
        return;
    }
    let prog = seccomp::compile(
        &profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        })),
        None,
    )
    .unwrap();
    assert!(prog.load().is_err());
    let mut run = Run::new(process(json!({"noNewPrivileges": true})));
    run.seccomp = Some(prog);
    let o = run.exec(&["true"]);
    assert_eq!(o.status.code(), Some(99));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("finalize_process_with_listener"), "{err}");
}

/// Write `data` to a /proc file with raw calls; false on failure.
fn write_proc(path: &std::ffi::CStr, data: &[u8]) -> bool {
    // SAFETY: valid C string and buffer; the fd is closed below.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
        if fd < 0 {
            return false;
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        libc::close(fd);
        n == data.len() as isize
    }
}

#[test]
fn setgroups_is_skipped_where_the_user_namespace_denies_it() {
    if !ready() {
        return;
    }
    let p = process(json!({"user": {"uid": 0, "gid": 0, "additionalGids": [10]}}));
    let mut cmd = Command::new(BUSYBOX);
    cmd.args(["cat", "/proc/self/status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure only makes system calls (and formats a message on failure).
    unsafe {
        cmd.pre_exec(move || {
            // A user namespace mapping only our own ids, with setgroups denied as an
            // unprivileged runtime would have it.
            let ok = libc::unshare(libc::CLONE_NEWUSER) == 0
                && write_proc(c"/proc/self/setgroups", b"deny")
                && write_proc(c"/proc/self/uid_map", b"0 0 1")
                && write_proc(c"/proc/self/gid_map", b"0 0 1");
            if !ok {
                libc::_exit(98);
            }
            if let Err(e) = security::finalize_process(&p, None, None) {
                let msg = format!("finalize_process: {e}\n");
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(99);
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_ne!(
        o.status.code(),
        Some(98),
        "could not set up the user namespace"
    );
    assert!(
        o.status.success(),
        "{:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let status = status_fields(&stdout(&o));
    assert_eq!(status["Uid"], "0\t0\t0\t0");
    assert!(!status["Groups"].split_whitespace().any(|g| g == "10"));
}
