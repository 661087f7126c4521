//! Bridging a shim stream (frames) and a client connection (Docker's attach/exec stream): the
//! client's bytes go to the process's stdin, the frames come back multiplexed (no tty) or raw.

use berth_shim::frame::{parse_header, HEADER_LEN};
use berth_shim::{STREAM_EXIT, STREAM_STDERR, STREAM_STDOUT};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    /// Raw bytes (a terminal) instead of Docker's 8-byte multiplexed frames.
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// Pump until the shim ends the stream; returns the exit code when it sent one (exec).
/// The caller closes `to_client` (after recording the exit code, which clients ask for as soon
/// as the stream ends).
pub async fn pump<R, W>(
    shim: UnixStream,
    mut from_client: R,
    to_client: &mut W,
    opts: StreamOptions,
) -> Option<i32>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (mut shim_r, mut shim_w) = shim.into_split();
    let input = async {
        if opts.stdin {
            let _ = tokio::io::copy(&mut from_client, &mut shim_w).await;
        }
        // Half-close: the shim sees EOF on stdin (and closes it for StdinOnce).
        let _ = shim_w.shutdown().await;
        std::future::pending::<()>().await
    };
    let output = async {
        let mut header = [0u8; HEADER_LEN];
        let mut payload = Vec::new();
        let mut code = None;
        while shim_r.read_exact(&mut header).await.is_ok() {
            let (stream, len) = parse_header(&header);
            payload.resize(len, 0);
            if shim_r.read_exact(&mut payload).await.is_err() {
                break;
            }
            let wanted = match stream {
                STREAM_STDOUT => opts.stdout,
                STREAM_STDERR => opts.stderr,
                STREAM_EXIT => {
                    code = std::str::from_utf8(&payload)
                        .ok()
                        .and_then(|s| s.parse().ok());
                    continue;
                }
                _ => false,
            };
            if !wanted {
                continue;
            }
            let written = if opts.tty {
                to_client.write_all(&payload).await
            } else {
                match to_client.write_all(&header).await {
                    Ok(()) => to_client.write_all(&payload).await,
                    Err(e) => Err(e),
                }
            };
            if written.is_err() || to_client.flush().await.is_err() {
                break;
            }
        }
        code
    };
    let code = tokio::select! {
        code = output => code,
        _ = input => None,
    };
    drain(&mut from_client).await;
    code
}

/// Read and drop what the client already sent and nobody will read now (say, a terminal's
/// answer to an escape sequence, arriving after the process exited): a unix socket closed with
/// unread data resets the connection, and the client would see ECONNRESET instead of the end
/// of the stream. Never waits for more.
async fn drain<R: AsyncRead + Unpin>(from_client: &mut R) {
    let mut buf = [0u8; 4096];
    for _ in 0..64 {
        // One poll of the read: only bytes already there are taken. (Not a zero timeout: its
        // timer only fires at the next millisecond tick, which every stream's end would wait.)
        let got = std::future::poll_fn(|cx| {
            let mut rb = tokio::io::ReadBuf::new(&mut buf);
            match std::pin::Pin::new(&mut *from_client).poll_read(cx, &mut rb) {
                std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(rb.filled().len()),
                std::task::Poll::Ready(Err(_)) | std::task::Poll::Pending => {
                    std::task::Poll::Ready(0)
                }
            }
        })
        .await;
        if got == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draining never waits, not even for a timer tick: with nothing (or a little) unread,
    /// it is done at its first poll.
    #[tokio::test]
    async fn draining_is_done_at_once() {
        for unread in [&b""[..], &b"tail"[..]] {
            let (mut client, mut ours) = UnixStream::pair().expect("socketpair");
            client.write_all(unread).await.expect("write");
            tokio::task::yield_now().await;
            let drained = std::pin::pin!(drain(&mut ours));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(
                std::future::Future::poll(drained, &mut cx).is_ready(),
                "drain waited ({} bytes unread)",
                unread.len()
            );
        }
    }

    /// What the client sent last is read before the connection closes: it sees the end of the
    /// stream, not a reset.
    #[tokio::test]
    async fn unread_client_bytes_are_drained_so_the_close_is_not_a_reset() {
        for drained in [false, true] {
            let (mut client, mut ours) = UnixStream::pair().expect("socketpair");
            client.write_all(b"\x1b[30;1R").await.expect("write");
            tokio::task::yield_now().await;
            if drained {
                drain(&mut ours).await;
            }
            drop(ours);
            let mut buf = [0u8; 16];
            let read = client.read(&mut buf).await;
            if drained {
                assert_eq!(read.expect("end of stream, not an error"), 0);
            } else {
                // The kernel's behaviour this guards against.
                assert_eq!(
                    read.expect_err("a reset").kind(),
                    std::io::ErrorKind::ConnectionReset
                );
            }
        }
    }
}
