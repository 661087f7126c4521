//! Reading and writing cgroupfs files, and making and removing cgroup directories.
//!
//! Every error names the file, so a failed write says which knob the kernel refused.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// An `Error::Cgroup` for `path`.
pub(crate) fn cgroup_err(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
    Error::Cgroup {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Write `value` to `dir/file` in one write(2). No O_CREAT: a missing file means the kernel
/// lacks the knob, which must not turn into a stray regular file.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    write_raw(&path, value).map_err(|e| cgroup_err(&path, format!("write {value:?}: {e}")))
}

/// Write a resource setting; an error names the spec field it came from.
pub(crate) fn set(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    let path = dir.join(file);
    write_raw(&path, value).map_err(|e| {
        cgroup_err(
            &path,
            format!("linux.resources.{field}: write {value:?}: {e}"),
        )
    })
}

pub(crate) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(value.as_bytes())
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|e| cgroup_err(&path, format!("read: {e}")))
}

/// Read a file if it exists; `Ok(None)` when it does not (an optional kernel feature).
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(cgroup_err(&path, format!("read: {e}"))),
    }
}

/// A single number; "max" reads as `u64::MAX`.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>> {
    Ok(read_opt(dir, file)?.and_then(|s| parse_u64(&s)))
}

/// "key value" lines (memory.stat, cpu.stat, memory.events) into a map; unparsable lines are skipped.
pub(crate) fn parse_flat_keyed(s: &str) -> BTreeMap<String, u64> {
    s.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let key = it.next()?;
            let value = parse_u64(it.next()?)?;
            Some((key.to_string(), value))
        })
        .collect()
}

pub(crate) fn read_flat_keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    Ok(read_opt(dir, file)?
        .map(|s| parse_flat_keyed(&s))
        .unwrap_or_default())
}

/// PIDs listed in `dir/cgroup.procs` and in every descendant cgroup.
pub(crate) fn pids_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let procs = match read_opt(&d, "cgroup.procs")? {
            Some(s) => s,
            // Removed between listing and reading: nothing left in it.
            None => continue,
        };
        pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        stack.extend(child_dirs(&d)?);
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

fn child_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(cgroup_err(dir, format!("list: {e}"))),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| cgroup_err(dir, format!("list: {e}")))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// mkdir -p that reports which directories it made, shallowest first.
pub(crate) fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    missing.reverse();
    for d in &missing {
        match fs::create_dir(d) {
            Ok(()) => {}
            // Another container creating the same parent at the same time.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(cgroup_err(d, format!("mkdir: {e}"))),
        }
    }
    Ok(missing)
}

/// Remove a cgroup and every cgroup below it, deepest first. A cgroup whose last process is still
/// exiting answers EBUSY for a moment, so each rmdir is retried briefly. Gone already is success.
pub(crate) fn remove_tree(dir: &Path) -> Result<()> {
    for child in child_dirs(dir)? {
        remove_tree(&child)?;
    }
    const ATTEMPTS: u32 = 50;
    let mut delay = Duration::from_millis(2);
    for attempt in 1..=ATTEMPTS {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < ATTEMPTS => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(cgroup_err(dir, format!("rmdir: {e}"))),
        }
    }
    Err(cgroup_err(dir, "rmdir: still busy"))
}

/// Poll `done` until it is true, sleeping a little longer each time, for at most `limit`.
pub(crate) fn wait_until(limit: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let start = std::time::Instant::now();
    let mut delay = Duration::from_micros(200);
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() >= limit {
            return Ok(false);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_parses_numbers_and_max() {
        let m = parse_flat_keyed("usage_usec 10\nnr_periods 3\nmax max\nbroken\n");
        assert_eq!(m.get("usage_usec"), Some(&10));
        assert_eq!(m.get("nr_periods"), Some(&3));
        assert_eq!(m.get("max"), Some(&u64::MAX));
        assert!(!m.contains_key("broken"));
    }

    #[test]
    fn create_dirs_reports_only_new_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("a")).unwrap();
        let made = create_dirs(&tmp.path().join("a/b/c")).unwrap();
        assert_eq!(made, vec![tmp.path().join("a/b"), tmp.path().join("a/b/c")]);
        assert!(create_dirs(&tmp.path().join("a/b/c")).unwrap().is_empty());
    }
}
