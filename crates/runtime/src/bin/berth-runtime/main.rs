//! `berth-runtime`: an OCI runtime with runc's command line, so containerd, CRI-O and Kubernetes
//! can drive it.

mod cli;
mod commands;
mod logging;

use clap::Parser;

fn main() {
    // Before anything else (and before any thread exists): run from a sealed copy of ourselves.
    if let Err(e) = berth_runtime::selfexe::ensure_sealed() {
        eprintln!("berth-runtime: cannot re-execute from a sealed copy of itself: {e}");
        std::process::exit(1);
    }
    let cli = cli::Cli::parse();
    let log = logging::init(cli.log.as_deref(), &cli.log_format, cli.debug);
    match commands::dispatch(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            log.error(&e.to_string());
            std::process::exit(1);
        }
    }
}
