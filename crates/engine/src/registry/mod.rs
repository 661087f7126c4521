//! Registries: pull, push, login and distribution inspect for the daemon.
//!
//! One `Puller` serves every pull of the daemon (on the engine's content store and
//! snapshotter), so concurrent pulls share downloads and the download limit. A request's own
//! credentials (docker's `X-Registry-Auth`) get a client of their own, still on that puller.
//! The daemon keeps no credentials of its own except what an administrator puts in
//! `<data-root>/registry-auth.json` (docker's config.json format), used when a request has none.

mod config;
mod digests;
mod login;
mod pull;
mod push;

use std::sync::Arc;

use berth_distribution::{Client, ClientConfig, DockerConfig, EndpointConfig, Puller};
use berth_image::snapshot::Snapshotter;
use berth_image::ContentStore;

use crate::db::ImageRow;
use crate::error::{Error, Result};
use crate::Engine;

pub use berth_distribution::inspect::DistributionInspect;
pub use berth_distribution::progress::{no_progress, Progress, ProgressEvent};
pub use berth_distribution::{Credential, Reference};
pub use config::{
    RegistryConfig, DEFAULT_MAX_CONCURRENT_DOWNLOADS, DEFAULT_MAX_CONCURRENT_UPLOADS,
};
pub use login::LoginError;
pub use pull::{pull_reference, PullStatus, Pulled};
pub use push::{PushTarget, Pushed};

/// The engine's registry side: settings, the shared puller, repository digests.
pub(crate) struct Distribution {
    cfg: RegistryConfig,
    client_config: ClientConfig,
    puller: Puller,
    digests: digests::RepoDigests,
    /// Pulls between start and naming; counted under the engine's store lock so a garbage
    /// collection (which holds it) never runs beside one.
    pulls: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts one pull while alive.
pub(crate) struct PullGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for PullGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Distribution {
    pub(crate) fn open(
        data_root: &std::path::Path,
        cfg: RegistryConfig,
        content: ContentStore,
        snapshots: Snapshotter,
    ) -> Result<Distribution> {
        let client_config = ClientConfig {
            endpoints: EndpointConfig {
                insecure_registries: cfg.insecure_registries.clone(),
                registry_mirrors: cfg.registry_mirrors.clone(),
            },
            docker_config: Some(DockerConfig::at(data_root.join("registry-auth.json"))),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client = Client::new(client_config.clone())
            .map_err(|e| Error::internal("registry client", e))?;
        let puller = Puller::new(Arc::new(client), content, snapshots, cfg.downloads());
        Ok(Distribution {
            digests: digests::RepoDigests::open(&data_root.join("berth.db"))?,
            cfg,
            client_config,
            puller,
            pulls: Arc::default(),
        })
    }

    /// Call with the engine's store lock held.
    pub(crate) fn pulls_in_flight(&self) -> bool {
        self.pulls.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// Call with the engine's store lock held.
    fn start_pull(&self) -> PullGuard {
        self.pulls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        PullGuard(self.pulls.clone())
    }

    /// The shared client, or one carrying `auth` for `domain` (one request's credentials).
    fn client_for(&self, domain: &str, auth: Option<Credential>) -> Result<Arc<Client>> {
        match auth {
            None => Ok(self.puller.client().clone()),
            Some(cred) => {
                let client = Client::new(self.client_config.clone())
                    .map_err(|e| Error::internal("registry client", e))?;
                client.set_credential(domain, Some(cred));
                Ok(Arc::new(client))
            }
        }
    }

    fn puller_for(&self, domain: &str, auth: Option<Credential>) -> Result<Puller> {
        Ok(match auth {
            None => self.puller.clone(),
            Some(_) => self.puller.with_client(self.client_for(domain, auth)?),
        })
    }
}

/// A registry failure as the API should report it. `pulling` names the image of a pull, for
/// Docker's "pull access denied" wording.
pub(crate) fn registry_error(e: berth_distribution::Error, pulling: Option<&Reference>) -> Error {
    use berth_distribution::Error as D;
    match e {
        D::InvalidReference { .. } => Error::InvalidParameter(format!("invalid reference format: {e}")),
        D::NotFound { .. }
        | D::Image {
            source: berth_image::Error::NoMatchingPlatform { .. },
            ..
        } => Error::NotFound(e.to_string()),
        D::Unauthorized { .. } => match pulling {
            Some(r) => Error::NotFound(format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {e}",
                familiar_name(r)
            )),
            None => Error::InvalidParameter(e.to_string()),
        },
        D::Shared(inner) => match Arc::try_unwrap(inner) {
            Ok(inner) => registry_error(inner, pulling),
            Err(shared) => Error::Internal(shared.to_string()),
        },
        other => Error::Internal(other.to_string()),
    }
}

/// Like `registry_error`, but a refusal of credentials the request carried is a 401 (Docker's
/// "unauthorized"), not "pull access denied" (a 404, for anonymous requests).
pub(crate) fn registry_error_with_auth(
    e: berth_distribution::Error,
    pulling: Option<&Reference>,
    credentials_given: bool,
) -> Error {
    if credentials_given && refused(&e) {
        return Error::Unauthorized(e.to_string());
    }
    registry_error(e, pulling)
}

fn refused(e: &berth_distribution::Error) -> bool {
    match e {
        berth_distribution::Error::Unauthorized { .. } => true,
        berth_distribution::Error::Shared(inner) => refused(inner),
        _ => false,
    }
}

/// "busybox" for docker.io/library/busybox:1, "127.0.0.1:5000/test/busybox" otherwise.
pub(crate) fn familiar_name(r: &Reference) -> String {
    Reference::parse(&r.name())
        .map(|n| n.familiar())
        .unwrap_or_else(|_| r.name())
}

impl Engine {
    /// The registry settings the daemon runs with.
    pub fn registry_config(&self) -> &RegistryConfig {
        &self.distribution.cfg
    }

    /// Docker's `RegistryConfig` of `GET /info`: insecure registries (loopback always) and
    /// mirrors, which `docker info` lists.
    pub fn registry_info(&self) -> serde_json::Value {
        let cfg = &self.distribution.cfg;
        let mirrors: Vec<String> = cfg
            .registry_mirrors
            .iter()
            .map(|m| format!("{}/", m.trim_end_matches('/')))
            .collect();
        let mut cidrs = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
        let mut index = serde_json::Map::new();
        index.insert(
            "docker.io".into(),
            serde_json::json!({"Name": "docker.io", "Mirrors": mirrors, "Secure": true, "Official": true}),
        );
        for r in &cfg.insecure_registries {
            if r.contains('/') {
                cidrs.push(r.clone());
            } else {
                index.insert(
                    r.clone(),
                    serde_json::json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
                );
            }
        }
        serde_json::json!({
            "InsecureRegistryCIDRs": cidrs,
            "IndexConfigs": index,
            "Mirrors": mirrors,
        })
    }

    /// Docker's RepoDigests of an image ("repo@sha256:…"), as pulls and pushes recorded them.
    pub fn repo_digests(&self, image_id: &str) -> Vec<String> {
        self.distribution
            .digests
            .of_image(image_id)
            .unwrap_or_else(|e| {
                tracing::warn!("repo digests of {image_id}: {e}");
                Vec::new()
            })
    }

    /// The image named "repo@sha256:…" by a pull or push, if any.
    pub(crate) fn find_by_repo_digest(&self, name: &str) -> Result<Option<ImageRow>> {
        if !name.contains('@') {
            return Ok(None);
        }
        let Ok(r) = Reference::parse(name) else {
            return Ok(None);
        };
        let Some(digest) = r.digest() else {
            return Ok(None);
        };
        let key = format!("{}@{digest}", familiar_name(&r));
        match self.distribution.digests.image_of(&key)? {
            Some(id) => self.db().image(&id),
            None => Ok(None),
        }
    }
}
