//! Published ports: parsing `-p [ip:][host:]container[/tcp|udp]`, choosing ephemeral host ports,
//! and refusing a port another mapping or a host process already holds.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A port mapping as the user asked for it. `host_port` 0 means "pick one" (`-P`, or
/// `-p 80` without a host port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// None: every host address (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

/// A mapping in force: where the host port leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
    pub protocol: Protocol,
    /// The container's IPv6 address on the same network, when it has one: the port then
    /// answers on the host's IPv6 addresses too (unless bound to an IPv4 host address).
    #[serde(default)]
    pub container_ip6: Option<std::net::Ipv6Addr>,
}

impl fmt::Display for PublishedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        write!(
            f,
            "{ip}:{}->{}:{}/{}",
            self.host_port, self.container_ip, self.container_port, self.protocol
        )
    }
}

impl PortSpec {
    /// Parse Docker's `-p` syntax: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`,
    /// each optionally followed by `/tcp` or `/udp`.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidPort {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (ports, protocol) = match spec.rsplit_once('/') {
            Some((p, "tcp")) => (p, Protocol::Tcp),
            Some((p, "udp")) => (p, Protocol::Udp),
            Some((_, other)) => return Err(bad(&format!("unknown protocol {other:?}"))),
            None => (spec, Protocol::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [c] => (None, None, *c),
            [h, c] => (None, Some(*h), *c),
            [ip, h, c] => (Some(*ip), Some(*h), *c),
            _ => return Err(bad("expected [ip:][host:]container[/tcp|udp]")),
        };
        let host_ip = match ip {
            None | Some("") => None,
            Some(ip) => {
                let ip: Ipv4Addr = ip
                    .parse()
                    .map_err(|_| bad(&format!("{ip:?} is not an IPv4 address")))?;
                (!ip.is_unspecified()).then_some(ip)
            }
        };
        let port = |text: &str, what: &str| -> Result<u16> {
            match text.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(bad(&format!("{what} port {text:?} is not in 1-65535"))),
            }
        };
        let host_port = match host {
            None | Some("") => 0,
            Some(h) => port(h, "host")?,
        };
        Ok(PortSpec {
            host_ip,
            host_port,
            container_port: port(container, "container")?,
            protocol,
        })
    }
}

/// Parse a `-p` value that may carry ranges (`8000-8002:80-82`, `127.0.0.1::80-81/udp`) into
/// one spec per port. Host and container ranges must be the same length.
pub fn parse_published(spec: &str) -> Result<Vec<PortSpec>> {
    let bad = |reason: &str| Error::InvalidPort {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (ports, proto) = match spec.rsplit_once('/') {
        Some((p, proto)) => (p, format!("/{proto}")),
        None => (spec, String::new()),
    };
    let (head, container) = match ports.rsplit_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, ports),
    };
    let range = |text: &str| -> Result<Option<(u16, u16)>> {
        match text.split_once('-') {
            None => Ok(None),
            Some((a, b)) => {
                let a: u16 = a.parse().map_err(|_| bad("bad range start"))?;
                let b: u16 = b.parse().map_err(|_| bad("bad range end"))?;
                if a == 0 || b < a {
                    return Err(bad("range must be low-high within 1-65535"));
                }
                Ok(Some((a, b)))
            }
        }
    };
    let Some((c_lo, c_hi)) = range(container)? else {
        if let Some(h) = head {
            let host = h.rsplit_once(':').map_or(h, |(_, p)| p);
            if range(host)?.is_some() {
                return Err(bad(
                    "a host port range needs a container port range of the same length",
                ));
            }
        }
        return Ok(vec![PortSpec::parse(spec)?]);
    };
    let (prefix, host) = match head {
        None => (String::new(), ""),
        Some(h) => match h.rsplit_once(':') {
            Some((ip, p)) => (format!("{ip}:"), p),
            None => (String::new(), h),
        },
    };
    let host_range = range(host)?;
    if let Some((h_lo, h_hi)) = host_range {
        if h_hi - h_lo != c_hi - c_lo {
            return Err(bad("host and container ranges differ in length"));
        }
    } else if !host.is_empty() {
        return Err(bad(
            "a container port range needs a host port range (or none)",
        ));
    }
    (c_lo..=c_hi)
        .enumerate()
        .map(|(i, c)| {
            let host = host_range
                .map(|(h, _)| (h + i as u16).to_string())
                .unwrap_or_default();
            let text = match head {
                None => format!("{c}{proto}"),
                Some(_) => format!("{prefix}{host}:{c}{proto}"),
            };
            PortSpec::parse(&text).map_err(|_| bad("bad port in range"))
        })
        .collect()
}

fn same_binding(a_ip: Option<Ipv4Addr>, b_ip: Option<Ipv4Addr>) -> bool {
    // A wildcard mapping clashes with every address; two specific ones only with themselves.
    a_ip.is_none() || b_ip.is_none() || a_ip == b_ip
}

/// Whether `spec`'s host side collides with a mapping already in force.
pub fn conflicting<'a>(
    host_ip: Option<Ipv4Addr>,
    host_port: u16,
    protocol: Protocol,
    existing: impl IntoIterator<Item = &'a PublishedPort>,
) -> Option<&'a PublishedPort> {
    existing.into_iter().find(|p| {
        p.host_port == host_port && p.protocol == protocol && same_binding(p.host_ip, host_ip)
    })
}

/// Whether a host process holds the port: bind it briefly. DNAT would silently shadow such a
/// process, so the mapping is refused instead.
pub fn host_port_free(host_ip: Option<Ipv4Addr>, port: u16, protocol: Protocol) -> Result<()> {
    let addr = SocketAddrV4::new(host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
    let r = match protocol {
        Protocol::Tcp => TcpListener::bind(addr).map(drop),
        Protocol::Udp => UdpSocket::bind(addr).map(drop),
    };
    r.map_err(|e| {
        if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
            Error::InvalidPort {
                spec: format!("{addr}/{protocol}"),
                reason: format!("{} is not an address of this host", addr.ip()),
            }
        } else {
            Error::PortTaken {
                port: format!("{addr}/{protocol}"),
                reason: format!("a host process holds it ({e})"),
            }
        }
    })
}

/// A port in `range` free both among `existing` mappings and on the host. The scan starts at a
/// varying point, as the kernel's own ephemeral choice does: a port just released is not handed out
/// again at once (its conntrack entries may linger), and daemons sharing a host rarely collide.
pub fn pick_ephemeral(
    host_ip: Option<Ipv4Addr>,
    protocol: Protocol,
    range: std::ops::RangeInclusive<u16>,
    existing: &[PublishedPort],
) -> Result<u16> {
    let (lo, hi) = (*range.start() as u32, *range.end() as u32);
    let len = hi - lo + 1;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let start = seed % len;
    for i in 0..len {
        let port = (lo + (start + i) % len) as u16;
        if conflicting(host_ip, port, protocol, existing).is_none()
            && host_port_free(host_ip, port, protocol).is_ok()
        {
            return Ok(port);
        }
    }
    Err(Error::PortTaken {
        port: format!("{}-{}/{protocol}", range.start(), range.end()),
        reason: "no free ephemeral port left".to_string(),
    })
}

/// Linux's ephemeral port range (`net.ipv4.ip_local_port_range`), Docker's choice for `-P`.
pub fn ephemeral_range() -> std::ops::RangeInclusive<u16> {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .filter_map(|s| s.parse::<u16>().ok());
    match (it.next(), it.next()) {
        (Some(a), Some(b)) if a <= b => a..=b,
        _ => 32768..=60999,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_syntax() {
        let p = PortSpec::parse("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            (p.host_port, p.container_port, p.protocol),
            (8080, 80, Protocol::Udp)
        );
        let p = PortSpec::parse("8080:80").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.protocol),
            (None, 8080, Protocol::Tcp)
        );
        let p = PortSpec::parse("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = PortSpec::parse("0.0.0.0::53/udp").unwrap();
        assert_eq!((p.host_ip, p.host_port, p.container_port), (None, 0, 53));
        for bad in [
            "",
            "x:80",
            "1:2:3:4",
            "80/sctp",
            "70000:80",
            "8080:0",
            "a.b.c.d:1:2",
        ] {
            assert!(PortSpec::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn expands_ranges() {
        let v = parse_published("127.0.0.1:8000-8002:80-82/udp").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!((v[2].host_port, v[2].container_port), (8002, 82));
        assert!(v
            .iter()
            .all(|p| p.protocol == Protocol::Udp && p.host_ip == Some(Ipv4Addr::LOCALHOST)));
        let v = parse_published("80-81").unwrap();
        assert_eq!((v[0].host_port, v[1].container_port), (0, 81));
        assert_eq!(parse_published("8080:80").unwrap().len(), 1);
        for bad in [
            "8000-8001:80-82",
            "8000-8001:80",
            "8080:80-81",
            "82-80",
            "0-2",
        ] {
            assert!(parse_published(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn conflicts_respect_addresses_and_protocols() {
        let existing = [PublishedPort {
            container_ip6: None,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 8080,
            container_ip: Ipv4Addr::new(10, 0, 0, 2),
            container_port: 80,
            protocol: Protocol::Tcp,
        }];
        assert!(conflicting(None, 8080, Protocol::Tcp, &existing).is_some());
        assert!(conflicting(Some(Ipv4Addr::LOCALHOST), 8080, Protocol::Tcp, &existing).is_some());
        assert!(conflicting(
            Some(Ipv4Addr::new(10, 9, 9, 9)),
            8080,
            Protocol::Tcp,
            &existing
        )
        .is_none());
        assert!(conflicting(None, 8080, Protocol::Udp, &existing).is_none());
        assert!(conflicting(None, 8081, Protocol::Tcp, &existing).is_none());
    }

    #[test]
    fn a_listening_host_port_is_reported_taken() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let err = host_port_free(Some(Ipv4Addr::LOCALHOST), port, Protocol::Tcp).unwrap_err();
        assert!(err.to_string().contains("already taken"), "{err}");
        drop(l);
        host_port_free(Some(Ipv4Addr::LOCALHOST), port, Protocol::Tcp).unwrap();
        let err =
            host_port_free(Some(Ipv4Addr::new(192, 0, 2, 77)), port, Protocol::Tcp).unwrap_err();
        assert!(
            err.to_string().contains("not an address of this host"),
            "{err}"
        );
    }
}
