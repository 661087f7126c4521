//! `docker diff` (what a container changed in its root filesystem) and `docker export` (its
//! merged root filesystem as a tar).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use berth_image::diff::{overlay_changes, write_tar, Change, TreeKind};
use berth_image::snapshot::{Backend, Mount};

use crate::error::{Error, Result};
use crate::Engine;

/// Files the engine bind-mounts over (their mount points appear in the writable layer, the
/// container's writes go to the engine's copies): not the container's changes, as with Docker.
pub(crate) fn engine_files() -> Vec<PathBuf> {
    ["etc/hostname", "etc/hosts", "etc/resolv.conf"]
        .iter()
        .map(PathBuf::from)
        .collect()
}

/// A container's writable layer and the layers under it (topmost first).
pub(crate) struct Layers {
    pub upper: PathBuf,
    pub lowers: Vec<PathBuf>,
}

impl Engine {
    /// Where the container's own changes are. Needs overlay: with the copy backend the
    /// writable snapshot is a full copy, with nothing to tell changes apart.
    pub(crate) fn container_layers(&self, id: &str) -> Result<Layers> {
        if self.snapshots.backend() != Backend::Overlay {
            return Err(Error::Conflict(
                "this needs the overlay snapshotter; this daemon keeps plain copies (no overlayfs)"
                    .into(),
            ));
        }
        match self.snapshots.mounts(id)? {
            Mount::Overlay {
                lowerdirs,
                upperdir: Some(upper),
                ..
            } => Ok(Layers {
                upper,
                lowers: lowerdirs,
            }),
            // An image without layers: the snapshot is its own only layer.
            Mount::Bind { source } => Ok(Layers {
                upper: source,
                lowers: Vec::new(),
            }),
            Mount::Overlay { upperdir: None, .. } => Err(Error::Internal(format!(
                "container {id}: snapshot has no writable layer"
            ))),
        }
    }

    /// `GET /containers/{id}/changes`.
    pub async fn container_changes(self: &Arc<Self>, key: &str) -> Result<Vec<Change>> {
        let id = self.container(key)?.id;
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let layers = engine.container_layers(&id)?;
            overlay_changes(&layers.upper, &layers.lowers, &engine_files())
                .map_err(|e| Error::internal(format!("changes of {id}"), e))
        })
        .await
        .map_err(|e| Error::internal("container changes", e))?
    }

    /// `GET /containers/{id}/export`: the merged root filesystem as a tar, mounted for the
    /// occasion when the container is not running. Volumes are not part of it (as with Docker).
    pub async fn export_container(
        self: &Arc<Self>,
        key: &str,
        out: Box<dyn Write + Send>,
    ) -> Result<()> {
        let name = key.to_string();
        self.with_rootfs(key, move |root| {
            let mut out = out;
            write_tar(root, TreeKind::Plain, &[], &mut out)
                .and_then(|_| out.flush())
                .map_err(|e| Error::internal(format!("export {name}"), e))
        })
        .await
    }
}
