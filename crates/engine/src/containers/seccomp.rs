//! Seccomp for containers: berth's default profile (Docker's default policy, written in Docker's
//! profile format, `seccomp_default.json`) or the user's own from `--security-opt seccomp=<json>`,
//! turned into the OCI spec's `linux.seccomp` for one container: rules are kept or dropped by
//! the container's capabilities, this machine's architecture and kernel, as Docker does.
//!
//! The runtime compiles the result (and caches the BPF by hash, so every default container with
//! the same capabilities shares one compiled filter).

use std::sync::OnceLock;

use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};
use serde::Deserialize;
use serde_json::{json, Value};

/// The built-in profile, Docker's profile format.
const DEFAULT_PROFILE: &str = include_str!("seccomp_default.json");

/// What `--security-opt seccomp=…` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// No option, or `seccomp=builtin`.
    Default,
    /// `seccomp=unconfined`.
    Unconfined,
    /// The profile's JSON (the docker CLI reads the file and sends its content).
    Custom(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("invalid seccomp profile: {path}: {msg}")]
    Field { path: String, msg: String },
    #[error("invalid seccomp profile: {0}")]
    Invalid(String),
}

/// Docker's seccomp profile format (moby's `profiles/seccomp` types).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    default_action: LinuxSeccompAction,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<Arch>>,
    arch_map: Option<Vec<ArchMap>>,
    syscalls: Option<Vec<Syscall>>,
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    /// The old single-name form.
    name: Option<String>,
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    args: Option<Vec<Arg>>,
    includes: Option<Filter>,
    excludes: Option<Filter>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: LinuxSeccompOperator,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    caps: Option<Vec<String>>,
    /// Go's names: amd64, arm64, x32, s390x, …
    arches: Option<Vec<String>>,
    /// "4.8": the rule needs at least this kernel.
    min_kernel: Option<String>,
}

/// The last `seccomp=` (or old `seccomp:`) security option.
pub fn choice(security_opt: &[String]) -> Choice {
    let mut c = Choice::Default;
    for o in security_opt {
        let v = o
            .strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"));
        c = match v {
            None => continue,
            Some("unconfined") => Choice::Unconfined,
            Some("builtin") | Some("") => Choice::Default,
            Some(json) => Choice::Custom(json.to_string()),
        };
    }
    c
}

/// Parse a profile in Docker's format; errors name the JSON path of the bad field.
pub fn parse(json: &str) -> Result<Profile, ProfileError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        if path == "." {
            ProfileError::Invalid(msg)
        } else {
            ProfileError::Field { path, msg }
        }
    })
}

fn builtin() -> Result<&'static Profile, ProfileError> {
    static BUILTIN: OnceLock<Result<Profile, String>> = OnceLock::new();
    BUILTIN
        .get_or_init(|| parse(DEFAULT_PROFILE).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ProfileError::Invalid(format!("the built-in profile: {e}")))
}

/// `linux.seccomp` for a container with capabilities `caps` (bounding set, "CAP_…" names);
/// None when unconfined or privileged.
pub fn linux_seccomp(
    security_opt: &[String],
    privileged: bool,
    caps: &[String],
) -> Result<Option<Value>, ProfileError> {
    if privileged {
        return Ok(None);
    }
    match choice(security_opt) {
        Choice::Unconfined => Ok(None),
        Choice::Default => default_for(caps).map(Some),
        Choice::Custom(json) => to_oci(&parse(&json)?, caps, &Host::current()).map(Some),
    }
}

/// The built-in profile converted for `caps`, kept for the last capability set asked for (the
/// same for nearly every container): converting it was most of what a container's config cost.
fn default_for(caps: &[String]) -> Result<Value, ProfileError> {
    static LAST: std::sync::Mutex<Option<(Vec<String>, Value)>> = std::sync::Mutex::new(None);
    if let Some((for_caps, oci)) = crate::lock(&LAST).as_ref() {
        if for_caps == caps {
            return Ok(oci.clone());
        }
    }
    let oci = to_oci(builtin()?, caps, &Host::current())?;
    *crate::lock(&LAST) = Some((caps.to_vec(), oci.clone()));
    Ok(oci)
}

/// Check a custom profile at create, so a bad one is a 400 then rather than a failed start:
/// it must parse, convert, and compile (the runtime's own checks, e.g. errnoRet with ALLOW).
pub fn validate(security_opt: &[String], caps: &[String]) -> Result<(), ProfileError> {
    let Choice::Custom(json) = choice(security_opt) else {
        return Ok(());
    };
    let oci = to_oci(&parse(&json)?, caps, &Host::current())?;
    let spec: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(oci)
        .map_err(|e| ProfileError::Invalid(format!("as linux.seccomp: {e}")))?;
    berth_runtime::security::seccomp::compile(&spec, None)
        .map_err(|e| ProfileError::Invalid(e.to_string()))?;
    Ok(())
}

/// What rules are selected by: the machine's architecture and kernel.
#[derive(Debug, Clone)]
pub struct Host {
    /// Go's name for the architecture (what profiles' `includes.arches` say): "amd64".
    pub goarch: &'static str,
    /// libseccomp's: "SCMP_ARCH_X86_64".
    pub scmp_arch: &'static str,
    /// (major, minor) of the running kernel.
    pub kernel: (u32, u32),
}

impl Host {
    pub fn current() -> Host {
        let (goarch, scmp_arch) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
            "x86" => ("386", "SCMP_ARCH_X86"),
            "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
            "arm" => ("arm", "SCMP_ARCH_ARM"),
            "s390x" => ("s390x", "SCMP_ARCH_S390X"),
            "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
            "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
            other => (other, ""),
        };
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        Host {
            goarch,
            scmp_arch,
            kernel: kernel_version(&release).unwrap_or((0, 0)),
        }
    }
}

/// "6.1.0-18-amd64" → (6, 1).
fn kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

fn arch_name(a: &Arch) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn cap_norm(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// Does this rule apply to a container with `caps` on `host`? (Docker's includes/excludes.)
fn applies(s: &Syscall, i: usize, caps: &[String], host: &Host) -> Result<bool, ProfileError> {
    let has = |c: &String| caps.contains(&cap_norm(c));
    if let Some(inc) = &s.includes {
        if let Some(a) = inc.arches.as_deref().filter(|a| !a.is_empty()) {
            if !a.iter().any(|a| a == host.goarch) {
                return Ok(false);
            }
        }
        if let Some(c) = &inc.caps {
            if !c.iter().all(has) {
                return Ok(false);
            }
        }
        if let Some(k) = inc.min_kernel.as_deref().filter(|k| !k.is_empty()) {
            let min = kernel_version(k).ok_or_else(|| ProfileError::Field {
                path: format!("syscalls[{i}].includes.minKernel"),
                msg: format!("{k:?} is not a kernel version like \"4.8\""),
            })?;
            if host.kernel < min {
                return Ok(false);
            }
        }
    }
    if let Some(exc) = &s.excludes {
        if exc.arches.iter().flatten().any(|a| a == host.goarch) {
            return Ok(false);
        }
        if exc.caps.iter().flatten().any(has) {
            return Ok(false);
        }
        if exc.min_kernel.as_deref().is_some_and(|k| !k.is_empty()) {
            return Err(ProfileError::Field {
                path: format!("syscalls[{i}].excludes.minKernel"),
                msg: "minKernel can only be used in includes".into(),
            });
        }
    }
    Ok(true)
}

/// Docker's profile → the OCI spec's `linux.seccomp` (JSON) for this container.
pub fn to_oci(p: &Profile, caps: &[String], host: &Host) -> Result<Value, ProfileError> {
    let has_list = p.architectures.as_ref().is_some_and(|a| !a.is_empty());
    let has_map = p.arch_map.as_ref().is_some_and(|a| !a.is_empty());
    if has_list && has_map {
        return Err(ProfileError::Invalid(
            "both 'architectures' and 'archMap' are given; use one of them".into(),
        ));
    }
    let arches: Vec<String> = if has_map {
        // Only the native architecture's entry matters, with the ones it can also run.
        p.arch_map
            .iter()
            .flatten()
            .filter(|m| arch_name(&m.architecture) == host.scmp_arch)
            .flat_map(|m| {
                std::iter::once(arch_name(&m.architecture))
                    .chain(m.sub_architectures.iter().flatten().map(arch_name))
            })
            .collect()
    } else {
        p.architectures.iter().flatten().map(arch_name).collect()
    };
    let mut rules = Vec::new();
    for (i, s) in p.syscalls.iter().flatten().enumerate() {
        let names: Vec<String> = match (s.name.as_deref(), s.names.as_deref()) {
            (Some(n), Some(ns)) if !n.is_empty() && !ns.is_empty() => {
                return Err(ProfileError::Field {
                    path: format!("syscalls[{i}]"),
                    msg: "both 'name' and 'names' are given; use one of them".into(),
                })
            }
            (Some(n), _) if !n.is_empty() => vec![n.to_string()],
            (_, Some(ns)) if !ns.is_empty() => ns.to_vec(),
            _ => {
                return Err(ProfileError::Field {
                    path: format!("syscalls[{i}]"),
                    msg: "no syscall named ('names' is empty)".into(),
                })
            }
        };
        if let Some((j, _)) = names.iter().enumerate().find(|(_, n)| n.is_empty()) {
            return Err(ProfileError::Field {
                path: format!("syscalls[{i}].names[{j}]"),
                msg: "empty syscall name".into(),
            });
        }
        if let Some((j, a)) = s
            .args
            .iter()
            .flatten()
            .enumerate()
            .find(|(_, a)| a.index > 5)
        {
            return Err(ProfileError::Field {
                path: format!("syscalls[{i}].args[{j}].index"),
                msg: format!("{}: system calls have arguments 0 to 5", a.index),
            });
        }
        if !applies(s, i, caps, host)? {
            continue;
        }
        let mut r = json!({"names": names, "action": s.action});
        if let Some(e) = s.errno_ret {
            r["errnoRet"] = json!(e);
        }
        if let Some(args) = s.args.as_ref().filter(|a| !a.is_empty()) {
            r["args"] = Value::Array(
                args.iter()
                    .map(|a| json!({"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op}))
                    .collect(),
            );
        }
        rules.push(r);
    }
    let mut out = json!({
        "defaultAction": p.default_action,
        "architectures": arches,
        "syscalls": rules,
    });
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if let Some(f) = p.flags.as_ref().filter(|f| !f.is_empty()) {
        out["flags"] = json!(f);
    }
    if let Some(l) = &p.listener_path {
        out["listenerPath"] = json!(l);
    }
    if let Some(m) = &p.listener_metadata {
        out["listenerMetadata"] = json!(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amd64() -> Host {
        Host {
            goarch: "amd64",
            scmp_arch: "SCMP_ARCH_X86_64",
            kernel: (6, 1),
        }
    }

    fn default_caps() -> Vec<String> {
        crate::containers::spec::DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// The rules naming `name`, as (action, args, errnoRet).
    fn rules_for(oci: &Value, name: &str) -> Vec<Value> {
        oci["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
            .cloned()
            .collect()
    }

    /// The kept conversion is the one for the capabilities asked for, whichever came before.
    #[test]
    fn the_kept_default_profile_follows_the_capabilities() {
        let plain: Vec<String> = vec!["CAP_CHOWN".into()];
        let admin: Vec<String> = vec!["CAP_CHOWN".into(), "CAP_SYS_ADMIN".into()];
        let fresh = |caps: &[String]| to_oci(builtin().unwrap(), caps, &Host::current()).unwrap();
        for caps in [&plain, &admin, &plain, &admin] {
            assert_eq!(default_for(caps).unwrap(), fresh(caps));
        }
        assert_ne!(
            fresh(&plain),
            fresh(&admin),
            "CAP_SYS_ADMIN allows more syscalls"
        );
    }

    #[test]
    fn default_profile_follows_dockers_policy() {
        let oci = to_oci(builtin().unwrap(), &default_caps(), &amd64()).unwrap();
        assert_eq!(oci["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(oci["defaultErrnoRet"], 1);
        assert_eq!(
            oci["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        for ordinary in [
            "read",
            "execve",
            "openat",
            "wait4",
            "arch_prctl",
            "modify_ldt",
        ] {
            assert_eq!(rules_for(&oci, ordinary).len(), 1, "{ordinary}");
        }
        for refused in [
            "unshare",
            "mount",
            "setns",
            "reboot",
            "init_module",
            "settimeofday",
        ] {
            assert!(rules_for(&oci, refused).is_empty(), "{refused} allowed");
        }
        // Architecture-specific rules of other machines are left out.
        assert!(rules_for(&oci, "s390_runtime_instr").is_empty());
        // clone: only without namespace flags, in argument 0.
        let clone = rules_for(&oci, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["args"][0]["index"], 0);
        assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone[0]["args"][0]["value"], 0x7e02_0000u64);
        let clone3 = rules_for(&oci, "clone3");
        assert_eq!(clone3[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(clone3[0]["errnoRet"], libc::ENOSYS);
        // ptrace: from kernel 4.8 for everyone.
        assert_eq!(rules_for(&oci, "ptrace").len(), 1);
        let old = Host {
            kernel: (4, 4),
            ..amd64()
        };
        let oci_old = to_oci(builtin().unwrap(), &default_caps(), &old).unwrap();
        assert!(rules_for(&oci_old, "ptrace").is_empty());
        let personality = rules_for(&oci, "personality");
        assert_eq!(personality.len(), 5);
        assert!(personality
            .iter()
            .all(|r| r["args"][0]["op"] == "SCMP_CMP_EQ"));
    }

    #[test]
    fn capabilities_unlock_their_syscalls() {
        let mut caps = default_caps();
        caps.push("CAP_SYS_ADMIN".into());
        caps.push("CAP_SYS_TIME".into());
        let oci = to_oci(builtin().unwrap(), &caps, &amd64()).unwrap();
        for name in [
            "unshare",
            "mount",
            "umount2",
            "setns",
            "settimeofday",
            "clock_settime",
        ] {
            assert_eq!(rules_for(&oci, name).len(), 1, "{name}");
        }
        // clone and clone3 unrestricted: no argument rule, no ENOSYS.
        let clone = rules_for(&oci, "clone");
        assert!(clone.iter().all(|r| r.get("args").is_none()));
        assert!(rules_for(&oci, "clone3")
            .iter()
            .all(|r| r["action"] == "SCMP_ACT_ALLOW"));
        // CAP_SYS_CHROOT is a default capability, dropping it drops chroot.
        let mut fewer = default_caps();
        fewer.retain(|c| c != "CAP_SYS_CHROOT");
        let oci = to_oci(builtin().unwrap(), &fewer, &amd64()).unwrap();
        assert!(rules_for(&oci, "chroot").is_empty());
    }

    #[test]
    fn default_profile_compiles_with_libseccomp() {
        let oci = to_oci(builtin().unwrap(), &default_caps(), &Host::current()).unwrap();
        let spec: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(oci).unwrap();
        let program = berth_runtime::security::seccomp::compile(&spec, None).unwrap();
        assert!(!program.is_empty());
    }

    #[test]
    fn options_choose_the_profile() {
        let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(choice(&o(&[])), Choice::Default);
        assert_eq!(choice(&o(&["seccomp=unconfined"])), Choice::Unconfined);
        assert_eq!(choice(&o(&["seccomp:unconfined"])), Choice::Unconfined);
        assert_eq!(choice(&o(&["seccomp=builtin"])), Choice::Default);
        assert_eq!(
            choice(&o(&["no-new-privileges", "seccomp={\"a\":1}"])),
            Choice::Custom("{\"a\":1}".into())
        );
        assert!(linux_seccomp(&o(&["seccomp=unconfined"]), false, &[])
            .unwrap()
            .is_none());
        assert!(linux_seccomp(&[], true, &[]).unwrap().is_none());
        assert!(linux_seccomp(&[], false, &[]).unwrap().is_some());
    }

    #[test]
    fn custom_profiles_convert_and_bad_ones_say_what_is_wrong() {
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13,"args":null},
                            {"names":["mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        let oci = to_oci(&p, &[], &amd64()).unwrap();
        assert_eq!(
            oci["syscalls"][0],
            json!({"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13})
        );
        assert_eq!(oci["architectures"], json!(["SCMP_ARCH_X86_64"]));

        let err = |j: &str| match parse(j) {
            Err(e) => e.to_string(),
            Ok(p) => to_oci(&p, &[], &amd64()).unwrap_err().to_string(),
        };
        let e = err(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#);
        assert!(
            e.contains("defaultAction") && e.contains("SCMP_ACT_NOPE"),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_BOGUS"}]}]}"#,
        );
        assert!(e.contains("syscalls[0].args[0].op"), "{e}");
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
        );
        assert!(e.contains("archMap"), "{e}");
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        assert!(e.contains("syscalls[0]") && e.contains("'names'"), "{e}");
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[{"index":7,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(e.contains("syscalls[0].args[0].index"), "{e}");
        let e = err("not json");
        assert!(e.contains("invalid seccomp profile"), "{e}");
        // What only the compiler knows is still a create-time error.
        let opt = vec![r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_KILL","errnoRet":1}]}"#.to_string()];
        let e = validate(&opt, &[]).unwrap_err().to_string();
        assert!(e.contains("errnoRet"), "{e}");
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("4.8"), Some((4, 8)));
        assert_eq!(kernel_version("x"), None);
    }
}
