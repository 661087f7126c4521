//! berth's Docker Engine API: the JSON types, the server (feature `server`: routes over a unix
//! socket, mapping Docker's requests onto `berth_engine`), and the client the `berth` CLI uses.
//! Only this crate speaks HTTP.

#![recursion_limit = "256"]

pub mod client;
pub mod image_types;
pub mod query;
pub mod types;

#[cfg(feature = "server")]
pub mod server;

pub use types::API_VERSION;

/// berth's extension to attach: `start=1` starts the container once the stream is hooked up,
/// and the 101 carries this header (a daemon without the extension does not: the client starts).
pub const STARTED_HEADER: &str = "x-berth-started";
