//! Keep an idle process small (the shim, and berthd between requests). Creating and starting the container runs much of the runtime
//! library's code in this process; once the container runs, the shim only polls, copies output
//! and reaps, yet the pages that work touched would stay mapped (counted in its RSS) for the
//! container's whole life. Pages that are still the file's own bytes — all of the code, and the
//! read-only data no relocation wrote to — lose nothing when we drop our mapping of them: the page
//! cache keeps them for other shims and a later exec faults back in what it needs. Pages this
//! process wrote (relocated data, heap, stack) are never touched.

use std::os::unix::fs::FileExt;

const PAGE: usize = 4096;
/// /proc/self/pagemap entry bits: the page is present; it is a file page (not our private copy).
const PM_PRESENT: u64 = 1 << 63;
const PM_FILE: u64 = 1 << 61;

/// Drop the resident file-backed pages of code and read-only data; give freed heap back.
pub fn release_startup_pages() {
    // Collect first, trim the heap, then advise with no allocation or I/O in between: anything
    // run after the madvise faults its code straight back in.
    let mut runs = [(0usize, 0usize); 256];
    let mut n = 0;
    if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
        let pagemap = std::fs::File::open("/proc/self/pagemap").ok();
        let mappings = maps.lines().filter_map(file_mapping);
        for (start, len, perms) in mappings {
            let found = match (perms, &pagemap) {
                // Code: never written (no text relocations in our binaries).
                ("r-xp", _) => vec![(start, len)],
                // Read-only data mixes relocated pages (our private copies) with file pages.
                ("r--p", Some(pm)) => file_page_runs(pm, start, len),
                _ => Vec::new(),
            };
            for run in found {
                if n < runs.len() {
                    runs[n] = run;
                    n += 1;
                }
            }
        }
    }
    // SAFETY: glibc's malloc_trim only returns free memory at the heap's top and in its arenas.
    unsafe { libc::malloc_trim(0) };
    for &(start, len) in &runs[..n] {
        // SAFETY: every run holds only pages that are the mapped file's unmodified bytes, so
        // MADV_DONTNEED only makes the next access fault the same bytes back in from the file.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    }
}

/// Runs of pages in `[start, start+len)` that are resident file pages, per /proc/self/pagemap.
/// Pages whose flags cannot be read are left alone.
fn file_page_runs(pagemap: &std::fs::File, start: usize, len: usize) -> Vec<(usize, usize)> {
    let pages = len / PAGE;
    let mut raw = vec![0u8; pages * 8];
    if pagemap
        .read_exact_at(&mut raw, (start / PAGE * 8) as u64)
        .is_err()
    {
        return Vec::new();
    }
    let droppable = raw.chunks_exact(8).map(|e| {
        let flags = u64::from_le_bytes(e.try_into().unwrap_or_default());
        flags & PM_PRESENT != 0 && flags & PM_FILE != 0
    });
    runs_of(droppable, start)
}

/// Contiguous runs `(address, length)` of pages for which `flags` says true.
fn runs_of(flags: impl Iterator<Item = bool>, start: usize) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, yes) in flags.enumerate() {
        if !yes {
            continue;
        }
        let addr = start + i * PAGE;
        match runs.last_mut() {
            Some((s, l)) if *s + *l == addr => *l += PAGE,
            _ => runs.push((addr, PAGE)),
        }
    }
    runs
}

/// `(start, length, perms)` of a mapping of a file (not [vdso] or anonymous), from one line of
/// /proc/self/maps: `start-end perms offset dev inode path`.
fn file_mapping(line: &str) -> Option<(usize, usize, &str)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    let path = fields.nth(3)?;
    if !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (end > start).then_some((start, end - start, perms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_of_files_are_parsed_others_skipped() {
        let text = "55d0c0a00000-55d0c0c00000 r-xp 0003b000 fe:00 10027186 /usr/bin/berth-shim";
        assert_eq!(file_mapping(text), Some((0x55d0c0a00000, 0x200000, "r-xp")));
        for other in [
            "7ffc64339000-7ffc6435a000 rw-p 00000000 00:00 0 [stack]",
            "7f7a48de6000-7f7a48de8000 r-xp 00000000 00:00 0 [vdso]",
            "7f7a48de6000-7f7a48de8000 r-xp 00000000 00:00 0",
        ] {
            assert_eq!(file_mapping(other), None, "{other}");
        }
    }

    #[test]
    fn runs_join_neighbouring_pages_only() {
        let flags = [true, true, false, true, false, false, true, true, true];
        assert_eq!(
            runs_of(flags.into_iter(), 0x1000),
            vec![(0x1000, 2 * PAGE), (0x4000, PAGE), (0x7000, 3 * PAGE)]
        );
        assert!(runs_of([false, false].into_iter(), 0).is_empty());
    }

    /// Relocated read-only data (pointers in a PIE test binary) is our private copy: it must
    /// survive, while resident code shrinks.
    static NAMES: [&str; 4] = ["created", "running", "paused", "exited"];

    fn resident_kib(perms: &str) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        let mut total = 0;
        for line in smaps.lines() {
            if line.contains(&format!(" {perms} ")) {
                inside = line
                    .split_whitespace()
                    .nth(5)
                    .is_some_and(|p| p.starts_with('/'));
            } else if line.contains(" rw-p ") || line.contains(" r--p ") || line.contains(" r-xp ")
            {
                inside = false;
            } else if let Some(v) = line.strip_prefix("Rss:") {
                if inside {
                    let kib = v.trim().trim_end_matches("kB").trim();
                    total += kib.parse::<u64>().unwrap_or(0);
                }
            }
        }
        total
    }

    #[test]
    fn releasing_keeps_the_process_working_and_shrinks_it() {
        let before = resident_kib("r-xp");
        release_startup_pages();
        let after = resident_kib("r-xp");
        assert!(after < before, "resident code {before} KiB -> {after} KiB");
        let joined = std::hint::black_box(&NAMES).join(",");
        assert_eq!(joined, "created,running,paused,exited");
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 499_500);
    }
}
