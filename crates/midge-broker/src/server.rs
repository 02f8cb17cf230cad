//! Listeners and the server's lifecycle: bind, accept, shut down cleanly.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::Authenticator;
use crate::broker::Shared;
use crate::config::Config;
use crate::connection;
use crate::stats::Stats;

/// A bound, not yet running broker.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<TcpListener>,
}

impl Server {
    /// Binds every configured listener.
    pub async fn bind(config: Config) -> io::Result<Server> {
        Server::bind_with(config, None).await
    }

    /// Binds with a custom authenticator (the default allows every client).
    pub async fn bind_with(
        config: Config,
        authenticator: Option<Arc<dyn Authenticator>>,
    ) -> io::Result<Server> {
        let mut listeners = Vec::new();
        for l in &config.listeners {
            let listener = TcpListener::bind(l.bind).await.map_err(|e| {
                io::Error::new(e.kind(), format!("cannot listen on {}: {e}", l.bind))
            })?;
            listeners.push(listener);
        }
        let started = std::time::Instant::now();
        let store =
            crate::persist::open(&config.store).map_err(|e| io::Error::other(e.to_string()))?;
        let (persistence, snapshot) = match store {
            Some((p, s)) => (Some(p), Some(s)),
            None => (None, None),
        };
        let read = started.elapsed();
        let shared = Arc::new(Shared::new(config, authenticator, persistence));
        if let Some(snapshot) = snapshot {
            let (sessions, queued, retained) = shared.recover(snapshot);
            let elapsed = started.elapsed();
            tracing::info!(
                path = %shared.config.store.data_dir.display(),
                sessions,
                queued,
                retained,
                elapsed_ms = elapsed.as_millis() as u64,
                read_ms = read.as_millis() as u64,
                rebuild_ms = (elapsed - read).as_millis() as u64,
                "store recovered"
            );
        }
        Ok(Server { shared, listeners })
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// A handle to the broker's counters.
    pub fn stats(&self) -> BrokerHandle {
        BrokerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `shutdown` completes, then tells every client (MQTT 5: DISCONNECT 0x8B
    /// Server shutting down), waits up to five seconds for connections to close, and returns.
    ///
    /// Wills are not published on a clean server shutdown: MQTT 5.0 §3.1.2.5 lists when a
    /// will must be sent (network or protocol failure, keep-alive timeout, a client that
    /// closes without DISCONNECT), and a server stopping on request is none of them.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for listener in self.listeners {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "listening for MQTT");
            }
            tasks.spawn(accept_loop(listener, self.shared.clone(), stop_rx.clone()));
        }
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        // Commit what the connections wrote while closing, then release the store file.
        if let Some(store) = &self.shared.store {
            let writer = store.writer.clone();
            let status = writer.clone();
            let _ = tokio::task::spawn_blocking(move || writer.shutdown()).await;
            let status = status.status();
            tracing::info!(
                commits = status.commits,
                ops = status.ops,
                ops_per_commit = status.ops / status.commits.max(1),
                commit_ms_total = status.commit_micros / 1000,
                commit_us_avg = status.commit_micros / status.commits.max(1),
                store_bytes = status.store_bytes,
                "store writer stopped"
            );
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection::serve(shared.clone(), stream, peer, stop.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}

/// Read access to a running broker, for tests and the future admin API.
#[derive(Debug, Clone)]
pub struct BrokerHandle {
    shared: Arc<Shared>,
}

impl BrokerHandle {
    /// The broker's counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Number of sessions (connected and offline).
    pub fn session_count(&self) -> usize {
        self.shared.registry.len()
    }

    /// Number of subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.shared.index.len()
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        self.shared.retained.read().len()
    }
}
