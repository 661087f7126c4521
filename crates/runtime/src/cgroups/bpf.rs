//! cgroup v2 device control: the rules compiled to a small BPF_PROG_TYPE_CGROUP_DEVICE program,
//! loaded with bpf(BPF_PROG_LOAD) and attached to the cgroup with BPF_F_ALLOW_MULTI.
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }` where
//! access_type = (access << 16) | type. It walks the rules from last to first keeping the set of
//! requested access bits not yet decided: a matching deny rule that covers an undecided bit
//! denies; a matching allow rule decides its bits, and once none remain the access is allowed.
//! Bits no rule decides are denied. That is "for each bit, the last matching rule wins".

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::devices::{DeviceKind, DeviceRule};
use super::fsutil::cgroup_err;
use crate::error::Result;

/// One eBPF instruction as the kernel lays it out (little-endian x86_64/aarch64).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

// Opcodes used (class | op | source).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_X: u8 = 0xbc;
const ALU64_MOV_K: u8 = 0xb7;
const JMP_JEQ_K: u8 = 0x15;
const JMP_JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

// Registers: r1 = ctx, r2 = device type, r3 = undecided access bits, r4 = major, r5 = minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;

const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// Compile `rules` (in spec order) to a device program.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        prog.extend(rule_block(rule));
    }
    prog.push(insn(ALU64_MOV_K, R0, 0, 0, 0));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

/// The instructions for one rule; every jump with `off == SKIP` goes to the next rule.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    const SKIP: i16 = i16::MIN;
    let mut b = Vec::new();
    match rule.kind {
        DeviceKind::All => {}
        DeviceKind::Char => b.push(insn(JMP_JNE_K, R2, 0, SKIP, DEV_CHAR)),
        DeviceKind::Block => b.push(insn(JMP_JNE_K, R2, 0, SKIP, DEV_BLOCK)),
    }
    if let Some(major) = rule.major {
        b.push(insn(JMP_JNE_K, R4, 0, SKIP, major as i32));
    }
    if let Some(minor) = rule.minor {
        b.push(insn(JMP_JNE_K, R5, 0, SKIP, minor as i32));
    }
    // Does the rule cover any bit still undecided?
    b.push(insn(ALU32_MOV_X, R6, R3, 0, 0));
    b.push(insn(ALU32_AND_K, R6, 0, 0, i32::from(rule.access)));
    b.push(insn(JMP_JEQ_K, R6, 0, SKIP, 0));
    if rule.allow {
        b.push(insn(ALU32_AND_K, R3, 0, 0, !i32::from(rule.access)));
        b.push(insn(JMP_JNE_K, R3, 0, SKIP, 0));
        b.push(insn(ALU64_MOV_K, R0, 0, 0, 1));
    } else {
        b.push(insn(ALU64_MOV_K, R0, 0, 0, 0));
    }
    b.push(insn(EXIT, 0, 0, 0, 0));
    let len = b.len();
    for (i, ins) in b.iter_mut().enumerate() {
        if ins.off == SKIP {
            ins.off = (len - i - 1) as i16;
        }
    }
    b
}

// bpf(2) commands and constants from linux/bpf.h.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_F_REPLACE: u32 = 4;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a live, fully initialised repr(C) prefix of union bpf_attr and its size is
    // passed along; the kernel zero-extends what it does not receive.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned_fd(rc: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(rc as i32) }
}

/// Load a device program; on failure the verifier's log is part of the error.
pub fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"berth_dev");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(first) => {
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
                return Ok(owned_fd(fd));
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let log = String::from_utf8_lossy(&log[..end]);
            Err(cgroup_err(
                "bpf",
                format!("load device program: {first}; verifier: {}", log.trim()),
            ))
        }
    }
}

fn open_dir(dir: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| cgroup_err(dir, format!("open: {e}")))
}

/// IDs of the device programs attached directly to the cgroup at `dir`.
pub fn attached_program_ids(dir: &Path) -> Result<Vec<u32>> {
    let cg = open_dir(dir)?;
    query(&cg).map_err(|e| cgroup_err(dir, format!("query device programs: {e}")))
}

fn query(cg: &File) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr {
        prog_id: id,
        ..Default::default()
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(owned_fd)
}

fn attach(cg: &File, prog: &OwnedFd, flags: u32, replace: Option<&OwnedFd>) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        replace_bpf_fd: replace.map_or(0, |fd| fd.as_raw_fd() as u32),
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

fn detach(cg: &File, prog: &OwnedFd) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// Make `rules` the device policy of the cgroup at `dir`, replacing any program attached before.
/// The new program is attached before the old one goes, so there is never a moment without one.
pub fn apply_rules(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let prog = load(&program(rules)).map_err(|e| cgroup_err(dir, e.to_string()))?;
    let cg = open_dir(dir)?;
    let old = query(&cg).map_err(|e| cgroup_err(dir, format!("query device programs: {e}")))?;
    if let [only] = old[..] {
        if let Ok(old_fd) = prog_fd_by_id(only) {
            let flags = BPF_F_ALLOW_MULTI | BPF_F_REPLACE;
            if attach(&cg, &prog, flags, Some(&old_fd)).is_ok() {
                return Ok(());
            }
        }
    }
    attach(&cg, &prog, BPF_F_ALLOW_MULTI, None)
        .map_err(|e| cgroup_err(dir, format!("attach device program: {e}")))?;
    for id in old {
        match prog_fd_by_id(id).and_then(|fd| detach(&cg, &fd)) {
            Ok(()) => {}
            // Detached by someone else meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                return Err(cgroup_err(
                    dir,
                    format!("detach old device program {id}: {e}"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::{DeviceRule, ACCESS_ALL, ACCESS_READ};

    /// Run the generated program the way the kernel would, to check its logic without a kernel.
    fn run(prog: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | kind, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let imm32 = i.imm as u32 as u64;
            pc += 1;
            let jump = |cond: bool, pc: &mut usize| {
                if cond {
                    *pc = (*pc as i64 + i64::from(i.off)) as usize;
                }
            };
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                ALU32_AND_K => r[dst] = (r[dst] as u32 as u64) & imm32,
                ALU32_RSH_K => r[dst] = (r[dst] as u32 >> i.imm) as u64,
                ALU32_MOV_X => r[dst] = r[src] as u32 as u64,
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP_JEQ_K => jump(r[dst] == i.imm as i64 as u64, &mut pc),
                JMP_JNE_K => jump(r[dst] != i.imm as i64 as u64, &mut pc),
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn last_matching_rule_wins_per_access_bit() {
        let rules = [
            DeviceRule::deny_all(),
            DeviceRule::allow_char(1, None),
            DeviceRule {
                allow: false,
                kind: DeviceKind::Char,
                major: Some(1),
                minor: Some(5),
                access: ACCESS_READ,
            },
        ];
        let p = program(&rules);
        let (c, rw, r, w) = (DEV_CHAR as u32, 6, 2, 4);
        assert_eq!(run(&p, c, rw, 1, 3), 1, "1:3 allowed by the 1:* rule");
        assert_eq!(
            run(&p, c, r, 1, 5),
            0,
            "read of 1:5 denied by the last rule"
        );
        assert_eq!(run(&p, c, w, 1, 5), 1, "write of 1:5 still allowed");
        assert_eq!(run(&p, c, rw, 1, 5), 0, "rw of 1:5 needs both bits");
        assert_eq!(
            run(&p, DEV_BLOCK as u32, r, 1, 3),
            0,
            "block 1:3 not allowed"
        );
        assert_eq!(run(&p, c, r, 2, 0), 0, "default deny");
    }

    #[test]
    fn allow_all_then_nothing_else() {
        let all = DeviceRule {
            allow: true,
            access: ACCESS_ALL,
            ..DeviceRule::deny_all()
        };
        let p = program(&[all]);
        assert_eq!(run(&p, DEV_BLOCK as u32, 7, 8, 0), 1);
        assert_eq!(run(&program(&[]), DEV_CHAR as u32, 2, 1, 3), 0);
    }
}
