//! `docker push`: a local image's manifest, config and layers from the content store to a
//! registry, under the name's tag.

use std::sync::Arc;

use berth_distribution::PushOptions;
use berth_image::Digest;

use super::{familiar_name, registry_error, Credential, Progress, Reference};
use crate::error::{Error, Result};
use crate::images::normalize;
use crate::Engine;

#[derive(Debug, Clone)]
pub struct Pushed {
    pub reference: Reference,
    /// The tag pushed (or the digest, for a reference without one).
    pub tag: String,
    /// Digest and size of the manifest now under the tag.
    pub digest: Digest,
    pub size: u64,
}

/// What a push sends: the registry reference and the local image id.
#[derive(Debug, Clone)]
pub struct PushTarget {
    pub reference: Reference,
    pub image_id: String,
    manifest: String,
}

/// "127.0.0.1:5000/x:1" → ("127.0.0.1:5000/x", "1"); no tag → None.
fn split_tag(name: &str) -> (&str, Option<&str>) {
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].rfind(':') {
        Some(i) => (&name[..last + i], Some(&name[last + i + 1..])),
        None => (name, None),
    }
}

impl Engine {
    /// The images `docker push NAME` with `tag` sends: that tag, or every tag of the
    /// repository when there is none. NotFound before anything is sent, like Docker.
    pub fn push_targets(&self, name: &str, tag: Option<&str>) -> Result<Vec<PushTarget>> {
        let tag = tag.map(str::trim).filter(|t| !t.is_empty());
        let (repo, name_tag) = split_tag(name);
        let wanted: Vec<String> =
            match tag.or(name_tag) {
                Some(t) => vec![normalize(&format!("{repo}:{t}"))],
                None => {
                    // Every local tag of this repository.
                    let prefix = format!("{}:", normalize(repo).trim_end_matches(":latest"));
                    let db = self.db();
                    let mut all = Vec::new();
                    for row in db.images()? {
                        all.extend(db.tags_of(&row.id)?.into_iter().filter(|t| {
                            t.starts_with(&prefix) && !t[prefix.len()..].contains('/')
                        }));
                    }
                    all.sort();
                    all
                }
            };
        let mut out = Vec::new();
        for local in wanted {
            let Some(id) = self.db().tag_target(&local)? else {
                continue;
            };
            let Some(row) = self.db().image(&id)? else {
                continue;
            };
            let reference = Reference::parse(&local).map_err(|e| registry_error(e, None))?;
            out.push(PushTarget {
                reference,
                image_id: row.id,
                manifest: row.manifest,
            });
        }
        if out.is_empty() {
            return Err(Error::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                match tag {
                    Some(t) => format!("{repo}:{t}"),
                    None => name.to_string(),
                }
            )));
        }
        Ok(out)
    }

    /// Push one target found by `push_targets`.
    pub async fn push_image(
        self: &Arc<Self>,
        target: &PushTarget,
        auth: Option<Credential>,
        progress: Progress,
    ) -> Result<Pushed> {
        let reference = &target.reference;
        let manifest = Digest::parse(&target.manifest)?;
        // Other repositories of the same registry that have this image: mount, don't upload.
        let mount_from: Vec<String> = self
            .repo_digests(&target.image_id)
            .iter()
            .filter_map(|d| Reference::parse(d).ok())
            .filter(|r| r.domain() == reference.domain() && r.path() != reference.path())
            .map(|r| r.path().to_string())
            .collect();
        let opts = PushOptions {
            mount_from,
            max_concurrent_uploads: self.distribution.cfg.uploads(),
            ..PushOptions::default()
        };
        let client = self.distribution.client_for(reference.domain(), auth)?;
        let pushed = berth_distribution::push(
            &client,
            &self.content,
            reference,
            &manifest,
            &opts,
            progress,
        )
        .await
        .map_err(|e| registry_error(e, None))?;
        let repo_digest = format!("{}@{}", familiar_name(reference), pushed.digest);
        self.distribution
            .digests
            .put(&repo_digest, &target.image_id)?;
        let name = familiar_name(reference);
        self.events
            .emit("image", "push", &reference.familiar(), &[("name", &name)]);
        Ok(Pushed {
            reference: reference.clone(),
            tag: reference
                .tag()
                .map(str::to_owned)
                .unwrap_or_else(|| pushed.digest.to_string()),
            digest: pushed.digest,
            size: pushed.size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn splits_the_tag_after_the_last_slash() {
        assert_eq!(
            split_tag("127.0.0.1:5000/x:1"),
            ("127.0.0.1:5000/x", Some("1"))
        );
        assert_eq!(split_tag("127.0.0.1:5000/x"), ("127.0.0.1:5000/x", None));
        assert_eq!(split_tag("busybox"), ("busybox", None));
    }
}
