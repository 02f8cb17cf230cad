//! `midge serve`: run the broker.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use midge_broker::config::ListenerConfig;
use midge_broker::{Config, Server};

/// Options of `midge serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Configuration file (TOML).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Port of the MQTT listener (overrides the configuration's first listener).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: Option<u16>,
    /// Address of the MQTT listener (default 127.0.0.1: loopback only).
    #[arg(long = "bind", value_name = "ADDR")]
    bind: Option<IpAddr>,
    /// Verbose logging (debug level); `RUST_LOG` overrides.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Print the configuration in force as TOML and exit.
    #[arg(long = "print-config")]
    print_config: bool,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.verbose);
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if args.port.is_some() || args.bind.is_some() {
        if config.listeners.is_empty() {
            config.listeners.push(ListenerConfig::default());
        }
        let first = &mut config.listeners[0];
        let ip = args.bind.unwrap_or(first.bind.ip());
        let port = args.port.unwrap_or(first.bind.port());
        first.bind = SocketAddr::new(ip, port);
    }
    config.validate()?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    for l in &config.listeners {
        if !l.bind.ip().is_loopback() {
            tracing::warn!(
                bind = %l.bind,
                "listener is reachable from other machines and allows anonymous clients; \
                 authentication arrives with password files (issue 7)"
            );
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = Server::bind(config).await?;
        server.run(shutdown_signal()).await;
        Ok(())
    })
}

fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
