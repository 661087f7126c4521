//! What this runtime supports, for `berth-runtime features` (runtime-spec features.json):
//! the seccomp actions, operators, architectures and filter flags, and the capability names.

use libseccomp::{ScmpAction, ScmpFilterContext};
use oci_spec::runtime::{Arch, Capability, LinuxSeccompAction, Seccomp};

use crate::error::{Error, Result};

const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

const OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

const ARCHS: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// Filter flags `linux.seccomp.flags` may carry, with their kernel bit.
const FLAGS: &[(&str, libc::c_ulong)] = &[
    ("SECCOMP_FILTER_FLAG_TSYNC", libc::SECCOMP_FILTER_FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", libc::SECCOMP_FILTER_FLAG_LOG),
    (
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    ),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    ),
];

fn parse<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// Whether the running kernel accepts a filter flag: with a NULL program the kernel answers
/// EFAULT after accepting the flags and EINVAL if it does not know them. Nothing is installed.
/// WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER, so it is probed with it.
pub fn kernel_supports_flag(flag: libc::c_ulong) -> bool {
    let mut flags = flag;
    if flag == libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    // SAFETY: a NULL program makes the kernel fail with EFAULT before installing anything.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    rc < 0 && nix::Error::last() == nix::Error::EFAULT
}

/// Architectures this libseccomp can add to a filter.
fn supported_archs() -> Result<Vec<Arch>> {
    let mut ctx = ScmpFilterContext::new(ScmpAction::Allow)
        .map_err(|e| Error::Seccomp(format!("create filter: {e}")))?;
    let mut archs = Vec::new();
    for name in ARCHS {
        let (Some(arch), Ok(scmp)) = (parse::<Arch>(name), name.parse::<libseccomp::ScmpArch>())
        else {
            continue;
        };
        let ok = ctx.is_arch_present(scmp).unwrap_or(false) || ctx.add_arch(scmp).is_ok();
        if ok {
            archs.push(arch);
        }
    }
    Ok(archs)
}

/// The `linux.seccomp` part of features.json.
pub fn seccomp() -> Result<Seccomp> {
    let actions: Vec<LinuxSeccompAction> = ACTIONS.iter().filter_map(|a| parse(a)).collect();
    let known: Vec<String> = FLAGS.iter().map(|(n, _)| n.to_string()).collect();
    let supported: Vec<String> = FLAGS
        .iter()
        .filter(|(_, bit)| kernel_supports_flag(*bit))
        .map(|(n, _)| n.to_string())
        .collect();
    let mut s = Seccomp::default();
    s.set_enabled(Some(true));
    s.set_actions(Some(actions));
    s.set_operators(Some(OPERATORS.iter().map(|o| o.to_string()).collect()));
    s.set_archs(Some(supported_archs()?));
    s.set_known_flags(Some(known));
    s.set_supported_flags(Some(supported));
    Ok(s)
}

/// Every capability name berth understands (`CAP_*`), for features.json.
pub fn capability_names() -> Vec<String> {
    let mut names: Vec<(u8, String)> = caps::all()
        .into_iter()
        .filter_map(|c| {
            let name = c.to_string();
            parse::<Capability>(&name).map(|oci| (super::capabilities::number(oci), name))
        })
        .collect();
    names.sort();
    names.into_iter().map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_complete_and_parse() {
        let s = seccomp().unwrap();
        assert_eq!(s.actions().as_ref().unwrap().len(), ACTIONS.len());
        let archs = s.archs().as_ref().unwrap();
        assert!(archs.contains(&Arch::ScmpArchX86_64) || archs.contains(&Arch::ScmpArchAarch64));
        // Every operator we advertise is one oci-spec parses.
        for op in OPERATORS {
            assert!(
                parse::<oci_spec::runtime::LinuxSeccompOperator>(op).is_some(),
                "{op}"
            );
        }
        // TSYNC exists since Linux 3.17: any kernel that runs containers supports it.
        let supported = s.supported_flags().as_ref().unwrap();
        assert!(supported.iter().any(|f| f == "SECCOMP_FILTER_FLAG_TSYNC"));
        let names = capability_names();
        assert_eq!(names.first().map(String::as_str), Some("CAP_CHOWN"));
        assert!(names.len() >= 41, "{names:?}");
    }
}
