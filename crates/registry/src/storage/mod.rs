//! On-disk registry state under a root directory:
//!
//! ```text
//! content/                         berth_image::ContentStore: every blob and manifest, by digest
//! uploads/<id>/{data,repo}         upload sessions (see `uploads`)
//! repos/<name>/_layers/<algo>/<hex>                 the repo may serve this blob
//! repos/<name>/_manifests/revisions/<algo>/<hex>    the repo has this manifest ({"mediaType",..})
//! repos/<name>/_manifests/tags/<tag>                tag → digest
//! repos/<name>/_referrers/<algo>/<hex>/<algo>-<hex> a manifest whose subject is <algo>:<hex>
//! ```
//!
//! Content is shared and deduplicated; the per-repo links decide what each repository exposes.
//! Every link is written atomically (temp file + rename), and in an order that never leaves a
//! reference to something missing: blob, then revision link, then referrer entry, then tag.

pub mod fsutil;
pub mod uploads;

use std::fs;
use std::path::{Path, PathBuf};

use berth_image::digest::Algorithm;
use berth_image::{ContentStore, Digest};
use serde::{Deserialize, Serialize};

use crate::error::{Error, PathContext, Result};
use fsutil::{atomic_write, list_names, read_optional, remove_if_exists};
pub use uploads::{Upload, Uploads};

/// What a repository records about one of its manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestLink {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The manifest's `subject`, so deleting it can drop its referrer entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
}

#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
    content: ContentStore,
    repos: PathBuf,
    uploads: PathBuf,
}

impl Storage {
    pub fn open(root: &Path) -> Result<Storage> {
        let content = ContentStore::open(root.join("content"))?;
        let repos = root.join("repos");
        let uploads = root.join("uploads");
        for dir in [&repos, &uploads] {
            fs::create_dir_all(dir).at("create registry directory", dir)?;
        }
        Ok(Storage {
            root: root.to_path_buf(),
            content,
            repos,
            uploads,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn uploads_dir(&self) -> &Path {
        &self.uploads
    }

    /// `name` must already be validated (`names::valid_repo_name`).
    fn repo_dir(&self, name: &str) -> PathBuf {
        self.repos.join(name)
    }

    fn layer_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_layers")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    fn revision_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests/revisions")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    fn tag_path(&self, name: &str, tag: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests/tags").join(tag)
    }

    fn referrers_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_referrers")
            .join(subject.algorithm().name())
            .join(subject.hex())
    }

    /// A repository exists once it has a blob or a manifest.
    pub fn repo_exists(&self, name: &str) -> bool {
        let dir = self.repo_dir(name);
        dir.join("_manifests").is_dir() || dir.join("_layers").is_dir()
    }

    /// The repo links the blob and the store has it.
    pub fn has_blob(&self, name: &str, d: &Digest) -> bool {
        self.layer_link(name, d).is_file() && self.content.has(d)
    }

    pub fn link_blob(&self, name: &str, d: &Digest) -> Result<()> {
        let link = self.layer_link(name, d);
        if link.is_file() {
            return Ok(());
        }
        atomic_write(&link, b"")
    }

    pub fn unlink_blob(&self, name: &str, d: &Digest) -> Result<bool> {
        remove_if_exists(&self.layer_link(name, d))
    }

    /// The repo's record of a manifest, if it has it (and the store still holds the bytes).
    pub fn manifest(&self, name: &str, d: &Digest) -> Result<Option<ManifestLink>> {
        let path = self.revision_link(name, d);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        if !self.content.has(d) {
            return Ok(None);
        }
        let link = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path,
            reason: e.to_string(),
        })?;
        Ok(Some(link))
    }

    /// Record a manifest whose bytes are already in the content store.
    pub fn link_manifest(&self, name: &str, d: &Digest, link: &ManifestLink) -> Result<()> {
        let bytes = serde_json::to_vec(link).map_err(|e| Error::Corrupt {
            path: self.revision_link(name, d),
            reason: e.to_string(),
        })?;
        atomic_write(&self.revision_link(name, d), &bytes)
    }

    /// Remove a manifest from a repo with every tag that points at it and its referrer entry.
    pub fn delete_manifest(&self, name: &str, d: &Digest) -> Result<bool> {
        let Some(link) = self.manifest(name, d)? else {
            return Ok(false);
        };
        for tag in self.tags(name)? {
            if self.resolve_tag(name, &tag)?.as_ref() == Some(d) {
                remove_if_exists(&self.tag_path(name, &tag))?;
            }
        }
        if let Some(subject) = &link.subject {
            remove_if_exists(&self.referrers_dir(name, subject).join(referrer_file(d)))?;
        }
        remove_if_exists(&self.revision_link(name, d))
    }

    pub fn set_tag(&self, name: &str, tag: &str, d: &Digest) -> Result<()> {
        atomic_write(&self.tag_path(name, tag), d.to_string().as_bytes())
    }

    pub fn resolve_tag(&self, name: &str, tag: &str) -> Result<Option<Digest>> {
        let path = self.tag_path(name, tag);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        let d = Digest::parse(text.trim()).map_err(|e| Error::Corrupt {
            path,
            reason: e.to_string(),
        })?;
        Ok(Some(d))
    }

    pub fn delete_tag(&self, name: &str, tag: &str) -> Result<bool> {
        remove_if_exists(&self.tag_path(name, tag))
    }

    /// Tags in lexical order.
    pub fn tags(&self, name: &str) -> Result<Vec<String>> {
        list_names(&self.repo_dir(name).join("_manifests/tags"))
    }

    /// Every manifest digest a repo has.
    pub fn manifests(&self, name: &str) -> Result<Vec<Digest>> {
        digests_under(&self.repo_dir(name).join("_manifests/revisions"))
    }

    /// Every blob digest a repo links.
    pub fn blob_links(&self, name: &str) -> Result<Vec<Digest>> {
        digests_under(&self.repo_dir(name).join("_layers"))
    }

    /// Record `descriptor` (the referring manifest's descriptor) under its subject.
    pub fn add_referrer(
        &self,
        name: &str,
        subject: &Digest,
        manifest: &Digest,
        descriptor: &serde_json::Value,
    ) -> Result<()> {
        let path = self
            .referrers_dir(name, subject)
            .join(referrer_file(manifest));
        let bytes = serde_json::to_vec(descriptor).map_err(|e| Error::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        atomic_write(&path, &bytes)
    }

    /// Descriptors of the manifests in `name` whose subject is `subject`, in digest order.
    pub fn referrers(&self, name: &str, subject: &Digest) -> Result<Vec<serde_json::Value>> {
        let dir = self.referrers_dir(name, subject);
        let mut out = Vec::new();
        for file in list_names(&dir)? {
            let path = dir.join(&file);
            let Some(bytes) = read_optional(&path)? else {
                continue;
            };
            let v = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path,
                reason: e.to_string(),
            })?;
            out.push(v);
        }
        Ok(out)
    }

    /// Every repository name, in lexical order.
    pub fn repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(prefix) = stack.pop() {
            let dir = if prefix.is_empty() {
                self.repos.clone()
            } else {
                self.repo_dir(&prefix)
            };
            for entry in list_names(&dir)? {
                if entry.starts_with('_') || !dir.join(&entry).is_dir() {
                    continue;
                }
                let name = if prefix.is_empty() {
                    entry
                } else {
                    format!("{prefix}/{entry}")
                };
                if self.repo_exists(&name) {
                    out.push(name.clone());
                }
                stack.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
}

fn referrer_file(manifest: &Digest) -> String {
    format!("{}-{}", manifest.algorithm().name(), manifest.hex())
}

/// Digests stored as `<dir>/<algo>/<hex>` files.
fn digests_under(dir: &Path) -> Result<Vec<Digest>> {
    let mut out = Vec::new();
    for algo in [Algorithm::Sha256, Algorithm::Sha512] {
        for hex in list_names(&dir.join(algo.name()))? {
            if let Ok(d) = Digest::from_hex(algo, &hex) {
                out.push(d);
            }
        }
    }
    Ok(out)
}
