//! Local images: load archives, list, inspect, resolve names. Blobs and snapshots belong to
//! `berth_image`; names and the list of images live in the state database.

use std::io::Read;
use std::sync::Arc;

use berth_image::archive;
use berth_image::media::{resolve_image, PlatformSpec, ResolvedImage};
use berth_image::snapshot::chain_ids;
use berth_image::unpack::UnpackOptions;
use berth_image::Digest;

use crate::db::ImageRow;
use crate::error::{Error, Result};
use crate::{ids, Engine};

#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub id: String,
    pub repo_tags: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: i64,
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub summary: ImageSummary,
    pub manifest_digest: String,
    /// RFC 3339 from the config.
    pub created: String,
    pub config: oci_spec::image::ImageConfiguration,
    pub diff_ids: Vec<String>,
}

/// Docker's short forms: "busybox" is "busybox:latest"; "docker.io/library/x" is "x".
pub fn normalize(name: &str) -> String {
    let n = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .or_else(|| name.strip_prefix("index.docker.io/library/"))
        .unwrap_or(name);
    if n.contains('@') {
        return n.to_string();
    }
    let last = n.rsplit('/').next().unwrap_or(n);
    if last.contains(':') {
        n.to_string()
    } else {
        format!("{n}:latest")
    }
}

pub(crate) fn unix_secs(rfc3339: &str) -> i64 {
    humantime::parse_rfc3339_weak(rfc3339)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Engine {
    /// Load every image in a `docker save` or OCI layout archive; returns Docker's progress
    /// lines ("Loaded image: busybox:latest").
    pub async fn load_images(self: &Arc<Self>, input: Box<dyn Read + Send>) -> Result<Vec<String>> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.load_images_blocking(input))
            .await
            .map_err(|e| Error::internal("load images", e))?
    }

    fn load_images_blocking(&self, input: Box<dyn Read + Send>) -> Result<Vec<String>> {
        let _store = crate::lock(&self.store_lock);
        let loaded = archive::load(&self.content, input)
            .map_err(|e| Error::InvalidParameter(format!("load: {e}")))?;
        let mut lines = Vec::new();
        for img in loaded {
            let resolved =
                resolve_image(&self.content, &img.manifest_digest, &PlatformSpec::host())?;
            berth_image::extract::unpack_image(
                &self.content,
                &self.snapshots,
                &resolved,
                &UnpackOptions::default(),
            )?;
            let id = resolved.config_digest.to_string();
            let tags: Vec<String> = img.repo_tags.iter().map(|t| normalize(t)).collect();
            self.db().put_image(
                &ImageRow {
                    id: id.clone(),
                    manifest: resolved.manifest_digest.to_string(),
                    added: ids::now_rfc3339(),
                },
                &tags,
            )?;
            self.events.emit("image", "load", &id, &[]);
            if tags.is_empty() {
                lines.push(format!("Loaded image ID: {id}"));
            }
            for t in tags {
                lines.push(format!("Loaded image: {t}"));
            }
        }
        Ok(lines)
    }

    pub fn list_images(&self) -> Result<Vec<ImageSummary>> {
        let rows = self.db().images()?;
        let mut out = Vec::new();
        for row in rows {
            match self.image_summary(&row) {
                Ok((s, _)) => out.push(s),
                Err(e) => tracing::warn!("image {}: {e}", row.id),
            }
        }
        Ok(out)
    }

    pub fn inspect_image(&self, name: &str) -> Result<ImageDetails> {
        let row = self.find_image(name)?;
        let (summary, resolved) = self.image_summary(&row)?;
        Ok(ImageDetails {
            summary,
            manifest_digest: row.manifest.clone(),
            created: resolved.config.created().clone().unwrap_or_default(),
            diff_ids: resolved
                .config
                .rootfs()
                .diff_ids()
                .iter()
                .map(|d| d.to_string())
                .collect(),
            config: resolved.config.clone(),
        })
    }

    fn image_summary(&self, row: &ImageRow) -> Result<(ImageSummary, Arc<ResolvedImage>)> {
        let resolved = self.resolve_row(row)?;
        let size = resolved
            .manifest
            .layers()
            .iter()
            .map(|l| l.size() as i64)
            .sum::<i64>();
        let labels = resolved
            .config
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .map(|l| l.into_iter().collect())
            .unwrap_or_default();
        Ok((
            ImageSummary {
                id: row.id.clone(),
                repo_tags: self.db().tags_of(&row.id)?,
                created: unix_secs(resolved.config.created().as_deref().unwrap_or("")),
                size,
                labels,
            },
            resolved,
        ))
    }

    /// The image's manifest and config, parsed. Both are immutable for a manifest digest, so
    /// they are kept (up to `RESOLVED_CACHE` images): a create does not read and parse them again.
    pub(crate) fn resolve_row(&self, row: &ImageRow) -> Result<Arc<ResolvedImage>> {
        if let Some(r) = crate::lock(&self.resolved).get(&row.manifest) {
            return Ok(r.clone());
        }
        let digest = Digest::parse(&row.manifest)?;
        let resolved = Arc::new(resolve_image(
            &self.content,
            &digest,
            &PlatformSpec::host(),
        )?);
        let mut cache = crate::lock(&self.resolved);
        if cache.len() >= RESOLVED_CACHE {
            cache.clear();
        }
        cache.insert(row.manifest.clone(), resolved.clone());
        Ok(resolved)
    }

    /// By tag, full id ("sha256:…"), or a unique id prefix.
    pub fn find_image(&self, name: &str) -> Result<ImageRow> {
        let db = self.db();
        if let Some(id) = db.tag_target(&normalize(name))? {
            if let Some(row) = db.image(&id)? {
                return Ok(row);
            }
        }
        if let Some(row) = db.image(name)? {
            return Ok(row);
        }
        drop(db);
        if let Some(row) = self.find_by_repo_digest(name)? {
            return Ok(row);
        }
        let db = self.db();
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let ids = db.images_with_prefix(hex)?;
            if ids.len() == 1 {
                if let Some(row) = db.image(&ids[0])? {
                    return Ok(row);
                }
            }
        }
        Err(Error::no_such_image(name))
    }

    /// `docker save`: resolve every name now (so an unknown one is a 404 before any byte is
    /// sent), then stream the archive into `out` on a blocking thread.
    pub fn save_images(
        self: &Arc<Self>,
        names: &[String],
        oci: bool,
        out: Box<dyn std::io::Write + Send>,
    ) -> Result<tokio::task::JoinHandle<Result<()>>> {
        let mut images: Vec<archive::SaveImage> = Vec::new();
        for n in names {
            let row = self.find_image(n)?;
            let tag = normalize(n);
            let by_tag = self.db().tag_target(&tag)?.is_some_and(|id| id == row.id);
            let manifest_digest = Digest::parse(&row.manifest)?;
            match images
                .iter_mut()
                .find(|i| i.manifest_digest == manifest_digest)
            {
                Some(i) if by_tag => i.repo_tags.push(tag),
                Some(_) => {}
                None => images.push(archive::SaveImage {
                    manifest_digest,
                    repo_tags: if by_tag { vec![tag] } else { Vec::new() },
                }),
            }
        }
        let engine = self.clone();
        Ok(tokio::task::spawn_blocking(move || {
            let format = if oci {
                archive::ArchiveFormat::Oci
            } else {
                archive::ArchiveFormat::Docker
            };
            archive::save(&engine.content, &images, format, out)
                .map_err(|e| Error::internal("save images", e))
        }))
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        let row = self.find_image(source)?;
        let target = normalize(target);
        if target.contains('@') {
            return Err(Error::InvalidParameter(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        self.db().set_tag(&target, &row.id)?;
        self.events
            .emit("image", "tag", &row.id, &[("name", &target)]);
        Ok(())
    }

    /// `docker rmi`: untag, and delete the image when nothing names or uses it any more.
    /// Returns Docker's report lines: ("Untagged", name) and ("Deleted", id).
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<(String, String)>> {
        let row = self.find_image(name)?;
        let tags = self.db().tags_of(&row.id)?;
        let by_tag = tags.contains(&normalize(name));
        let users: Vec<_> = self
            .db()
            .containers()?
            .into_iter()
            .filter(|c| c.image_id == row.id)
            .collect();
        let mut report = Vec::new();
        if by_tag && tags.len() > 1 {
            // Other names keep the image.
            self.db().remove_tag(&normalize(name))?;
            report.push(("Untagged".into(), normalize(name)));
            return Ok(report);
        }
        if !by_tag && tags.len() > 1 && !force {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                short(&row.id)
            )));
        }
        if let Some(c) = users.first() {
            if c.state.running() {
                return Err(Error::Conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                    short(&row.id),
                    short(&c.id)
                )));
            }
            if !force {
                return Err(Error::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    short(&c.id),
                    short(&row.id)
                )));
            }
        }
        for t in &tags {
            report.push(("Untagged".into(), t.clone()));
        }
        if users.is_empty() {
            self.db().delete_image(&row.id)?;
            self.forget_warm_image(&row.id);
            report.push(("Deleted".into(), row.id.clone()));
            self.events.emit("image", "delete", &row.id, &[]);
            if let Err(e) = self.collect_garbage() {
                tracing::warn!("image garbage collection: {e}");
            }
        } else {
            for t in &tags {
                self.db().remove_tag(t)?;
            }
        }
        Ok(report)
    }

    /// `image prune`: untagged images (all unused ones with `all`) that no container uses.
    /// Returns the deleted ids and the bytes the collection freed.
    pub fn prune_images(&self, all: bool) -> Result<(Vec<String>, u64)> {
        let used: std::collections::HashSet<String> = self
            .db()
            .containers()?
            .into_iter()
            .map(|c| c.image_id)
            .collect();
        let mut deleted = Vec::new();
        let rows = self.db().images()?;
        for row in rows {
            let tagged = !self.db().tags_of(&row.id)?.is_empty();
            if used.contains(&row.id) || (tagged && !all) {
                continue;
            }
            self.db().delete_image(&row.id)?;
            self.forget_warm_image(&row.id);
            self.events.emit("image", "delete", &row.id, &[]);
            deleted.push(row.id);
        }
        let freed = if deleted.is_empty() {
            0
        } else {
            self.collect_garbage()?.freed_bytes
        };
        Ok((deleted, freed))
    }

    /// Bytes of an image's layers as stored (compressed blobs).
    pub fn image_size(&self, id: &str) -> i64 {
        self.db()
            .image(id)
            .ok()
            .flatten()
            .and_then(|row| self.resolve_row(&row).ok())
            .map(|r| r.manifest.layers().iter().map(|l| l.size() as i64).sum())
            .unwrap_or(0)
    }

    /// Remove blobs and snapshots no image or container reaches.
    pub fn collect_garbage(&self) -> Result<berth_image::gc::GcReport> {
        let _store = crate::lock(&self.store_lock);
        if self.distribution.pulls_in_flight() {
            // Their blobs and snapshots are not named yet; the next collection gets the rest.
            tracing::info!("pulls in flight: garbage collection deferred");
            return Ok(berth_image::gc::GcReport::default());
        }
        let roots: Vec<Digest> = self
            .db()
            .images()?
            .iter()
            .filter_map(|r| Digest::parse(&r.manifest).ok())
            .collect();
        let mut live: std::collections::BTreeSet<String> =
            self.db().containers()?.into_iter().map(|c| c.id).collect();
        // Containers made ahead (not recorded yet) are live too.
        live.extend(self.warm_ids());
        Ok(berth_image::gc::collect(
            &self.content,
            Some(&self.snapshots),
            roots.iter(),
            &live,
        )?)
    }

    /// The top snapshot (chain id) of an image, unpacking what is missing.
    pub(crate) fn image_top_snapshot(&self, resolved: &ResolvedImage) -> Result<Option<Digest>> {
        let diff_ids = resolved.diff_ids()?;
        let top = chain_ids(&diff_ids).pop();
        if let Some(t) = &top {
            if !self.snapshots.exists(t) {
                berth_image::extract::unpack_image(
                    &self.content,
                    &self.snapshots,
                    resolved,
                    &UnpackOptions::default(),
                )?;
            }
        }
        Ok(top)
    }
}

/// How many resolved images `resolve_row` keeps (a few KiB each).
pub(crate) const RESOLVED_CACHE: usize = 256;

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_docker_short_names() {
        assert_eq!(normalize("busybox"), "busybox:latest");
        assert_eq!(normalize("docker.io/library/busybox:1.36"), "busybox:1.36");
        assert_eq!(normalize("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(normalize("x@sha256:ab"), "x@sha256:ab");
    }
}
