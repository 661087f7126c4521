//! The bridge between an async download and the blocking unpacker: chunks go through a
//! bounded channel to a reader on a blocking thread, which writes each chunk to the content
//! store's ingest (hashing it) before handing it to `apply_layer`. So one pass over the network
//! bytes fills the store, verifies the digest and unpacks the snapshot.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use berth_image::content::IngestWriter;
use bytes::Bytes;
use tokio::sync::mpsc;

/// What the downloader sends.
pub enum Chunk {
    Data(Bytes),
    /// All bytes were sent; without it, a closed channel means the download failed (and the
    /// ingest is kept, to resume).
    End,
    /// The bytes are wrong (more than the descriptor allows): throw the ingest away.
    Discard,
}

/// Chunks in how many messages may wait between downloader and unpacker.
pub const CHANNEL_DEPTH: usize = 32;

/// Reads the downloaded bytes, teeing them into an ingest.
pub struct TeeReader {
    rx: mpsc::Receiver<Chunk>,
    writer: Option<IngestWriter>,
    current: Bytes,
    ended: bool,
    /// Time spent waiting for the downloader, and writing (and hashing) into the ingest.
    pub waited: Duration,
    pub written: Duration,
}

impl TeeReader {
    pub fn new(rx: mpsc::Receiver<Chunk>, writer: IngestWriter) -> TeeReader {
        TeeReader {
            rx,
            writer: Some(writer),
            current: Bytes::new(),
            ended: false,
            waited: Duration::ZERO,
            written: Duration::ZERO,
        }
    }

    /// Read whatever the unpacker left (it stops at the tar's end), then give the ingest back.
    /// Also says how long the whole stream waited and wrote.
    pub fn finish(mut self) -> io::Result<(IngestWriter, Duration, Duration)> {
        io::copy(&mut self, &mut io::sink())?;
        let writer = self.writer.take().ok_or_else(discarded)?;
        Ok((writer, self.waited, self.written))
    }
}

impl Read for TeeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            let start = Instant::now();
            let received = self.rx.blocking_recv();
            self.waited += start.elapsed();
            match received {
                Some(Chunk::Data(b)) => {
                    let start = Instant::now();
                    self.writer.as_mut().ok_or_else(discarded)?.write_all(&b)?;
                    self.written += start.elapsed();
                    self.current = b;
                }
                Some(Chunk::End) => self.ended = true,
                Some(Chunk::Discard) => {
                    if let Some(w) = self.writer.take() {
                        let _ = w.abort();
                    }
                    return Err(discarded());
                }
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "download stopped before the end of the blob",
                    ))
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

fn discarded() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "download discarded: wrong content",
    )
}
