//! Snapshots: layers unpacked by chain id, stacked with a real overlay mount, and the
//! plain-copy fallback.

mod common;

use std::fs;
use std::path::Path;

use berth_image::extract::unpack_image;
use berth_image::media::{resolve_image, PlatformSpec};
use berth_image::snapshot::{chain_ids, unmount, Backend, Mount, Snapshotter};
use berth_image::unpack::UnpackOptions;
use berth_image::{ContentStore, Error};
use common::{store_image, tree, Layer};

fn two_layers() -> Vec<Vec<u8>> {
    let l1 = Layer::new()
        .dir("a")
        .file("a/file1", b"one")
        .file("a/file2", b"two")
        .dir("d")
        .file("d/x", b"x")
        .dir("d/sub")
        .file("d/sub/y", b"y")
        .finish();
    // Layer 2 deletes a/file1 and makes d opaque (hiding x and sub), adding z.
    let l2 = Layer::new()
        .file("a/.wh.file1", b"")
        .dir("d")
        .file("d/.wh..wh..opq", b"")
        .file("d/z", b"z")
        .finish();
    vec![l1, l2]
}

const EXPECTED: [&str; 4] = ["a", "a/file2", "d", "d/z"];

struct Setup {
    dir: tempfile::TempDir,
    store: ContentStore,
    snaps: Snapshotter,
    top: berth_image::Digest,
}

fn setup(backend: Option<Backend>, gzip: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    let snaps = Snapshotter::open(dir.path().join("snapshots"), backend).unwrap();
    let manifest = store_image(&store, &two_layers(), gzip);
    let image = resolve_image(&store, &manifest, &PlatformSpec::host()).unwrap();
    let top = unpack_image(&store, &snaps, &image, &UnpackOptions::default())
        .unwrap()
        .unwrap();
    let ids = chain_ids(&image.diff_ids().unwrap());
    assert_eq!(top, ids[1]);
    assert!(snaps.exists(&ids[0]) && snaps.exists(&ids[1]));
    Setup {
        dir,
        store,
        snaps,
        top,
    }
}

/// `setup` with the overlay backend, or None (a skip; a failure under CI=true) without root
/// or a usable overlayfs.
fn overlay_setup(gzip: bool) -> Option<Setup> {
    if !berth_testsupport::require_root!() {
        return None;
    }
    let s = setup(None, gzip);
    berth_testsupport::require(
        s.snaps.backend() == Backend::Overlay,
        "overlayfs usable under the test directory",
    )
    .then_some(s)
}

#[test]
fn overlay_mount_shows_whiteouts_and_opaque_dirs() {
    let Some(s) = overlay_setup(true) else {
        return;
    };
    let mount = s.snaps.prepare("ctr-overlay", Some(&s.top)).unwrap();
    let Mount::Overlay {
        lowerdirs,
        upperdir,
        ..
    } = &mount
    else {
        panic!("expected an overlay mount, got {mount:?}");
    };
    assert_eq!(lowerdirs.len(), 2);
    assert_eq!(lowerdirs[0], s.snaps.committed_fs(&s.top), "topmost first");
    let merged = s.dir.path().join("merged");
    fs::create_dir(&merged).unwrap();
    mount.mount(&merged).unwrap();
    let seen = tree(&merged);
    let wrote = fs::write(merged.join("a/new"), b"n");
    unmount(&merged).unwrap();
    assert_eq!(seen, EXPECTED);
    wrote.unwrap();
    assert_eq!(
        fs::read(upperdir.as_ref().unwrap().join("a/new")).unwrap(),
        b"n",
        "writes land in the active snapshot"
    );

    // A read-only view of the image itself.
    let view = s.snaps.view(&s.top).unwrap();
    view.mount(&merged).unwrap();
    let seen = tree(&merged);
    let write = fs::write(merged.join("ro"), b"x");
    unmount(&merged).unwrap();
    assert_eq!(seen, EXPECTED);
    assert!(write.is_err(), "view is read-only");

    s.snaps.remove_active("ctr-overlay").unwrap();
}

#[test]
fn copy_backend_gives_the_same_tree() {
    let s = setup(Some(Backend::Copy), false);
    let mount = s.snaps.prepare("ctr-copy", Some(&s.top)).unwrap();
    let Mount::Bind { source } = &mount else {
        panic!("expected a bind mount, got {mount:?}");
    };
    assert_eq!(tree(source), EXPECTED);
    // The copy is private to the active snapshot.
    fs::write(source.join("a/file2"), b"changed").unwrap();
    assert_eq!(
        fs::read(s.snaps.committed_fs(&s.top).join("a/file2")).unwrap(),
        b"two"
    );
}

#[test]
fn remove_is_refused_while_children_exist() {
    let s = setup(Some(Backend::Copy), false);
    let infos = s.snaps.list().unwrap();
    assert_eq!(infos.len(), 2);
    let base = infos
        .iter()
        .find(|i| i.parent.is_none())
        .map(|i| berth_image::Digest::parse(&i.name).unwrap())
        .unwrap();
    let err = s.snaps.remove(&base).unwrap_err();
    assert!(matches!(err, Error::Snapshot { .. }), "{err}");
    s.snaps.remove(&s.top).unwrap();
    s.snaps.remove(&base).unwrap();
    assert!(s.snaps.list().unwrap().is_empty());
    assert!(!s.snaps.exists(&s.top));
    let _ = &s.store;
}

#[test]
fn layer_with_wrong_diff_id_leaves_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    let snaps = Snapshotter::open(dir.path().join("snapshots"), Some(Backend::Copy)).unwrap();
    let manifest = store_image(&store, &two_layers()[..1], false);
    let mut image = resolve_image(&store, &manifest, &PlatformSpec::host()).unwrap();
    image
        .config
        .rootfs_mut()
        .set_diff_ids(vec![berth_image::Digest::sha256_of(b"lie").to_string()]);
    let err = unpack_image(&store, &snaps, &image, &UnpackOptions::default()).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(snaps.list().unwrap().is_empty());
    assert_eq!(
        tree(&dir.path().join("snapshots/active")),
        Vec::<String>::new()
    );
    assert!(!Path::new(&dir.path().join("snapshots/committed"))
        .read_dir()
        .unwrap()
        .any(|_| true));
}

#[test]
fn gc_keeps_what_names_reach_and_removes_the_rest() {
    use berth_image::gc::{collect, reachable};
    use std::collections::BTreeSet;
    let s = setup(Some(Backend::Copy), true);
    let kept_manifest = {
        // setup() stored exactly one image: find its manifest among the blobs.
        let blobs = s.store.list().unwrap();
        blobs
            .iter()
            .map(|b| b.digest.clone())
            .find(|d| resolve_image(&s.store, d, &PlatformSpec::host()).is_ok())
            .unwrap()
    };
    // A second image, unnamed: its blobs and snapshots are garbage.
    let other = store_image(&s.store, &[Layer::new().file("junk", b"j").finish()], false);
    let image = resolve_image(&s.store, &other, &PlatformSpec::host()).unwrap();
    let other_top = unpack_image(&s.store, &s.snaps, &image, &UnpackOptions::default())
        .unwrap()
        .unwrap();
    s.snaps.prepare("live-ctr", Some(&s.top)).unwrap();
    s.snaps.prepare("dead-ctr", Some(&other_top)).unwrap();

    let live = reachable(&s.store, [&kept_manifest]).unwrap();
    assert_eq!(live.blobs.len(), 4, "manifest, config, two layers");
    let report = collect(
        &s.store,
        Some(&s.snaps),
        [&kept_manifest],
        &BTreeSet::from(["live-ctr".to_string()]),
    )
    .unwrap();
    assert_eq!(report.removed_blobs.len(), 3, "{report:?}");
    assert!(report.freed_bytes > 0);
    assert!(!s.store.has(&other));
    assert_eq!(s.store.list().unwrap().len(), 4);
    assert!(!s.snaps.exists(&other_top));
    assert!(s.snaps.exists(&s.top));
    let names: Vec<String> = s
        .snaps
        .list()
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert!(names.contains(&"live-ctr".to_string()));
    assert!(!names.contains(&"dead-ctr".to_string()));
    assert_eq!(names.len(), 3, "{names:?}");
}

/// A scratch (volatile) layer mounts again after an unmount: overlayfs leaves its "volatile"
/// marker (a directory with a `dirty` file) in the work directory and refuses the work
/// directory until it is gone (a start that failed and is tried again).
#[test]
fn scratch_layer_mounts_again_after_unmount() {
    let Some(s) = overlay_setup(false) else {
        return;
    };
    let mount = s.snaps.prepare("ctr-scratch", Some(&s.top)).unwrap();
    let merged = s.dir.path().join("merged");
    fs::create_dir(&merged).unwrap();
    for round in 0..3 {
        mount
            .mount_scratch(&merged)
            .unwrap_or_else(|e| panic!("mount {round}: {e}"));
        let seen = tree(&merged);
        let wrote = fs::write(merged.join(format!("w{round}")), b"x");
        unmount(&merged).unwrap();
        let image: Vec<_> = seen.into_iter().filter(|e| !e.starts_with('w')).collect();
        assert_eq!(image, EXPECTED);
        wrote.unwrap();
    }
    s.snaps.remove_active("ctr-scratch").unwrap();
}

#[test]
fn long_layer_chains_mount_past_the_option_page_limit() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    let snaps = Snapshotter::open(dir.path().join("snapshots"), None).unwrap();
    if !berth_testsupport::require(snaps.backend() == Backend::Overlay, "overlayfs usable") {
        return;
    }
    let layers: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            Layer::new()
                .file("n", format!("{i}").as_bytes())
                .file(&format!("layer-{i}"), b"")
                .finish()
        })
        .collect();
    let manifest = store_image(&store, &layers, false);
    let image = resolve_image(&store, &manifest, &PlatformSpec::host()).unwrap();
    let top = unpack_image(&store, &snaps, &image, &UnpackOptions::default())
        .unwrap()
        .unwrap();
    let mount = snaps.prepare("long-chain", Some(&top)).unwrap();
    assert!(
        mount.overlay_options().unwrap().len() > 4096,
        "test needs a long chain"
    );
    let merged = dir.path().join("merged");
    fs::create_dir(&merged).unwrap();
    mount.mount(&merged).unwrap();
    let n = fs::read_to_string(merged.join("n"));
    let count = fs::read_dir(&merged).unwrap().count();
    unmount(&merged).unwrap();
    assert_eq!(n.unwrap(), "59", "topmost layer wins");
    assert_eq!(count, 61);
}

#[test]
fn active_snapshots_are_marked_to_spread_over_block_groups() {
    let dir = tempfile::tempdir().unwrap();
    // Only file systems with the flag (ext2/3/4) can hold it.
    if !berth_testsupport::require(
        berth_testsupport::top_dir_flag_supported(dir.path()),
        "a file system with ext4's top-directory flag (chattr +T) under the test directory",
    ) {
        return;
    }
    let root = dir.path().join("snaps");
    let snaps = Snapshotter::open(&root, Some(Backend::Copy)).unwrap();
    assert!(berth_image::snapshot::is_top_directory(&root.join("active")).unwrap());
    assert!(!berth_image::snapshot::is_top_directory(&root.join("committed")).unwrap());
    // Reopening keeps it (and does not fail on a flag already set).
    drop(snaps);
    Snapshotter::open(&root, Some(Backend::Copy)).unwrap();
    assert!(berth_image::snapshot::is_top_directory(&root.join("active")).unwrap());
}

#[test]
fn a_spare_directory_becomes_the_next_active_snapshot() {
    let Some(s) = overlay_setup(false) else {
        return;
    };
    let active = s.dir.path().join("snapshots/active");
    let names = || -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&active)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    s.snaps.add_spare().unwrap();
    assert_eq!(s.snaps.spares(), 1);
    let spare = names();
    assert_eq!(spare.len(), 1);
    assert!(spare[0].starts_with(".spare-"), "{spare:?}");
    // Not a snapshot until prepared.
    assert!(s
        .snaps
        .list()
        .unwrap()
        .iter()
        .all(|i| !i.name.starts_with(".spare")));

    let mount = s.snaps.prepare_scratch("ctr-spare", Some(&s.top)).unwrap();
    assert_eq!(s.snaps.spares(), 0);
    assert_eq!(
        names(),
        vec!["ctr-spare".to_string()],
        "the spare was renamed"
    );
    let merged = s.dir.path().join("merged");
    fs::create_dir(&merged).unwrap();
    mount.mount(&merged).unwrap();
    let seen = tree(&merged);
    let wrote = fs::write(merged.join("a/new"), b"n");
    unmount(&merged).unwrap();
    assert_eq!(seen, EXPECTED);
    wrote.unwrap();
    let info = s
        .snaps
        .list()
        .unwrap()
        .into_iter()
        .find(|i| i.name == "ctr-spare")
        .expect("listed as an active snapshot");
    assert_eq!(info.parent.as_ref(), Some(&s.top));

    // A key in use is refused, and the spare is kept for the next prepare.
    s.snaps.add_spare().unwrap();
    assert!(s.snaps.prepare_scratch("ctr-spare", Some(&s.top)).is_err());
    assert_eq!(s.snaps.spares(), 1);

    // Spares do not outlive the snapshotter: the next open removes them.
    let reopened = Snapshotter::open(s.dir.path().join("snapshots"), None).unwrap();
    assert_eq!(reopened.spares(), 0);
    assert_eq!(names(), vec!["ctr-spare".to_string()]);
    s.snaps.remove_active("ctr-spare").unwrap();
}
