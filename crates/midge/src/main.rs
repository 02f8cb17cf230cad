//! The `midge` command: one binary, one module per subcommand.

mod passwd;
mod serve;
mod tools;

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
    /// Manage a password file (mosquitto_passwd's interface and format).
    #[command(disable_help_flag = true)]
    Passwd {
        /// mosquitto_passwd arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Passwd { args } => return passwd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("midge: {err:#}");
            ExitCode::FAILURE
        }
    }
}
