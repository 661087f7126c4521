//! `POST /auth` (check a login) and `GET /distribution/{name}/json` (ask a registry about a
//! reference without pulling it).

use std::sync::Arc;

use berth_distribution::Client;

use super::{registry_error, registry_error_with_auth, Credential, DistributionInspect, Reference};
use crate::error::{Error, Result};
use crate::Engine;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The registry refused the credentials (401 for the API).
    #[error("{0}")]
    Unauthorized(String),
    /// The registry could not be asked (unreachable, bad answer).
    #[error("{0}")]
    Failed(String),
}

/// The registry domain of docker's `serveraddress` ("https://index.docker.io/v1/" is docker.io).
pub use berth_distribution::auth::credentials::server_domain as registry_domain;

impl Engine {
    /// Check `cred` with the registry at `server_address`, as `docker login` asks the daemon to.
    pub async fn registry_login(
        &self,
        server_address: &str,
        cred: Credential,
    ) -> std::result::Result<(), LoginError> {
        let domain = registry_domain(server_address);
        let client = Client::new(self.distribution.client_config.clone())
            .map_err(|e| LoginError::Failed(e.to_string()))?;
        match Arc::new(client).check_login(&domain, &cred).await {
            Ok(()) => Ok(()),
            Err(e @ berth_distribution::Error::Unauthorized { .. }) => {
                Err(LoginError::Unauthorized(e.to_string()))
            }
            Err(e) => Err(LoginError::Failed(e.to_string())),
        }
    }

    /// The descriptor and platforms a registry serves for `name`.
    pub async fn distribution_inspect(
        &self,
        name: &str,
        auth: Option<Credential>,
    ) -> Result<DistributionInspect> {
        let reference = Reference::parse(name)
            .map_err(|e| registry_error(e, None))?
            .with_default_tag();
        let credentials_given = auth.is_some();
        let client = self.distribution.client_for(reference.domain(), auth)?;
        berth_distribution::inspect::inspect(&client, &reference)
            .await
            .map_err(|e| match e {
                berth_distribution::Error::Unauthorized { .. } if !credentials_given => {
                    Error::NotFound(format!("{e}"))
                }
                e => registry_error_with_auth(e, None, credentials_given),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::registry_domain;

    #[test]
    fn server_addresses_name_registries() {
        assert_eq!(registry_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_domain(""), "docker.io");
        assert_eq!(registry_domain("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(registry_domain("localhost:5000"), "localhost:5000");
        assert_eq!(registry_domain("quay.io"), "quay.io");
    }
}
