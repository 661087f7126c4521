//! Where an unpack's time goes: a reader that adds up the time spent inside its inner reader.
//! Nested around the raw input and around the decoded tar stream, it splits an unpack into
//! waiting for input, decoding (decompression and hashing) and filesystem work.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// The time an unpack spent in each part; they add up to its wall time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackTimings {
    /// Inside the caller's reader (for a pull: waiting for the network and writing the blob).
    pub input: Duration,
    /// Decompressing, and hashing the raw and the uncompressed bytes.
    pub decode: Duration,
    /// Creating files, writing their data and metadata.
    pub filesystem: Duration,
}

pub(super) struct Timed<R> {
    inner: R,
    spent: Duration,
}

impl<R> Timed<R> {
    pub(super) fn new(inner: R) -> Timed<R> {
        Timed {
            inner,
            spent: Duration::ZERO,
        }
    }

    pub(super) fn into_parts(self) -> (R, Duration) {
        (self.inner, self.spent)
    }
}

impl<R: Read> Read for Timed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = Instant::now();
        let n = self.inner.read(buf);
        self.spent += start.elapsed();
        n
    }
}
