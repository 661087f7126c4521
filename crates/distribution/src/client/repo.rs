//! One repository on one registry endpoint: manifests, blobs and uploads, each request
//! authorised for the repository's scopes and refreshed once on a 401.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_image::content::MAX_JSON_BLOB;
use berth_image::digest::Algorithm;
use berth_image::media::{self, Kind};
use berth_image::Digest;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    LOCATION, RANGE, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode, Url};

use super::response::{is_html, preview, read_bounded, status_error};
use super::{join, Client, Endpoint};
use crate::auth::{challenge, Challenge};
use crate::error::{Error, Result};

/// What a pull accepts, best first: indexes (multi-platform) and single manifests, OCI and
/// Docker spellings.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest we read.
pub const MAX_MANIFEST: u64 = MAX_JSON_BLOB;

const DIGEST_HEADER: &str = "docker-content-digest";

/// Pages of a tag list followed at most (a registry answering "next" forever is cut off).
const MAX_TAG_PAGES: usize = 1000;

/// The `rel="next"` target of a Link header, resolved against `current`; only on the same
/// scheme, host and port (credentials go with the request).
fn next_page(headers: &HeaderMap, current: &Url) -> Option<Url> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let next = current.join(target).ok()?;
        let same = next.scheme() == current.scheme()
            && next.host_str() == current.host_str()
            && next.port_or_known_default() == current.port_or_known_default();
        same.then_some(next)
    })
}

/// A manifest or index as the registry served it, its digest checked.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
    pub kind: Kind,
}

/// What a HEAD on a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOutcome {
    Mounted,
    /// The registry could not mount and opened an upload instead.
    Upload(Url),
}

pub struct Repository {
    client: Arc<Client>,
    endpoint: Arc<Endpoint>,
    path: String,
    scopes: Mutex<Vec<String>>,
    auth: Mutex<Option<HeaderValue>>,
}

impl Repository {
    pub(super) fn new(
        client: Arc<Client>,
        endpoint: Arc<Endpoint>,
        path: String,
        scopes: Vec<String>,
    ) -> Repository {
        Repository {
            client,
            endpoint,
            path,
            scopes: Mutex::new(scopes),
            auth: Mutex::new(None),
        }
    }

    /// The registry domain, as the reference named it.
    pub fn registry(&self) -> &str {
        &self.endpoint.domain
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The endpoint base URL in use ("http://127.0.0.1:5000/").
    pub fn base(&self) -> &Url {
        &self.endpoint.candidate.base
    }

    pub fn is_mirror(&self) -> bool {
        self.endpoint.candidate.mirror
    }

    fn http(&self) -> &reqwest::Client {
        self.client.http(&self.endpoint.candidate)
    }

    /// Get (or refresh) the Authorization header, adding any scope `challenge` asks for.
    pub(crate) async fn authorize(&self, challenge: Option<&Challenge>, fresh: bool) -> Result<()> {
        let scopes = {
            let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(extra) = challenge.and_then(|c| c.param("scope")) {
                for s in extra.split(' ').filter(|s| !s.is_empty()) {
                    if !scopes.iter().any(|have| have == s) {
                        scopes.push(s.to_string());
                    }
                }
            }
            scopes.clone()
        };
        let header = self
            .client
            .authorization(&self.endpoint, challenge, &scopes, fresh)
            .await?;
        *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = header;
        Ok(())
    }

    fn auth_header(&self) -> Option<HeaderValue> {
        self.auth.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn url(&self, tail: &str) -> Result<Url> {
        join(
            &self.endpoint.candidate.base,
            &format!("v2/{}/{tail}", self.path),
            self.registry(),
        )
    }

    fn http_error(&self, object: &str, context: &str, e: reqwest::Error) -> Error {
        Error::Http {
            registry: self.registry().to_string(),
            object: object.to_string(),
            context: context.to_string(),
            source: e,
        }
    }

    /// Send a request whose body can be repeated; on a 401 with a challenge, re-authorise
    /// (fresh token, the challenge's scope added) and try once more.
    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
        object: &str,
    ) -> Result<Response> {
        let mut retried = false;
        loop {
            let mut req = self
                .http()
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(a) = self.auth_header() {
                req = req.header(AUTHORIZATION, a);
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| self.http_error(object, "request", e))?;
            if resp.status() != StatusCode::UNAUTHORIZED || retried {
                return Ok(resp);
            }
            let header = resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(", ");
            let all = challenge::parse(&header);
            let chosen = all
                .iter()
                .find(|c| c.scheme == "bearer")
                .or_else(|| all.iter().find(|c| c.scheme == "basic"))
                .cloned();
            if chosen.is_none() {
                return Ok(resp);
            }
            self.authorize(chosen.as_ref(), true).await?;
            if self.auth_header().is_none() {
                return Ok(resp); // no credential to offer: let the caller report the 401
            }
            retried = true;
        }
    }

    /// Send a streaming body once (uploads); authorisation was settled beforehand.
    async fn send_stream(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: reqwest::Body,
        object: &str,
    ) -> Result<Response> {
        let mut req = self.http().request(method, url).headers(headers).body(body);
        if let Some(a) = self.auth_header() {
            req = req.header(AUTHORIZATION, a);
        }
        req.send()
            .await
            .map_err(|e| self.http_error(object, "request", e))
    }

    fn manifest_object(&self, reference: &str) -> String {
        if reference.contains(':') {
            format!("manifest {}@{reference}", self.path)
        } else {
            format!("manifest {}:{reference}", self.path)
        }
    }

    /// GET a manifest or index by tag or digest; bounded, checked to be JSON of a known
    /// kind, and its digest verified (against the reference if a digest, else against the
    /// registry's Docker-Content-Digest header when given).
    pub async fn get_manifest(&self, reference: &str) -> Result<FetchedManifest> {
        let object = self.manifest_object(reference);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let url = self.url(&format!("manifests/{reference}"))?;
        let resp = self.send(Method::GET, url, headers, None, &object).await?;
        if !resp.status().is_success() {
            return Err(status_error(self.registry(), &object, resp).await);
        }
        let content_type = header_str(resp.headers(), CONTENT_TYPE.as_str());
        let header_digest = header_str(resp.headers(), DIGEST_HEADER);
        let bytes = read_bounded(self.registry(), &object, resp, MAX_MANIFEST).await?;
        let protocol = |reason: String| Error::Protocol {
            registry: self.registry().to_string(),
            object: object.clone(),
            reason,
        };
        if is_html(content_type.as_deref(), &bytes) {
            return Err(protocol(format!(
                "the server answered with an HTML page (Content-Type {:?}), not a manifest: {}",
                content_type.unwrap_or_default(),
                preview(&bytes)
            )));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| protocol(format!("answer is not JSON ({e}): {}", preview(&bytes))))?;
        if value["schemaVersion"] == 1 {
            return Err(protocol(
                "Docker schema 1 manifest (deprecated, not supported)".into(),
            ));
        }
        let kind = media::sniff_document(&bytes);
        if !matches!(kind, Kind::Manifest | Kind::Index) {
            return Err(protocol(format!(
                "answer is neither an image manifest nor an index (Content-Type {:?})",
                content_type.unwrap_or_default()
            )));
        }
        let media_type = value["mediaType"]
            .as_str()
            .map(str::to_owned)
            .or(content_type.filter(|c| media::classify(c) == kind))
            .unwrap_or_else(|| match kind {
                Kind::Index => media::OCI_INDEX.to_string(),
                _ => media::OCI_MANIFEST.to_string(),
            });
        let expected = match Digest::parse(reference) {
            Ok(d) => Some(d),
            Err(_) => header_digest.as_deref().and_then(|h| Digest::parse(h).ok()),
        };
        let digest = match expected {
            Some(want) => {
                let got = digest_of(want.algorithm(), &bytes);
                if got != want {
                    return Err(Error::DigestMismatch {
                        registry: self.registry().to_string(),
                        object,
                        expected: want.to_string(),
                        actual: got.to_string(),
                    });
                }
                got
            }
            None => Digest::sha256_of(&bytes),
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
            kind,
        })
    }

    /// HEAD a manifest: its digest, media type and size, or None if the registry has none.
    pub async fn head_manifest(&self, reference: &str) -> Result<Option<ManifestInfo>> {
        let object = self.manifest_object(reference);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let url = self.url(&format!("manifests/{reference}"))?;
        let resp = self.send(Method::HEAD, url, headers, None, &object).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(status_error(self.registry(), &object, resp).await);
        }
        let digest = header_str(resp.headers(), DIGEST_HEADER).and_then(|d| Digest::parse(&d).ok());
        let media_type = header_str(resp.headers(), CONTENT_TYPE.as_str()).unwrap_or_default();
        let size = resp.content_length().unwrap_or(0);
        match digest {
            Some(digest) => Ok(Some(ManifestInfo {
                digest,
                media_type,
                size,
            })),
            // No digest header: fetch it to learn the digest.
            None => {
                let m = self.get_manifest(reference).await?;
                Ok(Some(ManifestInfo {
                    digest: m.digest,
                    media_type: m.media_type,
                    size: m.bytes.len() as u64,
                }))
            }
        }
    }

    /// Every tag of the repository (`GET /v2/<name>/tags/list`), following the `Link: <…>;
    /// rel="next"` pages on the same registry, sorted.
    pub async fn list_tags(&self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let object = format!("tags of {}", self.path);
        let mut url = self.url("tags/list")?;
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let resp = self
                .send(Method::GET, url.clone(), HeaderMap::new(), None, &object)
                .await?;
            if !resp.status().is_success() {
                return Err(status_error(self.registry(), &object, resp).await);
            }
            let next = next_page(resp.headers(), &url);
            let bytes = read_bounded(self.registry(), &object, resp, MAX_JSON_BLOB).await?;
            let list: TagList = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
                registry: self.registry().to_string(),
                object: object.clone(),
                reason: format!("not a tag list ({e}): {}", preview(&bytes)),
            })?;
            tags.extend(list.tags.unwrap_or_default());
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    pub fn blob_object(&self, digest: &Digest) -> String {
        format!("blob {}@{digest}", self.path)
    }

    /// Start a blob download at `offset` (Range when > 0). The stream says where it starts:
    /// a registry that ignores Range starts again at 0.
    pub async fn get_blob(&self, digest: &Digest, offset: u64) -> Result<BlobStream> {
        let object = self.blob_object(digest);
        let mut headers = HeaderMap::new();
        if offset > 0 {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes={offset}-")) {
                headers.insert(RANGE, v);
            }
        }
        let url = self.url(&format!("blobs/{digest}"))?;
        let resp = self.send(Method::GET, url, headers, None, &object).await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(status_error(self.registry(), &object, resp).await);
        }
        let content_type = header_str(resp.headers(), CONTENT_TYPE.as_str());
        if content_type
            .as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("text/html"))
        {
            let body = read_bounded(self.registry(), &object, resp, 4096)
                .await
                .unwrap_or_default();
            return Err(Error::Protocol {
                registry: self.registry().to_string(),
                object,
                reason: format!(
                    "the server answered with an HTML page, not blob content: {}",
                    preview(&body)
                ),
            });
        }
        let start = if status == StatusCode::PARTIAL_CONTENT {
            let range = header_str(resp.headers(), CONTENT_RANGE.as_str()).unwrap_or_default();
            match parse_content_range_start(&range) {
                Some(s) if s == offset => s,
                _ => {
                    return Err(Error::Protocol {
                        registry: self.registry().to_string(),
                        object,
                        reason: format!(
                            "asked for bytes from {offset}, got Content-Range {range:?}"
                        ),
                    })
                }
            }
        } else {
            0
        };
        Ok(BlobStream {
            registry: self.registry().to_string(),
            object,
            start,
            content_length: resp.content_length(),
            read_timeout: self.client.config().read_timeout,
            stream: Box::pin(resp.bytes_stream()),
        })
    }

    /// A whole small blob (an image config), bounded and verified.
    pub async fn get_blob_bytes(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let object = self.blob_object(digest);
        let url = self.url(&format!("blobs/{digest}"))?;
        let resp = self
            .send(Method::GET, url, HeaderMap::new(), None, &object)
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(self.registry(), &object, resp).await);
        }
        let bytes = read_bounded(self.registry(), &object, resp, limit).await?;
        let got = digest_of(digest.algorithm(), &bytes);
        if &got != digest {
            return Err(Error::DigestMismatch {
                registry: self.registry().to_string(),
                object,
                expected: digest.to_string(),
                actual: got.to_string(),
            });
        }
        Ok(bytes)
    }

    /// HEAD a blob: its size if the repository has it.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<Option<u64>> {
        let object = self.blob_object(digest);
        let url = self.url(&format!("blobs/{digest}"))?;
        let resp = self
            .send(Method::HEAD, url, HeaderMap::new(), None, &object)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(resp.content_length().unwrap_or(0))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(self.registry(), &object, resp).await),
        }
    }

    /// Ask the registry to mount `digest` from repository `from` (same registry).
    pub async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<MountOutcome> {
        let object = format!("{} (mount from {from})", self.blob_object(digest));
        let mut url = self.url("blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let resp = self
            .send(
                Method::POST,
                url,
                content_length_zero(),
                Some(Bytes::new()),
                &object,
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Upload(self.location(&resp, &object)?)),
            _ => Err(status_error(self.registry(), &object, resp).await),
        }
    }

    /// Open an upload session; returns its location.
    pub async fn start_upload(&self, digest: &Digest) -> Result<Url> {
        let object = format!("upload of {}", self.blob_object(digest));
        let url = self.url("blobs/uploads/")?;
        let resp = self
            .send(
                Method::POST,
                url,
                content_length_zero(),
                Some(Bytes::new()),
                &object,
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(self.registry(), &object, resp).await);
        }
        self.location(&resp, &object)
    }

    /// DELETE an upload session we will not use (best effort: registries expire them anyway).
    pub async fn cancel_upload(&self, location: &Url) {
        let _ = self
            .send(
                Method::DELETE,
                location.clone(),
                HeaderMap::new(),
                None,
                "cancel upload",
            )
            .await;
    }

    /// PATCH one chunk at `start`; returns the location for the next request.
    pub async fn upload_chunk(
        &self,
        location: &Url,
        digest: &Digest,
        start: u64,
        data: Bytes,
    ) -> Result<Url> {
        let object = format!("upload of {} (chunk at {start})", self.blob_object(digest));
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let end = start + data.len() as u64;
        if let Ok(v) = HeaderValue::from_str(&format!("{start}-{}", end.saturating_sub(1))) {
            headers.insert(CONTENT_RANGE, v);
        }
        headers.insert(CONTENT_LENGTH, HeaderValue::from(data.len() as u64));
        let resp = self
            .send(
                Method::PATCH,
                location.clone(),
                headers,
                Some(data),
                &object,
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(self.registry(), &object, resp).await);
        }
        self.location(&resp, &object)
    }

    /// PUT `?digest=` to close an upload, with the remaining content (or none after chunks).
    pub async fn finish_upload(
        &self,
        location: &Url,
        digest: &Digest,
        body: Option<(reqwest::Body, u64)>,
    ) -> Result<()> {
        let object = format!("upload of {}", self.blob_object(digest));
        let mut url = location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let resp = match body {
            Some((body, len)) => {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
                self.send_stream(Method::PUT, url, headers, body, &object)
                    .await?
            }
            None => {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
                self.send(Method::PUT, url, headers, Some(Bytes::new()), &object)
                    .await?
            }
        };
        if resp.status() != StatusCode::CREATED {
            return Err(status_error(self.registry(), &object, resp).await);
        }
        self.check_digest_header(&resp, digest, &object)
    }

    /// PUT a manifest under a tag or its digest; returns the digest the registry computed.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Digest> {
        let object = self.manifest_object(reference);
        let digest = Digest::sha256_of(&bytes);
        let mut headers = HeaderMap::new();
        let ct = HeaderValue::from_str(media_type).map_err(|_| {
            Error::Other(format!(
                "{object}: media type {media_type:?} is not a valid header value"
            ))
        })?;
        headers.insert(CONTENT_TYPE, ct);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len() as u64));
        let url = self.url(&format!("manifests/{reference}"))?;
        let resp = self
            .send(Method::PUT, url, headers, Some(Bytes::from(bytes)), &object)
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error(self.registry(), &object, resp).await);
        }
        self.check_digest_header(&resp, &digest, &object)?;
        Ok(digest)
    }

    fn check_digest_header(&self, resp: &Response, want: &Digest, object: &str) -> Result<()> {
        match header_str(resp.headers(), DIGEST_HEADER).and_then(|d| Digest::parse(&d).ok()) {
            Some(got) if got.algorithm() == want.algorithm() && &got != want => {
                Err(Error::DigestMismatch {
                    registry: self.registry().to_string(),
                    object: object.to_string(),
                    expected: want.to_string(),
                    actual: got.to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    fn location(&self, resp: &Response, object: &str) -> Result<Url> {
        let loc = header_str(resp.headers(), LOCATION.as_str()).ok_or_else(|| Error::Protocol {
            registry: self.registry().to_string(),
            object: object.to_string(),
            reason: "upload answer without a Location header".into(),
        })?;
        join(&self.endpoint.candidate.base, &loc, self.registry())
    }
}

/// A blob body being downloaded.
pub struct BlobStream {
    registry: String,
    object: String,
    /// Offset of the first byte this stream yields.
    pub start: u64,
    pub content_length: Option<u64>,
    read_timeout: Duration,
    stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
}

impl BlobStream {
    /// The next chunk, None at the end. A stalled connection is an error (to be retried).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        match tokio::time::timeout(self.read_timeout, self.stream.next()).await {
            Err(_) => Err(Error::io(
                format!("registry {}: {}", self.registry, self.object),
                std::io::Error::new(std::io::ErrorKind::TimedOut, "no data for too long"),
            )),
            Ok(None) => Ok(None),
            Ok(Some(Ok(b))) => Ok(Some(b)),
            Ok(Some(Err(e))) => Err(Error::Http {
                registry: self.registry.clone(),
                object: self.object.clone(),
                context: "read body".into(),
                source: e,
            }),
        }
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn content_length_zero() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    h
}

fn parse_content_range_start(range: &str) -> Option<u64> {
    let rest = range.trim().strip_prefix("bytes")?.trim_start();
    let (start, _) = rest.split_once('-')?;
    start.trim().parse().ok()
}

pub(crate) fn digest_of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
    let mut h = algorithm.hasher();
    h.update(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start() {
        assert_eq!(parse_content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(parse_content_range_start("bytes 0-0/*"), Some(0));
        assert_eq!(parse_content_range_start("items 1-2"), None);
    }
}
