//! Bridge networks, published ports and outbound NAT on the real kernel (root). Containers are
//! network namespaces made with `ip netns add`; the "outside" host is another namespace wired
//! to the host by its own veth pair. Each test has its own subnets, bridge names, ports and
//! nft table, so they run in parallel.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use berth_network::ports::PortSpec;
use berth_network::{netlink, netns, ConnectOptions, Error, NetworkConfig};
use common::*;

fn net_config(name: &str, subnet: &str) -> NetworkConfig {
    NetworkConfig {
        name: name.to_string(),
        bridge: Some(format!("bt{}", token())),
        subnet: Some(subnet.parse().unwrap()),
        ..Default::default()
    }
}

#[test]
fn two_containers_on_a_bridge_reach_each_other() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    let net = g
        .state
        .create_network(net_config("n1", "10.231.1.0/24"))
        .unwrap()
        .clone();
    assert!(netlink::link_exists(&net.bridge).unwrap());
    let (a, b) = (Netns::new("bta"), Netns::new("btb"));
    let ea = g
        .state
        .connect("a", &a.reference(), "n1", &ConnectOptions::default())
        .unwrap();
    let eb = g
        .state
        .connect("b", &b.reference(), "n1", &ConnectOptions::default())
        .unwrap();
    assert_ne!(ea.ip, eb.ip);
    assert_eq!(ea.ifname, "eth0");
    // The container's end: renamed eth0, addressed, MAC set, up, default route via the gateway.
    let addr = run_ok(&["ip", "-n", &a.name, "-o", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("{}/24", ea.ip)), "{addr}");
    let link = run_ok(&["ip", "-n", &a.name, "link", "show", "eth0"]);
    assert!(link.contains(&ea.mac) && link.contains("UP"), "{link}");
    let route = run_ok(&["ip", "-n", &a.name, "route", "show", "default"]);
    assert!(
        route.contains(&format!("via {}", net.ipam.gateway)),
        "{route}"
    );
    let before = g.state.stats("a").unwrap();

    let _server = Httpd::start(&b, 8080, "hello from b");
    let body = a.wget(&format!("http://{}:8080/", eb.ip));
    assert_eq!(body.as_deref(), Some("hello from b"));

    // Counters moved in the container's view: it sent a request and got a reply.
    let after = g.state.stats("a").unwrap();
    assert_eq!(after[0].0, "eth0");
    assert!(after[0].1.tx_bytes > before[0].1.tx_bytes);
    assert!(after[0].1.rx_packets > before[0].1.rx_packets);

    // A second network becomes eth1 (no second default route); after eth0's network goes,
    // a new connection reuses the free name eth0.
    g.state
        .create_network(net_config("n1b", "10.231.14.0/24"))
        .unwrap();
    let e1 = g
        .state
        .connect("a", &a.reference(), "n1b", &ConnectOptions::default())
        .unwrap();
    assert_eq!((e1.ifname.as_str(), e1.gateway), ("eth1", None));
    g.state.disconnect("a", "n1").unwrap();
    let e0 = g
        .state
        .connect("a", &a.reference(), "n1", &ConnectOptions::default())
        .unwrap();
    assert_eq!(e0.ifname, "eth0");
    g.state.disconnect("a", "n1b").unwrap();
    let ea = e0;

    // Disconnect removes the veth and releases the address.
    g.state.disconnect("a", "n1").unwrap();
    assert!(!netlink::link_exists(&ea.host_veth).unwrap());
    assert_eq!(a.links(), vec!["lo".to_string()]);
    assert!(!g
        .state
        .network("n1")
        .unwrap()
        .ipam
        .allocated
        .contains_key(&ea.ip));
}

#[test]
fn published_port_answers_locally_on_host_addresses_and_hairpin_then_stops() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    g.state
        .create_network(net_config("n2", "10.231.2.0/24"))
        .unwrap();
    let (web, client, outside) = (Netns::new("btw"), Netns::new("btc"), Netns::new("bto"));
    let link = OutsideLink::new(
        &outside,
        "10.241.2.1".parse().unwrap(),
        "10.241.2.2".parse().unwrap(),
    );
    g.state
        .connect("web", &web.reference(), "n2", &ConnectOptions::default())
        .unwrap();
    g.state
        .connect(
            "client",
            &client.reference(),
            "n2",
            &ConnectOptions::default(),
        )
        .unwrap();
    let _server = Httpd::start(&web, 80, "published");
    let host_port = 18482;
    let published = g
        .state
        .publish(
            "web",
            &[PortSpec::parse(&format!("{host_port}:80")).unwrap()],
        )
        .unwrap();
    assert_eq!(published[0].host_port, host_port);

    // 127.0.0.1 from the host (output chain + route_localnet + masquerade).
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, host_port));
    assert!(http_get(local).unwrap().ends_with("published"));
    // One of the host's addresses, from the host itself and from the outside host.
    let host_addr = SocketAddr::from((link.host_ip, host_port));
    assert!(http_get(host_addr).unwrap().ends_with("published"));
    let url = format!("http://{}:{host_port}/", link.host_ip);
    assert_eq!(outside.wget(&url).as_deref(), Some("published"));
    // Hairpin: another container, and the container itself, through the host's address.
    assert_eq!(client.wget(&url).as_deref(), Some("published"));
    assert_eq!(web.wget(&url).as_deref(), Some("published"));

    g.state.unpublish("web").unwrap();
    assert!(http_get(local).is_err(), "still answering on 127.0.0.1");
    assert!(
        client.wget(&url).is_none(),
        "still answering for containers"
    );
    assert!(outside.wget(&url).is_none(), "still answering from outside");
}

#[test]
fn ephemeral_and_udp_ports_and_removal_with_container() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    g.state
        .create_network(net_config("n3", "10.231.3.0/24"))
        .unwrap();
    let c = Netns::new("bte");
    g.state
        .connect("c", &c.reference(), "n3", &ConnectOptions::default())
        .unwrap();
    // Specific host address, no host port: one is picked.
    let p = g
        .state
        .publish("c", &[PortSpec::parse("127.0.0.1::80/udp").unwrap()])
        .unwrap();
    assert!(p[0].host_port > 0);
    assert_eq!(dnat_rules(&table_json(&g.table())), 1);
    g.state.remove_container("c").unwrap();
    assert!(g.state.ports.is_empty() && g.state.endpoints.is_empty());
    assert_eq!(dnat_rules(&table_json(&g.table())), 0);
}

#[test]
fn outbound_nat_reaches_the_outside_host_with_the_hosts_address() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    g.state
        .create_network(net_config("n4", "10.231.4.0/24"))
        .unwrap();
    let (c, outside) = (Netns::new("btn"), Netns::new("btx"));
    let link = OutsideLink::new(
        &outside,
        "10.241.4.1".parse().unwrap(),
        "10.241.4.2".parse().unwrap(),
    );
    g.state
        .connect("c", &c.reference(), "n4", &ConnectOptions::default())
        .unwrap();

    // An HTTP server in the outside namespace that records who connected. The outside has no
    // route back to the container subnet, so only a masqueraded request can be answered.
    let listener = netns::run_in(&outside.reference(), || {
        Ok(TcpListener::bind((link.far_ip, 8090)).unwrap())
    })
    .unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, peer) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\noutside")
            .unwrap();
        peer
    });
    let body = c.wget(&format!("http://{}:8090/", link.far_ip));
    assert_eq!(body.as_deref(), Some("outside"));
    let peer = server.join().unwrap();
    assert_eq!(
        peer.ip(),
        std::net::IpAddr::V4(link.host_ip),
        "not masqueraded"
    );
}

#[test]
fn reconcile_is_idempotent_and_survives_reload() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    g.state
        .create_network(net_config("n5", "10.231.5.0/24"))
        .unwrap();
    g.state
        .create_network(net_config("n5b", "10.231.6.0/24"))
        .unwrap();
    let c = Netns::new("btr");
    g.state
        .connect("c", &c.reference(), "n5", &ConnectOptions::default())
        .unwrap();
    g.state
        .publish(
            "c",
            &[
                PortSpec::parse("18485:80").unwrap(),
                PortSpec::parse("127.0.0.1:18486:81/udp").unwrap(),
            ],
        )
        .unwrap();
    let first = table_json(&g.table());
    g.state.reconcile().unwrap();
    g.state.reconcile().unwrap();
    let second = table_json(&g.table());
    assert_eq!(first, second);
    assert_eq!(dnat_rules(&second), 2);

    // A "restarted daemon": the state reloaded from JSON reconciles to the same table, and the
    // bridge comes back if it vanished meanwhile.
    let reloaded = berth_network::NetworkState::from_json(&g.state.to_json().unwrap()).unwrap();
    assert_eq!(reloaded, g.state);
    let bridge = reloaded.network("n5b").unwrap().bridge.clone();
    netlink::delete_link(&bridge).unwrap();
    reloaded.reconcile().unwrap();
    assert!(netlink::link_exists(&bridge).unwrap());
    assert_eq!(table_json(&g.table()), first);
    assert!(reloaded.vanished_endpoints().unwrap().is_empty());

    // The running container keeps working through all this: its published port answers, and
    // it does again after someone wipes berth's table and the daemon reconciles.
    let _server = Httpd::start(&c, 80, "still here");
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 18485));
    assert!(http_get(local).unwrap().ends_with("still here"));
    berth_network::nft::remove(&g.table()).unwrap();
    assert!(http_get(local).is_err());
    reloaded.reconcile().unwrap();
    assert_eq!(table_json(&g.table()), first);
    assert!(http_get(local).unwrap().ends_with("still here"));
}

#[test]
fn addresses_are_never_reused_while_allocated_even_after_reload() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    g.state
        .create_network(net_config("n7", "10.231.7.0/24"))
        .unwrap();
    let nss: Vec<Netns> = (0..3).map(|_| Netns::new("bti")).collect();
    let mut ips = Vec::new();
    for (i, ns) in nss.iter().enumerate() {
        let e = g
            .state
            .connect(
                &format!("c{i}"),
                &ns.reference(),
                "n7",
                &ConnectOptions::default(),
            )
            .unwrap();
        ips.push(e.ip);
    }
    // Free the middle one: it is not handed out again straight away.
    g.state.disconnect("c1", "n7").unwrap();
    let mut reloaded = berth_network::NetworkState::from_json(&g.state.to_json().unwrap()).unwrap();
    let extra = Netns::new("bti");
    let e = reloaded
        .connect("c3", &extra.reference(), "n7", &ConnectOptions::default())
        .unwrap();
    assert!(!ips.contains(&e.ip), "{} reused", e.ip);
    // An explicit request for a held address fails and leaves nothing in the namespace.
    let again = Netns::new("bti");
    let err = reloaded
        .connect(
            "c4",
            &again.reference(),
            "n7",
            &ConnectOptions {
                ip: Some(ips[0]),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::AddressInUse { .. }), "{err}");
    assert_eq!(again.links(), vec!["lo".to_string()]);
    // An explicit free address is honoured.
    let wanted: Ipv4Addr = "10.231.7.200".parse().unwrap();
    let e = reloaded
        .connect(
            "c4",
            &again.reference(),
            "n7",
            &ConnectOptions {
                ip: Some(wanted),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(e.ip, wanted);
    g.state = reloaded;
}

#[test]
fn bad_input_gives_clear_errors_and_leaves_nothing_behind() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    g.state
        .create_network(net_config("n8", "10.231.8.0/24"))
        .unwrap();
    let c = Netns::new("btz");
    g.state
        .connect("c", &c.reference(), "n8", &ConnectOptions::default())
        .unwrap();
    g.state
        .publish("c", &[PortSpec::parse("18488:80").unwrap()])
        .unwrap();
    let table_before = table_json(&g.table());
    let state_before = g.state.clone();

    // Overlapping subnet (with a berth network, then with a host interface).
    let cfg = net_config("n8b", "10.231.8.128/25");
    let bridge = cfg.bridge.clone().unwrap();
    let err = g.state.create_network(cfg).unwrap_err();
    assert!(matches!(err, Error::SubnetOverlap { .. }), "{err}");
    assert!(err.to_string().contains("network n8"), "{err}");
    assert!(!netlink::link_exists(&bridge).unwrap());
    let outside = Netns::new("bty");
    let link = OutsideLink::new(
        &outside,
        "10.241.8.1".parse().unwrap(),
        "10.241.8.2".parse().unwrap(),
    );
    let err = g
        .state
        .create_network(net_config("n8c", "10.241.8.0/24"))
        .unwrap_err();
    assert!(err.to_string().contains("host interface"), "{err}");
    // A bridge name that is an existing non-bridge host link is refused, the link untouched.
    let mut cfg = net_config("n8e", "10.231.15.0/24");
    cfg.bridge = Some(link.host_if.clone());
    let err = g.state.create_network(cfg).unwrap_err();
    assert!(err.to_string().contains("not a bridge"), "{err}");
    let addrs = run_ok(&["ip", "-o", "-4", "addr", "show", &link.host_if]);
    assert!(!addrs.contains("10.231.15."), "{addrs}");
    // Invalid subnet, duplicate name.
    let mut cfg = net_config("n8d", "10.231.9.0/24");
    cfg.gateway = Some("10.1.1.1".parse().unwrap());
    assert!(matches!(
        g.state.create_network(cfg).unwrap_err(),
        Error::AddressOutOfRange { .. }
    ));
    assert!(matches!(
        g.state
            .create_network(net_config("n8", "10.231.10.0/24"))
            .unwrap_err(),
        Error::NetworkExists(_)
    ));

    // Unknown network: no veth in the container.
    let d = Netns::new("btz");
    let err = g
        .state
        .connect("d", &d.reference(), "nope", &ConnectOptions::default())
        .unwrap_err();
    assert_eq!(err.to_string(), "network \"nope\" not found");
    assert_eq!(d.links(), vec!["lo".to_string()]);
    // A container namespace that does not exist: address released, no veth left.
    let gone = berth_network::NetnsRef::Path("/run/netns/berth-no-such-ns".into());
    assert!(g
        .state
        .connect("e", &gone, "n8", &ConnectOptions::default())
        .is_err());

    // Ports: already published, or held by a host process; all-or-nothing batches.
    let err = g
        .state
        .publish("c", &[PortSpec::parse("18488:81").unwrap()])
        .unwrap_err();
    assert!(matches!(err, Error::PortTaken { .. }), "{err}");
    let holder = TcpListener::bind("0.0.0.0:0").unwrap();
    let held = holder.local_addr().unwrap().port();
    let err = g
        .state
        .publish(
            "c",
            &[
                PortSpec::parse("18489:82").unwrap(),
                PortSpec::parse(&format!("{held}:80")).unwrap(),
            ],
        )
        .unwrap_err();
    assert!(err.to_string().contains("host process"), "{err}");
    assert!(matches!(
        g.state
            .publish("nobody", &[PortSpec::parse("18490:80").unwrap()])
            .unwrap_err(),
        Error::NotConnected { .. }
    ));

    // Removing a network in use is refused.
    let err = g.state.remove_network("n8").unwrap_err();
    assert!(matches!(err, Error::NetworkInUse { .. }), "{err}");

    assert_eq!(g.state, state_before, "state changed by failed calls");
    assert_eq!(
        table_json(&g.table()),
        table_before,
        "rules changed by failed calls"
    );

    // Once empty, the network and its bridge go.
    let bridge = g.state.network("n8").unwrap().bridge.clone();
    g.state.remove_container("c").unwrap();
    g.state.remove_network("n8").unwrap();
    assert!(!netlink::link_exists(&bridge).unwrap());
}

#[test]
fn a_dead_containers_veth_goes_with_its_namespace_and_release_frees_the_rest() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    g.state
        .create_network(net_config("n9", "10.231.11.0/24"))
        .unwrap();
    let c = Netns::new("btd");
    let e = g
        .state
        .connect("c", &c.reference(), "n9", &ConnectOptions::default())
        .unwrap();
    g.state
        .publish("c", &[PortSpec::parse("18491:80").unwrap()])
        .unwrap();
    // The container's namespace goes; the kernel removes the veth with it (asynchronously,
    // so poll for it).
    drop(c);
    let mut vanished = Vec::new();
    for _ in 0..400 {
        vanished = g.state.vanished_endpoints().unwrap();
        if !vanished.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(vanished.len(), 1);
    assert_eq!(vanished[0].host_veth, e.host_veth);
    g.state.release_container("c").unwrap();
    assert!(g.state.endpoints.is_empty() && g.state.ports.is_empty());
    assert!(!g
        .state
        .network("n9")
        .unwrap()
        .ipam
        .allocated
        .contains_key(&e.ip));
    assert_eq!(dnat_rules(&table_json(&g.table())), 0);
}

#[test]
fn a_process_namespace_given_by_pid_is_wired_up() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    g.state
        .create_network(net_config("n10", "10.231.12.0/24"))
        .unwrap();
    // A "container": a process in its own network namespace (unshare execs sleep in place).
    let mut child = std::process::Command::new("unshare")
        .args(["--net", "sleep", "600"])
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let _kill = Kill(&mut child);
    // Wait until unshare has switched namespaces (its netns differs from ours).
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    for _ in 0..400 {
        if std::fs::read_link(format!("/proc/{pid}/ns/net")).ok() != Some(ours.clone()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let e = g
        .state
        .connect(
            "p",
            &berth_network::NetnsRef::Pid(pid),
            "n10",
            &ConnectOptions::default(),
        )
        .unwrap();
    let addr = run_ok(&[
        "nsenter",
        "-t",
        &pid.to_string(),
        "-n",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(addr.contains(&format!("{}/24", e.ip)), "{addr}");
    g.state.remove_container("p").unwrap();
}

#[test]
fn containers_cannot_reach_the_hosts_loopback_through_route_localnet() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    let net = g
        .state
        .create_network(net_config("n11", "10.231.13.0/24"))
        .unwrap()
        .clone();
    let c = Netns::new("btl");
    g.state
        .connect("c", &c.reference(), "n11", &ConnectOptions::default())
        .unwrap();
    // A host service on every address, answering HTTP.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nhost");
        }
    });
    // Reachable through the gateway, as any host service is.
    let gw = net.ipam.gateway;
    assert_eq!(
        c.wget(&format!("http://{gw}:{port}/")).as_deref(),
        Some("host")
    );
    // A hostile container routes 127.1.2.3 to its gateway (it has NET_ADMIN in its namespace).
    for cmd in [
        vec![
            "ip",
            "route",
            "del",
            "local",
            "127.0.0.0/8",
            "dev",
            "lo",
            "table",
            "local",
        ],
        vec![
            "busybox",
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet",
        ],
    ] {
        let out = c.exec(&cmd);
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let gw_s = gw.to_string();
    let out = c.exec(&[
        "ip",
        "route",
        "add",
        "127.1.2.3/32",
        "via",
        &gw_s,
        "dev",
        "eth0",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(c.wget(&format!("http://127.1.2.3:{port}/")), None);
}

#[test]
fn user_networks_get_distinct_subnets_from_the_pool() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    g.state.settings.pool = "10.233.0.0/22".parse().unwrap();
    g.state.settings.pool_prefix = 24;
    let names: Vec<String> = (0..3).map(|i| format!("u{i}-{}", token())).collect();
    let mut subnets = Vec::new();
    for n in &names {
        let net = g
            .state
            .create_network(berth_network::NetworkConfig::user(n))
            .unwrap()
            .clone();
        assert!(net.embedded_dns);
        assert!(net.bridge.starts_with("br-") && netlink::link_exists(&net.bridge).unwrap());
        subnets.push(net.ipam.subnet);
    }
    for (i, a) in subnets.iter().enumerate() {
        assert!(g.state.settings.pool.contains(a));
        for b in &subnets[i + 1..] {
            assert!(!berth_network::ipam::overlaps(a, b), "{a} and {b} overlap");
        }
    }
    // The pool holds four /24s: one more fits, then it is exhausted with a clear error.
    g.state
        .create_network(berth_network::NetworkConfig::user(&format!(
            "u3-{}",
            token()
        )))
        .unwrap();
    let err = g
        .state
        .create_network(berth_network::NetworkConfig::user(&format!(
            "u4-{}",
            token()
        )))
        .unwrap_err();
    assert!(err.to_string().contains("pool exhausted"), "{err}");
    for n in &names {
        let bridge = g.state.network(n).unwrap().bridge.clone();
        g.state.remove_network(n).unwrap();
        assert!(!netlink::link_exists(&bridge).unwrap());
    }
}

/// Lines of the host's conntrack table whose original direction is `src` -> `dst`:`dport`.
fn conntrack_flows(src: Ipv4Addr, dst: Ipv4Addr, dport: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/nf_conntrack")
        .expect("read /proc/net/nf_conntrack (the nf_conntrack module)");
    let want = [
        format!("src={src}"),
        format!("dst={dst}"),
        format!("dport={dport}"),
    ];
    table
        .lines()
        .filter(|l| {
            // The original direction: the fields up to the second src=.
            let fields: Vec<&str> = l.split_whitespace().collect();
            let first = fields.iter().position(|f| f.starts_with("src="));
            let original = first.map(|i| {
                let rest = &fields[i..];
                let len = rest[1..]
                    .iter()
                    .position(|f| f.starts_with("src="))
                    .map_or(rest.len(), |n| n + 1);
                &rest[..len]
            });
            original.is_some_and(|o| want.iter().all(|w| o.contains(&w.as_str())))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn traffic_between_containers_skips_conntrack_and_published_ports_stay_tracked() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    let net = g
        .state
        .create_network(net_config("n16", "10.231.16.0/24"))
        .unwrap()
        .clone();
    let (a, b) = (Netns::new("btna"), Netns::new("btnb"));
    let ea = g
        .state
        .connect("a", &a.reference(), "n16", &ConnectOptions::default())
        .unwrap();
    let eb = g
        .state
        .connect("b", &b.reference(), "n16", &ConnectOptions::default())
        .unwrap();
    let _server = Httpd::start(&b, 8086, "direct");
    let host_port = 18486;
    g.state
        .publish(
            "b",
            &[PortSpec::parse(&format!("{host_port}:8086")).unwrap()],
        )
        .unwrap();

    // Container to container on one bridge: answered, and never entered into conntrack
    // (br_netfilter, when loaded, would otherwise track every such flow).
    let direct = a.wget(&format!("http://{}:8086/", eb.ip));
    assert_eq!(direct.as_deref(), Some("direct"));
    let flows = conntrack_flows(ea.ip, eb.ip, 8086);
    assert!(flows.is_empty(), "direct flow was tracked: {flows:?}");

    // Hairpin through the gateway (a host address) to the published port: DNAT needs
    // conntrack, and the reply comes back through it.
    let gw = net.ipam.gateway;
    let hairpin = a.wget(&format!("http://{gw}:{host_port}/"));
    assert_eq!(hairpin.as_deref(), Some("direct"));
    let flows = conntrack_flows(ea.ip, gw, host_port);
    assert!(
        flows
            .iter()
            .any(|f| f.contains(&format!("src={} dst=", eb.ip))),
        "published flow not tracked with its DNAT reply: {flows:?}"
    );
}

#[test]
fn links_get_a_large_mtu_and_the_way_out_keeps_1500_unless_the_network_names_one() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    let net = g
        .state
        .create_network(net_config("n17", "10.231.17.0/24"))
        .unwrap()
        .clone();
    let mut sized = net_config("n18", "10.231.18.0/24");
    sized.mtu = Some(1400);
    let sized = g.state.create_network(sized).unwrap().clone();
    let (a, b, c) = (Netns::new("btma"), Netns::new("btmb"), Netns::new("btmc"));
    for (name, ns, network) in [("a", &a, "n17"), ("b", &b, "n17"), ("c", &c, "n18")] {
        g.state
            .connect(name, &ns.reference(), network, &ConnectOptions::default())
            .unwrap();
    }
    let mtu_of = |ns: Option<&Netns>, link: &str| {
        let mut cmd = vec!["ip"];
        if let Some(ns) = ns {
            cmd.extend(["-n", ns.name.as_str()]);
        }
        cmd.extend(["-o", "link", "show", link]);
        let out = run_ok(&cmd);
        out.split_whitespace()
            .skip_while(|w| *w != "mtu")
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let route_to = |ns: &Netns, ip: &str| run_ok(&["ip", "-n", &ns.name, "route", "get", ip]);
    // Host-local links: the bridge and the container's end.
    assert_eq!(mtu_of(None, &net.bridge), "65520");
    assert_eq!(mtu_of(Some(&a), "eth0"), "65520");
    // To a neighbour on the bridge: the link's MTU; to anywhere else: Docker's 1500.
    let b_ip = g.state.endpoints_of("b").next().unwrap().ip.to_string();
    let to_b = route_to(&a, &b_ip);
    assert!(!to_b.contains("mtu"), "{to_b}");
    let out = route_to(&a, "192.0.2.99");
    assert!(out.contains("mtu 1500"), "{out}");
    // And neighbours still talk (both ends of the veth agree on the MTU).
    let _server = Httpd::start(&b, 8087, "big");
    assert_eq!(
        a.wget(&format!("http://{b_ip}:8087/")).as_deref(),
        Some("big")
    );
    // A network with its own MTU gets it on every link and no separate route MTU.
    assert_eq!(mtu_of(None, &sized.bridge), "1400");
    assert_eq!(mtu_of(Some(&c), "eth0"), "1400");
    let out = route_to(&c, "192.0.2.99");
    assert!(!out.contains("mtu"), "{out}");
}
