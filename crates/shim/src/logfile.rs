//! Docker's json-file log driver format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"RFC3339Nano"}`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use berth_shim::STREAM_STDERR;

/// Docker splits long lines at 16 KiB.
const MAX_LINE: usize = 16 * 1024;

pub struct LogFile {
    file: File,
    partial: [Vec<u8>; 2],
}

impl LogFile {
    pub fn open(path: &Path) -> std::io::Result<LogFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogFile {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Log `data` from `stream`; complete lines are written, a trailing partial line waits.
    pub fn write(&mut self, stream: u8, data: &[u8]) {
        let slot = usize::from(stream == STREAM_STDERR);
        let mut buf = std::mem::take(&mut self.partial[slot]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            self.record(stream, &buf[start..start + nl + 1]);
            start += nl + 1;
        }
        while buf.len() - start >= MAX_LINE {
            self.record(stream, &buf[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        buf.drain(..start);
        self.partial[slot] = buf;
    }

    /// Write what is left of partial lines (on exit).
    pub fn flush(&mut self) {
        for (slot, stream) in [(0, berth_shim::STREAM_STDOUT), (1, STREAM_STDERR)] {
            let buf = std::mem::take(&mut self.partial[slot]);
            if !buf.is_empty() {
                self.record(stream, &buf);
            }
        }
    }

    fn record(&mut self, stream: u8, line: &[u8]) {
        let rec = serde_json::json!({
            "log": String::from_utf8_lossy(line),
            "stream": if stream == STREAM_STDERR { "stderr" } else { "stdout" },
            "time": humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        });
        let mut bytes = serde_json::to_vec(&rec).unwrap_or_default();
        bytes.push(b'\n');
        // A full disk must not stop the container: the line is lost, the stream goes on.
        let _ = self.file.write_all(&bytes);
    }
}
