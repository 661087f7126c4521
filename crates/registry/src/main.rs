//! `berth-registry serve|gc`: the registry server until `berth registry` wraps it.

use std::process::ExitCode;

use berth_registry::command::{gc_summary, Command};
use clap::Parser;

#[derive(Parser)]
#[command(name = "berth-registry", about = "OCI distribution registry server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        Command::Serve(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| berth_registry::Error::Io {
                    context: "start async runtime".into(),
                    source: e,
                })?;
            runtime.block_on(berth_registry::serve(args.into_config()))
        }
        Command::Gc { root } => {
            println!("{}", gc_summary(&berth_registry::gc(&root)?));
            Ok(())
        }
    }
}
