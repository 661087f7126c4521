//! Pushing an image from the content store: each blob is checked with HEAD, mounted from
//! another repository of the same registry when the caller knows one, or uploaded
//! (monolithic PUT, or POST → PATCH* → PUT in chunks); then manifests go up, children by
//! digest and the top one under the tag.

use std::sync::Arc;

use berth_image::content::MAX_JSON_BLOB;
use berth_image::media::{self, Kind, PlatformSpec};
use berth_image::{ContentStore, Digest};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use tokio::io::AsyncReadExt;

use crate::client::{Access, Client, MountOutcome, Repository};
use crate::error::{Error, ImageContext, Result};
use crate::progress::{short_id, Progress, ProgressEvent};
use crate::reference::Reference;

#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Which image of an index to push when the store lacks some of the index's manifests.
    pub platform: PlatformSpec,
    /// Upload in PATCH chunks of this size; None: one monolithic PUT per blob.
    pub chunk_size: Option<u64>,
    /// Repositories of the same registry that may already hold our blobs (tried as
    /// cross-repository mounts before uploading).
    pub mount_from: Vec<String>,
    /// Blobs uploaded at once (docker's max-concurrent-uploads, default 5).
    pub max_concurrent_uploads: usize,
    /// Further attempts for a blob upload after a transient failure.
    pub retries: u32,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            platform: PlatformSpec::host(),
            chunk_size: None,
            mount_from: Vec::new(),
            max_concurrent_uploads: 5,
            retries: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobAction {
    /// The repository had it already.
    Exists,
    /// Mounted from the named repository.
    Mounted(String),
    Uploaded,
}

#[derive(Debug, Clone)]
pub struct PushResult {
    /// Digest of the manifest (or index) now under the reference.
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub blobs: Vec<(Digest, BlobAction)>,
}

/// Push the manifest or index `digest` from `store` to `reference` (tag, or digest if none).
pub async fn push(
    client: &Arc<Client>,
    store: &ContentStore,
    reference: &Reference,
    digest: &Digest,
    opts: &PushOptions,
    progress: Progress,
) -> Result<PushResult> {
    progress.send(ProgressEvent::status(
        None,
        format!("The push refers to repository [{}]", reference.name()),
    ));
    let repo = open_for_push(client, reference, opts).await?;
    let top = store
        .read_bounded(digest, MAX_JSON_BLOB)
        .img(|| format!("read {digest} to push"))?;
    let kind = media::sniff_document(&top);
    let mut blobs = Vec::new();
    let (push_digest, push_bytes) = match kind {
        Kind::Index => {
            let index: ImageIndex = serde_json::from_slice(&top)
                .map_err(|e| Error::Other(format!("parse index {digest}: {e}")))?;
            let children: Vec<Digest> = index
                .manifests()
                .iter()
                .map(|d| Digest::from_oci(d.digest()))
                .collect::<std::result::Result<_, _>>()
                .img(|| format!("index {digest}"))?;
            if children.iter().all(|c| store.has(c)) {
                for (child, desc) in children.iter().zip(index.manifests()) {
                    blobs.extend(push_manifest_blobs(&repo, store, child, opts, &progress).await?);
                    let bytes = store
                        .read_bounded(child, MAX_JSON_BLOB)
                        .img(|| format!("read {child}"))?;
                    repo.put_manifest(&child.to_string(), desc.media_type().as_ref(), bytes)
                        .await?;
                }
                (digest.clone(), top)
            } else {
                // Only part of a multi-platform image is here (as after a pull): push the
                // platform's manifest, as docker does.
                let image = media::resolve_image(store, digest, &opts.platform)
                    .img(|| format!("resolve {digest} for {}", opts.platform))?;
                let d = image.manifest_digest.clone();
                blobs.extend(push_manifest_blobs(&repo, store, &d, opts, &progress).await?);
                let bytes = store
                    .read_bounded(&d, MAX_JSON_BLOB)
                    .img(|| format!("read {d}"))?;
                (d, bytes)
            }
        }
        Kind::Manifest => {
            blobs.extend(push_manifest_blobs(&repo, store, digest, opts, &progress).await?);
            (digest.clone(), top)
        }
        _ => {
            return Err(Error::Other(format!(
                "{digest} is neither an image manifest nor an index"
            )))
        }
    };
    let media_type = document_media_type(&push_bytes);
    let size = push_bytes.len() as u64;
    let target = reference
        .tag()
        .map(str::to_owned)
        .unwrap_or_else(|| push_digest.to_string());
    let pushed = repo.put_manifest(&target, &media_type, push_bytes).await?;
    if pushed != push_digest {
        return Err(Error::Other(format!(
            "pushed manifest hashes to {pushed}, expected {push_digest}"
        )));
    }
    progress.send(ProgressEvent::status(
        None,
        format!("{target}: digest: {push_digest} size: {size}"),
    ));
    Ok(PushResult {
        digest: push_digest,
        size,
        media_type,
        blobs,
    })
}

async fn open_for_push(
    client: &Arc<Client>,
    reference: &Reference,
    opts: &PushOptions,
) -> Result<Repository> {
    let mut last = None;
    // Mirrors are for pulling only.
    for c in client
        .candidates(reference.domain())
        .into_iter()
        .filter(|c| !c.mirror)
    {
        match client
            .repository_at(&c, reference, Access::Push, &opts.mount_from)
            .await
        {
            Ok(r) => return Ok(r),
            // An endpoint that answered (denied) has the last word.
            Err(e) if !matches!(e, Error::Http { .. }) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Other(format!("no endpoint for {}", reference.domain()))))
}

fn document_media_type(bytes: &[u8]) -> String {
    let declared = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_owned));
    declared.unwrap_or_else(|| match media::sniff_document(bytes) {
        Kind::Index => media::OCI_INDEX.to_string(),
        _ => media::OCI_MANIFEST.to_string(),
    })
}

/// Push the config and layers of manifest `digest`, several at once.
async fn push_manifest_blobs(
    repo: &Repository,
    store: &ContentStore,
    digest: &Digest,
    opts: &PushOptions,
    progress: &Progress,
) -> Result<Vec<(Digest, BlobAction)>> {
    let manifest: ImageManifest = store
        .read_json(digest)
        .img(|| format!("read manifest {digest}"))?;
    let descs: Vec<Descriptor> = std::iter::once(manifest.config().clone())
        .chain(manifest.layers().iter().cloned())
        .collect();
    for d in manifest.layers() {
        let blob = Digest::from_oci(d.digest()).img(|| "layer digest")?;
        progress.send(ProgressEvent::status(Some(&short_id(&blob)), "Preparing"));
    }
    futures_util::stream::iter(descs.into_iter().map(|d| async move {
        let blob = Digest::from_oci(d.digest()).img(|| "blob digest")?;
        let action = push_blob_retrying(repo, store, &blob, opts, progress).await?;
        Ok::<_, Error>((blob, action))
    }))
    .buffered(opts.max_concurrent_uploads.max(1))
    .try_collect()
    .await
}

async fn push_blob_retrying(
    repo: &Repository,
    store: &ContentStore,
    blob: &Digest,
    opts: &PushOptions,
    progress: &Progress,
) -> Result<BlobAction> {
    let mut wait = std::time::Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        match push_blob(repo, store, blob, opts, progress).await {
            Err(e) if e.is_transient() && attempt < opts.retries => {
                attempt += 1;
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            other => return other,
        }
    }
}

async fn push_blob(
    repo: &Repository,
    store: &ContentStore,
    blob: &Digest,
    opts: &PushOptions,
    progress: &Progress,
) -> Result<BlobAction> {
    let id = short_id(blob);
    if repo.blob_exists(blob).await?.is_some() {
        progress.send(ProgressEvent::status(Some(&id), "Layer already exists"));
        return Ok(BlobAction::Exists);
    }
    let size = store.size(blob).img(|| format!("push {blob}"))?;
    let mut location = None;
    let sources: Vec<&String> = opts
        .mount_from
        .iter()
        .filter(|f| f.as_str() != repo.path())
        .collect();
    for (i, from) in sources.iter().enumerate() {
        match repo.mount_blob(blob, from).await? {
            MountOutcome::Mounted => {
                progress.send(ProgressEvent::status(
                    Some(&id),
                    format!("Mounted from {from}"),
                ));
                return Ok(BlobAction::Mounted(from.to_string()));
            }
            // Not there: the registry opened an upload instead. Use the last one; cancel
            // the others so they do not linger.
            MountOutcome::Upload(url) if i + 1 == sources.len() => location = Some(url),
            MountOutcome::Upload(url) => repo.cancel_upload(&url).await,
        }
    }
    let mut location = match location {
        Some(l) => l,
        None => repo.start_upload(blob).await?,
    };
    let path = store.blob_path(blob);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    match opts.chunk_size.filter(|c| *c > 0 && *c < size) {
        Some(chunk) => {
            let mut sent = 0u64;
            while sent < size {
                let n = chunk.min(size - sent) as usize;
                let mut buf = vec![0u8; n];
                file.read_exact(&mut buf)
                    .await
                    .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
                location = repo
                    .upload_chunk(&location, blob, sent, Bytes::from(buf))
                    .await?;
                sent += n as u64;
                progress.send(ProgressEvent::progress(&id, "Pushing", sent, Some(size)));
            }
            repo.finish_upload(&location, blob, None).await?;
        }
        None => {
            let progress_stream = progress.clone();
            let id_stream = id.clone();
            let body = futures_util::stream::unfold((file, 0u64), move |(mut f, sent)| {
                let progress = progress_stream.clone();
                let id = id_stream.clone();
                async move {
                    let mut buf = vec![0u8; 256 << 10];
                    match f.read(&mut buf).await {
                        Ok(0) => None,
                        Ok(n) => {
                            buf.truncate(n);
                            let sent = sent + n as u64;
                            progress.send(ProgressEvent::progress(
                                &id,
                                "Pushing",
                                sent,
                                Some(size),
                            ));
                            Some((Ok::<_, std::io::Error>(Bytes::from(buf)), (f, sent)))
                        }
                        Err(e) => Some((Err(e), (f, sent))),
                    }
                }
            });
            repo.finish_upload(
                &location,
                blob,
                Some((reqwest::Body::wrap_stream(body), size)),
            )
            .await?;
        }
    }
    progress.send(ProgressEvent::status(Some(&id), "Pushed"));
    Ok(BlobAction::Uploaded)
}
