//! A minimal seccomp agent for tests: accepts one connection on the `listenerPath` socket and
//! takes the container process state (JSON) and the seccomp notify fd sent with SCM_RIGHTS.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use serde_json::Value;

/// Wait for the runtime to hand over the notify fd; returns the state it sent and the fd.
pub fn accept_listener_fd(listener: &UnixListener) -> (Value, OwnedFd) {
    let (conn, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 16384];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: fds just received are new and ours.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let n = msg.bytes;
    let state = serde_json::from_slice(&buf[..n]).unwrap();
    (state, fd.expect("no seccomp fd received"))
}

/// Answer the next notification on `fd` with `-errno`; returns (syscall number, args).
pub fn answer_next_with_errno(fd: &OwnedFd, errno: i32) -> (libseccomp::ScmpSyscall, [u64; 6]) {
    let req = libseccomp::ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
    libseccomp::ScmpNotifResp::new(req.id, 0, -errno, 0)
        .respond(fd.as_raw_fd())
        .unwrap();
    (req.data.syscall, req.data.args)
}
