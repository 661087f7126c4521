//! IPv4 address management for one network: a subnet, its gateway, the range containers draw
//! from, and who holds which address. Serialisable, so the engine persists it and a restarted
//! daemon carries on without handing out an address twice.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// Where dynamic allocations come from (the whole subnet unless `--ip-range` was given).
    pub range: Ipv4Net,
    /// Address → owner (container id).
    pub allocated: BTreeMap<Ipv4Addr, String>,
    /// The last address handed out dynamically; the next search starts after it so a released
    /// address is not reused at once (stale ARP entries in peers).
    #[serde(default)]
    pub last: Option<Ipv4Addr>,
}

/// Validate that `subnet` is a usable IPv4 network: host bits clear, room for a gateway and at
/// least one container.
pub fn validate_subnet(subnet: &Ipv4Net) -> Result<()> {
    let bad = |reason: &str| Error::InvalidSubnet {
        subnet: subnet.to_string(),
        reason: reason.to_string(),
    };
    if subnet.addr() != subnet.network() {
        return Err(bad(&format!(
            "host bits are set (did you mean {}?)",
            subnet.trunc()
        )));
    }
    if subnet.prefix_len() > 30 {
        return Err(bad("prefix longer than /30 leaves no room for containers"));
    }
    if subnet.prefix_len() < 8 {
        return Err(bad("prefix shorter than /8 is too large"));
    }
    let first = subnet.network().octets()[0];
    if first == 0 || first == 127 || first >= 224 {
        return Err(bad(
            "not a unicast network (0/8, 127/8, multicast and reserved are refused)",
        ));
    }
    Ok(())
}

/// Parse a subnet in CIDR form with a clear error.
pub fn parse_subnet(text: &str) -> Result<Ipv4Net> {
    let net: Ipv4Net = text.trim().parse().map_err(|_| Error::InvalidSubnet {
        subnet: text.to_string(),
        reason: "expected IPv4 CIDR like 10.90.0.0/24".to_string(),
    })?;
    validate_subnet(&net)?;
    Ok(net)
}

pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

impl Ipam {
    /// A fresh pool. `gateway` defaults to the subnet's first host; `range` to the subnet.
    pub fn new(subnet: Ipv4Net, gateway: Option<Ipv4Addr>, range: Option<Ipv4Net>) -> Result<Self> {
        validate_subnet(&subnet)?;
        let gateway = gateway.unwrap_or_else(|| first_host(&subnet));
        check_host(&subnet, gateway)?;
        let range = range.unwrap_or(subnet);
        if range.addr() != range.network() || !subnet.contains(&range) {
            return Err(Error::InvalidSubnet {
                subnet: range.to_string(),
                reason: format!("ip range must be a network inside {subnet}"),
            });
        }
        Ok(Ipam {
            subnet,
            gateway,
            range,
            allocated: BTreeMap::new(),
            last: None,
        })
    }

    /// The gateway with the subnet's prefix, as the bridge carries it.
    pub fn gateway_net(&self) -> Ipv4Net {
        // The prefix came from a valid Ipv4Net, so this cannot fail.
        Ipv4Net::new(self.gateway, self.subnet.prefix_len()).unwrap_or(self.subnet)
    }

    /// Hand the next free address in the range to `owner`.
    pub fn allocate(&mut self, owner: &str) -> Result<Ipv4Addr> {
        let start = u32::from(self.range.network());
        let end = u32::from(self.range.broadcast());
        let size = end - start + 1;
        let after = self
            .last
            .map(u32::from)
            .filter(|l| (start..=end).contains(l))
            .map(|l| l - start + 1)
            .unwrap_or(0);
        for step in 0..size {
            let ip = Ipv4Addr::from(start + (after + step) % size);
            if self.is_free(ip) {
                self.allocated.insert(ip, owner.to_string());
                self.last = Some(ip);
                return Ok(ip);
            }
        }
        Err(Error::PoolExhausted { range: self.range })
    }

    /// Give `owner` the specific address `ip` (`--ip`). It may lie outside the dynamic range
    /// but must be a usable host of the subnet.
    pub fn request(&mut self, ip: Ipv4Addr, owner: &str) -> Result<()> {
        check_host(&self.subnet, ip)?;
        if ip == self.gateway {
            return Err(Error::AddressInUse {
                ip: ip.into(),
                owner: "the network's gateway".to_string(),
            });
        }
        if let Some(holder) = self.allocated.get(&ip) {
            return Err(Error::AddressInUse {
                ip: ip.into(),
                owner: holder.clone(),
            });
        }
        self.allocated.insert(ip, owner.to_string());
        Ok(())
    }

    /// Return `ip` to the pool. Releasing a free address is a no-op.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.allocated.remove(&ip);
    }

    /// Release every address held by `owner`.
    pub fn release_owner(&mut self, owner: &str) {
        self.allocated.retain(|_, o| o != owner);
    }

    fn is_free(&self, ip: Ipv4Addr) -> bool {
        ip != self.gateway
            && ip != self.subnet.network()
            && ip != self.subnet.broadcast()
            && !self.allocated.contains_key(&ip)
    }
}

fn first_host(subnet: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

fn check_host(subnet: &Ipv4Net, ip: Ipv4Addr) -> Result<()> {
    let reason = if !subnet.contains(&ip) {
        "outside the subnet"
    } else if ip == subnet.network() {
        "it is the network address"
    } else if ip == subnet.broadcast() {
        "it is the broadcast address"
    } else {
        return Ok(());
    };
    Err(Error::AddressOutOfRange {
        ip,
        subnet: *subnet,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_distinct_addresses_and_skips_gateway() {
        let mut ipam = Ipam::new(net("10.1.0.0/29"), None, None).unwrap();
        let mut seen = Vec::new();
        for i in 0..5 {
            let ip = ipam.allocate(&format!("c{i}")).unwrap();
            assert_ne!(ip, ipam.gateway);
            assert!(!seen.contains(&ip), "{ip} handed out twice");
            seen.push(ip);
        }
        // /29 = 8 addresses - network - broadcast - gateway = 5.
        assert!(matches!(
            ipam.allocate("x"),
            Err(Error::PoolExhausted { .. })
        ));
        ipam.release(seen[2]);
        assert_eq!(ipam.allocate("y").unwrap(), seen[2]);
    }

    #[test]
    fn released_address_is_not_reused_immediately() {
        let mut ipam = Ipam::new(net("10.1.0.0/24"), None, None).unwrap();
        let a = ipam.allocate("a").unwrap();
        ipam.release(a);
        let b = ipam.allocate("b").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn explicit_request_and_conflicts() {
        let mut ipam = Ipam::new(net("10.1.0.0/24"), None, None).unwrap();
        ipam.request("10.1.0.50".parse().unwrap(), "a").unwrap();
        let err = ipam.request("10.1.0.50".parse().unwrap(), "b").unwrap_err();
        assert!(
            err.to_string().contains("already allocated (to a)"),
            "{err}"
        );
        assert!(ipam.request("10.1.0.1".parse().unwrap(), "b").is_err());
        assert!(ipam.request("10.2.0.5".parse().unwrap(), "b").is_err());
        assert!(ipam.request("10.1.0.255".parse().unwrap(), "b").is_err());
        for _ in 0..252 {
            let ip = ipam.allocate("c").unwrap();
            assert_ne!(ip, "10.1.0.50".parse::<Ipv4Addr>().unwrap());
        }
    }

    #[test]
    fn survives_serialise_and_reload() {
        let mut ipam = Ipam::new(net("10.1.0.0/28"), None, Some(net("10.1.0.8/29"))).unwrap();
        let a = ipam.allocate("a").unwrap();
        let b = ipam.allocate("b").unwrap();
        assert!(net("10.1.0.8/29").contains(&a));
        let json = serde_json::to_string(&ipam).unwrap();
        let mut again: Ipam = serde_json::from_str(&json).unwrap();
        assert_eq!(again, ipam);
        // 10.1.0.8-14 (15 is the subnet's broadcast): 7 usable, 2 held.
        for _ in 0..5 {
            let ip = again.allocate("c").unwrap();
            assert!(ip != a && ip != b);
        }
        assert!(matches!(
            again.allocate("d"),
            Err(Error::PoolExhausted { .. })
        ));
    }

    #[test]
    fn rejects_bad_subnets() {
        for bad in [
            "10.1.0.1/24",
            "10.1.0.0/31",
            "127.0.0.0/8",
            "300.1.0.0/24",
            "x",
            "10.0.0.0/4",
        ] {
            assert!(parse_subnet(bad).is_err(), "{bad} accepted");
        }
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.1.0.0/24")));
        assert!(!overlaps(&net("10.2.0.0/16"), &net("10.1.0.0/24")));
        assert!(Ipam::new(net("10.1.0.0/24"), Some("10.2.0.1".parse().unwrap()), None).is_err());
    }
}
