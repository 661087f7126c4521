//! berthd: open the engine, serve the Docker Engine API on a unix socket, stop on SIGTERM/SIGINT.
//! Containers keep running when berthd stops (their shims hold them); the next berthd re-adopts.

use std::path::PathBuf;

use clap::Parser;

mod network_flags;
mod registry_flags;

#[derive(Parser, Debug)]
#[command(
    name = "berthd",
    version,
    about = "The berth daemon (Docker Engine API on a unix socket)"
)]
struct Args {
    /// Persistent state: database, images, containers.
    #[arg(long, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Runtime state: sockets, shim state.
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Where to listen (unix:///path). Default: <exec-root>/berth.sock.
    #[arg(short = 'H', long = "host")]
    host: Option<String>,
    /// The berth-shim binary (default: next to berthd, then $PATH).
    #[arg(long)]
    shim: Option<PathBuf>,
    /// daemon.json (Docker's keys; registry settings are read). Default /etc/berth/daemon.json.
    #[arg(long)]
    config_file: Option<PathBuf>,
    #[command(flatten)]
    registry: registry_flags::RegistryFlags,
    #[command(flatten)]
    network: network_flags::NetworkFlags,
    /// Log filter (tracing's EnvFilter syntax), e.g. "debug".
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn socket_path(args: &Args) -> Result<PathBuf, String> {
    match &args.host {
        None => Ok(args.exec_root.join("berth.sock")),
        Some(h) => match h.strip_prefix("unix://") {
            Some(p) => Ok(PathBuf::from(p)),
            None if h.starts_with('/') => Ok(PathBuf::from(h)),
            None => Err(format!("-H {h}: only unix:// sockets are supported")),
        },
    }
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let socket = match socket_path(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("berthd: {e}");
            std::process::exit(2);
        }
    };
    // Two workers are plenty: berthd mostly waits on sockets.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthd: start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(args, socket)) {
        eprintln!("berthd: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args, socket: PathBuf) -> Result<(), String> {
    let engine = berth_engine::Engine::open(berth_engine::Config {
        data_root: args.data_root.clone(),
        exec_root: args.exec_root.clone(),
        shim_binary: args.shim.clone(),
        registry: args.registry.resolve(args.config_file.as_deref())?,
        network: args.network.resolve(args.config_file.as_deref())?,
    })
    .await
    .map_err(|e| e.to_string())?;
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket)
        .map_err(|e| format!("listen on {}: {e}", socket.display()))?;
    tracing::info!("berthd listening on unix://{}", socket.display());
    let shutdown = async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        let mut int = match signal(SignalKind::interrupt()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down; containers keep running");
    };
    // On a worker thread, not this one: a connection's task then starts on the thread that
    // accepted it instead of waking another.
    let served = tokio::spawn(berth_api::server::serve(listener, engine.clone(), shutdown)).await;
    if let Err(e) = served {
        tracing::error!("the API server stopped: {e}");
    }
    engine.shut_down();
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
