//! `berth cp`: copy between a container and the host, both ways, with Docker's naming rules
//! (into an existing directory keeps the source's name, else the destination names it; `SRC/.`
//! copies a directory's contents; `-` is a tar on stdin/stdout). Tars from the daemon are
//! extracted defensively: no entry lands outside the destination, and none through a symlink.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use berth_api::client::{Client, ClientError};
use bytes::Bytes;
use clap::Args;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::format::human_size;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy.
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH, a host path, or - (a tar on stdin).
    pub src: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar on stdout).
    pub dst: String,
}

/// Go's FileMode directory bit, as the daemon's path stat carries it.
const GO_MODE_DIR: u32 = 1 << 31;

#[derive(serde::Deserialize, Debug)]
struct PathStat {
    name: String,
    mode: u32,
    #[serde(rename = "linkTarget", default)]
    link_target: String,
}

impl PathStat {
    fn is_dir(&self) -> bool {
        self.mode & GO_MODE_DIR != 0
    }
}

enum Loc {
    Host(String),
    Container(String, String),
}

/// Docker's rule: absolute or `.`-relative paths are local; else `NAME:PATH` names a container.
fn locate(arg: &str) -> Loc {
    if arg.starts_with('/') || arg.starts_with('.') {
        return Loc::Host(arg.to_string());
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.contains('/') => {
            Loc::Container(c.to_string(), p.to_string())
        }
        _ => Loc::Host(arg.to_string()),
    }
}

fn err(m: impl Into<String>) -> ClientError {
    ClientError::Protocol(m.into())
}

fn decode_stat(b64: &str) -> Result<PathStat, ClientError> {
    use base64::Engine as _;
    let json = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| err(format!("bad path stat from the daemon: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| err(format!("bad path stat from the daemon: {e}")))
}

pub async fn cp(c: &Client, a: CpArgs) -> Result<i32, ClientError> {
    match (locate(&a.src), locate(&a.dst)) {
        (Loc::Container(id, path), Loc::Host(dst)) => from_container(c, &a, &id, &path, &dst).await,
        (Loc::Host(src), Loc::Container(id, path)) => to_container(c, &a, &src, &id, &path).await,
        (Loc::Container(..), Loc::Container(..)) => {
            Err(err("copying between containers is not supported"))
        }
        (Loc::Host(_), Loc::Host(_)) => Err(err(
            "must specify at least one container source (CONTAINER:PATH)",
        )),
    }
}

/// The last path component Docker would name a copy by (`dir/.` → None: the contents).
fn base_name(p: &str) -> Option<String> {
    if p.ends_with("/.") || p == "." {
        return None;
    }
    Path::new(p)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

fn parent_of(p: &str) -> String {
    match Path::new(p).parent() {
        Some(par) if !par.as_os_str().is_empty() => par.to_string_lossy().into_owned(),
        _ if p.starts_with('/') => "/".into(),
        _ => ".".into(),
    }
}

// ------------------------------------------------------------ container → host

async fn from_container(
    c: &Client,
    a: &CpArgs,
    id: &str,
    path: &str,
    dst: &str,
) -> Result<i32, ClientError> {
    let mut src = path.to_string();
    if a.follow_link {
        let st = decode_stat(&c.archive_stat(id, path).await?)?;
        if !st.link_target.is_empty() {
            // A relative target is relative to the link's own directory, as `docker cp -L` has it.
            src = if st.link_target.starts_with('/') {
                st.link_target
            } else {
                let dir = path
                    .trim_end_matches('/')
                    .rsplit_once('/')
                    .map_or("", |d| d.0);
                format!("{dir}/{}", st.link_target)
            };
        }
    }
    let (stat, mut body) = c.archive_get(id, &src).await?;
    if dst == "-" {
        let mut out = tokio::io::stdout();
        tokio::io::copy(&mut body, &mut out)
            .await
            .map_err(|e| err(format!("write tar to stdout: {e}")))?;
        return Ok(0);
    }
    let stat = decode_stat(stat.as_deref().unwrap_or(""))?;
    let contents_only = base_name(path).is_none();
    // Where entries land, and what the archive's root entry is renamed to ("." = merged in).
    let (dir, rename): (PathBuf, Option<String>) = match fs::metadata(dst) {
        Ok(m) if m.is_dir() => (dst.into(), contents_only.then(|| ".".to_string())),
        Ok(_) if stat.is_dir() => {
            return Err(err(format!("cannot copy a directory to a file: {dst}")))
        }
        Ok(_) => (parent_of(dst).into(), base_name(dst)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if dst.ends_with('/') && !stat.is_dir() {
                return Err(err(format!("destination directory {dst} does not exist")));
            }
            let parent = parent_of(dst);
            if !Path::new(&parent).is_dir() {
                return Err(err(format!("no such directory: {parent}")));
            }
            (parent.into(), base_name(dst))
        }
        Err(e) => return Err(err(format!("stat {dst}: {e}"))),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let archive = a.archive;
    let root = stat.name.clone();
    let worker = tokio::task::spawn_blocking(move || {
        extract(ChanReader::new(rx), &dir, &root, rename.as_deref(), archive)
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = body
            .read(&mut buf)
            .await
            .map_err(|e| err(format!("read archive: {e}")))?;
        if n == 0 || tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
            break;
        }
    }
    drop(tx);
    let copied = worker
        .await
        .map_err(|e| err(format!("extract: {e}")))?
        .map_err(|e| err(format!("copy to {dst}: {e}")))?;
    if !a.quiet {
        eprintln!("Successfully copied {} to {dst}", human_size(copied as i64));
    }
    Ok(0)
}

/// Blocking `Read` over chunks sent from the async side.
struct ChanReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl ChanReader {
    fn new(rx: mpsc::Receiver<Bytes>) -> ChanReader {
        ChanReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// `root/rest` → `rename/rest` (or just `rest` for "."); only plain components survive.
fn rebase(entry: &Path, root: &str, rename: Option<&str>) -> io::Result<PathBuf> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("refusing archive entry {}", entry.display()),
        )
    };
    let mut parts = entry
        .components()
        .filter(|c| !matches!(c, Component::CurDir));
    let mut out = PathBuf::new();
    let root_is_dot = root == "/" || root == ".";
    if !root_is_dot {
        match parts.next() {
            Some(Component::Normal(first)) => match rename {
                Some(".") => {}
                Some(r) => out.push(r),
                None => out.push(first),
            },
            _ => return Err(bad()),
        }
    } else if let Some(r) = rename.filter(|r| *r != ".") {
        out.push(r);
    }
    for p in parts {
        match p {
            Component::Normal(n) => out.push(n),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// Create (or check) each directory between `dir` and `rel`'s parent, refusing symlinks.
fn ensure_parents(dir: &Path, rel: &Path, create: bool) -> io::Result<()> {
    let mut cur = dir.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for c in parent.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "refusing to write through {}: not a directory",
                        cur.display()
                    ),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => fs::create_dir(&cur)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A regular file: written through a 1 MiB buffer (tar's own unpack copies 8 KiB at a time),
/// created fresh (`create_new`: the caller removed what was there), then mode and mtime.
fn write_file<R: Read>(e: &mut tar::Entry<R>, target: &Path) -> io::Result<u64> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mode = e.header().mode()? & 0o7777;
    let mtime = e.header().mtime().unwrap_or(0);
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)?;
    let mut w = io::BufWriter::with_capacity(1 << 20, f);
    let n = io::copy(e, &mut w)?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime))?;
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(n)
}

/// Extract a tar into `dir`; returns the bytes of file content written.
fn extract(
    r: impl Read,
    dir: &Path,
    root: &str,
    rename: Option<&str>,
    archive: bool,
) -> io::Result<u64> {
    let mut ar = tar::Archive::new(r);
    let mut copied = 0;
    for entry in ar.entries()? {
        let mut e = entry?;
        let rel = rebase(&e.path()?, root, rename)?;
        let kind = e.header().entry_type();
        if rel.as_os_str().is_empty() {
            // The root directory merged into `dir` itself.
            continue;
        }
        ensure_parents(dir, &rel, true)?;
        let target = dir.join(&rel);
        let existing = fs::symlink_metadata(&target).ok();
        // Replace what is there, never write through it (a symlink must not redirect us).
        if let Some(m) = &existing {
            if !(m.is_dir() && kind.is_dir()) {
                if m.is_dir() {
                    fs::remove_dir_all(&target)?;
                } else {
                    fs::remove_file(&target)?;
                }
            }
        }
        match kind {
            tar::EntryType::Link => {
                let link = e.link_name()?.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "hard link without a target")
                })?;
                let src_rel = rebase(&link, root, rename)?;
                ensure_parents(dir, &src_rel, false)?;
                fs::hard_link(dir.join(&src_rel), &target)?;
            }
            tar::EntryType::Block | tar::EntryType::Char | tar::EntryType::Fifo => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                copied += write_file(&mut e, &target)?;
            }
            _ => {
                e.set_preserve_permissions(true);
                e.set_preserve_mtime(true);
                e.set_unpack_xattrs(false);
                e.unpack(&target)?;
            }
        }
        if archive {
            let (uid, gid) = (e.header().uid()?, e.header().gid()?);
            std::os::unix::fs::lchown(&target, Some(uid as u32), Some(gid as u32))?;
        }
    }
    Ok(copied)
}

// ------------------------------------------------------------ host → container

async fn to_container(
    c: &Client,
    a: &CpArgs,
    src: &str,
    id: &str,
    dst: &str,
) -> Result<i32, ClientError> {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    if src == "-" {
        // A tar on stdin goes in as it is, into the destination directory.
        let producer = std::thread::spawn(move || {
            let mut w = ChunkWriter::new(tx);
            io::copy(&mut io::stdin().lock(), &mut w).and_then(|_| w.flush())
        });
        c.archive_put(id, dst, a.archive, rx).await?;
        producer
            .join()
            .map_err(|_| err("reading stdin failed"))?
            .map_err(|e| err(format!("read stdin: {e}")))?;
        return Ok(0);
    }
    let meta = if a.follow_link {
        fs::metadata(src)
    } else {
        fs::symlink_metadata(src)
    }
    .map_err(|e| err(format!("stat {src}: {e}")))?;
    let base = base_name(src);
    let (dir, name) = match c.archive_stat(id, dst).await {
        Ok(b64) if decode_stat(&b64)?.is_dir() => (dst.to_string(), base),
        Ok(_) if meta.is_dir() => {
            return Err(err(format!("cannot copy a directory to a file: {dst}")))
        }
        Ok(_) => (parent_of(dst), base_name(dst)),
        Err(ClientError::Api { status: 404, .. }) => {
            if dst.ends_with('/') && !meta.is_dir() {
                return Err(err(format!("destination directory {dst} does not exist")));
            }
            (parent_of(dst), base_name(dst))
        }
        Err(e) => return Err(e),
    };
    let (host, archive) = (PathBuf::from(src), a.archive);
    let producer = std::thread::spawn(move || -> io::Result<u64> {
        let mut b = tar::Builder::new(ChunkWriter::new(tx));
        let mut copied = 0;
        let name = name.map(PathBuf::from).unwrap_or_default();
        append_tree(&mut b, &host, &name, &meta, archive, &mut copied)?;
        b.into_inner()?.flush()?;
        Ok(copied)
    });
    let put = c.archive_put(id, &dir, a.archive, rx).await;
    let built = producer
        .join()
        .map_err(|_| err("building the archive failed"))?;
    // An error reading the host files explains a failed upload better than the upload's error.
    let copied = built.map_err(|e| err(format!("archive {src}: {e}")))?;
    put?;
    if !a.quiet {
        eprintln!(
            "Successfully copied {} to {}:{dst}",
            human_size(copied as i64),
            id
        );
    }
    Ok(0)
}

/// Append `host` as `name` (recursively); an empty name merges a directory's contents.
fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    host: &Path,
    name: &Path,
    meta: &fs::Metadata,
    archive: bool,
    copied: &mut u64,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    if !archive {
        // Docker without -a: the copy belongs to the container's root.
        h.set_uid(0);
        h.set_gid(0);
        h.set_username("")?;
        h.set_groupname("")?;
    }
    let ft = meta.file_type();
    if ft.is_dir() {
        if !name.as_os_str().is_empty() {
            h.set_size(0);
            b.append_data(&mut h, name, io::empty())?;
        }
        let mut children: Vec<_> = fs::read_dir(host)?.collect::<io::Result<_>>()?;
        children.sort_by_key(|d| d.file_name());
        for c in children {
            let cm = fs::symlink_metadata(c.path())?;
            append_tree(
                b,
                &c.path(),
                &name.join(c.file_name()),
                &cm,
                archive,
                copied,
            )?;
        }
    } else if ft.is_symlink() {
        h.set_size(0);
        b.append_link(&mut h, name, fs::read_link(host)?)?;
    } else if ft.is_file() {
        *copied += meta.len();
        b.append_data(&mut h, name, fs::File::open(host)?)?;
    }
    // Sockets and devices are not copied (as docker cp skips sockets).
    Ok(())
}

/// `Write` that sends 64 KiB chunks to the request body.
struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> ChunkWriter {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(64 * 1024),
        }
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the daemon stopped reading"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_like_docker() {
        assert!(
            matches!(locate("web:/etc/hosts"), Loc::Container(c, p) if c == "web" && p == "/etc/hosts")
        );
        assert!(matches!(locate("/tmp/a:b"), Loc::Host(_)));
        assert!(matches!(locate("./x:y"), Loc::Host(_)));
        assert!(matches!(locate("-"), Loc::Host(_)));
        assert_eq!(base_name("/a/b/"), Some("b".into()));
        assert_eq!(base_name("/a/b/."), None);
        assert_eq!(parent_of("/x"), "/");
        assert_eq!(parent_of("x"), ".");
    }

    #[test]
    fn rebase_refuses_escapes() {
        let r = |p: &str, root: &str, ren: Option<&str>| {
            rebase(Path::new(p), root, ren).map(|p| p.display().to_string())
        };
        assert_eq!(r("d/x", "d", Some("e")).ok(), Some("e/x".into()));
        assert_eq!(r("d/x", "d", Some(".")).ok(), Some("x".into()));
        assert_eq!(r("./x", "/", None).ok(), Some("x".into()));
        assert!(r("d/../../x", "d", None).is_err());
        assert!(r("/etc/x", "d", None).is_err());
    }

    #[test]
    fn hostile_tar_stays_inside() {
        let tmp = std::env::temp_dir().join(format!("berth-cp-test-{}", std::process::id()));
        let outside = tmp.join("outside");
        let dest = tmp.join("dest");
        fs::create_dir_all(&outside).unwrap();
        fs::create_dir_all(&dest).unwrap();
        // A symlink entry pointing outside, then a file written "through" it.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "d/link", &outside).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "d/link/pwned", &b"x\n"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let r = extract(&data[..], &dest, "d", None, false);
        assert!(r.is_err(), "{r:?}");
        assert!(!outside.join("pwned").exists());
        fs::remove_dir_all(&tmp).unwrap();
    }
}
