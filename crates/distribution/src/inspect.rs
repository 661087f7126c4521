//! What docker's `GET /distribution/{name}/json` answers: the descriptor the registry serves
//! for a reference, and the platforms it offers; and a repository's tags.

use std::sync::Arc;

use berth_image::media::Kind;
use oci_spec::image::{ImageIndex, ImageManifest};
use serde::Serialize;

use crate::client::{Access, Client};
use crate::error::{Error, Result};
use crate::reference::Reference;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectDescriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectPlatform {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Docker's DistributionInspect JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DistributionInspect {
    #[serde(rename = "Descriptor")]
    pub descriptor: InspectDescriptor,
    #[serde(rename = "Platforms")]
    pub platforms: Vec<InspectPlatform>,
}

/// Ask the registry about `reference` without pulling it.
pub async fn inspect(client: &Arc<Client>, reference: &Reference) -> Result<DistributionInspect> {
    let repo = client.repository(reference, Access::Pull).await?;
    let top = repo.get_manifest(&reference.object()).await?;
    let bad = |e: serde_json::Error| Error::Protocol {
        registry: repo.registry().to_string(),
        object: format!("{}@{}", repo.path(), top.digest),
        reason: format!("unparsable document: {e}"),
    };
    let platforms = match top.kind {
        Kind::Index => {
            let index: ImageIndex = serde_json::from_slice(&top.bytes).map_err(bad)?;
            index
                .manifests()
                .iter()
                .filter_map(|d| d.platform().as_ref())
                .map(|p| InspectPlatform {
                    architecture: p.architecture().to_string(),
                    os: p.os().to_string(),
                    variant: p.variant().clone(),
                })
                .collect()
        }
        _ => {
            // A single manifest: its config tells the platform.
            let manifest: ImageManifest = serde_json::from_slice(&top.bytes).map_err(bad)?;
            let config = berth_image::Digest::from_oci(manifest.config().digest())
                .map_err(|e| Error::image("config digest", e))?;
            let bytes = repo
                .get_blob_bytes(&config, berth_image::content::MAX_JSON_BLOB)
                .await?;
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(bad)?;
            vec![InspectPlatform {
                architecture: v["architecture"].as_str().unwrap_or("").to_string(),
                os: v["os"].as_str().unwrap_or("").to_string(),
                variant: v["variant"].as_str().map(str::to_owned),
            }]
        }
    };
    Ok(DistributionInspect {
        descriptor: InspectDescriptor {
            media_type: top.media_type.clone(),
            digest: top.digest.to_string(),
            size: top.bytes.len() as u64,
        },
        platforms,
    })
}

/// Every tag of `reference`'s repository (what `docker pull --all-tags` pulls).
pub async fn list_tags(client: &Arc<Client>, reference: &Reference) -> Result<Vec<String>> {
    client
        .repository(reference, Access::Pull)
        .await?
        .list_tags()
        .await
}
