//! The parent/child conversation while a container is set up, over a SOCK_SEQPACKET socketpair:
//! message boundaries are kept, so one `send` is one message.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

use crate::error::{Context, Error, Result};

#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// parent → child: ids are mapped and the process is in its cgroup; go on. Carries the
    /// container's state JSON for the hooks the child runs.
    Go(Vec<u8>),
    /// child → parent: the mounts are ready; run the createRuntime (and prestart) hooks now.
    RunCreateHooks,
    /// parent → child: those hooks ran.
    HooksDone,
    /// child → parent: setup finished; waiting for `start`.
    Ready,
    /// child → parent: setup failed with this message.
    Failed(String),
}

const MAX_MSG: usize = 64 * 1024;

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Go(state) => {
                let mut v = vec![b'G'];
                v.extend_from_slice(state);
                v
            }
            Msg::RunCreateHooks => vec![b'H'],
            Msg::HooksDone => vec![b'D'],
            Msg::Ready => vec![b'R'],
            Msg::Failed(m) => {
                let mut v = vec![b'F'];
                v.extend_from_slice(&m.as_bytes()[..m.len().min(MAX_MSG - 1)]);
                v
            }
        }
    }

    fn decode(b: &[u8]) -> Result<Msg> {
        match b.first() {
            Some(b'G') => Ok(Msg::Go(b[1..].to_vec())),
            Some(b'H') => Ok(Msg::RunCreateHooks),
            Some(b'D') => Ok(Msg::HooksDone),
            Some(b'R') => Ok(Msg::Ready),
            Some(b'F') => Ok(Msg::Failed(String::from_utf8_lossy(&b[1..]).into_owned())),
            _ => Err(Error::Other(format!("unexpected sync message {b:?}"))),
        }
    }
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel(pub OwnedFd);

/// A connected pair: (parent's end, child's end). Both close on exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "create sync socketpair".to_string())?;
    Ok((Channel(a), Channel(b)))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        send(self.0.as_raw_fd(), &msg.encode(), MsgFlags::MSG_NOSIGNAL)
            .ctx(|| format!("send {msg:?} to the container process"))?;
        Ok(())
    }

    /// Next message, or None when the other side closed (exited, or exec'ed: the fd is CLOEXEC).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; MAX_MSG];
        loop {
            match recv(self.0.as_fd().as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => return Msg::decode(&buf[..n]).map(Some),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ECONNRESET) => return Ok(None),
                Err(e) => return Err(Error::sys("read from the container process", e)),
            }
        }
    }

    /// Wait for exactly `want`; a Failed message becomes the child's error.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Failed(m)) => Err(Error::ChildFailed(m)),
            Some(m) => Err(Error::Other(format!(
                "expected {want:?} from the container process, got {m:?}"
            ))),
            None => Err(Error::ChildFailed(format!(
                "the container process exited before sending {want:?}"
            ))),
        }
    }
}
