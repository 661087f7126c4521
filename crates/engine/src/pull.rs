//! `docker pull` / `POST /images/create?fromImage=`: the distribution crate fetches into the
//! engine's content store and snapshots; the engine records the name.

use std::sync::Arc;

use berth_distribution::{Client, ClientConfig, ProgressEvent, PullOptions, Puller, Reference};

use crate::db::ImageRow;
use crate::error::{Error, Result};
use crate::images::normalize;
use crate::{ids, Engine};

impl Engine {
    fn puller(&self) -> Result<Puller> {
        let mut guard = crate::lock(&self.puller);
        if let Some(p) = guard.as_ref() {
            return Ok(p.clone());
        }
        let client = Client::new(ClientConfig::default())
            .map_err(|e| Error::internal("registry client", e))?;
        let p = Puller::new(
            Arc::new(client),
            self.content.clone(),
            self.snapshots.clone(),
            3,
        );
        *guard = Some(p.clone());
        Ok(p)
    }

    /// Pull `image` (`name[:tag|@digest]`); progress goes to `progress` as Docker's JSON
    /// messages. Returns the name it is known by now.
    pub async fn pull_image(
        self: &Arc<Self>,
        image: &str,
        progress: tokio::sync::mpsc::UnboundedSender<ProgressEvent>,
    ) -> Result<String> {
        let reference = Reference::parse(image)
            .map_err(|e| Error::InvalidParameter(format!("invalid reference format: {e}")))?;
        let puller = self.puller()?;
        let result = puller
            .pull(&reference, &PullOptions::default(), Arc::new(progress))
            .await
            .map_err(|e| match e.to_string() {
                m if m.contains("not found") || m.contains("404") || m.contains("unknown") => {
                    Error::NotFound(format!(
                        "pull access denied for {image}, repository does not exist or may require 'docker login': {m}"
                    ))
                }
                m => Error::Internal(format!("pull {image}: {m}")),
            })?;
        let name = normalize(&reference.familiar());
        let id = result.image.config_digest.to_string();
        self.db().put_image(
            &ImageRow {
                id: id.clone(),
                manifest: result.digest.to_string(),
                added: ids::now_rfc3339(),
            },
            std::slice::from_ref(&name),
        )?;
        self.events.emit("image", "pull", &name, &[("name", &name)]);
        Ok(name)
    }
}
