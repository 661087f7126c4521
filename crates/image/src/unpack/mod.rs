//! Applying a layer tar to a directory — the security-critical part of the image crate.
//!
//! The stream is decompressed (gzip, zstd or none, by magic bytes) and hashed on the fly: the
//! sha256 of the uncompressed tar is the layer's diff_id, the digest of the raw input its blob
//! digest. Nothing is buffered beyond one read.
//!
//! Hostile input is contained, with one consistent policy:
//! - names are normalised; absolute names become relative; a `..` that climbs above the root is
//!   an error (`Error::UnsafeEntry`) and stops the unpack;
//! - parents are resolved inside the root (openat2 RESOLVE_IN_ROOT): a symlink in the layer is
//!   followed as if the root were `/`, so writing "through" `a -> /` lands in `<root>/…`;
//! - the final component is never followed: an existing symlink there is replaced, not written
//!   through;
//! - hard links resolve their target inside the root too; a target that is not there is an error;
//! - device nodes follow `DevicePolicy` (default: create when root, skip otherwise).
//!
//! Speed without loosening that: parents resolved in the root are kept open for the entries that
//! follow (`DirCache`, emptied by any removal, the only thing that changes where a path leads);
//! entries are created first and looked at only if something is in the way (EEXIST); in an
//! empty target they get their final mode at creation and skip a chown to the owner they have.
//!
//! Whiteouts (`.wh.<name>`, `.wh..wh..opq`) are either applied (delete in place — for a plain
//! copy of the parent) or converted to overlayfs whiteouts (a 0/0 char device and
//! `trusted.overlay.opaque=y`) when the target is an overlay upper directory.

mod decompress;
pub(crate) mod fsops;
mod path;
mod timing;

pub use decompress::{detect as detect_compression, Decoder};
pub use path::normalize as normalize_entry_name;
pub use timing::UnpackTimings;

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{
    fchmod, fchmodat, makedev, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, getegid, geteuid, linkat, mkfifoat, symlinkat, Gid, Uid};
use std::rc::Rc;

use crate::content::BlobInfo;
use crate::digest::{Algorithm, Digest, HashingReader};
use crate::error::{Error, Result};
use crate::media::Compression;

use fsops::Root;
use timing::Timed;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// What to do with whiteout entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// Delete the named files now: the target is a full copy of the parent.
    Apply,
    /// Record them as overlayfs whiteouts: the target is an overlay upper directory.
    Overlay,
}

/// What to do with block and character device entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevicePolicy {
    Create,
    /// Leave them out and list them in `UnpackStats::skipped`.
    Skip,
    /// Stop with an error.
    Deny,
}

#[derive(Debug, Clone)]
pub struct UnpackOptions {
    pub whiteouts: WhiteoutMode,
    pub devices: DevicePolicy,
    /// lchown entries to their uid/gid (needs root).
    pub ownership: bool,
    /// Apply SCHILY.xattr.* PAX records (unsupported or forbidden ones are skipped).
    pub xattrs: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        let root = nix::unistd::geteuid().is_root();
        UnpackOptions {
            whiteouts: WhiteoutMode::Apply,
            devices: if root {
                DevicePolicy::Create
            } else {
                DevicePolicy::Skip
            },
            ownership: root,
            xattrs: true,
        }
    }
}

/// What an unpack read and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Digest and size of the raw (possibly compressed) input.
    pub blob: BlobInfo,
    pub compression: Compression,
    pub uncompressed_size: u64,
    pub entries: u64,
    /// Entries left out by policy (device nodes under `DevicePolicy::Skip`, aufs metadata).
    pub skipped: Vec<String>,
    pub timings: UnpackTimings,
}

/// Apply the layer read from `input` to the directory `target` (which must exist).
pub fn apply_layer(input: impl Read, target: &Path, opts: &UnpackOptions) -> Result<UnpackStats> {
    let started = Instant::now();
    let raw = HashingReader::new(Timed::new(input), Algorithm::Sha256);
    let decoder = Decoder::new(BufReader::with_capacity(256 << 10, raw))
        .map_err(|e| Error::io("read layer header", e))?;
    let compression = decoder.compression();
    let tar_stream = Timed::new(HashingReader::new(decoder, Algorithm::Sha256));
    let mut archive = tar::Archive::new(tar_stream);
    let root = Root::open(target).map_err(|e| Error::path("open unpack target", target, e))?;
    let plain = fresh_target(&root).map_err(|e| Error::path("inspect unpack target", target, e))?;
    let mut state = Unpacker {
        root,
        opts,
        created: HashSet::new(),
        dir_times: Vec::new(),
        skipped: Vec::new(),
        entries: 0,
        // Only in a target nobody else can be changing (an empty one: a new snapshot); a
        // container's root filesystem, for one, is resolved afresh for every entry.
        dirs: DirCache::new(plain),
        buf: Vec::new(),
        umask: fsops::current_umask(),
        plain,
        owner: (geteuid().as_raw(), getegid().as_raw()),
    };
    let entries = archive
        .entries()
        .map_err(|e| Error::io("read layer tar", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io("read layer tar entry", e))?;
        state.entry(&mut entry)?;
        state.entries += 1;
    }
    state.finish_dir_times()?;

    // Hash what follows the tar's end (padding, zero blocks) so the diff_id covers it all.
    let mut tar_stream = archive.into_inner();
    io::copy(&mut tar_stream, &mut io::sink()).map_err(|e| Error::io("read layer tail", e))?;
    let (tar_stream, in_tar_stream) = tar_stream.into_parts();
    let (decoder, diff_id, uncompressed_size) = tar_stream.into_parts();
    let mut raw = decoder.into_inner();
    io::copy(&mut raw, &mut io::sink()).map_err(|e| Error::io("read layer tail", e))?;
    let (input, blob_digest, blob_size) = raw.into_inner().into_parts();
    let (_, in_input) = input.into_parts();
    let total = started.elapsed();
    Ok(UnpackStats {
        diff_id,
        blob: BlobInfo {
            digest: blob_digest,
            size: blob_size,
        },
        compression,
        uncompressed_size,
        entries: state.entries,
        skipped: state.skipped,
        timings: UnpackTimings {
            input: in_input,
            decode: in_tar_stream.saturating_sub(in_input),
            filesystem: total.saturating_sub(in_tar_stream.max(in_input)),
        },
    })
}

struct Unpacker<'a> {
    root: Root,
    opts: &'a UnpackOptions,
    /// Paths this layer created: an opaque whiteout hides only what lower layers had.
    created: HashSet<PathBuf>,
    /// Directory mtimes, set last because adding entries changes them.
    dir_times: Vec<(PathBuf, u64)>,
    skipped: Vec<String>,
    entries: u64,
    /// Directories resolved recently (tar order keeps a directory's entries together).
    dirs: DirCache,
    /// File data goes through this (allocated at the first file).
    buf: Vec<u8>,
    umask: Option<u32>,
    /// Every directory in the target so far is one where a new entry gets exactly the mode
    /// (less the umask) and the owner (the process's) it is created with: the target was empty,
    /// not setgid and without a default ACL, and no entry has made a setgid directory or set a
    /// directory's xattrs (which could be a default ACL). Then new entries are created with their
    /// final mode, and their chown is skipped when the owner already matches.
    plain: bool,
    /// The process's effective uid and gid: the owner of what it creates.
    owner: (u32, u32),
}

/// Whether `root` is an empty directory where new entries get the mode and owner they are
/// created with (see `Unpacker::plain`): a fresh snapshot, as a pull unpacks into.
fn fresh_target(root: &Root) -> io::Result<bool> {
    let fd = root.dir(Path::new(""), false)?;
    Ok(fsops::list_dir(fd.as_fd())?.is_empty() && fsops::plain_parent(fd.as_fd())?)
}

/// Open directory fds by their normalised path in the layer, most recently used last.
///
/// An entry stays right only while the path still resolves (in the root) to the same directory:
/// nothing this unpacker does changes that except removing something (a replaced entry, a
/// whiteout), so every removal empties the cache (`Unpacker::remove`). Creating entries cannot
/// change what an existing path resolves to. Nobody else may change the target meanwhile: the
/// cache is enabled only for a target that was empty (a new snapshot, private to the unpack).
struct DirCache {
    enabled: bool,
    entries: Vec<(PathBuf, Rc<OwnedFd>)>,
}

impl DirCache {
    /// Few enough to keep the fd count and the linear search small; enough for the directories
    /// a tar stream interleaves.
    const CAPACITY: usize = 64;

    fn new(enabled: bool) -> DirCache {
        DirCache {
            enabled,
            entries: Vec::new(),
        }
    }

    fn get(&mut self, rel: &Path) -> Option<Rc<OwnedFd>> {
        let i = self
            .entries
            .iter()
            .rposition(|(p, _)| p.as_os_str() == rel.as_os_str())?;
        let entry = self.entries.remove(i);
        let fd = entry.1.clone();
        self.entries.push(entry);
        Some(fd)
    }

    fn insert(&mut self, rel: PathBuf, fd: Rc<OwnedFd>) {
        if !self.enabled {
            return;
        }
        self.entries
            .retain(|(p, _)| p.as_os_str() != rel.as_os_str());
        if self.entries.len() >= Self::CAPACITY {
            self.entries.remove(0);
        }
        self.entries.push((rel, fd));
    }

    fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Entry metadata gathered from the header and its PAX records.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw_name = entry
            .path()
            .map_err(|e| Error::io("read entry name", e))?
            .into_owned();
        let shown = raw_name.display().to_string();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let Some(rel) = path::normalize(&raw_name)? else {
            // The root itself: nothing to create.
            return Ok(());
        };
        let (parent_rel, name) = split(&rel, &shown)?;
        let name_bytes = name.as_bytes();

        if name_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&parent_rel, name, &shown);
        }

        let meta = read_meta(entry, self.opts.xattrs).map_err(|e| Error::Unpack {
            entry: shown.clone(),
            context: "read metadata".into(),
            source: e,
        })?;
        let io_err = |context: &str, e: io::Error| Error::Unpack {
            entry: shown.clone(),
            context: context.to_string(),
            source: e,
        };
        let parent = self
            .parent_dir(&parent_rel)
            .map_err(|e| io_err("resolve parent directory", e))?;
        let parent = parent.as_fd();

        match kind {
            tar::EntryType::Directory => {
                let perm = meta.mode & 0o7777;
                let exact = self.exact_mode(perm);
                let mode = exact.unwrap_or(0o700);
                // Most directories are new: try mkdir first, look at what is there only if not.
                let made = match mkdir(parent, name, mode) {
                    Ok(()) => Some(exact),
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        let existing =
                            fsops::lstat_at(parent, name).map_err(|e| io_err("stat", e))?;
                        match existing {
                            Some(st) if fsops::is_dir(&st) => None,
                            _ => {
                                self.remove(parent, name)
                                    .map_err(|e| io_err("replace", e))?;
                                mkdir(parent, name, mode).map_err(|e| io_err("mkdir", e))?;
                                Some(exact)
                            }
                        }
                    }
                    Err(e) => return Err(io_err("mkdir", e)),
                };
                if perm & libc::S_ISGID != 0 || !meta.xattrs.is_empty() {
                    // Its children could take its group or a default ACL from its xattrs.
                    self.plain = false;
                }
                let dir = fsops::open_subdir(parent, name).map_err(|e| io_err("open dir", e))?;
                self.set_fd_meta(dir.as_fd(), &meta, made)
                    .map_err(|e| io_err("set metadata", e))?;
                self.dir_times.push((rel.clone(), meta.mtime));
                // The entries that follow are usually this directory's.
                self.dirs.insert(rel.clone(), Rc::new(dir));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let exact = self.exact_mode(meta.mode & 0o7777);
                let mode = exact.unwrap_or(0o600);
                let mut file = match fsops::create_file(parent, name, mode) {
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        self.remove(parent, name)
                            .map_err(|e| io_err("replace", e))?;
                        fsops::create_file(parent, name, mode)
                    }
                    r => r,
                }
                .map_err(|e| io_err("create file", e))?;
                self.write_data(entry, &mut file)
                    .map_err(|e| io_err("write file", e))?;
                self.set_fd_meta(file.as_fd(), &meta, Some(exact))
                    .map_err(|e| io_err("set metadata", e))?;
                set_fd_mtime(file.as_fd(), meta.mtime).map_err(|e| io_err("set mtime", e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| io_err("read link target", e))?
                    .ok_or_else(|| Error::unsafe_entry(&shown, "symlink without a target"))?;
                // The target is stored verbatim: it is data, only ever resolved in the root.
                match symlinkat(target.as_ref(), parent, name) {
                    Err(Errno::EEXIST) => {
                        self.remove(parent, name)
                            .map_err(|e| io_err("replace", e))?;
                        symlinkat(target.as_ref(), parent, name)
                    }
                    r => r,
                }
                .map_err(|e| io_err("symlink", e.into()))?;
                self.set_link_meta(parent, name, &meta, true)
                    .map_err(|e| io_err("set metadata", e))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| io_err("read link target", e))?
                    .ok_or_else(|| Error::unsafe_entry(&shown, "hard link without a target"))?;
                let target_rel = path::normalize(&target)?
                    .ok_or_else(|| Error::unsafe_entry(&shown, "hard link to the layer root"))?;
                if target_rel == rel {
                    return Ok(());
                }
                let (tparent_rel, tname) = split(&target_rel, &shown)?;
                let tparent = self.root.dir(&tparent_rel, false).map_err(|e| {
                    io_err(
                        &format!("hard link target {} not in layer", target_rel.display()),
                        e,
                    )
                })?;
                match fsops::lstat_at(tparent.as_fd(), tname) {
                    Ok(Some(st)) if !fsops::is_dir(&st) => {}
                    Ok(_) => {
                        return Err(Error::unsafe_entry(
                            &shown,
                            format!(
                                "hard link target {} is missing or a directory",
                                target_rel.display()
                            ),
                        ))
                    }
                    Err(e) => return Err(io_err("stat hard link target", e)),
                }
                let link = || linkat(tparent.as_fd(), tname, parent, name, AtFlags::empty());
                match link() {
                    Err(Errno::EEXIST) => {
                        self.remove(parent, name)
                            .map_err(|e| io_err("replace", e))?;
                        link()
                    }
                    r => r,
                }
                .map_err(|e| io_err("hard link", e.into()))?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                match self.opts.devices {
                    DevicePolicy::Skip => {
                        self.skipped.push(shown);
                        return Ok(());
                    }
                    DevicePolicy::Deny => {
                        return Err(Error::unsafe_entry(&shown, "device nodes are not allowed"))
                    }
                    DevicePolicy::Create => {}
                }
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                let sflag = if kind == tar::EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                self.remove(parent, name)
                    .map_err(|e| io_err("replace", e))?;
                mknodat(
                    parent,
                    name,
                    sflag,
                    Mode::from_bits_truncate(meta.mode & 0o777),
                    makedev(major.into(), minor.into()),
                )
                .map_err(|e| io_err("mknod", e.into()))?;
                self.set_node_meta(parent, name, &meta)
                    .map_err(|e| io_err("set metadata", e))?;
            }
            tar::EntryType::Fifo => {
                self.remove(parent, name)
                    .map_err(|e| io_err("replace", e))?;
                mkfifoat(parent, name, Mode::from_bits_truncate(meta.mode & 0o777))
                    .map_err(|e| io_err("mkfifo", e.into()))?;
                self.set_node_meta(parent, name, &meta)
                    .map_err(|e| io_err("set metadata", e))?;
            }
            other => {
                return Err(Error::unsafe_entry(
                    &shown,
                    format!("unsupported tar entry type {other:?}"),
                ))
            }
        }
        self.created.insert(rel);
        Ok(())
    }

    /// Remove whatever sits at `name` (never following it). Cached directories may have been
    /// under it, or reached through it: the cache is emptied.
    fn remove(&mut self, parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
        self.dirs.clear();
        fsops::remove_at(parent, name)
    }

    /// Directory `rel` inside the root, made if missing: from the cache, else resolved in the
    /// root (openat2 RESOLVE_IN_ROOT, so symlinks in the layer stay confined) and cached.
    fn parent_dir(&mut self, rel: &Path) -> io::Result<Rc<OwnedFd>> {
        if let Some(fd) = self.dirs.get(rel) {
            return Ok(fd);
        }
        let fd = Rc::new(self.root.dir(rel, true)?);
        self.dirs.insert(rel.to_path_buf(), fd.clone());
        Ok(fd)
    }

    /// `perm` if creating a new entry with it gives exactly that mode: the target is plain, the
    /// umask known and clear of it, and no setuid/setgid/sticky bits (which must follow the
    /// chown). Else None: the entry is created private and fchmod sets its mode.
    fn exact_mode(&self, perm: u32) -> Option<u32> {
        let umask = self.umask?;
        (self.plain && perm & 0o7000 == 0 && perm & umask == 0).then_some(perm)
    }

    /// Copy the entry's data to `file` through one large buffer (std's copy goes 8 KiB at a
    /// time: a write syscall each).
    fn write_data(&mut self, data: &mut impl Read, file: &mut File) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            buf = vec![0; 1 << 20];
        }
        let result = copy_through(data, file, &mut buf);
        self.buf = buf;
        result
    }

    fn whiteout(&mut self, parent_rel: &Path, name: &OsStr, shown: &str) -> Result<()> {
        let io_err = |context: &str, e: io::Error| Error::Unpack {
            entry: shown.to_string(),
            context: context.to_string(),
            source: e,
        };
        let bytes = name.as_bytes();
        if bytes == OPAQUE_WHITEOUT.as_bytes() {
            let dir = self
                .root
                .dir(parent_rel, true)
                .map_err(|e| io_err("resolve opaque directory", e))?;
            return match self.opts.whiteouts {
                WhiteoutMode::Overlay => {
                    let fd = fsops::reopen_dir(dir.as_fd()).map_err(|e| io_err("open", e))?;
                    fsops::fsetxattr(fd.as_fd(), "trusted.overlay.opaque", b"y")
                        .map_err(|e| io_err("set trusted.overlay.opaque", e))
                }
                WhiteoutMode::Apply => {
                    let children = fsops::list_dir(dir.as_fd()).map_err(|e| io_err("list", e))?;
                    for child in children {
                        if !self.created.contains(&parent_rel.join(&child)) {
                            self.remove(dir.as_fd(), &child)
                                .map_err(|e| io_err("remove under opaque directory", e))?;
                        }
                    }
                    Ok(())
                }
            };
        }
        if bytes.starts_with(b".wh..wh.") {
            // aufs bookkeeping (.wh..wh.plnk etc.): no meaning here.
            self.skipped.push(shown.to_string());
            return Ok(());
        }
        let victim = OsStr::from_bytes(&bytes[WHITEOUT_PREFIX.len()..]);
        if victim.is_empty() || victim == "." || victim == ".." {
            return Err(Error::unsafe_entry(shown, "whiteout names no file"));
        }
        match self.opts.whiteouts {
            WhiteoutMode::Apply => {
                // A missing parent means nothing to delete.
                let dir = match self.root.dir(parent_rel, false) {
                    Ok(d) => d,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(io_err("resolve whiteout directory", e)),
                };
                self.remove(dir.as_fd(), victim)
                    .map_err(|e| io_err("whiteout", e))
            }
            WhiteoutMode::Overlay => {
                let dir = self
                    .root
                    .dir(parent_rel, true)
                    .map_err(|e| io_err("resolve whiteout directory", e))?;
                self.remove(dir.as_fd(), victim)
                    .map_err(|e| io_err("replace", e))?;
                mknodat(
                    dir.as_fd(),
                    victim,
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    makedev(0, 0),
                )
                .map_err(|e| io_err("create overlay whiteout (needs root)", e.into()))
            }
        }
    }

    /// `made`: Some for an entry this call just created, holding its mode if that is exact
    /// (`exact_mode`); None for one that was there already.
    fn set_fd_meta(
        &self,
        fd: BorrowedFd<'_>,
        meta: &Meta,
        made: Option<Option<u32>>,
    ) -> io::Result<()> {
        let perm = meta.mode & 0o7777;
        if self.opts.ownership && !self.owned_already(made.is_some(), meta)? {
            fchown(fd, Some(uid(meta.uid)?), Some(gid(meta.gid)?))?;
        }
        // After chown, which clears setuid/setgid (an exact mode never has them).
        if made.flatten() != Some(perm) {
            fchmod(fd, Mode::from_bits_truncate(perm))?;
        }
        for (k, v) in &meta.xattrs {
            tolerate_xattr(fsops::fsetxattr(fd, k, v))?;
        }
        Ok(())
    }

    /// Whether a `new` entry is already owned as `meta` says: created by this process in a
    /// plain target (no setgid parent) as the owner the entry asks for.
    fn owned_already(&self, new: bool, meta: &Meta) -> io::Result<bool> {
        Ok(new && self.plain && (uid(meta.uid)?.as_raw(), gid(meta.gid)?.as_raw()) == self.owner)
    }

    fn set_link_meta(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        new: bool,
    ) -> io::Result<()> {
        if self.opts.ownership && !self.owned_already(new, meta)? {
            fchownat(
                parent,
                name,
                Some(uid(meta.uid)?),
                Some(gid(meta.gid)?),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
        }
        for (k, v) in &meta.xattrs {
            tolerate_xattr(fsops::lsetxattr_at(parent, name, k, v))?;
        }
        let t = TimeSpec::new(meta.mtime as i64, 0);
        utimensat(parent, name, &t, &t, UtimensatFlags::NoFollowSymlink)?;
        Ok(())
    }

    /// Device nodes and fifos: never opened (that could block or touch hardware).
    fn set_node_meta(&self, parent: BorrowedFd<'_>, name: &OsStr, meta: &Meta) -> io::Result<()> {
        self.set_link_meta(parent, name, meta, false)?;
        fchmodat(
            parent,
            name,
            Mode::from_bits_truncate(meta.mode & 0o7777),
            FchmodatFlags::FollowSymlink,
        )?;
        Ok(())
    }

    fn finish_dir_times(&mut self) -> Result<()> {
        for (rel, mtime) in self.dir_times.iter().rev() {
            let Some((parent_rel, name)) = split_opt(rel) else {
                continue;
            };
            // A later entry may have replaced or removed the directory; skip quietly then.
            let parent = match self.dirs.get(&parent_rel) {
                Some(fd) => fd,
                None => {
                    let Ok(fd) = self.root.dir(&parent_rel, false) else {
                        continue;
                    };
                    let fd = Rc::new(fd);
                    self.dirs.insert(parent_rel.clone(), fd.clone());
                    fd
                }
            };
            let t = TimeSpec::new(*mtime as i64, 0);
            let _ = utimensat(
                parent.as_fd(),
                name.as_os_str(),
                &t,
                &t,
                UtimensatFlags::NoFollowSymlink,
            );
        }
        Ok(())
    }
}

fn mkdir(parent: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    Ok(nix::sys::stat::mkdirat(
        parent,
        name,
        Mode::from_bits_truncate(mode),
    )?)
}

/// Copy `data` to `out`, filling `buf` before each write.
fn copy_through(data: &mut impl Read, out: &mut impl Write, buf: &mut [u8]) -> io::Result<()> {
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match data.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        out.write_all(&buf[..filled])?;
        if filled < buf.len() {
            return Ok(());
        }
    }
}

fn set_fd_mtime(fd: BorrowedFd<'_>, mtime: u64) -> io::Result<()> {
    let t = TimeSpec::new(mtime as i64, 0);
    Ok(nix::sys::stat::futimens(fd, &t, &t)?)
}

fn uid(v: u64) -> io::Result<Uid> {
    u32::try_from(v)
        .map(Uid::from_raw)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("uid {v} out of range")))
}

fn gid(v: u64) -> io::Result<Gid> {
    u32::try_from(v)
        .map(Gid::from_raw)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("gid {v} out of range")))
}

/// xattrs the file system or our privileges do not allow are skipped, like docker does.
fn tolerate_xattr(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e)
            if matches!(
                e.raw_os_error().map(Errno::from_raw),
                Some(Errno::ENOTSUP | Errno::EPERM | Errno::EACCES)
            ) =>
        {
            Ok(())
        }
        r => r,
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, want_xattrs: bool) -> io::Result<Meta> {
    let h = entry.header();
    let mut meta = Meta {
        mode: h.mode()?,
        uid: h.uid()?,
        gid: h.gid()?,
        mtime: h.mtime().unwrap_or(0),
        xattrs: Vec::new(),
    };
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let number = || {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.split('.').next()?.parse::<u64>().ok())
            };
            match key {
                "uid" => meta.uid = number().unwrap_or(meta.uid),
                "gid" => meta.gid = number().unwrap_or(meta.gid),
                "mtime" => meta.mtime = number().unwrap_or(meta.mtime),
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        if want_xattrs && !is_overlay_xattr(name) {
                            meta.xattrs.push((name.to_string(), value.to_vec()));
                        }
                    }
                }
            }
        }
    }
    Ok(meta)
}

/// overlayfs reads its own xattrs (opaque, redirect, metacopy, origin) from upper and lower
/// directories: a layer must never smuggle them in, or it could redirect lookups to other
/// layers' files. Opaque directories come only from `.wh..wh..opq` entries.
fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

/// Split a normalised relative path into (parent, file name).
fn split<'p>(rel: &'p Path, shown: &str) -> Result<(PathBuf, &'p OsStr)> {
    let name = rel
        .file_name()
        .ok_or_else(|| Error::unsafe_entry(shown, "entry has no file name"))?;
    let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((parent, name))
}

fn split_opt(rel: &Path) -> Option<(PathBuf, OsString)> {
    let name = rel.file_name()?.to_os_string();
    Some((
        rel.parent().map(Path::to_path_buf).unwrap_or_default(),
        name,
    ))
}
