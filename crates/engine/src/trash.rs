//! Deleting directory trees off the request path. `rm` and `run --rm` wait for a container's
//! removal, and deleting its writable layer file by file is the slowest part of it; a rename
//! into `<data-root>/trash` is one atomic step, and a background task deletes the tree from
//! there. Whatever a crash leaves in the trash is deleted when the engine next opens.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Trash {
    dir: PathBuf,
    seq: AtomicU64,
}

impl Trash {
    /// Open (create) the trash under `data_root` and start emptying what an earlier run left.
    pub fn open(data_root: &Path) -> io::Result<Trash> {
        let dir = data_root.join("trash");
        std::fs::create_dir_all(&dir)?;
        let leftovers: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        for path in leftovers {
            delete_later(path);
        }
        Ok(Trash {
            dir,
            seq: AtomicU64::new(0),
        })
    }

    /// Remove the tree at `path`: gone from its place when this returns, deleted in the
    /// background. A missing `path` is not an error.
    pub fn discard(&self, path: &Path) -> io::Result<()> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = self.dir.join(format!("{}-{n}-{name}", std::process::id()));
        match std::fs::rename(path, &dest) {
            Ok(()) => {
                delete_later(dest);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            // Another filesystem (a data root assembled from mounts): delete in place.
            Err(_) => match std::fs::remove_dir_all(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                r => r,
            },
        }
    }
}

fn delete_later(path: PathBuf) {
    let delete = move || {
        if let Err(e) = std::fs::remove_dir_all(&path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("empty trash {}: {e}", path.display());
            }
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            // Nobody waits for it: CPU time nothing else wants (a removed container's files
            // must not slow the next container's start).
            h.spawn_blocking(move || {
                let _idle = crate::containers::shim::IdleThread::enter();
                delete()
            });
        }
        Err(_) => delete(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) {
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), b"x").unwrap();
    }

    fn wait_empty(dir: &Path) -> bool {
        for _ in 0..500 {
            if std::fs::read_dir(dir).unwrap().next().is_none() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }

    #[tokio::test]
    async fn a_discarded_tree_leaves_at_once_and_is_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let trash = Trash::open(tmp.path()).unwrap();
        let victim = tmp.path().join("victim");
        tree(&victim);
        trash.discard(&victim).unwrap();
        assert!(!victim.exists());
        assert!(wait_empty(&tmp.path().join("trash")));
        // Missing is fine.
        trash.discard(&victim).unwrap();
    }

    #[tokio::test]
    async fn leftovers_of_a_crash_are_deleted_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        tree(&tmp.path().join("trash/old-1"));
        let _trash = Trash::open(tmp.path()).unwrap();
        assert!(wait_empty(&tmp.path().join("trash")));
    }
}
