//! Pulling an image into the content store and snapshots.
//!
//! 1. The manifest is fetched (mirrors first for Docker Hub), verified and stored; an index is
//!    resolved to the platform's manifest (linux/amd64 unless asked otherwise); the config is
//!    fetched, verified and stored.
//! 2. Every layer whose snapshot (by chain id) is missing becomes a task: download with Range
//!    resume and retries, bytes teed into the store's ingest (hash verified) and into
//!    `apply_layer` on a blocking thread, so a layer is unpacked while it downloads. With the
//!    overlay snapshotter each layer goes into its own parentless snapshot, several at once
//!    (bounded by a semaphore shared by all pulls); commits then link them in chain order.
//!    With the copy backend downloads still run in parallel but unpacking is in order.
//! 3. Tasks are registered by chain id: a second pull of the same image waits on the first
//!    pull's tasks instead of repeating them.
//!
//! Nothing half-written becomes visible: blobs appear only verified (ingest commit), snapshots
//! only complete (snapshot commit); a failed layer leaves a resumable ingest and no snapshot.

mod layer;
mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_image::content::MAX_JSON_BLOB;
use berth_image::media::{self, Kind, PlatformSpec, ResolvedImage};
use berth_image::names::ImageRecord;
use berth_image::snapshot::chain_ids;
use berth_image::unpack::UnpackOptions;
use berth_image::{ContentStore, Digest};
use futures_util::future::{BoxFuture, Shared};
use futures_util::FutureExt;
use oci_spec::image::{ImageIndex, ImageManifest};
use tokio::sync::Semaphore;

use crate::client::{Access, Client, FetchedManifest, Repository};
use crate::error::{Error, ImageContext, Result};
use crate::progress::{short_id, Progress, ProgressEvent};
use crate::reference::Reference;
use layer::LayerTask;

pub use berth_image::snapshot::Snapshotter;

/// A layer task's result, shareable between pulls.
type SharedLayer = Shared<BoxFuture<'static, Result<(), Arc<Error>>>>;

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub platform: PlatformSpec,
    pub unpack: UnpackOptions,
    /// Further attempts after a transient failure (per layer, per manifest request).
    pub retries: u32,
    /// First wait before a retry; doubles each time.
    pub retry_backoff: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: PlatformSpec::host(),
            unpack: UnpackOptions::default(),
            retries: 5,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

/// What happened to one layer in a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerAction {
    /// This pull downloaded (or finished downloading) and unpacked it.
    Pulled,
    /// Its snapshot already existed.
    Present,
    /// Another pull was already fetching it; this one waited.
    Shared,
}

#[derive(Debug, Clone)]
pub struct PullResult {
    pub reference: Reference,
    /// What the registry serves under the reference (an index or a manifest): what a name
    /// should point at.
    pub digest: Digest,
    pub media_type: String,
    /// The platform's image: manifest, config (the image id) and parsed documents.
    pub image: ResolvedImage,
    /// The top snapshot (None for an image without layers).
    pub chain_id: Option<Digest>,
    pub layers: Vec<(Digest, LayerAction)>,
}

impl PullResult {
    /// The record an engine's name index keeps for the pulled name.
    pub fn record(&self) -> ImageRecord {
        ImageRecord {
            manifest: self.digest.clone(),
            config: self.image.config_digest.clone(),
        }
    }
}

/// Pulls into one content store and snapshotter. Cheap to clone; clones share the download
/// limit and the in-flight layer table.
#[derive(Clone)]
pub struct Puller {
    client: Arc<Client>,
    store: ContentStore,
    snapshots: Snapshotter,
    downloads: Arc<Semaphore>,
    inflight: Arc<Mutex<HashMap<Digest, SharedLayer>>>,
    blob_locks: BlobLocks,
}

/// One download per blob at a time, even for layers of different chains (the same blob
/// stacked on different parents): the second waits, then finds the blob in the store.
#[derive(Clone, Default)]
pub(crate) struct BlobLocks {
    locks: Arc<Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>>,
}

impl BlobLocks {
    pub(crate) async fn lock(&self, blob: &Digest) -> BlobGuard {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(blob.clone())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        BlobGuard {
            owner: self.clone(),
            blob: blob.clone(),
            lock,
            guard: Some(guard),
        }
    }
}

pub(crate) struct BlobGuard {
    owner: BlobLocks,
    blob: Digest,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for BlobGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.owner.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Only the table and this guard still hold it: nobody waits, forget the entry.
        if Arc::strong_count(&self.lock) <= 2 {
            locks.remove(&self.blob);
        }
    }
}

impl Puller {
    /// `max_concurrent_downloads` is docker's daemon setting of the same name (default 3).
    pub fn new(
        client: Arc<Client>,
        store: ContentStore,
        snapshots: Snapshotter,
        max_concurrent_downloads: usize,
    ) -> Puller {
        Puller {
            client,
            store,
            snapshots,
            downloads: Arc::new(Semaphore::new(max_concurrent_downloads.max(1))),
            inflight: Arc::new(Mutex::new(HashMap::new())),
            blob_locks: BlobLocks::default(),
        }
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// The same puller (store, download limit, in-flight layers) talking through `client`:
    /// how a daemon pulls with one request's credentials without a second pipeline.
    pub fn with_client(&self, client: Arc<Client>) -> Puller {
        Puller {
            client,
            ..self.clone()
        }
    }

    pub fn store(&self) -> &ContentStore {
        &self.store
    }

    pub fn snapshots(&self) -> &Snapshotter {
        &self.snapshots
    }

    /// Pull `reference` (tag or digest) for `opts.platform`.
    pub async fn pull(
        &self,
        reference: &Reference,
        opts: &PullOptions,
        progress: Progress,
    ) -> Result<PullResult> {
        let tag_id = reference
            .tag()
            .map(str::to_owned)
            .unwrap_or_else(|| reference.object());
        progress.send(ProgressEvent::status(
            Some(&tag_id),
            format!("Pulling from {}", reference.path()),
        ));
        let (repo, top) = self.fetch_top(reference, opts).await?;
        let repo = Arc::new(repo);
        self.store_document(&repo, &top)?;
        let platform_manifest = self.resolve_platform(&repo, &top, opts).await?;
        let manifest: ImageManifest =
            serde_json::from_slice(&platform_manifest.bytes).map_err(|e| Error::Protocol {
                registry: repo.registry().to_string(),
                object: format!("manifest {}@{}", repo.path(), platform_manifest.digest),
                reason: format!("not a valid image manifest: {e}"),
            })?;
        self.fetch_config(&repo, &manifest, opts).await?;
        let image = media::resolve_image(&self.store, &top.digest, &opts.platform)
            .img(|| format!("resolve pulled image {reference}"))?;
        let layers = image.layers().img(|| format!("layers of {reference}"))?;
        for (desc, _) in &layers {
            if !matches!(media::kind_of(desc.media_type()), Kind::Layer(_)) {
                return Err(Error::Protocol {
                    registry: repo.registry().to_string(),
                    object: format!("manifest {}@{}", repo.path(), image.manifest_digest),
                    reason: format!(
                        "unsupported layer media type {:?}",
                        desc.media_type().to_string()
                    ),
                });
            }
        }
        let diff_ids: Vec<Digest> = layers.iter().map(|(_, d)| d.clone()).collect();
        let chains = chain_ids(&diff_ids);

        let mut waits: Vec<(Digest, LayerAction, Option<SharedLayer>)> = Vec::new();
        {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            let mut parent: Option<SharedLayer> = None;
            for (i, (desc, diff_id)) in layers.iter().enumerate() {
                let blob = Digest::from_oci(desc.digest())
                    .img(|| format!("layer digest in {}", image.manifest_digest))?;
                let chain = chains[i].clone();
                let id = short_id(&blob);
                if let Some(f) = inflight.get(&chain) {
                    progress.send(ProgressEvent::status(Some(&id), "Waiting"));
                    parent = Some(f.clone());
                    waits.push((blob, LayerAction::Shared, Some(f.clone())));
                    continue;
                }
                let task = LayerTask {
                    repo: repo.clone(),
                    store: self.store.clone(),
                    snapshots: self.snapshots.clone(),
                    downloads: self.downloads.clone(),
                    blob_locks: self.blob_locks.clone(),
                    blob: blob.clone(),
                    size: desc.size(),
                    diff_id: diff_id.clone(),
                    chain: chain.clone(),
                    parent_chain: i.checked_sub(1).map(|p| chains[p].clone()),
                    parent: parent.clone(),
                    opts: opts.clone(),
                    progress: progress.clone(),
                };
                if self.snapshots.exists(&chain) {
                    parent = None;
                    if self.store.has(&blob) {
                        progress.send(ProgressEvent::status(Some(&id), "Already exists"));
                        waits.push((blob, LayerAction::Present, None));
                    } else {
                        // Unpacked, but the registry's blob is missing: fetch it, no unpack.
                        let handle = tokio::spawn(task.fetch_blob_only());
                        let fetched: SharedLayer = async move {
                            handle.await.unwrap_or_else(|e| {
                                Err(Error::Other(format!("layer task failed: {e}")))
                            })
                        }
                        .map(|r| r.map_err(Arc::new))
                        .boxed()
                        .shared();
                        waits.push((blob, LayerAction::Present, Some(fetched)));
                    }
                    continue;
                }
                progress.send(ProgressEvent::status(Some(&id), "Pulling fs layer"));
                let table = self.inflight.clone();
                let key = chain.clone();
                let handle = tokio::spawn(async move {
                    let result = task.run().await.map_err(Arc::new);
                    // Committed (or failed) now: later pulls look at the snapshot itself.
                    table.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                    result
                });
                let shared: SharedLayer = async move {
                    handle.await.unwrap_or_else(|e| {
                        Err(Arc::new(Error::Other(format!("layer task failed: {e}"))))
                    })
                }
                .boxed()
                .shared();
                inflight.insert(chain, shared.clone());
                parent = Some(shared.clone());
                waits.push((blob, LayerAction::Pulled, Some(shared)));
            }
        }
        let results = futures_util::future::join_all(waits.iter().map(|(_, _, f)| {
            let f = f.clone();
            async move {
                match f {
                    Some(f) => f.await,
                    None => Ok(()),
                }
            }
        }))
        .await;
        // Layer blobs were committed without waiting for the disk; make them durable in the
        // background (the snapshots are usable now; a crash before this is repaired by
        // re-verifying at the store's next open).
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.sync_deferred() {
                tracing::warn!("sync pulled blobs: {e}");
            }
        });
        for r in results {
            r.map_err(Error::Shared)?;
        }
        progress.send(ProgressEvent::status(
            None,
            format!("Digest: {}", top.digest),
        ));
        Ok(PullResult {
            reference: reference.clone(),
            digest: top.digest.clone(),
            media_type: top.media_type.clone(),
            chain_id: chains.last().cloned(),
            image,
            layers: waits.into_iter().map(|(d, a, _)| (d, a)).collect(),
        })
    }

    /// The top manifest or index, trying each endpoint (mirrors first) in turn.
    async fn fetch_top(
        &self,
        reference: &Reference,
        opts: &PullOptions,
    ) -> Result<(Repository, FetchedManifest)> {
        let candidates = self.client.candidates(reference.domain());
        let mut last = None;
        for (i, c) in candidates.iter().enumerate() {
            let is_last = i + 1 == candidates.len();
            let attempt = async {
                let repo = self
                    .client
                    .repository_at(c, reference, Access::Pull, &[])
                    .await?;
                let object = reference.object();
                let top = retry(opts, || repo.get_manifest(&object)).await?;
                Ok::<_, Error>((repo, top))
            };
            match attempt.await {
                Ok(found) => return Ok(found),
                // The registry itself answered (not found, denied): its other scheme would
                // only add a connection error. Mirrors are different: the next may have it.
                Err(e) if !c.mirror && !matches!(e, Error::Http { .. }) => return Err(e),
                Err(e) if !is_last => {
                    tracing::info!(endpoint = %c.base, error = %e, "trying the next endpoint");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Other(format!("no endpoint for {}", reference.domain()))))
    }

    fn store_document(&self, repo: &Repository, doc: &FetchedManifest) -> Result<()> {
        self.store
            .ingest(
                &doc.bytes[..],
                Some(&doc.digest),
                Some(doc.bytes.len() as u64),
            )
            .img(|| {
                format!(
                    "store manifest {}@{} from {}",
                    repo.path(),
                    doc.digest,
                    repo.registry()
                )
            })?;
        Ok(())
    }

    /// Follow indexes down to the platform's manifest, storing each document.
    async fn resolve_platform(
        &self,
        repo: &Repository,
        top: &FetchedManifest,
        opts: &PullOptions,
    ) -> Result<FetchedManifest> {
        let mut doc = top.clone();
        for _ in 0..4 {
            if doc.kind != Kind::Index {
                return Ok(doc);
            }
            let index: ImageIndex =
                serde_json::from_slice(&doc.bytes).map_err(|e| Error::Protocol {
                    registry: repo.registry().to_string(),
                    object: format!("index {}@{}", repo.path(), doc.digest),
                    reason: format!("not a valid image index: {e}"),
                })?;
            let chosen = media::select_manifest(&index, &opts.platform)
                .img(|| format!("{}@{}", repo.path(), doc.digest))?;
            let child = Digest::from_oci(chosen.digest()).img(|| "manifest digest in index")?;
            let child = child.to_string();
            let next = retry(opts, || repo.get_manifest(&child)).await?;
            self.store_document(repo, &next)?;
            doc = next;
        }
        Err(Error::Protocol {
            registry: repo.registry().to_string(),
            object: format!("{}@{}", repo.path(), top.digest),
            reason: "indexes nested too deep".into(),
        })
    }

    async fn fetch_config(
        &self,
        repo: &Repository,
        manifest: &ImageManifest,
        opts: &PullOptions,
    ) -> Result<()> {
        let config = Digest::from_oci(manifest.config().digest()).img(|| "config digest")?;
        if self.store.has(&config) {
            return Ok(());
        }
        if manifest.config().size() > MAX_JSON_BLOB {
            return Err(Error::TooLarge {
                registry: repo.registry().to_string(),
                object: repo.blob_object(&config),
                limit: MAX_JSON_BLOB,
            });
        }
        let bytes = retry(opts, || repo.get_blob_bytes(&config, MAX_JSON_BLOB)).await?;
        self.store
            .ingest(&bytes[..], Some(&config), Some(bytes.len() as u64))
            .img(|| format!("store config {config} from {}", repo.registry()))?;
        Ok(())
    }
}

/// Run `op` again after transient failures, with doubling waits.
pub(crate) async fn retry<T, F, Fut>(opts: &PullOptions, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut wait = opts.retry_backoff;
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if e.is_transient() && attempt < opts.retries => {
                tracing::info!(error = %e, attempt, "retrying");
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
                attempt += 1;
            }
            other => return other,
        }
    }
}
