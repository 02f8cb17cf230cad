//! Shared test helpers: options, bounded waits, a packet-inspecting TCP proxy, brokers on a
//! fixed port, and Debian's mosquitto.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use midge_broker::config::{DurabilityMode, ListenerConfig, StoreConfig};
use midge_broker::{Config, Server};
use midge_client::{
    ClientError, ConnectOptions, Event, Events, Message, ProtocolVersion, ReconnectOptions,
};
use midge_proto::{Decoder, PROTOCOL_MAX_PACKET_SIZE, Packet, PacketType};
use midge_testkit::TestBroker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// Options for `addr` with fast, deterministic reconnection.
pub fn options(addr: SocketAddr, version: ProtocolVersion, client_id: &str) -> ConnectOptions {
    ConnectOptions::tcp(addr.ip().to_string(), addr.port())
        .protocol_version(version)
        .client_id(client_id)
        .reconnect(fast_reconnect())
}

pub fn fast_reconnect() -> ReconnectOptions {
    ReconnectOptions::default()
        .initial_backoff(Duration::from_millis(50))
        .max_backoff(Duration::from_millis(200))
        .jitter(false)
}

/// The next message, skipping other events; fails the test after [`WAIT`].
pub async fn next_message(events: &mut Events) -> Message {
    tokio::time::timeout(WAIT, events.next_message())
        .await
        .expect("timed out waiting for a message")
        .expect("events ended")
}

/// Asserts that no message arrives within `wait`.
pub async fn no_message(events: &mut Events, wait: Duration) {
    if let Ok(Some(m)) = tokio::time::timeout(wait, events.next_message()).await {
        panic!("unexpected message {m:?}");
    }
}

/// Waits for an event matching `pred`, returning it.
pub async fn wait_event(events: &mut Events, mut pred: impl FnMut(&Event) -> bool) -> Event {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.recv().await.expect("events ended");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

/// Waits until `cond` holds, polling.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn connected(e: &Event) -> bool {
    matches!(e, Event::Connected(_))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A Midge broker on a fixed loopback port (to stop and start again on the same address).
/// Unless `config` names a store directory, nothing is stored (`durability = "none"`), so a
/// restart loses every session.
pub async fn broker_on(port: u16, mut config: Config) -> TestBroker {
    if config.store.data_dir == StoreConfig::default().data_dir {
        config.store.durability = DurabilityMode::None;
    }
    config.listeners = vec![ListenerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], port)),
        ..ListenerConfig::default()
    }];
    let mut last = None;
    for _ in 0..50 {
        match Server::bind(config.clone()).await {
            Ok(server) => return TestBroker::from_server(server),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot bind port {port}: {last:?}");
}

/// What the proxy saw.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Every packet from client to server, in order.
    pub to_server: Vec<Packet>,
    /// Every packet from server to client, in order (including those swallowed).
    pub from_server: Vec<Packet>,
    /// QoS 1 PUBLISH identifiers sent by the client and not yet acknowledged by the server.
    pub outstanding: HashSet<u16>,
    /// The most that were ever outstanding at once.
    pub max_outstanding: usize,
    /// Connections accepted and forwarded.
    pub connections: usize,
}

#[derive(Debug)]
struct ProxyShared {
    upstream: SocketAddr,
    open: AtomicBool,
    swallow_downstream: AtomicBool,
    kill: watch::Sender<u64>,
    stats: Mutex<ProxyStats>,
}

/// A TCP proxy between a client and a broker that decodes the traffic with midge-proto,
/// counts outstanding QoS 1 publishes, and can refuse connections, drop the server's
/// packets or cut connections.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<ProxyShared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.kill();
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(ProxyShared {
            upstream,
            open: AtomicBool::new(true),
            swallow_downstream: AtomicBool::new(false),
            kill: watch::channel(0).0,
            stats: Mutex::new(ProxyStats::default()),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !s.open.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(s.upstream).await else {
                    continue;
                };
                s.stats.lock().expect("lock").connections += 1;
                tokio::spawn(pipe(client, server, s.clone()));
            }
        });
        Proxy { addr, shared, task }
    }

    /// Accept (true) or refuse (false) new connections.
    pub fn set_open(&self, open: bool) {
        self.shared.open.store(open, Ordering::SeqCst);
    }

    /// Drop (true) or forward (false) everything the server sends.
    pub fn set_swallow_downstream(&self, swallow: bool) {
        self.shared
            .swallow_downstream
            .store(swallow, Ordering::SeqCst);
    }

    /// Closes every open connection.
    pub fn kill(&self) {
        self.shared.kill.send_modify(|n| *n += 1);
    }

    pub fn stats<T>(&self, f: impl FnOnce(&ProxyStats) -> T) -> T {
        f(&self.shared.stats.lock().expect("lock"))
    }
}

async fn pipe(mut client: TcpStream, mut server: TcpStream, shared: Arc<ProxyShared>) {
    let mut kill = shared.kill.subscribe();
    let mut up_decoder = Decoder::server(PROTOCOL_MAX_PACKET_SIZE);
    let mut down_decoder: Option<Decoder> = None;
    let (mut up_buf, mut down_buf) = (BytesMut::new(), BytesMut::new());
    let (mut cbuf, mut sbuf) = (vec![0u8; 65536], vec![0u8; 65536]);
    loop {
        tokio::select! {
            _ = kill.changed() => return,
            n = client.read(&mut cbuf) => {
                let Ok(n @ 1..) = n else { return };
                up_buf.extend_from_slice(&cbuf[..n]);
                {
                    let mut stats = shared.stats.lock().expect("lock");
                    while let Ok(Some(p)) = up_decoder.decode(&mut up_buf) {
                        if down_decoder.is_none()
                            && let Some(v) = up_decoder.version()
                        {
                            down_decoder = Some(Decoder::with_version(v, PROTOCOL_MAX_PACKET_SIZE));
                        }
                        if let Packet::Publish(publish) = &p
                            && publish.qos == midge_proto::QoS::AtLeastOnce
                            && let Some(id) = publish.packet_id
                        {
                            stats.outstanding.insert(id.get());
                            stats.max_outstanding =
                                stats.max_outstanding.max(stats.outstanding.len());
                        }
                        stats.to_server.push(p);
                    }
                }
                if server.write_all(&cbuf[..n]).await.is_err() { return; }
            }
            n = server.read(&mut sbuf) => {
                let Ok(n @ 1..) = n else { return };
                if let Some(decoder) = &mut down_decoder {
                    down_buf.extend_from_slice(&sbuf[..n]);
                    let mut stats = shared.stats.lock().expect("lock");
                    while let Ok(Some(p)) = decoder.decode(&mut down_buf) {
                        if let Packet::PubAck(ack) = &p {
                            // Counted before it is forwarded, so the client can never have
                            // fewer outstanding than this proxy believes.
                            stats.outstanding.remove(&ack.packet_id.get());
                        }
                        stats.from_server.push(p);
                    }
                }
                if shared.swallow_downstream.load(Ordering::SeqCst) {
                    continue;
                }
                if client.write_all(&sbuf[..n]).await.is_err() { return; }
            }
        }
    }
}

/// The PUBLISH packets the client sent through the proxy.
pub fn publishes(stats: &ProxyStats) -> Vec<midge_proto::Publish> {
    stats
        .to_server
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

pub fn count_type(stats: &ProxyStats, t: PacketType) -> usize {
    stats
        .to_server
        .iter()
        .filter(|p| p.packet_type() == t)
        .count()
}

/// Debian's mosquitto on a loopback port, killed (by PID) when dropped.
#[derive(Debug)]
pub struct Mosquitto {
    pub port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

impl Mosquitto {
    pub fn available() -> bool {
        Path::new(MOSQUITTO).exists()
    }

    pub async fn start(port: u16) -> Mosquitto {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("write config");
        let mut m = Mosquitto {
            port,
            child: None,
            _dir: dir,
        };
        m.spawn(&conf).await;
        m
    }

    async fn spawn(&mut self, conf: &Path) {
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        eventually_async("mosquitto to listen", || async move {
            TcpStream::connect(addr).await.is_ok()
        })
        .await;
    }

    /// Kills the broker (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same configuration.
    pub async fn restart(&mut self) {
        self.kill();
        let conf = self._dir.path().join("mosquitto.conf");
        self.spawn(&conf).await;
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn eventually_async<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Unwraps a `Result<_, ClientError>` with the error in the panic message.
pub fn ok<T>(r: Result<T, ClientError>) -> T {
    r.unwrap_or_else(|e| panic!("client error: {e}"))
}

/// How many packets of type `t` the server sent.
pub fn count_from_server(stats: &ProxyStats, t: PacketType) -> usize {
    stats
        .from_server
        .iter()
        .filter(|p| p.packet_type() == t)
        .count()
}
