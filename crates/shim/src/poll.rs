//! A thin poll(2) wrapper: register descriptors with a token, get back the ready tokens.

use std::os::fd::RawFd;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    Listener,
    Signals,
    Output(usize),
    Client(usize),
    ExecOutput(usize, usize),
    ExecClient(usize),
}

#[derive(Default)]
pub struct PollSet {
    fds: Vec<libc::pollfd>,
    tokens: Vec<Token>,
}

impl PollSet {
    pub fn clear(&mut self) {
        self.fds.clear();
        self.tokens.clear();
    }

    pub fn add(&mut self, fd: RawFd, token: Token) {
        self.fds.push(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        self.tokens.push(token);
    }

    /// Block until something is ready or `timeout_ms` passed (-1: no limit); returns the ready
    /// tokens (none after a timeout).
    pub fn wait(&mut self, timeout_ms: i32) -> std::io::Result<Vec<Token>> {
        loop {
            // SAFETY: fds is a valid array of pollfd for its length.
            let n = unsafe {
                libc::poll(
                    self.fds.as_mut_ptr(),
                    self.fds.len() as libc::nfds_t,
                    timeout_ms,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            return Ok(self
                .fds
                .iter()
                .zip(&self.tokens)
                .filter(|(f, _)| f.revents != 0)
                .map(|(_, t)| *t)
                .collect());
        }
    }
}
