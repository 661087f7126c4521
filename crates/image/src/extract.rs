//! Image → snapshots: unpack each layer blob from the content store into a snapshot named by
//! its chain id, skipping layers already there.

use std::io::BufReader;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::media::{kind_of, Kind, ResolvedImage};
use crate::snapshot::{chain_id, Snapshotter};
use crate::unpack::{apply_layer, UnpackOptions};

/// Unpack `image`'s layers; returns the top chain id (None for an image without layers).
/// `opts.whiteouts` is overridden to what the snapshotter's backend needs.
pub fn unpack_image(
    store: &ContentStore,
    snapshots: &Snapshotter,
    image: &ResolvedImage,
    opts: &UnpackOptions,
) -> Result<Option<Digest>> {
    let opts = UnpackOptions {
        whiteouts: snapshots.whiteout_mode(),
        ..opts.clone()
    };
    let mut parent: Option<Digest> = None;
    for (layer, diff_id) in image.layers()? {
        let chain = chain_id(parent.as_ref(), &diff_id);
        if !snapshots.exists(&chain) {
            if !matches!(kind_of(layer.media_type()), Kind::Layer(_)) {
                return Err(Error::UnsupportedMediaType {
                    media_type: layer.media_type().to_string(),
                    what: format!("layer of {}", image.manifest_digest),
                });
            }
            let blob = Digest::from_oci(layer.digest())?;
            unpack_layer(
                store,
                snapshots,
                &blob,
                &diff_id,
                parent.as_ref(),
                &chain,
                &opts,
            )?;
        }
        parent = Some(chain);
    }
    Ok(parent)
}

fn unpack_layer(
    store: &ContentStore,
    snapshots: &Snapshotter,
    blob: &Digest,
    diff_id: &Digest,
    parent: Option<&Digest>,
    chain: &Digest,
    opts: &UnpackOptions,
) -> Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let key = format!(
        "extract-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        &chain.hex()[..12]
    );
    snapshots.prepare(&key, parent)?;
    let result = (|| {
        let file = store.open_blob(blob)?;
        let stats = apply_layer(
            BufReader::with_capacity(256 << 10, file),
            &snapshots.active_fs(&key)?,
            opts,
        )?;
        // Both digests are checked: the blob against its descriptor, the tar against the config.
        if &stats.blob.digest != blob {
            return Err(Error::DigestMismatch {
                expected: blob.clone(),
                actual: stats.blob.digest,
            });
        }
        if &stats.diff_id != diff_id {
            return Err(Error::DigestMismatch {
                expected: diff_id.clone(),
                actual: stats.diff_id,
            });
        }
        snapshots.commit(&key, chain)
    })();
    if result.is_err() {
        let _ = snapshots.remove_active(&key);
    }
    result
}
