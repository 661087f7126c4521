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
