//! `midge serve`: run the broker.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use midge_broker::config::{DurabilityMode, ListenerConfig};
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
    /// Directory of the durable store (default ./midge-data).
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Durability: sync (default), periodic or none.
    #[arg(long = "durability", value_name = "MODE")]
    durability: Option<String>,
    /// Recover a damaged store: move it aside (keeping the copy), salvage what can be read
    /// into a fresh store, then start.
    #[arg(long = "repair")]
    repair: bool,
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
    if let Some(dir) = args.data_dir {
        config.store.data_dir = dir;
    }
    if let Some(mode) = &args.durability {
        config.store.durability = match mode.as_str() {
            "sync" => DurabilityMode::Sync,
            "periodic" => DurabilityMode::Periodic,
            "none" => DurabilityMode::None,
            other => anyhow::bail!("--durability must be sync, periodic or none, not {other:?}"),
        };
    }
    config.validate()?;
    if args.repair && config.store.durability != DurabilityMode::None {
        repair(&config)?;
    }
    if args.print_config {
        use std::io::Write;
        std::io::stdout()
            .write_all(config.to_toml().as_bytes())
            .context("cannot write to stdout")?;
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

/// `--repair`: keeps a copy of the damaged store and salvages what can be read.
fn repair(config: &Config) -> anyhow::Result<()> {
    let mut options = midge_store::StoreOptions::in_dir(&config.store.data_dir);
    options.cache_bytes = config.store.cache_mb.max(1) << 20;
    if !options.path.exists() {
        tracing::info!(path = %options.path.display(), "no store to repair");
        return Ok(());
    }
    match midge_store::RedbStore::open(options.clone()) {
        Ok(_) => {
            tracing::info!(path = %options.path.display(), "store is healthy; nothing to repair");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "repairing the store");
            let (copy, messages, sessions, retained) = midge_store::RedbStore::repair(&options)
                .with_context(|| format!("cannot repair {}", options.path.display()))?;
            tracing::warn!(
                damaged_copy = %copy.display(),
                messages,
                sessions,
                retained,
                "store repaired: the damaged file was kept; salvaged records were loaded into a new store"
            );
            Ok(())
        }
    }
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
