//! A small name → image index. The engine owns state and may persist this in its database
//! instead; for tools and tests it can be kept as a JSON file written atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::content::fsync_dir;
use crate::digest::Digest;
use crate::error::{Error, PathContext, Result};

/// What a name points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The manifest or index digest (what a registry serves under the name).
    pub manifest: Digest,
    /// The config digest of the host-platform image (Docker's image id).
    pub config: Digest,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameIndex {
    names: BTreeMap<String, ImageRecord>,
}

impl NameIndex {
    /// Point `name` at `record`; returns what it pointed at before.
    pub fn tag(&mut self, name: &str, record: ImageRecord) -> Option<ImageRecord> {
        self.names.insert(name.to_string(), record)
    }

    pub fn untag(&mut self, name: &str) -> Option<ImageRecord> {
        self.names.remove(name)
    }

    pub fn get(&self, name: &str) -> Option<&ImageRecord> {
        self.names.get(name)
    }

    /// Names whose manifest or config is `digest`.
    pub fn names_of(&self, digest: &Digest) -> Vec<&str> {
        self.names
            .iter()
            .filter(|(_, r)| &r.manifest == digest || &r.config == digest)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ImageRecord)> {
        self.names.iter().map(|(n, r)| (n.as_str(), r))
    }

    /// Manifest digests every name keeps alive (the roots for garbage collection).
    pub fn roots(&self) -> BTreeSet<Digest> {
        self.names.values().map(|r| r.manifest.clone()).collect()
    }

    /// Read from a JSON file; a missing file is an empty index.
    pub fn load(path: &Path) -> Result<NameIndex> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::json(format!("parse {}", path.display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(NameIndex::default()),
            Err(e) => Err(Error::path("read name index", path, e)),
        }
    }

    /// Write to a JSON file atomically (temp file, fsync, rename, fsync directory).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::json("name index", e))?;
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, bytes).at("write name index", &tmp)?;
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .at("fsync name index", &tmp)?;
        fs::rename(&tmp, path).at("replace name index", path)?;
        fsync_dir(path.parent().unwrap_or(Path::new(".")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_untags_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("names.json");
        let mut idx = NameIndex::load(&path).unwrap();
        assert!(idx.iter().next().is_none());
        let r1 = ImageRecord {
            manifest: Digest::sha256_of(b"m1"),
            config: Digest::sha256_of(b"c1"),
        };
        let r2 = ImageRecord {
            manifest: Digest::sha256_of(b"m2"),
            config: Digest::sha256_of(b"c2"),
        };
        assert_eq!(idx.tag("busybox:latest", r1.clone()), None);
        assert_eq!(idx.tag("bb:1", r1.clone()), None);
        assert_eq!(idx.tag("busybox:latest", r2.clone()), Some(r1.clone()));
        assert_eq!(idx.names_of(&r1.config), vec!["bb:1"]);
        idx.save(&path).unwrap();
        let back = NameIndex::load(&path).unwrap();
        assert_eq!(back, idx);
        assert_eq!(back.roots().len(), 2);
        let mut back = back;
        assert_eq!(back.untag("bb:1"), Some(r1));
        assert_eq!(
            back.roots().into_iter().collect::<Vec<_>>(),
            vec![r2.manifest]
        );
    }
}
