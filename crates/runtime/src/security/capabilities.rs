//! Linux capabilities: the five sets of `process.capabilities` as bit masks, and the system
//! calls that apply them.
//!
//! The masks are computed without allocating and applied with raw `prctl`/`capset` calls, so
//! this runs safely in a freshly forked child. Capability names are checked when config.json is
//! parsed (`oci_spec`'s `Capability` rejects unknown names, and `spec::parse` names the field,
//! e.g. `process.capabilities.bounding[2]`); [`CapSets::check`] adds what serde cannot know.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use crate::error::{Error, Result};

/// The kernel's number for a capability (`CAP_CHOWN` = 0 ... `CAP_CHECKPOINT_RESTORE` = 40).
pub fn number(cap: Capability) -> u8 {
    use Capability::*;
    match cap {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// The capability sets of a process, one bit per capability number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// All capabilities numbered `0..=last`.
pub fn kernel_mask(last: u8) -> u64 {
    if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

/// Bit mask of a set of capabilities; a missing set is empty.
pub fn mask(set: Option<&Capabilities>) -> u64 {
    set.map_or(0, |caps| {
        caps.iter().fold(0u64, |m, &c| m | (1u64 << number(c)))
    })
}

impl CapSets {
    /// The masks `process.capabilities` asks for. A set that is absent is empty (runc does the same).
    pub fn from_spec(caps: &LinuxCapabilities) -> CapSets {
        CapSets {
            bounding: mask(caps.bounding().as_ref()),
            effective: mask(caps.effective().as_ref()),
            permitted: mask(caps.permitted().as_ref()),
            inheritable: mask(caps.inheritable().as_ref()),
            ambient: mask(caps.ambient().as_ref()),
        }
    }

    /// Limit every set to the capabilities the running kernel knows (numbers `0..=last`).
    /// runc also ignores capabilities the kernel does not support.
    pub fn known_to_kernel(self, last: u8) -> CapSets {
        let known = kernel_mask(last);
        CapSets {
            bounding: self.bounding & known,
            effective: self.effective & known,
            permitted: self.permitted & known,
            inheritable: self.inheritable & known,
            ambient: self.ambient & known,
        }
    }

    /// Ambient capabilities the kernel will accept: each must also be permitted and inheritable.
    pub fn raisable_ambient(&self) -> u64 {
        self.ambient & self.permitted & self.inheritable
    }

    /// Consistency the kernel would otherwise refuse with a bare EPERM at `capset` time.
    /// Run this in the parent so the user sees which field is wrong.
    pub fn check(&self) -> Result<()> {
        let extra = self.effective & !self.permitted;
        if extra != 0 {
            return Err(Error::config(
                "process.capabilities.effective",
                format!(
                    "{} not in process.capabilities.permitted (the kernel refuses effective \
                     capabilities that are not permitted)",
                    names(extra)
                ),
            ));
        }
        let extra = self.inheritable & !self.bounding & !self.permitted;
        if extra != 0 {
            return Err(Error::config(
                "process.capabilities.inheritable",
                format!(
                    "{} neither in bounding nor permitted (the kernel refuses them)",
                    names(extra)
                ),
            ));
        }
        let dropped = self.ambient & !self.raisable_ambient();
        if dropped != 0 {
            // runc warns and carries on; so do we.
            tracing::warn!(
                "process.capabilities.ambient: {} not both permitted and inheritable; not raised",
                names(dropped)
            );
        }
        Ok(())
    }
}

/// Human-readable names of the capabilities in `mask`, for messages.
pub fn names(mask: u64) -> String {
    (0..64u8)
        .filter(|n| mask & (1u64 << n) != 0)
        .map(|n| match caps::all().into_iter().find(|c| c.index() == n) {
            Some(c) => c.to_string(),
            None => format!("capability #{n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The highest capability number the running kernel knows, found by probing the bounding set
/// (no file reads, so it works after pivot_root without /proc). Probed once per process (42
/// prctls): a container's process inherits the answer its creator found.
pub fn last_cap() -> u8 {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0 = not probed yet (every kernel knows more than CAP_CHOWN).
    static LAST: AtomicU8 = AtomicU8::new(0);
    match LAST.load(Ordering::Relaxed) {
        0 => {
            let last = probe_last_cap();
            LAST.store(last, Ordering::Relaxed);
            last
        }
        known => known,
    }
}

fn probe_last_cap() -> u8 {
    let mut last = 0u8;
    for n in 0..64u8 {
        // SAFETY: PR_CAPBSET_READ only reads; it fails with EINVAL past the last capability.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_READ, n as libc::c_ulong, 0, 0, 0) };
        if rc < 0 {
            break;
        }
        last = n;
    }
    last
}

fn prctl(option: libc::c_int, arg2: libc::c_ulong, what: &'static str) -> Result<()> {
    // SAFETY: the prctl options used here take integer arguments only.
    let rc = unsafe { libc::prctl(option, arg2, 0, 0, 0) };
    if rc < 0 {
        return Err(Error::sys(what, nix::Error::last()));
    }
    Ok(())
}

/// Keep permitted capabilities across the coming setuid (PR_SET_KEEPCAPS).
pub fn set_keep_caps(keep: bool) -> Result<()> {
    prctl(
        libc::PR_SET_KEEPCAPS,
        keep as libc::c_ulong,
        "prctl(PR_SET_KEEPCAPS)",
    )
}

/// Drop every capability not in `bounding` from the bounding set (needs CAP_SETPCAP).
pub fn drop_bounding(bounding: u64, last: u8) -> Result<()> {
    for n in 0..=last {
        if bounding & (1u64 << n) != 0 {
            continue;
        }
        // SAFETY: integer-only prctl.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) };
        if rc < 0 {
            let err = nix::Error::last();
            return Err(Error::sys(
                format!("drop capability #{n} from the bounding set"),
                err,
            ));
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Set effective, permitted and inheritable for the calling thread (raw capset, version 3).
pub fn set_eff_perm_inh(sets: &CapSets) -> Result<()> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let half = |m: u64, hi: bool| if hi { (m >> 32) as u32 } else { m as u32 };
    let data = [false, true].map(|hi| CapData {
        effective: half(sets.effective, hi),
        permitted: half(sets.permitted, hi),
        inheritable: half(sets.inheritable, hi),
    });
    // SAFETY: header and data are valid v3 structures that live across the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if rc < 0 {
        return Err(Error::sys(
            "capset (effective/permitted/inheritable)",
            nix::Error::last(),
        ));
    }
    Ok(())
}

/// Replace the ambient set with `ambient` (each capability must be permitted and inheritable).
pub fn set_ambient(ambient: u64, last: u8) -> Result<()> {
    // SAFETY: integer-only prctl.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc < 0 {
        return Err(Error::sys(
            "prctl(PR_CAP_AMBIENT_CLEAR_ALL)",
            nix::Error::last(),
        ));
    }
    for n in 0..=last {
        if ambient & (1u64 << n) == 0 {
            continue;
        }
        // SAFETY: integer-only prctl.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                n as libc::c_ulong,
                0,
                0,
            )
        };
        if rc < 0 {
            let err = nix::Error::last();
            return Err(Error::sys(format!("raise ambient capability #{n}"), err));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn numbers_match_the_kernel_headers_via_the_caps_crate() {
        // Every oci-spec capability, by its CAP_* name, must map to the caps crate's number.
        for c in caps::all() {
            let name = format!("\"{c}\"");
            let oci: Capability = match serde_json::from_str(&name) {
                Ok(oci) => oci,
                Err(e) => panic!("oci-spec does not know {name}: {e}"),
            };
            assert_eq!(number(oci), c.index(), "{name}");
        }
        assert_eq!(
            caps::Capability::from_str("CAP_SYS_ADMIN").unwrap().index(),
            number(Capability::SysAdmin)
        );
    }

    #[test]
    fn masks_and_ambient_rules() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_KILL","CAP_CHOWN"],"permitted":["CAP_KILL"],
                "inheritable":["CAP_KILL","CAP_CHOWN"],"ambient":["CAP_KILL","CAP_CHOWN"]}"#,
        )
        .unwrap();
        let sets = CapSets::from_spec(&caps);
        assert_eq!(sets.bounding, (1 << 5) | 1);
        assert_eq!(sets.effective, 0);
        assert_eq!(sets.raisable_ambient(), 1 << 5);
        assert!(sets.check().is_ok());
        assert_eq!(sets.known_to_kernel(4).bounding, 1);
        assert_eq!(names(sets.bounding), "CAP_CHOWN, CAP_KILL");
    }

    #[test]
    fn effective_outside_permitted_is_a_field_error() {
        let caps: LinuxCapabilities =
            serde_json::from_str(r#"{"effective":["CAP_KILL"],"permitted":[]}"#).unwrap();
        let err = CapSets::from_spec(&caps).check().unwrap_err().to_string();
        assert!(err.contains("process.capabilities.effective"), "{err}");
        assert!(err.contains("CAP_KILL"), "{err}");
    }
}
