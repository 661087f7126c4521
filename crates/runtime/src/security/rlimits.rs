//! `process.rlimits`: POSIX resource limits, set with setrlimit(2) in the container's child.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use crate::error::{Error, Result};

/// The kernel's resource number for an rlimit type.
pub fn resource(typ: PosixRlimitType) -> libc::c_int {
    use PosixRlimitType::*;
    (match typ {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

/// Each type at most once (the runtime spec requires an error for duplicates) and soft <= hard.
pub fn check(rlimits: &[PosixRlimit]) -> Result<()> {
    for (i, r) in rlimits.iter().enumerate() {
        if r.soft() > r.hard() {
            return Err(Error::config(
                format!("process.rlimits[{i}]"),
                format!(
                    "{}: soft limit {} is above hard limit {}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        if let Some(j) = rlimits[..i].iter().position(|o| o.typ() == r.typ()) {
            return Err(Error::config(
                format!("process.rlimits[{i}]"),
                format!("{} is already set by process.rlimits[{j}]", r.typ()),
            ));
        }
    }
    Ok(())
}

/// Apply every limit to the calling process. Raising a hard limit needs CAP_SYS_RESOURCE, so this
/// runs before capabilities are dropped. Allocation-free unless it fails.
pub fn apply_rlimits(rlimits: &[PosixRlimit]) -> Result<()> {
    check(rlimits)?;
    for (i, r) in rlimits.iter().enumerate() {
        let limit = libc::rlimit {
            rlim_cur: r.soft() as libc::rlim_t,
            rlim_max: r.hard() as libc::rlim_t,
        };
        // SAFETY: limit is a valid rlimit for the duration of the call.
        let rc = unsafe { libc::setrlimit(resource(r.typ()) as _, &limit) };
        if rc < 0 {
            let err = nix::Error::last();
            return Err(Error::sys(
                format!(
                    "setrlimit {} (process.rlimits[{i}]) soft={} hard={}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                ),
                err,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rl(json: &str) -> Vec<PosixRlimit> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn soft_above_hard_names_the_entry() {
        let r = rl(r#"[{"type":"RLIMIT_CORE","soft":0,"hard":0},
                       {"type":"RLIMIT_NOFILE","soft":10,"hard":5}]"#);
        let err = check(&r).unwrap_err().to_string();
        assert!(err.contains("process.rlimits[1]"), "{err}");
    }

    #[test]
    fn duplicate_types_are_rejected() {
        let r = rl(r#"[{"type":"RLIMIT_NOFILE","soft":1,"hard":5},
                       {"type":"RLIMIT_NOFILE","soft":2,"hard":5}]"#);
        let err = check(&r).unwrap_err().to_string();
        assert!(err.contains("process.rlimits[1]"), "{err}");
        assert!(err.contains("process.rlimits[0]"), "{err}");
    }

    #[test]
    fn every_type_has_a_distinct_resource() {
        let all: Vec<PosixRlimitType> = serde_json::from_str(
            r#"["RLIMIT_CPU","RLIMIT_FSIZE","RLIMIT_DATA","RLIMIT_STACK","RLIMIT_CORE",
                "RLIMIT_RSS","RLIMIT_NPROC","RLIMIT_NOFILE","RLIMIT_MEMLOCK","RLIMIT_AS",
                "RLIMIT_LOCKS","RLIMIT_SIGPENDING","RLIMIT_MSGQUEUE","RLIMIT_NICE",
                "RLIMIT_RTPRIO","RLIMIT_RTTIME"]"#,
        )
        .unwrap();
        let mut nums: Vec<_> = all.iter().map(|t| resource(*t)).collect();
        nums.sort();
        nums.dedup();
        assert_eq!(nums.len(), 16);
        assert_eq!(nums, (0..16).collect::<Vec<_>>());
    }
}
