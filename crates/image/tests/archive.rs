//! docker save / OCI layout archives: round trips, classic docker archives, skopeo output, and
//! broken or hostile archives.

mod common;

use std::fs::{self, File};
use std::io::{BufReader, BufWriter};
use std::path::Path;

use berth_image::archive::{load, save, ArchiveFormat, LoadedImage, SaveImage};
use berth_image::extract::unpack_image;
use berth_image::media::{resolve_image, PlatformSpec};
use berth_image::snapshot::{Backend, Snapshotter};
use berth_image::unpack::UnpackOptions;
use berth_image::{ContentStore, Digest, Error};
use common::{store_image, Layer};

/// Pack `dir` into an uncompressed layer tar at `out` (symlinks kept as symlinks).
fn pack_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(BufWriter::new(File::create(out).unwrap()));
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Deterministic);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap();
}

/// A busybox image in `store`; returns (manifest digest, layer diff_id).
fn busybox_image(tmp: &Path, store: &ContentStore) -> (Digest, Digest) {
    use oci_spec::image::{
        Arch, ConfigBuilder, Descriptor, ImageConfigurationBuilder, MediaType, Os, RootFsBuilder,
    };
    let rootfs = tmp.join("rootfs");
    berth_testsupport::busybox_rootfs(&rootfs).unwrap();
    let layer_path = tmp.join("layer.tar");
    pack_dir(&rootfs, &layer_path);
    let info = store
        .ingest(BufReader::new(File::open(&layer_path).unwrap()), None, None)
        .unwrap();
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .cmd(vec!["sh".to_string()])
                .env(vec!["PATH=/bin:/usr/bin".to_string()])
                .build()
                .unwrap(),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![info.digest.to_string()])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let m = berth_image::media::store_image(
        store,
        &config,
        vec![Descriptor::new(
            MediaType::ImageLayer,
            info.size,
            info.digest.to_oci(),
        )],
    )
    .unwrap();
    (Digest::from_oci(m.digest()).unwrap(), info.digest)
}

fn fresh_store(tmp: &Path, name: &str) -> ContentStore {
    ContentStore::open(tmp.join(name)).unwrap()
}

/// The loaded busybox unpacks to a tree with a working /bin/busybox.
fn assert_unpacks(store: &ContentStore, tmp: &Path, image: &LoadedImage) {
    let snaps = Snapshotter::open(
        tmp.join(format!("snaps-{}", &image.manifest_digest.hex()[..8])),
        Some(Backend::Copy),
    )
    .unwrap();
    let resolved = resolve_image(store, &image.manifest_digest, &PlatformSpec::host()).unwrap();
    let top = unpack_image(store, &snaps, &resolved, &UnpackOptions::default())
        .unwrap()
        .unwrap();
    let fs_dir = snaps.committed_fs(&top);
    assert!(fs_dir.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(fs_dir.join("bin/sh")).unwrap(),
        Path::new("../bin/busybox")
    );
    let out = std::process::Command::new(fs_dir.join("bin/busybox"))
        .arg("true")
        .status()
        .unwrap();
    assert!(out.success());
}

#[test]
fn busybox_round_trips_through_both_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fresh_store(tmp.path(), "src");
    let (manifest, layer) = busybox_image(tmp.path(), &store);
    let config = resolve_image(&store, &manifest, &PlatformSpec::host())
        .unwrap()
        .config_digest;
    let tags = vec!["busybox:latest".to_string(), "localhost/bb:v1".to_string()];
    for format in [ArchiveFormat::Docker, ArchiveFormat::Oci] {
        let mut bytes = Vec::new();
        save(
            &store,
            &[SaveImage {
                manifest_digest: manifest.clone(),
                repo_tags: tags.clone(),
            }],
            format,
            &mut bytes,
        )
        .unwrap();
        // Deterministic output.
        let mut again = Vec::new();
        save(
            &store,
            &[SaveImage {
                manifest_digest: manifest.clone(),
                repo_tags: tags.clone(),
            }],
            format,
            &mut again,
        )
        .unwrap();
        assert!(bytes == again, "{format:?} save is deterministic");

        let dst = fresh_store(tmp.path(), &format!("dst-{format:?}"));
        let loaded = load(&dst, &bytes[..]).unwrap();
        assert_eq!(loaded.len(), 1, "{format:?}");
        let img = &loaded[0];
        assert_eq!(img.manifest_digest, manifest, "{format:?}");
        assert_eq!(img.config_digest, config, "{format:?}");
        assert_eq!(img.repo_tags, tags, "{format:?}");
        assert!(dst.has(&layer));
        assert_eq!(dst.list().unwrap(), store.list().unwrap());
        assert_unpacks(&dst, tmp.path(), img);

        // A load cut off mid-layer (a crash, a dropped pipe) names nothing and leaves no
        // partial ingest behind: only whole, verified blobs, which GC can collect.
        let cut = fresh_store(tmp.path(), &format!("cut-{format:?}"));
        let err = load(&cut, &bytes[..bytes.len() / 2]).unwrap_err();
        assert!(
            matches!(err, Error::Io { .. } | Error::SizeMismatch { .. }),
            "{err}"
        );
        assert!(cut.ingests().unwrap().is_empty());
        assert!(fs::read_dir(cut.root().join("ingest"))
            .unwrap()
            .next()
            .is_none());
        assert!(!cut.has(&layer), "the cut layer is not stored");
    }
}

#[test]
fn classic_docker_archive_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = Layer::new().dir("etc").file("etc/hello", b"hi").finish();
    let diff_id = Digest::sha256_of(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    let config_digest = Digest::sha256_of(config.as_bytes());
    let layer_id = "0123abcd";
    let manifest_json = format!(
        r#"[{{"Config":"{}.json","RepoTags":["hello:1"],"Layers":["{layer_id}/layer.tar"]}}]"#,
        config_digest.hex()
    );
    let mut t = Layer::new();
    t.dir(layer_id)
        .file(&format!("{layer_id}/VERSION"), b"1.0")
        .file(&format!("{layer_id}/json"), b"{}")
        .file(&format!("{layer_id}/layer.tar"), &layer)
        .file(&format!("{}.json", config_digest.hex()), config.as_bytes())
        .file("repositories", br#"{"hello":{"1":"0123abcd"}}"#)
        .file("manifest.json", manifest_json.as_bytes());
    let archive = t.finish();

    let store = fresh_store(tmp.path(), "s");
    let loaded = load(&store, &archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].config_digest, config_digest);
    assert_eq!(loaded[0].repo_tags, vec!["hello:1"]);
    let image = resolve_image(&store, &loaded[0].manifest_digest, &PlatformSpec::host()).unwrap();
    assert_eq!(image.diff_ids().unwrap(), vec![diff_id.clone()]);
    assert_eq!(
        Digest::from_oci(image.manifest.layers()[0].digest()).unwrap(),
        diff_id
    );
    // The synthesised manifest is deterministic: a second load agrees.
    let again = load(&fresh_store(tmp.path(), "s2"), &archive[..]).unwrap();
    assert_eq!(again[0].manifest_digest, loaded[0].manifest_digest);
    // Compressed archives load too.
    let gz = load(&fresh_store(tmp.path(), "s3"), &common::gzip(&archive)[..]).unwrap();
    assert_eq!(gz[0].manifest_digest, loaded[0].manifest_digest);
}

#[test]
fn docker_archive_with_symlinked_layers_loads() {
    // docker 25+ writes legacy layer paths as symlinks into blobs/.
    let tmp = tempfile::tempdir().unwrap();
    let layer = Layer::new().file("f", b"x").finish();
    let diff_id = Digest::sha256_of(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    let cd = Digest::sha256_of(config.as_bytes());
    let manifest_json = format!(
        r#"[{{"Config":"blobs/sha256/{}","RepoTags":null,"Layers":["abc/layer.tar"]}}]"#,
        cd.hex()
    );
    let archive = Layer::new()
        .file(&format!("blobs/sha256/{}", diff_id.hex()), &layer)
        .file(&format!("blobs/sha256/{}", cd.hex()), config.as_bytes())
        .dir("abc")
        .symlink(
            "abc/layer.tar",
            &format!("../blobs/sha256/{}", diff_id.hex()),
        )
        .file("manifest.json", manifest_json.as_bytes())
        .finish();
    let store = fresh_store(tmp.path(), "s");
    let loaded = load(&store, &archive[..]).unwrap();
    assert_eq!(loaded[0].config_digest, cd);
    assert!(loaded[0].repo_tags.is_empty());
    let image = resolve_image(&store, &loaded[0].manifest_digest, &PlatformSpec::host()).unwrap();
    assert_eq!(image.layers().unwrap()[0].1, diff_id);
}

#[test]
fn broken_and_hostile_archives_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // A layer named in manifest.json but missing.
    let config = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}"#;
    let cd = Digest::sha256_of(config.as_bytes());
    let missing = Layer::new()
        .file(&format!("{}.json", cd.hex()), config.as_bytes())
        .file(
            "manifest.json",
            format!(
                r#"[{{"Config":"{}.json","RepoTags":["x:1"],"Layers":["nope/layer.tar"]}}]"#,
                cd.hex()
            )
            .as_bytes(),
        )
        .finish();
    let err = load(&fresh_store(tmp.path(), "a"), &missing[..]).unwrap_err();
    assert!(err.to_string().contains("not in the archive"), "{err}");

    // A blob whose content does not match its name.
    let liar = Layer::new()
        .file(&format!("blobs/sha256/{}", cd.hex()), b"not the config")
        .finish();
    let err = load(&fresh_store(tmp.path(), "b"), &liar[..]).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");

    // Paths that climb out.
    let escape = Layer::new().file("../evil", b"x").finish();
    let err = load(&fresh_store(tmp.path(), "c"), &escape[..]).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    assert!(!tmp.path().join("evil").exists());

    // Neither format.
    let junk = Layer::new().file("hello.txt", b"x").finish();
    let err = load(&fresh_store(tmp.path(), "d"), &junk[..]).unwrap_err();
    assert!(matches!(err, Error::Archive(_)), "{err}");

    // Oversized bookkeeping file.
    let big = vec![b' '; (berth_image::content::MAX_JSON_BLOB + 1) as usize];
    let huge = Layer::new().file("manifest.json", &big).finish();
    let err = load(&fresh_store(tmp.path(), "e"), &huge[..]).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[test]
fn oci_layout_index_with_several_tags_is_one_image() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fresh_store(tmp.path(), "src");
    let manifest = store_image(&store, &[Layer::new().file("a", b"1").finish()], true);
    let mut bytes = Vec::new();
    let tags = vec!["app:1".to_string(), "app:latest".to_string()];
    save(
        &store,
        &[SaveImage {
            manifest_digest: manifest.clone(),
            repo_tags: tags.clone(),
        }],
        ArchiveFormat::Oci,
        &mut bytes,
    )
    .unwrap();
    let loaded = load(&fresh_store(tmp.path(), "dst"), &bytes[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].manifest_digest, manifest);
    assert_eq!(loaded[0].repo_tags, tags);
}

#[test]
fn skopeo_docker_archive_loads() {
    let Some(skopeo) = berth_testsupport::which("skopeo") else {
        berth_testsupport::require(false, "skopeo installed");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = fresh_store(tmp.path(), "src");
    let (manifest, layer) = busybox_image(tmp.path(), &store);
    let config = resolve_image(&store, &manifest, &PlatformSpec::host())
        .unwrap()
        .config_digest;
    // Our OCI layout, extracted to a directory skopeo reads.
    let mut bytes = Vec::new();
    save(
        &store,
        &[SaveImage {
            manifest_digest: manifest.clone(),
            repo_tags: vec![],
        }],
        ArchiveFormat::Oci,
        &mut bytes,
    )
    .unwrap();
    let oci_dir = tmp.path().join("oci");
    tar::Archive::new(&bytes[..]).unpack(&oci_dir).unwrap();
    let out = tmp.path().join("docker.tar");
    let status = std::process::Command::new(skopeo)
        .args(["--insecure-policy", "copy", "--quiet"])
        .arg(format!("oci:{}", oci_dir.display()))
        .arg(format!("docker-archive:{}:busybox:latest", out.display()))
        .status()
        .unwrap();
    assert!(status.success(), "skopeo copy failed");

    let dst = fresh_store(tmp.path(), "dst");
    let loaded = load(&dst, BufReader::new(File::open(&out).unwrap())).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].config_digest, config);
    assert!(
        loaded[0]
            .repo_tags
            .iter()
            .any(|t| t.ends_with("busybox:latest")),
        "{:?}",
        loaded[0].repo_tags
    );
    let image = resolve_image(&dst, &loaded[0].manifest_digest, &PlatformSpec::host()).unwrap();
    assert_eq!(image.diff_ids().unwrap(), vec![layer]);
    assert_unpacks(&dst, tmp.path(), &loaded[0]);
}
