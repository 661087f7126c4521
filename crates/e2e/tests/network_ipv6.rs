//! IPv6 on user-defined networks through the stock docker CLI: `network create --ipv6`,
//! addresses and routes in containers, `--ip6`, AAAA from the embedded DNS, v6 traffic between
//! containers, the ip6 nftables table, bad subnets, and IPAM surviving a daemon restart.

use std::process::Command;

use berth_e2e::{eventually, prerequisites, unique, Daemon};

fn httpd_cmd(text: &str) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www")
}

fn inspect(d: &Daemon, fmt: &str, name: &str) -> String {
    d.docker_ok(&["inspect", "--format", fmt, name])
        .trim()
        .to_string()
}

fn nft6(d: &Daemon) -> Option<String> {
    let o = Command::new("nft")
        .args(["list", "table", "ip6", &d.net.table])
        .output()
        .expect("run nft");
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn ipv6_available() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        .is_ok_and(|v| v.trim() == "0")
}

#[test]
fn ipv6_networks_address_route_resolve_and_survive_restart() {
    if !prerequisites() || !ipv6_available() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox("busybox:latest");
    // A /64 of this daemon's own (tests run in parallel).
    let third = d.net.subnet.split('.').nth(2).unwrap_or("1").to_string();
    let prefix = format!("fd00:beef:{third}:1");
    let subnet = format!("{prefix}::/64");
    let net = unique("v6net");
    d.docker_ok(&["network", "create", "--ipv6", "--subnet", &subnet, &net]);
    assert_eq!(inspect(&d, "{{.EnableIPv6}}", &net), "true");
    let cfg = inspect(&d, "{{json .IPAM.Config}}", &net);
    assert!(
        cfg.contains(&subnet) && cfg.contains(&format!("{prefix}::1")),
        "{cfg}"
    );

    let srv = unique("srv6");
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
        &httpd_cmd("hello-over-v6"),
    ]);
    let fmt = format!("{{{{(index .NetworkSettings.Networks \"{net}\").GlobalIPv6Address}}}}");
    let addr = inspect(&d, &fmt, &srv);
    assert!(addr.starts_with(&format!("{prefix}::")), "address: {addr}");
    let gw = inspect(
        &d,
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPv6Gateway}}}}"),
        &srv,
    );
    assert_eq!(gw, format!("{prefix}::1"));
    assert_eq!(
        inspect(
            &d,
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").GlobalIPv6PrefixLen}}}}"),
            &srv
        ),
        "64"
    );

    // --ip6, the default route, AAAA by name, and HTTP over v6 by address and by name.
    let cli = unique("cli6");
    let wanted = format!("{prefix}::99");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &cli,
        "--network",
        &net,
        "--ip6",
        &wanted,
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(inspect(&d, &fmt, &cli), wanted);
    let routes = d.docker_ok(&["exec", &cli, "ip", "-6", "route"]);
    assert!(
        routes.contains(&format!("default via {prefix}::1 dev eth0")),
        "routes: {routes}"
    );
    let out = eventually("httpd answers over IPv6", || {
        let o = d.docker(&[
            "exec",
            &cli,
            "wget",
            "-qO-",
            &format!("http://[{addr}]:80/"),
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert_eq!(out.trim(), "hello-over-v6");
    let ns = d.docker_ok(&["exec", &cli, "nslookup", "-type=AAAA", &srv, "127.0.0.11"]);
    assert!(ns.contains(&addr), "nslookup AAAA: {ns}");
    let hosts = d.docker_ok(&["exec", &cli, "cat", "/etc/hosts"]);
    assert!(hosts.contains(&wanted), "hosts: {hosts}");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        &net,
        "--ip6",
        &wanted,
        "busybox",
        "true",
    ]);
    assert!(!o.status.success(), "an address was handed out twice");
    let ninspect = d.docker_ok(&["network", "inspect", &net]);
    assert!(ninspect.contains(&format!("{wanted}/64")), "{ninspect}");

    // The ip6 table: outbound masquerade for the subnet.
    let table = nft6(&d).expect("ip6 table");
    assert!(
        table.contains(&format!("ip6 saddr {subnet}")) && table.contains("masquerade"),
        "{table}"
    );

    // A published port answers on the host's global IPv6 addresses too.
    let host6 = Command::new("ip")
        .args(["-6", "-o", "addr", "show", "scope", "global"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.contains(" br-") && !l.contains(&d.net.bridge))
        .find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.iter()
                .position(|x| *x == "inet6")
                .and_then(|i| w.get(i + 1))
                .and_then(|a| a.split('/').next())
                .map(str::to_string)
        });
    if let Some(h6) = host6.filter(|h| !h.starts_with(&prefix)) {
        let pubd = unique("pub6");
        d.docker_ok(&[
            "run",
            "-d",
            "--name",
            &pubd,
            "--network",
            &net,
            "-p",
            "80",
            "busybox",
            "sh",
            "-c",
            &httpd_cmd("published-v6"),
        ]);
        let port = d.docker_ok(&["port", &pubd, "80/tcp"]);
        let port = port
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .unwrap_or("")
            .trim()
            .to_string();
        let body = eventually("published port over IPv6", || {
            let mut s = std::net::TcpStream::connect(format!("[{h6}]:{port}")).ok()?;
            use std::io::{Read, Write};
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            out.contains("published-v6").then_some(out)
        });
        assert!(body.contains("published-v6"));
        d.docker_ok(&["rm", "-f", &pubd]);
    }

    // Bad input: clear errors, nothing created.
    for (args, want) in [
        (vec!["--ipv6", "--subnet", "fd00:beef::1/64"], "host bits"),
        (vec!["--ipv6", "--subnet", &subnet], "overlaps"),
        (vec!["--ipv6", "--subnet", "fe80::/64"], "not a unicast"),
        (vec!["--subnet", "fd00:dead::/64"], "--ipv6"),
        (vec!["--ipv6", "--subnet", "fd00:zz::/64"], "IPv6"),
    ] {
        let bad = unique("bad6");
        let mut a = vec!["network", "create"];
        a.extend(args.iter().copied());
        a.push(&bad);
        let o = d.docker(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
        let ls = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
        assert!(!ls.lines().any(|l| l == bad), "{bad} half-created: {ls}");
    }

    // A restarted daemon hands out neither address again.
    d.restart();
    let third_c = unique("c6");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &third_c,
        "--network",
        &net,
        "busybox",
        "sleep",
        "300",
    ]);
    let a3 = inspect(&d, &fmt, &third_c);
    assert!(a3.starts_with(&format!("{prefix}::")), "{a3}");
    assert!(a3 != addr && a3 != wanted, "{a3} handed out twice");
    let out = d.docker_ok(&[
        "exec",
        &third_c,
        "wget",
        "-qO-",
        &format!("http://[{addr}]/"),
    ]);
    assert_eq!(out.trim(), "hello-over-v6");

    d.docker_ok(&["rm", "-f", &srv, &cli, &third_c]);
    d.docker_ok(&["network", "rm", &net]);
    assert!(
        nft6(&d).is_none(),
        "ip6 table left after the last IPv6 network"
    );
}
