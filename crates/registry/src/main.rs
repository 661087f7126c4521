//! `berth-registry serve|gc`: the registry server until `berth registry` wraps it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_registry::{AuthConfig, Config, TlsConfig};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "berth-registry", about = "OCI distribution registry server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthMode {
    /// HTTP Basic against the htpasswd file.
    Basic,
    /// Bearer tokens from the built-in /token endpoint (credentials from the htpasswd file).
    Token,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry.
    Serve {
        #[arg(long, default_value = "127.0.0.1:5000")]
        addr: SocketAddr,
        #[arg(long)]
        root: PathBuf,
        /// bcrypt htpasswd file; without it, no authentication.
        #[arg(long)]
        htpasswd: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "basic", requires = "htpasswd")]
        auth: AuthMode,
        /// Token audience (`service=` in challenges).
        #[arg(long, default_value = "berth-registry")]
        service: String,
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Remove blobs no manifest of any repository references (run with the server stopped).
    Gc {
        #[arg(long)]
        root: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // A closed stderr must not bring the server down (eprintln! would panic).
        .log_internal_errors(false)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-registry: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> berth_registry::Result<()> {
    match cli.command {
        Command::Serve {
            addr,
            root,
            htpasswd,
            auth,
            service,
            tls_cert,
            tls_key,
        } => {
            let auth = match (htpasswd, auth) {
                (None, _) => AuthConfig::None,
                (Some(htpasswd), AuthMode::Basic) => AuthConfig::Basic { htpasswd },
                (Some(htpasswd), AuthMode::Token) => AuthConfig::Token { htpasswd, service },
            };
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(TlsConfig { cert, key }),
                _ => None,
            };
            let config = Config {
                addr,
                root,
                auth,
                tls,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| berth_registry::Error::Io {
                    context: "start async runtime".into(),
                    source: e,
                })?;
            runtime.block_on(berth_registry::serve(config))
        }
        Command::Gc { root } => {
            let report = berth_registry::gc(&root)?;
            println!(
                "removed {} blobs ({} bytes), {} dangling links, {} stale uploads",
                report.removed_blobs.len(),
                report.freed_bytes,
                report.removed_links,
                report.removed_uploads
            );
            Ok(())
        }
    }
}
