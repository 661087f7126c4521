//! runc's console-socket wire format: one `sendmsg` on a connected AF_UNIX socket whose data is
//! the master's file name ("/dev/ptmx", shorter than 4096 bytes) and whose ancillary data is a
//! single SCM_RIGHTS message carrying exactly one descriptor, the pty master. Receivers such as
//! containerd's shim (runc's `utils.RecvFd`) insist on that exact shape.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::{Context, Error, Result};

/// The name runc sends along with the master (the name it opened it by).
pub const PTY_MASTER_NAME: &str = "/dev/ptmx";
/// runc's `MaxNameLen`: receivers read at most this much data with the descriptor.
const MAX_NAME_LEN: usize = 4096;
/// Room for the ancillary data of a few descriptors (one is expected; extras are closed).
const CONTROL_BYTES: usize = 128;

#[repr(C, align(8))]
struct ControlBuffer([u8; CONTROL_BYTES]);

/// Connect to the console socket runc's `--console-socket` names. Paths longer than a sockaddr
/// allows are reached through their directory's /proc/self/fd entry.
pub fn connect_console_socket(path: &Path) -> Result<OwnedFd> {
    let context = || format!("connect to console socket {}", path.display());
    let stream = match UnixStream::connect(path) {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => connect_long(path).ctx(context)?,
        other => other.ctx(context)?,
    };
    Ok(OwnedFd::from(stream))
}

fn connect_long(path: &Path) -> io::Result<UnixStream> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let dir = std::fs::File::open(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    })?;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    UnixStream::connect(short)
}

/// Send `master` over `sock` exactly as runc does. Makes no allocation on success, so it can run
/// in a freshly forked child.
pub fn send_pty_master(sock: BorrowedFd, master: BorrowedFd) -> Result<()> {
    let name = PTY_MASTER_NAME.as_bytes();
    let mut iov = libc::iovec {
        iov_base: name.as_ptr() as *mut libc::c_void,
        iov_len: name.len(),
    };
    let mut control = ControlBuffer([0; CONTROL_BYTES]);
    // SAFETY: msghdr is plain data; every pointer stored in it outlives the sendmsg call, and the
    // control buffer is aligned and large enough for CMSG_SPACE(sizeof(int)).
    let sent = unsafe {
        let mut msg: libc::msghdr = zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(
            libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
            master.as_raw_fd(),
        );
        loop {
            let n = libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL);
            if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break n;
            }
        }
    };
    if sent < 0 {
        return Err(Error::io(
            "send the pty master over the console socket",
            io::Error::last_os_error(),
        ));
    }
    if sent as usize != name.len() {
        return Err(Error::Console(format!(
            "console socket took {sent} of {} bytes of the pty master message",
            name.len()
        )));
    }
    Ok(())
}

/// Receive a pty master sent with SCM_RIGHTS (by [`send_pty_master`], runc, or anything speaking
/// the console-socket protocol). The descriptor comes back close-on-exec.
pub fn recv_pty_master(sock: BorrowedFd) -> Result<OwnedFd> {
    let mut name = [0u8; MAX_NAME_LEN];
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr().cast(),
        iov_len: name.len(),
    };
    let mut control = ControlBuffer([0; CONTROL_BYTES]);
    // SAFETY: msghdr is plain data; its pointers stay valid for the recvmsg call.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = CONTROL_BYTES as _;
    let received = loop {
        // SAFETY: msg describes valid, writable buffers.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(Error::io(
                "receive the pty master from the console socket",
                err,
            ));
        }
    };
    // Take ownership first so every descriptor is closed on any error below.
    let mut fds = received_fds(&msg);
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(Error::Console(
            "console socket message carried more descriptors than expected".into(),
        ));
    }
    match (fds.len(), received) {
        (1, _) => Ok(fds.remove(0)),
        (0, 0) => Err(Error::Console(
            "console socket closed before a pty master arrived".into(),
        )),
        (n, _) => Err(Error::Console(format!(
            "console socket message {:?} carried {n} descriptors; expected one pty master",
            String::from_utf8_lossy(&name[..received.min(MAX_NAME_LEN)])
        ))),
    }
}

/// The SCM_RIGHTS descriptors in a received message, now owned by us.
fn received_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of cmsg headers; the
    // CMSG_* helpers stay within that range, and SCM_RIGHTS payloads are arrays of ints.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let payload = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..payload / size_of::<libc::c_int>() {
                    let fd = std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    fds
}
