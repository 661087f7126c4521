//! Per-interface counters for `stats`.
//!
//! Read from the host end of a container's veth in /sys/class/net, with receive and transmit
//! swapped: what the host end receives, the container sent. No namespace switch needed.

use std::fs;

use serde::{Deserialize, Serialize};

use crate::error::{Context, Result};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

fn counter(link: &str, name: &str) -> Result<u64> {
    let path = format!("/sys/class/net/{link}/statistics/{name}");
    let text = fs::read_to_string(&path).ctx(|| format!("read {path}"))?;
    text.trim().parse().map_err(|_| {
        crate::error::Error::io(
            format!("parse {path}"),
            std::io::Error::other(format!("not a number: {text:?}")),
        )
    })
}

/// Counters of host link `link` as the link itself sees them.
pub fn link_stats(link: &str) -> Result<InterfaceStats> {
    Ok(InterfaceStats {
        rx_bytes: counter(link, "rx_bytes")?,
        rx_packets: counter(link, "rx_packets")?,
        rx_errors: counter(link, "rx_errors")?,
        rx_dropped: counter(link, "rx_dropped")?,
        tx_bytes: counter(link, "tx_bytes")?,
        tx_packets: counter(link, "tx_packets")?,
        tx_errors: counter(link, "tx_errors")?,
        tx_dropped: counter(link, "tx_dropped")?,
    })
}

/// Counters of the container's end, derived from the host end `host_veth`.
pub fn container_stats(host_veth: &str) -> Result<InterfaceStats> {
    let h = link_stats(host_veth)?;
    Ok(InterfaceStats {
        rx_bytes: h.tx_bytes,
        rx_packets: h.tx_packets,
        rx_errors: h.tx_errors,
        rx_dropped: h.tx_dropped,
        tx_bytes: h.rx_bytes,
        tx_packets: h.rx_packets,
        tx_errors: h.rx_errors,
        tx_dropped: h.rx_dropped,
    })
}
