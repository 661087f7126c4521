//! Links, addresses and routes through rtnetlink.
//!
//! rtnetlink is async; each call here runs on its own scoped thread with a current-thread tokio
//! runtime, optionally inside a container's namespace. That keeps this crate's API synchronous and
//! callable from any context, including from inside the engine's own tokio runtime.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use futures_util::TryStreamExt;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage, RouteMetric};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::error::{Context, Error, Result};
use crate::netns::{self, NetnsRef};

const ENODEV: i32 = libc::ENODEV;
const EEXIST: i32 = libc::EEXIST;

/// Run an rtnetlink conversation on a fresh connection in the current thread's namespace.
fn converse<T, F, Fut>(f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .ctx(|| "start netlink runtime".to_string())?;
    rt.block_on(async {
        let (conn, handle, _) =
            rtnetlink::new_connection().ctx(|| "open rtnetlink socket".to_string())?;
        let task = tokio::spawn(conn);
        let out = f(handle).await;
        task.abort();
        out
    })
}

/// Run an rtnetlink conversation in the host's (the caller's) namespace, on a scoped thread so a
/// caller already inside a tokio runtime is not disturbed.
pub fn in_host<T, F, Fut>(f: F) -> Result<T>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
{
    std::thread::scope(|s| {
        s.spawn(|| converse(f))
            .join()
            .map_err(|_| Error::io("netlink", std::io::Error::other("netlink thread panicked")))?
    })
}

/// Run an rtnetlink conversation inside `ns`.
pub fn in_netns<T, F, Fut>(ns: &NetnsRef, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
{
    netns::run_in(ns, || converse(f))
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.code.map(|c| -c.get()) == Some(errno))
}

/// The link called `name`, if there is one.
pub async fn link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkMessage>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(e) if is_errno(&e, ENODEV) => Ok(None),
        Err(e) => Err(Error::netlink(format!("look up link {name}"), e)),
    }
}

async fn index_of(handle: &Handle, name: &str) -> Result<u32> {
    link_by_name(handle, name)
        .await?
        .map(|l| l.header.index)
        .ok_or_else(|| {
            Error::io(
                format!("link {name}"),
                std::io::Error::from_raw_os_error(ENODEV),
            )
        })
}

/// Add `address` to link `index`; IPv6 addresses without duplicate address detection (usable
/// at once). An address already there is fine.
async fn add_address(handle: &Handle, index: u32, address: IpNet, what: &str) -> Result<()> {
    let mut req = handle
        .address()
        .add(index, address.addr(), address.prefix_len());
    if address.addr().is_ipv6() {
        req.message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    match req.execute().await {
        Err(e) if !is_errno(&e, EEXIST) => {
            Err(Error::netlink(format!("add {address} to {what}"), e))
        }
        _ => Ok(()),
    }
}

/// Every IPv6 address on the host with its interface name (for overlap checks).
pub fn host_addresses6() -> Result<Vec<(String, Ipv6Net)>> {
    Ok(host_addresses_all()?
        .into_iter()
        .filter_map(|(n, a)| match a {
            IpNet::V6(v6) => Some((n, v6)),
            IpNet::V4(_) => None,
        })
        .collect())
}

/// IPv4 addresses on link `index`.
pub async fn addresses_of(handle: &Handle, index: u32) -> Result<Vec<Ipv4Net>> {
    let mut out = Vec::new();
    let mut stream = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(msg) = stream
        .try_next()
        .await
        .ctx(|| format!("list addresses of link {index}"))?
    {
        for attr in &msg.attributes {
            if let AddressAttribute::Address(IpAddr::V4(ip)) = attr {
                if let Ok(net) = Ipv4Net::new(*ip, msg.header.prefix_len) {
                    out.push(net);
                }
            }
        }
    }
    Ok(out)
}

/// Every IPv4 address on the host with its interface name (for overlap checks).
pub fn host_addresses() -> Result<Vec<(String, Ipv4Net)>> {
    Ok(host_addresses_all()?
        .into_iter()
        .filter_map(|(n, a)| match a {
            IpNet::V4(v4) => Some((n, v4)),
            IpNet::V6(_) => None,
        })
        .collect())
}

fn host_addresses_all() -> Result<Vec<(String, IpNet)>> {
    in_host(|handle| async move {
        let mut names = std::collections::HashMap::new();
        let mut links = handle.link().get().execute();
        while let Some(l) = links.try_next().await.ctx(|| "list links".to_string())? {
            if let Some(name) = link_name(&l) {
                names.insert(l.header.index, name);
            }
        }
        let mut out = Vec::new();
        let mut stream = handle.address().get().execute();
        while let Some(msg) = stream
            .try_next()
            .await
            .ctx(|| "list addresses".to_string())?
        {
            for attr in &msg.attributes {
                if let AddressAttribute::Address(ip) = attr {
                    if let Ok(net) = IpNet::new(*ip, msg.header.prefix_len) {
                        let name = names.get(&msg.header.index).cloned().unwrap_or_default();
                        out.push((name, net));
                    }
                }
            }
        }
        Ok(out)
    })
}

fn is_bridge(link: &LinkMessage) -> bool {
    link.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))),
        _ => false,
    })
}

pub fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

/// Create the bridge `name` if missing, make sure it carries `address` (gateway/prefix) and is up.
/// Returns true when the bridge was created by this call.
pub fn ensure_bridge(
    name: &str,
    address: Ipv4Net,
    address6: Option<Ipv6Net>,
    mtu: Option<u32>,
) -> Result<bool> {
    let mut created = false;
    let result = ensure_bridge_steps(name, address, address6, mtu, &mut created);
    if result.is_err() && created {
        // Leave nothing half-configured behind.
        let _ = delete_link(name);
    }
    result.map(|()| created)
}

fn ensure_bridge_steps(
    name: &str,
    address: Ipv4Net,
    address6: Option<Ipv6Net>,
    mtu: Option<u32>,
    created: &mut bool,
) -> Result<()> {
    in_host(|handle| async move {
        let existing = link_by_name(&handle, name).await?;
        if let Some(link) = &existing {
            if !is_bridge(link) {
                return Err(Error::InvalidName {
                    name: name.to_string(),
                    reason: "a host link of that name exists and is not a bridge",
                });
            }
        }
        if existing.is_none() {
            let mut msg = LinkBridge::new(name);
            if let Some(mtu) = mtu {
                msg = msg.mtu(mtu);
            }
            handle
                .link()
                .add(msg.build())
                .execute()
                .await
                .ctx(|| format!("create bridge {name}"))?;
            *created = true;
        }
        let index = index_of(&handle, name).await?;
        if !addresses_of(&handle, index).await?.contains(&address) {
            add_address(&handle, index, IpNet::V4(address), name).await?;
        }
        if let Some(a6) = address6 {
            crate::sysctl::enable_ipv6_on(name)?;
            add_address(&handle, index, IpNet::V6(a6), name).await?;
        }
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .ctx(|| format!("bring up bridge {name}"))?;
        Ok(())
    })
}

/// Delete link `name` in the host namespace. Returns false if it did not exist.
pub fn delete_link(name: &str) -> Result<bool> {
    in_host(|handle| async move { delete_link_with(&handle, name).await })
}

async fn delete_link_with(handle: &Handle, name: &str) -> Result<bool> {
    let Some(link) = link_by_name(handle, name).await? else {
        return Ok(false);
    };
    match handle.link().del(link.header.index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if is_errno(&e, ENODEV) => Ok(false),
        Err(e) => Err(Error::netlink(format!("delete link {name}"), e)),
    }
}

/// Whether a link called `name` exists in the host namespace.
pub fn link_exists(name: &str) -> Result<bool> {
    in_host(|handle| async move { Ok(link_by_name(&handle, name).await?.is_some()) })
}

/// What a container's end of a veth pair should look like.
#[derive(Debug, Clone)]
pub struct VethPlan<'a> {
    pub bridge: &'a str,
    pub host_name: &'a str,
    pub netns: &'a NetnsRef,
    pub ifname: &'a str,
    pub address: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 address and default route (`--ipv6` networks).
    pub address6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    pub mac: [u8; 6],
    pub mtu: Option<u32>,
    /// MTU of the default route (what leaves the host), when it differs from the link's.
    pub route_mtu: Option<u32>,
}

/// Create a veth pair whose peer is born inside the container's namespace with its final name
/// and MAC (no move afterwards: moving a link between namespaces waits for an RCU grace
/// period, ~20 ms), plug the host end into the bridge, then address the peer, bring it and
/// loopback up and add the default route. On any failure the pair is deleted again, so
/// nothing is left behind.
pub fn create_veth(plan: &VethPlan<'_>) -> Result<()> {
    let result = create_veth_steps(plan);
    if result.is_err() {
        // Deleting the host end removes both ends.
        let _ = delete_link(plan.host_name);
    }
    result
}

fn create_veth_steps(plan: &VethPlan<'_>) -> Result<()> {
    let ns_file = plan.netns.open()?;
    in_host(|handle| async move {
        let bridge = index_of(&handle, plan.bridge).await?;
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(plan.ifname)
            .address(plan.mac.to_vec())
            .setns_by_fd(ns_file.as_raw_fd());
        let mut msg = LinkVeth::new(plan.host_name, plan.ifname);
        if let Some(mtu) = plan.mtu {
            peer = peer.mtu(mtu);
            msg = msg.mtu(mtu);
        }
        let msg = msg.set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())));
        handle.link().add(msg.build()).execute().await.ctx(|| {
            format!(
                "create veth {} with peer {} in {}",
                plan.host_name,
                plan.ifname,
                plan.netns.path().display()
            )
        })?;
        let host = index_of(&handle, plan.host_name).await?;
        handle
            .link()
            .set(
                LinkUnspec::new_with_index(host)
                    .controller(bridge)
                    .up()
                    .build(),
            )
            .execute()
            .await
            .ctx(|| format!("attach {} to {}", plan.host_name, plan.bridge))?;
        // Hairpin: with br_netfilter loaded, a container reaching its own published port has
        // its DNATed frame bridged back out of the port it came in on.
        handle
            .link()
            .set_port(LinkBridgePort::new(host).hairpin(true).build())
            .execute()
            .await
            .ctx(|| format!("set hairpin mode on {}", plan.host_name))?;
        Ok(())
    })?;
    if plan.address6.is_some() {
        let ifname = plan.ifname;
        netns::run_in(plan.netns, || crate::sysctl::container_ipv6(ifname))?;
    }
    in_netns(plan.netns, |handle| async move {
        let lo = index_of(&handle, "lo").await?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .ctx(|| "bring up lo".to_string())?;
        let peer = index_of(&handle, plan.ifname).await?;
        handle
            .address()
            .add(
                peer,
                IpAddr::V4(plan.address.addr()),
                plan.address.prefix_len(),
            )
            .execute()
            .await
            .ctx(|| format!("add {} to {}", plan.address, plan.ifname))?;
        if let Some(a6) = plan.address6 {
            add_address(&handle, peer, IpNet::V6(a6), plan.ifname).await?;
        }
        handle
            .link()
            .set(LinkUnspec::new_with_index(peer).up().build())
            .execute()
            .await
            .ctx(|| format!("bring up {}", plan.ifname))?;
        if let Some(gw) = plan.gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(peer)
                .build();
            add_route(&handle, route, plan.route_mtu)
                .await
                .ctx(|| format!("add default route via {gw}"))?;
        }
        if let Some(gw6) = plan.gateway6 {
            let route = RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(gw6)
                .output_interface(peer)
                .build();
            add_route(&handle, route, plan.route_mtu)
                .await
                .ctx(|| format!("add IPv6 default route via {gw6}"))?;
        }
        Ok(())
    })
}

/// Add `route`, with an MTU metric when given.
async fn add_route(
    handle: &Handle,
    mut route: RouteMessage,
    mtu: Option<u32>,
) -> std::result::Result<(), rtnetlink::Error> {
    if let Some(mtu) = mtu {
        route
            .attributes
            .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
    }
    handle.route().add(route).execute().await
}
