//! Reading a container's json-file log: tail, since/until, follow.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::Result;
use crate::Engine;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds (fractional); 0 = no bound.
    pub since: f64,
    pub until: f64,
    /// Last N lines; None = all.
    pub tail: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct LogLine {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    /// RFC 3339 with nanoseconds.
    pub time: String,
    pub text: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct Record {
    log: String,
    stream: String,
    time: String,
}

fn secs(rfc3339: &str) -> f64 {
    humantime::parse_rfc3339_weak(rfc3339)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn parse(line: &str, opts: &LogOptions) -> Option<LogLine> {
    let r: Record = serde_json::from_str(line).ok()?;
    let stream = if r.stream == "stderr" { 2 } else { 1 };
    if (stream == 1 && !opts.stdout) || (stream == 2 && !opts.stderr) {
        return None;
    }
    if opts.since > 0.0 || opts.until > 0.0 {
        let t = secs(&r.time);
        if (opts.since > 0.0 && t < opts.since) || (opts.until > 0.0 && t > opts.until) {
            return None;
        }
    }
    Some(LogLine {
        stream,
        time: r.time,
        text: r.log.into_bytes(),
    })
}

/// `log.N`, …, `log.1` that exist: the oldest first.
fn rotated(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for k in 1..100 {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{k}"));
        let p = std::path::PathBuf::from(p);
        if !p.exists() {
            break;
        }
        v.push(p);
    }
    v.reverse();
    v
}

/// The live log path names another file than the one we read.
fn was_rotated(path: &std::path::Path, open: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), open.metadata()) {
        (Ok(a), Ok(b)) => a.ino() != b.ino() || a.dev() != b.dev(),
        _ => false,
    }
}

impl Engine {
    /// Log lines as they are (and, with `follow`, as they come until the container stops).
    /// Returns whether the container has a terminal (its output is then raw).
    pub fn logs(
        self: &Arc<Self>,
        key: &str,
        opts: LogOptions,
    ) -> Result<(bool, mpsc::Receiver<LogLine>)> {
        let rec = self.container(key)?;
        let (tx, rx) = mpsc::channel(256);
        let path = std::path::PathBuf::from(&rec.log_path);
        let mut watch = self.containers.watcher(&rec.id);
        let exits_at_start = watch.borrow_and_update().exits;
        let follow = opts.follow && rec.state.running();
        let engine = self.clone();
        let id = rec.id.clone();
        tokio::spawn(async move {
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(_) if follow => {
                    // Not written yet: wait for the first line.
                    loop {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if let Ok(f) = std::fs::File::open(&path) {
                            break f;
                        }
                        if !engine
                            .container(&id)
                            .map(|r| r.state.running())
                            .unwrap_or(false)
                        {
                            return;
                        }
                    }
                }
                Err(_) => return,
            };
            let mut first: VecDeque<LogLine> = VecDeque::new();
            let mut line = String::new();
            // Rotated files first, oldest first.
            for old in rotated(&path) {
                let Ok(f) = std::fs::File::open(&old) else {
                    continue;
                };
                for l in BufReader::new(f).lines().map_while(|l| l.ok()) {
                    if let Some(l) = parse(&l, &opts) {
                        first.push_back(l);
                        if let Some(n) = opts.tail {
                            while first.len() > n {
                                first.pop_front();
                            }
                        }
                    }
                }
            }
            let mut reader = BufReader::new(file);
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') {
                    if let Some(l) = parse(&line, &opts) {
                        first.push_back(l);
                        if let Some(n) = opts.tail {
                            while first.len() > n {
                                first.pop_front();
                            }
                        }
                    }
                    line.clear();
                } else {
                    // A record being written: read it again on the next round.
                    let back = line.len() as i64;
                    let _ = reader.seek(SeekFrom::Current(-back));
                    line.clear();
                    break;
                }
            }
            for l in first {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            let mut done = false;
            loop {
                let mut got = false;
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if !line.ends_with('\n') {
                        let back = line.len() as i64;
                        let _ = reader.seek(SeekFrom::Current(-back));
                        line.clear();
                        break;
                    }
                    got = true;
                    if let Some(l) = parse(&line, &opts) {
                        if tx.send(l).await.is_err() {
                            return;
                        }
                    }
                    line.clear();
                }
                if done {
                    return;
                }
                if !got && was_rotated(&path, reader.get_ref()) {
                    // The shim rotated: what was left of the old file is read; go on in the new.
                    if let Ok(f) = std::fs::File::open(&path) {
                        reader = BufReader::new(f);
                        continue;
                    }
                }
                if !got {
                    let exited = watch.borrow().exits > exits_at_start || watch.borrow().removed;
                    if exited {
                        // One more pass picks up what the shim wrote last.
                        done = true;
                        continue;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        r = watch.changed() => { if r.is_err() { done = true; } }
                        _ = tx.closed() => return,
                    }
                }
            }
        });
        Ok((rec.spec.tty, rx))
    }
}
