//! Small atomic file operations: a file either has its old content or its complete new one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{PathContext, Result};
use crate::names::random_id;

/// Write `data` to `path` through a temporary file in the same directory, fsynced and renamed.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).at("create directory", dir)?;
    let tmp = dir.join(format!(".tmp-{}", random_id()));
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(data)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e).at("write temporary file", &tmp);
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e).at("rename into place", path);
    }
    fsync_dir(dir)
}

pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("fsync directory", dir)
}

/// Remove a file; `Ok(false)` if it was not there.
pub fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).at("remove", path),
    }
}

/// Read a small file; `Ok(None)` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at("read", path),
    }
}

/// Names of the entries of a directory (none if it does not exist), sorted, temp files skipped.
pub fn list_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).at("list directory", dir),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.at("list directory", dir)?;
        if let Some(name) = entry.file_name().to_str() {
            if !name.starts_with(".tmp-") {
                out.push(name.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// An advisory lock on `<root>/lock`: servers hold it shared, `gc` exclusively, so a
/// collection never runs under a live server. Held until the returned file is dropped.
pub fn lock_root(root: &Path, exclusive: bool) -> Result<File> {
    use std::os::fd::AsRawFd;
    fs::create_dir_all(root).at("create registry root", root)?;
    let path = root.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at("open lock file", &path)?;
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    // SAFETY: flock on a valid fd we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            return Err(crate::error::Error::Busy(root.to_path_buf()));
        }
        return Err(err).at("lock registry root", &path);
    }
    Ok(file)
}
