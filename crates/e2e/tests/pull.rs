//! `docker run` of an image the daemon does not have: 404 → pull from a registry → run.
//! A local registry (Debian's docker-registry) is filled with skopeo.

use std::process::{Child, Command, Stdio};

use berth_e2e::{busybox_tar, prerequisites, unique, Daemon};
use berth_testsupport::{require, which};

struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Debian's docker-registry on a free port, with basic auth when `user` is given.
fn start_registry(dir: &std::path::Path, user: Option<(&str, &str)>) -> (Registry, u16) {
    std::fs::create_dir_all(dir).expect("dir");
    let port = free_port();
    let auth = match user {
        Some((u, p)) => {
            let htpasswd = dir.join("htpasswd");
            let hash = bcrypt::hash(p, 4).expect("bcrypt");
            std::fs::write(&htpasswd, format!("{u}:{hash}\n")).expect("htpasswd");
            format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                htpasswd.display()
            )
        }
        None => String::new(),
    };
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.join("data").display()
        ),
    )
    .expect("config");
    let registry = Registry(
        Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry"),
    );
    berth_e2e::eventually("the registry to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    (registry, port)
}

/// An anonymous registry for `d` and the busybox test archive to copy into it:
/// (registry, its port, the archive).
fn registry_and_busybox(d: &Daemon) -> (Registry, u16, std::path::PathBuf) {
    let (registry, port) = start_registry(&d.root.path().join("registry"), None);
    let tar = d.root.path().join("bb.tar");
    busybox_tar(&tar, "busybox:latest");
    (registry, port, tar)
}

/// Copy the archive `tar` into the registry as `image` with skopeo (`extra`: more flags).
fn push_archive(tar: &std::path::Path, image: &str, extra: &[&str]) {
    let st = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .args(extra)
        .arg(format!("docker-archive:{}", tar.display()))
        .arg(format!("docker://{image}"))
        .status()
        .expect("skopeo");
    assert!(st.success(), "skopeo copy into the registry as {image}");
}

fn registry_tools() -> bool {
    require(
        which("docker-registry").is_some(),
        "docker-registry (Debian package)",
    ) && require(which("skopeo").is_some(), "skopeo")
}

/// One request over the daemon's socket carrying `X-Registry-Auth`; the status code.
fn status_with_auth(d: &Daemon, method: &str, path: &str, user: &str, password: &str) -> u16 {
    use std::io::{Read, Write};
    let auth = serde_json::json!({"username": user, "password": password}).to_string();
    let auth = base64_url(auth.as_bytes());
    let socket = &d.socket;
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nX-Registry-Auth: {auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("write request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// base64url without padding, as the docker CLI encodes X-Registry-Auth.
fn base64_url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn refused_credentials_answer_401_and_anonymous_pulls_404() {
    if !prerequisites() || !registry_tools() {
        return;
    }
    let d = Daemon::start();
    let (_registry, port) =
        start_registry(&d.root.path().join("registry"), Some(("alice", "s3cret")));
    let tar = d.root.path().join("bb.tar");
    busybox_tar(&tar, "busybox:latest");
    let image = format!("127.0.0.1:{port}/berth/locked:v1");
    push_archive(&tar, &image, &["--dest-creds", "alice:s3cret"]);

    let create = format!("/images/create?fromImage=127.0.0.1:{port}/berth/locked&tag=v1");
    let inspect = format!("/distribution/{image}/json");
    assert_eq!(
        status_with_auth(&d, "POST", &create, "alice", "wrong"),
        401,
        "{}",
        d.log()
    );
    assert_eq!(status_with_auth(&d, "GET", &inspect, "alice", "wrong"), 401);
    // Without credentials it is Docker's "pull access denied" (404).
    let socket = &d.socket;
    let (status, body) = berth_e2e::raw_request(socket, "POST", &create, "");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("pull access denied"), "{body}");
    // The right password pulls, and the docker CLI shows the refusal as Docker's message.
    assert_eq!(
        status_with_auth(&d, "GET", &inspect, "alice", "s3cret"),
        200
    );
    assert_eq!(
        status_with_auth(&d, "POST", &create, "alice", "s3cret"),
        200
    );
    d.docker_ok(&["image", "inspect", &image]);
}

#[test]
fn run_pulls_a_missing_image() {
    if !prerequisites() || !registry_tools() {
        return;
    }
    let d = Daemon::start();
    let (_registry, port, tar) = registry_and_busybox(&d);
    let repo = unique("pulltest");
    let image = format!("127.0.0.1:{port}/berth/{repo}:v1");
    push_archive(&tar, &image, &[]);

    let o = d.docker(&["run", "--rm", &image, "echo", "pulled"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "pulled\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("Downloaded newer image"));
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        images
            .lines()
            .any(|l| l == format!("127.0.0.1:{port}/berth/{repo}:v1")),
        "{images}"
    );
    // berth's own run pulls the same way.
    d.docker_ok(&["rmi", &image]);
    let o = d
        .berth_cmd(&["run", "--rm", &image, "echo", "via berth"])
        .output()
        .expect("berth");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "via berth\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let missing = d.docker(&["pull", &format!("127.0.0.1:{port}/berth/nosuch:v1")]);
    assert!(!missing.status.success());
}

#[test]
fn pull_all_tags_pulls_every_tag_of_the_repository() {
    if !prerequisites() || !registry_tools() {
        return;
    }
    let d = Daemon::start();
    let (_registry, port, tar) = registry_and_busybox(&d);
    let repo = format!("127.0.0.1:{port}/berth/alltags");
    for tag in ["v1", "v2", "latest"] {
        push_archive(&tar, &format!("{repo}:{tag}"), &[]);
    }
    let o = d.berth_cmd(&["pull", "-a", &repo]).output().expect("berth");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for tag in ["v1", "v2", "latest"] {
        assert!(
            images.lines().any(|l| l == format!("{repo}:{tag}")),
            "{tag} missing: {images}"
        );
    }
    // A tag with --all-tags is refused; the docker CLI's --all-tags takes the same path.
    let o = d
        .berth_cmd(&["pull", "-a", &format!("{repo}:v1")])
        .output()
        .expect("berth");
    assert!(!o.status.success());
    let out = d.docker_ok(&["pull", "--all-tags", &repo]);
    assert!(out.contains("Image is up to date"), "{out}");
}

#[test]
fn run_pull_always_refreshes_and_missing_keeps_the_local_image() {
    if !prerequisites() || !registry_tools() {
        return;
    }
    let d = Daemon::start();
    let (_registry, port, tar) = registry_and_busybox(&d);
    let image = format!("127.0.0.1:{port}/berth/{}:v1", unique("pullpolicy"));
    push_archive(&tar, &image, &[]);
    // A local image of that name that differs from the registry's: a marker file.
    d.docker_ok(&["pull", &image]);
    let name = unique("marker");
    d.docker_ok(&["run", "--name", &name, &image, "touch", "/marker"]);
    d.docker_ok(&["commit", &name, &image]);
    let berth = |args: &[&str]| {
        let o = d.berth_cmd(args).output().expect("berth");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // missing (the default) and never use the local image.
    for policy in ["missing", "never"] {
        let (code, _, err) = berth(&[
            "run", "--rm", "--pull", policy, &image, "test", "-e", "/marker",
        ]);
        assert_eq!(code, Some(0), "--pull {policy}: {err}");
    }
    // always pulls first: the registry's image has no marker.
    let (code, _, err) = berth(&[
        "run", "--rm", "--pull", "always", &image, "test", "-e", "/marker",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("Downloaded newer image") || err.contains("Pull complete"),
        "{err}"
    );
    // The docker CLI's --pull always asks the daemon to pull too.
    d.docker_ok(&["commit", &name, &image]);
    let o = d.docker(&[
        "run", "--rm", "--pull", "always", &image, "test", "-e", "/marker",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The layers of a loaded image are unpacked already, but the registry serves them compressed
/// another way (zstd here, gzip in the loaded archive): the pull fetches the missing blobs
/// without unpacking again, and the image is whole (save needs every blob).
#[test]
fn pull_over_loaded_layers_fetches_the_registry_blobs() {
    if !prerequisites() || !registry_tools() {
        return;
    }
    let d = Daemon::start();
    let (_registry, port, tar) = registry_and_busybox(&d);
    let image = format!("127.0.0.1:{port}/berth/{}:v1", unique("reloaded"));
    push_archive(
        &tar,
        &image,
        &["--dest-compress", "--dest-compress-format", "zstd"],
    );
    d.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    let out = d.docker_ok(&["pull", &image]);
    assert!(out.contains("Already exists"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {image}")),
        "{out}"
    );
    let saved = d.root.path().join("saved.tar");
    d.docker_ok(&["save", "-o", saved.to_str().unwrap(), &image]);
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&saved)
        .output()
        .expect("tar");
    assert!(listing.status.success());
    assert!(!listing.stdout.is_empty());
    let out = d.docker_ok(&["run", "--rm", &image, "echo", "ran"]);
    assert_eq!(out.trim(), "ran");
}
