//! Default security with the stock docker CLI: Docker's default seccomp profile on every
//! container (off with seccomp=unconfined or --privileged, replaced by a profile file), and
//! --oom-kill-disable reaching the memory cgroup.

use berth_e2e::{prerequisites, unique, Daemon};

/// `docker run --rm <args>`: (success, stdout, stderr).
fn run(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    let o = d.docker(&all);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The seccomp mode of the container's process (0 off, 2 filter).
fn seccomp_mode(d: &Daemon, opts: &[&str]) -> String {
    let mut args = opts.to_vec();
    args.extend_from_slice(&["busybox", "sh", "-c", "grep Seccomp: /proc/self/status"]);
    let (ok, out, err) = run(d, &args);
    assert!(ok, "{opts:?}: {err}");
    out.split_whitespace().nth(1).unwrap_or("").to_string()
}

#[test]
fn default_seccomp_profile_refuses_namespaces_and_lets_ordinary_programs_run() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");

    let info = d.docker_ok(&["info", "--format", "{{json .SecurityOptions}}"]);
    assert!(
        info.contains("name=seccomp,profile=builtin"),
        "info: {info}"
    );

    assert_eq!(
        seccomp_mode(&d, &[]),
        "2",
        "a filter on a default container"
    );
    // Ordinary programs: a shell, files, processes, time, sockets (a server and a client).
    let script = "ls / >/dev/null && date >/dev/null && ps >/dev/null && sleep 0 && \
                  mkdir -p /tmp/www && echo served >/tmp/www/index.html && \
                  httpd -p 8080 -h /tmp/www && wget -q -O- http://127.0.0.1:8080/";
    let (ok, out, err) = run(&d, &["busybox", "sh", "-c", script]);
    assert!(
        ok && out.contains("served"),
        "ordinary commands: {out} {err}"
    );

    // New namespaces need CAP_SYS_ADMIN; the profile refuses them without it.
    for flag in ["-m", "-U"] {
        let (ok, _, err) = run(&d, &["busybox", "unshare", flag, "true"]);
        assert!(!ok, "unshare {flag} succeeded under the default profile");
        assert!(
            err.contains("Operation not permitted"),
            "unshare {flag}: {err}"
        );
    }

    // Unconfined: no filter at all; with CAP_SYS_ADMIN a mount namespace is allowed.
    assert_eq!(
        seccomp_mode(&d, &["--security-opt", "seccomp=unconfined"]),
        "0"
    );
    let (ok, _, err) = run(
        &d,
        &[
            "--security-opt",
            "seccomp=unconfined",
            "--cap-add",
            "SYS_ADMIN",
            "busybox",
            "unshare",
            "-m",
            "true",
        ],
    );
    assert!(ok, "unconfined + SYS_ADMIN: {err}");
    // The default profile follows capabilities: SYS_ADMIN unlocks unshare/mount.
    let (ok, _, err) = run(
        &d,
        &["--cap-add", "SYS_ADMIN", "busybox", "unshare", "-m", "true"],
    );
    assert!(ok, "default profile + SYS_ADMIN: {err}");
    // --privileged lifts it.
    assert_eq!(seccomp_mode(&d, &["--privileged"]), "0");
    let (ok, _, err) = run(&d, &["--privileged", "busybox", "unshare", "-m", "true"]);
    assert!(ok, "privileged: {err}");
}

#[test]
fn custom_seccomp_profile_file_and_malformed_profiles() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let dir = tempfile::tempdir().expect("tempdir");

    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
            ]
        }"#,
    )
    .expect("write profile");
    let opt = format!("seccomp={}", profile.display());
    let (ok, _, err) = run(&d, &["--security-opt", &opt, "busybox", "mkdir", "/tmp/x"]);
    assert!(!ok, "mkdir succeeded under a profile that refuses it");
    assert!(err.contains("Operation not permitted"), "mkdir: {err}");
    let (ok, _, err) = run(
        &d,
        &["--security-opt", &opt, "busybox", "touch", "/tmp/file"],
    );
    assert!(ok, "touch under the custom profile: {err}");
    // berth's own CLI sends the file's content too.
    let o = d
        .berth_cmd(&[
            "run",
            "--rm",
            "--security-opt",
            &opt,
            "busybox",
            "mkdir",
            "/tmp/x",
        ])
        .output()
        .expect("run berth");
    assert!(!o.status.success(), "berth run: mkdir succeeded");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Operation not permitted"),
        "berth run: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The profile is what the container got, not the default: unshare is no longer refused
    // by seccomp (only by the missing capability, which also says EPERM), so check the mode.
    assert_eq!(seccomp_mode(&d, &["--security-opt", &opt]), "2");
    // --privileged lifts a custom profile too.
    let (ok, _, err) = run(
        &d,
        &[
            "--privileged",
            "--security-opt",
            &opt,
            "busybox",
            "mkdir",
            "/tmp/x",
        ],
    );
    assert!(ok, "privileged mkdir: {err}");

    // Valid JSON, wrong profile: 400 naming the field, nothing created.
    for (body, names) in [
        (r#"{"defaultAction": "SCMP_ACT_BOGUS"}"#, "defaultAction"),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NOPE"}]}]}"#,
            "syscalls[0].args[0].op",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
            "archMap",
        ),
    ] {
        let bad = dir.path().join(format!("{}.json", unique("bad")));
        std::fs::write(&bad, body).expect("write bad profile");
        let name = unique("badseccomp");
        let o = d.docker(&[
            "create",
            "--name",
            &name,
            "--security-opt",
            &format!("seccomp={}", bad.display()),
            "busybox",
            "true",
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "a bad profile was accepted: {body}");
        assert!(
            err.contains("invalid seccomp profile") && err.contains(names),
            "{body}: {err}"
        );
        let ps = d.docker_ok(&["ps", "-a", "--filter", &format!("name={name}"), "-q"]);
        assert!(ps.trim().is_empty(), "a container was created: {ps}");
    }
}

#[test]
fn oom_kill_disable_reaches_the_memory_cgroup() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let name = unique("nooom");
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-m",
        "32m",
        "--oom-kill-disable",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let shown = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.OomKillDisable}}",
        &name,
    ]);
    if v2 {
        // Like Docker: no cgroup v2 equivalent, so it is dropped with a warning.
        assert_eq!(shown.trim(), "false");
        assert!(String::from_utf8_lossy(&o.stderr).contains("OomKillDisable discarded"));
        return;
    }
    assert_eq!(shown.trim(), "true");
    let pid = d.docker_ok(&["inspect", "--format", "{{.State.Pid}}", &name]);
    let cgroups =
        std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).expect("read cgroup");
    let memory = cgroups
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            ctrl.split(',')
                .any(|c| c == "memory")
                .then(|| path.to_string())
        })
        .expect("a memory cgroup");
    let control =
        std::fs::read_to_string(format!("/sys/fs/cgroup/memory{memory}/memory.oom_control"))
            .expect("read memory.oom_control");
    assert!(
        control.lines().any(|l| l == "oom_kill_disable 1"),
        "memory.oom_control: {control}"
    );
    // And a container without the flag keeps the OOM killer.
    let other = unique("oom");
    d.docker_ok(&[
        "run", "-d", "--name", &other, "-m", "32m", "busybox", "sleep", "1000",
    ]);
    let shown = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.OomKillDisable}}",
        &other,
    ]);
    assert_eq!(shown.trim(), "false");
}
