//! Legacy links (`--link name[:alias]`) through the stock docker CLI: /etc/hosts and the link
//! environment on the default bridge, DNS aliases on a user network, Docker's errors.

use berth_e2e::{eventually, prerequisites, unique, Daemon};

/// A busybox httpd serving `text` at / on port 80.
fn httpd_cmd(text: &str) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www")
}

fn inspect(d: &Daemon, fmt: &str, name: &str) -> String {
    d.docker_ok(&["inspect", "--format", fmt, name])
        .trim()
        .to_string()
}

#[test]
fn links_on_the_default_bridge_give_hosts_and_env() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let srv = unique("srv");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &srv,
        "-e",
        "SECRET=s3cr3t",
        "--expose",
        "80",
        "busybox",
        "sh",
        "-c",
        &httpd_cmd("hello-by-link"),
    ]);
    let ip = inspect(&d, "{{.NetworkSettings.IPAddress}}", &srv);
    let id = inspect(&d, "{{.Id}}", &srv);

    // By alias: httpd answers, and the legacy variables are there.
    let client = unique("cli");
    let out = eventually("httpd answers by link alias", || {
        let _ = d.docker(&["rm", "-f", &client]);
        let o = d.docker(&[
            "run",
            "--name",
            &client,
            "--link",
            &format!("{srv}:web"),
            "busybox",
            "sh",
            "-c",
            "wget -qO- http://web/ && env && cat /etc/hosts",
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert!(out.contains("hello-by-link"), "out: {out}");
    for want in [
        format!("WEB_PORT=tcp://{ip}:80"),
        format!("WEB_PORT_80_TCP=tcp://{ip}:80"),
        format!("WEB_PORT_80_TCP_ADDR={ip}"),
        "WEB_PORT_80_TCP_PORT=80".to_string(),
        "WEB_PORT_80_TCP_PROTO=tcp".to_string(),
        format!("WEB_NAME=/{client}/web"),
        "WEB_ENV_SECRET=s3cr3t".to_string(),
        format!("{ip}\tweb {} {srv}", &id[..12]),
    ] {
        assert!(
            out.lines().any(|l| l == want),
            "missing {want:?} in:\n{out}"
        );
    }
    assert!(
        !out.contains("WEB_ENV_PATH="),
        "PATH is not passed on: {out}"
    );
    assert_eq!(
        inspect(&d, "{{json .HostConfig.Links}}", &client),
        format!("[\"/{srv}:/{client}/web\"]")
    );
    d.docker_ok(&["rm", &client]);

    // Without an alias the name is the alias; exec sees the variables too.
    let c2 = unique("cli");
    d.docker_ok(&[
        "run", "-d", "--name", &c2, "--link", &srv, "busybox", "sleep", "300",
    ]);
    let prefix = srv.to_ascii_uppercase().replace('-', "_");
    let env = d.docker_ok(&["exec", &c2, "env"]);
    assert!(
        env.lines()
            .any(|l| l == format!("{prefix}_PORT_80_TCP_ADDR={ip}")),
        "exec env: {env}"
    );
    let hosts = d.docker_ok(&["exec", &c2, "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{ip}\t{srv} {}\n", &id[..12])),
        "hosts: {hosts}"
    );
    d.docker_ok(&["rm", "-f", &c2]);

    // Docker's errors: unknown target at create, stopped target at start.
    let o = d.docker(&["run", "--rm", "--link", "no-such-ctr:x", "busybox", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("could not get container for no-such-ctr"),
        "stderr: {err}"
    );
    let stopped = unique("stopped");
    d.docker_ok(&["create", "--name", &stopped, "busybox", "true"]);
    let o = d.docker(&["run", "--link", &format!("{stopped}:x"), "busybox", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(&format!(
            "Cannot link to a non running container: /{stopped} AS"
        )),
        "stderr: {err}"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--link",
        &srv,
        "busybox",
        "true",
    ]);
    assert!(!o.status.success(), "host networking with links succeeded");
    d.docker_ok(&["rm", "-f", &srv, &stopped]);
}

#[test]
fn links_on_a_user_network_are_dns_aliases_of_the_linking_container() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let net = unique("lnet");
    d.docker_ok(&["network", "create", &net]);
    let srv = unique("srv");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &srv,
        "--network",
        &net,
        "busybox",
        "sh",
        "-c",
        &httpd_cmd("hello-by-dns-link"),
    ]);
    let c = unique("cli");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        &net,
        "--link",
        &format!("{srv}:db"),
        "busybox",
        "sleep",
        "300",
    ]);
    let out = eventually("httpd answers by link alias over DNS", || {
        let o = d.docker(&["exec", &c, "wget", "-qO-", "http://db/"]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert_eq!(out.trim(), "hello-by-dns-link");
    assert_eq!(
        inspect(
            &d,
            &format!("{{{{json (index .NetworkSettings.Networks \"{net}\").Links}}}}"),
            &c
        ),
        format!("[\"{srv}:db\"]")
    );
    // The alias is the linking container's alone.
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "nslookup",
        "db",
        "127.0.0.11",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        !o.status.success() || !text.contains("Address: 10."),
        "another container resolved the alias: {text}"
    );
    d.docker_ok(&["rm", "-f", &srv, &c]);
    d.docker_ok(&["network", "rm", &net]);
}
