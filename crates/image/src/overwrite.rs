//! Writing a file's whole content in place without O_TRUNC.
//!
//! berth makes some files ahead of time, empty (a spare container directory's hostname,
//! config.json..., a spare snapshot's info file), and fills them later. Opening such a file
//! with O_TRUNC costs more than it looks on ext4: a truncate to size 0 arms its
//! `auto_da_alloc` heuristic, and the close then starts writeback of the new data at once
//! (0.1–0.2 ms per file on the VM of docs/PERFORMANCE.md, on the path of `run`). Writing
//! into the empty file and cutting it only when it was longer avoids that.

use std::io::{self, Write};
use std::path::Path;

/// Make `bytes` the whole content of `path` (created if missing).
pub fn overwrite(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    f.write_all(bytes)?;
    let len = bytes.len() as u64;
    if f.metadata()?.len() > len {
        f.set_len(len)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrite_replaces_longer_shorter_and_missing_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        overwrite(&p, b"hello world").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello world");
        overwrite(&p, b"bye").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"bye");
        overwrite(&p, b"longer than before").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"longer than before");
        overwrite(&p, b"").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"");
        std::fs::File::create(d.path().join("empty")).unwrap();
        overwrite(&d.path().join("empty"), b"x").unwrap();
        assert_eq!(std::fs::read(d.path().join("empty")).unwrap(), b"x");
    }
}
