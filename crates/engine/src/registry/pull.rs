//! `docker pull`: the shared puller fetches and unpacks; the engine then names the image.

use std::sync::Arc;

use berth_distribution::{PullOptions, PullResult};
use berth_image::media::PlatformSpec;
use berth_image::Digest;

use super::{
    familiar_name, registry_error, registry_error_with_auth, Credential, Progress, Reference,
};
use crate::db::ImageRow;
use crate::error::{Error, Result};
use crate::images::normalize;
use crate::{ids, Engine};

/// How many times a pull is repeated if its content vanished between download and naming
/// (collections wait for pulls, so only an outside hand could do that).
const RECORD_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullStatus {
    /// The name now points at an image it did not point at before.
    Downloaded,
    /// The name already pointed at this image.
    UpToDate,
}

#[derive(Debug, Clone)]
pub struct Pulled {
    pub reference: Reference,
    /// The image id (config digest).
    pub image_id: String,
    /// What the registry serves under the reference (index or manifest).
    pub digest: Digest,
    /// The local name set, if the reference had a tag.
    pub tag: Option<String>,
    pub status: PullStatus,
}

impl Pulled {
    /// Docker's last line of a pull.
    pub fn status_line(&self) -> String {
        match self.status {
            PullStatus::Downloaded => {
                format!(
                    "Status: Downloaded newer image for {}",
                    self.reference.familiar()
                )
            }
            PullStatus::UpToDate => {
                format!(
                    "Status: Image is up to date for {}",
                    self.reference.familiar()
                )
            }
        }
    }
}

/// Docker's `fromImage` and `tag` query parameters as one reference: `tag` may be a tag or a
/// digest and wins over one in `fromImage`; no tag at all means "latest".
pub fn pull_reference(from_image: &str, tag: Option<&str>) -> Result<Reference> {
    let bad = |e: berth_distribution::Error| registry_error(e, None);
    let base = Reference::parse(from_image).map_err(bad)?;
    let r = match tag.map(str::trim).filter(|t| !t.is_empty()) {
        None => base,
        Some(t) if t.contains(':') => {
            let digest = Digest::parse(t).map_err(|e| {
                Error::InvalidParameter(format!("invalid reference format: digest {t:?}: {e}"))
            })?;
            Reference::parse(&base.name())
                .map_err(bad)?
                .with_digest(digest)
        }
        Some(t) => base.with_tag(t).map_err(bad)?,
    };
    Ok(r.with_default_tag())
}

/// Like Docker, an explicitly requested platform the image does not have is an error (an
/// index was already matched; a lone manifest is whatever its config says).
fn check_platform(result: &PullResult, want: &PlatformSpec) -> Result<()> {
    let config = &result.image.config;
    let actual = format!("{}/{}", config.os(), config.architecture());
    match PlatformSpec::parse(&actual) {
        Ok(a) if a.os == want.os && a.architecture == want.architecture => Ok(()),
        _ => Err(Error::NotFound(format!(
            "image with reference {} was found but does not match the specified platform: wanted {want}, actual: {actual}",
            result.reference.familiar()
        ))),
    }
}

impl Engine {
    /// Pull `reference` for `platform` ("os/arch[/variant]", default the host's) and name it.
    /// `auth` is the request's credential (X-Registry-Auth); progress goes to `progress` in
    /// Docker's JSON message shapes.
    pub async fn pull_image(
        self: &Arc<Self>,
        reference: &Reference,
        platform: Option<&str>,
        auth: Option<Credential>,
        progress: Progress,
    ) -> Result<Pulled> {
        let explicit = match platform.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => {
                Some(PlatformSpec::parse(p).map_err(|e| Error::InvalidParameter(e.to_string()))?)
            }
            None => None,
        };
        let platform = explicit.clone().unwrap_or_else(PlatformSpec::host);
        let opts = PullOptions {
            platform,
            ..PullOptions::default()
        };
        let credentials_given = auth.is_some();
        let puller = self.distribution.puller_for(reference.domain(), auth)?;
        // No collection runs while this guard lives (collections check it under the lock).
        // (A blocking thread: an image load holds the lock for as long as it reads.)
        let engine = self.clone();
        let _pulling = tokio::task::spawn_blocking(move || {
            let _store = crate::lock(&engine.store_lock);
            engine.distribution.start_pull()
        })
        .await
        .map_err(|e| Error::internal("start pull", e))?;
        for _ in 0..RECORD_ATTEMPTS {
            let result = puller
                .pull(reference, &opts, progress.clone())
                .await
                .map_err(|e| registry_error_with_auth(e, Some(reference), credentials_given))?;
            if let Some(want) = &explicit {
                check_platform(&result, want)?;
            }
            let engine = self.clone();
            let recorded = tokio::task::spawn_blocking(move || engine.record_pull(&result))
                .await
                .map_err(|e| Error::internal("record pulled image", e))??;
            if let Some(pulled) = recorded {
                // Docker names the image by the reference pulled.
                let name = familiar_name(reference);
                self.events
                    .emit("image", "pull", &reference.familiar(), &[("name", &name)]);
                return Ok(pulled);
            }
            tracing::info!(%reference, "pulled content was collected before it was named; pulling again");
        }
        Err(Error::Internal(format!(
            "pull {reference}: image removals kept collecting the pulled content; try again"
        )))
    }

    /// `docker pull --all-tags`: every tag the registry lists for `repository` (a name
    /// without tag or digest), one after another, as one pull.
    pub async fn pull_all_tags(
        self: &Arc<Self>,
        repository: &Reference,
        platform: Option<&str>,
        auth: Option<Credential>,
        progress: Progress,
    ) -> Result<Pulled> {
        let credentials_given = auth.is_some();
        let client = self
            .distribution
            .client_for(repository.domain(), auth.clone())?;
        let tags = berth_distribution::inspect::list_tags(&client, repository)
            .await
            .map_err(|e| registry_error_with_auth(e, Some(repository), credentials_given))?;
        if tags.is_empty() {
            return Err(Error::NotFound(format!(
                "{}: the registry lists no tags",
                repository.familiar()
            )));
        }
        let mut status = PullStatus::UpToDate;
        let mut last = None;
        for tag in &tags {
            let tagged = repository
                .clone()
                .with_tag(tag)
                .map_err(|e| registry_error(e, None))?;
            let pulled = self
                .pull_image(&tagged, platform, auth.clone(), progress.clone())
                .await?;
            if pulled.status == PullStatus::Downloaded {
                status = PullStatus::Downloaded;
            }
            last = Some(pulled);
        }
        let last = last.ok_or_else(|| Error::Internal("no tag pulled".into()))?;
        Ok(Pulled {
            reference: repository.clone(),
            status,
            ..last
        })
    }

    /// Name what `result` pulled; None when a garbage collection removed some of it first.
    fn record_pull(&self, result: &PullResult) -> Result<Option<Pulled>> {
        // Collections hold this lock: under it, what we check stays until it is named.
        let _store = crate::lock(&self.store_lock);
        let image = &result.image;
        let mut needed = vec![image.manifest_digest.clone(), image.config_digest.clone()];
        for (desc, _) in image.layers()? {
            needed.push(Digest::from_oci(desc.digest())?);
        }
        if needed.iter().any(|d| !self.content.has(d)) {
            return Ok(None);
        }
        let reference = &result.reference;
        let id = image.config_digest.to_string();
        let repo_digest = format!("{}@{}", familiar_name(reference), result.digest);
        let tag = match reference.digest() {
            Some(_) => None,
            None => Some(normalize(&reference.familiar())),
        };
        let previous = match &tag {
            Some(t) => self.db().tag_target(t)?,
            None => self.distribution.digests.image_of(&repo_digest)?,
        };
        let tags: Vec<String> = tag.iter().cloned().collect();
        self.db().put_image(
            &ImageRow {
                id: id.clone(),
                manifest: image.manifest_digest.to_string(),
                added: ids::now_rfc3339(),
            },
            &tags,
        )?;
        self.distribution.digests.put(&repo_digest, &id)?;
        Ok(Some(Pulled {
            reference: reference.clone(),
            status: if previous.as_deref() == Some(id.as_str()) {
                PullStatus::UpToDate
            } else {
                PullStatus::Downloaded
            },
            image_id: id,
            digest: result.digest.clone(),
            tag,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::pull_reference;

    #[test]
    fn query_parameters_make_one_reference() {
        let r = pull_reference("127.0.0.1:5000/test/busybox", Some("1")).unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/test/busybox:1");
        let r = pull_reference("busybox", None).unwrap();
        assert_eq!(r.familiar(), "busybox:latest");
        let r = pull_reference("busybox:1.36", Some("")).unwrap();
        assert_eq!(r.familiar(), "busybox:1.36");
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = pull_reference("busybox:1.36", Some(&d)).unwrap();
        assert_eq!(r.familiar(), format!("busybox@{d}"));
        assert!(r.tag().is_none());
        let e = pull_reference("Bad_Name", Some("1")).unwrap_err();
        assert!(e.to_string().contains("invalid reference format"), "{e}");
        let e = pull_reference("busybox", Some("sha256:zz")).unwrap_err();
        assert!(e.to_string().contains("invalid reference format"), "{e}");
    }
}
