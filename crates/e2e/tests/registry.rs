//! Registries through berthd: the stock docker CLI and berth pulling from Debian's
//! docker-registry (images pushed there by skopeo) and from `berth registry serve`, pushing,
//! logging in, mirrors, and failures that must leave nothing behind. Loopback only.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::{bin, ensure_built, raw_request, tail, Daemon};
use berth_testsupport::oci_archive::{self, ImageInfo};

fn prerequisites() -> bool {
    berth_e2e::prerequisites()
        && berth_testsupport::require(
            ["docker-registry", "skopeo", "script"]
                .iter()
                .all(|t| berth_testsupport::which(t).is_some()),
            "docker-registry, skopeo and script (apt-get install docker-registry skopeo bsdutils)",
        )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(addr: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "{addr} never answered: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Debian's docker-registry on a free loopback port; killed on drop.
struct DockerRegistry {
    _dir: tempfile::TempDir,
    addr: String,
    child: Child,
}

impl DockerRegistry {
    fn start() -> DockerRegistry {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-registry-")
            .tempdir()
            .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        wait_for_port(&addr, &log);
        DockerRegistry {
            _dir: dir,
            addr,
            child,
        }
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `berth registry serve` on port 0; the address comes from its first line.
struct BerthRegistry {
    _dir: tempfile::TempDir,
    addr: String,
    child: Child,
}

impl BerthRegistry {
    /// With `user`, basic auth against a bcrypt htpasswd holding (user, password).
    fn start(user: Option<(&str, &str)>) -> BerthRegistry {
        BerthRegistry::start_with(user, |_| Vec::new())
    }

    /// `extra` gives more flags, given the registry's own directory.
    fn start_with(
        user: Option<(&str, &str)>,
        extra: impl FnOnce(&Path) -> Vec<String>,
    ) -> BerthRegistry {
        // Another test of this binary may be relinking `berth` right now: wait for that build.
        ensure_built();
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-breg-")
            .tempdir()
            .unwrap();
        let mut cmd = Command::new(bin("berth"));
        cmd.args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(dir.path().join("root"));
        if let Some((u, p)) = user {
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap())).unwrap();
            cmd.arg("--htpasswd").arg(path);
        }
        cmd.args(extra(dir.path()));
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .rsplit("://")
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(
            first.starts_with("registry listening on http"),
            "berth registry serve said {first:?}: {}",
            std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
        );
        BerthRegistry {
            _dir: dir,
            addr,
            child,
        }
    }
}

impl Drop for BerthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The busybox test image as an OCI layout (ref "t").
fn busybox_layout(dir: &Path) -> ImageInfo {
    let rootfs = tempfile::tempdir().unwrap();
    berth_testsupport::busybox_rootfs(rootfs.path()).unwrap();
    oci_archive::busybox_image(rootfs.path())
        .write_layout(dir, Some("berth-test/busybox:t"))
        .unwrap()
}

fn skopeo_copy(src: &str, dst: &str) {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            src,
            dst,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy {src} {dst}: {}",
        text(&out.stderr)
    );
}

/// Push the busybox image to `dest` (registry/repo:tag) with skopeo.
fn push_busybox(dest: &str) -> ImageInfo {
    let layout = tempfile::tempdir().unwrap();
    let info = busybox_layout(layout.path());
    skopeo_copy(
        &format!("oci:{}:t", layout.path().display()),
        &format!("docker://{dest}"),
    );
    info
}

fn assert_ok(o: &Output, what: &str, d: &Daemon) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}\n--- berthd log tail:\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr),
        tail(&d.log(), 40)
    );
    text(&o.stdout)
}

fn docker_config_dir(d: &Daemon) -> PathBuf {
    d.root.path().join("docker-config")
}

/// berth with docker's config.json in `config_dir`.
fn berth(d: &Daemon, config_dir: &Path, args: &[&str]) -> Output {
    d.berth_cmd(args)
        .env("DOCKER_CONFIG", config_dir)
        .output()
        .unwrap()
}

#[test]
fn docker_pull_draws_progress_then_runs_the_image() {
    if !prerequisites() {
        return;
    }
    let reg = DockerRegistry::start();
    let image = format!("{}/test/busybox:1", reg.addr);
    let info = push_busybox(&image);
    let d = Daemon::start();

    // On a terminal (script gives docker one) the CLI draws bars from progressDetail.
    let started = Instant::now();
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("stty cols 200 rows 50; docker pull {image}"),
            "/dev/null",
        ])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", docker_config_dir(&d))
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let first_pull = started.elapsed();
    let screen = assert_ok(&out, "docker pull (tty)", &d);
    for want in [
        "1: Pulling from test/busybox",
        "Downloading",
        "=>]",
        "Pull complete",
        &format!("Digest: {}", info.manifest_digest),
        &format!("Status: Downloaded newer image for {image}"),
    ] {
        assert!(screen.contains(want), "no {want:?} in:\n{screen}");
    }

    let started = Instant::now();
    let again = d.docker_ok(&["pull", &image]);
    let second_pull = started.elapsed();
    assert!(again.contains("Already exists"), "{again}");
    assert!(
        again.contains(&format!("Status: Image is up to date for {image}")),
        "{again}"
    );
    eprintln!("TIMING docker pull busybox (1 layer, ~1 MB) through berthd: first {first_pull:?}, up to date {second_pull:?}");

    // Each pull is an image event, as in Docker.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .to_string();
    let events = d.docker_ok(&[
        "events",
        "--since",
        "1",
        "--until",
        &now,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    assert_eq!(
        events
            .lines()
            .filter(|l| *l == format!("pull {image}"))
            .count(),
        2,
        "events: {events}"
    );
    let out = d.docker(&["run", "--rm", &image, "echo", "pulled-ok"]);
    assert_eq!(text(&out.stdout), "pulled-ok\n", "{}", text(&out.stderr));
    let digests = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &image,
    ]);
    assert!(
        digests.contains(&format!(
            "{}/test/busybox@{}",
            reg.addr, info.manifest_digest
        )),
        "RepoDigests: {digests}"
    );
    let layers = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        &image,
    ]);
    let layers: Vec<String> = serde_json::from_str(&layers).unwrap();
    assert_eq!(layers, info.diff_ids);
    // The daemon asks the registry without pulling.
    let (status, body) = raw_request(&d.socket, "GET", &format!("/distribution/{image}/json"), "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Descriptor"]["digest"], info.manifest_digest.as_str());
    assert_eq!(v["Platforms"][0]["os"], "linux");
    // The image is also reachable by its repository digest.
    let by_digest = format!("{}/test/busybox@{}", reg.addr, info.manifest_digest);
    let out = d.docker(&["run", "--rm", &by_digest, "echo", "by-digest"]);
    assert_eq!(text(&out.stdout), "by-digest\n", "{}", text(&out.stderr));
}

#[test]
fn docker_run_pulls_an_image_it_does_not_have() {
    if !prerequisites() {
        return;
    }
    let reg = DockerRegistry::start();
    let image = format!("{}/test/auto:2", reg.addr);
    push_busybox(&image);
    let d = Daemon::start();
    let out = d.docker(&["run", "--rm", &image, "echo", "auto-pulled"]);
    assert_eq!(
        text(&out.stdout),
        "auto-pulled\n",
        "stderr: {}\n{}",
        text(&out.stderr),
        tail(&d.log(), 30)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("Unable to find image '{image}' locally")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("Status: Downloaded newer image for {image}")),
        "{stderr}"
    );
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l == image), "images: {images}");

    // berth run does the same.
    let image2 = format!("{}/test/auto:3", reg.addr);
    push_busybox(&image2);
    let out = d
        .berth_cmd(&["run", "--rm", &image2, "echo", "berth-auto"])
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout).lines().last(),
        Some("berth-auto"),
        "{}",
        text(&out.stderr)
    );
}

/// Layer and config digests of the manifest skopeo copied into an OCI layout.
fn layout_digests(dir: &Path) -> (String, String, Vec<String>) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&manifest_digest)).unwrap()).unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    (
        manifest_digest,
        manifest["config"]["digest"].as_str().unwrap().to_string(),
        layers,
    )
}

#[test]
fn berth_push_to_berth_registry_then_skopeo_and_berth_pull_it_back() {
    if !prerequisites() {
        return;
    }
    let breg = BerthRegistry::start(None);
    let d = Daemon::start();
    let tar = d.root.path().join("busybox.tar");
    let info = oci_archive::write_busybox_oci_tar(&tar, "busybox:latest").unwrap();
    d.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    let image = format!("{}/mine/busybox:v1", breg.addr);
    d.docker_ok(&["tag", "busybox:latest", &image]);
    let none = d.root.path().join("no-logins");

    let out = berth(&d, &none, &["push", &image]);
    let pushed = assert_ok(&out, "berth push", &d);
    assert!(
        pushed.contains(&format!("v1: digest: {}", info.manifest_digest)),
        "{pushed}"
    );

    // skopeo reads back exactly what we had.
    let back = tempfile::tempdir().unwrap();
    skopeo_copy(
        &format!("docker://{image}"),
        &format!("oci:{}:t", back.path().display()),
    );
    let (manifest, config, layers) = layout_digests(back.path());
    assert_eq!(manifest, info.manifest_digest);
    assert_eq!(config, info.config_digest);
    assert_eq!(layers, info.layer_digests);

    podman_pulls_the_same_image(&image, &info);

    // --all-tags pushes every local tag of the repository.
    let repo = format!("{}/many/busybox", breg.addr);
    for t in ["a", "b"] {
        d.docker_ok(&["tag", "busybox:latest", &format!("{repo}:{t}")]);
    }
    let out = assert_ok(
        &berth(&d, &none, &["push", "-a", &repo]),
        "berth push -a",
        &d,
    );
    for t in ["a", "b"] {
        assert!(
            out.contains(&format!("{t}: digest: {}", info.manifest_digest)),
            "{out}"
        );
    }
    // Without a tag (and without -a) it is "latest", which this repository lacks.
    let out = berth(&d, &none, &["push", &repo]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("An image does not exist locally with the tag"),
        "{}",
        text(&out.stderr)
    );

    // A second push finds every blob there.
    let again = assert_ok(&berth(&d, &none, &["push", &image]), "berth push again", &d);
    assert!(again.contains("Layer already exists"), "{again}");
    // docker push through berthd: another repository of the same registry mounts the blobs.
    let other = format!("{}/theirs/busybox:v2", breg.addr);
    d.docker_ok(&["tag", "busybox:latest", &other]);
    let out = d.docker_ok(&["push", &other]);
    assert!(out.contains("Mounted from "), "{out}");
    assert!(
        out.contains(&format!("v2: digest: {}", info.manifest_digest)),
        "{out}"
    );

    // A fresh daemon pulls it with berth, then runs it.
    let d2 = Daemon::start();
    // On a terminal berth draws indicatif bars (one line per layer, redrawn in place).
    let tty_image = format!("{}/mine/busybox:tty", breg.addr);
    d.docker_ok(&["tag", "busybox:latest", &tty_image]);
    assert_ok(&berth(&d, &none, &["push", &tty_image]), "berth push", &d);
    let out = Command::new("script")
        .args([
            "-qec",
            &format!(
                "stty cols 160 rows 40; {} pull {tty_image}",
                bin("berth").display()
            ),
            "/dev/null",
        ])
        .env("BERTH_HOST", d2.host())
        .env("DOCKER_CONFIG", &none)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let screen = assert_ok(&out, "berth pull (tty)", &d2);
    assert!(screen.contains("Pull complete"), "{screen}");
    assert!(screen.contains("\x1b["), "no terminal redraws: {screen:?}");
    assert!(
        screen.contains(&format!("Status: Downloaded newer image for {tty_image}")),
        "{screen}"
    );
    let started = Instant::now();
    let out = berth(&d2, &none, &["pull", &image]);
    let took = started.elapsed();
    let pulled = assert_ok(&out, "berth pull", &d2);
    // The tty pull above fetched the layer already.
    assert!(pulled.contains("Already exists"), "{pulled}");
    assert!(pulled.trim_end().ends_with(&image), "{pulled}");
    eprintln!("TIMING berth pull from berth registry, layer already unpacked: {took:?}");
    let out = d2
        .berth_cmd(&["run", "--rm", &image, "echo", "round-trip"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "round-trip\n", "{}", text(&out.stderr));
    let inspect = d2.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(inspect.trim(), info.config_digest);
}

#[test]
fn login_with_htpasswd_then_push_and_pull_with_stored_credentials() {
    if !prerequisites() {
        return;
    }
    let breg = BerthRegistry::start(Some(("alice", "s3cret")));
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let image = format!("{}/private/busybox:1", breg.addr);
    d.docker_ok(&["tag", "busybox:latest", &image]);
    let none = d.root.path().join("no-logins");
    let logins = docker_config_dir(&d);

    let out = berth(&d, &none, &["push", &image]);
    assert!(!out.status.success(), "push without a login worked");
    assert!(
        text(&out.stderr).contains("unauthorized"),
        "{}",
        text(&out.stderr)
    );

    let login = |password: &str| {
        let mut child = d
            .docker_cmd(&["login", "-u", "alice", "--password-stdin", &breg.addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = login("wrong");
    assert!(!out.status.success(), "a wrong password logged in");
    assert!(
        text(&out.stderr).contains("incorrect username or password"),
        "{}",
        text(&out.stderr)
    );
    let out = login("s3cret");
    assert!(
        text(&out.stdout).contains("Login Succeeded"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let config = std::fs::read_to_string(logins.join("config.json")).unwrap();
    assert!(config.contains(&breg.addr), "{config}");

    assert_ok(
        &berth(&d, &logins, &["push", &image]),
        "berth push with login",
        &d,
    );

    let d2 = Daemon::start();
    let out = berth(&d2, &none, &["pull", &image]);
    assert!(!out.status.success(), "pull without a login worked");
    assert!(
        text(&out.stderr).contains("pull access denied"),
        "{}",
        text(&out.stderr)
    );
    assert_ok(
        &berth(&d2, &logins, &["pull", &image]),
        "berth pull with login",
        &d2,
    );
    // The docker CLI sends the same login as X-Registry-Auth.
    d2.docker_ok(&["rmi", &image]);
    let out = d2
        .docker_cmd(&["pull", &image])
        .env("DOCKER_CONFIG", &logins)
        .output()
        .unwrap();
    assert_ok(&out, "docker pull with login", &d2);

    // berth login/logout write the same file.
    let own = d.root.path().join("berth-logins");
    let out = berth(&d, &own, &["logout", &breg.addr]);
    assert!(
        text(&out.stdout).contains("Not logged in"),
        "{}",
        text(&out.stdout)
    );
    let mut child = d
        .berth_cmd(&["login", "-u", "alice", "--password-stdin", &breg.addr])
        .env("DOCKER_CONFIG", &own)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        text(&out.stdout).contains("Login Succeeded"),
        "{}",
        text(&out.stderr)
    );
    let config = std::fs::read_to_string(own.join("config.json")).unwrap();
    assert!(config.contains(&breg.addr), "{config}");
    let out = berth(&d, &own, &["logout", &breg.addr]);
    assert!(
        text(&out.stdout).contains("Removing login credentials"),
        "{}",
        text(&out.stdout)
    );
    let config = std::fs::read_to_string(own.join("config.json")).unwrap();
    assert!(!config.contains(&breg.addr), "{config}");
}

#[test]
fn bad_names_and_unknown_tags_fail_clearly_and_leave_nothing() {
    if !prerequisites() {
        return;
    }
    let reg = DockerRegistry::start();
    push_busybox(&format!("{}/test/busybox:1", reg.addr));
    let d = Daemon::start();

    let out = d.docker(&["pull", "Bad_Name:1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("invalid reference format"),
        "{}",
        text(&out.stderr)
    );
    for missing in [
        format!("{}/test/busybox:nope", reg.addr),
        format!("{}/test/nothere:1", reg.addr),
    ] {
        let out = d.docker(&["pull", &missing]);
        assert!(!out.status.success(), "pulled {missing}");
        assert!(
            text(&out.stderr).contains("not found"),
            "{}",
            text(&out.stderr)
        );
        let out = d.berth_cmd(&["pull", &missing]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("not found"),
            "{}",
            text(&out.stderr)
        );
    }
    // Like Docker: an unknown image is a 404 before any stream starts.
    let (status, body) = raw_request(
        &d.socket,
        "POST",
        &format!(
            "/images/create?fromImage={}/test/busybox&tag=nope",
            reg.addr
        ),
        "",
    );
    assert_eq!(status, 404, "{body}");
    let (status, _) = raw_request(&d.socket, "POST", "/images/create?fromImage=UPPER", "");
    assert_eq!(status, 400);
    // An unreachable registry.
    let out = d.docker(&["pull", &format!("127.0.0.1:{}/x:1", free_port())]);
    assert!(!out.status.success());

    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    let ingests: Vec<_> = std::fs::read_dir(d.data_root().join("ingest"))
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(ingests.is_empty(), "ingests left: {ingests:?}");
}

#[test]
fn registry_mirrors_from_daemon_json_serve_docker_hub_names() {
    if !prerequisites() {
        return;
    }
    let mirror = DockerRegistry::start();
    let info = push_busybox(&format!("{}/library/mirrored:1", mirror.addr));
    let cfg = tempfile::tempdir().unwrap();
    let daemon_json = cfg.path().join("daemon.json");
    std::fs::write(
        &daemon_json,
        format!(r#"{{"registry-mirrors": ["http://{}"]}}"#, mirror.addr),
    )
    .unwrap();
    let d = Daemon::start_with_args(&[
        "--config-file",
        daemon_json.to_str().unwrap(),
        "--insecure-registry",
        "registry.internal:5000",
    ]);
    let info_out = d.docker_ok(&["info"]);
    assert!(
        info_out.contains(&format!("http://{}/", mirror.addr)),
        "docker info lists the mirror: {info_out}"
    );
    assert!(
        info_out.contains("registry.internal:5000"),
        "docker info lists the insecure registry: {info_out}"
    );
    let out = d.docker_ok(&["pull", "mirrored:1"]);
    assert!(
        out.contains("Status: Downloaded newer image for mirrored:1"),
        "{out}"
    );
    let id = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "mirrored:1"]);
    assert_eq!(id.trim(), info.config_digest);
    let out = d.docker(&[
        "run",
        "--rm",
        "docker.io/library/mirrored:1",
        "echo",
        "mirrored",
    ]);
    assert_eq!(text(&out.stdout), "mirrored\n", "{}", text(&out.stderr));
}

fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
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
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", text(&out.stderr));
    (cert, key)
}

#[test]
fn tls_registry_with_token_auth() {
    if !prerequisites()
        || !berth_testsupport::require(berth_testsupport::which("openssl").is_some(), "openssl")
    {
        return;
    }
    // HTTPS with a self-signed certificate (loopback: accepted unverified, as Docker does)
    // and bearer tokens from the registry's own /token.
    let breg = BerthRegistry::start_with(Some(("bob", "pa55")), |dir| {
        let (cert, key) = self_signed_cert(dir);
        vec![
            "--auth".into(),
            "token".into(),
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ]
    });
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let image = format!("{}/secure/busybox:1", breg.addr);
    d.docker_ok(&["tag", "busybox:latest", &image]);
    let logins = d.root.path().join("tls-logins");
    let out = berth(
        &d,
        &logins,
        &["login", "-u", "bob", "-p", "pa55", &breg.addr],
    );
    assert!(
        text(&out.stdout).contains("Login Succeeded"),
        "{}",
        text(&out.stderr)
    );
    assert_ok(
        &berth(&d, &logins, &["push", &image]),
        "berth push over TLS",
        &d,
    );
    let d2 = Daemon::start();
    let pulled = assert_ok(
        &berth(&d2, &logins, &["pull", &image]),
        "berth pull over TLS",
        &d2,
    );
    assert!(pulled.contains("Pull complete"), "{pulled}");
    let out = d2
        .berth_cmd(&["run", "--rm", &image, "echo", "tls"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "tls\n", "{}", text(&out.stderr));
    // The daemon answers GET /distribution/{name}/json from the registry.
    let (status, body) = raw_request(
        &d2.socket,
        "GET",
        &format!("/distribution/{image}/json"),
        "",
    );
    // Without X-Registry-Auth the registry refuses, and the daemon says so.
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(body.contains("unauthorized"), "{body}");
}

#[test]
fn concurrent_pulls_of_one_image_share_the_work() {
    if !prerequisites() {
        return;
    }
    let reg = DockerRegistry::start();
    let image = format!("{}/test/shared:1", reg.addr);
    let info = push_busybox(&image);
    let d = Daemon::start();
    let pulls: Vec<Child> = (0..3)
        .map(|_| {
            d.docker_cmd(&["pull", &image])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in pulls {
        let out = p.wait_with_output().unwrap();
        assert_ok(&out, "concurrent docker pull", &d);
    }
    let ids = d.docker_ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(ids.trim(), info.config_digest, "one image: {ids}");
    let out = d.docker(&["run", "--rm", &image, "echo", "shared"]);
    assert_eq!(text(&out.stdout), "shared\n", "{}", text(&out.stderr));
}

/// Push a two-platform index (linux/amd64 and linux/arm64 busybox images) to `dest`.
fn push_multi_platform(dest: &str) -> (ImageInfo, ImageInfo) {
    use oci_archive::{sha256_digest, MEDIA_TYPE_INDEX};
    let layout = tempfile::tempdir().unwrap();
    let rootfs = tempfile::tempdir().unwrap();
    berth_testsupport::busybox_rootfs(rootfs.path()).unwrap();
    // Both go into one layout; the second index.json write is replaced below.
    let amd = oci_archive::busybox_image(rootfs.path())
        .architecture("amd64")
        .write_layout(layout.path(), None)
        .unwrap();
    let arm = oci_archive::busybox_image(rootfs.path())
        .architecture("arm64")
        .write_layout(layout.path(), None)
        .unwrap();
    let entry = |i: &ImageInfo, arch: &str| {
        serde_json::json!({
            "mediaType": i.manifest.media_type, "digest": i.manifest.digest,
            "size": i.manifest.size, "platform": {"os": "linux", "architecture": arch},
        })
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [entry(&amd, "amd64"), entry(&arm, "arm64")],
    }))
    .unwrap();
    let digest = sha256_digest(&index);
    std::fs::write(
        layout
            .path()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
        &index,
    )
    .unwrap();
    std::fs::write(
        layout.path().join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": MEDIA_TYPE_INDEX, "digest": digest, "size": index.len(),
                           "annotations": {"org.opencontainers.image.ref.name": "t"}}],
        }))
        .unwrap(),
    )
    .unwrap();
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--all",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:t", layout.path().display()))
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy --all: {}",
        text(&out.stderr)
    );
    (amd, arm)
}

#[test]
fn platform_selects_from_a_multi_platform_index() {
    if !prerequisites() {
        return;
    }
    let reg = DockerRegistry::start();
    let image = format!("{}/multi/busybox:1", reg.addr);
    let (amd, arm) = push_multi_platform(&image);
    let d = Daemon::start();
    let arch = |d: &Daemon| {
        d.docker_ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Architecture}}",
            &image,
        ])
        .trim()
        .to_string()
    };

    d.docker_ok(&["pull", "--platform", "linux/arm64", &image]);
    assert_eq!(arch(&d), format!("{} arm64", arm.config_digest));
    let out = d.docker_ok(&["pull", &image]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(arch(&d), format!("{} amd64", amd.config_digest));
    let out = d.docker(&["run", "--rm", &image, "echo", "native"]);
    assert_eq!(text(&out.stdout), "native\n", "{}", text(&out.stderr));

    // A single-platform image pulled for another platform is refused, not named.
    let single = format!("{}/single/busybox:1", reg.addr);
    push_busybox(&single);
    let out = d.docker(&["pull", "--platform", "linux/arm64", &single]);
    assert!(!out.status.success(), "pulled amd64 as arm64");
    assert!(
        text(&out.stderr).contains("does not match the specified platform"),
        "{}",
        text(&out.stderr)
    );
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("single/busybox"), "{images}");
    d.docker_ok(&["pull", "--platform", "linux/amd64", &single]);

    let out = d.docker(&["pull", "--platform", "linux/s390x", &image]);
    assert!(!out.status.success(), "pulled a platform the index lacks");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("linux/s390x"), "{stderr}");
    let (status, _) = raw_request(
        &d.socket,
        "POST",
        &format!(
            "/images/create?fromImage={}/multi/busybox&tag=1&platform=linux/s390x",
            reg.addr
        ),
        "",
    );
    assert_eq!(status, 404);
    let (status, body) = raw_request(&d.socket, "GET", &format!("/distribution/{image}/json"), "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Platforms"].as_array().map(Vec::len), Some(2), "{body}");
}

/// podman (its own storage in a temp dir) pulls `image` and sees the same manifest and layers.
fn podman_pulls_the_same_image(image: &str, info: &ImageInfo) {
    if !berth_testsupport::require(berth_testsupport::which("podman").is_some(), "podman") {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let podman = |args: &[&str]| {
        Command::new("podman")
            .arg("--root")
            .arg(store.path().join("root"))
            .arg("--runroot")
            .arg(store.path().join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = podman(&["pull", "-q", "--tls-verify=false", image]);
    assert!(out.status.success(), "podman pull: {}", text(&out.stderr));
    let out = podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Digest}} {{json .RootFS.Layers}}",
        image,
    ]);
    assert!(
        out.status.success(),
        "podman inspect: {}",
        text(&out.stderr)
    );
    let inspected = text(&out.stdout);
    let (digest, layers) = inspected.trim().split_once(' ').unwrap();
    assert_eq!(digest, info.manifest_digest);
    let layers: Vec<String> = serde_json::from_str(layers).unwrap();
    assert_eq!(layers, info.diff_ids);
    let _ = podman(&["rmi", "-a", "-f"]);
}
