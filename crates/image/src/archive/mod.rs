//! Image archives: `docker save` tars (classic `manifest.json` + `<id>.json` + layer tars, and
//! the newer ones with an OCI layout inside) and OCI image layout tars.
//!
//! Loading streams the tar once: JSON bookkeeping files are kept in memory (each capped at
//! `MAX_JSON_BLOB`), everything else goes straight into the content store. Only once every
//! referenced blob is stored and verified are the images (with their names) returned: a crash
//! mid-load leaves unreferenced blobs for GC, never a half-loaded named image.

mod load;
mod save;

pub use load::load;
pub use save::{save, ArchiveFormat, SaveImage};

use crate::digest::Digest;

/// One image found in an archive, its blobs now in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The manifest (or index) the archive names; synthesised for classic docker archives.
    pub manifest_digest: Digest,
    pub media_type: String,
    /// The image's config (Docker's image id), resolved for the host platform if an index.
    pub config_digest: Digest,
    /// Names the archive gives it ("busybox:latest"); possibly none.
    pub repo_tags: Vec<String>,
}

/// The `manifest.json` entry of a docker archive.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct DockerManifestEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// Annotation containerd and docker put on index.json entries: the full image name.
pub(crate) const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// OCI's reference annotation (by convention the tag alone, sometimes a full name).
pub(crate) const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
