//! berth's registry server: the OCI distribution spec v1.1 over HTTP(S).
//!
//! - `http`: routing and handlers (pull, push, mount, tags, referrers, catalog, deletes, `/token`).
//! - `storage`: blobs in berth-image's `ContentStore`, per-repository links, upload sessions.
//! - `manifest`: validation of pushed manifests.
//! - `auth`: none, basic (bcrypt htpasswd) or bearer tokens issued by the built-in `/token`.
//! - `server`: the accept loop, TLS with rustls.
//! - `gc`: removal of blobs no manifest references.
//!
//! `berth registry serve` calls [`serve`]; tests call [`start`] to get a running server on an
//! ephemeral port.

pub mod api_error;
pub mod auth;
pub mod error;
pub mod gc;
pub mod http;
pub mod manifest;
pub mod names;
pub mod server;
pub mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use auth::AuthConfig;
pub use error::{Error, Result};
pub use gc::{collect as gc, GcReport};

/// Certificate chain and private key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub addr: SocketAddr,
    pub root: PathBuf,
    pub auth: AuthConfig,
    pub tls: Option<TlsConfig>,
}

/// A server started by [`start`]: where it listens; dropping it (or `stop`) stops accepting.
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stop accepting connections and wait for the accept loop to end.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Open the storage, bind `config.addr` (port 0 picks one) and serve in a background task.
pub async fn start(config: Config) -> Result<RunningServer> {
    let storage = storage::Storage::open(&config.root)?;
    let uploads = storage::Uploads::new(storage.uploads_dir());
    let auth = auth::Auth::new(&config.auth, &config.root)?;
    let tls = match &config.tls {
        Some(t) => Some(server::tls_acceptor(&t.cert, &t.key)?),
        None => None,
    };
    let state = Arc::new(http::State {
        storage,
        uploads,
        auth,
        scheme: if tls.is_some() { "https" } else { "http" },
    });
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::Io {
            context: format!("bind {}", config.addr),
            source: e,
        })?;
    let addr = listener.local_addr().map_err(|e| Error::Io {
        context: "local address".into(),
        source: e,
    })?;
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(server::accept_loop(listener, tls, state, stop_rx));
    Ok(RunningServer {
        addr,
        stop,
        task: Some(task),
    })
}

/// Serve until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    let server = start(config).await?;
    tracing::info!(addr = %server.addr, "registry listening");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::Io {
            context: "install SIGTERM handler".into(),
            source: e,
        })?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}
