//! Against berth's own registry server (crates/registry) with its bearer-token auth: push
//! (chunked) and pull back through the token flow, scopes for pull and push.

mod common;

use std::fs;

use berth_distribution::auth::Credential;
use berth_distribution::push::BlobAction;
use berth_distribution::{DockerConfig, Error, PullOptions, PushOptions, Reference};
use common::image::{image, layer_from_files, load_into};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_pull_through_berth_registry_token_auth() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let htpasswd = root.path().join("htpasswd");
    fs::write(
        &htpasswd,
        format!("carol:{}\n", bcrypt::hash("pw", 5).unwrap()),
    )
    .unwrap();
    let server = berth_registry::start(berth_registry::Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        root: root.path().join("data"),
        auth: berth_registry::AuthConfig::Token {
            htpasswd,
            service: "berth-test".into(),
        },
        tls: None,
    })
    .await
    .unwrap();
    let addr = server.addr.to_string();

    let src = stores();
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let img = image(
        vec![
            layer_from_files(&[("etc/one", b"1")]),
            layer_from_files(&[("data/big", &big)]),
        ],
        "amd64",
    );
    load_into(&img, &src.store);
    let reference = Reference::parse(&format!("{addr}/team/app:v1")).unwrap();

    // Anonymous push is refused by the token service.
    let anon = client(None, src.dir.path());
    let err = berth_distribution::push(
        &anon,
        &src.store,
        &reference,
        &img.manifest,
        &PushOptions::default(),
        berth_distribution::progress::no_progress(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");

    // login stores the credential; push and pull then use it.
    let cfg = DockerConfig::at(src.dir.path().join("docker/config.json"));
    let c = client(Some(cfg.clone()), src.dir.path());
    c.login(&addr, &Credential::basic("carol", "pw"))
        .await
        .unwrap();
    assert!(cfg.get(&addr).unwrap().is_some());
    let opts = PushOptions {
        chunk_size: Some(32 << 10),
        ..PushOptions::default()
    };
    let pushed = berth_distribution::push(
        &c,
        &src.store,
        &reference,
        &img.manifest,
        &opts,
        berth_distribution::progress::no_progress(),
    )
    .await
    .unwrap();
    assert_eq!(pushed.digest, img.manifest);
    assert!(pushed.blobs.iter().all(|(_, a)| *a == BlobAction::Uploaded));

    let dst = stores();
    let pulled = puller(client(Some(cfg), dst.dir.path()), &dst)
        .pull(
            &reference,
            &PullOptions::default(),
            berth_distribution::progress::no_progress(),
        )
        .await
        .unwrap();
    assert_eq!(pulled.digest, img.manifest);
    let top = dst
        .snapshots
        .committed_fs(pulled.chain_id.as_ref().unwrap());
    assert_eq!(fs::read(top.join("data/big")).unwrap(), big);
    assert_nothing_half_written(&dst);
    server.stop().await;
}
