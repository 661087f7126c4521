//! `docker diff` for an overlay snapshot: what the upper directory changed relative to the lower
//! layers, in Docker's terms.

use std::io;
use std::path::{Path, PathBuf};

use nix::sys::stat::SFlag;

use super::walk::{lgetxattr, walk};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path inside the container ("/etc/passwd").
    pub path: String,
    pub kind: ChangeKind,
}

/// Changes recorded in the overlay `upper` directory over `lowers` (topmost first).
/// Whiteouts and opaque directories that hid something are deletions; a directory or file that
/// existed below is modified; anything else was added. Every ancestor of a change is itself in
/// the upper directory (overlay copies them up), so parents show as modified, as Docker's do.
/// Relative paths in `skip` are left out.
pub fn overlay_changes(
    upper: &Path,
    lowers: &[PathBuf],
    skip: &[PathBuf],
) -> io::Result<Vec<Change>> {
    let mut out = Vec::new();
    // Opaque directories of the upper layer: nothing below them is seen from the lowers.
    let mut opaque: Vec<PathBuf> = Vec::new();
    walk(upper, skip, &mut |e| {
        let path = format!("/{}", e.rel.display());
        let under_opaque = opaque.iter().any(|o| e.rel.starts_with(o) && e.rel != o);
        let below = !under_opaque && exists_below(lowers, e.rel);
        if e.is_opaque_dir() {
            opaque.push(e.rel.to_path_buf());
        }
        let kind = if e.is_overlay_whiteout() {
            if !below {
                // A whiteout over nothing (created then deleted in this layer): no change.
                return Ok(());
            }
            ChangeKind::Deleted
        } else if e.is_opaque_dir() && below {
            ChangeKind::Deleted
        } else if below {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        out.push(Change { path, kind });
        Ok(())
    })?;
    Ok(out)
}

/// Whether `rel` is visible in the stack of `lowers` (topmost first).
fn exists_below(lowers: &[PathBuf], rel: &Path) -> bool {
    for lower in lowers {
        match std::fs::symlink_metadata(lower.join(rel)) {
            Ok(md) => {
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                return !(md.file_type().is_char_device() && md.rdev() == 0);
            }
            Err(_) => {
                // Hidden further down if an ancestor here is a whiteout or opaque.
                if hidden_by_ancestor(lower, rel) {
                    return false;
                }
            }
        }
    }
    false
}

fn hidden_by_ancestor(lower: &Path, rel: &Path) -> bool {
    let mut cur = lower.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        cur.push(c);
        let Ok(md) = std::fs::symlink_metadata(&cur) else {
            return false;
        };
        use std::os::unix::fs::MetadataExt;
        let fmt = SFlag::from_bits_truncate(md.mode() & SFlag::S_IFMT.bits());
        if fmt == SFlag::S_IFCHR && md.rdev() == 0 {
            return true;
        }
        if md.is_dir() && lgetxattr(&cur, "trusted.overlay.opaque").is_some_and(|v| v == b"y") {
            return true;
        }
    }
    false
}
