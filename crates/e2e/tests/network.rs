//! Container networking through the stock docker CLI: user networks with name resolution,
//! published ports, NAT to an "outside" host, `network rm` refusals, addresses, and a berthd
//! SIGKILL + restart that leaves running containers' networking intact.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use berth_e2e::{eventually, prerequisites, raw_request, unique, Daemon};

/// A busybox httpd serving `text` at / on port 80.
fn httpd_cmd(text: &str) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www")
}

fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn inspect(d: &Daemon, fmt: &str, name: &str) -> String {
    d.docker_ok(&["inspect", "--format", fmt, name])
        .trim()
        .to_string()
}

fn nft_table(d: &Daemon) -> String {
    let o = Command::new("nft")
        .args(["list", "table", "ip", &d.net.table])
        .output()
        .expect("run nft");
    assert!(
        o.status.success(),
        "nft list: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Rule lines, each prefixed with its chain (the same rule text may be in two chains).
fn rules(table: &str) -> Vec<String> {
    let mut chain = String::new();
    let mut out = Vec::new();
    for l in table.lines().map(str::trim) {
        if let Some(c) = l.strip_prefix("chain ") {
            chain = c.trim_end_matches(" {").to_string();
        } else if !l.is_empty() && !l.starts_with("table") && !l.starts_with("type") && l != "}" {
            out.push(format!("{chain}: {l}"));
        }
    }
    out
}

#[test]
fn user_network_names_resolve_and_rm_refuses_while_in_use() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let net = unique("net");
    let web = unique("web");
    d.docker_ok(&["network", "create", &net]);
    let ls = d.docker_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(ls.lines().any(|l| l == format!("{net} bridge")), "ls: {ls}");
    assert!(ls.lines().any(|l| l == "bridge bridge"), "ls: {ls}");

    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "--network",
        &net,
        "--network-alias",
        "www",
        "busybox",
        "sh",
        "-c",
        &httpd_cmd("hello-from-web"),
    ]);
    // By name and by alias, from another container on the same network.
    for host in [web.as_str(), "www"] {
        let out = eventually("httpd answers by name", || {
            let o = d.docker(&[
                "run",
                "--rm",
                "--network",
                &net,
                "busybox",
                "wget",
                "-qO-",
                &format!("http://{host}/"),
            ]);
            o.status
                .success()
                .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
        });
        assert_eq!(out.trim(), "hello-from-web");
    }
    // /etc/hosts has the container's own address; resolv.conf points at the embedded DNS.
    let ip = inspect(
        &d,
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &web,
    );
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "ip: {ip:?}");
    let hosts = d.docker_ok(&["exec", &web, "cat", "/etc/hosts"]);
    assert!(hosts.contains(&ip), "hosts: {hosts}");
    let resolv = d.docker_ok(&["exec", &web, "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.contains("nameserver 127.0.0.11"),
        "resolv.conf: {resolv}"
    );
    let inspected = d.docker_ok(&["network", "inspect", &net]);
    assert!(inspected.contains(&web), "network inspect: {inspected}");

    // In use: refused with 409, both through the CLI and the raw API.
    let o = d.docker(&["network", "rm", &net]);
    assert!(!o.status.success());
    let (status, body) = raw_request(&d.socket, "DELETE", &format!("/networks/{net}"), "");
    assert_eq!(status, 409, "{body}");
    // Unknown network: 404; overlapping subnet: 400.
    let (status, _) = raw_request(&d.socket, "GET", "/networks/nope-no-such-net", "");
    assert_eq!(status, 404);
    let subnet = inspect(&d, "{{(index .IPAM.Config 0).Subnet}}", &net);
    let (status, body) = raw_request(
        &d.socket,
        "POST",
        "/networks/create",
        &format!(
            r#"{{"Name":"{}","IPAM":{{"Config":[{{"Subnet":"{subnet}"}}]}}}}"#,
            unique("ov")
        ),
    );
    assert_eq!(status, 400, "{body}");

    // Addresses: a second container gets another one, and asking for an allocated one fails.
    let other = unique("other");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &other,
        "--network",
        &net,
        "busybox",
        "sleep",
        "1000",
    ]);
    let ip2 = inspect(
        &d,
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &other,
    );
    assert_ne!(ip, ip2);
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        &net,
        "--ip",
        &ip,
        "busybox",
        "true",
    ]);
    assert!(
        !o.status.success(),
        "an allocated address was handed out twice"
    );

    d.docker_ok(&["rm", "-f", &web, &other]);
    d.docker_ok(&["network", "rm", &net]);
    let ls = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.lines().any(|l| l == net), "ls after rm: {ls}");
}

#[test]
fn published_port_answers_on_localhost_until_rm() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let web = unique("pub");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        &httpd_cmd("published"),
    ]);
    let port = inspect(
        &d,
        "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
        &web,
    );
    let addr = format!("127.0.0.1:{port}");
    let body = eventually("the published port answers", || http_get(&addr));
    assert_eq!(body.trim(), "published");
    let mapped = d.docker_ok(&["port", &web, "80"]);
    assert_eq!(mapped.trim(), addr, "docker port");
    let bindings = inspect(&d, "{{json .HostConfig.PortBindings}}", &web);
    assert!(bindings.contains("\"80/tcp\""), "PortBindings: {bindings}");
    let ps = d.docker_ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(
        ps.contains(&format!("127.0.0.1:{port}->80/tcp")),
        "ps: {ps}"
    );
    assert!(nft_table(&d).contains(&format!("dport {port}")));
    d.docker_ok(&["rm", "-f", &web]);
    assert!(http_get(&addr).is_none(), "still answering after rm");
    assert!(!nft_table(&d).contains(&format!("dport {port}")));
}

/// A network namespace with a veth to the host: the "outside" world, with no route back to the
/// container subnets (only a masqueraded request can be answered).
struct Outside {
    ns: String,
    host_if: String,
}

impl Outside {
    fn new(host_ip: &str, far_ip: &str) -> Outside {
        let t = unique("o");
        let t = &t[t.len().saturating_sub(8)..];
        let ns = format!("bo-{t}");
        let host_if = format!("bo{t}");
        let far_if = format!("bf{t}");
        let run = |args: &[&str]| {
            let o = Command::new(args[0])
                .args(&args[1..])
                .output()
                .expect("run");
            assert!(
                o.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        run(&["ip", "netns", "add", &ns]);
        let out = Outside {
            ns: ns.clone(),
            host_if: host_if.clone(),
        };
        run(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &far_if,
        ]);
        run(&["ip", "link", "set", &far_if, "netns", &ns]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{host_ip}/24"),
            "dev",
            &host_if,
        ]);
        run(&["ip", "link", "set", &host_if, "up"]);
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{far_ip}/24"),
            "dev",
            &far_if,
        ]);
        run(&["ip", "-n", &ns, "link", "set", &far_if, "up"]);
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        out
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

#[test]
fn default_bridge_reaches_an_outside_host_through_nat() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    // A /24 next to the daemon's own ones, free for the same reason.
    let third = d.net.subnet.split('.').nth(2).unwrap().to_string();
    let (host_ip, far_ip) = (format!("10.79.{third}.1"), format!("10.79.{third}.2"));
    let outside = Outside::new(&host_ip, &far_ip);
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "outside-world\n").unwrap();
    let mut server = Command::new("ip")
        .args(["netns", "exec", &outside.ns, "busybox", "httpd", "-f", "-p"])
        .arg(format!("{far_ip}:8090"))
        .arg("-h")
        .arg(www.path())
        .spawn()
        .expect("start httpd in the outside namespace");
    let out = eventually("the outside server through NAT", || {
        let o = d.docker(&[
            "run",
            "--rm",
            "busybox",
            "wget",
            "-qO-",
            &format!("http://{far_ip}:8090/"),
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.trim(), "outside-world");
    // Default-bridge containers get the gateway and an address in the daemon's subnet.
    let c = unique("gw");
    d.docker_ok(&["run", "-d", "--name", &c, "busybox", "sleep", "1000"]);
    let gw = inspect(&d, "{{.NetworkSettings.Gateway}}", &c);
    let ip = inspect(&d, "{{.NetworkSettings.IPAddress}}", &c);
    let prefix = d.net.subnet.rsplit_once('.').unwrap().0.to_string();
    assert!(
        ip.starts_with(&prefix) && gw.starts_with(&prefix),
        "ip {ip} gw {gw}"
    );
    let mac = inspect(&d, "{{.NetworkSettings.MacAddress}}", &c);
    assert!(mac.starts_with("02:42:"), "mac {mac}");
    d.docker_ok(&["rm", "-f", &c]);
}

#[test]
fn networking_survives_daemon_sigkill_without_duplicate_rules() {
    if !prerequisites() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox("busybox:latest");
    let net = unique("rnet");
    let web = unique("rweb");
    d.docker_ok(&["network", "create", &net]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "--network",
        &net,
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        &httpd_cmd("survivor"),
    ]);
    let port = inspect(
        &d,
        "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
        &web,
    );
    let addr = format!("127.0.0.1:{port}");
    assert_eq!(
        eventually("published port", || http_get(&addr)).trim(),
        "survivor"
    );
    let before = rules(&nft_table(&d));

    d.restart();
    d.restart();

    let after = rules(&nft_table(&d));
    assert_eq!(before, after, "the table changed across restarts");
    let mut dedup = after.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), after.len(), "duplicate rules: {after:#?}");
    // Published port, name resolution (the DNS listener is back) and the address all intact.
    assert_eq!(http_get(&addr).as_deref().map(str::trim), Some("survivor"));
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{web}/"),
    ]);
    assert_eq!(out.trim(), "survivor");
    let ip = inspect(
        &d,
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &web,
    );
    // The surviving container's address is still allocated: a new container gets another.
    let other = unique("rother");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &other,
        "--network",
        &net,
        "busybox",
        "sleep",
        "100",
    ]);
    let ip2 = inspect(
        &d,
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &other,
    );
    assert_ne!(ip, ip2);
    d.docker_ok(&["rm", "-f", &web, &other]);
    assert!(http_get(&addr).is_none());
    d.docker_ok(&["network", "rm", &net]);
}

#[test]
fn network_modes_flags_connect_and_stats() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    // none: loopback only.
    let links = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert!(
        links.contains("lo:") && !links.contains("eth0"),
        "links: {links}"
    );
    // host: the host's interfaces.
    let links = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert!(links.contains(&d.net.bridge), "host links: {links}");

    // Flags on the default bridge.
    let c = unique("flags");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &c,
        "--hostname",
        "myhost",
        "--add-host",
        "db.example:10.1.2.3",
        "--dns",
        "9.9.9.9",
        "--mac-address",
        "02:42:aa:bb:cc:dd",
        "-P",
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    assert_eq!(d.docker_ok(&["exec", &c, "hostname"]).trim(), "myhost");
    let hosts = d.docker_ok(&["exec", &c, "cat", "/etc/hosts"]);
    assert!(hosts.contains("10.1.2.3\tdb.example"), "hosts: {hosts}");
    assert!(hosts.contains("myhost"), "hosts: {hosts}");
    let resolv = d.docker_ok(&["exec", &c, "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 9.9.9.9"), "resolv: {resolv}");
    let mac = d.docker_ok(&["exec", &c, "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(mac.trim(), "02:42:aa:bb:cc:dd");
    assert_eq!(
        inspect(&d, "{{.NetworkSettings.MacAddress}}", &c),
        "02:42:aa:bb:cc:dd"
    );

    // container:<name> shares the namespace: same address, reaches the server on localhost.
    let ip = inspect(&d, "{{.NetworkSettings.IPAddress}}", &c);
    let shared = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        &format!("container:{c}"),
        "busybox",
        "sh",
        "-c",
        "ip -o -4 addr show eth0; wget -qO- http://127.0.0.1/",
    ]);
    assert!(
        shared.contains(&ip) && shared.contains("hi"),
        "shared: {shared}"
    );

    // connect / disconnect a running container.
    let net = unique("cnet");
    let bridge = format!("bc{}", &d.net.bridge[2..]);
    d.docker_ok(&[
        "network",
        "create",
        "-o",
        &format!("com.docker.network.bridge.name={bridge}"),
        &net,
    ]);
    assert!(std::path::Path::new(&format!("/sys/class/net/{bridge}")).exists());
    d.docker_ok(&["network", "connect", "--alias", "joined", &net, &c]);
    let links = d.docker_ok(&["exec", &c, "ip", "-o", "link"]);
    assert!(links.contains("eth1"), "after connect: {links}");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "wget",
        "-qO-",
        "http://joined/",
    ]);
    assert_eq!(out.trim(), "hi");
    let o = d.docker(&["network", "rm", &net]);
    assert!(!o.status.success(), "rm of a network in use succeeded");
    d.docker_ok(&["network", "disconnect", &net, &c]);
    let links = d.docker_ok(&["exec", &c, "ip", "-o", "link"]);
    assert!(!links.contains("eth1"), "after disconnect: {links}");

    // stats: per-interface counters that move with traffic.
    let stats = d.docker_ok(&["stats", "--no-stream", "--format", "{{.NetIO}}", &c]);
    assert!(
        !stats.trim().is_empty() && !stats.contains("0B / 0B"),
        "net io: {stats}"
    );

    d.docker_ok(&["rm", "-f", &c]);
    d.docker_ok(&["network", "rm", &net]);
}

fn berth_ok(d: &Daemon, args: &[&str]) -> String {
    let o = d.berth_cmd(args).output().expect("run berth");
    assert!(
        o.status.success(),
        "berth {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn berth_cli_network_commands_and_run_flags() {
    if !prerequisites() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox("busybox:latest");
    let net = unique("bnet");
    let web = unique("bweb");
    berth_ok(&d, &["network", "create", "--label", "k=v", &net]);
    assert!(berth_ok(&d, &["network", "ls"]).contains(&net));
    berth_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &web,
            "--network",
            &net,
            "--network-alias",
            "site",
            "-p",
            "127.0.0.1::80",
            "--add-host",
            "x.test:10.9.9.9",
            "busybox",
            "sh",
            "-c",
            &httpd_cmd("via-berth"),
        ],
    );
    let out = eventually("wget by alias", || {
        let o = d
            .berth_cmd(&[
                "run",
                "--rm",
                "--network",
                &net,
                "busybox",
                "wget",
                "-qO-",
                "http://site/",
            ])
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert_eq!(out.trim(), "via-berth");
    let port = inspect(
        &d,
        "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
        &web,
    );
    let body = eventually("published port", || http_get(&format!("127.0.0.1:{port}")));
    assert_eq!(body.trim(), "via-berth");
    let inspected = berth_ok(&d, &["network", "inspect", &net]);
    assert!(
        inspected.contains(&web) && inspected.contains("\"k\": \"v\""),
        "{inspected}"
    );
    let o = d.berth_cmd(&["network", "rm", &net]).output().unwrap();
    assert!(!o.status.success(), "network rm in use succeeded");
    berth_ok(&d, &["rm", "-f", &web]);
    let pruned = berth_ok(&d, &["network", "prune", "-f"]);
    assert!(pruned.contains(&net), "prune: {pruned}");
    assert!(!berth_ok(&d, &["network", "ls"]).contains(&net));
}
