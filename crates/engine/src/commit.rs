//! Images made here rather than pulled or loaded: `commit` (a container's writable layer on
//! top of its image) and `import` (a root filesystem tarball as a one-layer image).
//!
//! Crash safety: everything is written under the store lock (the one image load, container
//! create and garbage collection take), in the order blobs → config → manifest → database row.
//! A crash before the row leaves only unnamed blobs, which the next collection removes; no
//! half-made image is ever listed.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use berth_image::diff::{store_layer, StoredLayer, TreeKind};
use berth_image::media::{store_image, PlatformSpec, OCI_LAYER_GZIP};
use berth_image::unpack::{apply_layer, DevicePolicy, UnpackOptions};
use berth_image::Digest;
use oci_spec::image::{
    Arch, Config, Descriptor, History, ImageConfiguration, MediaType, Os, RootFs,
};

use crate::containers::model::Status;
use crate::db::ImageRow;
use crate::error::{Error, Result};
use crate::image_config::{apply_changes, merge_env, ConfigOverrides};
use crate::images::normalize;
use crate::{ids, Engine};

/// `POST /commit`'s options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// "repo[:tag]" to name the image; None leaves it untagged.
    pub reference: Option<String>,
    pub comment: String,
    pub author: String,
    pub pause: bool,
    pub changes: Vec<String>,
    pub overrides: ConfigOverrides,
}

/// `POST /images/create?fromSrc=-`'s options.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub reference: Option<String>,
    pub message: String,
    pub changes: Vec<String>,
    pub platform: Option<String>,
}

/// "repo" + optional "tag" as Docker's query gives them → a normalised name.
pub fn reference(repo: Option<&str>, tag: Option<&str>) -> Result<Option<String>> {
    let Some(repo) = repo.filter(|r| !r.is_empty()) else {
        if tag.is_some_and(|t| !t.is_empty()) {
            return Err(Error::InvalidParameter(
                "tag: a tag needs a repository (repo)".into(),
            ));
        }
        return Ok(None);
    };
    let name = match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    berth_distribution::reference::Reference::parse(&name)
        .map_err(|e| Error::InvalidParameter(format!("repo: invalid reference {name:?}: {e}")))?;
    if name.contains('@') {
        return Err(Error::InvalidParameter(format!(
            "repo: refusing to create a tag with a digest reference: {name}"
        )));
    }
    Ok(Some(normalize(&name)))
}

fn layer_descriptor(layer: &StoredLayer) -> Descriptor {
    Descriptor::new(
        MediaType::Other(OCI_LAYER_GZIP.to_string()),
        layer.blob.size,
        layer.blob.digest.to_oci(),
    )
}

fn history(created: &str, created_by: &str, author: &str, comment: &str) -> History {
    let mut h = History::default();
    h.set_created(Some(created.to_string()));
    if !created_by.is_empty() {
        h.set_created_by(Some(created_by.to_string()));
    }
    if !author.is_empty() {
        h.set_author(Some(author.to_string()));
    }
    if !comment.is_empty() {
        h.set_comment(Some(comment.to_string()));
    }
    h
}

fn some_if<T>(v: T, keep: bool) -> Option<T> {
    keep.then_some(v)
}

impl Engine {
    /// `docker commit`: returns the new image id.
    pub async fn commit_container(
        self: &Arc<Self>,
        key: &str,
        opts: CommitOptions,
    ) -> Result<String> {
        let id = self.container(key)?.id;
        let lock = self.containers.op_lock(&id);
        let _g = lock.lock().await;
        let rec = self.container(&id)?;
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.commit_blocking(&rec, opts))
            .await
            .map_err(|e| Error::internal("commit", e))?
    }

    fn commit_blocking(&self, rec: &crate::ContainerRecord, opts: CommitOptions) -> Result<String> {
        let layers = self.container_layers(&rec.id)?;
        let parent_row = self
            .db()
            .image(&rec.image_id)?
            .ok_or_else(|| Error::Conflict(format!("the image of container {} is gone", rec.id)))?;
        let parent = self.resolve_row(&parent_row)?;

        // Docker's commit: the container's config is the base, the request's config and
        // changes go on top.
        let mut config: Config = parent.config.config().clone().unwrap_or_default();
        let s = &rec.spec;
        config.set_cmd(some_if(s.cmd.clone(), !s.cmd.is_empty()));
        config.set_entrypoint(some_if(s.entrypoint.clone(), !s.entrypoint.is_empty()));
        config.set_env(some_if(s.env.clone(), !s.env.is_empty()));
        config.set_working_dir(some_if(s.working_dir.clone(), !s.working_dir.is_empty()));
        config.set_user(some_if(s.user.clone(), !s.user.is_empty()));
        if !s.labels.is_empty() {
            config
                .labels_mut()
                .get_or_insert_with(Default::default)
                .extend(s.labels.clone());
        }
        if let Some(sig) = &s.stop_signal {
            config.set_stop_signal(Some(sig.clone()));
        }
        opts.overrides.clone().apply(&mut config);
        apply_changes(&mut config, &opts.changes)?;

        let freeze = opts.pause && rec.state.running() && rec.state.status != Status::Paused;
        let rt = berth_runtime::container::Runtime::new(self.runtime_root());
        if freeze {
            rt.pause(&rec.id)
                .map_err(|e| Error::internal(format!("pause {} for commit", rec.id), e))?;
        }
        let _store = crate::lock(&self.store_lock);
        let layer = store_layer(
            &self.content,
            &layers.upper,
            TreeKind::OverlayUpper,
            &crate::containers::changes::engine_files(),
        );
        if freeze {
            if let Err(e) = rt.resume(&rec.id) {
                tracing::warn!("resume {} after commit: {e}", rec.id);
            }
        }
        let layer = layer?;

        let now = ids::now_rfc3339();
        let mut image = parent.config.clone();
        image.set_created(Some(now.clone()));
        image.set_author(some_if(opts.author.clone(), !opts.author.is_empty()));
        image.set_config(Some(config));
        image
            .rootfs_mut()
            .diff_ids_mut()
            .push(layer.diff_id.to_string());
        image
            .history_mut()
            .get_or_insert_with(Vec::new)
            .push(history(
                &now,
                &rec.argv().join(" "),
                &opts.author,
                &opts.comment,
            ));
        let mut descriptors = parent.manifest.layers().clone();
        descriptors.push(layer_descriptor(&layer));
        let image_id = self.record_image(&image, descriptors, opts.reference.as_deref())?;
        self.emit(rec, "commit", &[("comment", &opts.comment)]);
        Ok(image_id)
    }

    /// Store config and manifest (layers already stored) and name the image. Caller holds the
    /// store lock.
    fn record_image(
        &self,
        image: &ImageConfiguration,
        layers: Vec<Descriptor>,
        reference: Option<&str>,
    ) -> Result<String> {
        let manifest = store_image(&self.content, image, layers)?;
        let manifest_digest = Digest::from_oci(manifest.digest())?;
        let resolved = berth_image::media::resolve_image(
            &self.content,
            &manifest_digest,
            &PlatformSpec {
                os: image.os().to_string(),
                architecture: image.architecture().to_string(),
                variant: image.variant().clone(),
            },
        )?;
        let id = resolved.config_digest.to_string();
        let tags: Vec<String> = reference.map(|r| vec![r.to_string()]).unwrap_or_default();
        self.db().put_image(
            &ImageRow {
                id: id.clone(),
                manifest: manifest_digest.to_string(),
                added: ids::now_rfc3339(),
            },
            &tags,
        )?;
        for t in &tags {
            self.events.emit("image", "tag", &id, &[("name", t)]);
        }
        Ok(id)
    }

    /// `docker import`: a root filesystem tarball (plain, gzip, zstd, xz or bzip2)
    /// becomes a one-layer image. The tar goes through the image crate's safe unpacker into a
    /// fresh snapshot (so hostile entries are refused or confined there), and the layer is then
    /// written from that snapshot: the stored layer holds only what was safely unpacked.
    pub async fn import_image(
        self: &Arc<Self>,
        input: Box<dyn Read + Send>,
        opts: ImportOptions,
    ) -> Result<String> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.import_blocking(input, opts))
            .await
            .map_err(|e| Error::internal("import", e))?
    }

    fn import_blocking(&self, input: Box<dyn Read + Send>, opts: ImportOptions) -> Result<String> {
        let platform = match opts.platform.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => PlatformSpec::parse(p)
                .map_err(|e| Error::InvalidParameter(format!("platform: {e}")))?,
            None => PlatformSpec::host(),
        };
        let mut config = Config::default();
        apply_changes(&mut config, &opts.changes)?;
        if config.env().is_none() {
            // Docker leaves Env empty on import; a PATH makes `docker run IMAGE sh` work.
            config.set_env(Some(merge_env(
                &[],
                &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            )));
        }

        let input = decompressed(BufReader::with_capacity(256 << 10, input))?;
        let _store = crate::lock(&self.store_lock);
        let key = format!("import-{}", ids::random_hex(8));
        self.snapshots.prepare(&key, None)?;
        let made = (|| {
            let fs = self.snapshots.active_fs(&key)?;
            let unpack = UnpackOptions {
                whiteouts: self.snapshots.whiteout_mode(),
                // Device nodes have no business in an imported root filesystem: the runtime
                // makes /dev.
                devices: DevicePolicy::Skip,
                ..UnpackOptions::default()
            };
            apply_layer(input, &fs, &unpack)
                .map_err(|e| Error::InvalidParameter(format!("body: not a usable tarball: {e}")))?;
            let kind = match self.snapshots.backend() {
                berth_image::snapshot::Backend::Overlay => TreeKind::OverlayUpper,
                berth_image::snapshot::Backend::Copy => TreeKind::Plain,
            };
            let layer = store_layer(&self.content, &fs, kind, &[])?;
            self.snapshots.commit(&key, &layer.diff_id)?;
            Ok::<_, Error>(layer)
        })();
        let layer = match made {
            Ok(l) => l,
            Err(e) => {
                let _ = self.snapshots.remove_active(&key);
                return Err(e);
            }
        };

        let now = ids::now_rfc3339();
        let comment = if opts.message.is_empty() {
            "Imported from -".to_string()
        } else {
            opts.message.clone()
        };
        let mut rootfs = RootFs::default();
        rootfs.set_diff_ids(vec![layer.diff_id.to_string()]);
        let mut image = ImageConfiguration::default();
        image
            .set_created(Some(now.clone()))
            .set_architecture(Arch::from(platform.architecture.as_str()))
            .set_os(Os::from(platform.os.as_str()))
            .set_variant(platform.variant.clone())
            .set_config(Some(config))
            .set_rootfs(rootfs)
            .set_history(Some(vec![history(&now, "", "", &comment)]));
        let id = self.record_image(
            &image,
            vec![layer_descriptor(&layer)],
            opts.reference.as_deref(),
        )?;
        self.events.emit("image", "import", &id, &[]);
        Ok(id)
    }
}

/// The import body with xz or bzip2 undone (the unpacker itself reads plain, gzip and zstd).
fn decompressed<R: BufRead + Send + 'static>(mut input: R) -> Result<Box<dyn BufRead + Send>> {
    let head = input
        .fill_buf()
        .map_err(|e| Error::InvalidParameter(format!("read import body: {e}")))?;
    const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
    Ok(if head.starts_with(XZ_MAGIC) {
        // Concatenated streams too, as xz(1) writes with -T or appends.
        let decoder = liblzma::bufread::XzDecoder::new_multi_decoder(input);
        Box::new(BufReader::with_capacity(256 << 10, decoder))
    } else if head.starts_with(b"BZh") {
        let decoder = bzip2::bufread::MultiBzDecoder::new(input);
        Box::new(BufReader::with_capacity(256 << 10, decoder))
    } else {
        Box::new(input)
    })
}
