//! OCI images built from directories, for tests that import, push or load an image.
//!
//! `ImageBuilder` packs each layer directory into a gzip'd tar, writes the image config, the
//! manifest, `index.json` and `oci-layout` as an OCI image layout directory, and can archive that
//! layout into one tar that `ctr images import`, `skopeo copy oci-archive:` and `docker load` accept
//! (the archive also carries a Docker `manifest.json` naming the image).
//!
//! Everything is deterministic: fixed mtimes, owner root, sorted entries, gzip without a timestamp,
//! so the same directories always give the same digests.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The OCI annotation that names a manifest inside an index (skopeo `oci:DIR:REF` matches it).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation for the full image name; `ctr images import` prefers it.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The name the busybox test image gets when imported.
pub const BUSYBOX_REF: &str = "localhost/berth-test/busybox:latest";

/// Timestamp of every tar entry (some tools mishandle 0); the value the `tar` crate also uses.
const LAYER_MTIME: u64 = 1_153_704_088;
/// `created` of the image config, fixed so digests never change.
const IMAGE_CREATED: &str = "2000-01-01T00:00:00Z";

/// `sha256:<hex>` of `bytes`, the digest form OCI uses everywhere.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A content descriptor: what a manifest or index says about a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: sha256_digest(bytes),
            size: bytes.len() as u64,
        }
    }

    fn to_json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }

    /// Path of the blob inside an OCI layout (`blobs/sha256/<hex>`).
    pub fn blob_path(&self) -> String {
        blob_path(&self.digest)
    }
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// What was written: every digest a test may want to check against a registry or a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub manifest: Descriptor,
    pub config: Descriptor,
    /// Compressed layer blobs, bottom layer first.
    pub layers: Vec<Descriptor>,
    /// sha256 of each uncompressed layer tar (the config's `rootfs.diff_ids`).
    pub diff_ids: Vec<String>,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
    /// The name given to the image, if any.
    pub ref_name: Option<String>,
}

/// Where a layer's content comes from.
#[derive(Debug, Clone)]
enum LayerSource {
    /// A directory whose content becomes the layer root.
    Dir(PathBuf),
    /// An uncompressed tar stream, for layers a directory cannot express (whiteouts with odd names).
    Tar(Vec<u8>),
}

/// Builds a single-platform OCI image from layer directories.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    layers: Vec<LayerSource>,
    architecture: String,
    os: String,
    /// The `config` object of the image config (Cmd, Env, Entrypoint, ...), Docker's field names.
    config: Map<String, Value>,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ImageBuilder {
    /// An empty linux/amd64 image with no layers and the usual PATH.
    pub fn new() -> ImageBuilder {
        let mut config = Map::new();
        config.insert(
            "Env".into(),
            json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
        );
        ImageBuilder {
            layers: Vec::new(),
            architecture: "amd64".into(),
            os: "linux".into(),
            config,
        }
    }

    /// Add a layer (on top of the previous ones) from the content of `dir`, read at write time.
    pub fn layer_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.layers.push(LayerSource::Dir(dir.into()));
        self
    }

    /// Add a layer from an uncompressed tar stream.
    pub fn layer_tar(mut self, tar: Vec<u8>) -> Self {
        self.layers.push(LayerSource::Tar(tar));
        self
    }

    pub fn architecture(mut self, arch: &str) -> Self {
        self.architecture = arch.into();
        self
    }

    pub fn os(mut self, os: &str) -> Self {
        self.os = os.into();
        self
    }

    pub fn cmd(self, args: &[&str]) -> Self {
        self.config_field("Cmd", json!(args))
    }

    pub fn entrypoint(self, args: &[&str]) -> Self {
        self.config_field("Entrypoint", json!(args))
    }

    /// Replace the whole environment (`KEY=value` entries).
    pub fn env(self, vars: &[&str]) -> Self {
        self.config_field("Env", json!(vars))
    }

    pub fn working_dir(self, dir: &str) -> Self {
        self.config_field("WorkingDir", json!(dir))
    }

    pub fn user(self, user: &str) -> Self {
        self.config_field("User", json!(user))
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        let labels = self
            .config
            .entry("Labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = labels {
            map.insert(key.into(), json!(value));
        }
        self
    }

    /// Set any field of the config's `config` object (e.g. `ExposedPorts`, `StopSignal`).
    pub fn config_field(mut self, key: &str, value: Value) -> Self {
        self.config.insert(key.into(), value);
        self
    }

    /// Write an OCI image layout into `dir` (created if missing). With `ref_name`, the index entry is
    /// annotated with it (full name for containerd, tag for `org.opencontainers.image.ref.name`) and a
    /// Docker `manifest.json` lists it, so importers give the image that name.
    pub fn write_layout(&self, dir: &Path, ref_name: Option<&str>) -> io::Result<ImageInfo> {
        fs::create_dir_all(dir.join("blobs/sha256"))
            .map_err(|e| ctx(e, format!("create {}/blobs/sha256", dir.display())))?;

        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for source in &self.layers {
            let tar = match source {
                LayerSource::Dir(path) => tar_directory(path)?,
                LayerSource::Tar(bytes) => bytes.clone(),
            };
            diff_ids.push(sha256_digest(&tar));
            let gz = gzip(&tar)?;
            let desc = Descriptor::of(MEDIA_TYPE_LAYER_GZIP, &gz);
            write_blob(dir, &desc, &gz)?;
            layers.push(desc);
        }

        let config_bytes = to_json_bytes(&self.image_config(&diff_ids))?;
        let config = Descriptor::of(MEDIA_TYPE_CONFIG, &config_bytes);
        write_blob(dir, &config, &config_bytes)?;

        let manifest_bytes = to_json_bytes(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": config.to_json(),
            "layers": layers.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        }))?;
        let manifest = Descriptor::of(MEDIA_TYPE_MANIFEST, &manifest_bytes);
        write_blob(dir, &manifest, &manifest_bytes)?;

        let mut entry = manifest.to_json();
        entry["platform"] = json!({"architecture": self.architecture, "os": self.os});
        if let Some(name) = ref_name {
            entry["annotations"] = json!({
                ANNOTATION_CONTAINERD_NAME: name,
                ANNOTATION_REF_NAME: tag_of(name),
            });
            // Docker's `load` reads this; layers are gzip'd blobs, which it accepts.
            let docker = json!([{
                "Config": config.blob_path(),
                "RepoTags": [name],
                "Layers": layers.iter().map(Descriptor::blob_path).collect::<Vec<_>>(),
            }]);
            write_file(&dir.join("manifest.json"), &to_json_bytes(&docker)?)?;
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [entry],
        });
        write_file(&dir.join("index.json"), &to_json_bytes(&index)?)?;
        write_file(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;

        Ok(ImageInfo {
            manifest_digest: manifest.digest.clone(),
            config_digest: config.digest.clone(),
            layer_digests: layers.iter().map(|l| l.digest.clone()).collect(),
            manifest,
            config,
            layers,
            diff_ids,
            ref_name: ref_name.map(str::to_string),
        })
    }

    /// Write the image as one tar archive of its OCI layout (plus Docker `manifest.json`), named
    /// `ref_name`, at `path`.
    pub fn write_tar(&self, path: &Path, ref_name: &str) -> io::Result<ImageInfo> {
        let staging = tempfile::Builder::new()
            .prefix("berth-oci-layout-")
            .tempdir()?;
        let info = self.write_layout(staging.path(), Some(ref_name))?;
        let file =
            fs::File::create(path).map_err(|e| ctx(e, format!("create {}", path.display())))?;
        let mut archive = tar::Builder::new(io::BufWriter::new(file));
        append_tree(&mut archive, staging.path(), Path::new(""))?;
        archive
            .into_inner()?
            .flush()
            .map_err(|e| ctx(e, format!("write {}", path.display())))?;
        Ok(info)
    }

    fn image_config(&self, diff_ids: &[String]) -> Value {
        let history: Vec<Value> = diff_ids
            .iter()
            .map(|_| json!({"created": IMAGE_CREATED, "created_by": "berth-testsupport"}))
            .collect();
        json!({
            "created": IMAGE_CREATED,
            "architecture": self.architecture,
            "os": self.os,
            "config": Value::Object(self.config.clone()),
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        })
    }
}

/// The builder for the busybox test image: one layer from `rootfs` (see `busybox_rootfs`), `sh`.
pub fn busybox_image(rootfs: &Path) -> ImageBuilder {
    ImageBuilder::new().layer_dir(rootfs).cmd(&["sh"])
}

/// Build a busybox rootfs and write it as an OCI layout in `dir`, named `BUSYBOX_REF`.
pub fn write_busybox_oci_layout(dir: &Path) -> io::Result<ImageInfo> {
    let rootfs = tempfile::Builder::new()
        .prefix("berth-busybox-rootfs-")
        .tempdir()?;
    crate::busybox_rootfs(rootfs.path())?;
    busybox_image(rootfs.path()).write_layout(dir, Some(BUSYBOX_REF))
}

/// Build a busybox rootfs and write it as an importable image archive at `path`, named `ref_name`.
pub fn write_busybox_oci_tar(path: &Path, ref_name: &str) -> io::Result<ImageInfo> {
    let rootfs = tempfile::Builder::new()
        .prefix("berth-busybox-rootfs-")
        .tempdir()?;
    crate::busybox_rootfs(rootfs.path())?;
    busybox_image(rootfs.path()).write_tar(path, ref_name)
}

/// The tag of `name` (`latest` when there is none): the part after the last `:` past the last `/`.
fn tag_of(name: &str) -> &str {
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag,
        None => "latest",
    }
}

/// An uncompressed tar of the content of `dir` (paths relative to it, no leading `./`).
pub fn tar_directory(dir: &Path) -> io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    append_tree(&mut archive, dir, Path::new(""))?;
    archive.into_inner()
}

/// Append every entry under `dir` (sorted, recursively) as `prefix/<relative path>`.
fn append_tree<W: Write>(
    archive: &mut tar::Builder<W>,
    dir: &Path,
    prefix: &Path,
) -> io::Result<()> {
    let mut entries = fs::read_dir(dir)
        .map_err(|e| ctx(e, format!("read dir {}", dir.display())))?
        .collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = prefix.join(entry.file_name());
        let meta =
            fs::symlink_metadata(&path).map_err(|e| ctx(e, format!("stat {}", path.display())))?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(LAYER_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(meta.permissions().mode() & 0o7777);
        let ft = meta.file_type();
        if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            archive.append_data(&mut header, &name, io::empty())?;
            append_tree(archive, &path, &name)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            archive.append_link(&mut header, &name, &target)?;
        } else if ft.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.size());
            let file =
                fs::File::open(&path).map_err(|e| ctx(e, format!("open {}", path.display())))?;
            archive.append_data(&mut header, &name, file)?;
        } else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{}: only directories, files and symlinks go into layers",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes)?;
    enc.finish()
}

fn write_blob(layout: &Path, desc: &Descriptor, bytes: &[u8]) -> io::Result<()> {
    write_file(&layout.join(desc.blob_path()), bytes)
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::write(path, bytes).map_err(|e| ctx(e, format!("write {}", path.display())))
}

fn to_json_bytes(value: &Value) -> io::Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(io::Error::other)
}

fn ctx(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::Command;

    fn read_json(path: &Path) -> Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    fn small_tree(dir: &Path) {
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::create_dir_all(dir.join("tmp")).unwrap();
        fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::write(dir.join("etc/greeting"), "hello\n").unwrap();
        std::os::unix::fs::symlink("etc/greeting", dir.join("link")).unwrap();
    }

    #[test]
    fn layout_blobs_match_their_digests() {
        let src = tempfile::tempdir().unwrap();
        small_tree(src.path());
        let out = tempfile::tempdir().unwrap();
        let info = ImageBuilder::new()
            .layer_dir(src.path())
            .cmd(&["cat", "/etc/greeting"])
            .write_layout(out.path(), Some("localhost/t/small:v1"))
            .unwrap();

        for desc in info.layers.iter().chain([&info.config, &info.manifest]) {
            let blob = fs::read(out.path().join(desc.blob_path())).unwrap();
            assert_eq!(sha256_digest(&blob), desc.digest, "{desc:?}");
            assert_eq!(blob.len() as u64, desc.size);
        }
        // diff_id is the digest of the decompressed layer.
        let gz = fs::read(out.path().join(info.layers[0].blob_path())).unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(sha256_digest(&tar), info.diff_ids[0]);

        let config = read_json(&out.path().join(info.config.blob_path()));
        assert_eq!(config["rootfs"]["diff_ids"], json!(info.diff_ids));
        assert_eq!(config["config"]["Cmd"], json!(["cat", "/etc/greeting"]));
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");

        let manifest = read_json(&out.path().join(info.manifest.blob_path()));
        assert_eq!(manifest["config"]["digest"], json!(info.config_digest));
        assert_eq!(
            manifest["layers"][0]["digest"],
            json!(info.layer_digests[0])
        );

        let index = read_json(&out.path().join("index.json"));
        let entry = &index["manifests"][0];
        assert_eq!(entry["digest"], json!(info.manifest_digest));
        assert_eq!(entry["annotations"][ANNOTATION_REF_NAME], "v1");
        assert_eq!(
            entry["annotations"][ANNOTATION_CONTAINERD_NAME],
            "localhost/t/small:v1"
        );
        let docker = read_json(&out.path().join("manifest.json"));
        assert_eq!(docker[0]["RepoTags"][0], "localhost/t/small:v1");
        assert!(out.path().join("oci-layout").is_file());
    }

    #[test]
    fn layer_keeps_modes_symlinks_and_content() {
        let src = tempfile::tempdir().unwrap();
        small_tree(src.path());
        let tar = tar_directory(src.path()).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let header = entry.header().clone();
            match path.as_str() {
                "tmp" => assert_eq!(header.mode().unwrap(), 0o1777),
                "link" => assert_eq!(
                    entry.link_name().unwrap().unwrap().to_str(),
                    Some("etc/greeting")
                ),
                "etc/greeting" => {
                    let mut s = String::new();
                    entry.read_to_string(&mut s).unwrap();
                    assert_eq!(s, "hello\n");
                }
                _ => {}
            }
            seen.push(path);
        }
        assert_eq!(seen, ["etc", "etc/greeting", "link", "tmp"]);
    }

    #[test]
    fn same_input_gives_same_digests() {
        let src = tempfile::tempdir().unwrap();
        small_tree(src.path());
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let image = ImageBuilder::new().layer_dir(src.path());
        let ia = image.write_layout(a.path(), None).unwrap();
        let ib = image.write_layout(b.path(), None).unwrap();
        assert_eq!(ia.manifest_digest, ib.manifest_digest);
        assert!(!a.path().join("manifest.json").exists());
    }

    #[test]
    fn busybox_tar_holds_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busybox.tar");
        let info = write_busybox_oci_tar(&path, BUSYBOX_REF).unwrap();
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(fs::File::open(&path).unwrap());
        for entry in archive.entries().unwrap() {
            names.push(
                entry
                    .unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        for want in ["oci-layout", "index.json", "manifest.json"] {
            assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
        }
        for desc in info.layers.iter().chain([&info.config, &info.manifest]) {
            assert!(names.contains(&desc.blob_path()), "{desc:?} missing");
        }
    }

    #[test]
    fn skopeo_reads_the_busybox_layout() {
        let skopeo = crate::which("skopeo");
        if !crate::require(
            skopeo.is_some(),
            "skopeo installed (apt-get install skopeo)",
        ) {
            return;
        }
        let skopeo = skopeo.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let info = write_busybox_oci_layout(dir.path()).unwrap();
        let out = Command::new(skopeo)
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:latest", dir.path().display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(sha256_digest(&out.stdout), info.manifest_digest);
        let out = Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(format!("oci:{}:latest", dir.path().display()))
            .output()
            .unwrap();
        assert!(out.status.success());
        let config: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(config["config"]["Cmd"], json!(["sh"]));
    }

    #[test]
    fn skopeo_reads_the_busybox_archive() {
        let skopeo = crate::which("skopeo");
        if !crate::require(
            skopeo.is_some(),
            "skopeo installed (apt-get install skopeo)",
        ) {
            return;
        }
        let skopeo = skopeo.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busybox.tar");
        let info = write_busybox_oci_tar(&path, "localhost/t/busybox:v2").unwrap();
        let out = Command::new(skopeo)
            .args(["inspect", "--raw"])
            .arg(format!("oci-archive:{}:v2", path.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(sha256_digest(&out.stdout), info.manifest_digest);

        // The Docker view of the same archive (manifest.json), as `docker load` reads it.
        let out = Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(format!("docker-archive:{}", path.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect docker-archive: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"], json!(info.diff_ids));
    }
}
