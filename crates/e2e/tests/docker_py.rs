//! docker-py drives berthd (the Python SDK most tools use).

use berth_e2e::{prerequisites, unique, Daemon};

#[test]
fn docker_py_smoke() {
    if !prerequisites() {
        return;
    }
    let has_sdk = std::process::Command::new("python3")
        .args(["-c", "import docker"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !berth_testsupport::require(
        has_sdk,
        "python3 with the `docker` package (pip install docker)",
    ) {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/docker_py_smoke.py");
    let o = std::process::Command::new("python3")
        .arg(script)
        .arg(d.host())
        .arg(unique("py"))
        .output()
        .expect("run python3");
    assert!(
        o.status.success(),
        "docker-py smoke failed:\n{}\n{}\n--- berthd log tail:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        berth_e2e::tail(&d.log(), 30)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok");
}
