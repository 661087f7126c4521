//! The parent/child conversation while a container is set up, over a SOCK_SEQPACKET socketpair:
//! message boundaries are kept, so one `send` is one message.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::socket::{
    recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};

use crate::error::{Context, Error, Result};

#[derive(Debug)]
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
    /// child → parent: the seccomp notify fd, for the agent at `linux.seccomp.listenerPath`.
    SeccompListener(OwnedFd),
    /// child → parent: a sandbox (see `Runtime::create_sandbox`) is set up but for its
    /// process; waiting for `Process`.
    Sandboxed,
    /// parent → child: the process to run in the sandbox (the spec's `process`, as JSON).
    Process(Vec<u8>),
}

/// The largest message; a longer one would be cut (SOCK_SEQPACKET).
pub(crate) const MAX_MSG: usize = 64 * 1024;

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
            Msg::SeccompListener(_) => vec![b'S'],
            Msg::Sandboxed => vec![b'B'],
            Msg::Process(json) => {
                let mut v = vec![b'P'];
                v.extend_from_slice(json);
                v
            }
        }
    }

    fn decode(b: &[u8], fd: Option<OwnedFd>) -> Result<Msg> {
        if b.first() == Some(&b'S') {
            return fd
                .map(Msg::SeccompListener)
                .ok_or_else(|| Error::Other("seccomp listener message without an fd".into()));
        }
        match b.first() {
            Some(b'G') => Ok(Msg::Go(b[1..].to_vec())),
            Some(b'H') => Ok(Msg::RunCreateHooks),
            Some(b'D') => Ok(Msg::HooksDone),
            Some(b'R') => Ok(Msg::Ready),
            Some(b'F') => Ok(Msg::Failed(String::from_utf8_lossy(&b[1..]).into_owned())),
            Some(b'B') => Ok(Msg::Sandboxed),
            Some(b'P') => Ok(Msg::Process(b[1..].to_vec())),
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

    /// Send the seccomp listener fd (SCM_RIGHTS); it arrives as `Msg::SeccompListener`.
    pub fn send_listener(&self, fd: BorrowedFd) -> Result<()> {
        let bytes = [b'S'];
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .ctx(|| "send the seccomp listener to the runtime".to_string())?;
        Ok(())
    }

    /// Next message, or None when the other side closed (exited, or exec'ed: the fd is CLOEXEC).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) if m.bytes == 0 => return Ok(None),
                Ok(m) => {
                    let mut fd = None;
                    for c in m
                        .cmsgs()
                        .map_err(|e| Error::sys("read control message", e))?
                    {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            // SAFETY: the kernel just installed these fds in our table; we own them.
                            fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
                        }
                    }
                    let n = m.bytes;
                    return Msg::decode(&buf[..n], fd).map(Some);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ECONNRESET) => return Ok(None),
                Err(e) => return Err(Error::sys("read from the container process", e)),
            }
        }
    }

    /// Wait for exactly `want`; a Failed message becomes the child's error.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if std::mem::discriminant(&m) == std::mem::discriminant(&want) => Ok(()),
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
