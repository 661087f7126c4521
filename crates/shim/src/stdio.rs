//! The stdio of the container's processes: pipes (no terminal) or a pty master received over a
//! console socket. The runtime's clone inherits fds 0–2 of the shim, so the child's ends are put
//! there just for the duration of create/exec, then /dev/null again.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use berth_shim::{STREAM_STDERR, STREAM_STDOUT};

/// Our side of a process's stdio.
pub struct ProcessIo {
    /// Readers of the process's output, with the stream each one is.
    pub outputs: Vec<(File, u8)>,
    /// Writer to the process's stdin, when it has one.
    pub stdin: Option<File>,
    /// The pty master, for resize.
    pub master: Option<File>,
}

/// The process's side: what goes on fds 0, 1, 2.
pub struct ChildStdio {
    fds: [OwnedFd; 3],
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

fn dev_null() -> io::Result<OwnedFd> {
    Ok(File::options()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into())
}

/// Pipes for a process without a terminal; stdin is /dev/null unless `stdin`.
pub fn pipes(stdin: bool) -> io::Result<(ChildStdio, ProcessIo)> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (child_in, our_in) = if stdin {
        let (r, w) = pipe()?;
        (r, Some(File::from(w)))
    } else {
        (dev_null()?, None)
    };
    Ok((
        ChildStdio {
            fds: [child_in, out_w, err_w],
        },
        ProcessIo {
            outputs: vec![(out_r.into(), STREAM_STDOUT), (err_r.into(), STREAM_STDERR)],
            stdin: our_in,
            master: None,
        },
    ))
}

/// /dev/null on all three (a terminal process gets its pty from the runtime instead).
pub fn null_stdio() -> io::Result<ChildStdio> {
    Ok(ChildStdio {
        fds: [dev_null()?, dev_null()?, dev_null()?],
    })
}

/// Run `f` with `child` on fds 0–2, then put /dev/null back.
pub fn with_stdio<T>(child: &ChildStdio, f: impl FnOnce() -> T) -> io::Result<T> {
    for (target, fd) in child.fds.iter().enumerate() {
        // SAFETY: dup2 onto the standard descriptors of this single-threaded process.
        if unsafe { libc::dup2(fd.as_raw_fd(), target as i32) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let out = f();
    let null = dev_null()?;
    for target in 0..3 {
        // SAFETY: as above.
        unsafe { libc::dup2(null.as_raw_fd(), target) };
    }
    Ok(out)
}

/// A console socket the runtime connects to and sends the pty master over.
pub struct Console {
    pub path: PathBuf,
    listener: UnixListener,
}

impl Console {
    pub fn listen(path: &Path) -> io::Result<Console> {
        let _ = std::fs::remove_file(path);
        Ok(Console {
            path: path.to_path_buf(),
            listener: UnixListener::bind(path)?,
        })
    }

    /// Receive the master (the runtime already sent it during create/exec).
    pub fn receive(self) -> Result<ProcessIo, String> {
        let (conn, _) = self
            .listener
            .accept()
            .map_err(|e| format!("accept on {}: {e}", self.path.display()))?;
        let master = berth_runtime::tty::recv_pty_master(conn.as_fd())
            .map_err(|e| format!("receive the pty master: {e}"))?;
        let master = File::from(master);
        let reader = master
            .try_clone()
            .map_err(|e| format!("dup the pty master: {e}"))?;
        let writer = master
            .try_clone()
            .map_err(|e| format!("dup the pty master: {e}"))?;
        Ok(ProcessIo {
            outputs: vec![(reader, STREAM_STDOUT)],
            stdin: Some(writer),
            master: Some(master),
        })
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// TIOCSWINSZ on a pty master.
pub fn resize(master: &File, height: u16, width: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
