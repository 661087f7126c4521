//! Snapshots: layer file systems keyed by chain id, stacked with overlayfs.
//!
//! Layout under the snapshotter root:
//! ```text
//! committed/<chain-hex>/fs/          one layer's files (overlay) or the full tree (copy backend)
//! committed/<chain-hex>/info.json    {"chain_id", "parent"}: the chain is self-describing
//! active/<key>/{fs,work}/            a writable snapshot (an overlay upperdir + workdir)
//! active/<key>/info.json             {"key", "parent"}
//! ```
//! `commit` renames an active directory to its committed name: one atomic step, so a committed
//! snapshot is always complete. Active snapshots a crash leaves behind are listed by `list` for
//! the engine (which owns the state) to remove.
//!
//! Chain ids follow the OCI image-spec: ChainID(L0) = DiffID(L0),
//! ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::content::fsync_dir;
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, PathContext, Result};
use crate::unpack::WhiteoutMode;

mod mount;
pub use mount::{unmount, Mount};

/// Longest overlay lower chain we accept (the kernel's limit is 500).
const MAX_DEPTH: usize = 500;

/// ChainID of `parent` extended by a layer with `diff_id`.
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::sha256_of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// Chain ids for each prefix of `diff_ids` (bottom layer first).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = chain_id(out.last(), d);
        out.push(next);
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Layers stacked with overlayfs: each snapshot holds only its own changes.
    Overlay,
    /// No overlayfs (not root, or an upper file system it cannot use): each snapshot is a full
    /// copy of its parent plus its changes.
    Copy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The chain id (committed) or the caller's key (active).
    pub name: String,
    pub committed: bool,
    pub parent: Option<Digest>,
}

#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
    backend: Backend,
    /// Empty active snapshot directories made ahead of time (`add_spare`), renamed into place
    /// by `prepare`: creating directories and files is what a prepare spends its time on.
    spares: std::sync::Arc<std::sync::Mutex<Vec<PathBuf>>>,
}

/// Name prefix of a spare active directory (never a valid key: keys do not start with '.').
const SPARE_PREFIX: &str = ".spare-";

impl Snapshotter {
    /// Open (creating) a snapshotter at `root`; `backend: None` probes for overlayfs.
    pub fn open(root: impl Into<PathBuf>, backend: Option<Backend>) -> Result<Snapshotter> {
        let root = root.into();
        for d in ["committed", "active"] {
            let p = root.join(d);
            fs::create_dir_all(&p).at("create snapshot directory", &p)?;
        }
        // Best effort: a file system without the flag just allocates as it always does.
        if let Err(e) = mark_top_directory(&root.join("active")) {
            tracing::debug!("snapshot directory not marked as a top directory: {e}");
        }
        let backend = match backend {
            Some(b) => b,
            None => probe_overlay(&root),
        };
        // Spares of an earlier run: nobody knows of them any more.
        if let Ok(entries) = fs::read_dir(root.join("active")) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(SPARE_PREFIX) {
                    let _ = remove_dir(&e.path());
                }
            }
        }
        Ok(Snapshotter {
            root,
            backend,
            spares: Default::default(),
        })
    }

    /// Make one spare active directory (`fs/`, `work/`, an empty info file) for a later
    /// `prepare` to rename into place. Overlay only (a copy snapshot starts as a full copy).
    pub fn add_spare(&self) -> Result<()> {
        if self.backend != Backend::Overlay {
            return Ok(());
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self
            .root
            .join("active")
            .join(format!("{SPARE_PREFIX}{}-{n}", std::process::id()));
        let made = (|| {
            fs::create_dir(&dir)?;
            fs::create_dir(dir.join("fs"))?;
            fs::create_dir(dir.join("work"))?;
            fs::File::create(dir.join(INFO_TMP)).map(drop)
        })();
        match made {
            Ok(()) => {
                self.lock_spares().push(dir);
                Ok(())
            }
            Err(e) => {
                let _ = remove_dir(&dir);
                Err(Error::path("make a spare snapshot directory", &dir, e))
            }
        }
    }

    /// How many spares wait.
    pub fn spares(&self) -> usize {
        self.lock_spares().len()
    }

    fn lock_spares(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        self.spares.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rename a spare to `dir` (which must not exist). None when there is no spare or it could
    /// not be used (then `dir` is made as usual).
    fn take_spare(&self, dir: &Path) -> Option<Result<()>> {
        let spare = self.lock_spares().pop()?;
        // An existing `dir` with content makes rename fail (ENOTEMPTY or EEXIST): the
        // snapshot exists; an empty one (an interrupted prepare) is replaced.
        match fs::rename(&spare, dir) {
            Ok(()) => Some(Ok(())),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                self.lock_spares().push(spare);
                Some(Err(Error::Snapshot {
                    id: dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    reason: "an active snapshot with this key already exists".into(),
                }))
            }
            Err(e) => {
                tracing::debug!("spare snapshot {} not used: {e}", spare.display());
                let _ = remove_dir(&spare);
                None
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How unpack must treat whiteouts for snapshots of this backend.
    pub fn whiteout_mode(&self) -> WhiteoutMode {
        match self.backend {
            Backend::Overlay => WhiteoutMode::Overlay,
            Backend::Copy => WhiteoutMode::Apply,
        }
    }

    fn committed_dir(&self, chain: &Digest) -> PathBuf {
        // Chain ids are sha256; the hex alone keeps overlay option strings short and colon-free.
        self.root.join("committed").join(chain.hex())
    }

    fn active_dir(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join("active").join(key))
    }

    pub fn exists(&self, chain: &Digest) -> bool {
        self.committed_dir(chain).join("info.json").is_file()
    }

    /// The directory holding a committed snapshot's files.
    pub fn committed_fs(&self, chain: &Digest) -> PathBuf {
        self.committed_dir(chain).join("fs")
    }

    /// The writable directory of an active snapshot: where a layer is unpacked.
    pub fn active_fs(&self, key: &str) -> Result<PathBuf> {
        Ok(self.active_dir(key)?.join("fs"))
    }

    pub fn info(&self, chain: &Digest) -> Result<SnapshotInfo> {
        read_info(&self.committed_dir(chain).join("info.json"))
    }

    /// The committed chain from `top` down to the base layer.
    fn lineage(&self, top: &Digest) -> Result<Vec<Digest>> {
        let mut out = vec![top.clone()];
        let mut cur = top.clone();
        loop {
            let info = self.info(&cur).map_err(|e| Error::Snapshot {
                id: cur.to_string(),
                reason: format!("parent chain broken: {e}"),
            })?;
            match info.parent {
                None => return Ok(out),
                Some(p) => {
                    if out.len() >= MAX_DEPTH {
                        return Err(Error::Snapshot {
                            id: top.to_string(),
                            reason: format!("more than {MAX_DEPTH} layers"),
                        });
                    }
                    out.push(p.clone());
                    cur = p;
                }
            }
        }
    }

    /// Create a writable snapshot `key` on top of the committed `parent` (or empty).
    pub fn prepare(&self, key: &str, parent: Option<&Digest>) -> Result<Mount> {
        self.prepare_with(key, parent, true)
    }

    /// `prepare` for a snapshot that does not outlive a crash of its user (a `run --rm`
    /// container's layer, mounted volatile): its info is not fsynced.
    pub fn prepare_scratch(&self, key: &str, parent: Option<&Digest>) -> Result<Mount> {
        self.prepare_with(key, parent, false)
    }

    fn prepare_with(&self, key: &str, parent: Option<&Digest>, durable: bool) -> Result<Mount> {
        let dir = self.active_dir(key)?;
        if let Some(p) = parent {
            if !self.exists(p) {
                return Err(Error::Snapshot {
                    id: p.to_string(),
                    reason: "parent snapshot does not exist".into(),
                });
            }
        }
        let info = SnapshotInfo {
            name: key.to_string(),
            committed: false,
            parent: parent.cloned(),
        };
        let made = match self.take_spare(&dir) {
            // A spare already holds fs/, work/ and the info file's inode.
            Some(taken) => {
                taken?;
                write_info(&dir, &info, durable)
            }
            None => {
                match fs::create_dir(&dir) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        return Err(Error::Snapshot {
                            id: key.to_string(),
                            reason: "an active snapshot with this key already exists".into(),
                        })
                    }
                    r => r.at("create snapshot", &dir)?,
                }
                (|| {
                    let fs_dir = dir.join("fs");
                    match (self.backend, parent) {
                        (Backend::Copy, Some(p)) => copy_tree(&self.committed_fs(p), &fs_dir)?,
                        _ => fs::create_dir(&fs_dir).at("create snapshot fs", &fs_dir)?,
                    }
                    if self.backend == Backend::Overlay {
                        let work = dir.join("work");
                        fs::create_dir(&work).at("create snapshot work", &work)?;
                    }
                    write_info(&dir, &info, durable)
                })()
            }
        };
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.mounts(key)
    }

    /// How to mount the active snapshot `key`.
    pub fn mounts(&self, key: &str) -> Result<Mount> {
        let dir = self.active_dir(key)?;
        let info = read_info(&dir.join("info.json"))?;
        let fs_dir = dir.join("fs");
        match (self.backend, info.parent) {
            (Backend::Overlay, Some(parent)) => Ok(Mount::Overlay {
                lowerdirs: self
                    .lineage(&parent)?
                    .iter()
                    .map(|c| self.committed_fs(c))
                    .collect(),
                upperdir: Some(fs_dir),
                workdir: Some(dir.join("work")),
            }),
            _ => Ok(Mount::Bind { source: fs_dir }),
        }
    }

    /// How to mount a committed snapshot read-only (e.g. to inspect an image): overlay with
    /// lower layers only, which overlayfs makes read-only.
    pub fn view(&self, chain: &Digest) -> Result<Mount> {
        let lineage = self.lineage(chain)?;
        match (self.backend, lineage.len()) {
            (Backend::Overlay, n) if n > 1 => Ok(Mount::Overlay {
                lowerdirs: lineage.iter().map(|c| self.committed_fs(c)).collect(),
                upperdir: None,
                workdir: None,
            }),
            _ => Ok(Mount::Bind {
                source: self.committed_fs(chain),
            }),
        }
    }

    /// Turn the active snapshot `key` into the committed snapshot `chain`. If another unpack
    /// committed the same chain first, this one is discarded.
    pub fn commit(&self, key: &str, chain: &Digest) -> Result<()> {
        if chain.algorithm() != Algorithm::Sha256 {
            return Err(Error::Snapshot {
                id: chain.to_string(),
                reason: "chain ids are sha256".into(),
            });
        }
        let dir = self.active_dir(key)?;
        let mut info = read_info(&dir.join("info.json"))?;
        info.name = chain.to_string();
        info.committed = true;
        write_info(&dir, &info, true)?;
        let work = dir.join("work");
        if work.exists() {
            fs::remove_dir_all(&work).at("remove snapshot work dir", &work)?;
        }
        let target = self.committed_dir(chain);
        if target.exists() {
            return self.remove_active(key);
        }
        fs::rename(&dir, &target).at("commit snapshot", &target)?;
        fsync_dir(&self.root.join("committed"))
    }

    /// Commit the active snapshot `key` as `chain` on top of `parent` (committed by now).
    /// For layers unpacked concurrently (the registry client's pull): with overlay, a layer's
    /// upper directory holds only its own changes, so it can be prepared without a parent and
    /// linked to it at commit, in order. Only the overlay backend allows a parent different
    /// from the one prepared on (a copy snapshot contains its parent's files).
    pub fn commit_onto(&self, key: &str, chain: &Digest, parent: Option<&Digest>) -> Result<()> {
        let dir = self.active_dir(key)?;
        let mut info = read_info(&dir.join("info.json"))?;
        if info.parent.as_ref() != parent {
            if self.backend != Backend::Overlay {
                return Err(Error::Snapshot {
                    id: key.to_string(),
                    reason: "only overlay snapshots can be re-parented at commit".into(),
                });
            }
            if let Some(p) = parent {
                if !self.exists(p) {
                    return Err(Error::Snapshot {
                        id: p.to_string(),
                        reason: "parent snapshot does not exist".into(),
                    });
                }
            }
            info.parent = parent.cloned();
            write_info(&dir, &info, true)?;
        }
        self.commit(key, chain)
    }

    /// The directory of active snapshot `key` (its writable layer and metadata).
    pub fn active_path(&self, key: &str) -> Result<PathBuf> {
        self.active_dir(key)
    }

    pub fn remove_active(&self, key: &str) -> Result<()> {
        let dir = self.active_dir(key)?;
        remove_dir(&dir)
    }

    /// Remove a committed snapshot; refused while another snapshot builds on it.
    pub fn remove(&self, chain: &Digest) -> Result<()> {
        let children: Vec<String> = self
            .list()?
            .into_iter()
            .filter(|s| s.parent.as_ref() == Some(chain))
            .map(|s| s.name)
            .collect();
        if !children.is_empty() {
            return Err(Error::Snapshot {
                id: chain.to_string(),
                reason: format!("still the parent of {}", children.join(", ")),
            });
        }
        remove_dir(&self.committed_dir(chain))
    }

    /// Every snapshot, committed and active.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>> {
        let mut out = Vec::new();
        for sub in ["committed", "active"] {
            let dir = self.root.join(sub);
            for entry in fs::read_dir(&dir).at("list snapshots", &dir)? {
                let entry = entry.at("list snapshots", &dir)?;
                // A directory without info.json is an interrupted prepare: not a snapshot.
                if let Ok(info) = read_info(&entry.path().join("info.json")) {
                    out.push(info);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

fn validate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Snapshot {
            id: key.to_string(),
            reason: "invalid key: use letters, digits, '_', '-', '.' (max 128)".into(),
        })
    }
}

/// The info file's temporary name (a spare holds it, empty: writing it creates no inode).
const INFO_TMP: &str = "info.json.tmp";

fn write_info(dir: &Path, info: &SnapshotInfo, durable: bool) -> Result<()> {
    let tmp = dir.join(INFO_TMP);
    let text = serde_json::to_vec(info).map_err(|e| Error::json("snapshot info", e))?;
    crate::overwrite::overwrite(&tmp, &text).at("write snapshot info", &tmp)?;
    if durable {
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .at("fsync snapshot info", &tmp)?;
    }
    let path = dir.join("info.json");
    fs::rename(&tmp, &path).at("write snapshot info", &path)
}

fn read_info(path: &Path) -> Result<SnapshotInfo> {
    let bytes = fs::read(path).at("read snapshot info", path)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::json(format!("parse {}", path.display()), e))
}

/// The inode flag `chattr +T` sets (FS_TOPDIR_FL).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Mark `dir` as the top of unrelated directory trees (`chattr +T`), so ext4's Orlov allocator
/// spreads its new subdirectories, each a snapshot being unpacked, over the block groups instead
/// of packing them into the parent's. That matters after removals: without a journal ext4 avoids
/// reusing inodes freed in the last 5 s (300 s while their inode table block is dirty) and scans
/// each group's whole bitmap past them on every create, so unpacking thousands of files where a
/// removed image's snapshots just were cost ~10x the system time (docs/PERFORMANCE.md, pull).
pub fn mark_top_directory(dir: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(dir)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: valid fd; the kernel reads and writes one int through the pointer.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: as above.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `dir` has the top-directory flag (see `mark_top_directory`).
pub fn is_top_directory(dir: &Path) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(dir)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: valid fd; the kernel writes one int through the pointer.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags & FS_TOPDIR_FL != 0)
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(Error::path("remove snapshot", dir, e))
        }
        _ => Ok(()),
    }
}

/// Full copy preserving owners, modes, times, links, devices and xattrs. GNU cp does all of it
/// (and reflinks where the file system can), which no crate here matches.
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let out = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg("--no-target-directory")
        .arg(src)
        .arg(dst)
        .output()
        .map_err(|e| Error::io("run cp -a", e))?;
    if !out.status.success() {
        return Err(Error::Snapshot {
            id: dst.display().to_string(),
            reason: format!(
                "copying {} failed: {}",
                src.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// Overlay works if we can mount one here: root, the module present, and an upper file system
/// overlayfs accepts (not another overlay, for instance).
fn probe_overlay(root: &Path) -> Backend {
    if !nix::unistd::geteuid().is_root() {
        return Backend::Copy;
    }
    let probe = root.join(format!(".probe-{}", std::process::id()));
    let dirs = ["lower", "upper", "work", "merged"].map(|d| probe.join(d));
    let ok = dirs.iter().all(|d| fs::create_dir_all(d).is_ok()) && {
        let m = Mount::Overlay {
            lowerdirs: vec![dirs[0].clone()],
            upperdir: Some(dirs[1].clone()),
            workdir: Some(dirs[2].clone()),
        };
        let mounted = m.mount(&dirs[3]).is_ok();
        if mounted {
            let _ = unmount(&dirs[3]);
        }
        mounted
    };
    let _ = fs::remove_dir_all(&probe);
    if ok {
        Backend::Overlay
    } else {
        Backend::Copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
        assert_ne!(chain_ids(&[b, a])[1], ids[1]);
    }

    #[test]
    fn keys_are_validated() {
        for bad in ["", "a/b", "..", ".hidden", "a:b", "a,b", &"k".repeat(129)] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
        validate_key("container-1_a.b").unwrap();
    }
}
