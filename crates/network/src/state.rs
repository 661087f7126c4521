//! The engine-facing model: networks, endpoints and published ports as one serialisable value.
//!
//! The engine keeps a [`NetworkState`] in its state database (`to_json`/`from_json`) and calls
//! the methods below; each one changes the kernel first and the value only on success, so a
//! failed call leaves neither stray links/rules/addresses nor stale bookkeeping. After a daemon
//! restart, [`NetworkState::reconcile`] brings bridges, sysctls and the nftables table back in
//! line with the stored value without duplicating anything.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::dns::DnsEntry;
use crate::error::{Error, Result};
use crate::ipam::{self, Ipam};
use crate::ipam6::{self, Ipam6};
use crate::mtu::Mtus;
use crate::netlink::{self, VethPlan};
use crate::netns::NetnsRef;
use crate::nft::{self, BridgeRules, Ruleset};
use crate::ports::{self, PortSpec, PublishedPort};
use crate::stats::{self, InterfaceStats};
use crate::sysctl;

/// Daemon-level choices (berthd's config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// nftables table (`ip <table>`) berth owns.
    pub table: String,
    pub default_network: String,
    pub default_bridge: String,
    /// Clashes with neither docker0 (172.17.0.0/16) nor podman (10.88.0.0/16).
    pub default_subnet: Ipv4Net,
    /// Where subnets for user networks without `--subnet` come from, `pool_prefix` at a time.
    pub pool: Ipv4Net,
    pub pool_prefix: u8,
    /// Where IPv6 subnets for `--ipv6` networks without an IPv6 `--subnet` come from (ULA).
    pub pool6: Ipv6Net,
    pub pool6_prefix: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            table: "berth".to_string(),
            default_network: "bridge".to_string(),
            default_bridge: "berth0".to_string(),
            default_subnet: Ipv4Net::new(Ipv4Addr::new(172, 30, 0, 0), 16).unwrap_or_default(),
            pool: Ipv4Net::new(Ipv4Addr::new(172, 31, 0, 0), 16).unwrap_or_default(),
            pool_prefix: 24,
            pool6: Ipv6Net::new(Ipv6Addr::new(0xfd4b, 0xe7a1, 0xba5e, 0, 0, 0, 0, 0), 48)
                .unwrap_or_default(),
            pool6_prefix: 64,
        }
    }
}

/// `network create` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub name: String,
    /// Bridge device name; derived from the network name when None.
    pub bridge: Option<String>,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    pub internal: bool,
    /// Embedded DNS (Docker: on for user-defined networks, off for the default bridge).
    pub embedded_dns: bool,
    pub mtu: Option<u32>,
    /// `--ipv6`: containers get an IPv6 address too, from `subnet6` (or the pool).
    pub ipv6: bool,
    pub subnet6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
}

impl NetworkConfig {
    /// A user-defined bridge network as `network create NAME` makes it: derived bridge name,
    /// subnet from the pool, embedded DNS on.
    pub fn user(name: &str) -> NetworkConfig {
        NetworkConfig {
            name: name.to_string(),
            embedded_dns: true,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub bridge: String,
    pub internal: bool,
    pub embedded_dns: bool,
    pub mtu: Option<u32>,
    pub ipam: Ipam,
    /// IPv6 addresses (`--ipv6` networks only).
    #[serde(default)]
    pub ipam6: Option<Ipam6>,
}

/// A container's attachment to one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container: String,
    pub network: String,
    /// Interface name inside the container (eth0, eth1, ...).
    pub ifname: String,
    /// Host end of the veth pair.
    pub host_veth: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub mac: String,
    /// Default route through this network's gateway (the container's first network only).
    pub gateway: Option<Ipv4Addr>,
    /// Names other containers on the network resolve to `ip` (container name, aliases).
    pub names: Vec<String>,
    /// Legacy links (alias, target container name) the embedded DNS resolves for this
    /// container only.
    #[serde(default)]
    pub links: Vec<(String, String)>,
    /// The IPv6 address on an `--ipv6` network, its prefix, and the IPv6 default route.
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default)]
    pub prefix_len6: u8,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
}

/// `connect` options (`--ip`, `--mac-address`, `--network-alias`, the container's name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectOptions {
    pub ip: Option<Ipv4Addr>,
    /// `--ip6` (on an `--ipv6` network).
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    pub mac: Option<[u8; 6]>,
    /// Container name, hostname, aliases: what the embedded DNS answers for.
    pub names: Vec<String>,
    /// `--link target:alias` on a user network: (alias, target container name).
    #[serde(default)]
    pub links: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    pub settings: Settings,
    pub networks: BTreeMap<String, Network>,
    pub endpoints: Vec<Endpoint>,
    /// Container → its published ports.
    pub ports: BTreeMap<String, Vec<PublishedPort>>,
}

fn valid_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason: "use letters, digits, '_', '.', '-', starting with a letter or digit",
        })
    }
}

fn valid_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason: "interface names are 1-15 letters, digits, '_', '.', '-'",
        })
    }
}

/// `br-` and 12 hex digits of a hash of the network name (as Docker's `br-<id>`).
fn derived_bridge_name(network: &str) -> String {
    // FNV-1a: stable across releases, unlike std's hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in network.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("br-{:012x}", h & 0xffff_ffff_ffff)
}

fn random_hex(len: usize) -> String {
    let mut bytes = [0u8; 8];
    // SAFETY: the buffer is valid for its length; getrandom writes at most that many bytes.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        // Fall back to time and pid; uniqueness is still checked by the kernel (EEXIST).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        bytes = (t ^ u64::from(std::process::id()) << 32).to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex[..len].to_string()
}

/// Locally administered MAC derived from the address (as Docker): stable for an IP, so a
/// reused address keeps its MAC and peers' ARP caches stay right.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl NetworkState {
    pub fn new(settings: Settings) -> NetworkState {
        NetworkState {
            settings,
            ..Default::default()
        }
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::io("serialise network state", e.into()))
    }

    pub fn from_json(text: &str) -> Result<NetworkState> {
        serde_json::from_str(text).map_err(|e| Error::io("load network state", e.into()))
    }

    pub fn network(&self, name: &str) -> Result<&Network> {
        self.networks
            .get(name)
            .ok_or_else(|| Error::UnknownNetwork(name.to_string()))
    }

    pub fn endpoints_of<'a>(&'a self, container: &'a str) -> impl Iterator<Item = &'a Endpoint> {
        self.endpoints
            .iter()
            .filter(move |e| e.container == container)
    }

    pub fn endpoint(&self, container: &str, network: &str) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.container == container && e.network == network)
    }

    /// Create the default bridge network from the settings if it is not there yet.
    pub fn ensure_default_network(&mut self) -> Result<()> {
        if self.networks.contains_key(&self.settings.default_network) {
            return Ok(());
        }
        let cfg = NetworkConfig {
            name: self.settings.default_network.clone(),
            bridge: Some(self.settings.default_bridge.clone()),
            subnet: Some(self.settings.default_subnet),
            ..Default::default()
        };
        self.create_network(cfg).map(|_| ())
    }

    /// `network create`: validate, pick or check the subnet, create the bridge, update the
    /// firewall. Nothing is left behind on error.
    pub fn create_network(&mut self, cfg: NetworkConfig) -> Result<&Network> {
        valid_name(&cfg.name)?;
        if self.networks.contains_key(&cfg.name) {
            return Err(Error::NetworkExists(cfg.name));
        }
        let bridge = cfg
            .bridge
            .clone()
            .unwrap_or_else(|| derived_bridge_name(&cfg.name));
        valid_ifname(&bridge)?;
        if self.networks.values().any(|n| n.bridge == bridge) {
            return Err(Error::InvalidName {
                name: bridge,
                reason: "bridge name already used by another berth network",
            });
        }
        let host = netlink::host_addresses()?;
        let foreign: Vec<(String, Ipv4Net)> = host
            .into_iter()
            .filter(|(ifname, _)| ifname != &bridge)
            .collect();
        let subnet = match cfg.subnet {
            Some(s) => {
                ipam::validate_subnet(&s)?;
                self.check_free(&s, &foreign)?;
                s
            }
            None => self.pick_subnet(&foreign)?,
        };
        let pool = Ipam::new(subnet, cfg.gateway, cfg.ip_range)?;
        let ipam6 = if cfg.ipv6 {
            let host6: Vec<(String, Ipv6Net)> = netlink::host_addresses6()?
                .into_iter()
                .filter(|(ifname, _)| ifname != &bridge)
                .collect();
            let subnet6 = match cfg.subnet6 {
                Some(s) => {
                    ipam6::validate_subnet(&s)?;
                    self.check_free6(&s, &host6)?;
                    s
                }
                None => self.pick_subnet6(&host6)?,
            };
            Some(Ipam6::new(subnet6, cfg.gateway6)?)
        } else if let Some(s) = cfg.subnet6 {
            return Err(Error::InvalidSubnet {
                subnet: s.to_string(),
                reason: "an IPv6 subnet needs an IPv6 network (--ipv6)".to_string(),
            });
        } else {
            None
        };
        let network = Network {
            name: cfg.name.clone(),
            bridge: bridge.clone(),
            internal: cfg.internal,
            embedded_dns: cfg.embedded_dns,
            mtu: cfg.mtu,
            ipam: pool,
            ipam6,
        };
        let created = netlink::ensure_bridge(
            &bridge,
            network.ipam.gateway_net(),
            network.ipam6.as_ref().map(Ipam6::gateway_net),
            Some(Mtus::for_network(cfg.mtu).link),
        )?;
        let mut next = self.clone();
        next.networks.insert(cfg.name.clone(), network.clone());
        if let Err(e) = next
            .apply_kernel_settings(&network)
            .and_then(|_| next.apply_rules())
        {
            if created {
                let _ = netlink::delete_link(&bridge);
            }
            return Err(e);
        }
        *self = next;
        self.network(&cfg.name)
    }

    fn check_free(&self, subnet: &Ipv4Net, host: &[(String, Ipv4Net)]) -> Result<()> {
        if let Some(n) = self
            .networks
            .values()
            .find(|n| ipam::overlaps(subnet, &n.ipam.subnet))
        {
            return Err(Error::SubnetOverlap {
                subnet: *subnet,
                other: n.ipam.subnet,
                owner: format!("network {}", n.name),
            });
        }
        if let Some((ifname, net)) = host
            .iter()
            .find(|(_, net)| !net.addr().is_loopback() && ipam::overlaps(subnet, &net.trunc()))
        {
            return Err(Error::SubnetOverlap {
                subnet: *subnet,
                other: net.trunc(),
                owner: format!("host interface {ifname} has {net}"),
            });
        }
        Ok(())
    }

    fn check_free6(&self, subnet: &Ipv6Net, host: &[(String, Ipv6Net)]) -> Result<()> {
        if let Some((n, other)) = self
            .networks
            .values()
            .filter_map(|n| n.ipam6.as_ref().map(|p| (n, p.subnet)))
            .find(|(_, other)| ipam6::overlaps(subnet, other))
        {
            return Err(Error::SubnetOverlap6 {
                subnet: *subnet,
                other,
                owner: format!("network {}", n.name),
            });
        }
        if let Some((ifname, net)) = host.iter().find(|(_, net)| {
            let a = net.addr();
            !a.is_loopback()
                && a.segments()[0] & 0xffc0 != 0xfe80
                && ipam6::overlaps(subnet, &net.trunc())
        }) {
            return Err(Error::SubnetOverlap6 {
                subnet: *subnet,
                other: net.trunc(),
                owner: format!("host interface {ifname} has {net}"),
            });
        }
        Ok(())
    }

    fn pick_subnet6(&self, host: &[(String, Ipv6Net)]) -> Result<Ipv6Net> {
        let pool = self.settings.pool6;
        let subnets =
            pool.subnets(self.settings.pool6_prefix)
                .map_err(|_| Error::InvalidSubnet {
                    subnet: pool.to_string(),
                    reason: format!("cannot split into /{}", self.settings.pool6_prefix),
                })?;
        for s in subnets.take(1 << 16) {
            if self.check_free6(&s, host).is_ok() {
                return Ok(s);
            }
        }
        Err(Error::InvalidSubnet {
            subnet: pool.to_string(),
            reason: "IPv6 address pool exhausted: every subnet is in use".to_string(),
        })
    }

    fn pick_subnet(&self, host: &[(String, Ipv4Net)]) -> Result<Ipv4Net> {
        let pool = self.settings.pool;
        let subnets =
            pool.subnets(self.settings.pool_prefix)
                .map_err(|_| Error::InvalidSubnet {
                    subnet: pool.to_string(),
                    reason: format!("cannot split into /{}", self.settings.pool_prefix),
                })?;
        for s in subnets {
            if self.check_free(&s, host).is_ok() {
                return Ok(s);
            }
        }
        Err(Error::InvalidSubnet {
            subnet: pool.to_string(),
            reason: "address pool exhausted: every subnet is in use".to_string(),
        })
    }

    /// `network rm`: refused while containers are attached.
    pub fn remove_network(&mut self, name: &str) -> Result<()> {
        let network = self.network(name)?.clone();
        let users: Vec<String> = self
            .endpoints
            .iter()
            .filter(|e| e.network == name)
            .map(|e| e.container.clone())
            .collect();
        if !users.is_empty() {
            return Err(Error::NetworkInUse {
                network: name.to_string(),
                containers: users,
            });
        }
        let mut next = self.clone();
        next.networks.remove(name);
        next.apply_rules()?;
        *self = next;
        netlink::delete_link(&network.bridge)?;
        Ok(())
    }

    /// Attach `container` (whose namespace is `ns`) to `network`: allocate an address, create
    /// the veth pair and configure the container's end.
    pub fn connect(
        &mut self,
        container: &str,
        ns: &NetnsRef,
        network: &str,
        opts: &ConnectOptions,
    ) -> Result<Endpoint> {
        if self.endpoint(container, network).is_some() {
            return Err(Error::AlreadyConnected {
                container: container.to_string(),
                network: network.to_string(),
            });
        }
        let mut net = self.network(network)?.clone();
        let ip = match opts.ip {
            Some(ip) => {
                net.ipam.request(ip, container)?;
                ip
            }
            None => net.ipam.allocate(container)?,
        };
        let ip6 = match (net.ipam6.as_mut(), opts.ip6) {
            (Some(p), Some(ip6)) => {
                p.request(ip6, container)?;
                Some(ip6)
            }
            (Some(p), None) => Some(p.allocate(container)?),
            (None, Some(ip6)) => {
                return Err(Error::InvalidSubnet {
                    subnet: ip6.to_string(),
                    reason: format!("network {network} has no IPv6 (created without --ipv6)"),
                })
            }
            (None, None) => None,
        };
        // The lowest ethN the container does not use yet (a disconnect can leave a gap).
        let used: Vec<&str> = self
            .endpoints_of(container)
            .map(|e| e.ifname.as_str())
            .collect();
        let ifname = (0..)
            .map(|n| format!("eth{n}"))
            .find(|n| !used.contains(&n.as_str()))
            .unwrap_or_default();
        let has_default_route = self.endpoints_of(container).any(|e| e.gateway.is_some());
        let gateway = (!net.internal && !has_default_route).then_some(net.ipam.gateway);
        let has_default_route6 = self.endpoints_of(container).any(|e| e.gateway6.is_some());
        let gateway6 = net
            .ipam6
            .as_ref()
            .filter(|_| !net.internal && !has_default_route6)
            .map(|p| p.gateway);
        let prefix_len6 = net.ipam6.as_ref().map_or(0, |p| p.subnet.prefix_len());
        let address6 = ip6.and_then(|ip| Ipv6Net::new(ip, prefix_len6).ok());
        let mac = opts.mac.unwrap_or_else(|| mac_for(ip));
        let suffix = random_hex(7);
        let host_veth = format!("veth{suffix}");
        let prefix_len = net.ipam.subnet.prefix_len();
        let address = Ipv4Net::new(ip, prefix_len).map_err(|_| Error::InvalidSubnet {
            subnet: format!("{ip}/{prefix_len}"),
            reason: "bad prefix".to_string(),
        })?;
        netlink::create_veth(&VethPlan {
            bridge: &net.bridge,
            host_name: &host_veth,
            netns: ns,
            ifname: &ifname,
            address,
            gateway,
            address6,
            gateway6,
            mac,
            mtu: Some(Mtus::for_network(net.mtu).link),
            route_mtu: gateway.and(Mtus::for_network(net.mtu).default_route),
        })?;
        let endpoint = Endpoint {
            container: container.to_string(),
            network: network.to_string(),
            ifname,
            host_veth,
            ip,
            prefix_len,
            mac: mac_string(mac),
            gateway,
            names: opts.names.clone(),
            links: opts.links.clone(),
            ip6,
            prefix_len6: if ip6.is_some() { prefix_len6 } else { 0 },
            gateway6,
        };
        self.networks.insert(network.to_string(), net);
        self.endpoints.push(endpoint.clone());
        Ok(endpoint)
    }

    /// Detach `container` from `network`: delete its veth (if the container still exists) and
    /// release its address. Ports published to that address go too.
    pub fn disconnect(&mut self, container: &str, network: &str) -> Result<()> {
        let endpoint =
            self.endpoint(container, network)
                .cloned()
                .ok_or_else(|| Error::NotConnected {
                    container: container.to_string(),
                    network: network.to_string(),
                })?;
        let mut next = self.clone();
        if let Some(list) = next.ports.get_mut(container) {
            list.retain(|p| p.container_ip != endpoint.ip);
            if list.is_empty() {
                next.ports.remove(container);
            }
        }
        // The table only changes when ports go; skip the nft run otherwise (fast `rm`).
        if next.ports != self.ports {
            next.apply_rules()?;
        }
        netlink::delete_link(&endpoint.host_veth)?;
        if let Some(net) = next.networks.get_mut(network) {
            net.ipam.release(endpoint.ip);
            if let (Some(p), Some(ip6)) = (net.ipam6.as_mut(), endpoint.ip6) {
                p.release(ip6);
            }
        }
        next.endpoints
            .retain(|e| !(e.container == container && e.network == network));
        *self = next;
        Ok(())
    }

    /// Publish `specs` for `container` (DNAT to its address on its first network). All or
    /// nothing: a taken port refuses the whole batch.
    pub fn publish(&mut self, container: &str, specs: &[PortSpec]) -> Result<Vec<PublishedPort>> {
        let (target, target6) = self
            .endpoints_of(container)
            .find(|e| self.networks.get(&e.network).is_some_and(|n| !n.internal))
            .map(|e| (e.ip, e.ip6))
            .ok_or_else(|| Error::NotConnected {
                container: container.to_string(),
                network: "(any non-internal network)".to_string(),
            })?;
        let mut taken: Vec<PublishedPort> = self.ports.values().flatten().copied().collect();
        let mut added = Vec::new();
        for spec in specs {
            let host_port = if spec.host_port == 0 {
                ports::pick_ephemeral(
                    spec.host_ip,
                    spec.protocol,
                    ports::ephemeral_range(),
                    &taken,
                )?
            } else {
                if let Some(p) =
                    ports::conflicting(spec.host_ip, spec.host_port, spec.protocol, &taken)
                {
                    return Err(Error::PortTaken {
                        port: format!(
                            "{}:{}/{}",
                            spec.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                            spec.host_port,
                            spec.protocol
                        ),
                        reason: format!("already published ({p})"),
                    });
                }
                ports::host_port_free(spec.host_ip, spec.host_port, spec.protocol)?;
                spec.host_port
            };
            let p = PublishedPort {
                host_ip: spec.host_ip,
                host_port,
                container_ip: target,
                container_ip6: target6,
                container_port: spec.container_port,
                protocol: spec.protocol,
            };
            taken.push(p);
            added.push(p);
        }
        let mut next = self.clone();
        next.ports
            .entry(container.to_string())
            .or_default()
            .extend(added.iter().copied());
        next.apply_rules()?;
        *self = next;
        Ok(added)
    }

    /// Withdraw every port published for `container`.
    pub fn unpublish(&mut self, container: &str) -> Result<()> {
        if !self.ports.contains_key(container) {
            return Ok(());
        }
        let mut next = self.clone();
        next.ports.remove(container);
        next.apply_rules()?;
        *self = next;
        Ok(())
    }

    /// Everything for `container` goes: ports, endpoints, addresses. Used on `rm`, and for a
    /// container found dead after a restart (its veths vanished with its namespace).
    pub fn remove_container(&mut self, container: &str) -> Result<()> {
        self.unpublish(container)?;
        let networks: Vec<String> = self
            .endpoints_of(container)
            .map(|e| e.network.clone())
            .collect();
        for n in networks {
            self.disconnect(container, &n)?;
        }
        Ok(())
    }

    /// Give back `container`'s addresses and ports without touching links: for a container
    /// whose network namespace is already gone (it exited and nothing holds the namespace), the
    /// kernel removes its veths itself. Deleting them here would only wait out an RCU grace
    /// period (~20 ms per link) — this keeps `run --rm` on a bridge fast.
    pub fn release_container(&mut self, container: &str) -> Result<()> {
        self.unpublish(container)?;
        for e in self.endpoints.iter().filter(|e| e.container == container) {
            if let Some(net) = self.networks.get_mut(&e.network) {
                net.ipam.release(e.ip);
                if let (Some(p), Some(ip6)) = (net.ipam6.as_mut(), e.ip6) {
                    p.release(ip6);
                }
            }
        }
        self.endpoints.retain(|e| e.container != container);
        Ok(())
    }

    /// Interface counters of each of `container`'s interfaces (the container's view), by
    /// interface name.
    pub fn stats(&self, container: &str) -> Result<Vec<(String, InterfaceStats)>> {
        self.endpoints_of(container)
            .map(|e| Ok((e.ifname.clone(), stats::container_stats(&e.host_veth)?)))
            .collect()
    }

    /// Records for [`crate::dns::DnsServer::set_entries`]: endpoints on DNS-enabled networks.
    pub fn dns_entries(&self) -> Vec<DnsEntry> {
        self.endpoints
            .iter()
            .filter(|e| {
                self.networks
                    .get(&e.network)
                    .is_some_and(|n| n.embedded_dns)
            })
            .map(|e| DnsEntry {
                network: e.network.clone(),
                container: e.container.clone(),
                names: e.names.clone(),
                ip: e.ip,
                ip6: e.ip6,
                links: e.links.clone(),
            })
            .collect()
    }

    /// The nftables table this state calls for.
    pub fn ruleset(&self) -> Ruleset {
        Ruleset {
            bridges: self
                .networks
                .values()
                .map(|n| BridgeRules {
                    bridge: n.bridge.clone(),
                    subnet: n.ipam.subnet,
                    gateway: n.ipam.gateway,
                    internal: n.internal,
                    subnet6: n.ipam6.as_ref().map(|p| p.subnet),
                })
                .collect(),
            ports: self.ports.values().flatten().copied().collect(),
        }
    }

    fn apply_rules(&self) -> Result<()> {
        nft::apply(&self.settings.table, &self.ruleset())
    }

    fn apply_kernel_settings(&self, n: &Network) -> Result<()> {
        sysctl::enable_ip_forward()?;
        sysctl::enable_route_localnet(&n.bridge)?;
        if n.ipam6.is_some() {
            sysctl::enable_ipv6_on(&n.bridge)?;
            if !n.internal {
                // As Docker: IPv6 networks with outbound access need the host to route v6.
                sysctl::enable_ipv6_forward()?;
            }
        }
        Ok(())
    }

    /// After a daemon restart (or at any time): recreate missing bridges and their addresses,
    /// set the sysctls, and replace the nftables table with exactly what the state says.
    /// Idempotent: running it twice changes nothing.
    pub fn reconcile(&self) -> Result<()> {
        for n in self.networks.values() {
            netlink::ensure_bridge(
                &n.bridge,
                n.ipam.gateway_net(),
                n.ipam6.as_ref().map(Ipam6::gateway_net),
                Some(Mtus::for_network(n.mtu).link),
            )?;
            self.apply_kernel_settings(n)?;
        }
        self.apply_rules()
    }

    /// Host veths recorded in the state that no longer exist (their container's namespace is
    /// gone); the engine calls `remove_container` for their owners.
    pub fn vanished_endpoints(&self) -> Result<Vec<&Endpoint>> {
        let mut out = Vec::new();
        for e in &self.endpoints {
            if !netlink::link_exists(&e.host_veth)? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Remove every bridge and berth's table (uninstall, tests). Endpoints are dropped too.
    pub fn teardown(&mut self) -> Result<()> {
        nft::remove(&self.settings.table)?;
        for e in &self.endpoints {
            let _ = netlink::delete_link(&e.host_veth);
        }
        for n in self.networks.values() {
            netlink::delete_link(&n.bridge)?;
        }
        self.endpoints.clear();
        self.ports.clear();
        self.networks.clear();
        Ok(())
    }
}
