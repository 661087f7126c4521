//! A classic-BPF interpreter for seccomp programs, for tests: it runs a filter on one
//! `struct seccomp_data` the way the kernel would. It knows only what libseccomp emits and what
//! the compaction pass writes, and panics on anything else (an unknown opcode, a jump out of the
//! program, a misaligned load), so a test cannot pass by running nothing.

use libc::sock_filter;

/// `struct seccomp_data` (linux/seccomp.h).
#[derive(Debug, Clone, Copy)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// The struct's bytes as the kernel lays them out (native endian).
    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        b[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        b
    }
}

/// The 32-bit word at byte offset `off`; the kernel only allows aligned loads inside the struct.
fn word(bytes: &[u8; 64], off: u32) -> u32 {
    assert!(
        off.is_multiple_of(4) && off < 64,
        "load at bad offset {off}"
    );
    let o = off as usize;
    u32::from_ne_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]])
}

/// Run `filter` on `data`; the value of the `ret` it reaches.
pub fn run(filter: &[sock_filter], data: &SeccompData) -> u32 {
    let bytes = data.bytes();
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    loop {
        let f = filter
            .get(pc)
            .unwrap_or_else(|| panic!("ran off the end of the program at {pc}"));
        let next = pc + 1;
        let src = if f.code & 0x08 != 0 { x } else { f.k };
        match f.code {
            0x20 => a = word(&bytes, f.k), // ld w abs
            0x80 => a = 64,                // ld w len
            0x81 => x = 64,                // ldx w len
            0x00 => a = f.k,               // ld imm
            0x01 => x = f.k,               // ldx imm
            0x60 => a = mem[f.k as usize], // ld mem
            0x61 => x = mem[f.k as usize], // ldx mem
            0x02 => mem[f.k as usize] = a, // st
            0x03 => mem[f.k as usize] = x, // stx
            0x04 | 0x0c => a = a.wrapping_add(src),
            0x14 | 0x1c => a = a.wrapping_sub(src),
            0x44 | 0x4c => a |= src,
            0x54 | 0x5c => a &= src,
            0xa4 | 0xac => a ^= src,
            0x64 | 0x6c => a = a.checked_shl(src).unwrap_or(0),
            0x74 | 0x7c => a = a.checked_shr(src).unwrap_or(0),
            0x84 => a = a.wrapping_neg(),
            0x07 => x = a, // tax
            0x87 => a = x, // txa
            0x06 => return f.k,
            0x16 => return a,
            0x05 => {
                pc = next + f.k as usize;
                continue;
            }
            0x15 | 0x1d | 0x25 | 0x2d | 0x35 | 0x3d | 0x45 | 0x4d => {
                let taken = match f.code & 0xf0 {
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    _ => a & src != 0,
                };
                pc = next + if taken { f.jt } else { f.jf } as usize;
                continue;
            }
            code => panic!("opcode {code:#06x} at {pc} is not known to the test interpreter"),
        }
        pc = next;
    }
}

/// One line per instruction, for failure messages.
pub fn disasm(filter: &[sock_filter]) -> String {
    filter
        .iter()
        .enumerate()
        .map(|(i, f)| {
            format!(
                "{i:4}: code={:#06x} jt={:3} jf={:3} k={:#x}\n",
                f.code, f.jt, f.jf, f.k
            )
        })
        .collect()
}
