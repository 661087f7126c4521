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

#[test]
fn run_pulls_a_missing_image() {
    if !prerequisites()
        || !require(
            which("docker-registry").is_some(),
            "docker-registry (Debian package)",
        )
        || !require(which("skopeo").is_some(), "skopeo")
    {
        return;
    }
    let d = Daemon::start();
    let dir = d.root.path().join("registry");
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        ),
    )
    .expect("config");
    let _registry = Registry(
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
    let tar = d.root.path().join("bb.tar");
    busybox_tar(&tar, "busybox:latest");
    let repo = unique("pulltest");
    let image = format!("127.0.0.1:{port}/berth/{repo}:v1");
    let st = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("docker-archive:{}", tar.display()))
        .arg(format!("docker://{image}"))
        .status()
        .expect("skopeo");
    assert!(st.success(), "skopeo copy into the registry");

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
