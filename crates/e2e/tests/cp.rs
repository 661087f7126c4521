//! `docker cp` both ways, on running and stopped containers; a hostile tar never writes outside
//! the target.

use std::io::{Read, Write};

use berth_e2e::{prerequisites, unique, Daemon};

/// A tar whose only entry is named `name` verbatim (the tar crate refuses `..` in set_path).
fn tar_with_raw_name(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    let field = &mut h.as_old_mut().name;
    field[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, data).expect("append");
    b.into_inner().expect("tar")
}

/// PUT /containers/{id}/archive with a raw body; returns the status.
fn put_archive(d: &Daemon, id: &str, path: &str, body: &[u8]) -> u16 {
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).expect("connect");
    write!(
        s,
        "PUT /v1.47/containers/{id}/archive?path={path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("write");
    s.write_all(body).expect("body");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn docker_cp_both_ways_and_hostile_tars() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let name = unique("cp");
    d.docker_ok(&["run", "-d", "--name", &name, "busybox", "sleep", "1000"]);
    let host = d.root.path().join("cp-host");
    std::fs::create_dir_all(&host).expect("dir");
    std::fs::write(host.join("in.txt"), "into the container\n").expect("write");

    d.docker_ok(&[
        "cp",
        host.join("in.txt").to_str().unwrap(),
        &format!("{name}:/tmp/"),
    ]);
    assert_eq!(
        d.docker_ok(&["exec", &name, "cat", "/tmp/in.txt"]),
        "into the container\n"
    );
    d.docker_ok(&[
        "exec",
        &name,
        "sh",
        "-c",
        "mkdir -p /data/sub && echo out > /data/sub/f && ln -s sub/f /data/link",
    ]);
    // Docker's rule: a symlink is copied as itself, `-L` follows it (relative to its directory).
    let link_copy = host.join("link-copy");
    d.docker_ok(&[
        "cp",
        &format!("{name}:/data/link"),
        link_copy.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_link(&link_copy).expect("a symlink"),
        std::path::Path::new("sub/f")
    );
    let followed = host.join("followed");
    d.docker_ok(&[
        "cp",
        "-L",
        &format!("{name}:/data/link"),
        followed.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&followed).expect("followed"),
        "out\n"
    );
    let out_dir = host.join("data-copy");
    d.docker_ok(&["cp", &format!("{name}:/data"), out_dir.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("sub/f")).expect("copied"),
        "out\n"
    );

    // A stopped container's files are reachable too.
    d.docker_ok(&["stop", "-t", "0", &name]);
    let back = host.join("back.txt");
    d.docker_ok(&["cp", &format!("{name}:/tmp/in.txt"), back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&back).expect("copied"),
        "into the container\n"
    );
    let missing = d.docker(&[
        "cp",
        &format!("{name}:/nonexistent"),
        back.to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("Could not find the file /nonexistent")
    );

    // Hostile: `../` entries must not land outside the container's root.
    let id = d.docker_ok(&["inspect", "--format", "{{.Id}}", &name]);
    let id = id.trim();
    let marker = format!("berth-escape-{}", std::process::id());
    let evil = tar_with_raw_name(&format!("../../../../../../../../tmp/{marker}"), b"escaped");
    let status = put_archive(&d, id, "/tmp", &evil);
    assert!(
        !std::path::Path::new(&format!("/tmp/{marker}")).exists(),
        "escaped to the host"
    );
    assert_eq!(status, 400, "refused as a bad archive");
    // A symlink inside the container pointing at / does not lead the target out either.
    d.docker_ok(&["start", &name]);
    d.docker_ok(&["exec", &name, "ln", "-s", "/", "/tmp/hostroot"]);
    let mut plain = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    plain
        .append_data(&mut h, &marker, &b"x"[..])
        .expect("append");
    let plain = plain.into_inner().expect("tar");
    let status = put_archive(&d, id, "/tmp/hostroot/tmp", &plain);
    assert_eq!(status, 200);
    assert!(
        !std::path::Path::new(&format!("/tmp/{marker}")).exists(),
        "followed a link out"
    );
    assert_eq!(
        d.docker_ok(&["exec", &name, "cat", &format!("/tmp/{marker}")]),
        "x"
    );
    d.docker_ok(&["rm", "-f", &name]);
}
