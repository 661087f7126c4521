//! One layer of a pull: download (resumable, retried) while unpacking into a snapshot, verify
//! both digests, and commit the snapshot once its parent is committed.

use std::io::BufReader;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use berth_image::content::{BlobInfo, IngestWriter};
use berth_image::snapshot::{Backend, Snapshotter};
use berth_image::unpack::{apply_layer, UnpackOptions, UnpackStats};
use berth_image::{ContentStore, Digest};
use tokio::sync::{mpsc, Semaphore};

use super::stream::{Chunk, TeeReader, CHANNEL_DEPTH};
use super::{BlobLocks, PullOptions, SharedLayer};
use crate::client::Repository;
use crate::error::{Error, Result};
use crate::progress::{short_id, Progress, ProgressEvent};

pub(super) struct LayerTask {
    pub repo: Arc<Repository>,
    pub store: ContentStore,
    pub snapshots: Snapshotter,
    pub downloads: Arc<Semaphore>,
    pub blob_locks: BlobLocks,
    pub blob: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub chain: Digest,
    pub parent_chain: Option<Digest>,
    /// The task committing the parent snapshot, if it is still being pulled.
    pub parent: Option<SharedLayer>,
    pub opts: PullOptions,
    pub progress: Progress,
}

impl LayerTask {
    fn id(&self) -> String {
        short_id(&self.blob)
    }

    fn unpack_options(&self) -> UnpackOptions {
        UnpackOptions {
            whiteouts: self.snapshots.whiteout_mode(),
            ..self.opts.unpack.clone()
        }
    }

    pub async fn run(self) -> Result<()> {
        let id = self.id();
        let permit = self
            .downloads
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Other("download limiter closed".into()))?;
        let key = snapshot_key(&self.chain);
        if self.snapshots.backend() == Backend::Overlay {
            // Unpack now into a parentless snapshot; link it to its parent at commit.
            let snaps = self.snapshots.clone();
            let k = key.clone();
            blocking(move || snaps.prepare(&k, None).map(|_| ()))
                .await
                .map_err(|e| {
                    Error::image(format!("prepare snapshot for layer {}", self.blob), e)
                })?;
            let target = self
                .snapshots
                .active_fs(&key)
                .map_err(|e| Error::image("snapshot path", e))?;
            let unpacked = self.fetch(Some(target)).await;
            drop(permit);
            let committed = match unpacked {
                Ok(()) => self.commit_after_parent(&key).await,
                Err(e) => Err(e),
            };
            if committed.is_err() {
                let _ = self.snapshots.remove_active(&key);
            }
            committed?;
        } else {
            // A copy snapshot needs its parent's files: download now, unpack in order.
            self.fetch(None).await?;
            drop(permit);
            self.wait_parent().await?;
            self.progress
                .send(ProgressEvent::status(Some(&id), "Extracting"));
            self.unpack_from_store_in_order(&key).await?;
        }
        self.progress
            .send(ProgressEvent::status(Some(&id), "Pull complete"));
        Ok(())
    }

    /// The layer's files are here already (its snapshot exists: from `docker load`, or another
    /// image compressed differently) but not the registry's blob: download the blob into the
    /// store without unpacking it again, so the image is whole (save and push need it).
    pub async fn fetch_blob_only(self) -> Result<()> {
        let _permit = self
            .downloads
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Other("download limiter closed".into()))?;
        self.fetch(None).await?;
        self.progress
            .send(ProgressEvent::status(Some(&self.id()), "Already exists"));
        Ok(())
    }

    async fn wait_parent(&self) -> Result<()> {
        if let Some(p) = &self.parent {
            p.clone().await.map_err(Error::Shared)?;
        }
        Ok(())
    }

    async fn commit_after_parent(&self, key: &str) -> Result<()> {
        self.wait_parent().await?;
        let snaps = self.snapshots.clone();
        let (k, chain, parent) = (
            key.to_string(),
            self.chain.clone(),
            self.parent_chain.clone(),
        );
        blocking(move || snaps.commit_onto(&k, &chain, parent.as_ref()))
            .await
            .map_err(|e| {
                Error::image(
                    format!("commit snapshot {} (layer {})", self.chain, self.blob),
                    e,
                )
            })
    }

    /// Get the blob into the store; with `target`, unpack it there as it arrives.
    async fn fetch(&self, target: Option<PathBuf>) -> Result<()> {
        let id = self.id();
        let _blob_guard = self.blob_locks.lock(&self.blob).await;
        if self.store.has(&self.blob) {
            self.progress
                .send(ProgressEvent::status(Some(&id), "Download complete"));
            if let Some(t) = target {
                self.progress
                    .send(ProgressEvent::status(Some(&id), "Extracting"));
                self.unpack_from_store(t).await?;
            }
            return Ok(());
        }
        let store = self.store.clone();
        let (blob, size) = (self.blob.clone(), self.size);
        let writer =
            blocking(move || store.writer(&ingest_ref(&blob), Some(blob.clone()), Some(size)))
                .await
                .map_err(|e| {
                    Error::image(
                        format!("open ingest for {}", self.repo.blob_object(&self.blob)),
                        e,
                    )
                })?;
        // A partial ingest from an earlier pull resumes with Range; the unpacker needs the whole
        // stream, so it then runs from the store once the blob is complete.
        let resumed = writer.offset() > 0;
        let stream_target = if resumed { None } else { target.clone() };
        if resumed {
            self.progress.send(ProgressEvent::progress(
                &id,
                "Resuming download",
                writer.offset(),
                Some(self.size),
            ));
        }
        let (info, stats) = self.download(writer, stream_target).await?;
        self.progress
            .send(ProgressEvent::status(Some(&id), "Download complete"));
        if info.digest != self.blob {
            return Err(self.mismatch(
                &self.repo.blob_object(&self.blob),
                &self.blob,
                &info.digest,
            ));
        }
        match (stats, target) {
            (Some(stats), _) => self.check_diff_id(&stats),
            (None, Some(t)) => {
                self.progress
                    .send(ProgressEvent::status(Some(&id), "Extracting"));
                self.unpack_from_store(t).await
            }
            (None, None) => Ok(()),
        }
    }

    /// Stream the blob from the registry into `writer` (and the unpacker, given a target),
    /// retrying from where it stopped.
    async fn download(
        &self,
        writer: IngestWriter,
        target: Option<PathBuf>,
    ) -> Result<(BlobInfo, Option<UnpackStats>)> {
        let id = self.id();
        let start = writer.offset();
        let (tx, rx) = mpsc::channel::<Chunk>(CHANNEL_DEPTH);
        let opts = self.unpack_options();
        let consumer = tokio::task::spawn_blocking(
            move || -> berth_image::Result<(BlobInfo, Option<UnpackStats>)> {
                let started = Instant::now();
                let mut tee = TeeReader::new(rx, writer);
                let unpacked = match target {
                    Some(t) => apply_layer(&mut tee, &t, &opts).map(Some),
                    None => Ok(None),
                };
                // Read to the end either way: a layer that fails to unpack is first checked
                // against its digest, which names the real fault when the bytes were wrong.
                // A stream that stopped early keeps its ingest for a resumed pull.
                let (writer, waited, written) = tee
                    .finish()
                    .map_err(|e| berth_image::Error::io("read download", e))?;
                let committing = Instant::now();
                // Unpacked and verified already: the pull need not wait for the disk; the
                // puller syncs the store once the image is complete.
                let info = writer.commit_deferred()?;
                let unpacked = unpacked?;
                log_timings(
                    &info,
                    unpacked.as_ref(),
                    started,
                    waited,
                    written,
                    committing,
                );
                Ok((info, unpacked))
            },
        );
        let produced = self.produce(start, &tx, &id).await;
        match &produced {
            Ok(()) => {
                let _ = tx.send(Chunk::End).await;
            }
            // Worth resuming later: keep the ingest (by just closing the channel).
            Err(e) if e.is_transient() => {}
            Err(_) => {
                let _ = tx.send(Chunk::Discard).await;
            }
        }
        drop(tx);
        let consumed = consumer
            .await
            .map_err(|e| Error::Other(format!("unpack task for layer {}: {e}", self.blob)))?;
        // The download's own error explains a consumer that saw the stream stop.
        produced?;
        consumed.map_err(|e| match e {
            berth_image::Error::DigestMismatch { expected, actual } => {
                self.mismatch(&self.repo.blob_object(&self.blob), &expected, &actual)
            }
            berth_image::Error::SizeMismatch {
                expected, actual, ..
            } => Error::Protocol {
                registry: self.repo.registry().to_string(),
                object: self.repo.blob_object(&self.blob),
                reason: format!("got {actual} bytes, the manifest says {expected}"),
            },
            e => Error::image(
                format!(
                    "layer {} from {}",
                    self.repo.blob_object(&self.blob),
                    self.repo.registry()
                ),
                e,
            ),
        })
    }

    /// Fetch bytes from `offset` on, sending them down `tx`; on transient failures wait and
    /// continue with a Range request from the last byte sent.
    async fn produce(&self, mut offset: u64, tx: &mpsc::Sender<Chunk>, id: &str) -> Result<()> {
        let mut attempt = 0u32;
        let mut wait = self.opts.retry_backoff;
        let mut last_report = 0u64;
        let step = (self.size / 100).max(256 << 10);
        loop {
            let result: Result<()> = async {
                let mut stream = self.repo.get_blob(&self.blob, offset).await?;
                let mut skip = offset - stream.start.min(offset);
                while let Some(mut chunk) = stream.chunk().await? {
                    if skip > 0 {
                        let n = (skip as usize).min(chunk.len());
                        let _ = chunk.split_to(n);
                        skip -= n as u64;
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    offset += chunk.len() as u64;
                    if offset > self.size {
                        return Err(Error::Protocol {
                            registry: self.repo.registry().to_string(),
                            object: self.repo.blob_object(&self.blob),
                            reason: format!(
                                "more than the {} bytes the manifest promises",
                                self.size
                            ),
                        });
                    }
                    if tx.send(Chunk::Data(chunk)).await.is_err() {
                        // The unpacker stopped; its error says why.
                        return Ok(());
                    }
                    if offset - last_report >= step || offset == self.size {
                        last_report = offset;
                        self.progress.send(ProgressEvent::progress(
                            id,
                            "Downloading",
                            offset,
                            Some(self.size),
                        ));
                    }
                }
                if offset < self.size {
                    return Err(Error::io(
                        format!(
                            "registry {}: {}",
                            self.repo.registry(),
                            self.repo.blob_object(&self.blob)
                        ),
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("connection ended after {offset} of {} bytes", self.size),
                        ),
                    ));
                }
                Ok(())
            }
            .await;
            match result {
                Err(e) if e.is_transient() && attempt < self.opts.retries => {
                    attempt += 1;
                    tracing::info!(error = %e, attempt, offset, "layer download interrupted; resuming");
                    self.progress.send(ProgressEvent::status(
                        Some(id),
                        format!("Retrying in {} ms (attempt {attempt})", wait.as_millis()),
                    ));
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
                other => return other,
            }
        }
    }

    async fn unpack_from_store(&self, target: PathBuf) -> Result<()> {
        let store = self.store.clone();
        let blob = self.blob.clone();
        let opts = self.unpack_options();
        let stats = blocking(move || {
            let file = store.open_blob(&blob)?;
            apply_layer(BufReader::with_capacity(256 << 10, file), &target, &opts)
        })
        .await
        .map_err(|e| Error::image(format!("unpack layer {}", self.blob), e))?;
        if stats.blob.digest.algorithm() == self.blob.algorithm() && stats.blob.digest != self.blob
        {
            return Err(self.mismatch(
                &format!("stored blob {}", self.blob),
                &self.blob,
                &stats.blob.digest,
            ));
        }
        self.check_diff_id(&stats)
    }

    /// Copy backend: prepare on the committed parent, unpack from the store, commit.
    async fn unpack_from_store_in_order(&self, key: &str) -> Result<()> {
        let snaps = self.snapshots.clone();
        let (k, parent) = (key.to_string(), self.parent_chain.clone());
        blocking(move || snaps.prepare(&k, parent.as_ref()).map(|_| ()))
            .await
            .map_err(|e| Error::image(format!("prepare snapshot for layer {}", self.blob), e))?;
        let done = async {
            let target = self
                .snapshots
                .active_fs(key)
                .map_err(|e| Error::image("snapshot path", e))?;
            self.unpack_from_store(target).await?;
            let snaps = self.snapshots.clone();
            let (k, chain) = (key.to_string(), self.chain.clone());
            blocking(move || snaps.commit(&k, &chain))
                .await
                .map_err(|e| Error::image(format!("commit snapshot {}", self.chain), e))
        }
        .await;
        if done.is_err() {
            let _ = self.snapshots.remove_active(key);
        }
        done
    }

    fn check_diff_id(&self, stats: &UnpackStats) -> Result<()> {
        if stats.diff_id != self.diff_id {
            return Err(self.mismatch(
                &format!(
                    "{} (uncompressed content vs. the config's diff_id)",
                    self.repo.blob_object(&self.blob)
                ),
                &self.diff_id,
                &stats.diff_id,
            ));
        }
        Ok(())
    }

    fn mismatch(&self, object: &str, expected: &Digest, actual: &Digest) -> Error {
        Error::DigestMismatch {
            registry: self.repo.registry().to_string(),
            object: object.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }
}

/// One line per streamed layer saying where its time went (bench/pull.sh reads it). Layers
/// run in parallel, so their times overlap; "input" of the unpacker is waiting + writing here.
fn log_timings(
    info: &BlobInfo,
    unpacked: Option<&UnpackStats>,
    started: Instant,
    waited: std::time::Duration,
    written: std::time::Duration,
    committing: Instant,
) {
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    let (decode, files) =
        unpacked.map_or((0, 0), |u| (ms(u.timings.decode), ms(u.timings.filesystem)));
    tracing::info!(
        layer = %info.digest,
        bytes = info.size,
        total_ms = ms(started.elapsed()),
        network_wait_ms = ms(waited),
        blob_write_ms = ms(written),
        decode_ms = decode,
        files_ms = files,
        blob_commit_ms = ms(committing.elapsed()),
        "layer pulled"
    );
}

/// Stable per blob, so a later pull resumes what an interrupted one stored.
fn ingest_ref(blob: &Digest) -> String {
    format!("pull-{blob}")
}

fn snapshot_key(chain: &Digest) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "pull-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        &chain.hex()[..16]
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> berth_image::Result<T> + Send + 'static,
) -> berth_image::Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(berth_image::Error::io(
            "blocking task",
            std::io::Error::other(e.to_string()),
        ))
    })
}
