//! The MTUs of a bridge network's links and of its containers' default routes.
//!
//! Everything on a bridge stays on this host, so its links get loopback-like room: TCP between
//! two containers (and between a container and the host, e.g. published ports on 127.0.0.1)
//! then moves ~64 KiB segments instead of 1500-byte ones, which is most of the gap to loopback.
//! What leaves the host still sees Docker's 1500: the container's default route carries that
//! MTU, so TCP to the outside advertises a 1460-byte MSS and UDP fragments as on a 1500 link.
//! A network created with an explicit MTU (`com.docker.network.driver.mtu`) gets exactly that,
//! on links and routes alike.

/// MTU of bridges and veths when the network names none (veth and bridge allow up to 65535).
pub const LOCAL_LINK_MTU: u32 = 65520;
/// MTU of the default route when the network names none: Docker's default link MTU.
pub const OUTSIDE_MTU: u32 = 1500;

/// What one network's links and default routes get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mtus {
    pub link: u32,
    /// Set on the container's default route; None leaves the route at the link's MTU.
    pub default_route: Option<u32>,
}

impl Mtus {
    pub fn for_network(explicit: Option<u32>) -> Mtus {
        match explicit {
            Some(mtu) => Mtus {
                link: mtu,
                default_route: None,
            },
            None => Mtus {
                link: LOCAL_LINK_MTU,
                default_route: Some(OUTSIDE_MTU),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_mtu_is_used_everywhere_and_default_keeps_1500_outside() {
        assert_eq!(
            Mtus::for_network(Some(1400)),
            Mtus {
                link: 1400,
                default_route: None
            }
        );
        let d = Mtus::for_network(None);
        assert_eq!((d.link, d.default_route), (LOCAL_LINK_MTU, Some(1500)));
    }
}
