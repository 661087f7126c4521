//! Rough pull timing (run by hand: `cargo test -p berth-distribution --test bench -- --ignored
//! --nocapture`): a 4-layer image from a local docker-registry, berth's pull (download +
//! verify + unpack) next to skopeo's copy to an OCI directory (download + verify only).

mod common;

use std::time::Instant;

use berth_distribution::{PullOptions, Reference};
use common::image::{busybox_image, image, layer_from_dir, layer_from_files, write_oci_layout};
use common::registry::{oci_dir_arg, skopeo_copy, tools_present, Registry};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing run, by hand"]
async fn rough_multi_layer_pull_timing() {
    if !berth_testsupport::require_root!() || !tools_present() {
        return;
    }
    let mb: usize = std::env::var("BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let base = busybox_image("bench");
    let mut layers = vec![(
        base.blobs[&base.layers[0].0].clone(),
        base.layers[0].1.clone(),
    )];
    for n in 0..2u32 {
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(n);
        let data: Vec<u8> = (0..mb << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        layers.push(layer_from_files(&[(&format!("blob/{n}"), &data)]));
    }
    let small = tempfile::tempdir().unwrap();
    for i in 0..2000 {
        let d = small.path().join(format!("files/{}", i % 50));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(format!("f{i}")),
            format!("small file {i}\n").repeat(20),
        )
        .unwrap();
    }
    layers.push(layer_from_dir(small.path()));
    let img = image(layers, "amd64");
    let total: usize = img.layers.iter().map(|(d, _)| img.blobs[d].len()).sum();

    let reg = Registry::start(None);
    let layout = tempfile::tempdir().unwrap();
    write_oci_layout(&img, layout.path(), "t");
    skopeo_copy(
        &oci_dir_arg(layout.path(), "t"),
        &format!("docker://{}/bench/img:1", reg.addr),
        None,
        false,
    );

    let out = tempfile::tempdir().unwrap();
    let t = Instant::now();
    skopeo_copy(
        &format!("docker://{}/bench/img:1", reg.addr),
        &oci_dir_arg(out.path(), "x"),
        None,
        false,
    );
    let skopeo = t.elapsed();

    let s = stores();
    let p = puller(client(None, s.dir.path()), &s);
    let reference = Reference::parse(&format!("{}/bench/img:1", reg.addr)).unwrap();
    let t = Instant::now();
    let pulled = p
        .pull(
            &reference,
            &PullOptions::default(),
            berth_distribution::progress::no_progress(),
        )
        .await
        .unwrap();
    let berth = t.elapsed();
    assert_eq!(pulled.digest, img.manifest);
    eprintln!(
        "image: {} layers, {:.1} MB compressed; skopeo copy to oci dir: {:.2?}; berth pull + unpack: {:.2?} (backend {:?})",
        img.layers.len(),
        total as f64 / 1e6,
        skopeo,
        berth,
        s.snapshots.backend()
    );
}
