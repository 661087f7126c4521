//! Test helpers: a registry on 127.0.0.1:<ephemeral> in this process (its own tokio runtime),
//! a blocking HTTP client, and small push helpers speaking the distribution API directly.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use berth_registry::{AuthConfig, Config, RunningServer, TlsConfig};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";

pub struct TestRegistry {
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    server: Option<RunningServer>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        Self::with(AuthConfig::None, None)
    }

    pub fn with(auth: AuthConfig, tls: Option<TlsConfig>) -> TestRegistry {
        let root = tempfile::Builder::new()
            .prefix("berth-registry-test-")
            .tempdir()
            .unwrap();
        Self::at(root, auth, tls)
    }

    pub fn at(root: tempfile::TempDir, auth: AuthConfig, tls: Option<TlsConfig>) -> TestRegistry {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            root: root.path().to_path_buf(),
            auth,
            tls,
        };
        let server = runtime.block_on(berth_registry::start(config)).unwrap();
        TestRegistry {
            addr: server.addr,
            root,
            server: Some(server),
            runtime: Some(runtime),
        }
    }

    /// Stop serving; hand back the root (for gc and restart tests).
    pub fn stop(mut self) -> tempfile::TempDir {
        if let (Some(server), Some(rt)) = (self.server.take(), self.runtime.as_ref()) {
            rt.block_on(server.stop());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        let placeholder = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.root, placeholder)
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Digests of the blobs in the content store.
    pub fn stored_blobs(&self) -> Vec<String> {
        blobs_under(self.root.path())
    }
}

pub fn blobs_under(root: &Path) -> Vec<String> {
    let dir = root.join("content/blobs/sha256");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    v.sort();
    v
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn error_code(resp: Response) -> String {
    let v: Value = resp.json().unwrap();
    v["errors"][0]["code"].as_str().unwrap_or("").to_string()
}

/// Push `data` (POST, then PUT ?digest= with the body); returns its digest.
pub fn push_blob(c: &Client, reg: &TestRegistry, repo: &str, data: &[u8]) -> String {
    let d = sha256(data);
    let r = c
        .post(reg.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "start upload");
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = c
        .put(reg.url(&format!("{loc}?digest={d}")))
        .body(data.to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "finish upload of {d}");
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    d
}

/// A small image manifest over a config and one layer; optional subject.
pub fn image_manifest(config: &[u8], layer: &[u8], subject: Option<(&str, u64)>) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": layer.len()}],
    });
    if let Some((d, size)) = subject {
        m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": d, "size": size});
    }
    serde_json::to_vec(&m).unwrap()
}

pub fn put_manifest(
    c: &Client,
    reg: &TestRegistry,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> Response {
    c.put(reg.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("Content-Type", media_type)
        .body(body.to_vec())
        .send()
        .unwrap()
}

/// Push a tiny image (config + layer + manifest tagged `tag`); returns the manifest digest.
pub fn push_image(c: &Client, reg: &TestRegistry, repo: &str, tag: &str, seed: &str) -> String {
    let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
    let layer = format!("layer for {seed}").into_bytes();
    push_blob(c, reg, repo, &config);
    push_blob(c, reg, repo, &layer);
    let m = image_manifest(&config, &layer, None);
    let r = put_manifest(c, reg, repo, tag, OCI_MANIFEST, &m);
    assert_eq!(r.status(), 201, "push manifest {repo}:{tag}");
    sha256(&m)
}

/// An htpasswd file with one bcrypt user.
pub fn htpasswd(dir: &Path, user: &str, pass: &str) -> PathBuf {
    let path = dir.join("htpasswd");
    let hash = bcrypt::hash(pass, 4).unwrap();
    std::fs::write(&path, format!("{user}:{hash}\n")).unwrap();
    path
}

/// Whether a program is installed; when not, the test is skipped (and fails on CI).
pub fn have(program: &str) -> bool {
    berth_testsupport::require(
        berth_testsupport::which(program).is_some(),
        &format!("{program} installed"),
    )
}
