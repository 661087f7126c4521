//! berth's container networking mechanisms (Docker's network model):
//!
//! - [`state`]: the engine-facing, serialisable model — networks, endpoints, published ports —
//!   with create/connect/publish/disconnect/remove/reconcile;
//! - [`ipam`], [`ipam6`]: IPv4 and IPv6 address pools that never hand out an address twice;
//! - [`netlink`]: bridges, veth pairs, addresses and routes through rtnetlink;
//! - [`nft`]: masquerade, published-port DNAT (localhost, host addresses, hairpin) and
//!   isolation in one nftables table replaced atomically;
//! - [`mtu`]: large MTUs on the host-local links, Docker's 1500 on the way out;
//! - [`ports`]: `-p` parsing and port conflict checks;
//! - [`files`]: /etc/hosts, /etc/hostname, /etc/resolv.conf;
//! - [`dns`]: embedded DNS at 127.0.0.11 in each container on user-defined networks;
//! - [`stats`]: per-interface counters.

pub mod dns;
pub mod error;
pub mod files;
pub mod ipam;
pub mod ipam6;
pub mod mtu;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod state;
pub mod stats;
pub mod sysctl;

pub use error::{Error, Result};
pub use netns::NetnsRef;
pub use state::{ConnectOptions, Endpoint, Network, NetworkConfig, NetworkState, Settings};
