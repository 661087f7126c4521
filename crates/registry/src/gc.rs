//! Registry garbage collection: keep every manifest some repository has (tagged or not) and
//! what those reach (configs, layers, index children); remove every other blob from the
//! content store, repository links to blobs that are gone, and stale upload sessions.
//!
//! It runs with the server stopped (like distribution's `garbage-collect`), since a blob uploaded
//! but not yet referenced by a pushed manifest looks unreferenced: servers hold `<root>/lock`
//! shared and gc takes it exclusively, so it refuses to run under a live server.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use berth_image::Digest;

use crate::error::Result;
use crate::storage::fsutil::lock_root;
use crate::storage::{uploads, Storage};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub removed_blobs: Vec<Digest>,
    pub freed_bytes: u64,
    pub removed_links: usize,
    pub removed_uploads: usize,
}

/// Upload sessions untouched this long are abandoned.
pub const STALE_UPLOAD: Duration = Duration::from_secs(24 * 3600);

pub fn collect(root: &Path) -> Result<GcReport> {
    let _lock = lock_root(root, true)?;
    let storage = Storage::open(root)?;
    let mut roots = Vec::new();
    for repo in storage.repositories()? {
        roots.extend(storage.manifests(&repo)?);
    }
    let image_report =
        berth_image::gc::collect(storage.content(), None, roots.iter(), &BTreeSet::new())?;
    let mut report = GcReport {
        removed_blobs: image_report.removed_blobs,
        freed_bytes: image_report.freed_bytes,
        ..GcReport::default()
    };
    for repo in storage.repositories()? {
        for d in storage.blob_links(&repo)? {
            if !storage.content().has(&d) && storage.unlink_blob(&repo, &d)? {
                report.removed_links += 1;
            }
        }
    }
    report.removed_uploads = uploads::prune_stale(storage.uploads_dir(), STALE_UPLOAD)?;
    Ok(report)
}
