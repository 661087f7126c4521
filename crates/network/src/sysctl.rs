//! The few kernel knobs bridge networking needs.

use std::fs;

use crate::error::{Context, Result};

fn write_knob(path: &str, value: &str) -> Result<()> {
    if fs::read_to_string(path)
        .map(|v| v.trim() == value)
        .unwrap_or(false)
    {
        return Ok(());
    }
    fs::write(path, value).ctx(|| format!("write {value} to {path}"))
}

/// Routing between the bridge and the outside (`net.ipv4.ip_forward=1`).
pub fn enable_ip_forward() -> Result<()> {
    write_knob("/proc/sys/net/ipv4/ip_forward", "1")
}

/// Let DNATed 127.0.0.1 traffic leave through `bridge` (published ports on localhost).
pub fn enable_route_localnet(bridge: &str) -> Result<()> {
    write_knob(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )
}

/// Routing IPv6 between bridges and the outside (`net.ipv6.conf.all.forwarding=1`, as Docker
/// does for IPv6 networks).
pub fn enable_ipv6_forward() -> Result<()> {
    write_knob("/proc/sys/net/ipv6/conf/all/forwarding", "1")
}

/// IPv6 on `ifname` (`disable_ipv6=0`), in the caller's namespace.
pub fn enable_ipv6_on(ifname: &str) -> Result<()> {
    write_knob(
        &format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
        "0",
    )
}

/// A container's interface: IPv6 on, no duplicate address detection (Docker turns it off so
/// an address is usable at once instead of after ~1-2 s), no router advertisements.
pub fn container_ipv6(ifname: &str) -> Result<()> {
    enable_ipv6_on(ifname)?;
    write_knob(&format!("/proc/sys/net/ipv6/conf/{ifname}/accept_dad"), "0")?;
    write_knob(&format!("/proc/sys/net/ipv6/conf/{ifname}/accept_ra"), "0")
}
