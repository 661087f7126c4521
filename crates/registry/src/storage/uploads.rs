//! Upload sessions. Each lives in `uploads/<id>/` (`data`: the bytes so far; `repo`: the
//! repository it was opened for). The running sha256 is kept in memory between requests, so a
//! chunked upload is hashed once as it arrives; after a restart it is rebuilt from `data`.
//!
//! Completing an upload verifies the client's digest, fsyncs the data, makes it read-only and
//! renames it to the content store's blob path: the blob appears whole or not at all, and a
//! wrong digest leaves nothing behind.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_image::digest::{Algorithm, Hasher};
use berth_image::{BlobInfo, ContentStore, Digest};

use crate::error::{Error, PathContext, Result};
use crate::names::{random_id, valid_upload_id};
use crate::storage::fsutil::{atomic_write, fsync_dir};

/// One upload in progress.
pub struct Upload {
    pub id: String,
    pub repo: String,
    dir: PathBuf,
    file: File,
    hasher: Hasher,
    offset: u64,
    last_used: Instant,
}

/// What finishing an upload gave.
pub enum Finished {
    Stored(BlobInfo),
    /// The content hashed to something else; the upload is gone.
    Mismatch {
        actual: Digest,
    },
}

impl Upload {
    fn create(root: &Path, repo: &str) -> Result<Upload> {
        let id = random_id();
        let dir = root.join(&id);
        fs::create_dir(&dir).at("create upload", &dir)?;
        atomic_write(&dir.join("repo"), repo.as_bytes())?;
        let data = dir.join("data");
        let file = File::create(&data).at("create upload data", &data)?;
        Ok(Upload {
            id,
            repo: repo.to_string(),
            dir,
            file,
            hasher: Algorithm::Sha256.hasher(),
            offset: 0,
            last_used: Instant::now(),
        })
    }

    /// Reopen an upload left on disk (by an earlier server process), re-hashing its data.
    fn reopen(root: &Path, id: &str) -> Result<Option<Upload>> {
        let dir = root.join(id);
        let repo = match fs::read_to_string(dir.join("repo")) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at("read upload repo", &dir),
        };
        let data = dir.join("data");
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&data)
            .at("open upload data", &data)?;
        let mut hasher = Algorithm::Sha256.hasher();
        let mut offset = 0u64;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = file.read(&mut buf).at("read upload data", &data)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        Ok(Some(Upload {
            id: id.to_string(),
            repo,
            dir,
            file,
            hasher,
            offset,
            last_used: Instant::now(),
        }))
    }

    /// Bytes received so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.hasher.update(data);
        self.offset += data.len() as u64;
        self.last_used = Instant::now();
        Ok(())
    }

    /// Verify against `expected` and move the data into the store. Either way the upload ends.
    pub fn finish(self, expected: &Digest, store: &ContentStore) -> Result<Finished> {
        let data = self.dir.join("data");
        let actual = match expected.algorithm() {
            Algorithm::Sha256 => self.hasher.clone().finish(),
            other => rehash(&data, other)?,
        };
        if &actual != expected {
            self.discard()?;
            return Ok(Finished::Mismatch { actual });
        }
        let size = self.offset;
        if !store.has(expected) {
            self.file.sync_all().at("fsync upload", &data)?;
            fs::set_permissions(&data, fs::Permissions::from_mode(0o444))
                .at("chmod upload", &data)?;
            let target = store.blob_path(expected);
            fs::rename(&data, &target).at("move blob into the store", &target)?;
            if let Some(parent) = target.parent() {
                fsync_dir(parent)?;
            }
        }
        self.discard()?;
        Ok(Finished::Stored(BlobInfo {
            digest: expected.clone(),
            size,
        }))
    }

    /// Drop the upload and its data.
    pub fn discard(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at("remove upload", &dir),
            _ => Ok(()),
        }
    }
}

fn rehash(path: &Path, algorithm: Algorithm) -> Result<Digest> {
    let mut file = File::open(path).at("open upload data", path)?;
    let mut hasher = algorithm.hasher();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = file.read(&mut buf).at("read upload data", path)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

/// A session slot: `None` once the upload has finished or been cancelled. Requests on one
/// upload take its async lock in turn, so chunks are appended one at a time.
pub type Slot = Arc<tokio::sync::Mutex<Option<Upload>>>;

/// The upload sessions of a registry.
pub struct Uploads {
    root: PathBuf,
    open: Mutex<HashMap<String, Slot>>,
}

impl Uploads {
    pub fn new(root: &Path) -> Uploads {
        Uploads {
            root: root.to_path_buf(),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // A panic while holding this lock leaves a valid map behind; keep using it.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open a new session for `repo`.
    pub fn start(&self, repo: &str) -> Result<(String, Slot)> {
        let upload = Upload::create(&self.root, repo)?;
        let id = upload.id.clone();
        let slot: Slot = Arc::new(tokio::sync::Mutex::new(Some(upload)));
        self.table().insert(id.clone(), slot.clone());
        Ok((id, slot))
    }

    /// The session `id`, from memory or reopened from disk.
    pub fn get(&self, id: &str) -> Result<Option<Slot>> {
        if !valid_upload_id(id) {
            return Ok(None);
        }
        if let Some(slot) = self.table().get(id) {
            return Ok(Some(slot.clone()));
        }
        let Some(upload) = Upload::reopen(&self.root, id)? else {
            return Ok(None);
        };
        let slot: Slot = Arc::new(tokio::sync::Mutex::new(Some(upload)));
        let mut table = self.table();
        // Another request may have reopened it meanwhile: keep the first.
        Ok(Some(table.entry(id.to_string()).or_insert(slot).clone()))
    }

    /// Forget a finished session.
    pub fn forget(&self, id: &str) {
        self.table().remove(id);
    }

    /// Discard sessions no request has touched for `max_idle` (abandoned pushes would
    /// otherwise hold a file descriptor and disk space forever). Sessions a request is using
    /// are skipped. Returns how many were discarded.
    pub fn prune_idle(&self, max_idle: Duration) -> usize {
        let mut stale = Vec::new();
        let mut table = self.table();
        table.retain(|_, slot| {
            let Ok(mut guard) = slot.clone().try_lock_owned() else {
                return true; // in use
            };
            let idle = match guard.as_ref() {
                Some(u) => u.last_used.elapsed() >= max_idle,
                None => true,
            };
            if idle {
                if let Some(u) = guard.take() {
                    stale.push(u);
                }
            }
            !idle
        });
        drop(table);
        let n = stale.len();
        for upload in stale {
            if let Err(e) = upload.discard() {
                tracing::warn!("discard idle upload: {e}");
            }
        }
        n
    }
}

/// Remove upload directories untouched for `older_than` (abandoned pushes). For offline use
/// (`gc`); a running server keeps its own sessions.
pub fn prune_stale(root: &Path, older_than: Duration) -> Result<usize> {
    let mut removed = 0;
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).at("list uploads", root),
    };
    for entry in entries {
        let entry = entry.at("list uploads", root)?;
        let path = entry.path();
        let modified = fs::metadata(path.join("data"))
            .or_else(|_| entry.metadata())
            .and_then(|m| m.modified())
            .map_err(|e| Error::path("stat upload", &path, e))?;
        let age = modified.elapsed().unwrap_or_default();
        if age >= older_than {
            fs::remove_dir_all(&path).at("remove stale upload", &path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_sessions_are_pruned_but_busy_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::new(dir.path());
        let (idle, slot) = uploads.start("a").unwrap();
        slot.try_lock()
            .unwrap()
            .as_mut()
            .unwrap()
            .write(b"abc")
            .unwrap();
        let (busy, busy_slot) = uploads.start("a").unwrap();
        let held = busy_slot.try_lock_owned().unwrap();
        assert_eq!(uploads.prune_idle(Duration::from_secs(3600)), 0);
        assert_eq!(uploads.prune_idle(Duration::ZERO), 1);
        assert!(!dir.path().join(&idle).exists());
        assert!(uploads.get(&idle).unwrap().is_none());
        assert!(dir.path().join(&busy).exists());
        drop(held);
        assert!(uploads.get(&busy).unwrap().is_some());
    }

    #[test]
    fn finish_verifies_then_moves_into_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path().join("content")).unwrap();
        let uploads = Uploads::new(&dir.path().join("up"));
        std::fs::create_dir_all(dir.path().join("up")).unwrap();
        let (_, slot) = uploads.start("r").unwrap();
        let mut u = slot.try_lock().unwrap().take().unwrap();
        u.write(b"hello").unwrap();
        let wrong = Digest::sha256_of(b"bye");
        assert!(matches!(
            u.finish(&wrong, &store).unwrap(),
            Finished::Mismatch { .. }
        ));
        assert!(store.list().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.path().join("up")).unwrap().count(), 0);

        let (_, slot) = uploads.start("r").unwrap();
        let mut u = slot.try_lock().unwrap().take().unwrap();
        u.write(b"hel").unwrap();
        u.write(b"lo").unwrap();
        let right = Digest::sha256_of(b"hello");
        assert!(matches!(
            u.finish(&right, &store).unwrap(),
            Finished::Stored(_)
        ));
        assert_eq!(std::fs::read(store.blob_path(&right)).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(dir.path().join("up")).unwrap().count(), 0);
    }
}
