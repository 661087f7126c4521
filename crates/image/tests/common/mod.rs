//! Test helpers: layer tars built with the tar crate's low-level header API, so hostile names
//! (`..`, absolute paths, links out of the root) reach the unpacker unaltered.
#![allow(dead_code)]

use std::ffi::CString;
use std::io::Write;
use std::path::Path;

use tar::{EntryType, Header};

pub const MTIME: u64 = 1_600_000_000;

pub struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Layer {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(name: &str, kind: EntryType, size: u64, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        let raw = &mut h.as_old_mut().name;
        assert!(name.len() < raw.len(), "use long_file for long names");
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn push(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.file_mode(name, data, 0o644)
    }

    pub fn file_mode(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let h = Self::header(name, EntryType::Regular, data.len() as u64, mode);
        self.push(h, data)
    }

    pub fn file_owned(&mut self, name: &str, data: &[u8], uid: u64, gid: u64) -> &mut Self {
        let mut h = Self::header(name, EntryType::Regular, data.len() as u64, 0o640);
        h.set_uid(uid);
        h.set_gid(gid);
        self.push(h, data)
    }

    /// A name longer than the 100-byte header field (GNU long-name record).
    pub fn long_file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        self.b.append_data(&mut h, name, data).unwrap();
        self
    }

    /// A file with PAX records (xattrs as SCHILY.xattr.*).
    pub fn file_with_pax(&mut self, name: &str, data: &[u8], pax: &[(&str, &[u8])]) -> &mut Self {
        self.b.append_pax_extensions(pax.iter().copied()).unwrap();
        self.file(name, data)
    }

    /// PAX records for the next entry (e.g. "path", "linkpath" overriding the header's names).
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.b
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.dir_mode(name, 0o755)
    }

    pub fn dir_mode(&mut self, name: &str, mode: u32) -> &mut Self {
        let h = Self::header(name, EntryType::Directory, 0, mode);
        self.push(h, &[])
    }

    pub fn dir_owned(&mut self, name: &str, mode: u32, uid: u64, gid: u64) -> &mut Self {
        let mut h = Self::header(name, EntryType::Directory, 0, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        self.push(h, &[])
    }

    fn link(&mut self, name: &str, target: &str, kind: EntryType) -> &mut Self {
        let mut h = Self::header(name, kind, 0, 0o777);
        let raw = &mut h.as_old_mut().linkname;
        raw[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, &[])
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(name, target, EntryType::Symlink)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(name, target, EntryType::Link)
    }

    pub fn chardev(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(name, EntryType::Char, 0, 0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, &[])
    }

    pub fn fifo(&mut self, name: &str) -> &mut Self {
        let h = Self::header(name, EntryType::Fifo, 0, 0o600);
        self.push(h, &[])
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// An xattr of `path` (not following a final symlink), if set.
pub fn lgetxattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let k = CString::new(key).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid strings and buffer.
    let n = unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

/// Every path under `dir`, relative, sorted (symlinks not followed).
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Store `layers` (uncompressed tars; gzipped when `gzip_layers`) as an image with a linux/amd64
/// config; returns the manifest digest.
pub fn store_image(
    store: &berth_image::ContentStore,
    layers: &[Vec<u8>],
    gzip_layers: bool,
) -> berth_image::Digest {
    use oci_spec::image::{
        Arch, ConfigBuilder, Descriptor, ImageConfigurationBuilder, MediaType, Os, RootFsBuilder,
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        diff_ids.push(berth_image::Digest::sha256_of(tar).to_string());
        let (blob, mt) = if gzip_layers {
            (gzip(tar), MediaType::ImageLayerGzip)
        } else {
            (tar.clone(), MediaType::ImageLayer)
        };
        let info = store.put_bytes(&blob).unwrap();
        descs.push(Descriptor::new(mt, info.size, info.digest.to_oci()));
    }
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .cmd(vec!["/bin/sh".to_string()])
                .build()
                .unwrap(),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let m = berth_image::media::store_image(store, &config, descs).unwrap();
    berth_image::Digest::from_oci(m.digest()).unwrap()
}
