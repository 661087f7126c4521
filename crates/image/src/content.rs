//! The content store: blobs addressed by digest under `blobs/<algo>/<hex>`.
//!
//! Writes go to `ingest/<h>/data` (h = sha256 of the caller's ingest ref), are hashed while
//! written, verified, fsynced, made read-only and renamed into place: a blob path exists only once
//! its full, verified content does. An ingest left behind (a crash, a dropped connection) keeps
//! its bytes, so the same ref can resume at `offset()` — what a Range-resumed download needs.
//!
//! Large blobs may be committed with their fsync deferred (`commit_deferred`): a marker under
//! `unsynced/` is made durable before the rename, `sync_deferred` (one syncfs) later makes the
//! data durable and drops the markers, and `open` re-verifies every blob a marker still names
//! (a crash in between), deleting any whose content did not survive. So a blob path still
//! always holds its verified content, and a pull does not wait for the disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::digest::{Algorithm, Digest, HashingWriter, VerifyingReader};
use crate::error::{Error, PathContext, Result};

/// Markers of blobs whose data may not be on disk yet: `<algo>-<hex>`.
const UNSYNCED: &str = "unsynced";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    Now,
    Deferred,
}

/// Upper bound for JSON documents read into memory (manifests, indexes, configs).
pub const MAX_JSON_BLOB: u64 = 4 << 20;

/// What the store knows about a committed blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

/// A partial ingest that can be resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestStatus {
    pub reference: String,
    pub offset: u64,
    pub expected: Option<Digest>,
}

#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

#[derive(Serialize, Deserialize, PartialEq)]
struct IngestMeta {
    reference: String,
    expected: Option<Digest>,
    size: Option<u64>,
}

impl ContentStore {
    /// Open (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<ContentStore> {
        let root = root.into();
        for algo in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = root.join("blobs").join(algo.name());
            fs::create_dir_all(&dir).at("create blob directory", &dir)?;
        }
        for dir in [root.join("ingest"), root.join(UNSYNCED)] {
            fs::create_dir_all(&dir).at("create content store directory", &dir)?;
        }
        let store = ContentStore { root };
        store.recover_deferred()?;
        Ok(store)
    }

    /// Make every blob committed with `commit_deferred` durable (one syncfs of the store's
    /// filesystem), then forget their markers. Returns how many blobs it covered.
    pub fn sync_deferred(&self) -> Result<usize> {
        let markers = self.deferred_markers()?;
        if markers.is_empty() {
            return Ok(0);
        }
        // Every listed marker was created after its blob's data was written: one syncfs now
        // covers them all. Markers created meanwhile wait for the next call.
        let root = File::open(&self.root).at("open content store", &self.root)?;
        nix::unistd::syncfs(&root)
            .map_err(|e| Error::path("syncfs content store", &self.root, e.into()))?;
        self.remove_markers(&markers)?;
        Ok(markers.len())
    }

    /// After a crash, a blob named by a marker may not hold what was verified: hash each one
    /// again and delete those that no longer match, then make the survivors durable.
    fn recover_deferred(&self) -> Result<()> {
        let markers = self.deferred_markers()?;
        if markers.is_empty() {
            return Ok(());
        }
        for (_, digest) in &markers {
            let Some(digest) = digest else { continue };
            if self.has(digest) && !self.still_matches(digest) {
                tracing::warn!(blob = %digest, "blob damaged by an interrupted sync: removed");
                self.delete(digest)?;
            }
        }
        let root = File::open(&self.root).at("open content store", &self.root)?;
        nix::unistd::syncfs(&root)
            .map_err(|e| Error::path("syncfs content store", &self.root, e.into()))?;
        self.remove_markers(&markers)
    }

    fn still_matches(&self, digest: &Digest) -> bool {
        self.open_verified(digest)
            .map(|mut r| io::copy(&mut r, &mut io::sink()).is_ok())
            .unwrap_or(false)
    }

    /// Marker paths with the digest each names (None for a stray file, removed all the same).
    fn deferred_markers(&self) -> Result<Vec<(PathBuf, Option<Digest>)>> {
        let dir = self.root.join(UNSYNCED);
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).at("list unsynced blobs", &dir)? {
            let entry = entry.at("list unsynced blobs", &dir)?;
            let digest = entry
                .file_name()
                .to_str()
                .and_then(|n| n.split_once('-'))
                .and_then(|(algo, hex)| {
                    let algo = [Algorithm::Sha256, Algorithm::Sha512]
                        .into_iter()
                        .find(|a| a.name() == algo)?;
                    Digest::from_hex(algo, hex).ok()
                });
            out.push((entry.path(), digest));
        }
        Ok(out)
    }

    fn remove_markers(&self, markers: &[(PathBuf, Option<Digest>)]) -> Result<()> {
        for (marker, _) in markers {
            match fs::remove_file(marker) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::path("remove unsynced marker", marker, e))
                }
                _ => {}
            }
        }
        fsync_dir(&self.root.join(UNSYNCED))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(Error::path("stat blob", path, e)),
        }
    }

    pub fn info(&self, digest: &Digest) -> Result<BlobInfo> {
        Ok(BlobInfo {
            digest: digest.clone(),
            size: self.size(digest)?,
        })
    }

    /// Open a blob for reading. Content is trusted as written (it was verified on ingest); use
    /// `open_verified` where a re-check is worth the hashing.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        match File::open(&path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(Error::path("open blob", path, e)),
        }
    }

    /// Open a blob through a reader that fails at EOF if the content no longer matches its digest.
    pub fn open_verified(&self, digest: &Digest) -> Result<VerifyingReader<BufReader<File>>> {
        let file = self.open_blob(digest)?;
        let size = self.size(digest)?;
        Ok(VerifyingReader::new(
            BufReader::with_capacity(128 << 10, file),
            digest.clone(),
            Some(size),
        ))
    }

    /// Read a whole blob of at most `limit` bytes, verifying its digest.
    pub fn read_bounded(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let size = self.size(digest)?;
        if size > limit {
            return Err(Error::TooLarge {
                what: digest.to_string(),
                size,
                limit,
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        self.open_verified(digest)?
            .read_to_end(&mut buf)
            .map_err(|e| Error::path("read blob", self.blob_path(digest), e))?;
        Ok(buf)
    }

    /// Read and parse a JSON blob (manifest, index, config), capped at `MAX_JSON_BLOB`.
    pub fn read_json<T: DeserializeOwned>(&self, digest: &Digest) -> Result<T> {
        let bytes = self.read_bounded(digest, MAX_JSON_BLOB)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(format!("parse blob {digest}"), e))
    }

    /// Remove a blob. Returns whether it existed.
    pub fn delete(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::path("delete blob", path, e)),
        }
    }

    /// Every committed blob. Stray names (not a valid digest) are ignored.
    pub fn list(&self) -> Result<Vec<BlobInfo>> {
        let mut out = Vec::new();
        for algo in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(algo.name());
            for entry in fs::read_dir(&dir).at("list blobs", &dir)? {
                let entry = entry.at("list blobs", &dir)?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let Ok(digest) = Digest::from_hex(algo, &name) else {
                    continue;
                };
                let meta = entry.metadata().at("stat blob", &entry.path())?;
                if meta.is_file() {
                    out.push(BlobInfo {
                        digest,
                        size: meta.len(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    /// Store `bytes` (a small document) and return its sha256 descriptor info.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<BlobInfo> {
        let digest = Digest::sha256_of(bytes);
        self.ingest(bytes, Some(&digest), Some(bytes.len() as u64))
    }

    /// Stream `reader` into the store. With `expected`, the content must hash to it (and the blob
    /// is not re-read if already present); with `size`, it must be exactly that long.
    pub fn ingest(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<BlobInfo> {
        if let Some(d) = expected {
            if let Ok(info) = self.info(d) {
                return Ok(info);
            }
        }
        let mut writer = self.writer(&unique_ref(), expected.cloned(), size)?;
        let copied = io::copy(&mut reader, &mut writer);
        if let Err(e) = copied {
            writer.abort()?;
            return Err(Error::io("ingest: read content", e));
        }
        writer.commit()
    }

    /// Open (or resume) the ingest named `reference`. If a previous attempt with the same ref and
    /// the same expectations left data behind, writing continues at `offset()`.
    pub fn writer(
        &self,
        reference: &str,
        expected: Option<Digest>,
        size: Option<u64>,
    ) -> Result<IngestWriter> {
        if reference.is_empty() || reference.len() > 1024 {
            return Err(Error::InvalidRef(reference.to_string()));
        }
        let dir = self.ingest_dir(reference);
        fs::create_dir_all(&dir).at("create ingest", &dir)?;
        let meta = IngestMeta {
            reference: reference.to_string(),
            expected: expected.clone(),
            size,
        };
        let data_path = dir.join("data");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&data_path)
            .at("open ingest data", &data_path)?;
        lock_exclusive(&file).map_err(|e| Error::path("lock ingest (in use?)", &data_path, e))?;

        // Resume only if the earlier attempt wanted the same thing; otherwise start afresh.
        let meta_path = dir.join("meta.json");
        let same = fs::read(&meta_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<IngestMeta>(&b).ok())
            .is_some_and(|old| old == meta);
        if !same {
            file.set_len(0).at("truncate ingest", &data_path)?;
            let text = serde_json::to_vec(&meta).map_err(|e| Error::json("ingest meta", e))?;
            fs::write(&meta_path, text).at("write ingest meta", &meta_path)?;
        }
        let algorithm = expected
            .as_ref()
            .map(Digest::algorithm)
            .unwrap_or(Algorithm::Sha256);
        // Re-hash what is already there: sha2 state is not serialisable, the bytes are.
        let mut hasher = algorithm.hasher();
        let mut offset = 0u64;
        file.seek(SeekFrom::Start(0))
            .at("seek ingest", &data_path)?;
        let mut buf = vec![0u8; 128 << 10];
        loop {
            let n = file.read(&mut buf).at("read ingest", &data_path)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        Ok(IngestWriter {
            blobs: self.root.join("blobs"),
            dir,
            data_path,
            writer: HashingWriter::resume(file, hasher, offset),
            expected,
            size,
            reference: reference.to_string(),
        })
    }

    /// Partial ingests on disk.
    pub fn ingests(&self) -> Result<Vec<IngestStatus>> {
        let dir = self.root.join("ingest");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).at("list ingests", &dir)? {
            let entry = entry.at("list ingests", &dir)?;
            let meta = fs::read(entry.path().join("meta.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<IngestMeta>(&b).ok());
            let Some(meta) = meta else { continue };
            let offset = fs::metadata(entry.path().join("data"))
                .map(|m| m.len())
                .unwrap_or(0);
            out.push(IngestStatus {
                reference: meta.reference,
                offset,
                expected: meta.expected,
            });
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Remove partial ingests untouched for `older_than` (crashed loads, abandoned pulls).
    /// Ingests a writer holds open are left alone. Returns how many were removed.
    pub fn prune_ingests(&self, older_than: std::time::Duration) -> Result<usize> {
        let dir = self.root.join("ingest");
        let mut removed = 0;
        for entry in fs::read_dir(&dir).at("list ingests", &dir)? {
            let entry = entry.at("list ingests", &dir)?;
            let data = entry.path().join("data");
            let Ok(file) = OpenOptions::new().read(true).open(&data) else {
                // No data file: an interrupted start; remove it too.
                let _ = fs::remove_dir_all(entry.path());
                removed += 1;
                continue;
            };
            let age = file
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            if age < older_than || lock_exclusive(&file).is_err() {
                continue;
            }
            fs::remove_dir_all(entry.path()).at("remove stale ingest", &entry.path())?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Drop a partial ingest.
    pub fn abort_ingest(&self, reference: &str) -> Result<()> {
        let dir = self.ingest_dir(reference);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::path("remove ingest", dir, e))
            }
            _ => Ok(()),
        }
    }

    fn ingest_dir(&self, reference: &str) -> PathBuf {
        // Hashing the ref makes any string a safe, fixed-length directory name.
        self.root
            .join("ingest")
            .join(Digest::sha256_of(reference.as_bytes()).hex())
    }
}

/// An open ingest: write content, then `commit` (verify + move into place) or `abort`.
pub struct IngestWriter {
    blobs: PathBuf,
    dir: PathBuf,
    data_path: PathBuf,
    writer: HashingWriter<File>,
    expected: Option<Digest>,
    size: Option<u64>,
    reference: String,
}

impl IngestWriter {
    /// Bytes already written (including those of an earlier, resumed attempt).
    pub fn offset(&self) -> u64 {
        self.writer.count()
    }

    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Verify, fsync and atomically move the content into the store.
    pub fn commit(self) -> Result<BlobInfo> {
        self.finish(Durability::Now)
    }

    /// Verify and move the content into the store now; its data becomes durable at the
    /// store's next `sync_deferred` (see the module's notes). For large blobs a caller can
    /// use at once, such as a pulled layer that is already unpacked.
    pub fn commit_deferred(self) -> Result<BlobInfo> {
        self.finish(Durability::Deferred)
    }

    fn finish(self, durability: Durability) -> Result<BlobInfo> {
        let IngestWriter {
            blobs,
            dir,
            data_path,
            writer,
            expected,
            size,
            ..
        } = self;
        let (file, digest, count) = writer.finish();
        let fail = |e: Error| {
            // A wrong blob is useless for resuming: drop it.
            let _ = fs::remove_dir_all(&dir);
            e
        };
        if let Some(size) = size {
            if size != count {
                return Err(fail(Error::SizeMismatch {
                    what: expected
                        .as_ref()
                        .map_or_else(|| "ingest".to_string(), |d| d.to_string()),
                    expected: size,
                    actual: count,
                }));
            }
        }
        if let Some(expected) = expected {
            if expected != digest {
                return Err(fail(Error::DigestMismatch {
                    expected,
                    actual: digest,
                }));
            }
        }
        let algo_dir = blobs.join(digest.algorithm().name());
        let target = algo_dir.join(digest.hex());
        if durability == Durability::Now {
            file.sync_all().at("fsync ingest", &data_path)?;
        } else if !target.exists() {
            // The marker must be on disk before the rename can be.
            let unsynced = blobs.with_file_name(UNSYNCED);
            let marker = unsynced.join(format!("{}-{}", digest.algorithm().name(), digest.hex()));
            File::create(&marker).at("mark blob unsynced", &marker)?;
            fsync_dir(&unsynced)?;
        }
        fs::set_permissions(&data_path, fs::Permissions::from_mode(0o444))
            .at("chmod ingest", &data_path)?;
        drop(file);
        if !target.exists() {
            fs::rename(&data_path, &target).at("move blob into place", &target)?;
            if durability == Durability::Now {
                fsync_dir(&algo_dir)?;
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Ok(BlobInfo {
            digest,
            size: count,
        })
    }

    /// Throw the partial content away.
    pub fn abort(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::path("remove ingest", dir, e))
            }
            _ => Ok(()),
        }
    }
}

impl Write for IngestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("fsync directory", dir)
}

fn lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: flock on a valid, owned fd.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn unique_ref() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "anon-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path().join("content")).unwrap();
        (dir, store)
    }

    #[test]
    fn ingest_stores_by_digest_and_lists() {
        let (_d, store) = store();
        let data = b"some layer bytes".repeat(10_000);
        let info = store.ingest(&data[..], None, None).unwrap();
        assert_eq!(info.digest, Digest::sha256_of(&data));
        assert_eq!(info.size, data.len() as u64);
        assert!(store.has(&info.digest));
        assert_eq!(store.size(&info.digest).unwrap(), data.len() as u64);
        let path = store.blob_path(&info.digest);
        assert!(path.ends_with(format!("blobs/sha256/{}", info.digest.hex())));
        assert_eq!(fs::read(&path).unwrap(), data);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o444
        );
        assert_eq!(store.list().unwrap(), vec![info.clone()]);
        // Nothing left in ingest/.
        assert!(store.ingests().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(store.root().join("ingest")).unwrap().count(),
            0
        );
        assert!(store.delete(&info.digest).unwrap());
        assert!(!store.has(&info.digest));
        assert!(!store.delete(&info.digest).unwrap());
        assert!(matches!(
            store.open_blob(&info.digest),
            Err(Error::BlobNotFound(_))
        ));
    }

    #[test]
    fn ingest_rejects_wrong_digest_or_size_and_leaves_nothing() {
        let (_d, store) = store();
        let wrong = Digest::sha256_of(b"other");
        let err = store
            .ingest(&b"content"[..], Some(&wrong), None)
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!store.has(&wrong));
        let right = Digest::sha256_of(b"content");
        let err = store
            .ingest(&b"content"[..], Some(&right), Some(3))
            .unwrap_err();
        assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
        assert!(store.list().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(store.root().join("ingest")).unwrap().count(),
            0
        );
    }

    #[test]
    fn sha512_blobs_are_supported() {
        let (_d, store) = store();
        let mut h = Algorithm::Sha512.hasher();
        h.update(b"x512");
        let d = h.finish();
        let info = store.ingest(&b"x512"[..], Some(&d), Some(4)).unwrap();
        assert_eq!(info.digest, d);
        assert!(store
            .blob_path(&d)
            .to_string_lossy()
            .contains("blobs/sha512/"));
        assert_eq!(store.read_bounded(&d, 10).unwrap(), b"x512");
    }

    #[test]
    fn partial_ingest_resumes_at_offset() {
        let (_d, store) = store();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let digest = Digest::sha256_of(&data);
        let size = Some(data.len() as u64);
        let mut w = store
            .writer("pull-layer-1", Some(digest.clone()), size)
            .unwrap();
        w.write_all(&data[..123_457]).unwrap();
        drop(w); // connection dropped
        let status = store.ingests().unwrap();
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].reference, "pull-layer-1");
        assert_eq!(status[0].offset, 123_457);

        let mut w = store
            .writer("pull-layer-1", Some(digest.clone()), size)
            .unwrap();
        assert_eq!(w.offset(), 123_457);
        w.write_all(&data[123_457..]).unwrap();
        let info = w.commit().unwrap();
        assert_eq!(info.digest, digest);
        assert_eq!(store.read_bounded(&digest, 1 << 20).unwrap(), data);

        // Different expectations under the same ref start over.
        let mut w = store.writer("r2", None, None).unwrap();
        w.write_all(b"abc").unwrap();
        drop(w);
        let w = store
            .writer("r2", Some(Digest::sha256_of(b"zz")), None)
            .unwrap();
        assert_eq!(w.offset(), 0);
        w.abort().unwrap();
        assert!(store.ingests().unwrap().is_empty());
    }

    #[test]
    fn stale_ingests_are_pruned_but_open_ones_kept() {
        let (_d, store) = store();
        let mut old = store.writer("abandoned", None, None).unwrap();
        old.write_all(b"partial").unwrap();
        drop(old);
        let mut busy = store.writer("in-use", None, None).unwrap();
        busy.write_all(b"x").unwrap();
        assert_eq!(
            store
                .prune_ingests(std::time::Duration::from_secs(3600))
                .unwrap(),
            0
        );
        assert_eq!(store.prune_ingests(std::time::Duration::ZERO).unwrap(), 1);
        let left: Vec<String> = store
            .ingests()
            .unwrap()
            .into_iter()
            .map(|i| i.reference)
            .collect();
        assert_eq!(left, vec!["in-use"]);
        busy.commit().unwrap();
    }

    #[test]
    fn concurrent_writers_on_one_ref_are_refused() {
        let (_d, store) = store();
        let _w = store.writer("busy", None, None).unwrap();
        assert!(store.writer("busy", None, None).is_err());
    }

    fn deferred(store: &ContentStore, data: &[u8]) -> Digest {
        let digest = Digest::sha256_of(data);
        let mut w = store
            .writer(&unique_ref(), Some(digest.clone()), Some(data.len() as u64))
            .unwrap();
        w.write_all(data).unwrap();
        w.commit_deferred().unwrap();
        digest
    }

    fn markers(root: &Path) -> usize {
        fs::read_dir(root.join(UNSYNCED)).unwrap().count()
    }

    #[test]
    fn deferred_commits_are_usable_at_once_and_synced_later() {
        let (_d, store) = store();
        let a = deferred(&store, &b"layer a".repeat(5000));
        let b = deferred(&store, &b"layer b".repeat(5000));
        assert!(store.has(&a) && store.has(&b));
        assert_eq!(markers(store.root()), 2);
        assert_eq!(store.sync_deferred().unwrap(), 2);
        assert_eq!(markers(store.root()), 0);
        assert_eq!(store.sync_deferred().unwrap(), 0);
        // Committing content the store already has leaves no marker.
        deferred(&store, &b"layer a".repeat(5000));
        assert_eq!(markers(store.root()), 0);
    }

    #[test]
    fn reopening_after_a_crash_drops_blobs_that_lost_their_content() {
        let (dir, store) = store();
        let good = deferred(&store, &b"survives".repeat(4000));
        let torn = deferred(&store, &b"torn by a crash".repeat(4000));
        // What a crash before the sync can leave: the name, with zeroed data.
        let path = store.blob_path(&torn);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let len = fs::metadata(&path).unwrap().len();
        fs::write(&path, vec![0u8; len as usize]).unwrap();
        drop(store);
        let store = ContentStore::open(dir.path().join("content")).unwrap();
        assert!(store.has(&good));
        assert!(
            !store.has(&torn),
            "a damaged blob must not stay under its digest"
        );
        assert_eq!(markers(store.root()), 0);
    }

    #[test]
    fn json_reads_are_bounded() {
        let (_d, store) = store();
        let big = vec![b' '; (MAX_JSON_BLOB + 1) as usize];
        let info = store.put_bytes(&big).unwrap();
        let err = store
            .read_json::<serde_json::Value>(&info.digest)
            .unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("limit"), "{err}");
        let small = store.put_bytes(br#"{"a":1}"#).unwrap();
        let v: serde_json::Value = store.read_json(&small.digest).unwrap();
        assert_eq!(v["a"], 1);
    }

    #[test]
    fn corrupted_blob_is_detected_on_verified_read() {
        let (_d, store) = store();
        let info = store.put_bytes(b"{\"ok\":true}").unwrap();
        let path = store.blob_path(&info.digest);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&path, b"{\"ok\":fals}").unwrap();
        let err = store
            .read_json::<serde_json::Value>(&info.digest)
            .unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
    }
}
