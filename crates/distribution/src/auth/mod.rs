//! Registry authentication: challenges, credentials as docker stores them, bearer tokens.

pub mod challenge;
pub mod credentials;
pub mod helper;
pub mod token;

pub use challenge::Challenge;
pub use credentials::{config_key, Credential, DockerConfig};
pub use helper::CredentialHelper;
pub use token::{Token, TokenCache};
