//! From a snapshot back to content: what a container changed (`docker diff`), its files as a tar
//! (`docker export`) and its upper directory as a new gzip layer in the content store
//! (`docker commit`, `docker import`).

mod changes;
mod tar_out;
mod walk;

pub use changes::{overlay_changes, Change, ChangeKind};
pub use tar_out::{write_tar, TreeKind};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::content::{BlobInfo, ContentStore};
use crate::digest::{Algorithm, Digest, HashingWriter};
use crate::error::{Error, Result};

/// A layer written into the content store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLayer {
    /// The gzip blob.
    pub blob: BlobInfo,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
}

/// Tar the tree at `root` (see `TreeKind`), gzip it and store it as a blob. The blob appears in
/// the store only once complete; a failure leaves nothing behind. Relative paths in `skip` are
/// left out.
pub fn store_layer(
    store: &ContentStore,
    root: &Path,
    kind: TreeKind,
    skip: &[PathBuf],
) -> Result<StoredLayer> {
    static N: AtomicU64 = AtomicU64::new(0);
    let reference = format!(
        "layer-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let writer = store.writer(&reference, None, None)?;
    let gz = flate2::write::GzEncoder::new(writer, flate2::Compression::default());
    let mut tar_hash = HashingWriter::new(gz, Algorithm::Sha256);
    let written = write_tar(root, kind, skip, &mut tar_hash);
    let (gz, diff_id, uncompressed_size) = tar_hash.finish();
    if let Err(e) = written {
        if let Ok(w) = gz.finish() {
            let _ = w.abort();
        }
        return Err(Error::path("write layer tar", root, e));
    }
    let writer = gz
        .finish()
        .map_err(|e| Error::path("compress layer", root, e))?;
    let blob = writer.commit()?;
    Ok(StoredLayer {
        blob,
        diff_id,
        uncompressed_size,
    })
}
