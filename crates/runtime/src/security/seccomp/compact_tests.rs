//! The compaction pass keeps behaviour: libseccomp's program and the compacted one are run side
//! by side in a test interpreter over every syscall number, architecture and a set of argument
//! values; the compacted one is loaded into the kernel in a forked child.

use std::collections::BTreeSet;

use libc::sock_filter;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

use super::compact::compact;
use super::interp::{disasm, run, SeccompData};
use super::libseccomp_filter;

/// Docker's default profile as the engine ships it (Docker's format, converted below).
const DOCKER_PROFILE: &str = include_str!("../../../../engine/src/containers/seccomp_default.json");

/// The engine's default capability set (engine/src/containers/spec.rs, DEFAULT_CAPS).
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const X32_BIT: u32 = 0x4000_0000;

/// Docker's profile → `linux.seccomp` for an amd64 container with the default capabilities,
/// the way the engine's `to_oci` selects rules (a new kernel, so minKernel always holds).
fn docker_profile() -> LinuxSeccomp {
    let p: Value = serde_json::from_str(DOCKER_PROFILE).expect("seccomp_default.json");
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let has_cap = |c: &String| DEFAULT_CAPS.contains(&c.as_str());
    let arches: Vec<String> = p["archMap"]
        .as_array()
        .expect("archMap")
        .iter()
        .filter(|m| m["architecture"] == "SCMP_ARCH_X86_64")
        .flat_map(|m| {
            std::iter::once(m["architecture"].as_str().unwrap_or_default().to_string())
                .chain(strs(&m["subArchitectures"]))
        })
        .collect();
    let mut rules = Vec::new();
    for s in p["syscalls"].as_array().expect("syscalls") {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        let inc_arches = strs(&inc["arches"]);
        if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == "amd64") {
            continue;
        }
        if !strs(&inc["caps"]).iter().all(has_cap)
            || strs(&exc["caps"]).iter().any(has_cap)
            || strs(&exc["arches"]).iter().any(|a| a == "amd64")
        {
            continue;
        }
        let mut r = json!({"names": s["names"], "action": s["action"]});
        for key in ["errnoRet", "args"] {
            if !s[key].is_null() {
                r[key] = s[key].clone();
            }
        }
        rules.push(r);
    }
    assert!(rules.len() > 10, "{} rules selected", rules.len());
    serde_json::from_value(json!({
        "defaultAction": p["defaultAction"],
        "defaultErrnoRet": p["defaultErrnoRet"],
        "architectures": arches,
        "syscalls": rules,
    }))
    .expect("linux.seccomp")
}

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("linux.seccomp")
}

/// Argument vectors: zeros, all-ones, high half set, and each value the profile compares with
/// (and its neighbours) in every argument at once and alone in the argument it is compared in.
fn arg_vectors(p: &LinuxSeccomp) -> Vec<[u64; 6]> {
    let mut by_index: BTreeSet<(usize, u64)> = BTreeSet::new();
    for rule in p.syscalls().as_deref().unwrap_or(&[]) {
        for a in rule.args().as_deref().unwrap_or(&[]) {
            for v in [a.value(), a.value_two().unwrap_or(0)] {
                for w in [v.wrapping_sub(1), v, v.wrapping_add(1)] {
                    by_index.insert((a.index(), w));
                }
            }
        }
    }
    let mut out = vec![
        [0; 6],
        [u64::MAX; 6],
        [0xffff_ffff; 6],
        [0xffff_ffff_0000_0000; 6],
        [0x1_0000_0000; 6],
        [0x8000_0000_0000_0000; 6],
    ];
    for &(i, v) in &by_index {
        out.push([v; 6]);
        let mut one = [0; 6];
        one[i] = v;
        out.push(one);
        // The same value with the high half set, which 64-bit comparisons must tell apart.
        one[i] = v | 0xffff_ffff_0000_0000;
        out.push(one);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Every syscall number the test tries: 0..=1200, the same with the x32 bit, and edge values.
fn numbers() -> Vec<u32> {
    let mut n: Vec<u32> = (0..=1200).collect();
    n.extend((0..=1200).map(|nr| nr | X32_BIT));
    n.extend([
        0x3fff_ffff,
        X32_BIT,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX - 1,
        u32::MAX,
    ]);
    n
}

/// Both programs give the same result for every architecture, number and argument vector.
/// Returns how many inputs were compared.
fn assert_same(name: &str, p: &LinuxSeccomp, original: &[sock_filter], compacted: &[sock_filter]) {
    let args = arg_vectors(p);
    let mut compared = 0usize;
    for arch in [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64] {
        for nr in numbers() {
            for a in &args {
                let data = SeccompData {
                    nr,
                    arch,
                    instruction_pointer: 0x7fff_0000_1234,
                    args: *a,
                };
                let (want, got) = (run(original, &data), run(compacted, &data));
                if want != got {
                    panic!(
                        "{name}: {data:x?}: libseccomp's program returns {want:#x}, the compacted \
                         one {got:#x}\n--- original\n{}--- compacted\n{}",
                        disasm(original),
                        disasm(compacted)
                    );
                }
                compared += 1;
            }
        }
    }
    assert!(compared > 7000, "{name}: only {compared} inputs");
}

/// libseccomp's program and its compaction for `p`.
fn both(p: &LinuxSeccomp) -> (Vec<sock_filter>, Vec<sock_filter>) {
    let original = libseccomp_filter(p).expect("libseccomp compiles the profile");
    let compacted = compact(&original);
    assert!(compacted.len() <= original.len());
    (original, compacted)
}

#[test]
fn docker_profile_compacts_to_the_same_decisions() {
    let p = docker_profile();
    let (original, compacted) = both(&p);
    println!(
        "Docker's default profile: libseccomp {} instructions, compacted {}",
        original.len(),
        compacted.len()
    );
    assert!(
        compacted.len() * 100 < original.len() * 40,
        "{} → {}: expected under 40%",
        original.len(),
        compacted.len()
    );
    assert_same("docker", &p, &original, &compacted);
}

#[test]
fn docker_profile_decisions_are_the_expected_ones() {
    // Guards the interpreter and the selection above: a few decisions known from the profile.
    let p = docker_profile();
    let (_, compacted) = both(&p);
    let ret = |arch: u32, nr: i64, args: [u64; 6]| {
        let data = SeccompData {
            nr: nr as u32,
            arch,
            instruction_pointer: 0,
            args,
        };
        run(&compacted, &data)
    };
    let allow = libc::SECCOMP_RET_ALLOW;
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let x86 = AUDIT_ARCH_X86_64;
    assert_eq!(ret(x86, libc::SYS_read, [0; 6]), allow);
    assert_eq!(ret(x86, libc::SYS_getpid, [0; 6]), allow);
    assert_eq!(ret(x86, libc::SYS_kexec_load, [0; 6]), eperm);
    assert_eq!(ret(x86, libc::SYS_socket, [1, 1, 0, 0, 0, 0]), allow);
    assert_eq!(ret(x86, libc::SYS_socket, [40, 1, 0, 0, 0, 0]), eperm);
    assert_eq!(ret(x86, libc::SYS_personality, [8, 0, 0, 0, 0, 0]), allow);
    assert_eq!(ret(x86, libc::SYS_personality, [9, 0, 0, 0, 0, 0]), eperm);
    assert_eq!(
        ret(x86, libc::SYS_clone3, [0; 6]),
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
    );
    // i386 read is 3, x32 read is 0 | the x32 bit; aarch64 is not in the profile.
    assert_eq!(ret(AUDIT_ARCH_I386, 3, [0; 6]), allow);
    assert_eq!(ret(x86, i64::from(X32_BIT), [0; 6]), allow);
    assert_ne!(ret(AUDIT_ARCH_AARCH64, 63, [0; 6]), allow);
}

#[test]
fn hand_written_profiles_compact_to_the_same_decisions() {
    let arches = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let cases = [
        (
            "arg conditions",
            json!({
                "defaultAction": "SCMP_ACT_ERRNO", "architectures": arches,
                "syscalls": [
                    {"names": ["read", "write", "close", "fstat", "lseek", "mmap", "mprotect",
                               "munmap", "brk", "rt_sigaction", "rt_sigprocmask"],
                     "action": "SCMP_ACT_ALLOW"},
                    {"names": ["open"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 1, "value": 0xf00, "valueTwo": 0x200, "op": "SCMP_CMP_MASKED_EQ"}]},
                    {"names": ["stat"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_NE"}]},
                    {"names": ["poll"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 2, "value": 0x1_0000_0005u64, "op": "SCMP_CMP_LT"}]},
                    {"names": ["lstat"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 3, "value": 0xffff_ffffu64, "op": "SCMP_CMP_LE"}]},
                    {"names": ["pread64"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                     "args": [{"index": 0, "value": 0x8000_0000_0000_0000u64, "op": "SCMP_CMP_GT"},
                              {"index": 1, "value": 7, "op": "SCMP_CMP_EQ"}]},
                    {"names": ["pwrite64"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 5, "value": 0x2_0000_0000u64, "op": "SCMP_CMP_GE"}]}
                ]
            }),
        ),
        (
            "neighbouring errnos",
            json!({
                "defaultAction": "SCMP_ACT_KILL_PROCESS", "architectures": arches,
                "syscalls": [
                    {"names": ["read", "open", "fstat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                    {"names": ["write", "close"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2},
                    {"names": ["stat", "lstat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3},
                    {"names": ["poll", "lseek", "mmap"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["mprotect"], "action": "SCMP_ACT_TRAP"},
                    {"names": ["munmap"], "action": "SCMP_ACT_LOG"},
                    {"names": ["brk"], "action": "SCMP_ACT_TRACE", "errnoRet": 9},
                    {"names": ["rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "ioctl"],
                     "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
                ]
            }),
        ),
        (
            "allow by default, a deny list",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW", "architectures": arches,
                "syscalls": [
                    {"names": ["mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename",
                               "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat"],
                     "action": "SCMP_ACT_ERRNO", "errnoRet": 30},
                    {"names": ["reboot", "kexec_load", "init_module", "delete_module"],
                     "action": "SCMP_ACT_KILL"}
                ]
            }),
        ),
        (
            "empty syscall list",
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "architectures": arches,
                   "syscalls": []}),
        ),
        (
            "non-contiguous numbers",
            json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {"names": ["read", "open", "stat", "poll", "mmap", "munmap", "rt_sigaction",
                               "ioctl", "pwrite64", "writev", "pipe", "sched_yield", "mincore",
                               "shmget", "dup", "nanosleep", "alarm", "getpid", "socket",
                               "accept", "recvfrom", "shutdown", "getsockname", "clone", "vfork",
                               "exit", "kill", "getdents", "getcwd", "fchdir", "mkdir", "creat",
                               "unlink", "readlink", "fchmod", "chown", "lchown", "getuid",
                               "exit_group", "openat", "epoll_pwait2", "futex_waitv"],
                     "action": "SCMP_ACT_ALLOW"}
                ]
            }),
        ),
        (
            "native arch only, allow list",
            json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {"names": ["read", "write", "open", "close", "stat", "fstat", "lstat", "poll",
                               "lseek", "mmap", "mprotect", "munmap", "brk", "getpid", "exit_group"],
                     "action": "SCMP_ACT_ALLOW"},
                    {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97}
                ]
            }),
        ),
    ];
    let mut compacted_some = 0;
    for (name, json) in cases {
        let p = profile(json);
        let (original, compacted) = both(&p);
        println!("{name}: {} → {}", original.len(), compacted.len());
        compacted_some += usize::from(compacted.len() < original.len());
        assert_same(name, &p, &original, &compacted);
    }
    // Most of these have runs worth compacting; if none shrank the pass did nothing.
    assert!(compacted_some >= 3, "only {compacted_some} profiles shrank");
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Both programs agree on `nr` for these numbers (arch and arguments zero).
fn assert_same_on_numbers(name: &str, original: &[sock_filter], compacted: &[sock_filter]) {
    let mut nrs: Vec<u32> = (0..=0x400).collect();
    nrs.extend([0x7fff_ffff, 0x8000_0000, u32::MAX - 1, u32::MAX]);
    for nr in nrs {
        let data = SeccompData {
            nr,
            arch: 0,
            instruction_pointer: 0,
            args: [0; 6],
        };
        assert_eq!(
            run(original, &data),
            run(compacted, &data),
            "{name}: nr {nr:#x}\n--- original\n{}--- compacted\n{}",
            disasm(original),
            disasm(compacted)
        );
    }
}

#[test]
fn a_jump_into_the_middle_of_the_tests_keeps_its_meaning() {
    // Odd numbers skip the tests for 1..=4 (1 jumps to 6), so 1 and 3 are not allowed.
    let mut f = vec![insn(0x20, 0, 0, 0), insn(0x45, 4, 0, 1)];
    for p in 2..=9u8 {
        f.push(insn(0x15, 10 - p, 0, u32::from(p) - 1));
    }
    f.push(insn(0x06, 0, 0, libc::SECCOMP_RET_ERRNO | 1));
    f.push(insn(0x06, 0, 0, libc::SECCOMP_RET_ALLOW));
    let c = compact(&f);
    assert!(c.len() < f.len(), "{}", disasm(&c));
    assert_same_on_numbers("interior jump", &f, &c);
    let ret = |nr| {
        run(
            &c,
            &SeccompData {
                nr,
                arch: 0,
                instruction_pointer: 0,
                args: [0; 6],
            },
        )
    };
    assert_eq!(ret(1), libc::SECCOMP_RET_ERRNO | 1);
    assert_eq!(ret(2), libc::SECCOMP_RET_ALLOW);
    assert_eq!(ret(5), libc::SECCOMP_RET_ALLOW);
}

#[test]
fn far_targets_get_trampolines() {
    // 0..=9 → `ret allow` 300 instructions further on (reached through a `ja`), else 300 adds.
    let mut f = vec![insn(0x20, 0, 0, 0)];
    for p in 1..=10u8 {
        f.push(insn(0x15, 11 - p, 0, u32::from(p) - 1));
    }
    f.push(insn(0x05, 0, 0, 1));
    f.push(insn(0x05, 0, 0, 301));
    f.extend(std::iter::repeat_n(insn(0x04, 0, 0, 1), 300));
    f.push(insn(0x16, 0, 0, 0));
    f.push(insn(0x06, 0, 0, libc::SECCOMP_RET_ALLOW));
    assert_eq!(f.len(), 315);
    let c = compact(&f);
    assert!(c.len() < f.len(), "{}", disasm(&c));
    assert!(
        c.iter().any(|i| i.code == 0x05 && i.k > 255),
        "no long jump: {}",
        disasm(&c)
    );
    assert_same_on_numbers("trampolines", &f, &c);
}

#[test]
fn neighbouring_return_values_after_skipped_rets() {
    // libseccomp's shape: a `ret` placed inside the tests, skipped by `jf = 1`.
    let allow = libc::SECCOMP_RET_ALLOW;
    let e = |n: u32| libc::SECCOMP_RET_ERRNO | n;
    // The `ret`s at 4 and 8 have the same value, so 12 and 14..=15 share an outcome.
    let f = vec![
        insn(0x20, 0, 0, 0),
        insn(0x15, 11, 0, 10), // → 13 allow
        insn(0x15, 10, 0, 11), // → 13
        insn(0x15, 0, 1, 12),  // → 4
        insn(0x06, 0, 0, e(3)),
        insn(0x15, 6, 0, 13), // → 12
        insn(0x15, 1, 0, 14), // → 8
        insn(0x15, 0, 1, 15), // → 8
        insn(0x06, 0, 0, e(3)),
        insn(0x15, 2, 0, 16), // → 12
        insn(0x15, 1, 0, 17), // → 12
        insn(0x06, 0, 0, e(1)),
        insn(0x06, 0, 0, e(4)),
        insn(0x06, 0, 0, allow),
    ];
    let c = compact(&f);
    assert!(c.len() < f.len(), "{}", disasm(&c));
    assert_same_on_numbers("skipped rets", &f, &c);
}

/// Whether this kernel has seccomp filters.
fn seccomp_available() -> bool {
    // SAFETY: PR_GET_SECCOMP only reads the calling thread's mode.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP) >= 0 }
}

fn errno() -> i32 {
    // SAFETY: the thread's errno is always readable.
    unsafe { *libc::__errno_location() }
}

/// Fork; the child sets no_new_privs, loads `filter` (unless None), runs `check` and exits with
/// its result (100/101 when the setup fails). Only raw system calls run in the child.
fn in_child(filter: Option<&[sock_filter]>, check: fn() -> i32) -> i32 {
    let prog = filter.map(|f| libc::sock_fprog {
        len: f.len() as libc::c_ushort,
        filter: f.as_ptr() as *mut sock_filter,
    });
    // SAFETY: the child only makes system calls on memory prepared before fork, then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            let code = if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                100
            } else if prog.as_ref().is_some_and(|p| {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    p as *const libc::sock_fprog,
                ) != 0
            }) {
                101
            } else {
                check()
            };
            libc::_exit(code)
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    libc::WEXITSTATUS(status)
}

/// What Docker's profile decides, observed from inside: 0 when all hold.
fn docker_decisions_hold() -> i32 {
    // SAFETY: integer-only system calls; the socket is closed again.
    unsafe {
        if libc::syscall(libc::SYS_getpid) != i64::from(libc::getpid()) {
            return 1;
        }
        let fd = libc::syscall(libc::SYS_socket, libc::AF_UNIX, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return 2;
        }
        libc::close(fd as libc::c_int);
        // socket(AF_VSOCK) is the one family the profile refuses, with the default EPERM.
        if libc::syscall(libc::SYS_socket, libc::AF_VSOCK, libc::SOCK_STREAM, 0) != -1
            || errno() != libc::EPERM
        {
            return 3;
        }
        // clone3 gets ENOSYS so that libc falls back to clone.
        if libc::syscall(libc::SYS_clone3, 0usize, 0usize) != -1 || errno() != libc::ENOSYS {
            return 4;
        }
        // personality is allowed for a few values only.
        if libc::syscall(libc::SYS_personality, 0x1234usize) != -1 || errno() != libc::EPERM {
            return 5;
        }
        0
    }
}

#[test]
fn kernel_accepts_the_compacted_docker_profile() {
    if !berth_testsupport::require(seccomp_available(), "seccomp filters in this kernel") {
        return;
    }
    let (original, compacted) = both(&docker_profile());
    // Without a filter the checks fail, so a pass below is the filter's doing.
    assert_ne!(in_child(None, docker_decisions_hold), 0);
    assert_eq!(
        in_child(Some(&original), docker_decisions_hold),
        0,
        "libseccomp's program"
    );
    assert_eq!(
        in_child(Some(&compacted), docker_decisions_hold),
        0,
        "compacted program"
    );
}

/// Median microseconds of seccomp(SET_MODE_FILTER) for `filter` over `runs` forked children.
fn median_load_us(filter: &[sock_filter], runs: usize) -> f64 {
    let prog = libc::sock_fprog {
        len: filter.len() as libc::c_ushort,
        filter: filter.as_ptr() as *mut sock_filter,
    };
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut fds = [0; 2];
        // SAFETY: a fresh pipe for this sample.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child makes system calls on memory prepared before fork, then _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: see above.
            unsafe {
                let now = || {
                    let mut t = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    };
                    libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t);
                    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
                };
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let start = now();
                let rc = libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog as *const libc::sock_fprog,
                );
                let ns = if rc == 0 { now() - start } else { u64::MAX };
                libc::write(fds[1], (&ns as *const u64).cast(), 8);
                libc::_exit(0)
            }
        }
        let mut ns = 0u64;
        // SAFETY: reading 8 bytes into a u64, then reaping the child and closing the pipe.
        unsafe {
            libc::close(fds[1]);
            assert_eq!(libc::read(fds[0], (&mut ns as *mut u64).cast(), 8), 8);
            libc::close(fds[0]);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        assert_ne!(ns, u64::MAX, "seccomp(2) failed in the child");
        samples.push(ns as f64 / 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// `cargo test -p berth-runtime --lib seccomp_load_time -- --ignored --nocapture`
/// (bench/seccomp-load.sh): what loading Docker's profile costs, before and after compaction.
#[test]
#[ignore = "a measurement, not a check"]
fn seccomp_load_time() {
    let runs = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let (original, compacted) = both(&docker_profile());
    let before = median_load_us(&original, runs);
    let after = median_load_us(&compacted, runs);
    println!(
        "seccomp(SET_MODE_FILTER), Docker's default profile, median of {runs}:\n  \
         libseccomp: {:4} instructions, {before:7.1} µs\n  \
         compacted:  {:4} instructions, {after:7.1} µs ({:.1}x faster)",
        original.len(),
        compacted.len(),
        before / after
    );
}
