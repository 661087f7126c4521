//! The runtime's own end of a console socket, for `run`/`exec` in the foreground with a terminal
//! and no --console-socket: we listen, the container sends its pty master, we proxy it.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result};
use crate::tty;

pub struct LocalConsole {
    pub path: PathBuf,
    listener: UnixListener,
}

impl LocalConsole {
    pub fn new(root: &Path, id: &str) -> Result<LocalConsole> {
        std::fs::create_dir_all(root).ctx(|| format!("create {}", root.display()))?;
        let path = root.join(format!(".console-{id}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).ctx(|| format!("listen on {}", path.display()))?;
        Ok(LocalConsole { path, listener })
    }

    /// Wait for the container to connect and send its pty master.
    pub fn accept_master(&self) -> Result<OwnedFd> {
        let (conn, _) = self
            .listener
            .accept()
            .ctx(|| format!("accept on {}", self.path.display()))?;
        tty::recv_pty_master(conn.as_fd())
    }
}

impl Drop for LocalConsole {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
