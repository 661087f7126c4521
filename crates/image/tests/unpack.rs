//! Layer unpack: normal content, compression, whiteouts, and hostile tars.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::unpack::{apply_layer, DevicePolicy, UnpackOptions, WhiteoutMode};
use berth_image::{Digest, Error};
use common::{gzip, lgetxattr, tree, zstd, Layer, MTIME};

/// A temp dir with `root/` (the unpack target) and a sibling `outside/` that must stay empty.
struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        Sandbox {
            _dir: dir,
            root,
            outside,
        }
    }

    fn apply(&self, tar: &[u8]) -> berth_image::Result<berth_image::unpack::UnpackStats> {
        apply_layer(tar, &self.root, &UnpackOptions::default())
    }

    fn assert_outside_untouched(&self) {
        assert!(
            tree(&self.outside).is_empty(),
            "written outside the root: {:?}",
            tree(&self.outside)
        );
    }
}

fn host_passwd() -> Vec<u8> {
    fs::read("/etc/passwd").unwrap()
}

#[test]
fn unpacks_files_dirs_links_modes_and_times() {
    let sb = Sandbox::new();
    let long = format!("deep/{}/file.txt", "x".repeat(150));
    let tar = Layer::new()
        .dir("bin")
        .file_mode("bin/tool", b"#!/bin/sh\n", 0o4755)
        .dir_mode("tmp", 0o1777)
        .symlink("bin/sh", "tool")
        .hardlink("bin/tool2", "bin/tool")
        .fifo("run.fifo")
        .file("etc/auto/parent.conf", b"made parents")
        .long_file(&long, b"long name")
        .file_with_pax("xattr.txt", b"x", &[("SCHILY.xattr.user.berth", b"yes")])
        .finish();
    let stats = sb.apply(&tar).unwrap();
    assert_eq!(stats.diff_id, Digest::sha256_of(&tar));
    assert_eq!(stats.blob.digest, Digest::sha256_of(&tar));
    assert_eq!(stats.uncompressed_size, tar.len() as u64);

    let r = &sb.root;
    let tool = fs::metadata(r.join("bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(tool.mtime(), MTIME as i64);
    assert_eq!(tool.nlink(), 2);
    assert_eq!(fs::metadata(r.join("bin/tool2")).unwrap().ino(), tool.ino());
    assert_eq!(
        fs::metadata(r.join("tmp")).unwrap().permissions().mode() & 0o7777,
        0o1777
    );
    assert_eq!(fs::read_link(r.join("bin/sh")).unwrap(), Path::new("tool"));
    assert_eq!(
        fs::symlink_metadata(r.join("bin/sh")).unwrap().mtime(),
        MTIME as i64
    );
    assert!(fs::symlink_metadata(r.join("run.fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::read(r.join("etc/auto/parent.conf")).unwrap(),
        b"made parents"
    );
    assert_eq!(fs::read(r.join(&long)).unwrap(), b"long name");
    assert_eq!(
        lgetxattr(&r.join("xattr.txt"), "user.berth").as_deref(),
        Some(&b"yes"[..])
    );
    // Directory mtimes are set after their contents.
    assert_eq!(fs::metadata(r.join("bin")).unwrap().mtime(), MTIME as i64);
    sb.assert_outside_untouched();
}

#[test]
fn gzip_and_zstd_layers_have_the_same_diff_id() {
    let tar = Layer::new().dir("a").file("a/b", b"content").finish();
    let want = Digest::sha256_of(&tar);
    for (blob, compression) in [
        (gzip(&tar), berth_image::media::Compression::Gzip),
        (zstd(&tar), berth_image::media::Compression::Zstd),
    ] {
        let sb = Sandbox::new();
        let stats = sb.apply(&blob).unwrap();
        assert_eq!(stats.compression, compression);
        assert_eq!(stats.diff_id, want);
        assert_eq!(stats.blob.digest, Digest::sha256_of(&blob));
        assert_eq!(stats.blob.size, blob.len() as u64);
        assert_eq!(fs::read(sb.root.join("a/b")).unwrap(), b"content");
    }
}

#[test]
fn ownership_is_applied_when_root() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new()
        .file_owned("owned", b"x", 1000, 1001)
        .symlink("link", "owned")
        .finish();
    sb.apply(&tar).unwrap();
    let m = fs::metadata(sb.root.join("owned")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    assert_eq!(m.permissions().mode() & 0o7777, 0o640);
}

#[test]
fn device_nodes_follow_the_policy() {
    let tar = Layer::new()
        .chardev("dev/null", 1, 3)
        .file("ok", b"1")
        .finish();
    let sb = Sandbox::new();
    let opts = UnpackOptions {
        devices: DevicePolicy::Skip,
        ..Default::default()
    };
    let stats = apply_layer(&tar[..], &sb.root, &opts).unwrap();
    assert_eq!(stats.skipped, vec!["dev/null".to_string()]);
    assert!(!sb.root.join("dev/null").exists());
    assert!(sb.root.join("ok").exists());

    let sb = Sandbox::new();
    let opts = UnpackOptions {
        devices: DevicePolicy::Deny,
        ..Default::default()
    };
    let err = apply_layer(&tar[..], &sb.root, &opts).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");

    if !berth_testsupport::require_root!() {
        return;
    }
    let sb = Sandbox::new();
    let opts = UnpackOptions {
        devices: DevicePolicy::Create,
        ..Default::default()
    };
    apply_layer(&tar[..], &sb.root, &opts).unwrap();
    let m = fs::symlink_metadata(sb.root.join("dev/null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
}

#[test]
fn whiteouts_apply_to_a_plain_copy() {
    let sb = Sandbox::new();
    let l1 = Layer::new()
        .dir("a")
        .file("a/gone", b"1")
        .file("a/kept", b"2")
        .dir("d")
        .file("d/old1", b"3")
        .dir("d/oldsub")
        .file("d/oldsub/x", b"4")
        .finish();
    let l2 = Layer::new()
        .file("a/.wh.gone", b"")
        .file("d/new", b"5") // same layer as the opaque marker: survives it
        .file("d/.wh..wh..opq", b"")
        .file(".wh.never-existed", b"")
        .finish();
    sb.apply(&l1).unwrap();
    sb.apply(&l2).unwrap();
    assert_eq!(
        tree(&sb.root),
        vec!["a", "a/kept", "d", "d/new"],
        "whiteout and opaque dir applied"
    );
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let sb = Sandbox::new();
    let l2 = Layer::new()
        .file("a/.wh.gone", b"")
        .dir("d")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"5")
        .finish();
    let opts = UnpackOptions {
        whiteouts: WhiteoutMode::Overlay,
        ..Default::default()
    };
    apply_layer(&l2[..], &sb.root, &opts).unwrap();
    let wh = fs::symlink_metadata(sb.root.join("a/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert_eq!(
        lgetxattr(&sb.root.join("d"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(sb.root.join("d/new").exists());
    assert!(!sb.root.join("d/.wh..wh..opq").exists());
}

// ---- hostile tars: nothing may be written outside the root ----

#[test]
fn hostile_dotdot_name_is_refused() {
    let sb = Sandbox::new();
    for name in [
        "../outside/evil",
        "a/../../outside/evil",
        "../../../../tmp/berth-evil",
    ] {
        let tar = Layer::new().file(name, b"pwned").finish();
        let err = sb.apply(&tar).unwrap_err();
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{name}: {err}");
        assert!(err.to_string().contains(".."), "{err}");
    }
    sb.assert_outside_untouched();
    assert!(!Path::new("/tmp/berth-evil").exists());
}

#[test]
fn hostile_absolute_name_is_made_relative() {
    let sb = Sandbox::new();
    let before = host_passwd();
    let tar = Layer::new().file("/etc/passwd", b"pwned").finish();
    sb.apply(&tar).unwrap();
    assert_eq!(fs::read(sb.root.join("etc/passwd")).unwrap(), b"pwned");
    assert_eq!(host_passwd(), before);
}

#[test]
fn hostile_symlink_to_root_is_confined() {
    let sb = Sandbox::new();
    let before = host_passwd();
    let tar = Layer::new()
        .symlink("a", "/")
        .file("a/etc/passwd", b"pwned")
        .symlink("up", "../../..")
        .file("up/outside/evil", b"pwned")
        .symlink("rel", "../outside")
        .file("rel/evil2", b"pwned")
        .finish();
    sb.apply(&tar).unwrap();
    assert_eq!(host_passwd(), before);
    sb.assert_outside_untouched();
    // Resolved as if the root were `/`.
    assert_eq!(fs::read(sb.root.join("etc/passwd")).unwrap(), b"pwned");
    assert_eq!(fs::read(sb.root.join("outside/evil")).unwrap(), b"pwned");
    assert_eq!(fs::read(sb.root.join("outside/evil2")).unwrap(), b"pwned");
    assert_eq!(fs::read_link(sb.root.join("a")).unwrap(), Path::new("/"));
}

#[test]
fn hostile_final_symlink_is_replaced_not_followed() {
    let sb = Sandbox::new();
    let target = sb.outside.join("target");
    let tar = Layer::new()
        .symlink("s", target.to_str().unwrap())
        .file("s", b"pwned")
        .symlink("d", sb.outside.to_str().unwrap())
        .dir("d")
        .file("d/inner", b"in")
        .finish();
    sb.apply(&tar).unwrap();
    sb.assert_outside_untouched();
    let s = fs::symlink_metadata(sb.root.join("s")).unwrap();
    assert!(s.is_file(), "symlink replaced by the file");
    assert!(fs::symlink_metadata(sb.root.join("d")).unwrap().is_dir());
    assert_eq!(fs::read(sb.root.join("d/inner")).unwrap(), b"in");
}

#[test]
fn hostile_hardlinks_are_refused() {
    let sb = Sandbox::new();
    let secret = sb.outside.join("secret");
    fs::write(&secret, b"host secret").unwrap();
    for (target, expect_unsafe) in [
        ("/etc/passwd", false),       // confined: etc/passwd is not in the layer
        ("../outside/secret", true),  // climbs out
        ("up/outside/secret", false), // through a symlink: confined, not there
        ("a/etc/passwd", false),
    ] {
        let tar = Layer::new()
            .symlink("up", "../..")
            .symlink("a", "/")
            .hardlink("h", target)
            .finish();
        let err = sb.apply(&tar).unwrap_err();
        if expect_unsafe {
            assert!(matches!(err, Error::UnsafeEntry { .. }), "{target}: {err}");
        } else {
            assert!(
                err.to_string().contains("hard link target"),
                "{target}: {err}"
            );
        }
        assert!(!sb.root.join("h").exists(), "{target}");
    }
    assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
    assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), 1);
    assert_eq!(tree(&sb.outside), vec!["secret"]);
}

#[test]
fn hardlink_to_a_symlink_links_the_symlink_itself() {
    let sb = Sandbox::new();
    let tar = Layer::new()
        .symlink("sl", "/etc/passwd")
        .hardlink("hl", "sl")
        .finish();
    sb.apply(&tar).unwrap();
    let m = fs::symlink_metadata(sb.root.join("hl")).unwrap();
    assert!(m.file_type().is_symlink());
    assert_eq!(m.nlink(), 2);
}

#[test]
fn hostile_whiteouts_through_symlinks_are_confined() {
    let sb = Sandbox::new();
    fs::write(sb.outside.join("keep"), b"k").unwrap();
    let tar = Layer::new()
        .file("etc/passwd", b"layer passwd")
        .symlink("a", "/")
        .file("a/etc/.wh.passwd", b"")
        .symlink("o", "../outside")
        .file("o/.wh.keep", b"")
        .file(".wh..", b"")
        .finish();
    let err = sb.apply(&tar).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    // The whiteouts before the bad one acted inside the root only.
    assert!(!sb.root.join("etc/passwd").exists());
    assert!(Path::new("/etc/passwd").exists());
    assert_eq!(tree(&sb.outside), vec!["keep"]);
}

#[test]
fn overlay_xattrs_in_a_layer_are_dropped() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let sb = Sandbox::new();
    let tar = Layer::new()
        .file_with_pax(
            "f",
            b"x",
            &[
                ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
                ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
                ("SCHILY.xattr.user.keep", b"1"),
            ],
        )
        .finish();
    let opts = UnpackOptions {
        whiteouts: WhiteoutMode::Overlay,
        ..Default::default()
    };
    apply_layer(&tar[..], &sb.root, &opts).unwrap();
    let f = sb.root.join("f");
    assert_eq!(lgetxattr(&f, "trusted.overlay.redirect"), None);
    assert_eq!(lgetxattr(&f, "trusted.overlay.opaque"), None);
    assert_eq!(lgetxattr(&f, "user.keep").as_deref(), Some(&b"1"[..]));
}

#[test]
fn hostile_pax_names_are_checked_like_header_names() {
    let sb = Sandbox::new();
    fs::write(sb.outside.join("secret"), b"s").unwrap();
    let deep = format!("a/{}../../outside/evil", "b/../".repeat(40));
    for tar in [
        Layer::new()
            .pax(&[("path", b"../outside/evil")])
            .file("benign", b"pwned")
            .finish(),
        Layer::new()
            .pax(&[("path", deep.as_bytes())])
            .file("benign", b"pwned")
            .finish(),
        Layer::new()
            .pax(&[("linkpath", b"../outside/secret")])
            .hardlink("h", "benign-target")
            .finish(),
    ] {
        let err = sb.apply(&tar).unwrap_err();
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    }
    assert_eq!(tree(&sb.outside), vec!["secret"]);
    assert_eq!(fs::metadata(sb.outside.join("secret")).unwrap().nlink(), 1);
    assert!(!sb.root.join("benign").exists() && !sb.root.join("h").exists());
}

#[test]
fn entries_after_a_replaced_or_whited_out_directory_go_where_the_path_now_leads() {
    // The unpacker keeps recent directories open: once a directory is replaced (by a symlink)
    // or removed (by a whiteout), later entries under its name must follow the new path, never
    // the old directory's handle. An empty target (a new snapshot) and one with content (kept
    // directories are not cached there) both.
    for prefilled in [false, true] {
        let sb = Sandbox::new();
        if prefilled {
            fs::write(sb.root.join("lower"), b"from a lower layer").unwrap();
        }
        check_replaced_directories(&sb);
    }
}

fn check_replaced_directories(sb: &Sandbox) {
    let tar = Layer::new()
        .dir("a")
        .file("a/x", b"1")
        .dir("b")
        .symlink("a", "/b")
        .file("a/y", b"2")
        .dir("d")
        .file("d/f", b"3")
        .symlink("d", "/")
        .file("d/evil", b"pwned")
        .dir("w")
        .file("w/f", b"4")
        .file(".wh.w", b"")
        .file("w/g", b"5")
        .finish();
    sb.apply(&tar).unwrap();
    sb.assert_outside_untouched();
    let r = &sb.root;
    assert_eq!(fs::read_link(r.join("a")).unwrap(), Path::new("/b"));
    assert_eq!(fs::read(r.join("b/y")).unwrap(), b"2");
    assert!(!r.join("b/x").exists());
    // `d` now leads to the root itself.
    assert_eq!(fs::read(r.join("evil")).unwrap(), b"pwned");
    assert!(!r.join("f").exists());
    assert_eq!(tree(&r.join("w")), vec!["g".to_string()]);
    assert_eq!(fs::read(r.join("w/g")).unwrap(), b"5");
}

#[test]
fn modes_are_exact_whatever_the_umask() {
    let sb = Sandbox::new();
    let tar = Layer::new()
        .dir_mode("open", 0o777)
        .dir_mode("private", 0o700)
        .file_mode("open/rw", b"a", 0o666)
        .file_mode("open/ro", b"b", 0o444)
        .file_mode("open/none", b"c", 0o000)
        .file_mode("private/exe", b"d", 0o755)
        .dir_mode("private/sticky", 0o1777)
        .finish();
    sb.apply(&tar).unwrap();
    let mode = |p: &str| fs::metadata(sb.root.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("open"), 0o777);
    assert_eq!(mode("private"), 0o700);
    assert_eq!(mode("open/rw"), 0o666);
    assert_eq!(mode("open/ro"), 0o444);
    assert_eq!(mode("open/none"), 0o000);
    assert_eq!(mode("private/exe"), 0o755);
    assert_eq!(mode("private/sticky"), 0o1777);
    assert_eq!(fs::read(sb.root.join("open/none")).unwrap(), b"c");
}

#[test]
fn entries_in_a_setgid_directory_get_the_group_the_layer_says() {
    if !berth_testsupport::require_root!() {
        return;
    }
    // The kernel gives children of a setgid directory its group (and subdirectories its setgid
    // bit): the unpacker must not take a new entry's owner for granted there.
    let sb = Sandbox::new();
    let tar = Layer::new()
        .dir_owned("g", 0o2775, 0, 1234)
        .file("g/f", b"x")
        .dir("g/sub")
        .symlink("g/link", "f")
        .finish();
    sb.apply(&tar).unwrap();
    let r = &sb.root;
    let g = fs::metadata(r.join("g")).unwrap();
    assert_eq!((g.gid(), g.permissions().mode() & 0o7777), (1234, 0o2775));
    let f = fs::metadata(r.join("g/f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (0, 0));
    let sub = fs::metadata(r.join("g/sub")).unwrap();
    assert_eq!((sub.gid(), sub.permissions().mode() & 0o7777), (0, 0o755));
    assert_eq!(fs::symlink_metadata(r.join("g/link")).unwrap().gid(), 0);
}

#[test]
fn large_files_are_copied_whole() {
    let sb = Sandbox::new();
    // Around and across the unpacker's 1 MiB copy buffer.
    let sizes = [(1 << 20) - 1, 1 << 20, (1 << 20) + 1, (5 << 20) / 2];
    let mut layer = Layer::new();
    let data: Vec<Vec<u8>> = sizes
        .iter()
        .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
        .collect();
    for (i, d) in data.iter().enumerate() {
        layer.file(&format!("f{i}"), d);
    }
    let tar = layer.finish();
    sb.apply(&tar).unwrap();
    for (i, d) in data.iter().enumerate() {
        assert_eq!(&fs::read(sb.root.join(format!("f{i}"))).unwrap(), d, "f{i}");
    }
}
