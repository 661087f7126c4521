//! Images made from containers and tarballs with the stock docker CLI: import, diff, commit
//! (with whiteouts and opaque directories), export, history; hostile import tarballs; malformed
//! requests.

use std::path::Path;
use std::process::Command;

use berth_e2e::{eventually, prerequisites, raw_request, unique, Daemon};

fn tar_listing(tar_path: &Path) -> Vec<String> {
    let f = std::fs::File::open(tar_path).expect("open tar");
    let mut a = tar::Archive::new(f);
    a.entries()
        .expect("tar entries")
        .map(|e| {
            e.expect("tar entry")
                .path()
                .expect("entry path")
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn import_a_rootfs_tarball_and_run_it() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    let rootfs = d.root.path().join("rootfs");
    berth_testsupport::busybox_rootfs(&rootfs).expect("busybox rootfs");
    std::fs::write(rootfs.join("etc/imported"), "from the tarball\n").unwrap();
    let tgz = d.root.path().join("rootfs.tgz");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-czf")
        .arg(&tgz)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(st.success());

    let out = d.docker_ok(&[
        "import",
        "-c",
        "CMD [\"cat\", \"/etc/imported\"]",
        "-c",
        "ENV FROM_IMPORT=yes",
        "-m",
        "imported for a test",
        tgz.to_str().unwrap(),
        "imported:v1",
    ]);
    assert!(out.trim().starts_with("sha256:"), "import said: {out}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "imported:v1"]),
        "from the tarball\n"
    );
    let env = d.docker_ok(&[
        "run",
        "--rm",
        "imported:v1",
        "sh",
        "-c",
        "echo $FROM_IMPORT",
    ]);
    assert_eq!(env, "yes\n");

    let hist = d.docker_ok(&["history", "--format", "{{.ID}}|{{.Comment}}", "imported:v1"]);
    let lines: Vec<&str> = hist.lines().collect();
    assert_eq!(lines.len(), 1, "{hist}");
    assert!(lines[0].ends_with("|imported for a test"), "{hist}");
    let id = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "imported:v1"]);
    assert!(id.trim().starts_with("sha256:"));

    // A plain (uncompressed) tarball from stdin works too.
    let plain = d.root.path().join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&plain)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(st.success());
    let o = d
        .docker_cmd(&["import", "-", "plain:v1"])
        .stdin(std::fs::File::open(&plain).unwrap())
        .output()
        .expect("docker import -");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        d.docker_ok(&["run", "--rm", "plain:v1", "cat", "/etc/imported"]),
        "from the tarball\n"
    );
}

#[test]
fn diff_commit_export_and_history() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let name = unique("commit");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "echo new > /added.txt; echo extra:x:2:2::/:/bin/false >> /etc/passwd; \
         rm /etc/group; rm -rf /usr/sbin; mkdir /usr/sbin; echo only > /usr/sbin/only; \
         touch /ready; exec sleep 1000",
    ]);
    let diff = eventually("the container's changes", || {
        let out = d.docker_ok(&["diff", &name]);
        out.contains("A /ready").then_some(out)
    });
    let lines: Vec<&str> = diff.lines().collect();
    assert!(
        !diff.contains("/etc/hosts") && !diff.contains("/etc/resolv.conf"),
        "the engine's bind-mounted files are not changes:\n{diff}"
    );
    for want in [
        "A /added.txt",
        "C /etc",
        "C /etc/passwd",
        "D /etc/group",
        "C /usr",
        "D /usr/sbin",
        "A /usr/sbin/only",
    ] {
        assert!(
            lines.contains(&want),
            "missing {want:?} in docker diff:\n{diff}"
        );
    }

    let id = d.docker_ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/added.txt\"]",
        "-c",
        "LABEL committed=yes",
        "-m",
        "my first commit",
        "-a",
        "Tester <t@example.com>",
        &name,
        "snap:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "commit said: {id}");
    // The container keeps running after a (pausing) commit.
    let st = d.docker_ok(&["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(st.trim(), "running");

    assert_eq!(d.docker_ok(&["run", "--rm", "snap:1"]), "new\n");
    let check = d.docker_ok(&[
        "run",
        "--rm",
        "snap:1",
        "sh",
        "-c",
        "tail -n1 /etc/passwd; test -e /etc/group && echo group-back; ls /usr/sbin",
    ]);
    assert_eq!(check, "extra:x:2:2::/:/bin/false\nonly\n");
    let meta = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Author}}|{{index .Config.Labels \"committed\"}}|{{len .RootFS.Layers}}",
        "snap:1",
    ]);
    assert_eq!(meta.trim(), "Tester <t@example.com>|yes|2");

    let hist = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
        "snap:1",
    ]);
    let first = hist.lines().next().unwrap_or("");
    assert!(first.starts_with(id.trim()), "{hist}");
    assert!(first.ends_with("|my first commit"), "{hist}");
    assert!(
        first.contains("sleep 1000"),
        "created by the container's command: {hist}"
    );
    assert!(
        hist.lines().skip(1).all(|l| l.starts_with("<missing>")),
        "{hist}"
    );

    // Export, running and then stopped (the snapshot is mounted for it).
    for round in ["running", "stopped"] {
        let tar_path = d.root.path().join(format!("export-{round}.tar"));
        d.docker_ok(&["export", "-o", tar_path.to_str().unwrap(), &name]);
        let names = tar_listing(&tar_path);
        for want in ["added.txt", "etc/passwd", "bin/busybox", "usr/sbin/only"] {
            assert!(
                names.iter().any(|n| n == want),
                "{round}: {want} not in export"
            );
        }
        assert!(
            !names.iter().any(|n| n == "etc/group"),
            "{round}: deleted file exported"
        );
        if round == "running" {
            d.docker_ok(&["kill", &name]);
        }
    }
}

/// A tar entry with a raw name (the tar crate refuses `..` through its path setters).
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    let n = &mut h.as_old_mut().name;
    n[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(l) = link {
        let ln = &mut h.as_old_mut().linkname;
        ln[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).expect("append");
}

fn import_bytes(d: &Daemon, tar: &[u8], reference: &str) -> std::process::Output {
    let path = d.root.path().join(format!("{}.tar", unique("hostile")));
    std::fs::write(&path, tar).unwrap();
    d.docker(&["import", path.to_str().unwrap(), reference])
}

#[test]
fn hostile_import_tarballs_never_write_outside() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    let mark = unique("escape");
    let host_tmp = Path::new("/tmp").join(&mark);

    // Climbing out with `..` is refused outright.
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(
        &mut b,
        &format!("../../../../../../tmp/{mark}"),
        tar::EntryType::Regular,
        None,
        b"x",
    );
    let o = import_bytes(&d, &b.into_inner().unwrap(), "bad:dotdot");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unsafe") || err.contains(".."), "{err}");

    // A hard link to a host file is refused too.
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(
        &mut b,
        "passwd-link",
        tar::EntryType::Link,
        Some("../../../../../etc/passwd"),
        b"",
    );
    let o = import_bytes(&d, &b.into_inner().unwrap(), "bad:hardlink");
    assert!(!o.status.success(), "hard link out of the layer accepted");

    // Absolute names, writes through an absolute symlink and device nodes are confined:
    // they land inside the image (or are dropped), never on the host.
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(
        &mut b,
        &format!("/tmp/{mark}-abs"),
        tar::EntryType::Regular,
        None,
        b"abs\n",
    );
    raw_entry(&mut b, "root-link", tar::EntryType::Symlink, Some("/"), b"");
    raw_entry(
        &mut b,
        &format!("root-link/tmp/{mark}-through"),
        tar::EntryType::Regular,
        None,
        b"through\n",
    );
    let mut dev = tar::Header::new_gnu();
    dev.set_path("null-dev").unwrap();
    dev.set_entry_type(tar::EntryType::Char);
    dev.set_device_major(1).unwrap();
    dev.set_device_minor(3).unwrap();
    dev.set_mode(0o666);
    dev.set_uid(0);
    dev.set_gid(0);
    dev.set_mtime(0);
    dev.set_size(0);
    dev.set_cksum();
    b.append(&dev, std::io::empty()).unwrap();
    let o = import_bytes(&d, &b.into_inner().unwrap(), "confined:1");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    for suffix in ["", "-abs", "-through"] {
        let p = host_tmp.with_file_name(format!("{mark}{suffix}"));
        assert!(!p.exists(), "{} was written on the host", p.display());
    }
    // Nothing landed in the daemon's roots outside a snapshot either.
    let found = Command::new("find")
        .arg(d.root.path())
        .args([
            "-name",
            &format!("{mark}*"),
            "-not",
            "-path",
            "*/snapshots/committed/*",
        ])
        .output()
        .expect("find");
    assert_eq!(String::from_utf8_lossy(&found.stdout), "", "stray files");
    // The confined files are in the image's own layer; the device node was left out.
    let tar_path = d.root.path().join("confined.tar");
    d.docker_ok(&["create", "--name", "confined", "confined:1", "true"]);
    d.docker_ok(&["export", "-o", tar_path.to_str().unwrap(), "confined"]);
    let names = tar_listing(&tar_path);
    assert!(names.contains(&format!("tmp/{mark}-abs")), "{names:?}");
    assert!(names.contains(&format!("tmp/{mark}-through")), "{names:?}");
    assert!(!names.iter().any(|n| n == "null-dev"), "{names:?}");
}

#[test]
fn malformed_requests_are_400_naming_the_field() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let name = unique("bad");
    d.docker_ok(&["create", "--name", &name, "busybox", "true"]);
    let s = &d.socket;
    for (method, path, body, field) in [
        ("POST", "/v1.47/commit".to_string(), "", "container"),
        (
            "POST",
            format!("/v1.47/commit?container={name}"),
            "{\"Cmd\": 5}",
            "Cmd",
        ),
        (
            "POST",
            format!("/v1.47/commit?container={name}"),
            "{\"Env\": \"A=1\"}",
            "Env",
        ),
        (
            "POST",
            format!("/v1.47/commit?container={name}&changes=FROM%20busybox"),
            "",
            "changes",
        ),
        (
            "POST",
            format!("/v1.47/commit?container={name}&pause=maybe"),
            "",
            "pause",
        ),
        (
            "POST",
            format!("/v1.47/commit?container={name}&repo=UPPER"),
            "",
            "repo",
        ),
        (
            "POST",
            "/v1.47/images/create?fromSrc=http://example.invalid/x.tar".to_string(),
            "",
            "fromSrc",
        ),
        (
            "POST",
            "/v1.47/images/create?fromSrc=-&repo=x&changes=EXPOSE%20nope".to_string(),
            "",
            "changes",
        ),
        (
            "POST",
            "/v1.47/images/create?fromSrc=-&platform=linux".to_string(),
            "",
            "platform",
        ),
        (
            "POST",
            "/v1.47/images/create?fromSrc=-".to_string(),
            "this is not a tar file at all, not even close to 512 bytes",
            "body",
        ),
    ] {
        let (status, resp) = raw_request(s, method, &path, body);
        assert_eq!(status, 400, "{method} {path}: {resp}");
        assert!(
            resp.contains(field),
            "{method} {path}: {resp} should name {field}"
        );
    }
    let (status, _) = raw_request(s, "GET", "/v1.47/containers/nope/changes", "");
    assert_eq!(status, 404);
    let (status, _) = raw_request(s, "GET", "/v1.47/containers/nope/export", "");
    assert_eq!(status, 404);
    let (status, _) = raw_request(s, "GET", "/v1.47/images/nope/history", "");
    assert_eq!(status, 404);
}

fn berth(d: &Daemon, args: &[&str]) -> String {
    let o = d.berth_cmd(args).output().expect("run berth");
    assert!(
        o.status.success(),
        "berth {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn berth_cli_diff_commit_history_export_import() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    let tar = d.root.path().join("bb.tar");
    berth_e2e::busybox_tar(&tar, "busybox:latest");
    berth(&d, &["load", "-i", tar.to_str().unwrap()]);
    let name = unique("bcommit");
    berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "echo hello > /greeting; rm /etc/group; touch /ready; exec sleep 1000",
        ],
    );
    let diff = eventually("berth diff", || {
        let out = berth(&d, &["diff", &name]);
        out.contains("A /ready").then_some(out)
    });
    assert!(diff.lines().any(|l| l == "A /greeting"), "{diff}");
    assert!(diff.lines().any(|l| l == "D /etc/group"), "{diff}");

    let id = berth(
        &d,
        &[
            "commit",
            "-c",
            "CMD [\"cat\", \"/greeting\"]",
            "-m",
            "via berth",
            &name,
            "bsnap:1",
        ],
    );
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(berth(&d, &["run", "--rm", "bsnap:1"]), "hello\n");
    let comments = berth(&d, &["history", "--format", "{{.Comment}}", "bsnap:1"]);
    assert_eq!(comments.lines().next(), Some("via berth"), "{comments}");
    let quiet = berth(&d, &["history", "-q", "bsnap:1"]);
    let short: String = id
        .trim()
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect();
    assert_eq!(quiet.lines().next(), Some(short.as_str()), "{quiet}");
    assert!(quiet.lines().skip(1).all(|l| l == "<missing>"), "{quiet}");
    let table = berth(&d, &["history", "bsnap:1"]);
    assert!(table.starts_with("IMAGE"), "{table}");

    // Export the container and import the export as an image of its own.
    let out = d.root.path().join("export.tar");
    berth(&d, &["export", "-o", out.to_str().unwrap(), &name]);
    assert!(tar_listing(&out).iter().any(|n| n == "greeting"));
    let imported = berth(
        &d,
        &[
            "import",
            "-m",
            "round trip",
            out.to_str().unwrap(),
            "round:trip",
        ],
    );
    assert!(imported.trim().starts_with("sha256:"), "{imported}");
    assert_eq!(
        berth(&d, &["run", "--rm", "round:trip", "cat", "/greeting"]),
        "hello\n"
    );
}

#[test]
fn import_xz_and_bzip2_tarballs() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    let rootfs = d.root.path().join("rootfs");
    berth_testsupport::busybox_rootfs(&rootfs).expect("busybox rootfs");
    std::fs::write(rootfs.join("etc/imported"), "compressed\n").expect("write");
    let plain = d.root.path().join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&plain)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(st.success());
    // The real tools make the inputs: xz (two concatenated streams, as `xz -T` may), bzip2.
    let xz = d.root.path().join("rootfs.tar.xz");
    let half = std::fs::metadata(&plain).expect("stat").len() / 2;
    let bytes = std::fs::read(&plain).expect("read");
    let mut xz_bytes = Vec::new();
    for part in [&bytes[..half as usize], &bytes[half as usize..]] {
        let mut child = Command::new("xz")
            .args(["-c", "-1"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run xz");
        let mut stdin = child.stdin.take().expect("stdin");
        let part = part.to_vec();
        let writer = std::thread::spawn(move || {
            std::io::Write::write_all(&mut stdin, &part).expect("feed xz");
        });
        let out = child.wait_with_output().expect("xz output");
        writer.join().expect("writer");
        assert!(out.status.success());
        xz_bytes.extend_from_slice(&out.stdout);
    }
    std::fs::write(&xz, &xz_bytes).expect("write xz");
    let st = Command::new("bzip2")
        .args(["-k", "-1"])
        .arg(&plain)
        .status()
        .expect("run bzip2");
    assert!(st.success());
    let bz2 = d.root.path().join("rootfs.tar.bz2");

    d.docker_ok(&["import", xz.to_str().expect("utf-8"), "fromxz:v1"]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "fromxz:v1", "cat", "/etc/imported"]),
        "compressed\n"
    );
    // berth import, from a file and from stdin.
    berth(&d, &["import", bz2.to_str().expect("utf-8"), "frombz2:v1"]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "frombz2:v1", "cat", "/etc/imported"]),
        "compressed\n"
    );
    let o = d
        .berth_cmd(&["import", "-", "frombz2:stdin"])
        .stdin(std::fs::File::open(&bz2).expect("open"))
        .output()
        .expect("berth import -");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.docker_ok(&[
        "run",
        "--rm",
        "frombz2:stdin",
        "test",
        "-f",
        "/etc/imported",
    ]);
    // A corrupt stream is a clear 400, not a half-made image.
    let bad = d.root.path().join("bad.tar.xz");
    let mut corrupt = xz_bytes.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid..mid + 64].fill(0);
    std::fs::write(&bad, &corrupt).expect("write");
    let o = d.docker(&["import", bad.to_str().expect("utf-8"), "bad:v1"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a usable tarball"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
