//! `run`/`create` flags beyond the basics, through berth and the stock docker CLI: --ulimit,
//! --device, --cidfile, --platform and --pull never; `ps -n/-l/-s`, `images --filter`,
//! `logs --details`, `exec --privileged`.

use berth_e2e::{prerequisites, unique, Daemon};

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
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=1024:2048",
        "busybox",
        "sh",
        "-c",
        limits,
    ]);
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
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--ulimit",
        "nofile=300:400",
        "busybox",
        "sleep",
        "100",
    ]);
    assert_eq!(
        d.berth_ok(&["exec", &name, "sh", "-c", limits]),
        "300\n400\n"
    );
    let ul = d.docker_ok(&["inspect", "-f", "{{json .HostConfig.Ulimits}}", &name]);
    assert_eq!(ul.trim(), r#"[{"Name":"nofile","Hard":400,"Soft":300}]"#);
    let (code, _, err) = d.berth(&["run", "--rm", "--ulimit", "bogus=1", "busybox", "true"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("invalid ulimit type: bogus"), "{err}");

    // --device: the host's /dev/zero as /dev/myzero, readable and writable; docker too.
    let read = "head -c 5 /dev/myzero | wc -c; echo hi > /dev/myzero && echo wrote";
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/zero:/dev/myzero",
        "busybox",
        "sh",
        "-c",
        read,
    ]);
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
    // ":r" grants read only (a device outside the default allowed set: /dev/kmsg, 1:11).
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/kmsg:/dev/mykmsg:r",
        "busybox",
        "sh",
        "-c",
        "echo x > /dev/mykmsg && echo WRITE-OK || echo WRITE-DENIED",
    ]);
    assert!(out.contains("WRITE-DENIED"), "{out}");
    // --privileged brings the host's devices (as Docker); without it there are none of them.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "test -c /dev/kmsg && echo HOST-DEV; test -e /dev/pts/ptmx && echo PTS",
    ]);
    assert!(out.contains("HOST-DEV") && out.contains("PTS"), "{out}");
    let (code, _, _) = d.berth(&["run", "--rm", "busybox", "test", "-e", "/dev/kmsg"]);
    assert_eq!(code, Some(1));
    // Without --device there is no such node.
    let (code, _, _) = d.berth(&["run", "--rm", "busybox", "test", "-e", "/dev/myzero"]);
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
    let id = d.berth_ok(&["run", "-d", "--cidfile", cid_s, "busybox", "sleep", "100"]);
    assert_eq!(std::fs::read_to_string(&cid).expect("cidfile"), id.trim());
    // An existing file is refused, and left alone.
    let (code, _, err) = d.berth(&["create", "--cidfile", cid_s, "busybox", "true"]);
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
    let (code, _, _) = d.berth(&[
        "create",
        "--pull",
        "never",
        "--cidfile",
        cid2.to_str().expect("utf-8"),
        "nosuch:img",
    ]);
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
    let (code, _, err) = d.berth(&["run", "--rm", "--pull", "never", "nosuch/img", "true"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("No such image"), "{err}");
    assert!(!err.contains("Unable to find image"), "{err}");
    let o = d.docker(&["run", "--rm", "--pull", "never", "nosuch/img", "true"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such image"));
    d.berth_ok(&["run", "--rm", "--pull", "never", "busybox", "true"]);

    // --platform: the host's platform matches the image; another is not found.
    let arch = d.docker_ok(&["image", "inspect", "-f", "{{.Architecture}}", "busybox"]);
    let host = format!("linux/{}", arch.trim());
    d.berth_ok(&["run", "--rm", "--platform", &host, "busybox", "true"]);
    let other = if arch.trim() == "arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let (code, _, err) = d.berth(&[
        "create",
        "--pull",
        "never",
        "--platform",
        other,
        "busybox",
        "true",
    ]);
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

fn lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v
}

#[test]
fn ps_last_latest_and_size() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let (a, b, c) = (unique("psa"), unique("psb"), unique("psc"));
    d.berth_ok(&["run", "--name", &a, "busybox", "true"]);
    d.berth_ok(&["run", "--name", &b, "busybox", "true"]);
    let write = "head -c 100000 /dev/zero > /big && sleep 100";
    d.berth_ok(&["run", "-d", "--name", &c, "busybox", "sh", "-c", write]);
    // -n/-l count stopped containers too, newest first.
    assert_eq!(
        d.berth_ok(&["ps", "-n", "2", "--format", "{{.Names}}"]),
        format!("{c}\n{b}\n")
    );
    assert_eq!(
        d.berth_ok(&["ps", "-l", "--format", "{{.Names}}"]),
        format!("{c}\n")
    );
    assert_eq!(
        d.docker_ok(&["ps", "-n", "2", "--format", "{{.Names}}"]),
        format!("{c}\n{b}\n")
    );
    assert_eq!(d.docker_ok(&["ps", "--latest", "-q"]).trim().len(), 12);
    // -s: the writable layer's size, and the virtual size with the image's.
    let size = berth_e2e::eventually("the 100 kB file", || {
        let s = d.berth_ok(&[
            "ps",
            "-s",
            "--filter",
            &format!("name={c}"),
            "--format",
            "{{.Size}}",
        ]);
        s.starts_with("100kB (virtual ").then_some(s)
    });
    assert!(size.trim_end().ends_with("B)"), "{size}");
    let table = d.berth_ok(&["ps", "-s"]);
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.trim_end().ends_with("SIZE")),
        "{table}"
    );
    let docker = d.docker_ok(&[
        "ps",
        "-s",
        "--filter",
        &format!("name={c}"),
        "--format",
        "{{.Size}}",
    ]);
    assert!(docker.starts_with("100kB (virtual "), "{docker}");
    let ins = d.docker_ok(&["inspect", "-s", "-f", "{{.SizeRw}}", &c]);
    assert_eq!(ins.trim(), "100000");
}

#[test]
fn images_filters() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    d.berth_ok(&["tag", "busybox", "team/app:1"]);
    d.berth_ok(&["tag", "busybox", "team/app:2"]);
    let name = unique("img");
    d.berth_ok(&["run", "--name", &name, "busybox", "touch", "/x"]);
    d.docker_ok(&["commit", "-c", "LABEL tier=db", &name, "team/db:1"]);
    let dangling = d.docker_ok(&["commit", &name]);
    let dangling = dangling.trim().trim_start_matches("sha256:");
    let f = "{{.Repository}}:{{.Tag}}";
    let images = |filter: &str| d.berth_ok(&["images", "--filter", filter, "--format", f]);
    assert_eq!(
        lines(&images("reference=team/*")),
        ["team/app:1", "team/app:2", "team/db:1"]
    );
    assert_eq!(lines(&images("reference=team/app:1")), ["team/app:1"]);
    assert_eq!(lines(&images("reference=busybox")), ["busybox:latest"]);
    assert_eq!(lines(&images("label=tier=db")), ["team/db:1"]);
    assert_eq!(lines(&images("label=tier")), ["team/db:1"]);
    let q = d.berth_ok(&["images", "-q", "--filter", "dangling=true"]);
    assert_eq!(q.trim(), &dangling[..12]);
    assert!(!images("dangling=false").contains("<none>"));
    let since = images("since=busybox");
    assert!(
        since.contains("team/db:1") && !since.contains("team/app"),
        "{since}"
    );
    let before = images("before=team/db:1");
    assert!(
        before.contains("busybox:latest") && !before.contains("team/db"),
        "{before}"
    );
    // The stock docker CLI sends the same filters.
    let docker = d.docker_ok(&["images", "--filter", "reference=team/app", "--format", f]);
    assert_eq!(lines(&docker), ["team/app:1", "team/app:2"]);
    let (code, _, err) = d.berth(&["images", "--filter", "bogus=1"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("invalid filter 'bogus'"), "{err}");
}

#[test]
fn logs_details_show_the_log_attributes() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let name = unique("details");
    d.berth_ok(&[
        "run",
        "--name",
        &name,
        "--label",
        "tier=web",
        "-e",
        "FOO=bar baz",
        "--log-opt",
        "labels=tier",
        "--log-opt",
        "env=FOO",
        "busybox",
        "echo",
        "hi",
    ]);
    assert_eq!(
        d.berth_ok(&["logs", "--details", &name]),
        "FOO=bar+baz,tier=web hi\n"
    );
    assert_eq!(
        d.docker_ok(&["logs", "--details", &name]),
        "FOO=bar+baz,tier=web hi\n"
    );
    assert_eq!(d.berth_ok(&["logs", &name]), "hi\n");
    let plain = unique("plain");
    d.berth_ok(&["run", "--name", &plain, "busybox", "echo", "hi"]);
    assert_eq!(d.berth_ok(&["logs", "--details", &plain]), " hi\n");
}

#[test]
fn privileged_exec_has_every_capability_and_no_seccomp() {
    if !prerequisites() {
        return;
    }
    let d = daemon_with_busybox();
    let name = unique("privexec");
    d.berth_ok(&["run", "-d", "--name", &name, "busybox", "sleep", "100"]);
    let probe = "grep -E '^(CapEff|Seccomp):' /proc/self/status; mkdir -p /tmp/m; mount -t tmpfs none /tmp/m && echo mounted";
    let plain = d.berth(&["exec", &name, "sh", "-c", probe]).1;
    assert!(plain.contains("Seccomp:\t2"), "{plain}");
    assert!(!plain.contains("mounted"), "{plain}");
    // Every capability berthd holds (its bounding set, as ours: a confined host may lack some).
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .expect("CapBnd")
        .trim();
    let all = format!("CapEff:\t{bounding}");
    for out in [
        d.berth_ok(&["exec", "--privileged", &name, "sh", "-c", probe]),
        d.docker_ok(&["exec", "--privileged", &name, "sh", "-c", probe]),
    ] {
        assert!(out.contains("Seccomp:\t0"), "{out}");
        assert!(out.contains(&all), "{out}");
        assert!(out.contains("mounted"), "{out}");
    }
    // The container itself keeps its confinement.
    let again = d.berth(&["exec", &name, "sh", "-c", probe]).1;
    assert!(
        again.contains("Seccomp:\t2") && !again.contains("mounted"),
        "{again}"
    );
}
