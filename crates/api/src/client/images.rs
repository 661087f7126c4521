//! Client calls for images made from containers and tarballs: commit, import, history, and a
//! container's changes and export.

use hyper::Method;

use super::{percent_encode, proto, BodyReader, ChannelBody, Client, Result};
use crate::image_types::{ContainerChange, HistoryItem};
use crate::types::IdResponse;

/// `repo[:tag]` → ("repo", "tag"); a colon after the last '/' starts the tag.
fn split_reference(r: &str) -> (&str, Option<&str>) {
    match r.rfind(':') {
        Some(i) if !r[i..].contains('/') => (&r[..i], Some(&r[i + 1..])),
        _ => (r, None),
    }
}

fn name_query(reference: Option<&str>) -> String {
    match reference.map(split_reference) {
        Some((repo, Some(tag))) => {
            format!("&repo={}&tag={}", percent_encode(repo), percent_encode(tag))
        }
        Some((repo, None)) => format!("&repo={}", percent_encode(repo)),
        None => String::new(),
    }
}

fn changes_query(changes: &[String]) -> String {
    changes
        .iter()
        .map(|c| format!("&changes={}", percent_encode(c)))
        .collect()
}

/// What `commit` sends.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub container: String,
    pub reference: Option<String>,
    pub comment: String,
    pub author: String,
    pub pause: bool,
    pub changes: Vec<String>,
}

impl Client {
    /// POST /commit; returns the new image id.
    pub async fn commit(&self, r: &CommitRequest) -> Result<String> {
        let path = format!(
            "/commit?container={}&comment={}&author={}&pause={}{}{}",
            percent_encode(&r.container),
            percent_encode(&r.comment),
            percent_encode(&r.author),
            r.pause,
            name_query(r.reference.as_deref()),
            changes_query(&r.changes)
        );
        let resp: IdResponse = self.post(&path, &serde_json::json!({})).await?;
        Ok(resp.id)
    }

    /// POST /images/create?fromSrc=- with the tarball `source` streamed; returns the progress
    /// lines (the last status carries the image id).
    pub async fn import(
        &self,
        source: std::fs::File,
        reference: Option<&str>,
        message: &str,
        changes: &[String],
    ) -> Result<Vec<serde_json::Value>> {
        let path = format!(
            "/images/create?fromSrc=-&message={}{}{}",
            percent_encode(message),
            name_query(reference),
            changes_query(changes)
        );
        let resp = self
            .post_stream(&path, ChannelBody::from_file(source))
            .await?;
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map_err(|e| proto("read import response", e))?
            .to_bytes();
        Ok(bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect())
    }

    pub async fn history(&self, image: &str) -> Result<Vec<HistoryItem>> {
        self.get(&format!("/images/{}/history", percent_encode(image)))
            .await
    }

    pub async fn changes(&self, container: &str) -> Result<Vec<ContainerChange>> {
        let v: Option<Vec<ContainerChange>> = self
            .get(&format!(
                "/containers/{}/changes",
                percent_encode(container)
            ))
            .await?;
        Ok(v.unwrap_or_default())
    }

    /// GET /containers/{id}/export: the root filesystem tar, streamed.
    pub async fn export(&self, container: &str) -> Result<BodyReader> {
        let resp = self
            .call(
                Method::GET,
                &format!("/containers/{}/export", percent_encode(container)),
                None,
            )
            .await?;
        Ok(BodyReader::new(resp.into_body()))
    }
}
