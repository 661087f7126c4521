//! Registry authentication: challenges, credentials as docker stores them, bearer tokens.

pub mod challenge;
pub mod credentials;
pub mod token;

pub use challenge::Challenge;
pub use credentials::{config_key, Credential, DockerConfig};
pub use token::{Token, TokenCache};
