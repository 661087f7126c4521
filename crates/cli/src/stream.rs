//! Docker's attach/exec/logs streams on the client side: demultiplex the 8-byte framed stream
//! to stdout/stderr, or copy raw bytes (tty); copy our stdin to the connection.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Copy frames to stdout/stderr (or raw bytes to stdout) until EOF.
pub async fn demux<R: AsyncRead + Unpin>(mut r: R, tty: bool) -> std::io::Result<()> {
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    if tty {
        tokio::io::copy(&mut r, &mut stdout).await?;
        stdout.flush().await?;
        return Ok(());
    }
    let mut header = [0u8; 8];
    let mut payload = Vec::new();
    loop {
        match r.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        payload.resize(len, 0);
        r.read_exact(&mut payload).await?;
        if header[0] == 2 {
            stderr.write_all(&payload).await?;
            stderr.flush().await?;
        } else {
            stdout.write_all(&payload).await?;
            stdout.flush().await?;
        }
    }
    Ok(())
}

/// Our stdin to the connection, then half-close so the process sees EOF.
pub async fn feed_stdin<W: AsyncWrite + Unpin>(mut w: W) {
    let mut stdin = tokio::io::stdin();
    let _ = tokio::io::copy(&mut stdin, &mut w).await;
    let _ = w.shutdown().await;
}

/// Pump a hijacked connection both ways until the output ends.
pub async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    conn: S,
    tty: bool,
    stdin: bool,
) -> std::io::Result<()> {
    let (r, w) = tokio::io::split(conn);
    if stdin {
        let input = feed_stdin(w);
        tokio::pin!(input);
        let output = demux(r, tty);
        tokio::pin!(output);
        let mut input_done = false;
        loop {
            tokio::select! {
                res = &mut output => return res,
                _ = &mut input, if !input_done => input_done = true,
            }
        }
    } else {
        demux(r, tty).await
    }
}

/// Copy a downloaded body (`save`, `export`) to `path`, or to stdout without one.
pub async fn write_out<R: AsyncRead + Unpin>(
    mut body: R,
    path: Option<&str>,
    what: &str,
) -> Result<(), berth_api::client::ClientError> {
    let io = |e: std::io::Error| {
        berth_api::client::ClientError::Protocol(format!("write the {what}: {e}"))
    };
    match path {
        Some(path) => {
            let mut f = tokio::fs::File::create(path).await.map_err(io)?;
            tokio::io::copy(&mut body, &mut f).await.map_err(io)?;
        }
        None => {
            tokio::io::copy(&mut body, &mut tokio::io::stdout())
                .await
                .map_err(io)?;
        }
    }
    Ok(())
}
