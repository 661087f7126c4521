//! The distribution API spoken directly over HTTP: pull, push (monolithic, chunked, out of
//! order), mount, tags and catalog pagination, referrers, deletes, error codes, hostile input.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use serde_json::{json, Value};

#[test]
fn base_endpoint_announces_the_api_version() {
    let reg = TestRegistry::start();
    let r = client().get(reg.url("/v2/")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let r = client()
        .get(reg.url("/v2/nothing/here/at/all/x"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn pushed_image_pulls_back_by_tag_and_digest() {
    let reg = TestRegistry::start();
    let c = client();
    let digest = push_image(&c, &reg, "x/app", "v1", "pull");
    let config = br#"{"seed":"pull"}"#;

    let r = c.get(reg.url("/v2/x/app/manifests/v1")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    let len: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.bytes().unwrap();
    assert_eq!(body.len(), len);
    assert_eq!(sha256(&body), digest);

    let r = c
        .head(reg.url(&format!("/v2/x/app/manifests/{digest}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(r.headers()["content-length"], len.to_string().as_str());

    let cd = sha256(config);
    let r = c
        .get(reg.url(&format!("/v2/x/app/blobs/{cd}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], cd.as_str());
    assert_eq!(r.bytes().unwrap().as_ref(), config);

    let r = c
        .get(reg.url(&format!("/v2/x/app/blobs/{cd}")))
        .header("Range", "bytes=2-5")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 2-5/{}", config.len()).as_str()
    );
    assert_eq!(r.bytes().unwrap().as_ref(), &config[2..=5]);
    let r = c
        .get(reg.url(&format!("/v2/x/app/blobs/{cd}")))
        .header("Range", "bytes=999-")
        .send()
        .unwrap();
    assert_eq!(r.status(), 416);

    // The blob is not visible from another repository.
    let r = c
        .head(reg.url(&format!("/v2/other/blobs/{cd}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn chunked_upload_enforces_order_and_reports_progress() {
    let reg = TestRegistry::start();
    let c = client();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let r = c
        .post(reg.url("/v2/chunked/blobs/uploads/"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-0");
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(r.headers().contains_key("docker-upload-uuid"));

    let patch = |range: (usize, usize)| {
        c.patch(reg.url(&loc))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{}-{}", range.0, range.1))
            .body(data[range.0..=range.1].to_vec())
            .send()
            .unwrap()
    };
    let r = patch((0, 99_999));
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-99999");

    // Out of order: a gap, then a repeat.
    let r = patch((150_000, 199_999));
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["range"], "0-99999");
    let r = patch((0, 99_999));
    assert_eq!(r.status(), 416);

    let r = c.get(reg.url(&loc)).send().unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-99999");

    let r = patch((100_000, 249_999));
    assert_eq!(r.status(), 202);
    // The last chunk travels with the closing PUT.
    let d = sha256(&data);
    let r = c
        .put(reg.url(&format!("{loc}?digest={d}")))
        .header("Content-Range", "250000-299999")
        .body(data[250_000..].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"],
        format!("/v2/chunked/blobs/{d}").as_str()
    );
    let got = c
        .get(reg.url(&format!("/v2/chunked/blobs/{d}")))
        .send()
        .unwrap();
    assert_eq!(got.bytes().unwrap().as_ref(), &data[..]);
    // The session is over.
    let r = c.get(reg.url(&loc)).send().unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r), "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn monolithic_post_and_streamed_patch() {
    let reg = TestRegistry::start();
    let c = client();
    let data = b"monolithic blob".to_vec();
    let d = sha256(&data);
    let r = c
        .post(reg.url(&format!("/v2/mono/blobs/uploads/?digest={d}")))
        .header("Content-Type", "application/octet-stream")
        .body(data.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    let r = c
        .head(reg.url(&format!("/v2/mono/blobs/{d}")))
        .send()
        .unwrap();
    assert_eq!(
        r.headers()["content-length"],
        data.len().to_string().as_str()
    );

    // A PATCH without Content-Range (how docker streams a layer), then an empty PUT.
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    let r = c.post(reg.url("/v2/mono/blobs/uploads/")).send().unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = c.patch(reg.url(&loc)).body(big.clone()).send().unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.headers()["range"],
        format!("0-{}", big.len() - 1).as_str()
    );
    let d = sha256(&big);
    let r = c.put(reg.url(&format!("{loc}?digest={d}"))).send().unwrap();
    assert_eq!(r.status(), 201);
    assert!(reg.stored_blobs().contains(&d));
}

#[test]
fn bad_digests_are_refused_and_nothing_is_stored() {
    let reg = TestRegistry::start();
    let c = client();
    let before = reg.stored_blobs();
    let lie = sha256(b"something else");
    let r = c
        .post(reg.url(&format!("/v2/hostile/blobs/uploads/?digest={lie}")))
        .body(b"actual content".to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "DIGEST_INVALID");

    let r = c
        .post(reg.url("/v2/hostile/blobs/uploads/"))
        .send()
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = c
        .put(reg.url(&format!("{loc}?digest={lie}")))
        .body(b"chunked content".to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "DIGEST_INVALID");
    for bad in ["sha256:xyz", "md5:abcd", "sha256:..%2f..%2fetc"] {
        let r = c
            .post(reg.url(&format!("/v2/hostile/blobs/uploads/?digest={bad}")))
            .body(b"x".to_vec())
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(error_code(r), "DIGEST_INVALID", "{bad}");
        let r = c
            .get(reg.url(&format!("/v2/hostile/blobs/{bad}")))
            .send()
            .unwrap();
        assert_eq!(error_code(r), "DIGEST_INVALID", "{bad}");
    }
    assert_eq!(reg.stored_blobs(), before, "nothing entered the store");
    let uploads = std::fs::read_dir(reg.root.path().join("uploads"))
        .unwrap()
        .count();
    assert_eq!(uploads, 0, "failed uploads left nothing behind");
    let r = c
        .head(reg.url(&format!("/v2/hostile/blobs/{lie}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn cross_repository_mount_or_fallback() {
    let reg = TestRegistry::start();
    let c = client();
    let d = push_blob(&c, &reg, "team/src", b"shared layer");
    let r = c
        .post(reg.url(&format!(
            "/v2/team/dst/blobs/uploads/?mount={d}&from=team/src"
        )))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"],
        format!("/v2/team/dst/blobs/{d}").as_str()
    );
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    let r = c
        .head(reg.url(&format!("/v2/team/dst/blobs/{d}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    // From a repository that lacks it: an ordinary upload session instead.
    let r = c
        .post(reg.url(&format!(
            "/v2/team/dst2/blobs/uploads/?mount={d}&from=team/empty"
        )))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with("/v2/team/dst2/blobs/uploads/"), "{loc}");
    let r = c
        .head(reg.url(&format!("/v2/team/dst2/blobs/{d}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Follow `Link: <...>; rel="next"` pages, collecting `key` arrays.
fn all_pages(
    c: &reqwest::blocking::Client,
    reg: &TestRegistry,
    first: &str,
    key: &str,
) -> (Vec<String>, usize) {
    let mut url = first.to_string();
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let r = c.get(reg.url(&url)).send().unwrap();
        assert_eq!(r.status(), 200);
        let link = r
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        let v: Value = r.json().unwrap();
        let items: Vec<String> = v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        assert!(items.len() <= 2, "page size honoured: {items:?}");
        out.extend(items);
        pages += 1;
        match link {
            Some(l) => {
                assert!(l.ends_with("rel=\"next\""), "{l}");
                url = l[1..l.find('>').unwrap()].to_string();
            }
            None => return (out, pages),
        }
    }
}

#[test]
fn tags_and_catalog_paginate_with_link_headers() {
    let reg = TestRegistry::start();
    let c = client();
    let tags = ["v3", "latest", "v1", "a-tag", "v2"];
    for t in tags {
        push_image(&c, &reg, "pages/app", t, "same");
    }
    let (got, pages) = all_pages(&c, &reg, "/v2/pages/app/tags/list?n=2", "tags");
    let mut want: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(pages, 3);
    let v: Value = c
        .get(reg.url("/v2/pages/app/tags/list"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["name"], "pages/app");
    assert_eq!(v["tags"].as_array().unwrap().len(), 5);
    let r = c
        .get(reg.url("/v2/pages/nothing/tags/list"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r), "NAME_UNKNOWN");

    for repo in ["pages/b", "pages/a/nested", "zeta"] {
        push_blob(&c, &reg, repo, repo.as_bytes());
    }
    let (repos, _) = all_pages(&c, &reg, "/v2/_catalog?n=2", "repositories");
    assert_eq!(
        repos,
        vec!["pages/a/nested", "pages/app", "pages/b", "zeta"]
    );
}

#[test]
fn referrers_list_filter_and_follow_deletes() {
    let reg = TestRegistry::start();
    let c = client();
    let subject = push_image(&c, &reg, "refs/app", "v1", "subject");
    let subject_size = c
        .head(reg.url("/v2/refs/app/manifests/v1"))
        .send()
        .unwrap()
        .headers()["content-length"]
        .to_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    push_blob(&c, &reg, "refs/app", b"{}");
    let mut referrers = Vec::new();
    for (kind, payload) in [
        ("application/vnd.example.sig", "sig"),
        ("application/vnd.example.sbom", "sbom"),
    ] {
        push_blob(&c, &reg, "refs/app", payload.as_bytes());
        let m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": kind,
            "config": {"mediaType": EMPTY_CONFIG, "digest": sha256(b"{}"), "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": sha256(payload.as_bytes()), "size": payload.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
            "annotations": {"org.example.kind": payload},
        });
        let body = serde_json::to_vec(&m).unwrap();
        let d = sha256(&body);
        let r = put_manifest(&c, &reg, "refs/app", &d, OCI_MANIFEST, &body);
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["oci-subject"], subject.as_str());
        referrers.push((kind, d));
    }

    let r = c
        .get(reg.url(&format!("/v2/refs/app/referrers/{subject}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    let v: Value = r.json().unwrap();
    let list = v["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for (kind, d) in &referrers {
        let entry = list.iter().find(|m| m["digest"] == d.as_str()).unwrap();
        assert_eq!(entry["artifactType"], *kind);
        assert_eq!(entry["mediaType"], OCI_MANIFEST);
        assert!(entry["annotations"]["org.example.kind"].is_string());
    }

    let r = c
        .get(reg.url(&format!(
            "/v2/refs/app/referrers/{subject}?artifactType=application/vnd.example.sbom"
        )))
        .send()
        .unwrap();
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let v: Value = r.json().unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], referrers[1].1.as_str());

    let r = c
        .delete(reg.url(&format!("/v2/refs/app/manifests/{}", referrers[0].1)))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: Value = c
        .get(reg.url(&format!("/v2/refs/app/referrers/{subject}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);

    // An unknown subject has an empty list, not a 404; a bad digest is refused.
    let v: Value = c
        .get(reg.url(&format!("/v2/refs/app/referrers/{}", sha256(b"nothing"))))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["manifests"], json!([]));
    let r = c
        .get(reg.url("/v2/refs/app/referrers/sha256:zz"))
        .send()
        .unwrap();
    assert_eq!(error_code(r), "DIGEST_INVALID");
}

#[test]
fn deletes_of_tags_manifests_blobs_and_uploads() {
    let reg = TestRegistry::start();
    let c = client();
    let d = push_image(&c, &reg, "del/app", "v1", "del");
    let r = put_manifest(
        &c,
        &reg,
        "del/app",
        "v2",
        OCI_MANIFEST,
        &c.get(reg.url("/v2/del/app/manifests/v1"))
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    );
    assert_eq!(r.status(), 201);

    let r = c
        .delete(reg.url("/v2/del/app/manifests/v1"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = c.get(reg.url("/v2/del/app/manifests/v1")).send().unwrap();
    assert_eq!(error_code(r), "MANIFEST_UNKNOWN");
    let r = c
        .get(reg.url(&format!("/v2/del/app/manifests/{d}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "deleting a tag keeps the manifest");

    let r = c
        .delete(reg.url(&format!("/v2/del/app/manifests/{d}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    for reference in [d.as_str(), "v2"] {
        let r = c
            .get(reg.url(&format!("/v2/del/app/manifests/{reference}")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 404, "{reference}");
        assert_eq!(error_code(r), "MANIFEST_UNKNOWN");
    }
    let r = c
        .delete(reg.url(&format!("/v2/del/app/manifests/{d}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);

    let layer = sha256(b"layer for del");
    let r = c
        .delete(reg.url(&format!("/v2/del/app/blobs/{layer}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = c
        .head(reg.url(&format!("/v2/del/app/blobs/{layer}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .delete(reg.url(&format!("/v2/del/app/blobs/{layer}")))
        .send()
        .unwrap();
    assert_eq!(error_code(r), "BLOB_UNKNOWN");

    let r = c
        .post(reg.url("/v2/del/app/blobs/uploads/"))
        .send()
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    c.patch(reg.url(&loc))
        .body(b"partial".to_vec())
        .send()
        .unwrap();
    let r = c.delete(reg.url(&loc)).send().unwrap();
    assert_eq!(r.status(), 204);
    let r = c.get(reg.url(&loc)).send().unwrap();
    assert_eq!(error_code(r), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(
        std::fs::read_dir(reg.root.path().join("uploads"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn manifest_validation_errors() {
    let reg = TestRegistry::start();
    let c = client();
    let config = b"{\"a\":1}";
    let layer = b"some layer";
    push_blob(&c, &reg, "val/app", config);
    let before = reg.stored_blobs();

    // The layer was never pushed.
    let m = image_manifest(config, layer, None);
    let r = put_manifest(&c, &reg, "val/app", "v1", OCI_MANIFEST, &m);
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "MANIFEST_BLOB_UNKNOWN");

    let r = put_manifest(&c, &reg, "val/app", "v1", OCI_MANIFEST, b"{not json");
    assert_eq!(error_code(r), "MANIFEST_INVALID");
    let r = put_manifest(
        &c,
        &reg,
        "val/app",
        "v1",
        "application/vnd.docker.distribution.manifest.v2+json",
        &m,
    );
    assert_eq!(
        error_code(r),
        "MANIFEST_INVALID",
        "Content-Type disagrees with mediaType"
    );

    // Oversized: refused before it is read whole.
    let mut huge = m.clone();
    huge.truncate(huge.len() - 1);
    huge.extend(format!(",\"annotations\":{{\"pad\":\"{}\"}}}}", "x".repeat(5 << 20)).bytes());
    let r = put_manifest(&c, &reg, "val/app", "big", OCI_MANIFEST, &huge);
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r), "MANIFEST_INVALID");
    // The same without Content-Length (chunked): cut off at the limit while reading.
    let r = c
        .put(reg.url("/v2/val/app/manifests/big"))
        .header("Content-Type", OCI_MANIFEST)
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            huge.clone(),
        )))
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r), "MANIFEST_INVALID");

    push_blob(&c, &reg, "val/app", layer);
    let wrong = sha256(b"not this manifest");
    let r = put_manifest(&c, &reg, "val/app", &wrong, OCI_MANIFEST, &m);
    assert_eq!(error_code(r), "DIGEST_INVALID");
    let r = put_manifest(&c, &reg, "val/app", "bad:tag:x", OCI_MANIFEST, &m);
    assert_eq!(r.status(), 400);
    let r = put_manifest(&c, &reg, "val/app", ".hidden", OCI_MANIFEST, &m);
    assert_eq!(error_code(r), "TAG_INVALID");

    let mut after = reg.stored_blobs();
    after.retain(|d| *d != sha256(layer));
    assert_eq!(after, before, "no rejected manifest was stored");

    // An index needs its children in the repository.
    let r = put_manifest(&c, &reg, "val/app", "v1", OCI_MANIFEST, &m);
    assert_eq!(r.status(), 201);
    let child = |d: &str, size: usize| json!({"mediaType": OCI_MANIFEST, "digest": d, "size": size, "platform": {"os": "linux", "architecture": "amd64"}});
    let good = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child(&sha256(&m), m.len())]})).unwrap();
    let r = put_manifest(&c, &reg, "val/app", "multi", OCI_INDEX, &good);
    assert_eq!(r.status(), 201);
    let r = c
        .get(reg.url("/v2/val/app/manifests/multi"))
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    let bad = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child(&sha256(b"missing"), 7)]})).unwrap();
    let r = put_manifest(&c, &reg, "val/app", "broken", OCI_INDEX, &bad);
    assert_eq!(error_code(r), "MANIFEST_BLOB_UNKNOWN");
}

/// Send a request line as is (HTTP clients normalise `..` away); the status and the body.
fn raw_request(reg: &TestRegistry, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(reg.addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        reg.host()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn path_traversal_and_invalid_names_are_refused() {
    let reg = TestRegistry::start();
    // The names these paths would create beside the root (or above it) if they escaped. Only
    // those are compared: other tests create their own entries in the same /tmp meanwhile.
    let outside = reg.root.path().parent().unwrap().to_path_buf();
    let escapes = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        [
            "etc",
            "tmp",
            "x",
            "y",
            "Upper",
            "a",
            "_layers",
            "manifests",
            "blobs",
            "tags",
        ]
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.exists())
        .collect()
    };
    let before = escapes(&outside);
    let root_before = escapes(reg.root.path());
    for path in [
        "/v2/../../etc/manifests/latest",
        "/v2/a/../../../tmp/x/manifests/latest",
        "/v2/%2e%2e/%2e%2e/x/manifests/latest",
        "/v2/Upper/manifests/latest",
        "/v2/a//b/manifests/latest",
        "/v2/_layers/manifests/latest",
        "/v2/../x/blobs/uploads/",
        "/v2/x/../../y/tags/list",
    ] {
        for method in ["GET", "PUT", "POST", "DELETE"] {
            let (status, body) = raw_request(&reg, method, path);
            assert_eq!(status, 400, "{method} {path}");
            assert!(body.contains("NAME_INVALID"), "{method} {path}: {body}");
        }
    }
    assert_eq!(escapes(&outside), before, "nothing created beside the root");
    assert_eq!(
        escapes(reg.root.path()),
        root_before,
        "nothing created in the root itself"
    );
    assert_eq!(
        std::fs::read_dir(reg.root.path().join("repos"))
            .unwrap()
            .count(),
        0,
        "no repository directory was created"
    );
    // Bad upload ids are unknown, not paths.
    let r = client()
        .get(reg.url("/v2/x/blobs/uploads/..%2f..%2fcontent"))
        .send()
        .unwrap();
    assert_eq!(error_code(r), "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn upload_survives_a_server_restart() {
    let reg = TestRegistry::start();
    let c = client();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 249) as u8).collect();
    let r = c
        .post(reg.url("/v2/restart/blobs/uploads/"))
        .send()
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = c
        .patch(reg.url(&loc))
        .header("Content-Range", "0-59999")
        .body(data[..60_000].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let root = reg.stop();

    let reg = TestRegistry::at(root, berth_registry::AuthConfig::None, None);
    let r = c.get(reg.url(&loc)).send().unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-59999");
    let d = sha256(&data);
    let r = c
        .put(reg.url(&format!("{loc}?digest={d}")))
        .header("Content-Range", "60000-99999")
        .body(data[60_000..].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = c
        .get(reg.url(&format!("/v2/restart/blobs/{d}")))
        .send()
        .unwrap();
    assert_eq!(got.bytes().unwrap().as_ref(), &data[..]);
}

#[test]
fn gc_removes_only_unreferenced_blobs() {
    let reg = TestRegistry::start();
    let c = client();
    let kept = push_image(&c, &reg, "gc/keep", "v1", "kept");
    let gone = push_image(&c, &reg, "gc/drop", "v1", "dropped");
    let orphan = push_blob(&c, &reg, "gc/keep", b"never referenced");
    // The same layer in a second repo, referenced only there by a manifest we delete.
    let r = c
        .delete(reg.url(&format!("/v2/gc/drop/manifests/{gone}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let busy = berth_registry::gc(reg.root.path());
    assert!(
        matches!(busy, Err(berth_registry::Error::Busy(_))),
        "gc refuses to run under a live server: {busy:?}"
    );
    assert_eq!(reg.stored_blobs().len(), 7, "and removed nothing");
    let root = reg.stop();

    let report = berth_registry::gc(root.path()).unwrap();
    let removed: Vec<String> = report.removed_blobs.iter().map(|d| d.to_string()).collect();
    let dropped = [
        gone.clone(),
        orphan.clone(),
        sha256(br#"{"seed":"dropped"}"#),
        sha256(b"layer for dropped"),
    ];
    let mut want = dropped.to_vec();
    want.sort();
    let mut removed_sorted = removed.clone();
    removed_sorted.sort();
    assert_eq!(removed_sorted, want);
    let left = blobs_under(root.path());
    for d in [
        &kept,
        &sha256(br#"{"seed":"kept"}"#),
        &sha256(b"layer for kept"),
    ] {
        assert!(left.contains(d), "{d} kept");
    }
    assert_eq!(left.len(), 3);
    // Second run: nothing more to do.
    assert!(berth_registry::gc(root.path())
        .unwrap()
        .removed_blobs
        .is_empty());

    let reg = TestRegistry::at(root, berth_registry::AuthConfig::None, None);
    let r = c.get(reg.url("/v2/gc/keep/manifests/v1")).send().unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .head(reg.url(&format!("/v2/gc/keep/blobs/{orphan}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404, "the dangling link went with the blob");
}

#[test]
fn sha512_blobs_and_manifests() {
    use sha2::{Digest as _, Sha512};
    let reg = TestRegistry::start();
    let c = client();
    let data = b"sha512 content".to_vec();
    let d = format!("sha512:{}", hex::encode(Sha512::digest(&data)));
    let r = c.post(reg.url("/v2/s512/blobs/uploads/")).send().unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = c.patch(reg.url(&loc)).body(data.clone()).send().unwrap();
    assert_eq!(r.status(), 202);
    let r = c.put(reg.url(&format!("{loc}?digest={d}"))).send().unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .get(reg.url(&format!("/v2/s512/blobs/{d}")))
        .send()
        .unwrap();
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    assert_eq!(r.bytes().unwrap().as_ref(), &data[..]);
    assert!(reg
        .root
        .path()
        .join("content/blobs/sha512")
        .join(&d["sha512:".len()..])
        .is_file());
}

#[test]
fn binary_serves_and_collects() {
    use std::io::BufRead;
    let root = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth-registry"))
        .args(["serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(root.path())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Keep reading the log (a closed pipe would fail the server's later writes).
    let logger = std::thread::spawn(move || {
        let mut log = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some(i) = line.find("addr=") {
                let _ = tx.send(line[i + 5..].split_whitespace().next().unwrap().to_string());
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let addr = rx.recv().expect("the server logs its address");
    let r = client().get(format!("http://{addr}/v2/")).send().unwrap();
    let served = r.status();
    // SIGTERM: a clean shutdown.
    unsafe { libc_kill(child.id() as i32, 15) };
    let status = child.wait().unwrap();
    let log = logger.join().unwrap();
    assert_eq!(served, 200);
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("shutting down"), "{log}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth-registry"))
        .args(["gc", "--root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 0 blobs"));
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn concurrent_chunks_are_serialised() {
    let reg = TestRegistry::start();
    let c = client();
    let r = c.post(reg.url("/v2/race/blobs/uploads/")).send().unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let data = vec![7u8; 1 << 20];
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    client()
                        .patch(reg.url(&loc))
                        .header("Content-Range", format!("0-{}", data.len() - 1))
                        .body(data.clone())
                        .send()
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![202, 416, 416, 416],
        "one chunk wins: {statuses:?}"
    );
    let r = c.get(reg.url(&loc)).send().unwrap();
    assert_eq!(
        r.headers()["range"],
        format!("0-{}", data.len() - 1).as_str()
    );

    // The same blob pushed to two repositories at once: both succeed, one copy stored.
    let blob = b"pushed twice at once".to_vec();
    std::thread::scope(|s| {
        for repo in ["race/a", "race/b"] {
            let (reg, blob) = (&reg, &blob);
            s.spawn(move || push_blob(&client(), reg, repo, blob));
        }
    });
    let d = sha256(&blob);
    for repo in ["race/a", "race/b"] {
        let r = c
            .head(reg.url(&format!("/v2/{repo}/blobs/{d}")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}
