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
