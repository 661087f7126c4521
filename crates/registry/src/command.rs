//! The `serve` and `gc` command line, shared by the `berth-registry` binary and `berth registry`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::gc::GcReport;
use crate::{AuthConfig, Config, TlsConfig};

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum AuthMode {
    /// HTTP Basic against the htpasswd file.
    Basic,
    /// Bearer tokens from the built-in /token endpoint (credentials from the htpasswd file).
    Token,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve an OCI distribution registry (until SIGINT/SIGTERM).
    Serve(ServeArgs),
    /// Remove blobs no manifest of any repository references (run with the server stopped).
    Gc {
        #[arg(long)]
        root: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: SocketAddr,
    /// Where blobs and repositories are kept.
    #[arg(long)]
    pub root: PathBuf,
    /// bcrypt htpasswd file; without it, no authentication.
    #[arg(long)]
    pub htpasswd: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "basic", requires = "htpasswd")]
    pub auth: AuthMode,
    /// Token audience (`service=` in challenges).
    #[arg(long, default_value = "berth-registry")]
    pub service: String,
    /// PEM certificate chain (with --tls-key: serve HTTPS).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServeArgs {
    pub fn into_config(self) -> Config {
        let auth = match (self.htpasswd, self.auth) {
            (None, _) => AuthConfig::None,
            (Some(htpasswd), AuthMode::Basic) => AuthConfig::Basic { htpasswd },
            (Some(htpasswd), AuthMode::Token) => AuthConfig::Token {
                htpasswd,
                service: self.service,
            },
        };
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig { cert, key }),
            _ => None,
        };
        Config {
            addr: self.addr,
            root: self.root,
            auth,
            tls,
        }
    }
}

/// The one line `gc` prints.
pub fn gc_summary(report: &GcReport) -> String {
    format!(
        "removed {} blobs ({} bytes), {} dangling links, {} stale uploads",
        report.removed_blobs.len(),
        report.freed_bytes,
        report.removed_links,
        report.removed_uploads
    )
}
