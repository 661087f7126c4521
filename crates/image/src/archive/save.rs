//! Writing images as a docker archive (which here is also an OCI layout, like docker 25+
//! writes) or as a plain OCI layout tar.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};

use super::{DockerManifestEntry, IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION};
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::media::{resolve_image, PlatformSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `manifest.json` for `docker load`, plus `oci-layout`/`index.json`/`blobs/` (docker 25+).
    Docker,
    /// An OCI image layout only.
    Oci,
}

/// An image to save: its manifest (an index is resolved to the host platform) and names.
#[derive(Debug, Clone)]
pub struct SaveImage {
    pub manifest_digest: Digest,
    pub repo_tags: Vec<String>,
}

/// Write `images` to `out` as a tar. Blobs are streamed from the store; entries are written in
/// a fixed order with fixed metadata, so the same images give the same bytes.
pub fn save(
    store: &ContentStore,
    images: &[SaveImage],
    format: ArchiveFormat,
    out: impl Write,
) -> Result<()> {
    let mut blobs: Vec<Digest> = Vec::new();
    let mut seen = HashSet::new();
    let mut index_entries = Vec::new();
    let mut docker_entries = Vec::new();
    for image in images {
        let resolved = resolve_image(store, &image.manifest_digest, &PlatformSpec::host())?;
        let manifest_size = store.size(&resolved.manifest_digest)?;
        let mut layer_digests = Vec::new();
        for l in resolved.manifest.layers() {
            layer_digests.push(Digest::from_oci(l.digest())?);
        }
        for d in std::iter::once(&resolved.manifest_digest)
            .chain(std::iter::once(&resolved.config_digest))
            .chain(&layer_digests)
        {
            if seen.insert(d.clone()) {
                blobs.push(d.clone());
            }
        }
        let media_type = resolved
            .manifest
            .media_type()
            .clone()
            .unwrap_or(MediaType::ImageManifest);
        let base = Descriptor::new(media_type, manifest_size, resolved.manifest_digest.to_oci());
        if image.repo_tags.is_empty() {
            index_entries.push(base.clone());
        }
        for tag in &image.repo_tags {
            let mut d = base.clone();
            let mut ann = HashMap::new();
            ann.insert(IMAGE_NAME_ANNOTATION.to_string(), tag.clone());
            ann.insert(REF_NAME_ANNOTATION.to_string(), tag_part(tag).to_string());
            d.set_annotations(Some(ann));
            index_entries.push(d);
        }
        docker_entries.push(DockerManifestEntry {
            config: blob_path(&resolved.config_digest),
            repo_tags: Some(image.repo_tags.clone()),
            layers: layer_digests.iter().map(blob_path).collect(),
        });
    }

    let mut tar = tar::Builder::new(out);
    let mut dirs = BTreeMap::new();
    for d in &blobs {
        dirs.insert(format!("blobs/{}/", d.algorithm()), ());
    }
    append_dir(&mut tar, "blobs/")?;
    for dir in dirs.keys() {
        append_dir(&mut tar, dir)?;
    }
    for d in &blobs {
        let size = store.size(d)?;
        let file = store.open_blob(d)?;
        append_file(&mut tar, &blob_path(d), size, file)?;
    }
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append_file(&mut tar, "oci-layout", layout.len() as u64, &layout[..])?;
    let index: ImageIndex = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(index_entries)
        .build()
        .map_err(|e| Error::Archive(format!("build index.json: {e}")))?;
    // Through a Value: its maps are sorted, the annotation HashMaps are not.
    let index = serde_json::to_value(&index)
        .and_then(|v| serde_json::to_vec(&v))
        .map_err(|e| Error::json("serialize index.json", e))?;
    append_file(&mut tar, "index.json", index.len() as u64, &index[..])?;
    if format == ArchiveFormat::Docker {
        let manifest = serde_json::to_vec(&docker_entries)
            .map_err(|e| Error::json("serialize manifest.json", e))?;
        append_file(
            &mut tar,
            "manifest.json",
            manifest.len() as u64,
            &manifest[..],
        )?;
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| Error::io("finish archive", e))
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// "busybox:latest" → "latest"; "reg:5000/app" → "latest" (no tag given).
fn tag_part(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag,
        _ => "latest",
    }
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = header(tar::EntryType::Directory, 0, 0o755);
    tar.append_data(&mut h, path, std::io::empty())
        .map_err(|e| Error::io(format!("write {path} to archive"), e))
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl std::io::Read,
) -> Result<()> {
    let mut h = header(tar::EntryType::Regular, size, 0o644);
    tar.append_data(&mut h, path, data)
        .map_err(|e| Error::io(format!("write {path} to archive"), e))
}

#[cfg(test)]
mod tests {
    use super::tag_part;

    #[test]
    fn tag_part_of_names() {
        assert_eq!(tag_part("busybox:latest"), "latest");
        assert_eq!(tag_part("reg:5000/app:v1"), "v1");
        assert_eq!(tag_part("reg:5000/app"), "latest");
        assert_eq!(tag_part("app"), "latest");
    }
}
