//! The `midge` command: one binary, one module per subcommand.

mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Midge: an MQTT broker and toolset.
#[derive(Debug, Parser)]
#[command(name = "midge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the MQTT broker.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("midge: {err:#}");
            ExitCode::FAILURE
        }
    }
}
