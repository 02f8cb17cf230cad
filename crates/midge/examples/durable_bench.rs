//! Durability measurements (issue 5): durable QoS 1 fan-in throughput, store size per queued
//! message, and start-up recovery time, against real broker processes.
//!
//! ```text
//! cargo build --release -p midge --bins --examples
//! target/release/examples/durable_bench all        # sync, periodic, none, mosquitto
//! target/release/examples/durable_bench throughput --port 1883 [options]
//! target/release/examples/durable_bench footprint [--messages 100000]
//! target/release/examples/durable_bench recovery [--messages 1000000] [--data DIR]
//! ```
//!
//! Throughput: `--publishers` (8) clients with clean sessions publish QoS 1 messages of
//! `--payload` (64) bytes to `bench/<n>`, each keeping `--window` (64) unacknowledged, for
//! `--seconds` (10); one persistent subscriber (Clean Session 0, `bench/#` at QoS 1) receives
//! and acknowledges them. Reported: PUBACKs per second (for midge in `sync` mode each PUBACK
//! means the message is on disk), the subscriber's rate, PUBACK latency, broker CPU time.
//! `all` starts each broker itself (`target/release/midge serve`, and Debian's
//! `/usr/sbin/mosquitto` with `persistence true`) with the same queue limits: no queue limit,
//! 100 messages in flight per subscriber.
//!
//! The clients are a minimal pipelined MQTT 3.1.1 implementation over `midge-proto` on one
//! thread (a current-thread Tokio runtime), so the load generator takes one core at most and
//! the broker has the other.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    missing_docs
)]

use std::cell::Cell;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use midge_proto::{
    Connect, Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS, Subscribe, SubscribeFilter,
    SubscriptionOptions, TopicFilter, TopicName,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

#[derive(Debug, Clone)]
struct Options {
    port: u16,
    publishers: usize,
    seconds: f64,
    payload: usize,
    window: usize,
    messages: u64,
    midge: PathBuf,
    mosquitto: PathBuf,
    /// `recovery`: keep (and reuse) the store in this directory.
    data: Option<PathBuf>,
}

fn parse() -> (String, Options) {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "all".into());
    let release = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut o = Options {
        port: 1883,
        publishers: 8,
        seconds: 10.0,
        payload: 64,
        window: 64,
        messages: 0,
        midge: release.join("midge"),
        mosquitto: PathBuf::from("/usr/sbin/mosquitto"),
        data: None,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => o.port = value.parse().unwrap(),
            "--publishers" => o.publishers = value.parse().unwrap(),
            "--seconds" => o.seconds = value.parse().unwrap(),
            "--payload" => o.payload = value.parse().unwrap(),
            "--window" => o.window = value.parse().unwrap(),
            "--messages" => o.messages = value.parse().unwrap(),
            "--midge" => o.midge = value.into(),
            "--mosquitto" => o.mosquitto = value.into(),
            "--data" => o.data = Some(value.into()),
            other => panic!("unknown option {other}"),
        }
    }
    (command, o)
}

fn main() {
    let (command, options) = parse();
    match command.as_str() {
        "throughput" => {
            let r = runtime().block_on(throughput(&options));
            println!("{}", r.line());
        }
        "all" => all(&options),
        "footprint" => footprint(&options),
        "recovery" => recovery(&options),
        other => panic!("unknown command {other}: throughput, all, footprint or recovery"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// A minimal pipelined MQTT 3.1.1 client.

struct Conn {
    stream: TcpStream,
    decoder: Decoder,
    rbuf: BytesMut,
}

impl Conn {
    async fn connect(port: u16, client_id: &str, clean: bool) -> Conn {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        let mut c = Conn {
            stream,
            decoder: Decoder::with_version(V311, midge_proto::PROTOCOL_MAX_PACKET_SIZE),
            rbuf: BytesMut::with_capacity(64 * 1024),
        };
        let mut connect = Connect::new(V311, client_id);
        connect.clean_start = clean;
        connect.keep_alive = 60;
        c.send(&Packet::Connect(Box::new(connect))).await;
        match c.next().await {
            Some(Packet::ConnAck(a)) if a.reason_code.0 == 0 => c,
            other => panic!("CONNACK: {other:?}"),
        }
    }

    async fn send(&mut self, p: &Packet) {
        let bytes = p.to_bytes(V311).unwrap();
        self.stream.write_all(&bytes).await.expect("write");
    }

    async fn next(&mut self) -> Option<Packet> {
        loop {
            if let Some(p) = self.decoder.decode(&mut self.rbuf).expect("decode") {
                return Some(p);
            }
            if self.stream.read_buf(&mut self.rbuf).await.ok()? == 0 {
                return None;
            }
        }
    }
}

/// A QoS 1 PUBLISH encoded once; `with_id` patches its packet identifier.
struct Template {
    bytes: Vec<u8>,
    id_at: usize,
}

impl Template {
    fn new(topic: &str, payload: usize) -> Template {
        let mut p = Publish::new(TopicName::new(topic).unwrap(), vec![0x42u8; payload]);
        p.qos = QoS::AtLeastOnce;
        p.packet_id = PacketId::new(1);
        let bytes = Packet::Publish(p).to_bytes(V311).unwrap().to_vec();
        let id_at = bytes.len() - payload - 2;
        Template { bytes, id_at }
    }

    fn push(&mut self, out: &mut Vec<u8>, id: u16) {
        self.bytes[self.id_at..self.id_at + 2].copy_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&self.bytes);
    }
}

// ---------------------------------------------------------------------------------------------
// Throughput.

#[derive(Debug, Default, Clone)]
struct Result {
    label: String,
    acked: u64,
    received: u64,
    publish_secs: f64,
    drain_secs: f64,
    latency_us: Vec<u32>,
    broker_cpu_secs: f64,
}

impl Result {
    fn rate(&self) -> f64 {
        self.acked as f64 / self.publish_secs
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latency_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latency_us.len() - 1) as f64 * p) as usize;
        f64::from(self.latency_us[i]) / 1000.0
    }

    fn line(&self) -> String {
        format!(
            "{}: {:.0} msg/s acknowledged ({} in {:.1} s), subscriber {:.0} msg/s ({} received, \
             drained {:.1} s after the last publish), PUBACK latency p50 {:.2} ms p99 {:.2} ms, \
             broker CPU {:.1} s ({:.1} µs/msg)",
            self.label,
            self.rate(),
            self.acked,
            self.publish_secs,
            self.received as f64 / (self.publish_secs + self.drain_secs),
            self.received,
            self.drain_secs,
            self.percentile(0.5),
            self.percentile(0.99),
            self.broker_cpu_secs,
            self.broker_cpu_secs * 1e6 / self.acked.max(1) as f64,
        )
    }
}

async fn subscriber(port: u16, received: Rc<Cell<u64>>, ready: tokio::sync::oneshot::Sender<()>) {
    let mut c = Conn::connect(port, "bench-sub", false).await;
    c.send(&Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(1).unwrap(),
        properties: Default::default(),
        filters: vec![SubscribeFilter {
            filter: TopicFilter::new("bench/#").unwrap(),
            options: SubscriptionOptions::qos(QoS::AtLeastOnce),
        }],
    }))
    .await;
    let mut ready = Some(ready);
    let mut acks = Vec::with_capacity(64 * 1024);
    loop {
        match c.decoder.decode(&mut c.rbuf).expect("decode") {
            Some(Packet::Publish(p)) => {
                if let Some(id) = p.packet_id {
                    let id = id.get().to_be_bytes();
                    acks.extend_from_slice(&[0x40, 0x02, id[0], id[1]]);
                }
                received.set(received.get() + 1);
                continue;
            }
            Some(Packet::SubAck(_)) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                continue;
            }
            Some(other) => panic!("subscriber got {other:?}"),
            None => {}
        }
        if !acks.is_empty() {
            if c.stream.write_all(&acks).await.is_err() {
                return;
            }
            acks.clear();
        }
        match c.stream.read_buf(&mut c.rbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn publisher(
    port: u16,
    n: usize,
    o: Options,
    deadline: Instant,
    limit: u64,
) -> (u64, Vec<u32>, Instant) {
    let mut c = Conn::connect(port, &format!("bench-pub-{n}"), true).await;
    let mut template = Template::new(&format!("bench/{n}"), o.payload);
    let mut sent_at = vec![Instant::now(); 65_536];
    let mut wbuf = Vec::with_capacity(o.window * template.bytes.len());
    let (mut inflight, mut sent, mut acked) = (0usize, 0u64, 0u64);
    let mut next_id: u16 = 0;
    let mut latency = Vec::with_capacity(1 << 20);
    let mut last_ack = Instant::now();
    loop {
        let now = Instant::now();
        let sending = now < deadline && (limit == 0 || sent < limit);
        if !sending && inflight == 0 {
            break;
        }
        if sending {
            while inflight < o.window && (limit == 0 || sent < limit) {
                next_id = next_id % 65_535 + 1;
                template.push(&mut wbuf, next_id);
                sent_at[usize::from(next_id)] = now;
                inflight += 1;
                sent += 1;
            }
            c.stream.write_all(&wbuf).await.expect("write");
            wbuf.clear();
        }
        let read = tokio::time::timeout(Duration::from_secs(30), c.stream.read_buf(&mut c.rbuf));
        match read.await {
            Ok(Ok(n)) if n > 0 => {}
            other => panic!("publisher {n}: no PUBACK within 30 s ({other:?})"),
        }
        let now = Instant::now();
        while let Some(p) = c.decoder.decode(&mut c.rbuf).expect("decode") {
            if let Packet::PubAck(a) = p {
                assert!(a.reason_code.0 < 0x80, "PUBACK {a:?}");
                inflight -= 1;
                acked += 1;
                let at = sent_at[usize::from(a.packet_id.get())];
                latency.push(now.duration_since(at).as_micros() as u32);
                last_ack = now;
            }
        }
    }
    (acked, latency, last_ack)
}

async fn throughput(o: &Options) -> Result {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let received = Rc::new(Cell::new(0u64));
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::task::spawn_local(subscriber(o.port, received.clone(), tx));
            rx.await.expect("SUBACK");
            let start = Instant::now();
            let deadline = start + Duration::from_secs_f64(o.seconds);
            let per = if o.messages == 0 {
                0
            } else {
                o.messages.div_ceil(o.publishers as u64)
            };
            let tasks: Vec<_> = (0..o.publishers)
                .map(|n| tokio::task::spawn_local(publisher(o.port, n, o.clone(), deadline, per)))
                .collect();
            let mut r = Result::default();
            let mut last = start;
            for t in tasks {
                let (acked, lat, at) = t.await.expect("publisher");
                r.acked += acked;
                r.latency_us.extend(lat);
                last = last.max(at);
            }
            r.publish_secs = last.duration_since(start).as_secs_f64();
            let drain_deadline = Instant::now() + Duration::from_secs(60);
            while received.get() < r.acked && Instant::now() < drain_deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            r.drain_secs = last.elapsed().as_secs_f64();
            r.received = received.get();
            r.latency_us.sort_unstable();
            r
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Broker processes.

struct Broker {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    log: PathBuf,
    /// midge logs "listening for MQTT" once its store is recovered (its port is bound
    /// before); mosquitto is ready when its port accepts.
    midge: bool,
}

impl Broker {
    fn midge(o: &Options, durability: &str) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("midge.toml");
        std::fs::write(
            &config,
            "[limits]\nmax_queued_messages = 0\nmax_inflight_messages = 100\n",
        )
        .unwrap();
        let port = free_port();
        let log = dir.path().join("midge.log");
        let child = Command::new(&o.midge)
            .arg("serve")
            .arg("-c")
            .arg(&config)
            .args(["-p", &port.to_string(), "--durability", durability])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e} (cargo build --release -p midge)",
                    o.midge.display()
                )
            });
        let b = Broker {
            child,
            port,
            dir,
            log,
            midge: true,
        };
        b.wait_ready();
        b
    }

    fn mosquitto(o: &Options) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n\
                 persistence true\npersistence_location {}/\n\
                 max_queued_messages 0\nmax_inflight_messages 100\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let log = dir.path().join("mosquitto.log");
        let child = Command::new(&o.mosquitto)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", o.mosquitto.display()));
        let b = Broker {
            child,
            port,
            dir,
            log,
            midge: false,
        };
        b.wait_ready();
        b
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
            || (self.midge
                && !std::fs::read_to_string(&self.log)
                    .unwrap_or_default()
                    .contains("listening for MQTT"))
        {
            assert!(
                Instant::now() < deadline,
                "broker did not start:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// User + system CPU seconds so far.
    fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // Fields 14 and 15 (utime, stime) counted from 1 including pid and comm.
        (ticks(11) + ticks(12)) / 100.0
    }

    fn rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// SIGTERM, wait; returns the log and the broker's directory (still there).
    fn stop(mut self) -> (String, tempfile::TempDir) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            self.dir,
        )
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_against(mut broker: Broker, label: &str, o: &Options) -> Result {
    let mut o = o.clone();
    o.port = broker.port;
    let cpu = broker.cpu_secs();
    let mut r = runtime().block_on(throughput(&o));
    r.broker_cpu_secs = broker.cpu_secs() - cpu;
    r.label = label.to_owned();
    let _ = &mut broker;
    let (log, _) = broker.stop();
    if let Some(line) = log.lines().find(|l| l.contains("store writer stopped")) {
        println!("  {}", line.split("INFO ").last().unwrap_or(line));
    }
    r
}

fn all(o: &Options) {
    println!(
        "durable QoS 1 fan-in: {} publishers x window {} -> 1 persistent subscriber, {} B payload, {} s",
        o.publishers, o.window, o.payload, o.seconds
    );
    let mut results = Vec::new();
    for mode in ["sync", "periodic", "none"] {
        let r = run_against(Broker::midge(o, mode), &format!("midge {mode}"), o);
        println!("{}", r.line());
        results.push(r);
    }
    let r = run_against(Broker::mosquitto(o), "mosquitto 2.0 (persistence true)", o);
    println!("{}", r.line());
    let mosquitto = r.rate();
    results.push(r);
    println!();
    println!(
        "| broker | acknowledged msg/s | vs mosquitto | subscriber msg/s | PUBACK p50 / p99 | broker CPU µs/msg |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {:.0} | {:.2}× | {:.0} | {:.2} / {:.2} ms | {:.1} |",
            r.label,
            r.rate(),
            r.rate() / mosquitto,
            r.received as f64 / (r.publish_secs + r.drain_secs),
            r.percentile(0.5),
            r.percentile(0.99),
            r.broker_cpu_secs * 1e6 / r.acked.max(1) as f64
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Store size per queued message.

fn disk_usage(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    (m.len(), m.blocks() * 512)
}

fn footprint(o: &Options) {
    let messages = if o.messages == 0 { 100_000 } else { o.messages };
    let broker = Broker::midge(o, "sync");
    let store = broker.dir.path().join("data").join("store.redb");
    // The persistent subscriber subscribes, then goes away: everything queues for it.
    runtime().block_on(async {
        let mut c = Conn::connect(broker.port, "bench-sub", false).await;
        c.send(&Packet::Subscribe(Subscribe {
            packet_id: PacketId::new(1).unwrap(),
            properties: Default::default(),
            filters: vec![SubscribeFilter {
                filter: TopicFilter::new("bench/#").unwrap(),
                options: SubscriptionOptions::qos(QoS::AtLeastOnce),
            }],
        }))
        .await;
        assert!(matches!(c.next().await, Some(Packet::SubAck(_))));
        c.send(&Packet::Disconnect(Default::default())).await;
    });
    std::thread::sleep(Duration::from_millis(200));
    let before = disk_usage(&store);
    let mut opts = o.clone();
    opts.port = broker.port;
    opts.messages = messages;
    opts.seconds = 3600.0;
    let local = tokio::task::LocalSet::new();
    let rt = runtime();
    let t = Instant::now();
    let acked = rt.block_on(local.run_until(async {
        let per = messages.div_ceil(opts.publishers as u64);
        let deadline = Instant::now() + Duration::from_secs(3600);
        let tasks: Vec<_> = (0..opts.publishers)
            .map(|n| tokio::task::spawn_local(publisher(opts.port, n, opts.clone(), deadline, per)))
            .collect();
        let mut acked = 0;
        for t in tasks {
            acked += t.await.unwrap().0;
        }
        acked
    }));
    let secs = t.elapsed().as_secs_f64();
    let (_, dir) = broker.stop();
    let after = disk_usage(&dir.path().join("data").join("store.redb"));
    println!(
        "footprint: {acked} QoS 1 messages of {} B queued for one offline persistent session \
         (sync, {:.0} msg/s): store file {} -> {} bytes = {:.0} B/message; blocks allocated \
         {} -> {} bytes = {:.0} B/message",
        o.payload,
        acked as f64 / secs,
        before.0,
        after.0,
        (after.0 - before.0) as f64 / acked as f64,
        before.1,
        after.1,
        (after.1.saturating_sub(before.1)) as f64 / acked as f64,
    );
}

// ---------------------------------------------------------------------------------------------
// Recovery time.

fn build_store(dir: &Path, messages: u64, payload: usize) {
    use midge_store::{
        DeliveryState, Op, RedbStore, Store, StoreOptions, StoredDelivery, StoredMessage,
        StoredSession, StoredSubscription,
    };
    let t = Instant::now();
    let store = RedbStore::open(StoreOptions::in_dir(dir)).unwrap();
    store
        .apply(
            &[Op::PutSession {
                client_id: "bench-sub".into(),
                session: StoredSession {
                    expiry_interval: u32::MAX,
                    disconnected_at_ms: Some(1_700_000_000_000),
                    subscriptions: vec![StoredSubscription {
                        filter: "bench/#".into(),
                        options: SubscriptionOptions::qos(QoS::AtLeastOnce),
                        identifier: None,
                    }],
                    awaiting_pubrel: Vec::new(),
                    will: None,
                },
            }],
            true,
        )
        .unwrap();
    let body = bytes::Bytes::from(vec![0x42u8; payload]);
    let mut id = 1;
    while id <= messages {
        let end = (id + 20_000).min(messages + 1);
        let mut ops = Vec::with_capacity(2 * (end - id) as usize);
        for i in id..end {
            let mut publish = Publish::new(
                TopicName::new(format!("bench/{}", i % 8)).unwrap(),
                body.clone(),
            );
            publish.qos = QoS::AtLeastOnce;
            ops.push(Op::PutMessage {
                id: i,
                message: StoredMessage {
                    publish,
                    expires_at_ms: None,
                    origin: Some(format!("bench-pub-{}", i % 8)),
                },
            });
            ops.push(Op::PutDelivery {
                client_id: "bench-sub".into(),
                seq: i - 1,
                delivery: StoredDelivery {
                    message_id: i,
                    qos: 1,
                    retain: false,
                    subscription_ids: Vec::new(),
                    shared: None,
                    state: DeliveryState::Queued,
                },
            });
        }
        store.apply(&ops, end > messages).unwrap();
        id = end;
    }
    println!(
        "built a store with {messages} queued messages of {payload} B in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

fn recovery(o: &Options) {
    let messages = if o.messages == 0 {
        1_000_000
    } else {
        o.messages
    };
    let dir = tempfile::tempdir().unwrap();
    let data = o.data.clone().unwrap_or_else(|| dir.path().join("data"));
    if !data.join("store.redb").exists() {
        build_store(&data, messages, o.payload);
    }
    let (size, blocks) = disk_usage(&data.join("store.redb"));
    println!("store file {size} bytes ({blocks} allocated)");
    // Drop the page cache's copy when allowed (root), so the first start reads from disk.
    let cold = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    for round in 1..=3 {
        let port = free_port();
        let log = dir.path().join(format!("recovery-{round}.log"));
        let t = Instant::now();
        let child = Command::new(&o.midge)
            .args(["serve", "-p", &port.to_string(), "--data-dir"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let broker = Broker {
            child,
            port,
            dir: tempfile::tempdir().unwrap(),
            log: log.clone(),
            midge: true,
        };
        broker.wait_ready();
        let wall = t.elapsed();
        let rss = broker.rss_mib();
        let (text, _) = broker.stop();
        let line = text
            .lines()
            .find(|l| l.contains("store recovered"))
            .unwrap_or("(no recovery line)");
        println!(
            "round {round}{}: listening after {:.2} s, RSS {rss:.0} MiB; {}",
            if round == 1 && cold {
                " (cold cache)"
            } else {
                ""
            },
            wall.as_secs_f64(),
            line.split("INFO ").last().unwrap_or(line)
        );
    }
}
