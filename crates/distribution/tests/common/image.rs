//! Images made in the test: gzip layers, configs, manifests, indexes, OCI layouts.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use berth_image::Digest;
use serde_json::{json, Value};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Blobs by digest plus the top document.
#[derive(Clone)]
pub struct Image {
    pub blobs: BTreeMap<Digest, Vec<u8>>,
    /// Layer blob digests and diff ids, bottom first.
    pub layers: Vec<(Digest, Digest)>,
    pub config: Digest,
    pub manifest: Digest,
}

impl Default for Image {
    fn default() -> Self {
        let none = Digest::sha256_of(b"");
        Image {
            blobs: BTreeMap::new(),
            layers: Vec::new(),
            config: none.clone(),
            manifest: none,
        }
    }
}

impl Image {
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.blobs[&self.manifest]
    }

    pub fn put(&mut self, bytes: Vec<u8>) -> Digest {
        let d = Digest::sha256_of(&bytes);
        self.blobs.insert(d.clone(), bytes);
        d
    }
}

/// A gzip tar of `dir`'s contents (as docker would build a layer).
pub fn layer_from_dir(dir: &Path) -> (Vec<u8>, Digest) {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    let tar = b.into_inner().unwrap();
    gzip_layer(tar)
}

/// A gzip tar holding `files` (path, content).
pub fn layer_from_files(files: &[(&str, &[u8])]) -> (Vec<u8>, Digest) {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    gzip_layer(b.into_inner().unwrap())
}

fn gzip_layer(tar: Vec<u8>) -> (Vec<u8>, Digest) {
    let diff_id = Digest::sha256_of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// An image of `layers` (gzip blob, diff id) for `arch`.
pub fn image(layers: Vec<(Vec<u8>, Digest)>, arch: &str) -> Image {
    let mut img = Image::default();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (blob, diff_id) in layers {
        let size = blob.len();
        let d = img.put(blob);
        descs.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d.to_string(), "size": size}));
        diff_ids.push(diff_id.to_string());
        img.layers.push((d, diff_id));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_size = config.len();
    img.config = img.put(config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": img.config.to_string(), "size": config_size},
        "layers": descs,
    }))
    .unwrap();
    img.manifest = img.put(manifest);
    img
}

/// busybox at the bottom, a small layer with `marker` on top.
pub fn busybox_image(marker: &str) -> Image {
    let root = tempfile::tempdir().unwrap();
    berth_testsupport::busybox_rootfs(root.path()).unwrap();
    let base = layer_from_dir(root.path());
    let top = layer_from_files(&[("etc/berth-marker", marker.as_bytes())]);
    image(vec![base, top], "amd64")
}

/// An index over `images` with their platforms; the index's blobs hold everything.
pub fn index(images: &[(&Image, &str)]) -> Image {
    let mut out = Image::default();
    let mut manifests = Vec::new();
    for (img, arch) in images {
        out.blobs.extend(img.blobs.clone());
        manifests.push(json!({
            "mediaType": OCI_MANIFEST, "digest": img.manifest.to_string(),
            "size": img.manifest_bytes().len(),
            "platform": {"architecture": arch, "os": "linux"}}));
    }
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))
    .unwrap();
    out.manifest = out.put(bytes);
    out
}

/// Write `img` as an OCI layout directory with `tag` pointing at its top document.
pub fn write_oci_layout(img: &Image, dir: &Path, tag: &str) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    for (d, bytes) in &img.blobs {
        fs::write(blobs.join(d.hex()), bytes).unwrap();
    }
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let top: Value = serde_json::from_slice(img.manifest_bytes()).unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": top["mediaType"], "digest": img.manifest.to_string(),
            "size": img.manifest_bytes().len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Put every blob of `img` into `store`.
pub fn load_into(img: &Image, store: &berth_image::ContentStore) {
    for (d, bytes) in &img.blobs {
        store
            .ingest(&bytes[..], Some(d), Some(bytes.len() as u64))
            .unwrap();
    }
}
