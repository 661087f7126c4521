//! Against a tiny test server: the bearer-token flow, sha512 digests, and the answers a real
//! registry never gives (tampered, truncated, HTML, oversized).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use berth_distribution::{DockerConfig, Error, PullOptions, Reference};
use berth_image::digest::Algorithm;
use berth_image::snapshot::chain_ids;
use common::fake::{FakeServer, Request, Response};
use common::image::{image, layer_from_files, Image};
use common::*;

const REPO: &str = "test/img";

/// How the fake registry misbehaves.
#[derive(Default, Clone)]
struct Behaviour {
    /// Blob digest → bytes served instead.
    tamper: BTreeMap<String, Vec<u8>>,
    /// Cut the first N full-blob answers for this digest after half the bytes.
    truncate: Option<(String, usize)>,
    /// Replace the manifest answer.
    manifest: Option<(String, Vec<u8>)>,
    /// Require a bearer token from /token, with these basic credentials.
    bearer: Option<(String, String)>,
}

struct Fake {
    server: FakeServer,
    token_requests: Arc<Mutex<Vec<Request>>>,
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn serve(img: &Image, behaviour: Behaviour) -> Fake {
    let blobs: BTreeMap<String, Vec<u8>> = img
        .blobs
        .iter()
        .map(|(d, b)| (d.to_string(), b.clone()))
        .collect();
    let manifest = img.manifest.to_string();
    let addr: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let token_requests = Arc::new(Mutex::new(Vec::new()));
    let cut_count = Arc::new(AtomicUsize::new(0));
    let (addr2, tokens2) = (addr.clone(), token_requests.clone());
    let server = FakeServer::start(move |req: &Request| {
        let realm = format!(
            "http://{}/token",
            addr2.get().map(String::as_str).unwrap_or("")
        );
        if req.path.starts_with("/token") {
            tokens2.lock().unwrap().push(req.clone());
            let Some((u, p)) = &behaviour.bearer else {
                return Response::new(404, "");
            };
            if req.method == "POST" {
                // OAuth2 refresh-token grant (docker's identitytoken).
                let form = String::from_utf8_lossy(&req.body).to_string();
                let ok = form.contains("grant_type=refresh_token")
                    && form.contains("refresh_token=refresh-abc")
                    && form.contains("scope=repository%3Atest%2Fimg%3Apull");
                return if ok {
                    Response::new(200, r#"{"access_token":"tok-pull","expires_in":300}"#)
                } else {
                    Response::new(401, "{}")
                };
            }
            if req.header("authorization") != Some(basic(u, p).as_str()) {
                return Response::new(401, r#"{"details":"bad credentials"}"#);
            }
            let scope_ok = req.path.contains("scope=repository%3Atest%2Fimg%3Apull");
            let token = if scope_ok { "tok-pull" } else { "tok-none" };
            return Response::new(200, format!(r#"{{"token":"{token}","expires_in":300}}"#));
        }
        if behaviour.bearer.is_some() && req.header("authorization") != Some("Bearer tok-pull") {
            return Response::new(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}"#,
            )
            .header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="fake",scope="repository:{REPO}:pull""#),
            )
            .header("Content-Type", "application/json");
        }
        if req.path == "/v2/" {
            return Response::new(200, "{}");
        }
        let Some(rest) = req.path.strip_prefix(&format!("/v2/{REPO}/")) else {
            return Response::new(404, "");
        };
        if let Some(reference) = rest.strip_prefix("manifests/") {
            if let Some((ct, body)) = &behaviour.manifest {
                return Response::new(200, body.clone()).header("Content-Type", ct);
            }
            let wanted = if reference == "1" {
                manifest.as_str()
            } else {
                reference
            };
            let Some(body) = blobs.get(wanted) else {
                return Response::new(
                    404,
                    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                );
            };
            return Response::new(200, body.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", wanted);
        }
        if let Some(digest) = rest.strip_prefix("blobs/") {
            let Some(real) = blobs.get(digest) else {
                return Response::new(
                    404,
                    r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#,
                );
            };
            let body = behaviour.tamper.get(digest).unwrap_or(real).clone();
            if let Some(range) = req.header("range") {
                let start: usize = range
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                let total = body.len();
                return Response::new(206, body[start..].to_vec())
                    .header(
                        "Content-Range",
                        &format!("bytes {start}-{}/{total}", total - 1),
                    )
                    .header("Content-Type", "application/octet-stream");
            }
            let mut resp =
                Response::new(200, body.clone()).header("Content-Type", "application/octet-stream");
            if let Some((d, times)) = &behaviour.truncate {
                if d == digest && cut_count.fetch_add(1, Ordering::SeqCst) < *times {
                    resp.cut_after = Some(body.len() / 2);
                }
            }
            return resp;
        }
        Response::new(404, "")
    });
    addr.set(server.addr.clone()).unwrap();
    Fake {
        server,
        token_requests,
    }
}

/// A two-layer image with a layer big enough to cut in the middle.
fn test_image() -> Image {
    let big: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    image(
        vec![
            layer_from_files(&[("etc/base", b"base")]),
            layer_from_files(&[("data/big", &big)]),
        ],
        "amd64",
    )
}

/// The same gzip stream with another MTIME in its header: it still unpacks to the same tar, is
/// just as long, and only the digest can tell.
fn tamper(gz: &[u8]) -> Vec<u8> {
    let mut out = gz.to_vec();
    out[4] ^= 0xff;
    out
}

fn reference(fake: &Fake) -> Reference {
    Reference::parse(&format!("{}/{REPO}:1", fake.server.addr)).unwrap()
}

fn fast_retries(retries: u32) -> PullOptions {
    PullOptions {
        retries,
        retry_backoff: Duration::from_millis(10),
        ..PullOptions::default()
    }
}

fn no_sink() -> berth_distribution::Progress {
    berth_distribution::progress::no_progress()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow_with_stored_credentials() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let img = test_image();
    let fake = serve(
        &img,
        Behaviour {
            bearer: Some(("bob".into(), "pw".into())),
            ..Behaviour::default()
        },
    );
    let s = stores();
    // Without credentials the token service refuses; the error names it.
    let err = puller(client(None, s.dir.path()), &s)
        .pull(&reference(&fake), &fast_retries(0), no_sink())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("/token"), "{err}");

    let cfg = DockerConfig::at(s.dir.path().join("cfg/config.json"));
    cfg.store(
        &fake.server.addr,
        &berth_distribution::Credential::basic("bob", "pw"),
    )
    .unwrap();
    fake.token_requests.lock().unwrap().clear();
    let pulled = puller(client(Some(cfg), s.dir.path()), &s)
        .pull(&reference(&fake), &fast_retries(0), no_sink())
        .await
        .unwrap();
    assert_eq!(pulled.digest, img.manifest);
    let tokens = fake.token_requests.lock().unwrap().clone();
    assert_eq!(
        tokens.len(),
        1,
        "one token for the whole pull (cached): {tokens:?}"
    );
    assert!(
        tokens[0].path.contains("service=fake"),
        "{}",
        tokens[0].path
    );
    assert!(
        tokens[0]
            .path
            .contains("scope=repository%3Atest%2Fimg%3Apull"),
        "{}",
        tokens[0].path
    );
    let chains = chain_ids(
        &img.layers
            .iter()
            .map(|(_, d)| d.clone())
            .collect::<Vec<_>>(),
    );
    assert!(s.snapshots.exists(&chains[1]));
    // An identitytoken (refresh token) in the config is exchanged with the OAuth2 grant.
    let cfg2 = DockerConfig::at(s.dir.path().join("cfg2/config.json"));
    cfg2.store(
        &fake.server.addr,
        &berth_distribution::Credential {
            username: "bob".into(),
            password: String::new(),
            identity_token: Some("refresh-abc".into()),
        },
    )
    .unwrap();
    let s2 = stores();
    fake.token_requests.lock().unwrap().clear();
    let again = puller(client(Some(cfg2), s2.dir.path()), &s2)
        .pull(&reference(&fake), &fast_retries(0), no_sink())
        .await
        .unwrap();
    assert_eq!(again.digest, img.manifest);
    let tokens = fake.token_requests.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].method, "POST");

    // Every registry request after the ping carried the token.
    let reqs = fake.server.requests();
    assert!(reqs
        .iter()
        .filter(|r| r.path.contains("/blobs/"))
        .all(|r| r.header("authorization") == Some("Bearer tok-pull")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_blob_is_a_digest_mismatch_and_nothing_is_kept() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let img = test_image();
    let victim = img.layers[0].0.clone();
    let other = tamper(&img.blobs[&victim]);
    let fake = serve(
        &img,
        Behaviour {
            tamper: BTreeMap::from([(victim.to_string(), other)]),
            ..Behaviour::default()
        },
    );
    let s = stores();
    let err = puller(client(None, s.dir.path()), &s)
        .pull(&reference(&fake), &fast_retries(0), no_sink())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("digest mismatch"), "{msg}");
    assert!(msg.contains(&fake.server.addr), "names the registry: {msg}");
    assert!(
        msg.contains(&format!("blob {REPO}@{victim}")),
        "names the blob: {msg}"
    );
    assert!(!s.store.has(&victim));
    let chains = chain_ids(
        &img.layers
            .iter()
            .map(|(_, d)| d.clone())
            .collect::<Vec<_>>(),
    );
    assert!(!s.snapshots.exists(&chains[0]) && !s.snapshots.exists(&chains[1]));
    assert_nothing_half_written(&s);

    // Longer than the descriptor says: stopped at once, nothing kept to resume from.
    let mut longer = img.blobs[&victim].clone();
    longer.extend_from_slice(&[0u8; 4096]);
    let fake = serve(
        &img,
        Behaviour {
            tamper: BTreeMap::from([(victim.to_string(), longer)]),
            ..Behaviour::default()
        },
    );
    let s = stores();
    let err = puller(client(None, s.dir.path()), &s)
        .pull(&reference(&fake), &fast_retries(2), no_sink())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("more than the") && err.contains(&victim.to_string()),
        "{err}"
    );
    assert!(!s.store.has(&victim));
    assert_nothing_half_written(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_blob_resumes_with_range_within_and_across_pulls() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let img = test_image();
    let big = img.layers[1].0.clone();
    let big_len = img.blobs[&big].len();

    // Within one pull: the cut is retried from where it stopped.
    let fake = serve(
        &img,
        Behaviour {
            truncate: Some((big.to_string(), 1)),
            ..Behaviour::default()
        },
    );
    let s = stores();
    let pulled = puller(client(None, s.dir.path()), &s)
        .pull(&reference(&fake), &fast_retries(3), no_sink())
        .await
        .unwrap();
    assert_eq!(pulled.digest, img.manifest);
    let ranges: Vec<String> = fake
        .server
        .requests()
        .iter()
        .filter_map(|r| r.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges, vec![format!("bytes={}-", big_len / 2)]);
    let chain = pulled.chain_id.unwrap();
    assert_eq!(
        fs::read(s.snapshots.committed_fs(&chain).join("data/big"))
            .unwrap()
            .len(),
        400_000
    );
    assert_nothing_half_written(&s);

    // Across pulls: no retries, so the first pull fails and keeps what it got.
    let fake = serve(
        &img,
        Behaviour {
            truncate: Some((big.to_string(), 1)),
            ..Behaviour::default()
        },
    );
    let s = stores();
    let p = puller(client(None, s.dir.path()), &s);
    let err = p
        .pull(&reference(&fake), &fast_retries(0), no_sink())
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&format!("{REPO}@{big}")), "{err}");
    let ingests = s.store.ingests().unwrap();
    assert_eq!(ingests.len(), 1, "{ingests:?}");
    assert_eq!(ingests[0].offset, (big_len / 2) as u64);
    assert!(!s.store.has(&big));
    let pulled = p
        .pull(&reference(&fake), &fast_retries(0), no_sink())
        .await
        .unwrap();
    let ranges: Vec<String> = fake
        .server
        .requests()
        .iter()
        .filter_map(|r| r.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges, vec![format!("bytes={}-", big_len / 2)]);
    assert!(s.store.has(&big));
    let chain = pulled.chain_id.unwrap();
    assert_eq!(
        fs::read(s.snapshots.committed_fs(&chain).join("data/big"))
            .unwrap()
            .len(),
        400_000
    );
    assert_nothing_half_written(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_garbage_and_oversized_manifests_are_clear_errors() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let img = test_image();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "text/html; charset=utf-8",
            b"<!DOCTYPE html><html><body>Sign in</body></html>".to_vec(),
            "HTML page",
        ),
        ("application/json", b"garbage{{".to_vec(), "not JSON"),
        (
            "application/json",
            br#"{"schemaVersion":1,"fsLayers":[]}"#.to_vec(),
            "schema 1",
        ),
        (
            "application/vnd.oci.image.manifest.v1+json",
            vec![b' '; 5 << 20],
            "limit",
        ),
    ];
    for (ct, body, want) in cases {
        let fake = serve(
            &img,
            Behaviour {
                manifest: Some((ct.to_string(), body)),
                ..Behaviour::default()
            },
        );
        let s = stores();
        let err = puller(client(None, s.dir.path()), &s)
            .pull(&reference(&fake), &fast_retries(0), no_sink())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(want), "{ct}: {msg}");
        assert!(msg.contains(&fake.server.addr), "names the registry: {msg}");
        assert!(
            msg.contains(&format!("manifest {REPO}:1")),
            "names the object: {msg}"
        );
        assert!(s.store.list().unwrap().is_empty());
        assert_nothing_half_written(&s);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha512_layer_digests_are_verified_while_streaming() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let base = test_image();
    // Same layers, described by sha512 digests.
    let mut img = Image::default();
    let mut manifest: serde_json::Value = serde_json::from_slice(base.manifest_bytes()).unwrap();
    for (i, (d, diff)) in base.layers.iter().enumerate() {
        let bytes = base.blobs[d].clone();
        let mut h = Algorithm::Sha512.hasher();
        h.update(&bytes);
        let d512 = h.finish();
        manifest["layers"][i]["digest"] = serde_json::json!(d512.to_string());
        img.blobs.insert(d512.clone(), bytes);
        img.layers.push((d512, diff.clone()));
    }
    img.blobs
        .insert(base.config.clone(), base.blobs[&base.config].clone());
    img.config = base.config.clone();
    img.manifest = img.put(serde_json::to_vec(&manifest).unwrap());

    let fake = serve(&img, Behaviour::default());
    let s = stores();
    let pulled = puller(client(None, s.dir.path()), &s)
        .pull(&reference(&fake), &fast_retries(0), no_sink())
        .await
        .unwrap();
    assert_eq!(pulled.digest, img.manifest);
    for (d, _) in &img.layers {
        assert_eq!(d.algorithm(), Algorithm::Sha512);
        assert!(s
            .store
            .blob_path(d)
            .to_string_lossy()
            .contains("blobs/sha512/"));
        assert!(s.store.has(d));
    }

    // A tampered sha512 blob is caught too.
    let victim = img.layers[1].0.clone();
    let other = tamper(&img.blobs[&victim]);
    let fake = serve(
        &img,
        Behaviour {
            tamper: BTreeMap::from([(victim.to_string(), other)]),
            ..Behaviour::default()
        },
    );
    let s = stores();
    let err = puller(client(None, s.dir.path()), &s)
        .pull(&reference(&fake), &fast_retries(0), no_sink())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&victim.to_string()), "{err}");
    assert!(!s.store.has(&victim));
    assert_nothing_half_written(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_shared_by_two_chains_downloads_once() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8)
        .collect();
    let shared = layer_from_files(&[("data/shared", &big)]);
    let a = image(
        vec![layer_from_files(&[("base", b"a")]), shared.clone()],
        "amd64",
    );
    let b = image(vec![layer_from_files(&[("base", b"b")]), shared], "amd64");
    let mut both = a.clone();
    both.blobs.extend(b.blobs.clone());
    let fake = serve(&both, Behaviour::default());
    let s = stores();
    let p = puller(client(None, s.dir.path()), &s);
    let ra = Reference::parse(&format!("{}/{REPO}@{}", fake.server.addr, a.manifest)).unwrap();
    let rb = Reference::parse(&format!("{}/{REPO}@{}", fake.server.addr, b.manifest)).unwrap();
    let opts = fast_retries(0);
    let (pa, pb) = tokio::join!(p.pull(&ra, &opts, no_sink()), p.pull(&rb, &opts, no_sink()));
    let (pa, pb) = (pa.unwrap(), pb.unwrap());
    assert_ne!(pa.chain_id, pb.chain_id);
    let x = &a.layers[1].0;
    let gets = fake
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&format!("/blobs/{x}")))
        .count();
    assert_eq!(gets, 1, "the shared blob is fetched once");
    for pulled in [&pa, &pb] {
        let top = s.snapshots.committed_fs(pulled.chain_id.as_ref().unwrap());
        assert_eq!(fs::read(top.join("data/shared")).unwrap(), big);
    }
    assert_nothing_half_written(&s);
}
