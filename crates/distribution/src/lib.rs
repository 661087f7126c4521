//! berth's registry client: the half of distribution that pulls and pushes.
//!
//! - `reference`: image references parsed and normalised exactly like Docker's.
//! - `auth`: WWW-Authenticate challenges, bearer tokens (cached), docker's config.json logins.
//! - `client`: OCI distribution-spec v1.1 / Registry API v2 over reqwest (rustls, system
//!   roots); endpoints with mirrors and insecure (plain HTTP) registries.
//! - `pull`: the pull pipeline: layers downloaded several at once, each unpacked into its own
//!   snapshot while it downloads, verified, resumable, shared between concurrent pulls.
//! - `push`: blob existence checks, cross-repository mounts, monolithic and chunked uploads,
//!   manifests and tags.
//! - `inspect`: what `GET /distribution/{name}/json` answers.
//! - `progress`: Docker's JSON progress messages.

pub mod auth;
pub mod client;
pub mod error;
pub mod inspect;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;

pub use auth::{Credential, DockerConfig};
pub use client::{Access, Client, ClientConfig, EndpointConfig, Repository};
pub use error::{Error, Result};
pub use progress::{Progress, ProgressEvent, ProgressSink};
pub use pull::{PullOptions, PullResult, Puller};
pub use push::{push, PushOptions, PushResult};
pub use reference::Reference;
