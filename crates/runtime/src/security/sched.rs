//! CPU and I/O scheduling of the container process (runtime-spec 1.2 `process.scheduler`,
//! `process.ioPriority`) and the execution domain (`linux.personality`).

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Scheduler,
};

use crate::error::{Error, Result};

const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: u32 = 13;

/// ioprio_set's value for a class and level.
pub fn ioprio_value(prio: &LinuxIOPriority) -> Result<libc::c_int> {
    let class = match prio.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = prio.priority();
    if !(0..=7).contains(&level) {
        return Err(Error::config(
            "process.ioPriority.priority",
            format!("{level} is out of range 0..=7"),
        ));
    }
    Ok(((class << IOPRIO_CLASS_SHIFT) | level as u32) as libc::c_int)
}

/// Set the I/O priority of the calling process (the RT class needs CAP_SYS_ADMIN).
pub fn apply_io_priority(prio: &LinuxIOPriority) -> Result<()> {
    let value = ioprio_value(prio)?;
    // SAFETY: integer-only system call.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if rc < 0 {
        return Err(Error::sys(
            "ioprio_set (process.ioPriority)",
            nix::Error::last(),
        ));
    }
    Ok(())
}

/// The kernel's `struct sched_attr` (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// Translate `process.scheduler` into sched_setattr's argument, checking ranges.
pub fn sched_attr(s: &Scheduler) -> Result<SchedAttr> {
    use LinuxSchedulerPolicy::*;
    let policy = match s.policy() {
        SchedOther => 0,
        SchedFifo => 1,
        SchedRr => 2,
        SchedBatch => 3,
        SchedIso => 4,
        SchedIdle => 5,
        SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().as_deref().unwrap_or(&[]) {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(Error::config(
            "process.scheduler.nice",
            format!("{nice} is out of range -20..=19"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(s.policy(), SchedFifo | SchedRr);
    if realtime && !(1..=99).contains(&priority) {
        return Err(Error::config(
            "process.scheduler.priority",
            format!("{priority}: SCHED_FIFO and SCHED_RR need a priority in 1..=99"),
        ));
    }
    if !realtime && priority != 0 {
        return Err(Error::config(
            "process.scheduler.priority",
            format!("{priority}: only SCHED_FIFO and SCHED_RR take a priority (use 0)"),
        ));
    }
    if matches!(s.policy(), SchedDeadline)
        && (s.runtime().is_none() || s.deadline().is_none() || s.period().is_none())
    {
        return Err(Error::config(
            "process.scheduler",
            "SCHED_DEADLINE needs runtime, deadline and period",
        ));
    }
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        util_min: 0,
        util_max: 0,
    })
}

/// Set the scheduling policy and attributes of the calling thread (sched_setattr).
pub fn apply_scheduler(s: &Scheduler) -> Result<()> {
    let attr = sched_attr(s)?;
    // SAFETY: attr is a valid sched_attr whose size field matches the structure.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) };
    if rc < 0 {
        return Err(Error::sys(
            "sched_setattr (process.scheduler)",
            nix::Error::last(),
        ));
    }
    Ok(())
}

/// The persona value for personality(2).
pub fn persona(p: &LinuxPersonality) -> libc::c_ulong {
    match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    }
}

/// Warnings for the parent: personality flags are not supported (runc ignores them too).
pub fn check_personality(p: &LinuxPersonality) {
    if let Some(flags) = p.flags().as_ref().filter(|f| !f.is_empty()) {
        tracing::warn!("linux.personality.flags {flags:?} are not supported; ignored");
    }
}

/// Set the execution domain (LINUX or LINUX32) of the calling process.
pub fn apply_personality(p: &LinuxPersonality) -> Result<()> {
    // SAFETY: integer-only system call.
    let rc = unsafe { libc::personality(persona(p)) };
    if rc < 0 {
        return Err(Error::sys(
            "personality (linux.personality)",
            nix::Error::last(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioprio_encodes_class_and_level() {
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_IDLE","priority":7}"#).unwrap();
        assert_eq!(ioprio_value(&p).unwrap(), (3 << 13) | 7);
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_BE","priority":8}"#).unwrap();
        let err = ioprio_value(&p).unwrap_err().to_string();
        assert!(err.contains("process.ioPriority.priority"), "{err}");
    }

    #[test]
    fn scheduler_ranges_name_the_field() {
        let s: Scheduler = serde_json::from_str(r#"{"policy":"SCHED_FIFO"}"#).unwrap();
        let err = sched_attr(&s).unwrap_err().to_string();
        assert!(err.contains("process.scheduler.priority"), "{err}");
        let s: Scheduler = serde_json::from_str(r#"{"policy":"SCHED_OTHER","nice":25}"#).unwrap();
        let err = sched_attr(&s).unwrap_err().to_string();
        assert!(err.contains("process.scheduler.nice"), "{err}");
        let s: Scheduler = serde_json::from_str(
            r#"{"policy":"SCHED_BATCH","nice":5,"flags":["SCHED_RESET_ON_FORK"]}"#,
        )
        .unwrap();
        let a = sched_attr(&s).unwrap();
        assert_eq!((a.policy, a.nice, a.flags, a.size), (3, 5, 1, 56));
    }
}
