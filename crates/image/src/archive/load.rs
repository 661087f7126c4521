//! Loading docker and OCI archives into the content store.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use super::{DockerManifestEntry, LoadedImage, IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION};
use crate::content::{BlobInfo, ContentStore, MAX_JSON_BLOB};
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, Result};
use crate::media::{self, sniff_document, Compression, Kind, PlatformSpec};
use crate::unpack::{detect_compression, normalize_entry_name, Decoder};

/// What the archive held, by path inside it.
#[derive(Default)]
struct Contents {
    /// Small bookkeeping files, in memory.
    docs: HashMap<PathBuf, Vec<u8>>,
    /// Everything else, now in the store.
    blobs: HashMap<PathBuf, BlobInfo>,
    /// Symlinks and hard links: path → target path (archive-relative).
    links: HashMap<PathBuf, PathBuf>,
}

impl Contents {
    fn resolve(&self, name: &str) -> Result<BlobInfo> {
        let mut path = normalize_entry_name(Path::new(name))?
            .ok_or_else(|| Error::Archive(format!("empty path {name:?}")))?;
        for _ in 0..16 {
            if let Some(b) = self.blobs.get(&path) {
                return Ok(b.clone());
            }
            match self.links.get(&path) {
                Some(t) => path = t.clone(),
                None => break,
            }
        }
        Err(Error::Archive(format!(
            "{name:?} is referenced but not in the archive"
        )))
    }
}

/// Top-level files read into memory: few and capped, so memory stays bounded.
fn is_bookkeeping(path: &Path) -> bool {
    matches!(
        path.to_str(),
        Some("manifest.json" | "index.json" | "oci-layout" | "repositories")
    )
}

/// Legacy per-layer metadata of classic docker archives: not needed, not stored.
fn is_legacy_layer_metadata(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let nested = path.parent().is_some_and(|p| !p.as_os_str().is_empty());
    nested && matches!(name, "json" | "VERSION")
}

/// `blobs/<algo>/<hex>` names its own digest.
fn digest_from_layout_path(path: &Path) -> Option<Digest> {
    let mut c = path.iter();
    if c.next()? != "blobs" {
        return None;
    }
    let algo = Algorithm::from_name(c.next()?.to_str()?)?;
    let hex = c.next()?.to_str()?;
    if c.next().is_some() {
        return None;
    }
    Digest::from_hex(algo, hex).ok()
}

/// Load every image in the archive read from `input` (plain or gzip/zstd-compressed tar).
pub fn load(store: &ContentStore, input: impl Read) -> Result<Vec<LoadedImage>> {
    let decoder = Decoder::new(BufReader::with_capacity(256 << 10, input))
        .map_err(|e| Error::io("read archive", e))?;
    let contents = read_contents(store, decoder)?;
    let images = if let Some(bytes) = contents.docs.get(Path::new("manifest.json")) {
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(bytes)
            .map_err(|e| Error::json("parse manifest.json of docker archive", e))?;
        let by_config = manifests_by_config(store, &contents)?;
        entries
            .iter()
            .map(|e| load_docker_entry(store, &contents, e, &by_config))
            .collect::<Result<Vec<_>>>()?
    } else if let Some(bytes) = contents.docs.get(Path::new("index.json")) {
        let index: ImageIndex = serde_json::from_slice(bytes)
            .map_err(|e| Error::json("parse index.json of OCI layout", e))?;
        index
            .manifests()
            .iter()
            .map(|d| load_oci_entry(store, d))
            .collect::<Result<Vec<_>>>()?
    } else {
        return Err(Error::Archive(
            "neither manifest.json (docker) nor index.json (OCI layout) found".into(),
        ));
    };
    for image in &images {
        check_complete(store, &image.manifest_digest)?;
    }
    Ok(merge_by_manifest(images))
}

fn read_contents(store: &ContentStore, input: impl Read) -> Result<Contents> {
    let mut contents = Contents::default();
    let mut archive = tar::Archive::new(input);
    let entries = archive
        .entries()
        .map_err(|e| Error::io("read archive", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io("read archive entry", e))?;
        let raw = entry
            .path()
            .map_err(|e| Error::io("read archive entry name", e))?
            .into_owned();
        let Some(path) = normalize_entry_name(&raw)? else {
            continue;
        };
        let shown = path.display().to_string();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if is_legacy_layer_metadata(&path) {
                    continue;
                }
                if is_bookkeeping(&path) {
                    let size = entry.size();
                    if size > MAX_JSON_BLOB {
                        return Err(Error::TooLarge {
                            what: shown,
                            size,
                            limit: MAX_JSON_BLOB,
                        });
                    }
                    let mut buf = Vec::with_capacity(size as usize);
                    entry
                        .read_to_end(&mut buf)
                        .map_err(|e| Error::io(format!("read {shown}"), e))?;
                    contents.docs.insert(path, buf);
                } else {
                    let expected = digest_from_layout_path(&path);
                    let size = Some(entry.size());
                    let info = store.ingest(&mut entry, expected.as_ref(), size)?;
                    contents.blobs.insert(path, info);
                }
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| Error::io(format!("read link {shown}"), e))?
                    .ok_or_else(|| Error::Archive(format!("link {shown} has no target")))?;
                // Symlinks are relative to their directory, hard links to the archive root.
                let joined = if entry.header().entry_type() == tar::EntryType::Symlink {
                    path.parent().unwrap_or(Path::new("")).join(&target)
                } else {
                    target.into_owned()
                };
                if let Some(t) = normalize_entry_name(&joined)? {
                    contents.links.insert(path, t);
                }
            }
            _ => {}
        }
    }
    Ok(contents)
}

/// For docker archives with an OCI layout inside: config digest → the original manifest, so
/// the loaded image keeps its real manifest digest.
fn manifests_by_config(
    store: &ContentStore,
    contents: &Contents,
) -> Result<HashMap<Digest, Descriptor>> {
    let mut out = HashMap::new();
    let Some(bytes) = contents.docs.get(Path::new("index.json")) else {
        return Ok(out);
    };
    let Ok(index) = serde_json::from_slice::<ImageIndex>(bytes) else {
        return Ok(out);
    };
    for d in index.manifests() {
        let digest = Digest::from_oci(d.digest())?;
        let Ok(doc) = store.read_bounded(&digest, MAX_JSON_BLOB) else {
            continue;
        };
        if sniff_document(&doc) != Kind::Manifest {
            continue;
        }
        if let Ok(m) = serde_json::from_slice::<ImageManifest>(&doc) {
            out.insert(Digest::from_oci(m.config().digest())?, d.clone());
        }
    }
    Ok(out)
}

fn load_docker_entry(
    store: &ContentStore,
    contents: &Contents,
    entry: &DockerManifestEntry,
    by_config: &HashMap<Digest, Descriptor>,
) -> Result<LoadedImage> {
    let config = contents.resolve(&entry.config)?;
    let repo_tags = entry.repo_tags.clone().unwrap_or_default();
    if let Some(desc) = by_config.get(&config.digest) {
        return Ok(LoadedImage {
            manifest_digest: Digest::from_oci(desc.digest())?,
            media_type: desc.media_type().to_string(),
            config_digest: config.digest,
            repo_tags,
        });
    }
    // Classic archive: check the config, then describe the layers as they are.
    let parsed: ImageConfiguration = store.read_json(&config.digest)?;
    if parsed.rootfs().diff_ids().len() != entry.layers.len() {
        return Err(Error::Archive(format!(
            "config {} lists {} diff_ids but manifest.json {} layers",
            config.digest,
            parsed.rootfs().diff_ids().len(),
            entry.layers.len()
        )));
    }
    let mut layers = Vec::new();
    for name in &entry.layers {
        let info = contents.resolve(name)?;
        let mut blob = BufReader::new(store.open_blob(&info.digest)?);
        let media_type = match detect_compression(&mut blob)
            .map_err(|e| Error::io(format!("read layer {name}"), e))?
        {
            Compression::None => MediaType::ImageLayer,
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        };
        layers.push(Descriptor::new(media_type, info.size, info.digest.to_oci()));
    }
    let config_desc = Descriptor::new(MediaType::ImageConfig, config.size, config.digest.to_oci());
    let manifest = media::store_manifest(store, config_desc, layers)?;
    Ok(LoadedImage {
        manifest_digest: Digest::from_oci(manifest.digest())?,
        media_type: manifest.media_type().to_string(),
        config_digest: config.digest,
        repo_tags,
    })
}

fn load_oci_entry(store: &ContentStore, desc: &Descriptor) -> Result<LoadedImage> {
    let digest = Digest::from_oci(desc.digest())?;
    let resolved = media::resolve_image(store, &digest, &PlatformSpec::host())?;
    let annotations = desc.annotations().clone().unwrap_or_default();
    let repo_tags = annotations
        .get(IMAGE_NAME_ANNOTATION)
        .or_else(|| annotations.get(REF_NAME_ANNOTATION))
        .map(|n| vec![n.clone()])
        .unwrap_or_default();
    Ok(LoadedImage {
        manifest_digest: digest,
        media_type: desc.media_type().to_string(),
        config_digest: resolved.config_digest,
        repo_tags,
    })
}

/// An index lists one entry per name; report each image once with all its names.
fn merge_by_manifest(images: Vec<LoadedImage>) -> Vec<LoadedImage> {
    let mut out: Vec<LoadedImage> = Vec::new();
    for image in images {
        match out
            .iter_mut()
            .find(|i| i.manifest_digest == image.manifest_digest)
        {
            Some(existing) => {
                for tag in image.repo_tags {
                    if !existing.repo_tags.contains(&tag) {
                        existing.repo_tags.push(tag);
                    }
                }
            }
            None => out.push(image),
        }
    }
    out
}

/// Every blob a loaded image needs is in the store (for an index: the host platform's image).
fn check_complete(store: &ContentStore, manifest: &Digest) -> Result<()> {
    let image = media::resolve_image(store, manifest, &PlatformSpec::host())?;
    for l in image.manifest.layers() {
        let d = Digest::from_oci(l.digest())?;
        if !store.has(&d) {
            return Err(Error::Archive(format!(
                "layer {d} of {manifest} is not in the archive"
            )));
        }
    }
    Ok(())
}
