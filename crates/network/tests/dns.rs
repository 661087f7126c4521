//! Embedded DNS between namespace "containers" on a user-defined network (root): names and
//! aliases resolve within shared networks only, other names go to an upstream (a tiny UDP
//! responder in this test, never the internet).

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_network::dns::DnsServer;
use berth_network::files::{self, DnsSettings, ResolvConf};
use berth_network::{netns, ConnectOptions, NetnsRef, NetworkConfig};
use common::*;
use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

const OUTSIDE_NAME: &str = "outside.test.";
const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

/// Answers `outside.test` with 203.0.113.7 and NXDOMAIN for anything else.
struct Upstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    fn start() -> Upstream {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let q = Message::from_vec(&buf[..n]).unwrap();
                let query = q.queries[0].clone();
                let mut r = Message::response(q.metadata.id, OpCode::Query);
                r.add_query(query.clone());
                if query.name().to_ascii().eq_ignore_ascii_case(OUTSIDE_NAME) {
                    r.add_answer(Record::from_rdata(
                        query.name().clone(),
                        60,
                        RData::A(A(OUTSIDE_IP)),
                    ));
                } else {
                    r.metadata.response_code = ResponseCode::NXDomain;
                }
                sock.send_to(&r.to_vec().unwrap(), peer).unwrap();
            }
        });
        Upstream {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Ask 127.0.0.11 inside `ns` over UDP for the A records of `name`.
fn query(ns: &NetnsRef, name: &str) -> (ResponseCode, Vec<Ipv4Addr>) {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let bytes = msg.to_vec().unwrap();
    let reply = netns::run_in(ns, || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.send_to(&bytes, "127.0.0.11:53").unwrap();
        let mut buf = [0u8; 1500];
        let n = s.recv(&mut buf).unwrap();
        Ok(buf[..n].to_vec())
    })
    .unwrap();
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.id, msg.metadata.id);
    let ips = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    (reply.metadata.response_code, ips)
}

#[test]
fn containers_resolve_each_other_by_name_and_alias_and_forward_the_rest() {
    if !prerequisites() {
        return;
    }
    let mut g = StateGuard::new();
    for (name, subnet) in [("front", "10.231.20.0/24"), ("back", "10.231.21.0/24")] {
        g.state
            .create_network(NetworkConfig {
                name: name.to_string(),
                bridge: Some(format!("bt{}", token())),
                subnet: Some(subnet.parse().unwrap()),
                embedded_dns: true,
                ..Default::default()
            })
            .unwrap();
    }
    let (a, b, c) = (Netns::new("bda"), Netns::new("bdb"), Netns::new("bdc"));
    let opts = |names: &[&str]| ConnectOptions {
        names: names.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    g.state
        .connect("a", &a.reference(), "front", &opts(&["alpha"]))
        .unwrap();
    let eb = g
        .state
        .connect("b", &b.reference(), "front", &opts(&["beta", "api"]))
        .unwrap();
    let ec = g
        .state
        .connect("c", &c.reference(), "back", &opts(&["gamma"]))
        .unwrap();

    let upstream = Upstream::start();
    let dns = DnsServer::new(vec![upstream.addr]);
    dns.set_entries(g.state.dns_entries());
    dns.listen("a", &a.reference()).unwrap();
    // c has its own upstream (`--dns`), here one where nothing listens.
    let dead: SocketAddr = "127.0.0.1:1".parse().unwrap();
    dns.listen_with_upstreams("c", &c.reference(), Some(vec![dead]))
        .unwrap();

    // Name and alias on the shared network.
    assert_eq!(
        query(&a.reference(), "beta."),
        (ResponseCode::NoError, vec![eb.ip])
    );
    assert_eq!(
        query(&a.reference(), "API."),
        (ResponseCode::NoError, vec![eb.ip])
    );
    // Another network's container is not visible: the query goes upstream, which says NXDOMAIN.
    assert_eq!(
        query(&a.reference(), "gamma."),
        (ResponseCode::NXDomain, vec![])
    );
    assert_eq!(
        query(&c.reference(), "gamma."),
        (ResponseCode::NoError, vec![ec.ip])
    );
    // c's query for a name it cannot see goes to its own (dead) upstream: SERVFAIL.
    assert_eq!(
        query(&c.reference(), "beta."),
        (ResponseCode::ServFail, vec![])
    );
    // Forwarding to the upstream.
    assert_eq!(
        query(&a.reference(), OUTSIDE_NAME),
        (ResponseCode::NoError, vec![OUTSIDE_IP])
    );

    // busybox's own resolver against 127.0.0.11, as a program in the container would ask.
    let out = a.exec(&["busybox", "nslookup", "beta", "127.0.0.11"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&eb.ip.to_string()), "{text}");

    // A name served over HTTP by b, fetched by name from a with the generated resolv.conf.
    let conf = files::resolv_conf(&ResolvConf::default(), &DnsSettings::default(), true);
    a.etc_file("resolv.conf", &conf);
    let _server = Httpd::start(&b, 8080, "by name");
    assert_eq!(a.wget("http://beta:8080/").as_deref(), Some("by name"));

    // DNS over TCP works too.
    let tcp_ips = netns::run_in(&a.reference(), || {
        let mut msg = Message::query();
        msg.add_query(Query::query(
            Name::from_ascii("alpha.").unwrap(),
            RecordType::A,
        ));
        let bytes = msg.to_vec().unwrap();
        let mut s = TcpStream::connect("127.0.0.11:53").unwrap();
        s.write_all(&(bytes.len() as u16).to_be_bytes()).unwrap();
        s.write_all(&bytes).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut reply).unwrap();
        Ok(Message::from_vec(&reply).unwrap().answers.len())
    })
    .unwrap();
    assert_eq!(tcp_ips, 1);

    // Disconnecting b removes its name once the engine refreshes the entries.
    g.state.disconnect("b", "front").unwrap();
    dns.set_entries(g.state.dns_entries());
    assert_eq!(
        query(&a.reference(), "beta."),
        (ResponseCode::NXDomain, vec![])
    );

    // Stopping closes the sockets in the namespace.
    dns.stop("a");
    let refused = netns::run_in(&a.reference(), || {
        Ok(TcpStream::connect("127.0.0.11:53").is_err())
    })
    .unwrap();
    assert!(refused);
}
