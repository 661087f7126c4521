//! Real clients against the registry on loopback: skopeo copy in and out (anonymous, htpasswd
//! basic auth, bearer tokens, TLS), podman pull, docker login.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use berth_registry::{AuthConfig, TlsConfig};
use berth_testsupport::oci_archive::{write_busybox_oci_layout, ImageInfo};
use common::*;
use serde_json::Value;

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    if !out.status.success() {
        eprintln!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn busybox_layout(dir: &Path) -> ImageInfo {
    write_busybox_oci_layout(dir).unwrap()
}

/// `oci:DIR` reference for the layout's single image.
fn oci_ref(dir: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let name = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap()
        .to_string();
    format!("oci:{}:{name}", dir.display())
}

/// The manifest digest of the single image in an OCI layout.
fn layout_manifest_digest(dir: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn skopeo(creds: Option<&str>, src: &str, dest: &str, cert_dir: Option<&Path>) -> Output {
    let mut cmd = Command::new("skopeo");
    cmd.args(["--insecure-policy", "copy", "--retry-times", "0"]);
    if src.starts_with("docker://") {
        cmd.arg("--src-tls-verify=false");
        if let Some(c) = creds {
            cmd.args(["--src-creds", c]);
        }
    } else {
        cmd.arg("--dest-tls-verify=false");
        if let Some(c) = creds {
            cmd.args(["--dest-creds", c]);
        }
    }
    if let Some(dir) = cert_dir {
        cmd.arg(format!("--dest-cert-dir={}", dir.display()));
    }
    // Keep skopeo away from any auth file of the host.
    cmd.env("REGISTRY_AUTH_FILE", "/nonexistent/auth.json");
    run(cmd.args([src, dest]))
}

/// Push the busybox layout with skopeo, pull it back into a new layout, compare digests.
fn round_trip(host: &str, creds: Option<&str>) {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let info = busybox_layout(&src);
    let dest = format!("docker://{host}/x/busybox:1");
    let out = skopeo(creds, &oci_ref(&src), &dest, None);
    assert!(out.status.success(), "skopeo push");

    let back = work.path().join("back");
    let out = skopeo(creds, &dest, &format!("oci:{}:1", back.display()), None);
    assert!(out.status.success(), "skopeo pull");
    assert_eq!(layout_manifest_digest(&back), info.manifest_digest);
    for layer in &info.layer_digests {
        let path = back.join("blobs").join(layer.replacen(':', "/", 1));
        let data = std::fs::read(&path).unwrap();
        assert_eq!(&sha256(&data), layer, "layer came back intact");
    }
}

#[test]
fn skopeo_copies_in_and_out() {
    if !have("skopeo") {
        return;
    }
    let reg = TestRegistry::start();
    round_trip(&reg.host(), None);
    // What skopeo pushed is served with the spec's headers.
    let c = client();
    let r = c
        .get(reg.url("/v2/x/busybox/manifests/1"))
        .header("Accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
    let tags: Value = c
        .get(reg.url("/v2/x/busybox/tags/list"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1"]));

    // Docker schema2 on the way in (skopeo converts), served with Docker's media type.
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    busybox_layout(&src);
    let v2 = format!("docker://{}/x/busybox:v2s2", reg.host());
    let out = run(Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
        ])
        .env("REGISTRY_AUTH_FILE", "/nonexistent/auth.json")
        .args([&oci_ref(&src), &v2]));
    assert!(out.status.success(), "push as v2s2");
    let r = c
        .get(reg.url("/v2/x/busybox/manifests/v2s2"))
        .send()
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let back = work.path().join("back");
    let out = skopeo(None, &v2, &format!("dir:{}", back.display()), None);
    assert!(out.status.success(), "pull v2s2");

    // skopeo delete resolves the tag and deletes the manifest by digest.
    let out = run(Command::new("skopeo")
        .args(["delete", "--tls-verify=false", &v2])
        .env("REGISTRY_AUTH_FILE", "/nonexistent/auth.json"));
    assert!(out.status.success(), "skopeo delete");
    let r = c
        .get(reg.url("/v2/x/busybox/manifests/v2s2"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(reg.url("/v2/x/busybox/manifests/1")).send().unwrap();
    assert_eq!(r.status(), 200, "the other image is untouched");
}

#[test]
fn skopeo_with_htpasswd_basic_auth() {
    if !have("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = htpasswd(dir.path(), "alice", "wonderland");
    let reg = TestRegistry::with(AuthConfig::Basic { htpasswd }, None);

    let r = client().get(reg.url("/v2/")).send().unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"berth-registry\""
    );
    assert_eq!(error_code(r), "UNAUTHORIZED");
    let r = client()
        .get(reg.url("/v2/"))
        .basic_auth("alice", Some("wrong"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    round_trip(&reg.host(), Some("alice:wonderland"));

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    busybox_layout(&src);
    let out = skopeo(
        Some("alice:nope"),
        &oci_ref(&src),
        &format!("docker://{}/x/denied:1", reg.host()),
        None,
    );
    assert!(!out.status.success(), "wrong password refused");
    let out = skopeo(
        None,
        &oci_ref(&src),
        &format!("docker://{}/x/denied:1", reg.host()),
        None,
    );
    assert!(!out.status.success(), "anonymous push refused");
    assert!(!reg.root.path().join("repos/x/denied").exists());
}

#[test]
fn skopeo_with_bearer_tokens() {
    if !have("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = htpasswd(dir.path(), "bob", "builder");
    let auth = AuthConfig::Token {
        htpasswd,
        service: "berth-test".into(),
    };
    let reg = TestRegistry::with(auth, None);
    let c = client();

    let r = c.get(reg.url("/v2/x/busybox/tags/list")).send().unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"http://{}/token\",service=\"berth-test\",scope=\"repository:x/busybox:pull\"",
            reg.host()
        )
    );

    // The token endpoint wants credentials and grants what was asked for.
    let r = c
        .get(reg.url("/token?service=berth-test&scope=repository:t/app:pull"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = c
        .get(reg.url("/token?service=berth-test&scope=repository:t/app:pull"))
        .basic_auth("bob", Some("builder"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let pull_only = v["token"].as_str().unwrap().to_string();
    assert_eq!(v["access_token"], v["token"]);
    let r = c
        .post(reg.url("/v2/t/app/blobs/uploads/"))
        .bearer_auth(&pull_only)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401, "pull-only token cannot push");
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"insufficient_scope\""));
    // OAuth2 password grant (containerd's way) works too.
    let v: Value = c
        .post(reg.url("/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&username=bob&password=builder&service=berth-test&scope=repository%3At%2Fapp%3Apull%2Cpush")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let push = v["access_token"].as_str().unwrap().to_string();
    let r = c
        .post(reg.url("/v2/t/app/blobs/uploads/"))
        .bearer_auth(&push)
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    // A forged token (signature of another key) is refused.
    let mut forged = push.clone();
    forged.pop();
    forged.push(if push.ends_with('A') { 'B' } else { 'A' });
    let r = c.get(reg.url("/v2/")).bearer_auth(&forged).send().unwrap();
    assert_eq!(r.status(), 401);

    round_trip(&reg.host(), Some("bob:builder"));
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    busybox_layout(&src);
    let out = skopeo(
        Some("bob:wrong"),
        &oci_ref(&src),
        &format!("docker://{}/x/denied:1", reg.host()),
        None,
    );
    assert!(!out.status.success(), "bad credentials get no token");
}

fn self_signed_cert(dir: &Path) -> TlsConfig {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "openssl");
    TlsConfig { cert, key }
}

#[test]
fn skopeo_over_tls() {
    if !have("skopeo") || !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tls = self_signed_cert(dir.path());
    let cert = std::fs::read(&tls.cert).unwrap();
    let reg = TestRegistry::with(AuthConfig::None, Some(tls));

    // Plain HTTP to a TLS port gets nowhere.
    assert!(client().get(reg.url("/v2/")).send().is_err());

    // With the certificate trusted (cert dir holds it as a CA), verification stays on.
    let certs = dir.path().join("certs.d");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), &cert).unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let info = busybox_layout(&src);
    let dest = format!("docker://{}/tls/busybox:1", reg.host());
    let mut cmd = Command::new("skopeo");
    cmd.args(["--insecure-policy", "copy", "--retry-times", "0"])
        .arg(format!("--dest-cert-dir={}", certs.display()))
        .env("REGISTRY_AUTH_FILE", "/nonexistent/auth.json")
        .args([&oci_ref(&src), &dest]);
    assert!(run(&mut cmd).status.success(), "push over verified TLS");
    let out = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &dest]));
    assert!(out.status.success());
    assert_eq!(sha256(&out.stdout), info.manifest_digest);
}

#[test]
fn podman_pulls_what_skopeo_pushed() {
    if !have("skopeo") || !have("podman") {
        return;
    }
    if !berth_testsupport::require_root!() {
        return;
    }
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let info = busybox_layout(&src);
    let dest = format!("docker://{}/pod/busybox:1", reg.host());
    assert!(skopeo(None, &oci_ref(&src), &dest, None).status.success());

    let storage = work.path().join("storage");
    let auth_file = work.path().join("auth.json");
    std::fs::write(&auth_file, "{}").unwrap();
    let podman = |args: &[&str]| {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(storage.join("run"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .args(args)
            .env("REGISTRY_AUTH_FILE", &auth_file);
        run(&mut cmd)
    };
    let image = format!("{}/pod/busybox:1", reg.host());
    let out = podman(&["pull", "--tls-verify=false", &image]);
    assert!(out.status.success(), "podman pull");
    let out = podman(&["image", "inspect", "--format", "{{.Digest}}", &image]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        info.manifest_digest
    );
    podman(&["rmi", "-a", "-f"]);
}

#[test]
fn docker_cli_logs_in_with_tokens_and_basic() {
    if !have("docker") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = htpasswd(dir.path(), "carol", "s3cret");
    for auth in [
        AuthConfig::Token {
            htpasswd: htpasswd.clone(),
            service: "berth-test".into(),
        },
        AuthConfig::Basic {
            htpasswd: htpasswd.clone(),
        },
    ] {
        let reg = TestRegistry::with(auth.clone(), None);
        let config = tempfile::tempdir().unwrap();
        // No daemon: the CLI falls back to logging in on its own.
        let login = |pass: &str| {
            let mut cmd = Command::new("docker");
            cmd.arg("--config")
                .arg(config.path())
                .env(
                    "DOCKER_HOST",
                    format!("unix://{}/no.sock", config.path().display()),
                )
                .args(["login", &reg.host(), "-u", "carol", "--password-stdin"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(pass.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            eprintln!("docker login: {}", String::from_utf8_lossy(&out.stderr));
            out
        };
        let out = login("wrong");
        assert!(!out.status.success(), "{auth:?}: wrong password refused");
        let out = login("s3cret");
        assert!(out.status.success(), "{auth:?}: docker login");
        let saved = std::fs::read_to_string(config.path().join("config.json")).unwrap();
        assert!(saved.contains(&reg.host()), "{saved}");
    }
}
