//! Named volumes (local driver): `<data-root>/volumes/<name>/_data`, recorded in the database.
//! A new, empty volume mounted where the image has files gets a copy of them, as Docker does.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::containers::model::MountKind;
use crate::error::{Error, Result};
use crate::{ids, Engine};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub created: String,
    pub labels: BTreeMap<String, String>,
    pub mountpoint: PathBuf,
}

impl Engine {
    pub(crate) fn volume_dir(&self, name: &str) -> PathBuf {
        self.cfg.data_root.join("volumes").join(name).join("_data")
    }

    /// Create (or return the existing) volume `name`; an empty name gets a random one.
    pub fn create_volume(&self, name: &str, labels: BTreeMap<String, String>) -> Result<Volume> {
        let name = if name.is_empty() {
            ids::random_hex(32)
        } else {
            name.to_string()
        };
        if !ids::valid_name(&name) {
            return Err(Error::InvalidParameter(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )));
        }
        if let Some(v) = self.db().volume(&name)? {
            return Ok(self.volume_from(v.0, v.1, v.2));
        }
        let dir = self.volume_dir(&name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::internal(format!("create {}", dir.display()), e))?;
        let created = ids::now_rfc3339();
        self.db().put_volume(&name, &created, &labels)?;
        self.events
            .emit("volume", "create", &name, &[("driver", "local")]);
        Ok(self.volume_from(name, created, labels))
    }

    fn volume_from(
        &self,
        name: String,
        created: String,
        labels: BTreeMap<String, String>,
    ) -> Volume {
        Volume {
            mountpoint: self.volume_dir(&name),
            name,
            created,
            labels,
        }
    }

    pub fn list_volumes(&self) -> Result<Vec<Volume>> {
        Ok(self
            .db()
            .volumes()?
            .into_iter()
            .map(|(n, c, l)| self.volume_from(n, c, l))
            .collect())
    }

    pub fn inspect_volume(&self, name: &str) -> Result<Volume> {
        match self.db().volume(name)? {
            Some((n, c, l)) => Ok(self.volume_from(n, c, l)),
            None => Err(Error::NotFound(format!("get {name}: no such volume"))),
        }
    }

    /// Containers (ids) that mount `name`.
    fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .db()
            .containers()?
            .into_iter()
            .filter(|c| {
                c.spec
                    .host
                    .mounts
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && m.source == name)
            })
            .map(|c| c.id)
            .collect())
    }

    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        if self.db().volume(name)?.is_none() {
            if force {
                return Ok(());
            }
            return Err(Error::NotFound(format!("get {name}: no such volume")));
        }
        let users = self.volume_users(name)?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.cfg.data_root.join("volumes").join(name);
        self.db().delete_volume(name)?;
        self.events
            .emit("volume", "destroy", name, &[("driver", "local")]);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Error::internal(format!("remove {}", dir.display()), e));
            }
        }
        Ok(())
    }

    /// Remove volumes no container uses; returns their names and the bytes freed.
    pub fn prune_volumes(&self) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut freed = 0;
        for v in self.list_volumes()? {
            if self.volume_users(&v.name)?.is_empty() {
                let size = du(&v.mountpoint);
                if self.remove_volume(&v.name, false).is_ok() {
                    freed += size;
                    removed.push(v.name);
                }
            }
        }
        Ok((removed, freed))
    }
}

impl Engine {
    /// (bytes used, containers using it) for `system df`.
    pub fn volume_usage(&self, name: &str) -> Result<(u64, usize)> {
        Ok((du(&self.volume_dir(name)), self.volume_users(name)?.len()))
    }
}

/// Bytes under `p` (files' lengths).
pub fn du(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|r| r.flatten().map(|e| du(&e.path())).sum())
        .unwrap_or(0)
}

/// True when `dir` has no entries (or does not exist).
pub(crate) fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut r| r.next().is_none())
        .unwrap_or(true)
}

/// Copy the tree at `from` into the existing directory `to`: files, directories, symlinks,
/// modes and ownership (what Docker copies into a fresh volume). Special files are skipped.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let md = std::fs::symlink_metadata(from)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    let _ = std::os::unix::fs::lchown(to, Some(md.uid()), Some(md.gid()));
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let md = std::fs::symlink_metadata(&src)?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
            let _ = std::os::unix::fs::lchown(&dst, Some(md.uid()), Some(md.gid()));
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
            let _ = std::os::unix::fs::lchown(&dst, Some(md.uid()), Some(md.gid()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_links_and_modes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir(a.path().join("sub")).unwrap();
        std::fs::write(a.path().join("sub/f"), "data").unwrap();
        std::fs::set_permissions(
            a.path().join("sub/f"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::os::unix::fs::symlink("sub/f", a.path().join("link")).unwrap();
        assert!(is_empty_dir(b.path()));
        copy_tree(a.path(), b.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(b.path().join("sub/f")).unwrap(),
            "data"
        );
        assert_eq!(
            std::fs::metadata(b.path().join("sub/f")).unwrap().mode() & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::read_link(b.path().join("link")).unwrap(),
            Path::new("sub/f")
        );
        assert!(!is_empty_dir(b.path()));
    }
}
