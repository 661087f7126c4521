//! A peephole pass over libseccomp's BPF. libseccomp tests the syscall number with one
//! `jeq k` per rule, so Docker's default profile becomes ~1000 instructions, and the kernel
//! checks, converts and JITs every one of them at each container start. Here each run of such
//! `jeq`s becomes a binary search over ranges of numbers that ends at the same `ret` values.
//!
//! Conservative on purpose: only runs it fully understands are rewritten, everything else keeps
//! its meaning, and when anything is unexpected (an opcode, a jump out of range) the input is
//! returned unchanged. The result is never longer than the input.

use libc::sock_filter;

// Classic BPF opcode parts (linux/bpf_common.h), as u16 like `sock_filter.code`.
const CLASS_MASK: u16 = 0x07;
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const K: u16 = 0x00;
const X: u16 = 0x08;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;
const RET_A: u16 = 0x10;
const TAX: u16 = 0x00;
const TXA: u16 = 0x80;

/// Every ALU operation seccomp accepts, with K or X (DIV/MOD are checked by the kernel).
const ALU_OPS: [u16; 11] = [
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0,
];

/// The longest jump a conditional can encode (`jt`/`jf` are 8 bits).
const MAX_SHORT: usize = 255;

/// `filter` with every run of same-value `jeq k` tests replaced by a range search; the input
/// unchanged when it contains anything not understood or the result would not be shorter.
pub fn compact(filter: &[sock_filter]) -> Vec<sock_filter> {
    match try_compact(filter) {
        Some(out) if out.len() < filter.len() => out,
        _ => filter.to_vec(),
    }
}

/// Where a jump goes in the program being built: an index into its item list.
type Target = usize;

/// An instruction with absolute targets. For JA the target is `jt`; non-jumps use neither.
#[derive(Debug, Clone, Copy)]
struct Item {
    code: u16,
    k: u32,
    jt: Target,
    jf: Target,
}

fn is_cond_jump(code: u16) -> bool {
    code & CLASS_MASK == JMP && code & 0xf0 != JA
}

fn is_ja(code: u16) -> bool {
    code == JMP | JA
}

/// Opcodes the kernel's seccomp checker accepts; anything else means we do not understand the
/// program.
fn known(code: u16) -> bool {
    match code & CLASS_MASK {
        LD => [LD | W | ABS, LD | W | LEN, LD | IMM, LD | MEM].contains(&code),
        LDX => [LDX | W | LEN, LDX | IMM, LDX | MEM].contains(&code),
        ST | STX => code & !CLASS_MASK == 0,
        ALU => code & !(0xf0 | X | CLASS_MASK) == 0 && ALU_OPS.contains(&(code & 0xf0)),
        JMP => {
            is_ja(code)
                || (code & !(0xf0 | X | CLASS_MASK) == 0
                    && [JEQ, JGT, JGE, JSET].contains(&(code & 0xf0)))
        }
        RET => code == RET | K || code == RET | RET_A,
        MISC => code == MISC | TAX || code == MISC | TXA,
        _ => false,
    }
}

/// The program with absolute targets, or None if an opcode is unknown or a jump leaves it.
fn decode(filter: &[sock_filter]) -> Option<Vec<Item>> {
    let n = filter.len();
    let mut out = Vec::with_capacity(n);
    for (pc, f) in filter.iter().enumerate() {
        if !known(f.code) {
            return None;
        }
        let next = pc + 1;
        let (jt, jf) = if is_ja(f.code) {
            let t = next.checked_add(usize::try_from(f.k).ok()?)?;
            (t, t)
        } else if is_cond_jump(f.code) {
            (next + f.jt as usize, next + f.jf as usize)
        } else {
            (next, next)
        };
        let falls_off = f.code & CLASS_MASK != RET && (jt >= n || jf >= n);
        if falls_off {
            return None;
        }
        out.push(Item {
            code: f.code,
            k: f.k,
            jt,
            jf,
        });
    }
    Some(out)
}

/// The instructions control can go to from `item` (for a non-jump: the next one).
fn edges(item: &Item) -> impl Iterator<Item = Target> {
    let (a, b) = if item.code & CLASS_MASK == RET {
        (None, None)
    } else if is_cond_jump(item.code) {
        (Some(item.jt), Some(item.jf))
    } else {
        (Some(item.jt), None)
    };
    a.into_iter().chain(b)
}

/// Follow JA chains from `pc` to the `ret k` they end at.
fn resolve_ret(prog: &[Item], mut pc: usize) -> Option<usize> {
    while is_ja(prog[pc].code) {
        pc = prog[pc].jt;
    }
    (prog[pc].code == RET | K).then_some(pc)
}

/// A maximal chain of `jeq k` tests on the same A: each one's false edge leads to the next,
/// whose only way in is that edge, and each one's true edge leads to a `ret k`. libseccomp
/// writes them one after another, sometimes skipping over a `ret` placed between two of them.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    /// The `jeq`s in the order they are tested.
    members: Vec<usize>,
    /// Where the last one's false edge goes: the "no match" exit.
    exit: usize,
}

/// The runs, by first member. `preds[i]` lists the instructions with an edge to `i`.
fn find_runs(prog: &[Item], preds: &[Vec<usize>]) -> Vec<Run> {
    let member = |pc: usize| {
        let it = &prog[pc];
        it.code == JMP | JEQ | K && resolve_ret(prog, it.jt).is_some()
    };
    let mut taken = vec![false; prog.len()];
    let mut runs = Vec::new();
    for start in 0..prog.len() {
        if taken[start] || !member(start) {
            continue;
        }
        let mut members = vec![start];
        let mut cur = start;
        // Nothing else may reach the next test: it must see the A this chain was entered with.
        while member(prog[cur].jf) && preds[prog[cur].jf] == [cur] {
            cur = prog[cur].jf;
            taken[cur] = true;
            members.push(cur);
        }
        if members.len() >= 2 {
            runs.push(Run {
                members,
                exit: prog[cur].jf,
            });
        }
    }
    runs
}

/// A decision: a `ret k` value, or "no match" (the run's fall-through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ret(u32),
    NoMatch,
}

/// Contiguous pieces of the u32 line, each with its outcome: (first value, outcome), sorted,
/// first piece starting at 0, neighbours with different outcomes.
fn segments(prog: &[Item], run: &Run) -> Option<Vec<(u32, Outcome)>> {
    // The first `jeq` for a value decides it; later duplicates are dead.
    let mut tests: Vec<(u32, u32)> = Vec::with_capacity(run.members.len());
    for &pc in &run.members {
        let ret = resolve_ret(prog, prog[pc].jt)?;
        tests.push((prog[pc].k, prog[ret].k));
    }
    let mut seen = std::collections::HashSet::new();
    tests.retain(|(k, _)| seen.insert(*k));
    tests.sort_unstable_by_key(|(k, _)| *k);

    let mut segs: Vec<(u32, Outcome)> = Vec::new();
    let push = |segs: &mut Vec<(u32, Outcome)>, from: u32, what: Outcome| {
        if segs.last().map(|s| s.1) != Some(what) {
            segs.push((from, what));
        }
    };
    let mut next: u64 = 0; // first value not yet covered
    for (k, ret) in tests {
        if u64::from(k) > next {
            push(&mut segs, u32::try_from(next).ok()?, Outcome::NoMatch);
        }
        push(&mut segs, k, Outcome::Ret(ret));
        next = u64::from(k) + 1;
    }
    if next <= u64::from(u32::MAX) {
        push(&mut segs, u32::try_from(next).ok()?, Outcome::NoMatch);
    }
    Some(segs)
}

/// At most this many single values are tested one by one in a leaf, to keep the search short.
const MAX_EXCEPTIONS: usize = 4;

/// A piece of the u32 line for the search: from `start` to the next piece's start, `outcome`,
/// except for the single values in `except`.
#[derive(Debug, PartialEq, Eq)]
struct Piece {
    start: u32,
    outcome: Outcome,
    except: Vec<(u32, Outcome)>,
}

/// `segs` as pieces, a single value between two segments with the same outcome becoming an
/// exception of their merged piece: one `jeq` instead of two `jge`s (allow lists have many
/// one-syscall holes).
fn pieces(segs: &[(u32, Outcome)]) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::with_capacity(segs.len());
    let mut i = 0;
    while i < segs.len() {
        let (start, outcome) = segs[i];
        let single = segs
            .get(i + 1)
            .is_some_and(|n| u64::from(n.0) == u64::from(start) + 1);
        if let (Some(last), Some(after), true) = (out.last_mut(), segs.get(i + 1), single) {
            if after.1 == last.outcome && last.except.len() < MAX_EXCEPTIONS {
                last.except.push((start, outcome));
                i += 2;
                continue;
            }
        }
        out.push(Piece {
            start,
            outcome,
            except: Vec::new(),
        });
        i += 1;
    }
    out
}

/// Instructions the search over `pieces` takes.
fn search_len(pieces: &[Piece]) -> usize {
    pieces.len() - 1 + pieces.iter().map(|p| p.except.len()).sum::<usize>()
}

/// Emit a binary search over `pieces` into `out`: internal nodes are `jge` (true: upper half),
/// laid out as node, lower half, upper half, so every jump goes forward. A piece is a chain of
/// `jeq` for its exceptions, or no instruction at all: the target `leaf` gives for its outcome.
/// Returns where the subtree starts.
fn emit_tree(pieces: &[Piece], leaf: &dyn Fn(Outcome) -> Target, out: &mut Vec<Item>) -> Target {
    if let [only] = pieces {
        let first = out.len();
        for (n, &(k, outcome)) in only.except.iter().enumerate() {
            let last = n + 1 == only.except.len();
            out.push(Item {
                code: JMP | JEQ | K,
                k,
                jt: leaf(outcome),
                jf: if last {
                    leaf(only.outcome)
                } else {
                    out.len() + 1
                },
            });
        }
        return if only.except.is_empty() {
            leaf(only.outcome)
        } else {
            first
        };
    }
    let mid = pieces.len() / 2;
    let at = out.len();
    out.push(Item {
        code: JMP | JGE | K,
        k: pieces[mid].start,
        jt: 0,
        jf: 0,
    });
    let lower = emit_tree(&pieces[..mid], leaf, out);
    let upper = emit_tree(&pieces[mid..], leaf, out);
    out[at].jf = lower;
    out[at].jt = upper;
    at
}

/// Targets in the tree that refer to original instructions are kept as `ORIG + index` until the
/// layout is known.
const ORIG: usize = 1 << 40;

fn try_compact(filter: &[sock_filter]) -> Option<Vec<sock_filter>> {
    if filter.is_empty() {
        return None;
    }
    let prog = decode(filter)?;
    let mut preds = vec![Vec::new(); prog.len()];
    for (pc, it) in prog.iter().enumerate() {
        for t in edges(it) {
            if preds[t].last() != Some(&pc) {
                preds[t].push(pc);
            }
        }
    }
    // Only runs whose search is shorter than the run itself are worth replacing.
    let mut runs = Vec::new();
    for run in find_runs(&prog, &preds) {
        let pieces = pieces(&segments(&prog, &run)?);
        if search_len(&pieces) < run.members.len() {
            runs.push((run, pieces));
        }
    }
    if runs.is_empty() {
        return None;
    }

    // The new item list: original instructions, a search in place of each run's first test,
    // the run's other tests left out.
    let mut items: Vec<Item> = Vec::with_capacity(prog.len());
    let mut new_index = vec![usize::MAX; prog.len()];
    let mut left_out = vec![false; prog.len()];
    for (run, _) in &runs {
        for &m in &run.members[1..] {
            left_out[m] = true;
        }
    }
    let mut runs = runs.iter().peekable();
    for pc in 0..prog.len() {
        if left_out[pc] {
            continue;
        }
        let Some((run, pieces)) = runs.next_if(|(r, _)| r.members[0] == pc) else {
            let mut it = prog[pc];
            if it.code & CLASS_MASK != RET {
                it.jt += ORIG;
                it.jf += ORIG;
            }
            new_index[pc] = items.len();
            items.push(it);
            continue;
        };
        // Any `ret` with the value will do; take the first one the run used.
        let rets: Vec<(u32, usize)> = run
            .members
            .iter()
            .filter_map(|&m| resolve_ret(&prog, prog[m].jt))
            .map(|r| (prog[r].k, r))
            .collect();
        let leaf = |o: Outcome| match o {
            Outcome::NoMatch => ORIG + run.exit,
            Outcome::Ret(v) => {
                // Not found cannot happen; an out-of-range target makes the pass give up.
                let r = rets
                    .iter()
                    .find(|(k, _)| *k == v)
                    .map_or(prog.len(), |r| r.1);
                ORIG + r
            }
        };
        let first = items.len();
        let root = emit_tree(pieces, &leaf, &mut items);
        if root != first {
            // One segment covers everything: a plain jump to it.
            items.push(Item {
                code: JMP | JA,
                k: 0,
                jt: root,
                jf: root,
            });
        }
        new_index[pc] = first;
    }
    // Resolve targets into the new list; a jump into a removed run interior means we got it wrong.
    for it in &mut items {
        for t in [&mut it.jt, &mut it.jf] {
            if *t >= ORIG {
                *t = *new_index.get(*t - ORIG)?;
                if *t == usize::MAX {
                    return None;
                }
            }
        }
    }
    let items = drop_unreachable(&items);
    // Non-jumps continue with the next item; the layout must still say so.
    let falls_through = |(i, it): (usize, &Item)| {
        is_ja(it.code) || is_cond_jump(it.code) || it.code & CLASS_MASK == RET || it.jt == i + 1
    };
    if !items.iter().enumerate().all(falls_through) {
        return None;
    }
    encode(&items)
}

/// Items reachable from the first, targets renumbered (libseccomp's trampolines for the old
/// `jeq`s are dead now).
fn drop_unreachable(items: &[Item]) -> Vec<Item> {
    let mut live = vec![false; items.len()];
    live[0] = true;
    // Jumps only go forward, so one pass in order sees every predecessor first.
    for i in 0..items.len() {
        if live[i] {
            for t in edges(&items[i]) {
                if let Some(l) = live.get_mut(t) {
                    *l = true;
                }
            }
        }
    }
    let mut renum = vec![0; items.len()];
    let mut n = 0;
    for i in 0..items.len() {
        renum[i] = n;
        n += usize::from(live[i]);
    }
    items
        .iter()
        .zip(&live)
        .filter(|(_, &l)| l)
        .map(|(it, _)| {
            let mut it = *it;
            if it.code & CLASS_MASK != RET {
                it.jt = renum.get(it.jt).copied().unwrap_or(usize::MAX);
                it.jf = renum.get(it.jf).copied().unwrap_or(usize::MAX);
            }
            it
        })
        .collect()
}

/// Lay out with 8-bit offsets, adding a `ja` trampoline (32-bit offset) right after a
/// conditional jump for each edge that does not fit, as libseccomp does. Adding trampolines
/// moves code, so repeat until every edge fits. None if a jump would go backward.
fn encode(items: &[Item]) -> Option<Vec<sock_filter>> {
    // Per item: whether its true / false edge goes through a trampoline.
    let mut tramp = vec![(false, false); items.len()];
    let mut pos = vec![0usize; items.len()];
    loop {
        let mut p = 0;
        for (i, t) in tramp.iter().enumerate() {
            pos[i] = p;
            p += 1 + usize::from(t.0) + usize::from(t.1);
        }
        let mut changed = false;
        for (i, it) in items.iter().enumerate() {
            if !is_cond_jump(it.code) {
                continue;
            }
            let (ft, ff) = (*pos.get(it.jt)?, *pos.get(it.jf)?);
            let from = pos[i] + 1;
            if ft < from || ff < from {
                return None;
            }
            if !tramp[i].0 && ft - from > MAX_SHORT {
                tramp[i].0 = true;
                changed = true;
            }
            if !tramp[i].1 && ff - from > MAX_SHORT {
                tramp[i].1 = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let ja = |from: usize, to: usize| -> Option<sock_filter> {
        Some(sock_filter {
            code: JMP | JA,
            jt: 0,
            jf: 0,
            k: u32::try_from(to.checked_sub(from + 1)?).ok()?,
        })
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let here = pos[i];
        if !(is_ja(it.code) || is_cond_jump(it.code)) {
            out.push(sock_filter {
                code: it.code,
                jt: 0,
                jf: 0,
                k: it.k,
            });
            continue;
        }
        if is_ja(it.code) {
            out.push(ja(here, pos[it.jt])?);
            continue;
        }
        let (tt, tf) = tramp[i];
        let short = |to: usize| u8::try_from(to.checked_sub(here + 1)?).ok();
        let jt = if tt { 0 } else { short(pos[it.jt])? };
        let jf = if tf { u8::from(tt) } else { short(pos[it.jf])? };
        out.push(sock_filter {
            code: it.code,
            jt,
            jf,
            k: it.k,
        });
        if tt {
            out.push(ja(here + 1, pos[it.jt])?);
        }
        if tf {
            out.push(ja(here + 1 + usize::from(tt), pos[it.jf])?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
        sock_filter { code, jt, jf, k }
    }

    #[test]
    fn a_jump_into_a_chain_splits_it() {
        // 1 jumps into the middle of the tests at 6, so 2..=5 and 6..=9 are separate runs.
        let mut f = vec![insn(LD | W | ABS, 0, 0, 0), insn(JMP | JSET | K, 4, 0, 1)];
        for p in 2..=9u8 {
            f.push(insn(JMP | JEQ | K, 11 - (p + 1), 0, u32::from(p) - 1));
        }
        f.push(insn(RET | K, 0, 0, 1));
        f.push(insn(RET | K, 0, 0, 2));
        let prog = decode(&f).unwrap();
        let mut preds = vec![Vec::new(); prog.len()];
        for (pc, it) in prog.iter().enumerate() {
            for t in edges(it) {
                preds[t].push(pc);
            }
        }
        assert_eq!(
            find_runs(&prog, &preds),
            vec![
                Run {
                    members: vec![2, 3, 4, 5],
                    exit: 6
                },
                Run {
                    members: vec![6, 7, 8, 9],
                    exit: 10
                },
            ]
        );
    }

    #[test]
    fn segments_split_on_the_return_value_and_first_test_wins() {
        // jeq 3 → ret 7; jeq 4 → ret 7; jeq 5 → ret 8; jeq 3 → ret 9 (dead); else ret 0.
        let f = vec![
            insn(JMP | JEQ | K, 4, 0, 3),
            insn(JMP | JEQ | K, 3, 0, 4),
            insn(JMP | JEQ | K, 3, 0, 5),
            insn(JMP | JEQ | K, 3, 0, 3),
            insn(RET | K, 0, 0, 0),
            insn(RET | K, 0, 0, 7),
            insn(RET | K, 0, 0, 8),
            insn(RET | K, 0, 0, 9),
        ];
        let prog = decode(&f).unwrap();
        let run = Run {
            members: vec![0, 1, 2, 3],
            exit: 4,
        };
        assert_eq!(
            segments(&prog, &run).unwrap(),
            vec![
                (0, Outcome::NoMatch),
                (3, Outcome::Ret(7)),
                (5, Outcome::Ret(8)),
                (6, Outcome::NoMatch),
            ]
        );
    }

    #[test]
    fn one_value_holes_become_exceptions() {
        use Outcome::*;
        let allow = Ret(0x7fff_0000);
        // 0..=9 no, 10..=19 allow but 12 (no) and 15 (ret 5), 20.. no.
        let segs = [
            (0, NoMatch),
            (10, allow),
            (12, NoMatch),
            (13, allow),
            (15, Ret(5)),
            (16, allow),
            (20, NoMatch),
        ];
        let p = pieces(&segs);
        assert_eq!(
            p,
            vec![
                Piece {
                    start: 0,
                    outcome: NoMatch,
                    except: vec![]
                },
                Piece {
                    start: 10,
                    outcome: allow,
                    except: vec![(12, NoMatch), (15, Ret(5))]
                },
                Piece {
                    start: 20,
                    outcome: NoMatch,
                    except: vec![]
                },
            ]
        );
        assert_eq!(search_len(&p), 4);
        // A two-value hole stays a segment of its own.
        let wide = [(0, NoMatch), (10, allow), (12, NoMatch), (14, allow)];
        assert_eq!(pieces(&wide).len(), 4);
    }

    #[test]
    fn not_understood_means_unchanged() {
        let good = vec![
            insn(LD | W | ABS, 0, 0, 0),
            insn(JMP | JEQ | K, 3, 0, 1),
            insn(JMP | JEQ | K, 2, 0, 2),
            insn(JMP | JEQ | K, 1, 0, 3),
            insn(RET | K, 0, 0, 0),
            insn(RET | K, 0, 0, 1),
        ];
        let same = |a: &[sock_filter], b: &[sock_filter]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
        };
        assert!(compact(&good).len() < good.len());
        // ld h abs is not something seccomp or libseccomp uses.
        let mut unknown = good.clone();
        unknown[0].code = LD | 0x08 | ABS;
        assert!(same(&compact(&unknown), &unknown));
        // A jump past the end.
        let mut out_of_range = good.clone();
        out_of_range[2].jt = 9;
        assert!(same(&compact(&out_of_range), &out_of_range));
        // Falling off the end.
        assert!(same(&compact(&good[..4]), &good[..4]));
        assert!(compact(&[]).is_empty());
    }
}
