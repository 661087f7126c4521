//! Docker's json-file log driver format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"RFC3339Nano"}`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_shim::STREAM_STDERR;

/// Docker splits long lines at 16 KiB.
const MAX_LINE: usize = 16 * 1024;

pub struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    /// Rotate when the file would grow past this (0: never).
    max_size: u64,
    /// Files kept, the live one included (`log`, `log.1`, … `log.(max_files-1)`).
    max_files: u32,
    partial: [Vec<u8>; 2],
}

impl LogFile {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> std::io::Result<LogFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Docker's json-file rotation: log.(n-1) is dropped, log.k becomes log.(k+1), log → log.1.
    fn rotate(&mut self) -> std::io::Result<()> {
        let name = |k: u32| {
            let mut p = self.path.as_os_str().to_owned();
            p.push(format!(".{k}"));
            PathBuf::from(p)
        };
        if self.max_files <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(name(self.max_files - 1));
        for k in (1..self.max_files - 1).rev() {
            let _ = std::fs::rename(name(k), name(k + 1));
        }
        std::fs::rename(&self.path, name(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
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
        if self.max_size > 0 && self.size > 0 && self.size + bytes.len() as u64 > self.max_size {
            let _ = self.rotate();
        }
        // A full disk must not stop the container: the line is lost, the stream goes on.
        if self.file.write_all(&bytes).is_ok() {
            self.size += bytes.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_records_and_files_rotate() {
        let d = std::env::temp_dir().join(format!("berth-shim-log-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("c-json.log");
        let mut log = LogFile::open(&path, 300, 3).unwrap();
        log.write(berth_shim::STREAM_STDOUT, b"hello\nwor");
        log.write(berth_shim::STREAM_STDOUT, b"ld\n");
        let text = std::fs::read_to_string(&path).unwrap();
        let recs: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0]["log"], "hello\n");
        assert_eq!(recs[1]["log"], "world\n");
        assert_eq!(recs[1]["stream"], "stdout");
        for i in 0..40 {
            log.write(berth_shim::STREAM_STDERR, format!("line {i}\n").as_bytes());
        }
        // Three files at most, none much beyond the limit, the newest line in the live file.
        assert!(d.join("c-json.log.1").exists() && d.join("c-json.log.2").exists());
        assert!(!d.join("c-json.log.3").exists());
        for f in ["c-json.log", "c-json.log.1", "c-json.log.2"] {
            assert!(std::fs::metadata(d.join(f)).unwrap().len() <= 300);
        }
        assert!(std::fs::read_to_string(&path).unwrap().contains("line 39"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
