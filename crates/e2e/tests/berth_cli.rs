//! The `berth` CLI against berthd (images are loaded with berth itself).

use berth_e2e::{bin, prerequisites, unique, Daemon};

#[test]
fn berth_cli_drives_the_daemon() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    let tar = d.root.path().join("bb.tar");
    berth_e2e::busybox_tar(&tar, "busybox:latest");
    let (code, out, err) = d.berth(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "Loaded image: busybox:latest\n");

    let (_, out, _) = d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(out, "busybox:latest\n");

    let (code, out, _) = d.berth(&["run", "--rm", "busybox", "sh", "-c", "echo hi; exit 9"]);
    assert_eq!((code, out.as_str()), (Some(9), "hi\n"));

    let name = unique("cli");
    let (code, id, err) = d.berth(&[
        "run",
        "-d",
        "--name",
        &name,
        "-e",
        "X=1",
        "busybox",
        "sh",
        "-c",
        "echo up $X; exec sleep 1000",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(id.trim().len(), 64);
    let (_, ps, _) = d.berth(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert!(ps.lines().any(|l| l == format!("{name} running")), "{ps}");
    let (code, out, _) = d.berth(&["exec", &name, "sh", "-c", "echo in $X; exit 3"]);
    assert_eq!((code, out.as_str()), (Some(3), "in 1\n"));
    let logs = berth_e2e::eventually("logs", || {
        let (_, out, _) = d.berth(&["logs", &name]);
        out.contains("up 1").then_some(out)
    });
    assert_eq!(logs, "up 1\n");
    let (_, st, _) = d.berth(&["inspect", "-f", "{{.State.Status}}", &name]);
    assert_eq!(st.trim(), "running");
    let (code, _, _) = d.berth(&["stop", "-t", "1", &name]);
    assert_eq!(code, Some(0));
    let (_, st, _) = d.berth(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
    assert_eq!(st.trim(), "137");
    let (code, _, _) = d.berth(&["rm", &name]);
    assert_eq!(code, Some(0));
    let (code, _, err) = d.berth(&["rm", &name]);
    assert_eq!(code, Some(1));
    assert!(err.contains(&format!("No such container: {name}")), "{err}");
}

#[test]
fn berth_says_how_to_start_a_daemon() {
    berth_e2e::ensure_built();
    let o = std::process::Command::new(bin("berth"))
        .args(["-H", "unix:///nonexistent/berth.sock", "ps"])
        .output()
        .expect("run berth");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot connect to the berth daemon at unix:///nonexistent/berth.sock"),
        "{err}"
    );
    assert!(err.contains("berthd"), "{err}");
}
