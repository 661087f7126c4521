//! `docker cp`: stat, read (tar out) and write (tar in) paths of a container's filesystem.
//! Paths are resolved inside the container's root (its symlinks cannot lead out of it); a tar
//! written in goes through the image crate's safe extraction. Volumes and binds mounted inside
//! the container are not seen here (only its root filesystem).

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use berth_image::unpack::{apply_layer, DevicePolicy, UnpackOptions, WhiteoutMode};

use crate::error::{Error, Result};
use crate::Engine;

/// Docker's container path stat (X-Docker-Container-Path-Stat): `mode` uses Go's FileMode bits.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;

/// Resolve `path` under `root` as the container would, following symlinks without ever
/// leaving `root` (an absolute link target starts again at `root`, `..` stops at it).
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf> {
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .rev()
        .collect();
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let candidate = cur
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c))
            .join(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(Error::InvalidParameter(format!(
                        "{path}: too many levels of symbolic links"
                    )));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| Error::internal(format!("readlink {}", candidate.display()), e))?;
                if target.is_absolute() {
                    cur.clear();
                }
                for part in target.components().rev() {
                    match part {
                        Component::Normal(p) => todo.push(p.to_string_lossy().into_owned()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => cur.push(c),
        }
    }
    Ok(cur.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

/// Docker's rule for `cp` sources and `stat`: the parent directories are resolved (symlinks
/// followed, inside `root`), the last component is not, so a symlink is reported and copied as
/// itself (`docker cp -L` asks for its target). A path ending in `/` or `/.` is resolved fully.
pub fn resolve_source_in_root(root: &Path, path: &str) -> Result<PathBuf> {
    let trimmed = path.trim_end_matches('/');
    if path.ends_with('/') || path.ends_with("/.") || trimmed.is_empty() {
        return resolve_in_root(root, path);
    }
    let (dir, last) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    if last == "." || last == ".." {
        return resolve_in_root(root, path);
    }
    Ok(resolve_in_root(root, dir)?.join(last))
}

fn stat_of(host: &Path, name: &str) -> Result<PathStat> {
    let md = std::fs::symlink_metadata(host)
        .map_err(|_| Error::NotFound(format!("Could not find the file {name} in container")))?;
    let mut mode = md.permissions().mode() & 0o7777;
    if md.is_dir() {
        mode |= GO_MODE_DIR;
    }
    let mut link_target = String::new();
    if md.file_type().is_symlink() {
        mode |= GO_MODE_SYMLINK;
        link_target = std::fs::read_link(host)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
    }
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(md.mtime().max(0) as u64);
    Ok(PathStat {
        name: Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into()),
        size: md.len() as i64,
        mode,
        mtime: humantime::format_rfc3339(mtime).to_string(),
        link_target,
    })
}

/// Is `dir` a mount point (its device differs from its parent's)?
fn is_mounted(dir: &Path) -> bool {
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    match (dev(dir), dir.parent().and_then(dev)) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

impl Engine {
    /// Run `f` with the container's root filesystem mounted (temporarily when it is stopped).
    pub(crate) async fn with_rootfs<T: Send + 'static>(
        self: &Arc<Self>,
        key: &str,
        f: impl FnOnce(&Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let id = self.container(key)?.id;
        let lock = self.containers.op_lock(&id);
        let _g = lock.lock().await;
        let rec = self.container(&id)?;
        let live = rec.state.running() || rec.state.task;
        let scratch = rec.spec.host.auto_remove;
        let engine = self.clone();
        let rootfs_lock = self.containers.rootfs_lock(&id);
        tokio::task::spawn_blocking(move || {
            // A running container's exit unmounts its rootfs without our lock: it waits for
            // this one, and a container that exited before we got it is found unmounted.
            let _reading = rootfs_lock.read().unwrap_or_else(|e| e.into_inner());
            let rootfs = engine.container_dir(&id).join("rootfs");
            let mount = !live || !is_mounted(&rootfs);
            if mount {
                engine.mount_rootfs(&id, scratch)?;
            }
            let r = f(&rootfs);
            if mount {
                engine.unmount_rootfs(&id);
            }
            r
        })
        .await
        .map_err(|e| Error::internal("container filesystem", e))?
    }

    pub async fn stat_path(self: &Arc<Self>, key: &str, path: &str) -> Result<PathStat> {
        let path = path.to_string();
        self.with_rootfs(key, move |root| {
            stat_of(&resolve_source_in_root(root, &path)?, &path)
        })
        .await
    }

    /// Write a tar of `path` (named by its last component) to `out`.
    pub async fn archive_get(
        self: &Arc<Self>,
        key: &str,
        path: &str,
        out: Box<dyn Write + Send>,
    ) -> Result<PathStat> {
        let path = path.to_string();
        self.with_rootfs(key, move |root| {
            let host = resolve_source_in_root(root, &path)?;
            let stat = stat_of(&host, &path)?;
            let mut tar = tar::Builder::new(out);
            tar.follow_symlinks(false);
            let name = if stat.name == "/" {
                ".".to_string()
            } else {
                stat.name.clone()
            };
            let r = if stat.mode & GO_MODE_DIR != 0 {
                tar.append_dir_all(&name, &host)
            } else {
                tar.append_path_with_name(&host, &name)
            };
            r.and_then(|_| tar.finish())
                .map_err(|e| Error::internal(format!("archive {path}"), e))?;
            Ok(stat)
        })
        .await
    }

    /// Extract the tar read from `input` into the directory `path`.
    pub async fn archive_put(
        self: &Arc<Self>,
        key: &str,
        path: &str,
        input: Box<dyn Read + Send>,
    ) -> Result<()> {
        let path = path.to_string();
        self.with_rootfs(key, move |root| {
            let host = resolve_in_root(root, &path)?;
            let md = std::fs::metadata(&host).map_err(|_| {
                Error::NotFound(format!("Could not find the file {path} in container"))
            })?;
            if !md.is_dir() {
                return Err(Error::InvalidParameter(format!(
                    "extraction point is not a directory: {path}"
                )));
            }
            let opts = UnpackOptions {
                whiteouts: WhiteoutMode::Apply,
                devices: DevicePolicy::Skip,
                ..UnpackOptions::default()
            };
            apply_layer(input, &host, &opts)
                .map(|_| ())
                .map_err(|e| Error::InvalidParameter(format!("extract into {path}: {e}")))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", r.join("up")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/abs/passwd").unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(r, "/up/passwd").unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(r, "/../../x").unwrap(), r.join("x"));
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, "/loop").is_err());
        // A source keeps its last symlink (Docker's `cp` without -L), parents are followed.
        assert_eq!(resolve_source_in_root(r, "/abs").unwrap(), r.join("abs"));
        assert_eq!(
            resolve_source_in_root(r, "/up/passwd").unwrap(),
            resolve_in_root(r, "/up/passwd").unwrap()
        );
        assert_eq!(resolve_source_in_root(r, "/").unwrap(), r.to_path_buf());
    }
}
