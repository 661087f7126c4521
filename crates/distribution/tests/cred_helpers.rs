//! Docker credential helpers (`credsStore`, `credHelpers`): a tiny shell script speaking the
//! helper protocol stands in for docker-credential-pass & co; login stores through it and a pull
//! from Debian's docker-registry (htpasswd) authenticates with what it returns.
//! One test in this binary: it sets PATH for the whole process.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_distribution::auth::Credential;
use berth_distribution::{DockerConfig, Error, PullOptions, Reference};
use common::image::{image, layer_from_files, write_oci_layout};
use common::registry::{oci_dir_arg, skopeo_copy, tools_present, Registry};
use common::*;

/// `docker-credential-<name>` keeping one JSON file per server URL in `store`, and logging
/// each call ("action input") to `store/calls`.
fn fake_helper(bin: &Path, name: &str, store: &Path) {
    fs::create_dir_all(store).unwrap();
    let script = format!(
        r#"#!/bin/sh
set -u
store='{store}'
input=$(cat)
echo "$1 $input" >>"$store/calls"
key() {{ printf '%s' "$1" | tr -c 'A-Za-z0-9.' '_'; }}
case "$1" in
  get)
    f="$store/$(key "$input")"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store)
    url=$(printf '%s' "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
    printf '%s' "$input" >"$store/$(key "$url")" ;;
  erase)
    f="$store/$(key "$input")"
    if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) echo "unknown action $1" >&2; exit 2 ;;
esac
"#,
        store = store.display()
    );
    let path = bin.join(format!("docker-credential-{name}"));
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_helpers_store_get_erase_and_authenticate_pulls() {
    if !berth_testsupport::require_root!() || !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let (all_store, one_store) = (dir.path().join("all"), dir.path().join("one"));
    fake_helper(&bin, "berthtest", &all_store);
    fake_helper(&bin, "berthone", &one_store);
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{path}", bin.display()));

    let reg = Registry::start(Some(("alice", "s3cret")));
    let img = image(vec![layer_from_files(&[("etc/helped", b"yes")])], "amd64");
    let layout = tempfile::tempdir().unwrap();
    write_oci_layout(&img, layout.path(), "t");
    skopeo_copy(
        &oci_dir_arg(layout.path(), "t"),
        &format!("docker://{}/private/helped:1", reg.addr),
        Some("alice:s3cret"),
        false,
    );

    // credsStore for every registry: login stores through the helper, not in the file.
    let cfg_path = dir.path().join("docker/config.json");
    fs::create_dir_all(cfg_path.parent().unwrap()).unwrap();
    fs::write(&cfg_path, r#"{"credsStore":"berthtest","psFormat":"keep"}"#).unwrap();
    let cfg = DockerConfig::at(&cfg_path);
    let s = stores();
    let c = client(Some(cfg.clone()), s.dir.path());
    assert!(cfg.get(&reg.addr).unwrap().is_none(), "nothing stored yet");
    c.login(&reg.addr, &Credential::basic("alice", "s3cret"))
        .await
        .unwrap();
    let text = fs::read_to_string(&cfg_path).unwrap();
    assert!(
        !text.contains("s3cret") && !text.contains("YWxpY2U6czNjcmV0"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["auths"][&reg.addr], serde_json::json!({}), "{text}");
    assert_eq!(v["psFormat"], "keep");
    let calls = fs::read_to_string(all_store.join("calls")).unwrap();
    let stored = calls
        .lines()
        .find_map(|l| l.strip_prefix("store "))
        .unwrap_or_else(|| panic!("no store call: {calls}"));
    let stored: serde_json::Value = serde_json::from_str(stored).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"ServerURL": reg.addr, "Username": "alice", "Secret": "s3cret"})
    );
    let got = cfg.get(&reg.addr).unwrap().unwrap();
    assert_eq!(
        (got.username.as_str(), got.password.as_str()),
        ("alice", "s3cret")
    );

    // A pull authenticates with what the helper returns.
    let reference = Reference::parse(&format!("{}/private/helped:1", reg.addr)).unwrap();
    let p = puller(client(Some(cfg.clone()), s.dir.path()), &s);
    let pulled = p
        .pull(
            &reference,
            &PullOptions::default(),
            berth_distribution::progress::no_progress(),
        )
        .await
        .unwrap();
    assert_eq!(pulled.digest, img.manifest);

    // credHelpers wins over credsStore for its registry; its wrong password is refused.
    fs::write(
        one_store.join(reg.addr.replace(':', "_")),
        format!(
            r#"{{"ServerURL":"{}","Username":"alice","Secret":"wrong"}}"#,
            reg.addr
        ),
    )
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    v["credHelpers"] = serde_json::json!({ reg.addr.clone(): "berthone" });
    fs::write(&cfg_path, v.to_string()).unwrap();
    let s2 = stores();
    let p = puller(client(Some(cfg.clone()), s2.dir.path()), &s2);
    let err = p
        .pull(
            &reference,
            &PullOptions::default(),
            berth_distribution::progress::no_progress(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(fs::read_to_string(one_store.join("calls"))
        .unwrap()
        .contains(&format!("get {}", reg.addr)));

    // erase goes to the helper in charge; a second erase finds nothing.
    assert!(cfg.erase(&reg.addr).unwrap());
    assert!(cfg.get(&reg.addr).unwrap().is_none());
    v["credHelpers"] = serde_json::json!({});
    fs::write(&cfg_path, v.to_string()).unwrap();
    assert!(cfg.erase(&reg.addr).unwrap(), "credsStore still had it");
    assert!(!cfg.erase(&reg.addr).unwrap());

    // A helper that is not installed, or a name that is a path, is a clear error.
    fs::write(&cfg_path, r#"{"credsStore":"not-installed-here"}"#).unwrap();
    let e = cfg.get(&reg.addr).unwrap_err().to_string();
    assert!(e.contains("docker-credential-not-installed-here"), "{e}");
    fs::write(&cfg_path, r#"{"credsStore":"../../bin/sh"}"#).unwrap();
    let e = cfg.get(&reg.addr).unwrap_err().to_string();
    assert!(e.contains("not a plain name"), "{e}");
}
