//! Against Debian's docker-registry, with skopeo as the independent client.

mod common;

use std::fs;

use berth_distribution::auth::Credential;
use berth_distribution::pull::LayerAction;
use berth_distribution::push::BlobAction;
use berth_distribution::{DockerConfig, Error, PullOptions, PushOptions, Reference};
use berth_image::media::PlatformSpec;
use berth_image::snapshot::chain_ids;
use berth_image::Digest;
use common::image::{busybox_image, image, index, layer_from_files, load_into, write_oci_layout};
use common::registry::{oci_dir_arg, skopeo_copy, skopeo_raw, tools_present, Registry};
use common::*;

fn push_with_skopeo(img: &common::image::Image, dest: &str, creds: Option<&str>, all: bool) {
    let layout = tempfile::tempdir().unwrap();
    write_oci_layout(img, layout.path(), "t");
    skopeo_copy(&oci_dir_arg(layout.path(), "t"), dest, creds, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_what_skopeo_pushed_unpacked_and_verified() {
    if !berth_testsupport::require_root!() || !tools_present() {
        return;
    }
    let reg = Registry::start(None);
    let img = busybox_image("pulled");
    push_with_skopeo(
        &img,
        &format!("docker://{}/test/busybox:1", reg.addr),
        None,
        false,
    );

    let s = stores();
    let puller = puller(client(None, s.dir.path()), &s);
    let reference = Reference::parse(&format!("{}/test/busybox:1", reg.addr)).unwrap();
    let (sink, events) = recorder();
    let pulled = puller
        .pull(&reference, &PullOptions::default(), sink)
        .await
        .unwrap();

    assert_eq!(
        pulled.digest, img.manifest,
        "skopeo keeps the manifest bytes"
    );
    assert_eq!(pulled.image.config_digest, img.config);
    assert_eq!(pulled.layers.len(), 2);
    assert!(pulled.layers.iter().all(|(_, a)| *a == LayerAction::Pulled));
    let diff_ids: Vec<Digest> = img.layers.iter().map(|(_, d)| d.clone()).collect();
    let chains = chain_ids(&diff_ids);
    assert_eq!(pulled.chain_id.as_ref(), chains.last());
    for (blob, _) in &img.layers {
        assert!(s.store.has(blob), "layer blob {blob} stored");
        assert_eq!(fs::read(s.store.blob_path(blob)).unwrap(), img.blobs[blob]);
    }
    // Each layer in its own snapshot, linked in order.
    let busybox = s.snapshots.committed_fs(&chains[0]).join("bin/busybox");
    assert!(busybox.is_file(), "{}", busybox.display());
    let marker = s
        .snapshots
        .committed_fs(&chains[1])
        .join("etc/berth-marker");
    assert_eq!(fs::read_to_string(marker).unwrap(), "pulled");
    assert_eq!(
        s.snapshots.info(&chains[1]).unwrap().parent.as_ref(),
        Some(&chains[0])
    );
    assert_eq!(pulled.record().manifest, img.manifest);
    assert_nothing_half_written(&s);

    let events = events.lock().unwrap().clone();
    let statuses: Vec<&str> = events.iter().map(|e| e.status.as_str()).collect();
    assert!(
        statuses.contains(&"Pulling from test/busybox"),
        "{statuses:?}"
    );
    assert!(statuses.contains(&"Pull complete"), "{statuses:?}");
    let downloading = events
        .iter()
        .filter(|e| e.status == "Downloading")
        .filter_map(|e| e.progress_detail)
        .collect::<Vec<_>>();
    assert!(
        downloading.iter().any(|p| Some(p.current) == p.total),
        "{downloading:?}"
    );
    assert!(events
        .iter()
        .any(|e| e.status == format!("Digest: {}", img.manifest)));

    // Again: nothing to fetch.
    let again = puller
        .pull(&reference, &PullOptions::default(), no_sink())
        .await
        .unwrap();
    assert!(again.layers.iter().all(|(_, a)| *a == LayerAction::Present));
    assert_eq!(again.digest, pulled.digest);
}

fn no_sink() -> berth_distribution::Progress {
    berth_distribution::progress::no_progress()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_share_the_work() {
    if !berth_testsupport::require_root!() || !tools_present() {
        return;
    }
    let reg = Registry::start(None);
    let img = busybox_image("shared");
    push_with_skopeo(
        &img,
        &format!("docker://{}/test/shared:1", reg.addr),
        None,
        false,
    );
    let s = stores();
    let puller = puller(client(None, s.dir.path()), &s);
    let reference = Reference::parse(&format!("{}/test/shared:1", reg.addr)).unwrap();
    let opts = PullOptions::default();
    let (a, b) = tokio::join!(
        puller.pull(&reference, &opts, no_sink()),
        puller.pull(&reference, &opts, no_sink())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.chain_id, b.chain_id);
    let pulled = a
        .layers
        .iter()
        .chain(&b.layers)
        .filter(|(_, act)| *act == LayerAction::Pulled)
        .count();
    assert_eq!(
        pulled, 2,
        "each layer pulled once: {:?} {:?}",
        a.layers, b.layers
    );
    assert_nothing_half_written(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_so_skopeo_reads_back_identical_digests() {
    if !berth_testsupport::require_root!() || !tools_present() {
        return;
    }
    let reg = Registry::start(None);
    let s = stores();
    // One larger layer to go up in chunks.
    let big: Vec<u8> = (0..600_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let img = image(
        vec![
            layer_from_files(&[("data/big", &big)]),
            layer_from_files(&[("etc/pushed", b"yes")]),
        ],
        "amd64",
    );
    load_into(&img, &s.store);
    let client = client(None, s.dir.path());
    let reference = Reference::parse(&format!("{}/test/pushed:1", reg.addr)).unwrap();
    let (sink, events) = recorder();
    let opts = PushOptions {
        chunk_size: Some(64 << 10),
        ..PushOptions::default()
    };
    let pushed =
        berth_distribution::push(&client, &s.store, &reference, &img.manifest, &opts, sink)
            .await
            .unwrap();
    assert_eq!(pushed.digest, img.manifest);
    assert!(
        pushed.blobs.iter().all(|(_, a)| *a == BlobAction::Uploaded),
        "{:?}",
        pushed.blobs
    );
    let raw = skopeo_raw(&format!("docker://{}/test/pushed:1", reg.addr));
    assert_eq!(Digest::sha256_of(&raw), img.manifest);
    let out = tempfile::tempdir().unwrap();
    skopeo_copy(
        &format!("docker://{}/test/pushed:1", reg.addr),
        &oci_dir_arg(out.path(), "back"),
        None,
        false,
    );
    for (blob, _) in &img.layers {
        let path = out.path().join("blobs/sha256").join(blob.hex());
        assert_eq!(
            fs::read(&path).unwrap(),
            img.blobs[blob],
            "layer {blob} identical"
        );
    }
    let events = events.lock().unwrap().clone();
    assert!(events.iter().any(|e| e.status == "Pushed"));
    assert!(events
        .iter()
        .any(|e| e.status.starts_with("1: digest: sha256:")));

    // Monolithic push of the same image to another repo: blobs mounted across repositories.
    let other = Reference::parse(&format!("{}/test/copy:2", reg.addr)).unwrap();
    let opts = PushOptions {
        mount_from: vec!["test/pushed".into()],
        ..PushOptions::default()
    };
    let again =
        berth_distribution::push(&client, &s.store, &other, &img.manifest, &opts, no_sink())
            .await
            .unwrap();
    assert!(
        again
            .blobs
            .iter()
            .all(|(_, a)| *a == BlobAction::Mounted("test/pushed".into())),
        "{:?}",
        again.blobs
    );
    // And once more: everything exists.
    let third = berth_distribution::push(
        &client,
        &s.store,
        &other,
        &img.manifest,
        &PushOptions::default(),
        no_sink(),
    )
    .await
    .unwrap();
    assert!(third.blobs.iter().all(|(_, a)| *a == BlobAction::Exists));

    // Monolithic upload to a fresh repo, read back by skopeo.
    let mono = Reference::parse(&format!("{}/other/mono:3", reg.addr)).unwrap();
    let r = berth_distribution::push(
        &client,
        &s.store,
        &mono,
        &img.manifest,
        &PushOptions::default(),
        no_sink(),
    )
    .await
    .unwrap();
    assert!(r.blobs.iter().all(|(_, a)| *a == BlobAction::Uploaded));
    assert_eq!(
        Digest::sha256_of(&skopeo_raw(&format!("docker://{}/other/mono:3", reg.addr))),
        img.manifest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_arch_index_selects_the_platform() {
    if !berth_testsupport::require_root!() || !tools_present() {
        return;
    }
    let reg = Registry::start(None);
    let amd = image(vec![layer_from_files(&[("arch", b"amd64")])], "amd64");
    let arm = image(vec![layer_from_files(&[("arch", b"arm64")])], "arm64");
    let idx = index(&[(&arm, "arm64"), (&amd, "amd64")]);
    push_with_skopeo(
        &idx,
        &format!("docker://{}/test/multi:1", reg.addr),
        None,
        true,
    );
    let reference = Reference::parse(&format!("{}/test/multi:1", reg.addr)).unwrap();

    let s = stores();
    let puller = puller(client(None, s.dir.path()), &s);
    let pulled = puller
        .pull(&reference, &PullOptions::default(), no_sink())
        .await
        .unwrap();
    assert_eq!(pulled.digest, idx.manifest, "the name points at the index");
    assert_eq!(pulled.image.manifest_digest, amd.manifest);
    assert_eq!(pulled.image.config_digest, amd.config);
    let chain = pulled.chain_id.unwrap();
    assert_eq!(
        fs::read_to_string(s.snapshots.committed_fs(&chain).join("arch")).unwrap(),
        "amd64"
    );
    assert!(!s.store.has(&arm.manifest), "other platforms not fetched");

    // Docker's distribution inspect sees both platforms.
    let client_ = puller.client().clone();
    let seen = berth_distribution::inspect::inspect(&client_, &reference)
        .await
        .unwrap();
    assert_eq!(seen.descriptor.digest, idx.manifest.to_string());
    let mut archs: Vec<&str> = seen
        .platforms
        .iter()
        .map(|p| p.architecture.as_str())
        .collect();
    archs.sort();
    assert_eq!(archs, ["amd64", "arm64"]);

    // Only amd64 is here: a push sends that image, as docker does.
    let partial = Reference::parse(&format!("{}/test/partial:1", reg.addr)).unwrap();
    let r = berth_distribution::push(
        &client_,
        &s.store,
        &partial,
        &idx.manifest,
        &PushOptions::default(),
        no_sink(),
    )
    .await
    .unwrap();
    assert_eq!(r.digest, amd.manifest);
    assert_eq!(
        Digest::sha256_of(&skopeo_raw(&format!(
            "docker://{}/test/partial:1",
            reg.addr
        ))),
        amd.manifest
    );

    let opts = PullOptions {
        platform: PlatformSpec::parse("linux/arm64").unwrap(),
        ..PullOptions::default()
    };
    let pulled = puller.pull(&reference, &opts, no_sink()).await.unwrap();

    // Both platforms here now: the whole index goes up.
    let whole = Reference::parse(&format!("{}/test/whole:1", reg.addr)).unwrap();
    let r = berth_distribution::push(
        &client_,
        &s.store,
        &whole,
        &idx.manifest,
        &PushOptions::default(),
        no_sink(),
    )
    .await
    .unwrap();
    assert_eq!(r.digest, idx.manifest);
    assert_eq!(
        Digest::sha256_of(&skopeo_raw(&format!("docker://{}/test/whole:1", reg.addr))),
        idx.manifest
    );
    assert_eq!(pulled.image.config_digest, arm.config);
    let opts = PullOptions {
        platform: PlatformSpec::parse("linux/s390x").unwrap(),
        ..PullOptions::default()
    };
    let err = puller
        .pull(&reference, &opts, no_sink())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linux/s390x") && err.contains("linux/amd64"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_basic_auth_with_docker_config_credentials() {
    if !berth_testsupport::require_root!() || !tools_present() {
        return;
    }
    let reg = Registry::start(Some(("alice", "s3cret")));
    let img = image(vec![layer_from_files(&[("etc/auth", b"basic")])], "amd64");
    push_with_skopeo(
        &img,
        &format!("docker://{}/private/img:1", reg.addr),
        Some("alice:s3cret"),
        false,
    );
    let reference = Reference::parse(&format!("{}/private/img:1", reg.addr)).unwrap();
    let s = stores();

    // No credentials: refused, and the error says who refused what.
    let anon = puller(client(None, s.dir.path()), &s);
    let err = anon
        .pull(&reference, &PullOptions::default(), no_sink())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains(&reg.addr), "{err}");

    // Credentials as docker writes them.
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg_path = cfg_dir.path().join("config.json");
    fs::write(
        &cfg_path,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    let authed = puller(client(Some(DockerConfig::at(&cfg_path)), s.dir.path()), &s);
    let pulled = authed
        .pull(&reference, &PullOptions::default(), no_sink())
        .await
        .unwrap();
    assert_eq!(pulled.digest, img.manifest);

    // login checks the password, then stores it like docker; logout removes it.
    let login_cfg = DockerConfig::at(cfg_dir.path().join("login/config.json"));
    let c = client(Some(login_cfg.clone()), s.dir.path());
    let bad = c
        .login(&reg.addr, &Credential::basic("alice", "wrong"))
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::Unauthorized { .. }), "{bad}");
    assert!(login_cfg.get(&reg.addr).unwrap().is_none());
    c.login(&reg.addr, &Credential::basic("alice", "s3cret"))
        .await
        .unwrap();
    let stored: serde_json::Value =
        serde_json::from_slice(&fs::read(login_cfg.path()).unwrap()).unwrap();
    assert_eq!(stored["auths"][&reg.addr]["auth"], "YWxpY2U6czNjcmV0");
    assert!(c.logout(&reg.addr).unwrap());
    assert!(login_cfg.get(&reg.addr).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_names_go_through_registry_mirrors() {
    if !berth_testsupport::require_root!() || !tools_present() {
        return;
    }
    let mirror = Registry::start(None);
    let img = image(vec![layer_from_files(&[("etc/mirrored", b"yes")])], "amd64");
    push_with_skopeo(
        &img,
        &format!("docker://{}/library/mirrored:1", mirror.addr),
        None,
        false,
    );
    let s = stores();
    let cfg = berth_distribution::ClientConfig {
        docker_config: Some(DockerConfig::at(s.dir.path().join("docker/config.json"))),
        endpoints: berth_distribution::EndpointConfig {
            registry_mirrors: vec![format!("http://{}", mirror.addr)],
            insecure_registries: vec![],
        },
        ..berth_distribution::ClientConfig::default()
    };
    let client = std::sync::Arc::new(berth_distribution::Client::new(cfg).unwrap());
    let reference = Reference::parse("mirrored:1").unwrap();
    assert_eq!(reference.name(), "docker.io/library/mirrored");
    let pulled = puller(client, &s)
        .pull(&reference, &PullOptions::default(), no_sink())
        .await
        .unwrap();
    assert_eq!(pulled.digest, img.manifest);
    let chain = pulled.chain_id.unwrap();
    assert_eq!(
        fs::read_to_string(s.snapshots.committed_fs(&chain).join("etc/mirrored")).unwrap(),
        "yes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_backend_pulls_in_order() {
    if !berth_testsupport::require_root!() || !tools_present() {
        return;
    }
    let reg = Registry::start(None);
    let img = image(
        vec![
            layer_from_files(&[("a/one", b"1"), ("a/gone", b"x")]),
            layer_from_files(&[("a/two", b"2"), ("a/.wh.gone", b"")]),
        ],
        "amd64",
    );
    push_with_skopeo(
        &img,
        &format!("docker://{}/test/copy:1", reg.addr),
        None,
        false,
    );
    let mut s = stores();
    s.snapshots = berth_image::snapshot::Snapshotter::open(
        s.dir.path().join("copy-snapshots"),
        Some(berth_image::snapshot::Backend::Copy),
    )
    .unwrap();
    let reference = Reference::parse(&format!("{}/test/copy:1", reg.addr)).unwrap();
    let pulled = puller(client(None, s.dir.path()), &s)
        .pull(&reference, &PullOptions::default(), no_sink())
        .await
        .unwrap();
    // A copy snapshot holds the whole tree, whiteouts applied.
    let top = s.snapshots.committed_fs(pulled.chain_id.as_ref().unwrap());
    assert_eq!(fs::read_to_string(top.join("a/one")).unwrap(), "1");
    assert_eq!(fs::read_to_string(top.join("a/two")).unwrap(), "2");
    assert!(!top.join("a/gone").exists());
    assert!(!top.join("a/.wh.gone").exists());
    assert_nothing_half_written(&s);
}
