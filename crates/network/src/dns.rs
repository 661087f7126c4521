//! Embedded DNS for user-defined networks.
//!
//! Like Docker, each container gets a resolver at 127.0.0.11:53 inside its own namespace (UDP
//! and TCP). The sockets are created by a thread that enters the namespace; the serving thread
//! itself stays in the host namespace, so queries for names berth does not know are forwarded
//! to the host's resolvers from the host's namespace — loopback resolvers such as
//! systemd-resolved's 127.0.0.53 work, unlike from inside the container.
//!
//! Scope: a container resolves the names (container names and aliases) of every endpoint on the
//! networks it is attached to, nothing else. Open listening sockets pin the namespace, so the
//! engine must call [`DnsServer::stop`] when the container stops.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket,
};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{Context, Error, Result};
use crate::files::{ResolvConf, EMBEDDED_DNS};
use crate::netns::{self, NetnsRef};

const TTL: u32 = 600;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// One name set on one network: a container's name, aliases and address there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEntry {
    pub network: String,
    pub container: String,
    pub names: Vec<String>,
    pub ip: Ipv4Addr,
    /// The IPv6 address on an `--ipv6` network (AAAA answers).
    pub ip6: Option<Ipv6Addr>,
    /// Legacy links of this container on this network, (alias, target container name): the
    /// alias resolves to the target for this container only (Docker's `--link` on user
    /// networks).
    pub links: Vec<(String, String)>,
}

#[derive(Default)]
struct Table {
    entries: Vec<DnsEntry>,
}

impl Table {
    /// Addresses for `name` as seen by `container`: from the networks the container is on.
    fn resolve(&self, container: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        let ips = self.resolve_all(container, name)?;
        Some(
            ips.into_iter()
                .filter_map(|ip| match ip {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .collect(),
        )
    }

    /// Every address (IPv4 and IPv6) of `name` as seen by `container`.
    fn resolve_all(&self, container: &str, name: &str) -> Option<Vec<IpAddr>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let own = self.entries.iter().filter(|e| e.container == container);
        for e in own.clone() {
            let Some((_, target)) = e.links.iter().find(|(a, _)| a.eq_ignore_ascii_case(&name))
            else {
                continue;
            };
            let ips: Vec<IpAddr> = self
                .entries
                .iter()
                .filter(|t| t.network == e.network && t.names.iter().any(|n| n == target))
                .flat_map(Self::addrs)
                .collect();
            if !ips.is_empty() {
                return Some(ips);
            }
        }
        let networks: Vec<&str> = own.map(|e| e.network.as_str()).collect();
        let ips: Vec<IpAddr> = self
            .entries
            .iter()
            .filter(|e| networks.contains(&e.network.as_str()))
            .filter(|e| {
                e.names.iter().any(|n| {
                    n.eq_ignore_ascii_case(&name)
                        || format!("{n}.{}", e.network).eq_ignore_ascii_case(&name)
                })
            })
            .flat_map(Self::addrs)
            .collect();
        (!ips.is_empty()).then_some(ips)
    }

    fn addrs(e: &DnsEntry) -> Vec<IpAddr> {
        std::iter::once(IpAddr::V4(e.ip))
            .chain(e.ip6.map(IpAddr::V6))
            .collect()
    }
}

struct Listener {
    stop: OwnedFd,
    thread: JoinHandle<()>,
}

struct Shared {
    table: RwLock<Table>,
    upstreams: RwLock<Vec<SocketAddr>>,
    /// Per-container upstreams (`--dns`), instead of the daemon-wide ones.
    overrides: RwLock<HashMap<String, Vec<SocketAddr>>>,
}

/// The daemon-wide DNS service: one record table, one listener per container.
pub struct DnsServer {
    shared: Arc<Shared>,
    listeners: Mutex<HashMap<String, Listener>>,
}

impl DnsServer {
    /// A server forwarding unknown names to `upstreams` (address:port).
    pub fn new(upstreams: Vec<SocketAddr>) -> DnsServer {
        DnsServer {
            shared: Arc::new(Shared {
                table: RwLock::new(Table::default()),
                upstreams: RwLock::new(upstreams),
                overrides: RwLock::new(HashMap::new()),
            }),
            listeners: Mutex::new(HashMap::new()),
        }
    }

    /// A server forwarding to the host's resolvers from /etc/resolv.conf.
    pub fn with_host_resolvers() -> DnsServer {
        DnsServer::new(host_upstreams(&ResolvConf::host()))
    }

    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        if let Ok(mut u) = self.shared.upstreams.write() {
            *u = upstreams;
        }
    }

    /// Replace every record (the engine passes [`crate::NetworkState::dns_entries`] after each
    /// connect/disconnect).
    pub fn set_entries(&self, entries: Vec<DnsEntry>) {
        if let Ok(mut t) = self.shared.table.write() {
            t.entries = entries;
        }
    }

    /// What `container` would get for `name` (None: not a berth name, would be forwarded).
    pub fn resolve(&self, container: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        self.shared.table.read().ok()?.resolve(container, name)
    }

    /// Start answering on 127.0.0.11:53 inside `ns` for `container`. Idempotent.
    pub fn listen(&self, container: &str, ns: &NetnsRef) -> Result<()> {
        self.listen_with_upstreams(container, ns, None)
    }

    /// As [`DnsServer::listen`], forwarding this container's other queries to `upstreams`
    /// (its `--dns` servers) when given.
    pub fn listen_with_upstreams(
        &self,
        container: &str,
        ns: &NetnsRef,
        upstreams: Option<Vec<SocketAddr>>,
    ) -> Result<()> {
        if let Ok(mut o) = self.shared.overrides.write() {
            match upstreams {
                Some(u) => o.insert(container.to_string(), u),
                None => o.remove(container),
            };
        }
        let mut listeners = self
            .listeners
            .lock()
            .map_err(|_| Error::Dns("listener table poisoned".into()))?;
        if listeners.contains_key(container) {
            return Ok(());
        }
        let addr = SocketAddrV4::new(EMBEDDED_DNS, 53);
        let (udp, tcp) = netns::run_in(ns, || {
            let udp = UdpSocket::bind(addr).ctx(|| format!("bind udp {addr}"))?;
            let tcp = TcpListener::bind(addr).ctx(|| format!("bind tcp {addr}"))?;
            Ok((udp, tcp))
        })
        .map_err(|e| {
            Error::Dns(format!(
                "listen for {container} in {}: {e}",
                ns.path().display()
            ))
        })?;
        let (stop_r, stop_w) = nix::unistd::pipe().ctx(|| "create dns stop pipe".to_string())?;
        let shared = Arc::clone(&self.shared);
        let owner = container.to_string();
        let thread = std::thread::Builder::new()
            .name(format!(
                "dns-{}",
                container.chars().take(8).collect::<String>()
            ))
            .spawn(move || serve(shared, owner, udp, tcp, stop_r))
            .ctx(|| "spawn dns thread".to_string())?;
        listeners.insert(
            container.to_string(),
            Listener {
                stop: stop_w,
                thread,
            },
        );
        Ok(())
    }

    /// Stop answering for `container` and close its sockets (releasing its namespace).
    pub fn stop(&self, container: &str) {
        let listener = self
            .listeners
            .lock()
            .ok()
            .and_then(|mut l| l.remove(container));
        if let Ok(mut o) = self.shared.overrides.write() {
            o.remove(container);
        }
        if let Some(l) = listener {
            let _ = nix::unistd::write(&l.stop, b"x");
            let _ = l.thread.join();
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let names: Vec<String> = self
            .listeners
            .lock()
            .map(|l| l.keys().cloned().collect())
            .unwrap_or_default();
        for n in names {
            self.stop(&n);
        }
    }
}

/// Upstreams from a resolv.conf, port 53.
pub fn host_upstreams(rc: &ResolvConf) -> Vec<SocketAddr> {
    rc.nameservers
        .iter()
        .map(|ip| SocketAddr::new(*ip, 53))
        .collect()
}

fn serve(shared: Arc<Shared>, container: String, udp: UdpSocket, tcp: TcpListener, stop: OwnedFd) {
    let mut buf = vec![0u8; 4096];
    loop {
        let mut fds = [
            PollFd::new(udp.as_fd(), PollFlags::POLLIN),
            PollFd::new(tcp.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        if ready(&fds[2]) {
            return;
        }
        if ready(&fds[0]) {
            if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                let query = buf[..n].to_vec();
                match answer_locally(&shared, &container, &query) {
                    Some(reply) => {
                        let _ = udp.send_to(&reply, peer);
                    }
                    None => {
                        // Forward on a helper thread so one slow upstream does not stall the
                        // container's other lookups.
                        if let Ok(sock) = udp.try_clone() {
                            let shared = Arc::clone(&shared);
                            let container = container.clone();
                            std::thread::spawn(move || {
                                let reply = forward(&shared, &container, &query)
                                    .unwrap_or_else(|| servfail(&query));
                                let _ = sock.send_to(&reply, peer);
                            });
                        }
                    }
                }
            }
        }
        if ready(&fds[1]) {
            if let Ok((stream, _)) = tcp.accept() {
                let shared = Arc::clone(&shared);
                let container = container.clone();
                std::thread::spawn(move || serve_tcp(&shared, &container, stream));
            }
        }
    }
}

fn serve_tcp(shared: &Shared, container: &str, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(UPSTREAM_TIMEOUT));
    let mut len = [0u8; 2];
    while stream.read_exact(&mut len).is_ok() {
        let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
        if stream.read_exact(&mut query).is_err() {
            return;
        }
        let reply = answer_locally(shared, container, &query)
            .or_else(|| forward_tcp(shared, container, &query))
            .unwrap_or_else(|| servfail(&query));
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        if stream.write_all(&n.to_be_bytes()).is_err() || stream.write_all(&reply).is_err() {
            return;
        }
    }
}

/// Answer from berth's table, or None when the query must go upstream.
fn answer_locally(shared: &Shared, container: &str, query: &[u8]) -> Option<Vec<u8>> {
    let Ok(msg) = Message::from_vec(query) else {
        return Some(error_reply(query, ResponseCode::FormErr));
    };
    if msg.metadata.message_type != MessageType::Query || msg.metadata.op_code != OpCode::Query {
        return Some(error_reply(query, ResponseCode::NotImp));
    }
    let q = msg.queries.first()?;
    let name = q.name().to_ascii();
    let ips = shared.table.read().ok()?.resolve_all(container, &name)?;
    let mut reply = Message::response(msg.metadata.id, OpCode::Query);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = msg.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(q.clone());
    // A known name answers A and AAAA queries (AAAA on IPv6 networks); other types get an
    // empty NOERROR rather than a forward that would leak the name upstream.
    for ip in ips {
        let rdata = match (q.query_type(), ip) {
            (RecordType::A, IpAddr::V4(v4)) => RData::A(A(v4)),
            (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
            _ => continue,
        };
        reply.add_answer(Record::from_rdata(q.name().clone(), TTL, rdata));
    }
    reply.to_vec().ok()
}

fn error_reply(query: &[u8], code: ResponseCode) -> Vec<u8> {
    // Echo the id (first two bytes) and set QR + the code; enough for a client to give up.
    let id = if query.len() >= 2 {
        u16::from_be_bytes([query[0], query[1]])
    } else {
        0
    };
    let mut reply = Message::error_msg(id, OpCode::Query, code);
    if let Ok(msg) = Message::from_vec(query) {
        reply.add_queries(msg.queries);
    }
    reply.to_vec().unwrap_or_default()
}

fn servfail(query: &[u8]) -> Vec<u8> {
    error_reply(query, ResponseCode::ServFail)
}

fn upstreams(shared: &Shared, container: &str) -> Vec<SocketAddr> {
    if let Some(u) = shared
        .overrides
        .read()
        .ok()
        .and_then(|o| o.get(container).cloned())
    {
        return u;
    }
    shared
        .upstreams
        .read()
        .map(|u| u.clone())
        .unwrap_or_default()
}

/// Ask each upstream in turn over UDP; the first answer carrying the query's id wins.
fn forward(shared: &Shared, container: &str, query: &[u8]) -> Option<Vec<u8>> {
    for upstream in upstreams(shared, container) {
        let bind: SocketAddr = if upstream.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(sock) = UdpSocket::bind(bind) else {
            continue;
        };
        if sock.set_read_timeout(Some(UPSTREAM_TIMEOUT)).is_err()
            || sock.connect(upstream).is_err()
            || sock.send(query).is_err()
        {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        while let Ok(n) = sock.recv(&mut buf) {
            if n >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

fn forward_tcp(shared: &Shared, container: &str, query: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(query.len()).ok()?;
    for upstream in upstreams(shared, container) {
        let Ok(mut s) = TcpStream::connect_timeout(&upstream, UPSTREAM_TIMEOUT) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(UPSTREAM_TIMEOUT));
        if s.write_all(&len.to_be_bytes()).is_err() || s.write_all(query).is_err() {
            continue;
        }
        let mut n = [0u8; 2];
        if s.read_exact(&mut n).is_err() {
            continue;
        }
        let mut reply = vec![0u8; u16::from_be_bytes(n) as usize];
        if s.read_exact(&mut reply).is_ok() {
            return Some(reply);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(network: &str, container: &str, names: &[&str], ip: [u8; 4]) -> DnsEntry {
        DnsEntry {
            network: network.into(),
            container: container.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ip: Ipv4Addr::from(ip),
            ip6: None,
            links: Vec::new(),
        }
    }

    #[test]
    fn link_aliases_resolve_for_the_linking_container_only() {
        let mut linker = entry("front", "a", &["client"], [10, 0, 0, 2]);
        linker.links = vec![("db".into(), "postgres".into())];
        let t = Table {
            entries: vec![
                linker,
                entry("front", "b", &["postgres"], [10, 0, 0, 3]),
                entry("front", "c", &["other"], [10, 0, 0, 4]),
            ],
        };
        assert_eq!(t.resolve("a", "db"), Some(vec![Ipv4Addr::new(10, 0, 0, 3)]));
        assert_eq!(t.resolve("c", "db"), None, "the alias is a's alone");
        assert_eq!(
            t.resolve("a", "postgres"),
            Some(vec![Ipv4Addr::new(10, 0, 0, 3)])
        );
    }

    #[test]
    fn names_resolve_only_within_shared_networks() {
        let t = Table {
            entries: vec![
                entry("front", "a", &["web", "www"], [10, 0, 0, 2]),
                entry("front", "b", &["api"], [10, 0, 0, 3]),
                entry("back", "b", &["api"], [10, 1, 0, 3]),
                entry("back", "c", &["db"], [10, 1, 0, 4]),
            ],
        };
        assert_eq!(
            t.resolve("b", "WWW."),
            Some(vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
        assert_eq!(t.resolve("b", "db"), Some(vec![Ipv4Addr::new(10, 1, 0, 4)]));
        assert_eq!(t.resolve("a", "db"), None, "a is not on back");
        assert_eq!(t.resolve("c", "web"), None, "c is not on front");
        assert_eq!(
            t.resolve("a", "api"),
            Some(vec![Ipv4Addr::new(10, 0, 0, 3)]),
            "only b's address on the shared network"
        );
        assert_eq!(
            t.resolve("a", "web.front"),
            Some(vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
    }
}
