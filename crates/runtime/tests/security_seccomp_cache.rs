//! Seccomp compilation outside any container: the on-disk BPF cache and field errors for bad
//! profiles and capability names. No root needed.

use std::path::Path;
use std::time::Instant;

use berth_runtime::security::seccomp;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("seccomp json")
}

fn deny(names: &[&str]) -> LinuxSeccomp {
    profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    }))
}

fn bpf_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn cache_is_written_once_and_hit_with_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("seccomp-cache");
    let first = seccomp::compile(&deny(&["mkdir", "mkdirat"]), Some(&cache)).unwrap();
    assert!(!first.from_cache());
    let file = seccomp::cache_path(&cache, first.hash());
    assert!(file.is_file(), "{} not written", file.display());
    assert_eq!(bpf_files(&cache), vec![format!("{}.bpf", first.hash())]);

    let second = seccomp::compile(&deny(&["mkdir", "mkdirat"]), Some(&cache)).unwrap();
    assert!(second.from_cache());
    assert_eq!(second.hash(), first.hash());
    assert_eq!(second.bpf_bytes(), first.bpf_bytes());
    assert_eq!(second, first);

    // The same profile compiled without a cache gives the same program.
    let uncached = seccomp::compile(&deny(&["mkdir", "mkdirat"]), None).unwrap();
    assert_eq!(uncached.bpf_bytes(), first.bpf_bytes());

    let other = seccomp::compile(&deny(&["rmdir"]), Some(&cache)).unwrap();
    assert!(!other.from_cache());
    assert_ne!(other.hash(), first.hash());
    assert_ne!(other.bpf_bytes(), first.bpf_bytes());
    assert_eq!(bpf_files(&cache).len(), 2, "{:?}", bpf_files(&cache));
}

#[test]
fn listener_fields_do_not_change_the_key_but_actions_do() {
    let base = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    });
    let mut with_path = base.clone();
    with_path["listenerPath"] = json!("/run/agent.sock");
    with_path["listenerMetadata"] = json!("x");
    let a = seccomp::compile(&profile(base.clone()), None).unwrap();
    let b = seccomp::compile(&profile(with_path), None).unwrap();
    assert_eq!(a.hash(), b.hash());
    let mut errno = base;
    errno["syscalls"][0]["errnoRet"] = json!(5);
    let c = seccomp::compile(&profile(errno), None).unwrap();
    assert_ne!(a.hash(), c.hash());
}

#[test]
fn corrupt_cache_entry_is_recompiled_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let first = seccomp::compile(&deny(&["chmod"]), Some(dir.path())).unwrap();
    let file = seccomp::cache_path(dir.path(), first.hash());
    let mut data = std::fs::read(&file).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(&file, &data).unwrap();

    let again = seccomp::compile(&deny(&["chmod"]), Some(dir.path())).unwrap();
    assert!(!again.from_cache(), "corrupt entry must not be used");
    assert_eq!(again.bpf_bytes(), first.bpf_bytes());
    let third = seccomp::compile(&deny(&["chmod"]), Some(dir.path())).unwrap();
    assert!(third.from_cache(), "entry should have been rewritten");
}

#[test]
fn unwritable_cache_does_not_fail_compilation() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let p = seccomp::compile(&deny(&["chown"]), Some(&not_a_dir)).unwrap();
    assert!(!p.from_cache());
    assert!(!p.is_empty());
}

fn parse_err(spec: Value) -> String {
    match berth_runtime::spec::parse(spec.to_string().as_bytes()) {
        Ok(_) => panic!("accepted: {spec}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_names_are_errors_naming_the_field() {
    let mut spec = berth_testsupport::default_spec(&["sh"]);
    spec["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_CHOWN", "CAP_FLY"]);
    let err = parse_err(spec);
    assert!(err.contains("process.capabilities.bounding[2]"), "{err}");

    let mut spec = berth_testsupport::default_spec(&["sh"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]
    });
    let err = parse_err(spec);
    assert!(err.contains("linux.seccomp.architectures[1]"), "{err}");

    let mut spec = berth_testsupport::default_spec(&["sh"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]
    });
    let err = parse_err(spec);
    assert!(
        err.contains("linux.seccomp.syscalls[0].args[0].op"),
        "{err}"
    );

    let mut spec = berth_testsupport::default_spec(&["sh"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_DANCE"}]
    });
    let err = parse_err(spec);
    assert!(err.contains("linux.seccomp.syscalls[0].action"), "{err}");
}

#[test]
fn arch_unknown_to_this_libseccomp_names_the_field() {
    let v = libseccomp::ScmpVersion::current().unwrap();
    // LoongArch arrived in libseccomp 2.6; with a newer library this case cannot be produced.
    if (v.major, v.minor) >= (2, 6) {
        eprintln!(
            "libseccomp {}.{} supports every oci-spec arch",
            v.major, v.minor
        );
        return;
    }
    let err = seccomp::compile(
        &profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_LOONGARCH64"]
        })),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("linux.seccomp.architectures[1]"), "{err}");
}

/// Docker/Podman's default profile (containers-common's moby-format file), reduced to OCI form
/// for x86_64 the way the engine does: architectures from archMap, entries whose `includes`
/// ask for other arches or capabilities dropped. Falls back to an allow-list of every syscall.
fn docker_like_profile() -> LinuxSeccomp {
    let path = Path::new("/usr/share/containers/seccomp.json");
    let Ok(text) = std::fs::read_to_string(path) else {
        let names: Vec<String> = (0..450)
            .filter_map(|n| {
                libseccomp::ScmpSyscall::from(n)
                    .get_name_by_arch(libseccomp::ScmpArch::native())
                    .ok()
            })
            .collect();
        return profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
        }));
    };
    let moby: Value = serde_json::from_str(&text).unwrap();
    let syscalls: Vec<Value> = moby["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            let inc = &s["includes"];
            let arch_ok = match inc["arches"].as_array() {
                Some(arches) => arches.iter().any(|x| x == "amd64"),
                None => true,
            };
            inc["caps"].is_null() && arch_ok && s["excludes"]["arches"].is_null()
        })
        .map(|s| {
            let mut r = json!({"names": s["names"], "action": s["action"]});
            for k in ["args", "errnoRet"] {
                if !s[k].is_null() {
                    r[k] = s[k].clone();
                }
            }
            r
        })
        .collect();
    profile(json!({
        "defaultAction": moby["defaultAction"],
        "defaultErrnoRet": moby["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls
    }))
}

#[test]
fn docker_default_profile_compiles_and_caches() {
    let prof = docker_like_profile();
    let names: usize = prof
        .syscalls()
        .as_ref()
        .map_or(0, |s| s.iter().map(|r| r.names().len()).sum());
    assert!(names > 300, "profile has only {names} names");
    let dir = tempfile::tempdir().unwrap();
    let cold = seccomp::compile(&prof, Some(dir.path())).unwrap();
    let warm = seccomp::compile(&prof, Some(dir.path())).unwrap();
    assert!(!cold.from_cache() && warm.from_cache());
    assert_eq!(cold.bpf_bytes(), warm.bpf_bytes());
}

/// Ad-hoc measurement: `cargo test -p berth-runtime --test security_seccomp_cache -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_compile_vs_cache_hit() {
    let prof = docker_like_profile();
    let dir = tempfile::tempdir().unwrap();
    let rounds = 20;
    let t = Instant::now();
    for _ in 0..rounds {
        seccomp::compile(&prof, None).unwrap();
    }
    let compile = t.elapsed() / rounds;
    let warm = seccomp::compile(&prof, Some(dir.path())).unwrap();
    let t = Instant::now();
    for _ in 0..rounds {
        assert!(seccomp::compile(&prof, Some(dir.path()))
            .unwrap()
            .from_cache());
    }
    let hit = t.elapsed() / rounds;
    eprintln!(
        "docker-like profile: {} BPF instructions; libseccomp compile {compile:?}, cache hit {hit:?}",
        warm.len()
    );
}
