//! Response bodies (empty, in-memory, streamed from a file) and streaming request bodies into
//! an upload without holding them in memory. File I/O runs on blocking threads; chunks cross
//! over bounded channels, so a slow peer applies back-pressure instead of filling memory.

use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use tokio::sync::mpsc;

use crate::api_error::{ApiError, Code};
use crate::storage::Upload;

pub type Body = UnsyncBoxBody<Bytes, io::Error>;

const CHUNK: usize = 256 << 10;

pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// `len` bytes of `file` from `start`, read on a blocking thread.
pub fn file(mut file: std::fs::File, start: u64, len: u64) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut remaining = len;
        while remaining > 0 {
            let mut buf = vec![0u8; CHUNK.min(remaining as usize)];
            match file.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.blocking_send(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob shorter than its recorded size",
                    )));
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    remaining -= n as u64;
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return; // client went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    ChannelBody { rx, remaining: len }.boxed_unsync()
}

struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    remaining: u64,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.remaining = self.remaining.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Append a request body to `upload`. The upload comes back (unless the writer thread died),
/// with whatever arrived written, so a broken connection leaves a resumable session.
pub async fn receive(
    upload: Upload,
    mut body: Incoming,
) -> (Option<Upload>, Result<u64, ApiError>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || {
        let mut upload = upload;
        let mut written = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            if let Err(e) = upload.write(&chunk) {
                return (upload, Err(e));
            }
            written += chunk.len() as u64;
        }
        (upload, Ok(written))
    });
    let mut receive_error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    if tx.send(data).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
            }
            Err(e) => {
                receive_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    match writer.await {
        Ok((upload, Ok(n))) => match receive_error {
            None => (Some(upload), Ok(n)),
            Some(e) => (
                Some(upload),
                Err(ApiError::new(
                    Code::BlobUploadInvalid,
                    format!("reading the request body: {e}"),
                )),
            ),
        },
        Ok((upload, Err(e))) => (
            Some(upload),
            Err(ApiError::internal(format!("write upload: {e}"))),
        ),
        Err(e) => (None, Err(ApiError::internal(format!("upload writer: {e}")))),
    }
}

/// How much of an oversized body is read and dropped before answering, so a client that sends
/// its whole body before reading the response sees the error instead of a reset connection.
pub const DRAIN_LIMIT: u64 = 64 << 20;

/// Read and drop a body we refuse (up to `DRAIN_LIMIT`), so the refusal reaches the client.
pub async fn drain(body: Incoming) {
    let _ = read_limited(body, 0).await;
}

/// A whole request body of at most `limit` bytes (manifests, token forms).
pub async fn read_limited(mut body: Incoming, limit: usize) -> Result<Bytes, ReadError> {
    let mut buf = bytes::BytesMut::new();
    let mut drained = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReadError::Io(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if drained > 0 || buf.len() + data.len() > limit {
            drained += data.len() as u64;
            if drained > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if drained > 0 {
        return Err(ReadError::TooLarge);
    }
    Ok(buf.freeze())
}

#[derive(Debug)]
pub enum ReadError {
    TooLarge,
    Io(String),
}
