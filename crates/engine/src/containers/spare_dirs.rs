//! Container directories made ahead of time.
//!
//! Creating a container makes its directory, `rootfs/`, and the files its start writes
//! (hostname, hosts, resolv.conf, config.json) and its shim opens (the json log). Each new
//! inode costs a block-group search in ext4, slowest right after containers were removed (a
//! `run --rm` loop): 0.2–1.4 ms apiece on the VM of docs/PERFORMANCE.md. A spare directory
//! with all of them, empty, is made in the background and renamed into place at create, so
//! the files are only truncated and written then.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Name prefix of a spare (never a container id: ids are 64 hex digits).
const PREFIX: &str = ".spare-";
/// The empty files a spare holds, as their names in a container's directory.
const FILES: [&str; 4] = ["hostname", "hosts", "resolv.conf", "config.json"];
/// The spare's empty log, renamed to `<id>-json.log` with the directory.
const LOG: &str = "container-json.log";

#[derive(Debug)]
pub(crate) struct SpareDirs {
    /// The containers' directory (`<data-root>/containers`).
    root: PathBuf,
    ready: Mutex<Vec<PathBuf>>,
}

impl SpareDirs {
    /// Spares in `root` left by an earlier run are removed.
    pub fn open(root: &Path) -> SpareDirs {
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(PREFIX) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        SpareDirs {
            root: root.to_path_buf(),
            ready: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Make one spare.
    pub fn add(&self) -> std::io::Result<()> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self
            .root
            .join(format!("{PREFIX}{}-{n}", std::process::id()));
        let made = (|| {
            std::fs::create_dir(&dir)?;
            std::fs::create_dir(dir.join("rootfs"))?;
            for f in FILES.iter().chain([&LOG]) {
                std::fs::File::create(dir.join(f))?;
            }
            Ok(())
        })();
        match made {
            Ok(()) => {
                self.lock().push(dir);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Rename a spare to `dir` (a new container's, which does not exist) with its log named
    /// `log_name`. False when there is none or it could not be used: make `dir` as usual.
    pub fn take_into(&self, dir: &Path, log_name: &str) -> bool {
        let Some(spare) = self.lock().pop() else {
            return false;
        };
        // rename(2) would replace an empty directory: a fresh id has none.
        if dir.exists() {
            self.lock().push(spare);
            return false;
        }
        match std::fs::rename(&spare, dir) {
            Ok(()) => match std::fs::rename(dir.join(LOG), dir.join(log_name)) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!("spare container log not renamed: {e}");
                    true
                }
            },
            Err(e) => {
                tracing::debug!(
                    "spare container directory {} not used: {e}",
                    spare.display()
                );
                let _ = std::fs::remove_dir_all(&spare);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spare_becomes_a_container_directory_with_its_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("containers");
        std::fs::create_dir(&root).expect("mkdir");
        // One left by an earlier daemon goes at open.
        std::fs::create_dir(root.join(".spare-1-0")).expect("mkdir stale");
        let spares = SpareDirs::open(&root);
        assert!(!root.join(".spare-1-0").exists());
        assert!(!spares.take_into(&root.join("a"), "a-json.log"), "none yet");

        spares.add().expect("add");
        assert_eq!(spares.len(), 1);
        let dir = root.join("c1");
        assert!(spares.take_into(&dir, "c1-json.log"));
        assert_eq!(spares.len(), 0);
        assert!(dir.join("rootfs").is_dir());
        for f in FILES.iter().chain([&"c1-json.log"]) {
            let meta = std::fs::metadata(dir.join(f)).expect(f);
            assert_eq!(meta.len(), 0, "{f}");
        }
        assert!(!dir.join(LOG).exists());
        let left: Vec<_> = std::fs::read_dir(&root)
            .expect("list")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("c1")]);

        // An existing directory is never replaced: the spare stays for the next one.
        spares.add().expect("add");
        std::fs::create_dir(root.join("c2")).expect("mkdir");
        assert!(!spares.take_into(&root.join("c2"), "c2-json.log"));
        assert_eq!(spares.len(), 1);
    }
}
