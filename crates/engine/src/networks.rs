//! Container networking in the engine: the daemon's [`NetworkState`] (persisted in the state
//! database after every change), the embedded DNS server, and the container hooks — prepare
//! the spec (namespace, /etc files), attach once the container's process exists, release on
//! exit, forget on removal — plus `network create/ls/inspect/rm/prune/connect/disconnect`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_network::dns::DnsServer;
use berth_network::files::{self, DnsSettings, ExtraHost, ResolvConf};
use berth_network::ports::{PortSpec, Protocol, PublishedPort};
use berth_network::stats::InterfaceStats;
use berth_network::{ConnectOptions, Endpoint, NetnsRef, NetworkConfig, NetworkState, Settings};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::containers::model::ContainerRecord;
use crate::error::{Error, Result};
use crate::{ids, Engine};

/// Environment variable with a JSON [`Settings`] used when no network state is stored yet
/// (tests give each daemon its own table, bridge and subnets).
pub const SETTINGS_ENV: &str = "BERTH_NETWORK_SETTINGS";

/// Networks that always exist and cannot be removed.
const HOST: &str = "host";
const NONE: &str = "none";

/// A container's network configuration beyond `network_mode`, as created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSpec {
    /// Per-network endpoint settings (`--network-alias`, `--ip`, `--mac-address`), and further
    /// networks joined with `network connect` while the container was not running.
    pub endpoints: BTreeMap<String, EndpointSpec>,
    /// `-p` mappings (host port 0: pick one), `-P` already expanded from EXPOSE.
    pub ports: Vec<PortSpec>,
    /// Exposed ports ("80/tcp"), from the image and `--expose`.
    pub exposed: Vec<String>,
    /// `--add-host name:ip`.
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--link name[:alias]` on the default bridge, as "name:alias" with the target's name
    /// (links on a user network move to that network's [`EndpointSpec::links`] at create).
    pub links: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointSpec {
    pub aliases: Vec<String>,
    pub ip: Option<Ipv4Addr>,
    /// `--ip6` (IPAMConfig.IPv6Address).
    pub ip6: Option<Ipv6Addr>,
    pub mac: Option<String>,
    /// Legacy links on a user network ("name:alias"): aliases the embedded DNS resolves for
    /// this container only.
    pub links: Vec<String>,
}

/// Docker's `--link` syntax, "name[:alias]" → (name, alias); a leading '/' is dropped.
pub fn parse_link(text: &str) -> Result<(String, String)> {
    let bad = || Error::InvalidParameter(format!("bad format for links: {text}"));
    let mut parts = text.split(':');
    let name = parts.next().unwrap_or("").trim_start_matches('/');
    let alias = parts.next().unwrap_or(name).trim_start_matches('/');
    if name.is_empty() || alias.is_empty() || parts.next().is_some() {
        return Err(bad());
    }
    Ok((name.to_string(), alias.to_string()))
}

/// Legacy link environment (Docker's `links.Link.ToEnv`): `ALIAS_PORT`, one group of
/// `ALIAS_PORT_<port>_<PROTO>[_ADDR|_PORT|_PROTO]` per exposed port, `_START`/`_END` groups for
/// runs of consecutive ports, `ALIAS_NAME=/this/alias`, and `ALIAS_ENV_*` from the target's
/// environment (without HOME and PATH).
pub fn link_env(
    this: &str,
    alias: &str,
    ip: Ipv4Addr,
    exposed: &[String],
    env: &[String],
) -> Vec<String> {
    let prefix = alias.to_ascii_uppercase().replace('-', "_");
    let mut ports: Vec<(u16, Protocol)> = exposed.iter().filter_map(|e| parse_exposed(e)).collect();
    // Docker's order: by port, tcp before udp.
    ports.sort();
    ports.dedup();
    let mut out = Vec::new();
    if let Some((p, proto)) = ports.first() {
        out.push(format!("{prefix}_PORT={proto}://{ip}:{p}"));
    }
    let mut ranges: Vec<((u16, Protocol), u16)> = Vec::new();
    for &(p, proto) in &ports {
        match ranges.last_mut() {
            Some(((_, rp), end)) if *rp == proto && u32::from(*end) + 1 == u32::from(p) => *end = p,
            _ => ranges.push(((p, proto), p)),
        }
    }
    for ((start, proto), end) in ranges.into_iter().filter(|((s, _), e)| s != e) {
        let up = proto.to_string().to_ascii_uppercase();
        out.push(format!(
            "{prefix}_PORT_{start}_{up}_START={proto}://{ip}:{start}"
        ));
        out.push(format!("{prefix}_PORT_{start}_{up}_ADDR={ip}"));
        out.push(format!("{prefix}_PORT_{start}_{up}_PORT_START={start}"));
        out.push(format!("{prefix}_PORT_{start}_{up}_PORT_END={end}"));
        out.push(format!("{prefix}_PORT_{start}_{up}_PROTO={proto}"));
    }
    for (p, proto) in &ports {
        let up = proto.to_string().to_ascii_uppercase();
        out.push(format!("{prefix}_PORT_{p}_{up}={proto}://{ip}:{p}"));
        out.push(format!("{prefix}_PORT_{p}_{up}_ADDR={ip}"));
        out.push(format!("{prefix}_PORT_{p}_{up}_PORT={p}"));
        out.push(format!("{prefix}_PORT_{p}_{up}_PROTO={proto}"));
    }
    out.push(format!("{prefix}_NAME=/{this}/{alias}"));
    for e in env {
        if let Some((k, v)) = e.split_once('=') {
            if k != "HOME" && k != "PATH" {
                out.push(format!("{prefix}_ENV_{k}={v}"));
            }
        }
    }
    out
}

/// `base` with each of `over`'s variables replacing the one of the same name or appended.
pub fn merge_env(base: Vec<String>, over: &[String]) -> Vec<String> {
    let key = |e: &str| {
        e.split_once('=')
            .map(|(k, _)| k.to_string())
            .unwrap_or(e.to_string())
    };
    let mut out = base;
    for e in over {
        let k = key(e);
        match out.iter_mut().find(|x| key(x) == k) {
            Some(x) => *x = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// A link on the default bridge, resolved at start.
struct ResolvedLink {
    alias: String,
    target: ContainerRecord,
    ip: Ipv4Addr,
}

/// What the engine remembers about a network beyond the mechanism's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkMeta {
    pub id: String,
    pub created: String,
    pub labels: BTreeMap<String, String>,
}

/// The persisted value: the mechanism's state plus ids and creation times.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Stored {
    state: NetworkState,
    meta: BTreeMap<String, NetworkMeta>,
}

/// The engine's networking service.
pub struct Networking {
    stored: Mutex<Stored>,
    dns: DnsServer,
    db: Mutex<rusqlite::Connection>,
}

/// `network create` input.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: String,
    /// `--ipv6` (EnableIPv6).
    pub enable_ipv6: bool,
    /// IPAM config entries as (subnet, gateway, ip range): at most one IPv4 and one IPv6.
    pub ipam: Vec<(Option<String>, Option<String>, Option<String>)>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// Driver options: `com.docker.network.bridge.name`, `com.docker.network.driver.mtu`.
    pub options: BTreeMap<String, String>,
}

/// One network as `network ls/inspect` show it.
#[derive(Debug, Clone)]
pub struct NetworkInfo {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub created: String,
    pub internal: bool,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub enable_ipv6: bool,
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
    pub bridge: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// (container id, container name, endpoint).
    pub containers: Vec<(String, String, Endpoint)>,
}

fn net_err(e: berth_network::Error) -> Error {
    use berth_network::Error as N;
    match &e {
        N::UnknownNetwork(n) => Error::NotFound(format!("network {n} not found")),
        N::NetworkExists(n) => Error::Conflict(format!("network with name {n} already exists")),
        N::NetworkInUse { network, .. } => Error::Conflict(format!(
            "error while removing network: network {network} has active endpoints"
        )),
        N::AddressInUse { .. } | N::PortTaken { .. } | N::AlreadyConnected { .. } => {
            Error::Conflict(e.to_string())
        }
        N::InvalidSubnet { .. }
        | N::SubnetOverlap { .. }
        | N::SubnetOverlap6 { .. }
        | N::AddressOutOfRange6 { .. }
        | N::AddressOutOfRange { .. }
        | N::InvalidPort { .. }
        | N::InvalidName { .. }
        | N::PoolExhausted { .. } => Error::InvalidParameter(e.to_string()),
        N::NotConnected { .. } => Error::NotFound(e.to_string()),
        _ => Error::Internal(format!("network: {e}")),
    }
}

/// Docker-style 64-hex id, stable for a name and creation time.
fn network_id(name: &str, created: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        format!("{name}\0{created}").as_bytes(),
    ))
}

impl Networking {
    /// Load (or start) the state from the database at `db_path`, make sure the default network
    /// exists and the kernel matches the state (bridges, sysctls, one nftables table), and give
    /// back the addresses of endpoints whose namespace vanished while no daemon was watching.
    pub fn open(db_path: &Path, settings: Option<Settings>) -> Result<Networking> {
        let conn = rusqlite::Connection::open(db_path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS network_state (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                state TEXT NOT NULL
            );",
        )?;
        let text: Option<String> = conn
            .query_row("SELECT state FROM network_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .ok();
        let mut stored = match text {
            Some(t) => serde_json::from_str::<Stored>(&t)
                .map_err(|e| Error::internal("load network state", e))?,
            None => Stored {
                state: NetworkState::new(match settings {
                    Some(s) => s,
                    None => settings_from_env()?,
                }),
                meta: BTreeMap::new(),
            },
        };
        stored.state.ensure_default_network().map_err(net_err)?;
        stored.state.reconcile().map_err(net_err)?;
        let vanished: Vec<String> = stored
            .state
            .vanished_endpoints()
            .map_err(net_err)?
            .into_iter()
            .map(|e| e.container.clone())
            .collect();
        for c in vanished {
            stored.state.release_container(&c).map_err(net_err)?;
        }
        let names: Vec<String> = stored.state.networks.keys().cloned().collect();
        for n in names {
            stored.meta.entry(n.clone()).or_insert_with(|| {
                let created = ids::now_rfc3339();
                NetworkMeta {
                    id: network_id(&n, &created),
                    created,
                    labels: BTreeMap::new(),
                }
            });
        }
        let net = Networking {
            stored: Mutex::new(stored),
            dns: DnsServer::with_host_resolvers(),
            db: Mutex::new(conn),
        };
        let s = net.lock();
        net.persist(&s)?;
        net.dns.set_entries(s.state.dns_entries());
        drop(s);
        Ok(net)
    }

    fn lock(&self) -> MutexGuard<'_, Stored> {
        self.stored.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, s: &Stored) -> Result<()> {
        let text =
            serde_json::to_string(s).map_err(|e| Error::internal("encode network state", e))?;
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        db.execute(
            "INSERT INTO network_state (id, state) VALUES (1, ?1)
             ON CONFLICT(id) DO UPDATE SET state = excluded.state",
            [text],
        )?;
        Ok(())
    }

    /// Run `f` on the state; persist and refresh DNS records afterwards, also when `f` failed
    /// half-way (each state method changes the value only on success).
    fn mutate<T>(&self, f: impl FnOnce(&mut Stored) -> Result<T>) -> Result<T> {
        let mut s = self.lock();
        let before = serde_json::to_string(&*s).unwrap_or_default();
        let out = f(&mut s);
        if serde_json::to_string(&*s).unwrap_or_default() != before {
            self.persist(&s)?;
            self.dns.set_entries(s.state.dns_entries());
        }
        out
    }

    pub fn state(&self) -> NetworkState {
        self.lock().state.clone()
    }
}

fn settings_from_env() -> Result<Settings> {
    match std::env::var(SETTINGS_ENV) {
        Ok(t) if !t.is_empty() => serde_json::from_str(&t)
            .map_err(|e| Error::InvalidParameter(format!("{SETTINGS_ENV}: {e}"))),
        _ => Ok(Settings::default()),
    }
}

/// How a container is networked, from its `network_mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    None,
    Host,
    /// `container:<name|id>`.
    Container(String),
    /// The default bridge or a user network (by name).
    Network(String),
}

pub fn mode_of(network_mode: &str, default_network: &str) -> Mode {
    match network_mode {
        "" | "default" => Mode::Network(default_network.to_string()),
        NONE => Mode::None,
        HOST => Mode::Host,
        m => match m.strip_prefix("container:") {
            Some(c) => Mode::Container(c.to_string()),
            None => Mode::Network(m.to_string()),
        },
    }
}

fn parse_exposed(key: &str) -> Option<(u16, Protocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    // A range "8000-8002" exposes its first port here.
    let first = port.split('-').next()?;
    Some((first.parse().ok()?, proto))
}

/// Docker's PortBindings `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}` → specs.
pub fn port_specs(bindings: &BTreeMap<String, Vec<(String, String)>>) -> Result<Vec<PortSpec>> {
    let mut out = Vec::new();
    for (key, list) in bindings {
        let (container_port, protocol) = parse_exposed(key).ok_or_else(|| {
            Error::InvalidParameter(format!("invalid port specification: {key:?}"))
        })?;
        for (host_ip, host_port) in list {
            let host_ip = match host_ip.as_str() {
                "" => None,
                ip => match ip.parse::<IpAddr>() {
                    Ok(IpAddr::V4(v4)) => (!v4.is_unspecified()).then_some(v4),
                    // IPv6 host addresses are not published (IPv4 only).
                    Ok(IpAddr::V6(_)) => continue,
                    Err(_) => {
                        return Err(Error::InvalidParameter(format!(
                            "invalid host IP {ip:?} for port {key}"
                        )))
                    }
                },
            };
            let first = host_port.split('-').next().unwrap_or("");
            let host_port = if first.is_empty() {
                0
            } else {
                first.parse::<u16>().map_err(|_| {
                    Error::InvalidParameter(format!("invalid host port {host_port:?} for {key}"))
                })?
            };
            out.push(PortSpec {
                host_ip,
                host_port,
                container_port,
                protocol,
            });
        }
    }
    Ok(out)
}

impl Engine {
    pub fn networking(&self) -> &Networking {
        &self.net
    }

    /// At create: validate the network mode and settings; `-P` publishes every exposed port.
    pub(crate) fn net_validate_create(
        &self,
        spec: &mut crate::ContainerSpec,
        image_exposed: &[String],
        publish_all: bool,
    ) -> Result<()> {
        let default = self.net.lock().state.settings.default_network.clone();
        let h = &mut spec.host;
        if h.network_mode.is_empty() || h.network_mode == "default" {
            h.network_mode = default.clone();
        }
        let n = &mut h.network;
        for e in image_exposed {
            if !n.exposed.contains(e) {
                n.exposed.push(e.clone());
            }
        }
        if publish_all {
            for e in n.exposed.clone() {
                if let Some((port, protocol)) = parse_exposed(&e) {
                    let covered = n
                        .ports
                        .iter()
                        .any(|p| p.container_port == port && p.protocol == protocol);
                    if !covered {
                        n.ports.push(PortSpec {
                            host_ip: None,
                            host_port: 0,
                            container_port: port,
                            protocol,
                        });
                    }
                }
            }
        }
        for p in &n.ports {
            let key = format!("{}/{}", p.container_port, p.protocol);
            if !n.exposed.contains(&key) {
                n.exposed.push(key);
            }
        }
        for x in &n.extra_hosts {
            if ExtraHost::parse(x).is_none() {
                return Err(Error::InvalidParameter(format!(
                    "invalid IP address in add-host: {x:?}"
                )));
            }
        }
        for d in &n.dns {
            d.parse::<IpAddr>()
                .map_err(|_| Error::InvalidParameter(format!("{d} is not an ip address")))?;
        }
        for e in n.endpoints.values() {
            if let Some(m) = &e.mac {
                files::parse_mac(m).map_err(net_err)?;
            }
        }
        match mode_of(&h.network_mode, &default) {
            Mode::Network(name) => {
                let s = self.net.lock();
                s.state.network(&name).map_err(net_err)?;
                for other in h.network.endpoints.keys() {
                    s.state.network(other).map_err(net_err)?;
                }
            }
            Mode::Container(c) => {
                self.container(&c)?;
                if !h.network.ports.is_empty() {
                    return Err(Error::InvalidParameter(
                        "conflicting options: port publishing and the container type network mode"
                            .into(),
                    ));
                }
            }
            Mode::Host | Mode::None => {
                if !h.network.ports.is_empty() && h.network_mode == HOST {
                    // Docker ignores -p with --network host (with a warning).
                    h.network.ports.clear();
                }
            }
        }
        self.net_validate_links(&mut spec.host, &default)
    }

    /// `--link`: every target must exist (Docker: "could not get container for NAME"); links
    /// are stored as "name:alias" with the target's name. On a user network they become that
    /// network's endpoint links (aliases in the embedded DNS), as Docker does.
    fn net_validate_links(&self, h: &mut crate::HostSpec, default: &str) -> Result<()> {
        let mut links = Vec::new();
        for l in &h.network.links {
            let l = self.check_link(l)?;
            if !links.contains(&l) {
                links.push(l);
            }
        }
        for ep in h.network.endpoints.values_mut() {
            ep.links = ep
                .links
                .iter()
                .map(|l| self.check_link(l))
                .collect::<Result<_>>()?;
        }
        match mode_of(&h.network_mode, default) {
            _ if links.is_empty() => {}
            Mode::Host => {
                return Err(Error::InvalidParameter(
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior".into(),
                ))
            }
            Mode::Container(_) => {
                return Err(Error::InvalidParameter(
                    "conflicting options: container type network can't be used with links. This would result in undefined behavior".into(),
                ))
            }
            Mode::Network(n) if n != default => {
                let ep = h.network.endpoints.entry(n).or_default();
                for l in links.drain(..) {
                    if !ep.links.contains(&l) {
                        ep.links.push(l);
                    }
                }
            }
            Mode::Network(_) | Mode::None => {}
        }
        h.network.links = links;
        Ok(())
    }

    /// One link: its target exists and does not use the host's network; "name:alias".
    fn check_link(&self, text: &str) -> Result<String> {
        let (name, alias) = parse_link(text)?;
        let target = self.link_target(&name)?;
        if target.spec.host.network_mode == HOST {
            return Err(Error::InvalidParameter(
                "conflicting options: host type networking can't be used with links. This would result in undefined behavior".into(),
            ));
        }
        Ok(format!("{}:{alias}", target.name))
    }

    fn link_target(&self, name: &str) -> Result<ContainerRecord> {
        self.container(name).map_err(|e| match e {
            Error::NotFound(m) => {
                Error::InvalidParameter(format!("could not get container for {name}: {m}"))
            }
            e => e,
        })
    }

    /// The container's links on the default bridge with their targets' addresses there.
    /// `strict`: a stopped or vanished target is an error (at start, as Docker); otherwise it
    /// is skipped (refreshing /etc/hosts, exec).
    fn resolve_links(&self, rec: &ContainerRecord, strict: bool) -> Result<Vec<ResolvedLink>> {
        let default = self.net.lock().state.settings.default_network.clone();
        if mode_of(&rec.spec.host.network_mode, &default) != Mode::Network(default.clone()) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for l in &rec.spec.host.network.links {
            let one = || -> Result<ResolvedLink> {
                let (name, alias) = parse_link(l)?;
                let target = self.link_target(&name)?;
                if !target.state.running() {
                    return Err(Error::Conflict(format!(
                        "Cannot link to a non running container: /{} AS /{}/{alias}",
                        target.name, rec.name
                    )));
                }
                // A target sharing another container's namespace has that one's address.
                let mut owner = target.clone();
                for _ in 0..8 {
                    match mode_of(&owner.spec.host.network_mode, &default) {
                        Mode::Container(o) => owner = self.container(&o)?,
                        _ => break,
                    }
                }
                let ip = self
                    .net
                    .lock()
                    .state
                    .endpoint(&owner.id, &default)
                    .map(|e| e.ip)
                    .ok_or_else(|| {
                        Error::Conflict(format!(
                            "container {} not attached to default bridge network",
                            target.id
                        ))
                    })?;
                Ok(ResolvedLink { alias, target, ip })
            };
            match one() {
                Ok(r) => out.push(r),
                Err(e) if strict => return Err(e),
                Err(_) => {}
            }
        }
        Ok(out)
    }

    /// A link of `rec` would refuse to start now (its target is gone or not running).
    pub(crate) fn links_unready(&self, rec: &ContainerRecord) -> bool {
        self.resolve_links(rec, true).is_err()
    }

    /// The legacy link variables of `rec` (default bridge only), targets that are not
    /// running skipped: for `exec`, which sees them as the container's process does.
    pub(crate) fn link_env_of(&self, rec: &ContainerRecord) -> Vec<String> {
        self.resolve_links(rec, false)
            .unwrap_or_default()
            .iter()
            .flat_map(|l| {
                link_env(
                    &rec.name,
                    &l.alias,
                    l.ip,
                    &l.target.spec.host.network.exposed,
                    &l.target.spec.env,
                )
            })
            .collect()
    }

    fn net_files_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id)
    }

    /// Before the runtime creates the container: write /etc/hostname, /etc/hosts and
    /// /etc/resolv.conf (the hosts file gets the addresses once attached) and bind-mount them;
    /// `container:` mode joins the other container's namespace and files.
    pub(crate) fn net_prepare_spec(&self, rec: &ContainerRecord, cfg: &mut Value) -> Result<()> {
        let default = self.net.lock().state.settings.default_network.clone();
        let mode = mode_of(&rec.spec.host.network_mode, &default);
        let dir = match &mode {
            Mode::Host => return Ok(()),
            Mode::Container(other) => {
                let o = self.container(other)?;
                if !o.state.running() && !o.state.task {
                    return Err(Error::Conflict(format!(
                        "cannot join network of a non running container: {}",
                        o.id
                    )));
                }
                if let Some(ns) = cfg["linux"]["namespaces"].as_array_mut() {
                    ns.retain(|n| n["type"] != "network");
                    ns.push(
                        json!({"type": "network", "path": format!("/proc/{}/ns/net", o.state.pid)}),
                    );
                }
                self.net_files_dir(&o.id)
            }
            Mode::None | Mode::Network(_) => {
                let dir = self.net_files_dir(&rec.id);
                let links = self.resolve_links(rec, true)?;
                if !links.is_empty() {
                    let vars: Vec<String> = links
                        .iter()
                        .flat_map(|l| {
                            link_env(
                                &rec.name,
                                &l.alias,
                                l.ip,
                                &l.target.spec.host.network.exposed,
                                &l.target.spec.env,
                            )
                        })
                        .collect();
                    let own: Vec<String> = cfg["process"]["env"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    // The container's own variables win over the links' (as Docker).
                    cfg["process"]["env"] = json!(merge_env(vars, &own));
                }
                let embedded = match &mode {
                    Mode::Network(n) => self
                        .net
                        .lock()
                        .state
                        .networks
                        .get(n)
                        .is_some_and(|n| n.embedded_dns),
                    _ => false,
                };
                write_files(&dir, rec, &link_hosts(&links), embedded)?;
                dir
            }
        };
        if let Some(mounts) = cfg["mounts"].as_array_mut() {
            for f in ["hostname", "hosts", "resolv.conf"] {
                let dest = format!("/etc/{f}");
                // A user's own bind mount of the file wins.
                if mounts.iter().any(|m| m["destination"] == dest.as_str()) {
                    continue;
                }
                mounts.push(json!({"destination": dest, "type": "bind",
                    "source": dir.join(f), "options": ["rbind", "rprivate"]}));
            }
        }
        Ok(())
    }

    /// The container's process exists (created, not started): connect it to its networks, publish its ports, fill in /etc/hosts, answer DNS. On error everything
    /// done here is undone.
    /// The first network a new container joins; None when there is nothing to attach (host,
    /// another container's namespace, or none: berth-runtime brings up loopback itself in
    /// every network namespace it creates, as runc does).
    pub(crate) fn net_to_attach(&self, rec: &ContainerRecord) -> Option<String> {
        let default = self.net.lock().state.settings.default_network.clone();
        match mode_of(&rec.spec.host.network_mode, &default) {
            Mode::Host | Mode::Container(_) | Mode::None => None,
            Mode::Network(n) => Some(n),
        }
    }

    pub(crate) fn net_attach(&self, rec: &ContainerRecord, pid: i32) -> Result<()> {
        let Some(first) = self.net_to_attach(rec) else {
            return Ok(());
        };
        let ns = NetnsRef::Pid(pid as u32);
        let r = self.net_connect_all(rec, &ns, &first);
        if r.is_err() {
            self.net_detach(&rec.id);
        }
        r
    }

    fn net_connect_all(&self, rec: &ContainerRecord, ns: &NetnsRef, first: &str) -> Result<()> {
        let n = &rec.spec.host.network;
        let mut order = vec![first.to_string()];
        order.extend(n.endpoints.keys().filter(|k| *k != first).cloned());
        for net in &order {
            let ep = n.endpoints.get(net).cloned().unwrap_or_default();
            self.net_connect_one(rec, ns, net, &ep)?;
        }
        if !n.ports.is_empty() {
            self.net
                .mutate(|s| s.state.publish(&rec.id, &n.ports).map_err(net_err))?;
        }
        self.net_refresh(rec, ns)
    }

    fn connect_options(rec: &ContainerRecord, ep: &EndpointSpec) -> Result<ConnectOptions> {
        let links = ep
            .links
            .iter()
            .map(|l| parse_link(l).map(|(name, alias)| (alias, name)))
            .collect::<Result<_>>()?;
        let mut names = vec![rec.name.clone(), rec.id[..12].to_string()];
        if !rec.spec.hostname.is_empty() && !names.contains(&rec.spec.hostname) {
            names.push(rec.spec.hostname.clone());
        }
        names.extend(ep.aliases.iter().cloned());
        Ok(ConnectOptions {
            ip: ep.ip,
            ip6: ep.ip6,
            mac: ep
                .mac
                .as_deref()
                .map(files::parse_mac)
                .transpose()
                .map_err(net_err)?,
            names,
            links,
        })
    }

    fn net_connect_one(
        &self,
        rec: &ContainerRecord,
        ns: &NetnsRef,
        network: &str,
        ep: &EndpointSpec,
    ) -> Result<Endpoint> {
        let opts = Self::connect_options(rec, ep)?;
        self.net.mutate(|s| {
            s.state
                .connect(&rec.id, ns, network, &opts)
                .map_err(net_err)
        })
    }

    /// Rewrite /etc/hosts with the container's addresses; (re)start its DNS listener when it is
    /// on a network with embedded DNS.
    fn net_refresh(&self, rec: &ContainerRecord, ns: &NetnsRef) -> Result<()> {
        let links = self.resolve_links(rec, false)?;
        let (own, embedded) = {
            let s = self.net.lock();
            let mut own: Vec<(IpAddr, Vec<String>)> = s
                .state
                .endpoints_of(&rec.id)
                .flat_map(|e| {
                    std::iter::once(IpAddr::V4(e.ip))
                        .chain(e.ip6.map(IpAddr::V6))
                        .map(|ip| (ip, vec![hostname_of(rec)]))
                })
                .collect();
            own.extend(link_hosts(&links));
            let embedded = s.state.endpoints_of(&rec.id).any(|e| {
                s.state
                    .networks
                    .get(&e.network)
                    .is_some_and(|n| n.embedded_dns)
            });
            (own, embedded)
        };
        write_files(&self.net_files_dir(&rec.id), rec, &own, embedded)?;
        if embedded {
            let upstreams: Vec<SocketAddr> = rec
                .spec
                .host
                .network
                .dns
                .iter()
                .filter_map(|d| d.parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
                .collect();
            self.net
                .dns
                .listen_with_upstreams(&rec.id, ns, (!upstreams.is_empty()).then_some(upstreams))
                .map_err(net_err)?;
        }
        Ok(())
    }

    /// The container's process is gone: stop its DNS listener (which holds the namespace) and
    /// give back its addresses and ports. Its veths go with its namespace.
    pub(crate) fn net_detach(&self, id: &str) {
        self.net.dns.stop(id);
        // A container that joined this one's namespace (`container:<this>`) keeps it alive:
        // then the veths must go explicitly, or a released address would still be in use.
        let joined = self.db().containers().unwrap_or_default().iter().any(|r| {
            r.id != id
                && (r.state.running() || r.state.task)
                && r.spec
                    .host
                    .network_mode
                    .strip_prefix("container:")
                    .is_some_and(|o| {
                        id.starts_with(o) || self.container(o).is_ok_and(|c| c.id == id)
                    })
        });
        if joined {
            return self.net_forget(id);
        }
        if let Err(e) = self
            .net
            .mutate(|s| s.state.release_container(id).map_err(net_err))
        {
            tracing::warn!("release the network endpoints of {id}: {e}");
        }
    }

    /// The container is removed: nothing of it may stay (links included).
    pub(crate) fn net_forget(&self, id: &str) {
        self.net.dns.stop(id);
        if let Err(e) = self
            .net
            .mutate(|s| s.state.remove_container(id).map_err(net_err))
        {
            tracing::warn!("remove the network endpoints of {id}: {e}");
        }
    }

    /// After re-adopting shims: endpoints of containers that are not running anymore go; the
    /// running ones get their DNS listeners back.
    pub(crate) fn net_recover(&self) -> Result<()> {
        let recs = self.db().containers()?;
        let live: BTreeMap<String, &ContainerRecord> = recs
            .iter()
            .filter(|r| r.state.running() || r.state.task)
            .map(|r| (r.id.clone(), r))
            .collect();
        let owners: Vec<String> = {
            let s = self.net.lock();
            s.state
                .endpoints
                .iter()
                .map(|e| e.container.clone())
                .chain(s.state.ports.keys().cloned())
                .collect()
        };
        for o in owners {
            if !live.contains_key(&o) {
                self.net_forget(&o);
            }
        }
        for rec in live.values() {
            let on_dns = {
                let s = self.net.lock();
                let on = s.state.endpoints_of(&rec.id).any(|e| {
                    s.state
                        .networks
                        .get(&e.network)
                        .is_some_and(|n| n.embedded_dns)
                });
                on
            };
            if on_dns && rec.state.pid > 0 {
                if let Err(e) = self.net_refresh(rec, &NetnsRef::Pid(rec.state.pid as u32)) {
                    tracing::warn!("restore networking of {}: {e}", rec.id);
                }
            }
        }
        Ok(())
    }

    /// Per-interface counters, by the container's interface name.
    pub fn container_network_stats(&self, id: &str) -> Vec<(String, InterfaceStats)> {
        self.net.lock().state.stats(id).unwrap_or_default()
    }

    /// The container's endpoints and published ports (inspect's NetworkSettings).
    pub fn container_networking(&self, id: &str) -> (Vec<(Endpoint, String)>, Vec<PublishedPort>) {
        let s = self.net.lock();
        let eps = s
            .state
            .endpoints_of(id)
            .map(|e| {
                let nid = s
                    .meta
                    .get(&e.network)
                    .map(|m| m.id.clone())
                    .unwrap_or_default();
                (e.clone(), nid)
            })
            .collect();
        let ports = s.state.ports.get(id).cloned().unwrap_or_default();
        (eps, ports)
    }

    // --- /networks ---

    fn network_info(&self, s: &Stored, name: &str) -> Option<NetworkInfo> {
        let n = s.state.networks.get(name)?;
        let meta = s.meta.get(name).cloned().unwrap_or_default();
        let names: BTreeMap<String, String> = self
            .db()
            .containers()
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.id, r.name))
            .collect();
        let containers = s
            .state
            .endpoints
            .iter()
            .filter(|e| e.network == name)
            .map(|e| {
                (
                    e.container.clone(),
                    names.get(&e.container).cloned().unwrap_or_default(),
                    e.clone(),
                )
            })
            .collect();
        Some(NetworkInfo {
            id: meta.id,
            name: n.name.clone(),
            driver: "bridge".into(),
            created: meta.created,
            internal: n.internal,
            subnet: Some(n.ipam.subnet.to_string()),
            gateway: Some(n.ipam.gateway.to_string()),
            ip_range: (n.ipam.range != n.ipam.subnet).then(|| n.ipam.range.to_string()),
            enable_ipv6: n.ipam6.is_some(),
            subnet6: n.ipam6.as_ref().map(|p| p.subnet.to_string()),
            gateway6: n.ipam6.as_ref().map(|p| p.gateway.to_string()),
            bridge: Some(n.bridge.clone()),
            labels: meta.labels,
            containers,
        })
    }

    fn pseudo(&self, name: &str) -> NetworkInfo {
        NetworkInfo {
            id: network_id(name, ""),
            name: name.to_string(),
            driver: if name == HOST { "host" } else { "null" }.into(),
            created: ids::now_rfc3339(),
            internal: false,
            subnet: None,
            gateway: None,
            ip_range: None,
            enable_ipv6: false,
            subnet6: None,
            gateway6: None,
            bridge: None,
            labels: BTreeMap::new(),
            containers: Vec::new(),
        }
    }

    pub fn list_networks(&self) -> Vec<NetworkInfo> {
        let s = self.net.lock();
        let mut out: Vec<NetworkInfo> = s
            .state
            .networks
            .keys()
            .filter_map(|n| self.network_info(&s, n))
            .collect();
        out.push(self.pseudo(HOST));
        out.push(self.pseudo(NONE));
        out
    }

    /// By name, id or unique id prefix.
    fn resolve_network(&self, s: &Stored, key: &str) -> Result<String> {
        if s.state.networks.contains_key(key) || key == HOST || key == NONE {
            return Ok(key.to_string());
        }
        let matches: Vec<&String> = s
            .meta
            .iter()
            .filter(|(_, m)| !key.is_empty() && m.id.starts_with(key))
            .map(|(n, _)| n)
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NotFound(format!("network {key} not found"))),
            _ => Err(Error::InvalidParameter(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                matches.len()
            ))),
        }
    }

    pub fn inspect_network(&self, key: &str) -> Result<NetworkInfo> {
        let s = self.net.lock();
        let name = self.resolve_network(&s, key)?;
        if name == HOST || name == NONE {
            return Ok(self.pseudo(&name));
        }
        self.network_info(&s, &name)
            .ok_or_else(|| Error::NotFound(format!("network {key} not found")))
    }

    pub fn create_network(&self, req: CreateNetwork) -> Result<NetworkInfo> {
        if !req.driver.is_empty() && req.driver != "bridge" {
            return Err(Error::InvalidParameter(format!(
                "plugin \"{}\" not found: only the bridge driver is supported",
                req.driver
            )));
        }
        if req.name == HOST || req.name == NONE {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let parse_net = |s: &Option<String>, what: &str| -> Result<Option<ipnet::Ipv4Net>> {
            s.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<ipnet::Ipv4Net>().map_err(|_| {
                        Error::InvalidParameter(format!(
                            "invalid {what} {s:?} (IPv4 CIDR expected)"
                        ))
                    })
                })
                .transpose()
        };
        // IPAM entries: one per family, told apart by the subnet's (or gateway's) family.
        let mut req = req;
        let mut v6: Option<(Option<String>, Option<String>)> = None;
        for (subnet, gateway, range) in std::mem::take(&mut req.ipam) {
            let is_v6 = subnet
                .as_deref()
                .or(gateway.as_deref())
                .is_some_and(|s| s.contains(':'));
            if is_v6 {
                if v6.is_some() {
                    return Err(Error::InvalidParameter(
                        "only one IPv6 subnet per network is supported".into(),
                    ));
                }
                v6 = Some((subnet, gateway));
            } else if req.subnet.is_some() || req.gateway.is_some() {
                return Err(Error::InvalidParameter(
                    "only one IPv4 subnet per network is supported".into(),
                ));
            } else {
                (req.subnet, req.gateway, req.ip_range) = (subnet, gateway, range);
            }
        }
        let (subnet6, gateway6) = v6.unwrap_or_default();
        let subnet6 = subnet6
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| berth_network::ipam6::parse_subnet(s).map_err(net_err))
            .transpose()?;
        let gateway6 = gateway6
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|g| {
                g.parse::<Ipv6Addr>()
                    .map_err(|_| Error::InvalidParameter(format!("invalid IPv6 gateway {g:?}")))
            })
            .transpose()?;
        let cfg = NetworkConfig {
            ipv6: req.enable_ipv6,
            subnet6,
            gateway6,
            subnet: parse_net(&req.subnet, "subnet")?,
            ip_range: parse_net(&req.ip_range, "ip-range")?,
            gateway: req
                .gateway
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|g| {
                    g.parse::<Ipv4Addr>()
                        .map_err(|_| Error::InvalidParameter(format!("invalid gateway {g:?}")))
                })
                .transpose()?,
            internal: req.internal,
            bridge: req
                .options
                .get("com.docker.network.bridge.name")
                .filter(|b| !b.is_empty())
                .cloned(),
            mtu: req
                .options
                .get("com.docker.network.driver.mtu")
                .map(|m| {
                    m.parse::<u32>()
                        .map_err(|_| Error::InvalidParameter(format!("invalid mtu {m:?}")))
                })
                .transpose()?,
            ..NetworkConfig::user(&req.name)
        };
        let name = req.name.clone();
        self.net.mutate(|s| {
            s.state.create_network(cfg).map_err(net_err)?;
            let created = ids::now_rfc3339();
            s.meta.insert(
                name.clone(),
                NetworkMeta {
                    id: network_id(&name, &created),
                    created,
                    labels: req.labels,
                },
            );
            Ok(())
        })?;
        self.inspect_network(&name)
    }

    pub fn remove_network(&self, key: &str) -> Result<()> {
        let name = self.resolve_network(&self.net.lock(), key)?;
        let default = self.net.lock().state.settings.default_network.clone();
        if name == HOST || name == NONE || name == default {
            return Err(Error::Conflict(format!(
                "{name} is a pre-defined network and cannot be removed"
            )));
        }
        self.net.mutate(|s| {
            s.state.remove_network(&name).map_err(net_err)?;
            s.meta.remove(&name);
            Ok(())
        })
    }

    /// Remove every user network without endpoints; their names.
    pub fn prune_networks(&self) -> Result<Vec<String>> {
        let default = self.net.lock().state.settings.default_network.clone();
        let unused: Vec<String> = {
            let s = self.net.lock();
            s.state
                .networks
                .keys()
                .filter(|n| **n != default && !s.state.endpoints.iter().any(|e| &e.network == *n))
                .cloned()
                .collect()
        };
        let mut removed = Vec::new();
        for n in unused {
            if self.remove_network(&n).is_ok() {
                removed.push(n);
            }
        }
        Ok(removed)
    }

    /// `network connect`: recorded in the container's spec (it joins at every start) and, for a
    /// running container, connected now.
    pub async fn connect_network(
        self: &Arc<Self>,
        key: &str,
        container: &str,
        ep: EndpointSpec,
    ) -> Result<()> {
        let name = self.resolve_network(&self.net.lock(), key)?;
        let id = self.container(container)?.id;
        let lock = self.containers.op_lock(&id);
        let _g = lock.lock().await;
        let mut rec = self.container(&id)?;
        let default = self.net.lock().state.settings.default_network.clone();
        let mode = mode_of(&rec.spec.host.network_mode, &default);
        if name == HOST || name == NONE || !matches!(mode, Mode::Network(_)) {
            return Err(Error::InvalidParameter(
                "container sharing network namespace with another container or host cannot be connected to any other network".into(),
            ));
        }
        if let Some(m) = &ep.mac {
            files::parse_mac(m).map_err(net_err)?;
        }
        let mut ep = ep;
        ep.links = ep
            .links
            .iter()
            .map(|l| self.check_link(l))
            .collect::<Result<_>>()?;
        let already = mode == Mode::Network(name.clone())
            || rec.spec.host.network.endpoints.contains_key(&name)
                && (self.net.lock().state.endpoint(&id, &name).is_some() || !rec.state.running());
        if already {
            return Err(Error::Conflict(format!(
                "endpoint with name {} already exists in network {name}",
                rec.name
            )));
        }
        self.net.lock().state.network(&name).map_err(net_err)?;
        if rec.state.running() || rec.state.task {
            let engine = self.clone();
            let r = rec.clone();
            let (n, e) = (name.clone(), ep.clone());
            tokio::task::spawn_blocking(move || -> Result<()> {
                let ns = NetnsRef::Pid(r.state.pid as u32);
                engine.net_connect_one(&r, &ns, &n, &e)?;
                engine.net_refresh(&r, &ns)
            })
            .await
            .map_err(|e| Error::internal("connect", e))??;
        }
        rec.spec.host.network.endpoints.insert(name, ep);
        self.db().update_container(&rec)
    }

    pub async fn disconnect_network(
        self: &Arc<Self>,
        key: &str,
        container: &str,
        _force: bool,
    ) -> Result<()> {
        let name = self.resolve_network(&self.net.lock(), key)?;
        let id = self.container(container)?.id;
        let lock = self.containers.op_lock(&id);
        let _g = lock.lock().await;
        let mut rec = self.container(&id)?;
        let default = self.net.lock().state.settings.default_network.clone();
        let mode = mode_of(&rec.spec.host.network_mode, &default);
        let connected = self.net.lock().state.endpoint(&id, &name).is_some();
        let recorded = mode == Mode::Network(name.clone())
            || rec.spec.host.network.endpoints.contains_key(&name);
        if !connected && !recorded {
            return Err(Error::Conflict(format!(
                "container {id} is not connected to network {name}"
            )));
        }
        if connected {
            let engine = self.clone();
            let (i, n) = (id.clone(), name.clone());
            tokio::task::spawn_blocking(move || {
                engine
                    .net
                    .mutate(|s| s.state.disconnect(&i, &n).map_err(net_err))
            })
            .await
            .map_err(|e| Error::internal("disconnect", e))??;
            if rec.state.pid > 0 {
                let _ = self.net_refresh(&rec, &NetnsRef::Pid(rec.state.pid as u32));
            }
        }
        rec.spec.host.network.endpoints.remove(&name);
        if mode == Mode::Network(name) {
            // Docker leaves such a container with no network ("none") from then on.
            rec.spec.host.network_mode = NONE.into();
        }
        self.db().update_container(&rec)
    }
}

/// /etc/hosts lines for links: the target's address with the alias, its hostname and name.
fn link_hosts(links: &[ResolvedLink]) -> Vec<(IpAddr, Vec<String>)> {
    links
        .iter()
        .map(|l| {
            let mut names = vec![l.alias.clone()];
            for n in [hostname_of(&l.target), l.target.name.clone()] {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            (IpAddr::V4(l.ip), names)
        })
        .collect()
}

fn hostname_of(rec: &ContainerRecord) -> String {
    if rec.spec.hostname.is_empty() {
        rec.id[..12].to_string()
    } else {
        rec.spec.hostname.clone()
    }
}

/// Write the three files in place (truncate and write): they are bind-mounted file by file, so
/// a rename would leave the container looking at the old inode.
fn write_files(
    dir: &Path,
    rec: &ContainerRecord,
    own: &[(IpAddr, Vec<String>)],
    embedded_dns: bool,
) -> Result<()> {
    let n = &rec.spec.host.network;
    let extra: Vec<ExtraHost> = n
        .extra_hosts
        .iter()
        .filter_map(|x| ExtraHost::parse(x))
        .collect();
    let user = DnsSettings {
        servers: n.dns.iter().filter_map(|d| d.parse().ok()).collect(),
        search: n.dns_search.clone(),
        options: n.dns_options.clone(),
    };
    let hostname = hostname_of(rec);
    for (name, text) in [
        ("hostname", files::hostname(&hostname)),
        ("hosts", files::hosts(own, &extra)),
        (
            "resolv.conf",
            files::resolv_conf(&ResolvConf::host(), &user, embedded_dns),
        ),
    ] {
        let path = dir.join(name);
        berth_image::overwrite::overwrite(&path, text.as_bytes())
            .map_err(|e| Error::internal(format!("write {}", path.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_modes() {
        assert_eq!(mode_of("default", "bridge"), Mode::Network("bridge".into()));
        assert_eq!(mode_of("none", "bridge"), Mode::None);
        assert_eq!(mode_of("host", "bridge"), Mode::Host);
        assert_eq!(
            mode_of("container:abc", "bridge"),
            Mode::Container("abc".into())
        );
        assert_eq!(mode_of("mynet", "bridge"), Mode::Network("mynet".into()));
    }

    #[test]
    fn port_bindings_become_specs() {
        let mut b = BTreeMap::new();
        b.insert(
            "80/tcp".to_string(),
            vec![
                ("127.0.0.1".to_string(), "8080".to_string()),
                ("".to_string(), "".to_string()),
                ("::".to_string(), "8080".to_string()),
            ],
        );
        b.insert(
            "53/udp".to_string(),
            vec![("0.0.0.0".into(), "5353".into())],
        );
        let specs = port_specs(&b).unwrap();
        assert_eq!(specs.len(), 3);
        assert!(specs.contains(&PortSpec {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp
        }));
        assert!(specs.contains(&PortSpec {
            host_ip: None,
            host_port: 0,
            container_port: 80,
            protocol: Protocol::Tcp
        }));
        assert!(specs.contains(&PortSpec {
            host_ip: None,
            host_port: 5353,
            container_port: 53,
            protocol: Protocol::Udp
        }));
        b.insert("x/tcp".into(), vec![]);
        assert!(port_specs(&b).is_err());
    }

    #[test]
    fn links_parse_like_docker() {
        assert_eq!(parse_link("db").unwrap(), ("db".into(), "db".into()));
        assert_eq!(parse_link("/db:/x").unwrap(), ("db".into(), "x".into()));
        for bad in ["", ":x", "db:", "a:b:c"] {
            assert!(parse_link(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn link_env_matches_docker() {
        let ip = Ipv4Addr::new(10, 0, 0, 5);
        let exposed = ["81/tcp", "80/tcp", "53/udp", "82/tcp"].map(String::from);
        let env = ["PATH=/bin", "HOME=/root", "A=b=c"].map(String::from);
        let got = link_env("app", "my-db", ip, &exposed, &env);
        for want in [
            "MY_DB_PORT=udp://10.0.0.5:53",
            "MY_DB_PORT_80_TCP_START=tcp://10.0.0.5:80",
            "MY_DB_PORT_80_TCP_PORT_START=80",
            "MY_DB_PORT_80_TCP_PORT_END=82",
            "MY_DB_PORT_81_TCP=tcp://10.0.0.5:81",
            "MY_DB_PORT_81_TCP_ADDR=10.0.0.5",
            "MY_DB_PORT_81_TCP_PORT=81",
            "MY_DB_PORT_81_TCP_PROTO=tcp",
            "MY_DB_PORT_53_UDP_PROTO=udp",
            "MY_DB_NAME=/app/my-db",
            "MY_DB_ENV_A=b=c",
        ] {
            assert!(got.iter().any(|e| e == want), "{want} not in {got:?}");
        }
        assert!(!got
            .iter()
            .any(|e| e.contains("_ENV_PATH") || e.contains("_ENV_HOME")));
        let merged = merge_env(got, &["MY_DB_NAME=mine".to_string()]);
        assert!(merged.contains(&"MY_DB_NAME=mine".to_string()));
        assert_eq!(
            merged
                .iter()
                .filter(|e| e.starts_with("MY_DB_NAME="))
                .count(),
            1
        );
    }

    #[test]
    fn ids_are_hex_and_differ() {
        let a = network_id("n", "t1");
        assert_eq!(a.len(), 64);
        assert_ne!(a, network_id("n", "t2"));
    }
}
