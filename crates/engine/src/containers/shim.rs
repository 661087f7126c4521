//! The engine's side of a shim: spawning one, and its socket protocol (`berth_shim`).

use std::path::{Path, PathBuf};

use berth_shim::{ExitStatus, Ready, Reply, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::{Error, Result};

/// Everything a shim needs to create one container.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub runtime_root: &'a Path,
    pub socket: &'a Path,
    pub log: &'a Path,
    pub exit_file: &'a Path,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub log_max_size: u64,
    pub log_max_files: u32,
}

/// Run the shim; it returns once the container is created (its init waits for `start`).
pub async fn launch(l: &Launch<'_>) -> Result<i32> {
    let mut cmd = tokio::process::Command::new(l.binary);
    cmd.arg("--id")
        .arg(l.id)
        .arg("--bundle")
        .arg(l.bundle)
        .arg("--runtime-root")
        .arg(l.runtime_root)
        .arg("--socket")
        .arg(l.socket)
        .arg("--log")
        .arg(l.log)
        .arg("--exit-file")
        .arg(l.exit_file);
    if l.tty {
        cmd.arg("--tty");
    }
    if l.stdin {
        cmd.arg("--stdin");
    }
    if l.stdin_once {
        cmd.arg("--stdin-once");
    }
    cmd.arg("--log-max-size")
        .arg(l.log_max_size.to_string())
        .arg("--log-max-files")
        .arg(l.log_max_files.to_string());
    cmd.stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let out = cmd
        .output()
        .await
        .map_err(|e| Error::internal(format!("run {}", l.binary.display()), e))?;
    let line = String::from_utf8_lossy(&out.stdout);
    match serde_json::from_str::<Ready>(line.trim()) {
        Ok(Ready { error: None, pid }) => Ok(pid),
        Ok(Ready { error: Some(e), .. }) => Err(Error::Internal(format!(
            "failed to create task for container: {e}"
        ))),
        Err(_) => Err(Error::Internal(format!(
            "the shim failed: {}{}",
            line.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// Connect, send `req`, read the reply line; the stream stays usable for attach/exec.
pub async fn request(socket: &Path, req: &Request) -> Result<(Reply, UnixStream)> {
    let mut s = UnixStream::connect(socket)
        .await
        .map_err(|e| Error::internal(format!("connect to shim {}", socket.display()), e))?;
    let mut line = serde_json::to_vec(req).map_err(|e| Error::internal("encode request", e))?;
    line.push(b'\n');
    s.write_all(&line)
        .await
        .map_err(|e| Error::internal("write to shim", e))?;
    let buf = read_reply_line(&mut s)
        .await
        .map_err(|e| Error::internal("read shim reply", e))?;
    let reply: Reply =
        serde_json::from_slice(&buf).map_err(|e| Error::internal("parse shim reply", e))?;
    Ok((reply, s))
}

const MAX_REPLY: usize = 64 * 1024;

/// The reply line, without consuming the attach/exec stream bytes that may follow it: peek at
/// what has arrived, then read exactly up to the newline (two syscalls, not one per byte).
async fn read_reply_line(s: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    use std::io::{Error as IoError, ErrorKind};
    use std::os::fd::AsRawFd;
    let mut line = Vec::with_capacity(256);
    let mut peeked = vec![0u8; 4096];
    loop {
        s.readable().await?;
        let fd = s.as_raw_fd();
        let n = match s.try_io(tokio::io::Interest::READABLE, || {
            nix::sys::socket::recv(fd, &mut peeked, nix::sys::socket::MsgFlags::MSG_PEEK)
                .map_err(IoError::from)
        }) {
            Ok(0) => return Err(IoError::from(ErrorKind::UnexpectedEof)),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        // Up to and including the newline when it has arrived; otherwise all of it, and wait.
        let (take, done) = match peeked[..n].iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (n, false),
        };
        let start = line.len();
        line.resize(start + take, 0);
        s.read_exact(&mut line[start..]).await?;
        if done {
            line.pop();
            return Ok(line);
        }
        if line.len() > MAX_REPLY {
            return Err(IoError::new(ErrorKind::InvalidData, "shim reply too long"));
        }
    }
}

/// A request whose reply must be ok.
pub async fn call(socket: &Path, req: &Request) -> Result<(Reply, UnixStream)> {
    let (reply, s) = request(socket, req).await?;
    if !reply.ok {
        return Err(Error::Internal(
            reply.error.unwrap_or_else(|| "the shim refused".into()),
        ));
    }
    Ok((reply, s))
}

/// What the shim left behind when it finished.
pub fn read_exit_file(path: &Path) -> Option<ExitStatus> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The file names of one container's shim.
pub struct Paths {
    pub socket: PathBuf,
    pub exit_file: PathBuf,
}
