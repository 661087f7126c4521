//! `linux.seccomp`: compile the profile to classic BPF in the parent, load it in the child.
//!
//! libseccomp builds the filter; we export its BPF and keep it, so the child only needs one
//! seccomp(2) call with a `sock_fprog` pointing at memory it already has (no allocation, no
//! libseccomp after fork). Compiling a large profile (Docker's default has ~350 syscalls)
//! takes milliseconds, so the BPF is cached on disk keyed by a hash of the profile.
//!
//! libseccomp's program tests syscall numbers one `jeq` at a time; [`compact`] rewrites those runs
//! into range searches before caching, since the kernel's load time grows with program length.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use sha2::{Digest, Sha256};

use crate::error::{Context, Error, Result};

mod compact;
#[cfg(test)]
mod compact_tests;
#[cfg(test)]
mod interp;

/// Bump when the way a profile becomes BPF changes, so old cache entries are not reused.
const COMPILER_REVISION: u32 = 2;
/// The kernel's limit on classic BPF program length (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;
/// Size of one `struct sock_filter`.
const INSN_SIZE: usize = std::mem::size_of::<libc::sock_filter>();
/// Cache files start with this, then the sha256 of the BPF, then the BPF.
const CACHE_MAGIC: &[u8; 8] = b"BERTHBPF";
/// The errno for SCMP_ACT_ERRNO / SCMP_ACT_TRACE without errnoRet (runc uses EPERM).
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// A compiled seccomp filter, ready to load without allocating.
#[derive(Debug, Clone)]
pub struct Program {
    filter: Vec<libc::sock_filter>,
    /// SECCOMP_FILTER_FLAG_* from `linux.seccomp.flags`.
    flags: libc::c_ulong,
    needs_listener: bool,
    default_action: LinuxSeccompAction,
    hash: String,
    from_cache: bool,
}

impl PartialEq for Program {
    fn eq(&self, other: &Self) -> bool {
        self.bpf_bytes() == other.bpf_bytes()
            && self.flags == other.flags
            && self.needs_listener == other.needs_listener
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    flags: libc::c_ulong,
    needs_listener: bool,
    default_action: LinuxSeccompAction,
    hash: String,
    bpf: String,
}

/// Compile `profile` to BPF. Call in the parent before fork so errors surface early.
///
/// With `cache_dir`, the BPF is cached as `<cache_dir>/<hash>.bpf`, where the hash covers the
/// profile's canonical JSON, the CPU architecture and the libseccomp version; a hit does not
/// touch libseccomp at all. The file is written atomically (temporary file + rename).
pub fn compile(profile: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<Program> {
    let needs_listener = check(profile)?;
    let flags = filter_flags(profile, needs_listener);
    let hash = cache_key(profile)?;
    let program = |filter, from_cache| Program {
        filter,
        flags,
        needs_listener,
        default_action: profile.default_action(),
        hash: hash.clone(),
        from_cache,
    };
    if let Some(dir) = cache_dir {
        if let Some(filter) = read_cache(&cache_path(dir, &hash)) {
            return Ok(program(filter, true));
        }
    }
    let filter = compact::compact(&libseccomp_filter(profile)?);
    if filter.len() > MAX_INSTRUCTIONS {
        return Err(Error::Seccomp(format!(
            "the profile compiles to {} BPF instructions; the kernel allows at most {MAX_INSTRUCTIONS}",
            filter.len()
        )));
    }
    if let Some(dir) = cache_dir {
        // A cache that cannot be written only costs time next start.
        if let Err(e) = write_cache(dir, &hash, &encode(&filter)) {
            tracing::warn!("seccomp cache: {e}");
        }
    }
    Ok(program(filter, false))
}

impl Program {
    /// Load the filter into the calling thread (and all threads with SECCOMP_FILTER_FLAG_TSYNC).
    /// Without no_new_privs this needs CAP_SYS_ADMIN. Allocation-free unless it fails.
    pub fn load(&self) -> Result<()> {
        if self.needs_listener {
            return Err(Error::Seccomp(
                "the profile uses SCMP_ACT_NOTIFY: load it with load_with_listener()".into(),
            ));
        }
        self.install(self.flags).map(|_| ())
    }

    /// Load with SECCOMP_FILTER_FLAG_NEW_LISTENER and return the notification fd (close-on-exec).
    /// The caller passes it to the seccomp agent at `linux.seccomp.listenerPath`
    /// (see [`send_to_agent`]) and closes its copy before execve.
    pub fn load_with_listener(&self) -> Result<OwnedFd> {
        let mut flags = self.flags | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            // TSYNC's "failing thread id" return value would be ambiguous with the fd.
            flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
        let fd = self.install(flags)?;
        // SAFETY: with NEW_LISTENER the kernel returns a new fd that we now own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
    }

    /// True when the profile uses SCMP_ACT_NOTIFY: use [`Program::load_with_listener`].
    pub fn needs_listener(&self) -> bool {
        self.needs_listener
    }

    /// The BPF program as the kernel's `struct sock_filter` bytes (native endian).
    pub fn bpf_bytes(&self) -> Vec<u8> {
        encode(&self.filter)
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.filter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filter.is_empty()
    }

    /// The cache key: hex sha256 over the profile, architecture and libseccomp version.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Whether this program came from the on-disk cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// The profile's defaultAction.
    pub fn default_action(&self) -> LinuxSeccompAction {
        self.default_action
    }

    /// The SECCOMP_FILTER_FLAG_* bits the filter is loaded with (without NEW_LISTENER).
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// The program as bytes, for a runtime that hands it to a re-executed child.
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = Wire {
            flags: self.flags,
            needs_listener: self.needs_listener,
            default_action: self.default_action,
            hash: self.hash.clone(),
            bpf: hex::encode(self.bpf_bytes()),
        };
        // A struct of plain fields always serializes.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// The inverse of [`Program::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Program> {
        let bad = |why: String| Error::Seccomp(format!("invalid serialized program: {why}"));
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let bpf = hex::decode(&wire.bpf).map_err(|e| bad(e.to_string()))?;
        let filter = decode(&bpf)
            .filter(|f| f.len() <= MAX_INSTRUCTIONS)
            .ok_or_else(|| bad(format!("{} bytes of BPF", bpf.len())))?;
        Ok(Program {
            filter,
            flags: wire.flags,
            needs_listener: wire.needs_listener,
            default_action: wire.default_action,
            hash: wire.hash,
            from_cache: false,
        })
    }

    fn install(&self, flags: libc::c_ulong) -> Result<libc::c_long> {
        let prog = libc::sock_fprog {
            len: self.filter.len() as libc::c_ushort,
            filter: self.filter.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prog points at our filter, which outlives the call; the kernel copies it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            let err = nix::Error::last();
            let hint = if err == nix::Error::EACCES {
                " (without noNewPrivileges the process needs CAP_SYS_ADMIN)"
            } else {
                ""
            };
            return Err(Error::sys(format!("seccomp(SET_MODE_FILTER){hint}"), err));
        }
        let tsync_only = flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0
            && flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0;
        if tsync_only && rc > 0 {
            return Err(Error::Seccomp(format!(
                "SECCOMP_FILTER_FLAG_TSYNC: thread {rc} could not be synchronized"
            )));
        }
        Ok(rc)
    }
}

/// Hand the listener fd to the seccomp agent listening on `listener_path`, as the runtime spec
/// describes: one message carrying the container process state JSON and the fd (SCM_RIGHTS).
/// `state.fds` must name the fd `"seccompFd"`.
pub fn send_to_agent(
    listener_path: &Path,
    state: &oci_spec::runtime::ContainerProcessState,
    fd: std::os::fd::BorrowedFd<'_>,
) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    let stream = UnixStream::connect(listener_path)
        .ctx(|| format!("connect to seccomp agent {}", listener_path.display()))?;
    let json = serde_json::to_vec(state)
        .map_err(|e| Error::Seccomp(format!("serialize container process state: {e}")))?;
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(&json)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let sent = sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .ctx(|| format!("send seccomp fd to {}", listener_path.display()))?;
    if sent != json.len() {
        return Err(Error::Seccomp(format!(
            "sent {sent} of {} bytes of state to {}",
            json.len(),
            listener_path.display()
        )));
    }
    Ok(())
}

/// Checks serde cannot do; errors name the field. Returns whether a listener is needed.
fn check(profile: &LinuxSeccomp) -> Result<bool> {
    let default = profile.default_action();
    if default == LinuxSeccompAction::ScmpActNotify {
        return Err(Error::config(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action (the runtime itself could not finish)",
        ));
    }
    if profile.default_errno_ret().is_some() && default != LinuxSeccompAction::ScmpActErrno {
        return Err(Error::config(
            "linux.seccomp.defaultErrnoRet",
            format!("only valid with defaultAction SCMP_ACT_ERRNO, not {default}"),
        ));
    }
    to_action(
        default,
        profile.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    let mut needs_listener = false;
    for (i, rule) in profile
        .syscalls()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let errno_field = format!("linux.seccomp.syscalls[{i}].errnoRet");
        to_action(rule.action(), rule.errno_ret(), &errno_field)?;
        if rule.errno_ret().is_some()
            && !matches!(
                rule.action(),
                LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
            )
        {
            return Err(Error::config(
                errno_field,
                format!(
                    "only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {}",
                    rule.action()
                ),
            ));
        }
        if rule.action() == LinuxSeccompAction::ScmpActNotify {
            needs_listener = true;
            // The child needs these to hand the fd to the agent; notifying them would deadlock.
            for (j, name) in rule.names().iter().enumerate() {
                if matches!(name.as_str(), "write" | "sendmsg") {
                    return Err(Error::config(
                        format!("linux.seccomp.syscalls[{i}].names[{j}]"),
                        format!("SCMP_ACT_NOTIFY cannot be used for {name}: the runtime needs it"),
                    ));
                }
            }
        }
        for (j, arg) in rule.args().as_deref().unwrap_or(&[]).iter().enumerate() {
            condition(arg, &format!("linux.seccomp.syscalls[{i}].args[{j}]"))?;
        }
    }
    if needs_listener && profile.listener_path().is_none() {
        return Err(Error::config(
            "linux.seccomp.listenerPath",
            "required when a rule uses SCMP_ACT_NOTIFY",
        ));
    }
    Ok(needs_listener)
}

fn filter_flags(profile: &LinuxSeccomp, needs_listener: bool) -> libc::c_ulong {
    let mut flags = 0;
    for f in profile.flags().as_deref().unwrap_or(&[]) {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // The kernel only accepts it together with a listener.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if needs_listener => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                tracing::debug!(
                    "seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without a listener; ignored"
                );
                0
            }
        };
    }
    flags
}

/// The libseccomp action for a profile action; `field` names the errnoRet for errors.
fn to_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
) -> Result<ScmpAction> {
    let code = |what: &str| -> Result<u16> {
        let v = errno_ret.unwrap_or(DEFAULT_ERRNO);
        u16::try_from(v)
            .map_err(|_| Error::config(field, format!("{what} {v} does not fit in 16 bits")))
    };
    use LinuxSeccompAction::*;
    Ok(match action {
        ScmpActKill | ScmpActKillThread => ScmpAction::KillThread,
        ScmpActKillProcess => ScmpAction::KillProcess,
        ScmpActTrap => ScmpAction::Trap,
        ScmpActErrno => ScmpAction::Errno(code("errno")? as i32),
        ScmpActTrace => ScmpAction::Trace(code("trace value")?),
        ScmpActLog => ScmpAction::Log,
        ScmpActAllow => ScmpAction::Allow,
        ScmpActNotify => ScmpAction::Notify,
    })
}

/// One argument condition. `value` is the mask and `valueTwo` the datum for SCMP_CMP_MASKED_EQ
/// (libseccomp's and runc's reading of the spec).
fn condition(arg: &LinuxSeccompArg, field: &str) -> Result<ScmpArgCompare> {
    if arg.index() > 5 {
        return Err(Error::config(
            format!("{field}.index"),
            format!("{}: system calls have arguments 0..=5", arg.index()),
        ));
    }
    let two = arg.value_two().unwrap_or(0);
    use LinuxSeccompOperator::*;
    let op = match arg.op() {
        ScmpCmpNe => ScmpCompareOp::NotEqual,
        ScmpCmpLt => ScmpCompareOp::Less,
        ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        ScmpCmpEq => ScmpCompareOp::Equal,
        ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        ScmpCmpGt => ScmpCompareOp::Greater,
        ScmpCmpMaskedEq => {
            return Ok(ScmpArgCompare::new(
                arg.index() as u32,
                ScmpCompareOp::MaskedEqual(arg.value()),
                two,
            ))
        }
    };
    if two != 0 {
        return Err(Error::config(
            format!("{field}.valueTwo"),
            format!(
                "only SCMP_CMP_MASKED_EQ takes a second value, not {}",
                arg.op()
            ),
        ));
    }
    Ok(ScmpArgCompare::new(arg.index() as u32, op, arg.value()))
}

fn to_scmp_arch(arch: Arch, field: &str) -> Result<ScmpArch> {
    let name = serde_json::to_value(arch)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    name.parse::<ScmpArch>()
        .map_err(|_| Error::config(field, format!("{name} is not known to libseccomp")))
}

/// The program exactly as libseccomp exports it.
fn libseccomp_filter(profile: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>> {
    let bpf = build_bpf(profile)?;
    decode(&bpf).ok_or_else(|| {
        Error::Seccomp(format!(
            "libseccomp exported {} bytes of BPF, not a whole number of instructions",
            bpf.len()
        ))
    })
}

/// Build the filter with libseccomp and export its BPF.
fn build_bpf(profile: &LinuxSeccomp) -> Result<Vec<u8>> {
    let lib =
        |what: &str, e: libseccomp::error::SeccompError| Error::Seccomp(format!("{what}: {e}"));
    let default = to_action(
        profile.default_action(),
        profile.default_errno_ret(),
        "linux.seccomp",
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| lib("create filter", e))?;
    for (i, &arch) in profile
        .architectures()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let field = format!("linux.seccomp.architectures[{i}]");
        let arch = to_scmp_arch(arch, &field)?;
        let present = ctx.is_arch_present(arch).unwrap_or(false);
        if !present {
            ctx.add_arch(arch).map_err(|e| {
                Error::config(&field, format!("libseccomp cannot add {arch:?}: {e}"))
            })?;
        }
    }
    for (i, rule) in profile
        .syscalls()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let action = to_action(rule.action(), rule.errno_ret(), "")?;
        if action == default {
            // libseccomp refuses rules that repeat the default action; they change nothing.
            tracing::debug!("seccomp: linux.seccomp.syscalls[{i}] has the default action; skipped");
            continue;
        }
        let conds = rule
            .args()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .map(|(j, a)| {
                let field = format!("linux.seccomp.syscalls[{i}].args[{j}]");
                condition(a, &field).map(|c| (a.index(), c))
            })
            .collect::<Result<Vec<_>>>()?;
        for (j, name) in rule.names().iter().enumerate() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                // Profiles list syscalls of newer kernels and other arches; runc skips them too.
                tracing::debug!(
                    "seccomp: unknown syscall {name:?} (syscalls[{i}].names[{j}]) skipped"
                );
                continue;
            };
            add_rule(&mut ctx, action, syscall, &conds).map_err(|e| {
                Error::config(
                    format!("linux.seccomp.syscalls[{i}].names[{j}]"),
                    format!("libseccomp rejected the rule for {name}: {e}"),
                )
            })?;
        }
    }
    export(&ctx)
}

/// Conditions on distinct arguments are ANDed in one rule. libseccomp cannot AND two conditions on
/// the same argument, so then each becomes its own rule (OR), as runc does.
fn add_rule(
    ctx: &mut ScmpFilterContext,
    action: ScmpAction,
    syscall: ScmpSyscall,
    conds: &[(usize, ScmpArgCompare)],
) -> std::result::Result<(), libseccomp::error::SeccompError> {
    if conds.is_empty() {
        ctx.add_rule(action, syscall)?;
        return Ok(());
    }
    let distinct = conds
        .iter()
        .enumerate()
        .all(|(k, (index, _))| conds[..k].iter().all(|(other, _)| other != index));
    if distinct {
        let all: Vec<ScmpArgCompare> = conds.iter().map(|(_, c)| *c).collect();
        ctx.add_rule_conditional(action, syscall, &all)?;
    } else {
        for (_, c) in conds {
            ctx.add_rule_conditional(action, syscall, std::slice::from_ref(c))?;
        }
    }
    Ok(())
}

/// seccomp_export_bpf writes to an fd; a memfd avoids pipe-size limits and temporary files.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    let fd =
        nix::sys::memfd::memfd_create(c"berth-seccomp-bpf", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .ctx(|| "memfd_create for seccomp BPF".to_string())?;
    let mut file = fs::File::from(fd);
    ctx.export_bpf(&file)
        .map_err(|e| Error::Seccomp(format!("export BPF: {e}")))?;
    let mut bpf = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bpf))
        .ctx(|| "read exported seccomp BPF".to_string())?;
    Ok(bpf)
}

fn decode(bytes: &[u8]) -> Option<Vec<libc::sock_filter>> {
    if bytes.is_empty() || !bytes.chunks_exact(INSN_SIZE).remainder().is_empty() {
        return None;
    }
    Some(
        bytes
            .chunks_exact(INSN_SIZE)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

fn encode(filter: &[libc::sock_filter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(filter.len() * INSN_SIZE);
    for i in filter {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// sha256 over the canonical profile JSON (listener fields dropped: they do not change the BPF),
/// the CPU architecture, the libseccomp version and our compiler revision.
fn cache_key(profile: &LinuxSeccomp) -> Result<String> {
    let mut canonical = profile.clone();
    canonical.set_listener_path(None);
    canonical.set_listener_metadata(None);
    let json = serde_json::to_vec(&canonical)
        .map_err(|e| Error::Seccomp(format!("serialize profile for the cache key: {e}")))?;
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "unknown".into());
    let mut h = Sha256::new();
    h.update(&json);
    h.update(format!(
        "\0arch={}\0libseccomp={version}\0rev={COMPILER_REVISION}",
        std::env::consts::ARCH
    ));
    Ok(hex::encode(h.finalize()))
}

/// Where the cache keeps the BPF for `hash`.
pub fn cache_path(dir: &Path, hash: &str) -> PathBuf {
    dir.join(format!("{hash}.bpf"))
}

/// A cached program, if present and intact (checksum and size verified).
fn read_cache(path: &Path) -> Option<Vec<libc::sock_filter>> {
    let data = fs::read(path).ok()?;
    let rest = data.strip_prefix(CACHE_MAGIC.as_slice())?;
    if rest.len() < 32 {
        return None;
    }
    let (sum, bpf) = rest.split_at(32);
    if Sha256::digest(bpf).as_slice() != sum {
        tracing::warn!("seccomp cache {} is corrupt; recompiling", path.display());
        return None;
    }
    decode(bpf).filter(|f| f.len() <= MAX_INSTRUCTIONS)
}

fn write_cache(dir: &Path, hash: &str, bpf: &[u8]) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    fs::create_dir_all(dir).ctx(|| format!("create seccomp cache dir {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{hash}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut data = Vec::with_capacity(CACHE_MAGIC.len() + 32 + bpf.len());
    data.extend_from_slice(CACHE_MAGIC);
    data.extend_from_slice(&Sha256::digest(bpf));
    data.extend_from_slice(bpf);
    let dest = cache_path(dir, hash);
    let result = fs::write(&tmp, &data)
        .and_then(|_| fs::rename(&tmp, &dest))
        .ctx(|| format!("write seccomp cache {}", dest.display()));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn encode_decode_round_trip() {
        let p = compile(
            &profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#),
            None,
        )
        .unwrap();
        assert!(!p.is_empty());
        assert_eq!(
            decode(&p.bpf_bytes()).map(|f| encode(&f)),
            Some(p.bpf_bytes())
        );
        assert!(decode(&[1, 2, 3]).is_none());
        let back = Program::from_bytes(&p.to_bytes()).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.hash(), p.hash());
        assert!(Program::from_bytes(b"{}").is_err());
    }

    #[test]
    fn field_errors() {
        let cases = [
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO"},
                    {"names":["kill"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
                "linux.seccomp.syscalls[1].args[0].index",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],"action":"SCMP_ACT_ERRNO",
                    "args":[{"index":0,"value":1,"valueTwo":3,"op":"SCMP_CMP_EQ"}]}]}"#,
                "linux.seccomp.syscalls[0].args[0].valueTwo",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]}"#,
                "linux.seccomp.syscalls[0].errnoRet",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_KILL","defaultErrnoRet":1}"#,
                "linux.seccomp.defaultErrnoRet",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
                "linux.seccomp.listenerPath",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#,
                "linux.seccomp.defaultAction",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a.sock",
                    "syscalls":[{"names":["mkdir","write"],"action":"SCMP_ACT_NOTIFY"}]}"#,
                "linux.seccomp.syscalls[0].names[1]",
            ),
        ];
        for (json, field) in cases {
            let err = compile(&profile(json), None).unwrap_err().to_string();
            assert!(err.contains(field), "expected {field} in: {err}");
        }
    }

    #[test]
    fn unknown_syscalls_are_skipped_and_flags_kept() {
        let p = compile(
            &profile(
                r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                    "syscalls":[{"names":["no_such_syscall_xyz","read"],"action":"SCMP_ACT_ALLOW"}]}"#,
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            p.flags(),
            libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
        );
        assert!(!p.needs_listener());
    }
}
