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
pub mod command;
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
    _lock: std::fs::File,
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
    let lock = storage::fsutil::lock_root(&config.root, false)?;
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
    tokio::spawn(prune_uploads(state.clone(), stop_rx.clone()));
    let task = tokio::spawn(server::accept_loop(listener, tls, state, stop_rx));
    Ok(RunningServer {
        addr,
        _lock: lock,
        stop,
        task: Some(task),
    })
}

/// Upload sessions idle this long are discarded.
pub const UPLOAD_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

async fn prune_uploads(state: Arc<http::State>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(UPLOAD_IDLE_TIMEOUT / 6);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let st = state.clone();
        let pruned =
            tokio::task::spawn_blocking(move || st.uploads.prune_idle(UPLOAD_IDLE_TIMEOUT)).await;
        if let Ok(n @ 1..) = pruned {
            tracing::info!("discarded {n} idle upload sessions");
        }
    }
}

/// Serve until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Handlers first: a signal right after "listening" must already mean a clean stop.
    let handler = |kind: SignalKind| {
        signal(kind).map_err(|e| Error::Io {
            context: "install signal handler".into(),
            source: e,
        })
    };
    let mut term = handler(SignalKind::terminate())?;
    let mut int = handler(SignalKind::interrupt())?;
    let server = start(config).await?;
    tracing::info!(addr = %server.addr, "registry listening");
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}
