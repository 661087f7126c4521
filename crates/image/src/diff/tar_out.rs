//! Writing a directory tree as a tar stream: a container's merged root (export) or an overlay
//! upper directory turned into an OCI layer (commit), where overlay's whiteouts become
//! `.wh.<name>` entries and opaque directories get a `.wh..wh..opq` entry.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::walk::{walk, Entry, FileKind};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// What the tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// A plain tree: every entry as it is.
    Plain,
    /// An overlay upper directory: whiteouts and opaque markers become OCI whiteout entries.
    OverlayUpper,
}

/// Write the tree under `root` (not including the root itself, nor the relative paths in
/// `skip`) as a tar to `out`.
pub fn write_tar(
    root: &Path,
    kind: TreeKind,
    skip: &[PathBuf],
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    // (dev, inode) → first path: later names of a multiply linked file become hard links.
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(root, skip, &mut |e| append(&mut tar, e, kind, &mut links))?;
    tar.finish()
}

fn header_for(e: &Entry<'_>, entry_type: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(entry_type);
    h.set_mode(e.stat.st_mode & 0o7777);
    h.set_uid(e.stat.st_uid.into());
    h.set_gid(e.stat.st_gid.into());
    h.set_mtime(e.stat.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn append(
    tar: &mut tar::Builder<&mut dyn Write>,
    e: &Entry<'_>,
    kind: TreeKind,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let rel = e.rel;
    if kind == TreeKind::OverlayUpper && e.is_overlay_whiteout() {
        let name = rel.file_name().unwrap_or_default();
        let mut wh = std::ffi::OsString::from(WHITEOUT_PREFIX);
        wh.push(name);
        let path = rel.with_file_name(wh);
        let mut h = header_for(e, tar::EntryType::Regular);
        h.set_mode(0o600);
        return tar.append_data(&mut h, path, io::empty());
    }
    match e.kind() {
        FileKind::Dir => {
            let mut h = header_for(e, tar::EntryType::Directory);
            tar.append_data(&mut h, rel, io::empty())?;
            if kind == TreeKind::OverlayUpper && e.is_opaque_dir() {
                let mut h = header_for(e, tar::EntryType::Regular);
                h.set_mode(0o600);
                tar.append_data(&mut h, rel.join(OPAQUE_WHITEOUT), io::empty())?;
            }
            Ok(())
        }
        FileKind::File => {
            let key = (e.stat.st_dev, e.stat.st_ino);
            if e.stat.st_nlink > 1 {
                if let Some(first) = links.get(&key) {
                    let mut h = header_for(e, tar::EntryType::Link);
                    return tar.append_link(&mut h, rel, first);
                }
                links.insert(key, rel.to_path_buf());
            }
            let file = e.open_file()?;
            let md = file.metadata()?;
            if !md.is_file() {
                // Swapped for something else while we walked: leave it out.
                return Ok(());
            }
            let size = md.len();
            let mut h = header_for(e, tar::EntryType::Regular);
            h.set_size(size);
            // Exactly `size` bytes even if the file changes under us (zeros fill a shrunk file).
            let data = file.take(size).chain(io::repeat(0)).take(size);
            tar.append_data(&mut h, rel, data)
        }
        FileKind::Symlink => {
            let target = e.link_target()?;
            let mut h = header_for(e, tar::EntryType::Symlink);
            tar.append_link(&mut h, rel, target)
        }
        FileKind::Char | FileKind::Block => {
            let t = if e.kind() == FileKind::Char {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            };
            let mut h = header_for(e, t);
            let rdev = e.stat.st_rdev;
            h.set_device_major(nix::sys::stat::major(rdev) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(rdev) as u32)?;
            tar.append_data(&mut h, rel, io::empty())
        }
        FileKind::Fifo => {
            let mut h = header_for(e, tar::EntryType::Fifo);
            tar.append_data(&mut h, rel, io::empty())
        }
        // Sockets belong to a running process, not to a file system image (docker skips them).
        FileKind::Socket => Ok(()),
    }
}
