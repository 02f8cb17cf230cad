//! The `midge` command: one binary, one module per subcommand.

mod bench;
mod passwd;
mod serve;
mod tools;

use std::ffi::OsString;
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
    /// MQTT load generator: throughput, latency, loss and memory of any broker.
    #[command(disable_help_flag = true)]
    Bench(bench::BenchArgs),
    /// Manage a password file (mosquitto_passwd's interface and format).
    #[command(disable_help_flag = true)]
    Passwd {
        /// mosquitto_passwd arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Publish a message (mosquitto_pub's options, messages and exit codes; see --help).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Pub {
        /// mosquitto_pub arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Subscribe and print messages (mosquitto_sub's options, output and exit codes).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Sub {
        /// mosquitto_sub arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Send a request and print the response (mosquitto_rr's options, output and exit codes).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Rr {
        /// mosquitto_rr arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Passwd { args } => return passwd::run(&args),
        Command::Pub { args } => return tools::main(tools::client_args::Tool::Pub, &args),
        Command::Sub { args } => return tools::main(tools::client_args::Tool::Sub, &args),
        Command::Rr { args } => return tools::main(tools::client_args::Tool::Rr, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("midge: {err:#}");
            ExitCode::FAILURE
        }
    }
}
