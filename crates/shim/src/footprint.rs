//! Keep an idle shim small. Creating and starting the container runs much of the runtime
//! library's code in this process; once the container runs, the shim only polls, copies output
//! and reaps, yet those code pages would stay mapped (counted in its RSS) for the container's
//! whole life. Text pages are clean and backed by the executable files: dropping our mapping of
//! them loses nothing — the page cache keeps them for other shims and a later exec faults back in
//! what it needs. Writable or relocated (dirty) mappings are never touched.

/// Unmap the resident pages of every executable, file-backed, private mapping, and give freed
/// heap back to the kernel.
pub fn release_startup_pages() {
    // Collect first, trim the heap, then advise with no allocation or I/O in between: anything
    // run after the madvise faults its code straight back in.
    let mut ranges = [(0usize, 0usize); 64];
    let mut n = 0;
    if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
        for range in maps.lines().filter_map(clean_text_mapping) {
            if n < ranges.len() {
                ranges[n] = range;
                n += 1;
            }
        }
    }
    // SAFETY: glibc's malloc_trim only returns free memory at the heap's top and in its arenas.
    unsafe { libc::malloc_trim(0) };
    for &(start, len) in &ranges[..n] {
        // SAFETY: the range is an r-xp mapping of a file: its pages are never written (no text
        // relocations in our binaries), so MADV_DONTNEED only makes the next access fault the
        // same bytes back in from the file.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    }
}

/// `(start, length)` of an `r-xp` mapping of a file (not [vdso] or anonymous), from one line of
/// /proc/self/maps: `start-end perms offset dev inode path`.
fn clean_text_mapping(line: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    let path = fields.nth(3)?;
    if perms != "r-xp" || !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (end > start).then_some((start, end - start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_executable_file_mappings_are_chosen() {
        let text = "55d0c0a00000-55d0c0c00000 r-xp 0003b000 fe:00 10027186 /usr/bin/berth-shim";
        assert_eq!(clean_text_mapping(text), Some((0x55d0c0a00000, 0x200000)));
        for other in [
            "55d0c0c00000-55d0c0c10000 r--p 00115000 fe:00 10027186 /usr/bin/berth-shim",
            "55d0c0c10000-55d0c0c12000 rw-p 0011b000 fe:00 10027186 /usr/bin/berth-shim",
            "7ffc64339000-7ffc6435a000 rw-p 00000000 00:00 0 [stack]",
            "7f7a48de6000-7f7a48de8000 r-xp 00000000 00:00 0 [vdso]",
            "7f7a48de6000-7f7a48de8000 r-xp 00000000 00:00 0",
        ] {
            assert_eq!(clean_text_mapping(other), None, "{other}");
        }
    }

    #[test]
    fn releasing_keeps_the_process_working_and_shrinks_it() {
        fn resident_text_kib() -> u64 {
            let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
            let mut in_text = false;
            let mut total = 0;
            for line in smaps.lines() {
                if line.contains(" r-xp ") {
                    in_text = line
                        .split_whitespace()
                        .nth(5)
                        .is_some_and(|p| p.starts_with('/'));
                } else if let Some(v) = line.strip_prefix("Rss:") {
                    if in_text {
                        total += v
                            .trim()
                            .trim_end_matches(" kB")
                            .trim()
                            .parse::<u64>()
                            .unwrap_or(0);
                    }
                }
            }
            total
        }
        let before = resident_text_kib();
        release_startup_pages();
        let after = resident_text_kib();
        // Code keeps running (it faults back in) and less of it is resident than before.
        assert!(after < before, "resident text {before} KiB -> {after} KiB");
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 499_500);
    }
}
