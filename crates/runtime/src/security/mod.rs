//! Process security: capabilities, seccomp, rlimits, identity, no_new_privs, scheduling.
//!
//! Two halves:
//! - in the parent, before fork: [`check`] (field errors early) and [`seccomp::compile`];
//! - in the container's child, as the last step before execve: [`finalize_process`].
//!
//! The child half uses raw system calls on data the parent prepared, so it does not allocate
//! unless it fails and is safe right after fork.

use std::os::fd::OwnedFd;

use oci_spec::runtime::{LinuxPersonality, Process};

use crate::error::{Error, Result};

pub mod capabilities;
pub mod features;
pub mod identity;
pub mod rlimits;
pub mod sched;
pub mod seccomp;

pub use rlimits::apply_rlimits;

use capabilities::CapSets;

/// Everything in `process` (and `linux.personality`) that can be checked before fork, with
/// errors that name the field. [`seccomp::compile`] checks `linux.seccomp`.
pub fn check(process: &Process, personality: Option<&LinuxPersonality>) -> Result<()> {
    rlimits::check(process.rlimits().as_deref().unwrap_or(&[]))?;
    identity::check(process.user())?;
    if let Some(caps) = process.capabilities() {
        let sets = CapSets::from_spec(caps);
        sets.check()?;
        let last = capabilities::last_cap();
        let all = sets.bounding | sets.effective | sets.permitted | sets.inheritable | sets.ambient;
        let unknown = all
            & !CapSets {
                bounding: all,
                ..sets
            }
            .known_to_kernel(last)
            .bounding;
        if unknown != 0 {
            // runc ignores capabilities the kernel does not know; so does finalize_process.
            tracing::warn!(
                "process.capabilities: {} unknown to this kernel; ignored",
                capabilities::names(unknown)
            );
        }
    }
    if let Some(prio) = process.io_priority() {
        sched::ioprio_value(prio)?;
    }
    if let Some(s) = process.scheduler() {
        sched::sched_attr(s)?;
    }
    if let Some(p) = personality {
        sched::check_personality(p);
    }
    Ok(())
}

/// Called in the container's child as the LAST step before execve (after rootfs, pivot_root,
/// console and the exec fifo are set up).
///
/// Order, as runc: rlimits; umask; personality, I/O priority and scheduler (while privileged);
/// PR_SET_KEEPCAPS; drop the bounding set; without noNewPrivileges load seccomp now (it still
/// has CAP_SYS_ADMIN); setgroups, setgid, setuid; effective/permitted/inheritable, then ambient;
/// PR_SET_NO_NEW_PRIVS if asked; with noNewPrivileges load seccomp last, so the filter does not
/// have to allow the runtime's own setup calls.
///
/// A profile that uses SCMP_ACT_NOTIFY needs [`finalize_process_with_listener`].
pub fn finalize_process(
    process: &Process,
    seccomp: Option<&seccomp::Program>,
    personality: Option<&LinuxPersonality>,
) -> Result<()> {
    finalize_process_with_listener(process, seccomp, personality, &mut |_fd| {
        Err(Error::Seccomp(
            "the profile uses SCMP_ACT_NOTIFY: call finalize_process_with_listener".into(),
        ))
    })
}

/// [`finalize_process`], and if the seccomp profile needs a listener, load it with
/// SECCOMP_FILTER_FLAG_NEW_LISTENER and hand the notification fd to `on_listener` right away
/// (e.g. send it to the parent over the sync socket). The fd is close-on-exec; `on_listener`
/// may drop it once sent. Note that with noNewPrivileges false the filter is already active
/// while the identity is changed, so `on_listener` runs under it.
pub fn finalize_process_with_listener(
    process: &Process,
    seccomp: Option<&seccomp::Program>,
    personality: Option<&LinuxPersonality>,
    on_listener: &mut dyn FnMut(OwnedFd) -> Result<()>,
) -> Result<()> {
    apply_rlimits(process.rlimits().as_deref().unwrap_or(&[]))?;
    identity::apply_umask(process.user());
    if let Some(p) = personality {
        sched::apply_personality(p)?;
    }
    if let Some(prio) = process.io_priority() {
        sched::apply_io_priority(prio)?;
    }
    if let Some(s) = process.scheduler() {
        sched::apply_scheduler(s)?;
    }

    // Absent `process.capabilities` leaves the capability sets alone, as runc does.
    let last = capabilities::last_cap();
    let caps = process
        .capabilities()
        .as_ref()
        .map(|c| CapSets::from_spec(c).known_to_kernel(last));
    let no_new_privs = process.no_new_privileges().unwrap_or(false);

    capabilities::set_keep_caps(true)?;
    if let Some(caps) = &caps {
        capabilities::drop_bounding(caps.bounding, last)?;
    }
    if !no_new_privs {
        load_seccomp(seccomp, on_listener)?;
    }
    identity::apply_user(process.user())?;
    capabilities::set_keep_caps(false)?;
    if let Some(caps) = &caps {
        capabilities::set_eff_perm_inh(caps)?;
        capabilities::set_ambient(caps.raisable_ambient(), last)?;
    }
    if no_new_privs {
        set_no_new_privs()?;
        load_seccomp(seccomp, on_listener)?;
    }
    Ok(())
}

fn load_seccomp(
    program: Option<&seccomp::Program>,
    on_listener: &mut dyn FnMut(OwnedFd) -> Result<()>,
) -> Result<()> {
    match program {
        None => Ok(()),
        Some(p) if p.needs_listener() => on_listener(p.load_with_listener()?),
        Some(p) => p.load(),
    }
}

/// PR_SET_NO_NEW_PRIVS: execve can no longer grant privileges (setuid bits, file capabilities).
pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: integer-only prctl.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc < 0 {
        return Err(Error::sys("prctl(PR_SET_NO_NEW_PRIVS)", nix::Error::last()));
    }
    Ok(())
}
