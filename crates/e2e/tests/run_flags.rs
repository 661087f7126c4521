//! `run`/`create` flags beyond the basics, through berth and the stock docker CLI: --ulimit,
//! --device, --cidfile, --platform and --pull never; `ps -n/-l/-s`, `images --filter`,
//! `logs --details`, `exec --privileged`.

use berth_e2e::{prerequisites, unique, Daemon};

fn berth(d: &Daemon, args: &[&str]) -> (Option<i32>, String, String) {
    let o = d.berth_cmd(args).output().expect("run berth");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let (code, out, err) = berth(d, args);
    assert_eq!(code, Some(0), "berth {args:?}: {err}\n{out}\n{}", d.log());
    out
}

fn daemon_with_busybox() -> Daemon {
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    d
}

#[test]
fn ulimits_and_devices_reach_the_container() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let limits = "ulimit -Sn; ulimit -Hn";
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--ulimit",
            "nofile=1024:2048",
            "busybox",
            "sh",
            "-c",
            limits,
        ],
    );
    assert_eq!(out, "1024\n2048\n");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=512",
        "busybox",
        "sh",
        "-c",
        limits,
    ]);
    assert_eq!(out, "512\n512\n");
    // An exec inherits the container's limits; inspect shows them as Docker does.
    let name = unique("ulim");
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--ulimit",
            "nofile=300:400",
            "busybox",
            "sleep",
            "100",
        ],
    );
    assert_eq!(ok(&d, &["exec", &name, "sh", "-c", limits]), "300\n400\n");
    let ul = d.docker_ok(&["inspect", "-f", "{{json .HostConfig.Ulimits}}", &name]);
    assert_eq!(ul.trim(), r#"[{"Name":"nofile","Hard":400,"Soft":300}]"#);
    let (code, _, err) = berth(
        &d,
        &["run", "--rm", "--ulimit", "bogus=1", "busybox", "true"],
    );
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("invalid ulimit type: bogus"), "{err}");

    // --device: the host's /dev/zero as /dev/myzero, readable and writable; docker too.
    let read = "head -c 5 /dev/myzero | wc -c; echo hi > /dev/myzero && echo wrote";
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--device",
            "/dev/zero:/dev/myzero",
            "busybox",
            "sh",
            "-c",
            read,
        ],
    );
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["5", "wrote"]);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull",
        "busybox",
        "sh",
        "-c",
        "ls -l /dev/mynull; echo x > /dev/mynull && echo wrote",
    ]);
    assert!(
        out.starts_with('c') && out.contains("1,") && out.contains("wrote"),
        "{out}"
    );
    // Without --device there is no such node.
    let (code, _, _) = berth(&d, &["run", "--rm", "busybox", "test", "-e", "/dev/myzero"]);
    assert_eq!(code, Some(1));
    let o = d.docker(&[
        "run",
        "--rm",
        "--device",
        "/dev/no-such-dev",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error gathering device information while adding custom device \"/dev/no-such-dev\": no such file or directory"),
        "{err}"
    );
}

#[test]
fn cidfile_platform_and_pull_never() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let cid = d.root.path().join("cid");
    let cid_s = cid.to_str().expect("utf-8");
    let id = ok(
        &d,
        &["run", "-d", "--cidfile", cid_s, "busybox", "sleep", "100"],
    );
    assert_eq!(std::fs::read_to_string(&cid).expect("cidfile"), id.trim());
    // An existing file is refused, and left alone.
    let (code, _, err) = berth(&d, &["create", "--cidfile", cid_s, "busybox", "true"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains(
            "container ID file found, make sure the other container isn't running or delete"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&cid).expect("cidfile"), id.trim());
    // A failed create leaves no empty cidfile behind.
    let cid2 = d.root.path().join("cid2");
    let (code, _, _) = berth(
        &d,
        &[
            "create",
            "--pull",
            "never",
            "--cidfile",
            cid2.to_str().expect("utf-8"),
            "nosuch:img",
        ],
    );
    assert_ne!(code, Some(0));
    assert!(!cid2.exists());
    let cid3 = d.root.path().join("cid3");
    d.docker_ok(&[
        "create",
        "--cidfile",
        cid3.to_str().expect("utf-8"),
        "busybox",
        "true",
    ]);
    assert_eq!(std::fs::read_to_string(&cid3).expect("cidfile").len(), 64);

    // --pull never: a missing image is an error, nothing is pulled.
    let (code, _, err) = berth(
        &d,
        &["run", "--rm", "--pull", "never", "nosuch/img", "true"],
    );
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("No such image"), "{err}");
    assert!(!err.contains("Unable to find image"), "{err}");
    let o = d.docker(&["run", "--rm", "--pull", "never", "nosuch/img", "true"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such image"));
    ok(&d, &["run", "--rm", "--pull", "never", "busybox", "true"]);

    // --platform: the host's platform matches the image; another is not found.
    let arch = d.docker_ok(&["image", "inspect", "-f", "{{.Architecture}}", "busybox"]);
    let host = format!("linux/{}", arch.trim());
    ok(&d, &["run", "--rm", "--platform", &host, "busybox", "true"]);
    let other = if arch.trim() == "arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let (code, _, err) = berth(
        &d,
        &[
            "create",
            "--pull",
            "never",
            "--platform",
            other,
            "busybox",
            "true",
        ],
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("does not match the specified platform") && err.contains(other),
        "{err}"
    );
    let o = d.docker(&[
        "create",
        "--pull",
        "never",
        "--platform",
        other,
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not match the specified platform"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
