//! `midge pub`, `midge sub` and `midge rr`: drop-in replacements for `mosquitto_pub`,
//! `mosquitto_sub` and `mosquitto_rr` (2.0.11): the same options, output and exit codes, over
//! Midge's client library, against any MQTT broker.
//!
//! | module | what |
//! |---|---|
//! | `client_args` | the one table of flags the three tools share; parsing and checks |
//! | `connect` | client options from the flags, the first connection, failures and exit codes |
//! | `debug` | `-d`: libmosquitto's debug lines, from the client's packet observer |
//! | `format` | how `sub` and `rr` print a message (`-F`, `-v`, `-N`, `--pretty`) |
//! | `mosq` | libmosquitto's texts and error numbers |
//! | `pub_cmd`, `sub_cmd`, `rr_cmd` | each tool's behaviour |
//! | `usage` | `--help`, `--version` |

pub(crate) mod client_args;
mod connect;
mod debug;
pub(crate) mod format;
mod mosq;
mod pub_cmd;
mod rr_cmd;
mod sub_cmd;
mod usage;

use std::ffi::OsString;
use std::process::ExitCode;

use client_args::{ArgError, Parsed, Tool};

/// Runs one tool with the arguments after its name; the exit status is Mosquitto's.
pub(crate) fn main(tool: Tool, args: &[OsString]) -> ExitCode {
    let config = match client_args::load(tool, args) {
        Ok(Parsed::Run(config)) => config,
        // Mosquitto exits with 1 after --help and --version too.
        Ok(Parsed::Help) => {
            let _ = connect::write_stdout(usage::usage(tool).as_bytes());
            return ExitCode::from(1);
        }
        Ok(Parsed::Version) => {
            let _ = connect::write_stdout(usage::version(tool).as_bytes());
            return ExitCode::from(1);
        }
        Err(ArgError(message)) => {
            connect::eprint_bytes(message.as_bytes());
            connect::eprint_bytes(connect::usage_hint(tool).as_bytes());
            return ExitCode::from(1);
        }
    };
    let code = connect::block_on(async move {
        match tool {
            Tool::Pub => pub_cmd::run(*config).await,
            Tool::Sub => sub_cmd::run(*config).await,
            Tool::Rr => rr_cmd::run(*config).await,
        }
    });
    ExitCode::from(code)
}
