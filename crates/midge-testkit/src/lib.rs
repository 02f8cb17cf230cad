//! # midge-testkit
//!
//! Helpers for Midge's tests: start a real broker in-process on `127.0.0.1:0`, and talk to it
//! packet by packet with [`RawClient`] to check exact behaviour and malformed input.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use midge_broker::{BrokerHandle, Config, Server};
use midge_proto::{
    Connect, DecodeError, Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS, Subscribe,
    SubscribeFilter, SubscriptionOptions, TopicFilter, TopicName,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// How long a test waits for an expected packet before failing.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A broker running in the test's runtime. Dropping it shuts the broker down.
#[derive(Debug)]
pub struct TestBroker {
    /// The MQTT listener's address.
    pub addr: SocketAddr,
    /// Counters and sizes.
    pub handle: BrokerHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The store's directory, removed when the broker is dropped (unless the test chose its
    /// own `store.data_dir`).
    _data_dir: Option<tempfile::TempDir>,
}

impl TestBroker {
    /// Starts a broker with the default configuration on an ephemeral loopback port.
    pub async fn start() -> TestBroker {
        TestBroker::start_with(Config::default()).await
    }

    /// Starts a broker with `config`; its listeners are replaced by one on 127.0.0.1:0, and
    /// unless the test set `store.data_dir` the store lives in a fresh temporary directory.
    pub async fn start_with(mut config: Config) -> TestBroker {
        let mut listener = config.listeners.first().cloned().unwrap_or_default();
        listener.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        config.listeners = vec![listener];
        let data_dir = TestBroker::use_temp_store(&mut config);
        let server = Server::bind(config).await.expect("bind 127.0.0.1:0");
        let mut broker = TestBroker::from_server(server);
        broker._data_dir = data_dir;
        broker
    }

    /// Points a default `store.data_dir` at a new temporary directory (kept alive by the
    /// returned guard).
    pub fn use_temp_store(config: &mut Config) -> Option<tempfile::TempDir> {
        if config.store.data_dir != midge_broker::config::StoreConfig::default().data_dir {
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary store directory");
        config.store.data_dir = dir.path().to_owned();
        Some(dir)
    }

    /// Runs an already bound server (e.g. one with a custom authenticator).
    pub fn from_server(server: Server) -> TestBroker {
        let addr = server.local_addrs()[0];
        let handle = server.stats();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestBroker {
            addr,
            handle,
            stop: Some(stop),
            task: Some(task),
            _data_dir: None,
        }
    }

    /// Shuts the broker down and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Connects a raw client (no CONNECT sent yet).
    pub async fn raw(&self, version: ProtocolVersion) -> RawClient {
        RawClient::open(self.addr, version).await
    }

    /// Connects a raw client and completes CONNECT with `client_id` and Clean Start.
    pub async fn client(&self, version: ProtocolVersion, client_id: &str) -> RawClient {
        let mut c = self.raw(version).await;
        c.connect(Connect::new(version, client_id)).await;
        c
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A client that sends and receives whole packets (or raw bytes), for exact checks.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    decoder: Decoder,
    buf: BytesMut,
    /// The version used to encode and decode.
    pub version: ProtocolVersion,
}

impl RawClient {
    /// Opens a TCP connection.
    pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> RawClient {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to test broker");
        stream.set_nodelay(true).expect("nodelay");
        RawClient {
            stream,
            decoder: Decoder::with_version(version, midge_proto::PROTOCOL_MAX_PACKET_SIZE),
            buf: BytesMut::new(),
            version,
        }
    }

    /// Sends CONNECT and expects a successful CONNACK; returns it.
    pub async fn connect(&mut self, connect: Connect) -> midge_proto::ConnAck {
        self.send(&Packet::Connect(Box::new(connect))).await;
        match self.recv().await {
            Packet::ConnAck(ack) => {
                assert_eq!(
                    ack.reason_code,
                    midge_proto::ReasonCode::SUCCESS,
                    "CONNACK {ack:?}"
                );
                ack
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Encodes and sends a packet.
    pub async fn send(&mut self, packet: &Packet) {
        let bytes = packet.to_bytes(self.version).expect("encode");
        self.send_raw(&bytes).await;
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next packet, failing the test after [`TIMEOUT`].
    pub async fn recv(&mut self) -> Packet {
        match self.try_recv(TIMEOUT).await {
            Ok(Some(p)) => p,
            Ok(None) => panic!("connection closed while waiting for a packet"),
            Err(e) => panic!("{e}"),
        }
    }

    /// The next packet within `timeout`: `Ok(None)` if the connection closed, `Err` on
    /// timeout or a decode error.
    pub async fn try_recv(&mut self, timeout: Duration) -> Result<Option<Packet>, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(p)) => return Ok(Some(p)),
                Ok(None) => {}
                Err(e) => return Err(format!("decode error: {e}")),
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Err(format!("no packet within {timeout:?}")),
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Asserts nothing arrives within `wait`.
    pub async fn expect_nothing(&mut self, wait: Duration) {
        if let Ok(Some(p)) = self.try_recv(wait).await {
            panic!("expected no packet, got {p:?}");
        }
    }

    /// Waits for the broker to close the connection, returning any packets it sent first
    /// (e.g. an MQTT 5 DISCONNECT).
    pub async fn expect_closed(&mut self) -> Vec<Packet> {
        let mut got = Vec::new();
        loop {
            match self.try_recv(TIMEOUT).await {
                Ok(None) => return got,
                Ok(Some(p)) => got.push(p),
                Err(e) if e.starts_with("decode") => return got,
                Err(e) => panic!("connection not closed: {e}; got {got:?}"),
            }
        }
    }

    /// Subscribes to one filter and checks the SUBACK grants `qos`.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
        let id = PacketId::new(0xABCD).expect("non-zero");
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: id,
            properties: Default::default(),
            filters: vec![SubscribeFilter {
                filter: TopicFilter::new(filter).expect("valid filter"),
                options: SubscriptionOptions::qos(qos),
            }],
        }))
        .await;
        match self.recv().await {
            Packet::SubAck(ack) => {
                assert_eq!(ack.packet_id, id);
                assert_eq!(ack.reason_codes, vec![midge_proto::ReasonCode(qos.as_u8())]);
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes at QoS 0.
    pub async fn publish0(&mut self, topic: &str, payload: &'static [u8]) {
        let p = Publish::new(TopicName::new(topic).expect("valid topic"), payload);
        self.send(&Packet::Publish(p)).await;
    }

    /// Receives the next packet and asserts it is a PUBLISH.
    pub async fn recv_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}

/// Decodes `bytes` as one packet (helper for table tests).
pub fn decode(bytes: &[u8], version: ProtocolVersion) -> Result<Packet, DecodeError> {
    Packet::decode(bytes, version)
}

impl RawClient {
    /// Reads exactly `expected.len()` bytes (after any already buffered) and asserts they are
    /// `expected`: for byte-exact checks of what the broker writes, independent of the decoder.
    pub async fn expect_raw_bytes(&mut self, expected: &[u8]) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while self.buf.len() < expected.len() {
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => panic!(
                    "expected {expected:02X?}, got only {:02X?} within {TIMEOUT:?}",
                    &self.buf[..]
                ),
                Ok(Ok(0)) | Ok(Err(_)) => panic!(
                    "connection closed: expected {expected:02X?}, got {:02X?}",
                    &self.buf[..]
                ),
                Ok(Ok(_)) => {}
            }
        }
        let got = self.buf.split_to(expected.len());
        assert_eq!(&got[..], expected, "bytes from the broker");
    }
}
