//! Volumes with the stock docker CLI: create/ls/inspect/rm/prune, named volumes filled from the
//! image, anonymous volumes removed with `rm -v`, binds (read-only too) and tmpfs mounts.

use berth_e2e::{prerequisites, unique, Daemon};

#[test]
fn volumes_binds_and_tmpfs() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let vol = unique("vol");
    d.docker_ok(&["volume", "create", &vol]);
    let ls = d.docker_ok(&["volume", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(ls.lines().any(|l| l == format!("{vol} local")), "{ls}");
    let mp = d.docker_ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", &vol]);
    assert!(mp.trim().ends_with(&format!("volumes/{vol}/_data")), "{mp}");

    // A new volume over image content starts with a copy of it; writes persist.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/etc"),
        "busybox",
        "sh",
        "-c",
        "cat /etc/passwd >/dev/null && echo kept > /etc/marker && echo ok",
    ]);
    assert_eq!(out, "ok\n");
    assert!(std::path::Path::new(mp.trim()).join("passwd").exists());
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=volume,source={vol},target=/data"),
        "busybox",
        "cat",
        "/data/marker",
    ]);
    assert_eq!(out, "kept\n");

    // In use: refused.
    let user = unique("user");
    d.docker_ok(&[
        "create",
        "--name",
        &user,
        "-v",
        &format!("{vol}:/data"),
        "busybox",
        "true",
    ]);
    let o = d.docker(&["volume", "rm", &vol]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("volume is in use"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    d.docker_ok(&["rm", &user]);
    d.docker_ok(&["volume", "rm", &vol]);
    assert!(!std::path::Path::new(mp.trim()).exists());

    // Anonymous volume: created for the container, gone with rm -v.
    let anon = unique("anon");
    d.docker_ok(&[
        "run", "-d", "--name", &anon, "-v", "/scratch", "busybox", "sleep", "1000",
    ]);
    let mounts = d.docker_ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Type}} {{.Destination}}{{end}}",
        &anon,
    ]);
    assert_eq!(mounts.trim(), "volume /scratch");
    assert_eq!(d.docker_ok(&["volume", "ls", "-q"]).lines().count(), 1);
    d.docker_ok(&["rm", "-fv", &anon]);
    assert_eq!(d.docker_ok(&["volume", "ls", "-q"]).lines().count(), 0);

    // Binds, read-only binds, tmpfs.
    let host = d.root.path().join("hostdir");
    std::fs::create_dir_all(&host).expect("host dir");
    std::fs::write(host.join("f"), "from host\n").expect("write");
    let spec = format!("{}:/h", host.display());
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /h/f; echo back > /h/g",
    ]);
    assert_eq!(out, "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.join("g")).expect("written by the container"),
        "back\n"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{spec}:ro"),
        "busybox",
        "touch",
        "/h/x",
    ]);
    assert!(!o.status.success());
    assert!(!host.join("x").exists());
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/t",
        "busybox",
        "sh",
        "-c",
        "grep ' /t ' /proc/mounts | cut -d' ' -f3",
    ]);
    assert_eq!(out, "tmpfs\n");

    d.docker_ok(&["volume", "create", &unique("unused")]);
    d.docker_ok(&["volume", "prune", "-af"]);
    assert!(d.docker_ok(&["volume", "ls", "-q"]).trim().is_empty());
}
