//! IPv6 address management for one network (`network create --ipv6`): a subnet, its gateway
//! (the first host unless given) and who holds which address. Like [`crate::ipam`], it is
//! serialisable, hands addresses out in order and never twice, and skips a just-released
//! address until the search wraps.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How far one allocation searches past the last address before giving up (a /64 has 2^64
/// addresses; the allocated set is what bounds a real search).
const SEARCH_LIMIT: u128 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam6 {
    pub subnet: Ipv6Net,
    pub gateway: Ipv6Addr,
    /// Address → owner (container id).
    pub allocated: BTreeMap<Ipv6Addr, String>,
    #[serde(default)]
    pub last: Option<Ipv6Addr>,
}

fn bad(subnet: &str, reason: &str) -> Error {
    Error::InvalidSubnet {
        subnet: subnet.to_string(),
        reason: reason.to_string(),
    }
}

/// A usable IPv6 network: host bits clear, room for a gateway and containers, global or
/// unique-local unicast (not loopback, link-local, multicast, unspecified or v4-mapped).
pub fn validate_subnet(subnet: &Ipv6Net) -> Result<()> {
    let text = subnet.to_string();
    if subnet.addr() != subnet.network() {
        return Err(bad(
            &text,
            &format!("host bits are set (did you mean {}?)", subnet.trunc()),
        ));
    }
    if subnet.prefix_len() > 124 {
        return Err(bad(
            &text,
            "prefix longer than /124 leaves no room for containers",
        ));
    }
    if subnet.prefix_len() < 16 {
        return Err(bad(&text, "prefix shorter than /16 is too large"));
    }
    let first = subnet.network().segments()[0];
    let reserved = subnet.network().is_unspecified()
        || subnet.network().is_loopback()
        || first & 0xffc0 == 0xfe80
        || first & 0xff00 == 0xff00
        || subnet.network().to_ipv4_mapped().is_some();
    if reserved {
        return Err(bad(
            &text,
            "not a unicast network (loopback, link-local fe80::/10, multicast ff00::/8 and v4-mapped are refused)",
        ));
    }
    Ok(())
}

/// Parse an IPv6 subnet in CIDR form with a clear error.
pub fn parse_subnet(text: &str) -> Result<Ipv6Net> {
    let net: Ipv6Net = text
        .trim()
        .parse()
        .map_err(|_| bad(text, "expected IPv6 CIDR like fd00:beef::/64"))?;
    validate_subnet(&net)?;
    Ok(net)
}

pub fn overlaps(a: &Ipv6Net, b: &Ipv6Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn check_host(subnet: &Ipv6Net, ip: Ipv6Addr) -> Result<()> {
    if !subnet.contains(&ip) || ip == subnet.network() {
        return Err(Error::AddressOutOfRange6 {
            ip,
            subnet: *subnet,
            reason: if subnet.contains(&ip) {
                "it is the subnet-router anycast address"
            } else {
                "outside the subnet"
            },
        });
    }
    Ok(())
}

impl Ipam6 {
    pub fn new(subnet: Ipv6Net, gateway: Option<Ipv6Addr>) -> Result<Ipam6> {
        validate_subnet(&subnet)?;
        let gateway = gateway.unwrap_or_else(|| Ipv6Addr::from(u128::from(subnet.network()) + 1));
        check_host(&subnet, gateway)?;
        Ok(Ipam6 {
            subnet,
            gateway,
            allocated: BTreeMap::new(),
            last: None,
        })
    }

    /// The gateway with the subnet's prefix, as the bridge carries it.
    pub fn gateway_net(&self) -> Ipv6Net {
        Ipv6Net::new(self.gateway, self.subnet.prefix_len()).unwrap_or(self.subnet)
    }

    fn is_free(&self, ip: Ipv6Addr) -> bool {
        ip != self.gateway && ip != self.subnet.network() && !self.allocated.contains_key(&ip)
    }

    /// Hand the next free address to `owner`.
    pub fn allocate(&mut self, owner: &str) -> Result<Ipv6Addr> {
        let start = u128::from(self.subnet.network());
        let size = 1u128
            .checked_shl(128 - u32::from(self.subnet.prefix_len()))
            .unwrap_or(u128::MAX);
        let after = self
            .last
            .map(u128::from)
            .filter(|l| self.subnet.contains(&Ipv6Addr::from(*l)))
            .map(|l| l - start + 1)
            .unwrap_or(1);
        for step in 0..size.min(SEARCH_LIMIT) {
            let ip = Ipv6Addr::from(start + (after + step) % size);
            if self.is_free(ip) {
                self.allocated.insert(ip, owner.to_string());
                self.last = Some(ip);
                return Ok(ip);
            }
        }
        Err(Error::InvalidSubnet {
            subnet: self.subnet.to_string(),
            reason: "no free IPv6 address left".to_string(),
        })
    }

    /// Give `owner` the specific address `ip` (`--ip6`).
    pub fn request(&mut self, ip: Ipv6Addr, owner: &str) -> Result<()> {
        check_host(&self.subnet, ip)?;
        let holder = if ip == self.gateway {
            Some("the network's gateway".to_string())
        } else {
            self.allocated.get(&ip).cloned()
        };
        if let Some(owner) = holder {
            return Err(Error::AddressInUse {
                ip: ip.into(),
                owner,
            });
        }
        self.allocated.insert(ip, owner.to_string());
        Ok(())
    }

    pub fn release(&mut self, ip: Ipv6Addr) {
        self.allocated.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_in_order_never_twice_and_survives_serde() {
        let mut p = Ipam6::new("fd00:beef::/64".parse().unwrap(), None).unwrap();
        assert_eq!(p.gateway, "fd00:beef::1".parse::<Ipv6Addr>().unwrap());
        let a = p.allocate("a").unwrap();
        assert_eq!(a, "fd00:beef::2".parse::<Ipv6Addr>().unwrap());
        let text = serde_json::to_string(&p).unwrap();
        let mut q: Ipam6 = serde_json::from_str(&text).unwrap();
        let b = q.allocate("b").unwrap();
        assert_eq!(b, "fd00:beef::3".parse::<Ipv6Addr>().unwrap());
        assert!(q.request(a, "c").is_err());
        assert!(q.request(q.gateway, "c").is_err());
        q.release(a);
        // Not reused at once.
        assert_eq!(
            q.allocate("d").unwrap(),
            "fd00:beef::4".parse::<Ipv6Addr>().unwrap()
        );
        q.request("fd00:beef::99".parse().unwrap(), "e").unwrap();
        assert!(q.request("fd00:cafe::5".parse().unwrap(), "e").is_err());
    }

    #[test]
    fn small_subnets_wrap_and_exhaust() {
        // A /124: 16 addresses minus the anycast address and the gateway.
        let mut p = Ipam6::new("fd00::/124".parse().unwrap(), None).unwrap();
        for i in 0..14 {
            assert!(p.allocate(&format!("c{i}")).is_ok(), "{i}");
        }
        assert!(p.allocate("full").is_err());
        p.release("fd00::5".parse().unwrap());
        assert_eq!(
            p.allocate("again").unwrap(),
            "fd00::5".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn refuses_bad_subnets() {
        for s in [
            "fe80::/64",
            "ff02::/64",
            "::1/128",
            "fd00::1/64",
            "fd00::/127",
            "::ffff:0:0/96",
        ] {
            assert!(
                s.parse::<Ipv6Net>()
                    .map_err(|_| ())
                    .and_then(|n| validate_subnet(&n).map_err(|_| ()))
                    .is_err(),
                "{s}"
            );
        }
        assert!(parse_subnet("10.0.0.0/24").is_err());
        assert!(parse_subnet("fd00:beef::/64").is_ok());
        assert!(overlaps(
            &"fd00::/48".parse().unwrap(),
            &"fd00:0:0:1::/64".parse().unwrap()
        ));
    }
}
