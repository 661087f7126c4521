//! The network layer's error type. Each variant names what was wrong (a subnet, a port, a
//! network) so the message can go straight to a user.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid subnet {subnet}: {reason}")]
    InvalidSubnet { subnet: String, reason: String },

    #[error("subnet {subnet} overlaps {other} ({owner})")]
    SubnetOverlap {
        subnet: Ipv4Net,
        other: Ipv4Net,
        owner: String,
    },

    #[error("address {ip} is not usable in {subnet}: {reason}")]
    AddressOutOfRange {
        ip: Ipv4Addr,
        subnet: Ipv4Net,
        reason: &'static str,
    },

    #[error("subnet {subnet} overlaps {other} ({owner})")]
    SubnetOverlap6 {
        subnet: Ipv6Net,
        other: Ipv6Net,
        owner: String,
    },

    #[error("address {ip} is not usable in {subnet}: {reason}")]
    AddressOutOfRange6 {
        ip: Ipv6Addr,
        subnet: Ipv6Net,
        reason: &'static str,
    },

    #[error("address {ip} is already allocated (to {owner})")]
    AddressInUse { ip: IpAddr, owner: String },

    #[error("no free address left in {range}")]
    PoolExhausted { range: Ipv4Net },

    #[error("network {0:?} not found")]
    UnknownNetwork(String),

    #[error("network {0:?} already exists")]
    NetworkExists(String),

    #[error("network {network:?} is in use by {containers:?}")]
    NetworkInUse {
        network: String,
        containers: Vec<String>,
    },

    #[error("container {container:?} is not connected to network {network:?}")]
    NotConnected { container: String, network: String },

    #[error("container {container:?} is already connected to network {network:?}")]
    AlreadyConnected { container: String, network: String },

    #[error("invalid port mapping {spec:?}: {reason}")]
    InvalidPort { spec: String, reason: String },

    #[error("port {port} is already taken: {reason}")]
    PortTaken { port: String, reason: String },

    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error("{context}: {source}")]
    Netlink {
        context: String,
        #[source]
        source: rtnetlink::Error,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("nft: {context}: {stderr}")]
    Nft { context: String, stderr: String },

    #[error("dns: {0}")]
    Dns(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn netlink(context: impl Into<String>, source: rtnetlink::Error) -> Self {
        Error::Netlink {
            context: context.into(),
            source,
        }
    }

    /// The errno a netlink request failed with, if it was a kernel NACK.
    pub fn netlink_errno(&self) -> Option<i32> {
        match self {
            Error::Netlink {
                source: rtnetlink::Error::NetlinkError(msg),
                ..
            } => msg.code.map(|c| -c.get()),
            _ => None,
        }
    }
}

/// `.ctx(|| format!(..))` on io results.
pub trait Context<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, rtnetlink::Error> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::netlink(f(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::io(f(), std::io::Error::from(e)))
    }
}
