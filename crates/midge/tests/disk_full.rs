//! A full disk and a full store (issue 5), against `midge serve`.
//!
//! - Disk full: the broker's data directory is on a 2 MiB tmpfs this test mounts (as root, or
//!   in a private `unshare -rm` namespace into which the test re-runs itself; if neither works
//!   the test fails, it never skips). Persistent QoS 1 messages fill it until the PUBACK
//!   carries Quota exceeded (0x97) for an MQTT 5 publisher, and an MQTT 3.1.1 publisher (which
//!   has no negative PUBACK) is disconnected; the broker stays up, serves other clients and
//!   delivers every acknowledged message. A restart on the full disk starts or says why not.
//!   When space returns (the test deletes a filler file it wrote beside the store), new
//!   persistent messages are accepted again, without a restart.
//! - `store.max_store_bytes` (TOML, `-c`): the same refusal once the store reaches the limit,
//!   and acceptance again once the subscriber has consumed its queue.

mod interop_common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use interop_common::{MIDGE, Proc, free_port};
use midge_proto::{
    Connect, Decoder, Disconnect, Packet, PacketId, Property, ProtocolVersion, Publish, PublishAck,
    QoS, ReasonCode, Subscribe, SubscribeFilter, SubscriptionOptions, TopicFilter, TopicName,
};

const CHILD_ENV: &str = "MIDGE_DISK_FULL_CHILD";
const TEST_NAME: &str = "a_full_disk_refuses_persistent_messages_and_recovers";
const WAIT: Duration = Duration::from_secs(10);
/// Payload of the filling messages.
const CHUNK: usize = 8 * 1024;

/// A packet-level MQTT client over a blocking socket (exact reason codes, no retries).
struct Raw {
    stream: TcpStream,
    decoder: Decoder,
    buf: BytesMut,
    version: ProtocolVersion,
    next_id: u16,
}

impl Raw {
    /// Connects with a persistent session (`expiry` > 0; MQTT 3.1.1: Clean Session 0) or a
    /// clean one.
    fn connect(port: u16, version: ProtocolVersion, id: &str, expiry: u32) -> (Raw, bool) {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut raw = Raw {
            stream,
            decoder: Decoder::with_version(version, midge_proto::PROTOCOL_MAX_PACKET_SIZE),
            buf: BytesMut::new(),
            version,
            next_id: 0,
        };
        let mut connect = Connect::new(version, id);
        connect.clean_start = expiry == 0;
        if version.is_v5() && expiry > 0 {
            connect
                .properties
                .push(Property::SessionExpiryInterval(expiry));
        }
        raw.send(&Packet::Connect(Box::new(connect)));
        match raw.recv(WAIT) {
            Some(Packet::ConnAck(ack)) => {
                assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{ack:?}");
                (raw, ack.session_present)
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    fn send(&mut self, packet: &Packet) {
        let bytes = packet.to_bytes(self.version).expect("encode");
        self.stream.write_all(&bytes).expect("write");
    }

    /// The next packet; `None` if the connection closed. Panics on timeout.
    fn recv(&mut self, timeout: Duration) -> Option<Packet> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.decoder.decode(&mut self.buf).expect("decode") {
                return Some(p);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no packet within {timeout:?}");
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return None,
            }
        }
    }

    fn subscribe(&mut self, filter: &str) {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: PacketId::new(1).expect("non-zero"),
            properties: Default::default(),
            filters: vec![SubscribeFilter {
                filter: TopicFilter::new(filter).expect("filter"),
                options: SubscriptionOptions::qos(QoS::AtLeastOnce),
            }],
        }));
        match self.recv(WAIT) {
            Some(Packet::SubAck(a)) => assert_eq!(a.reason_codes, vec![ReasonCode(1)]),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes one QoS 1 message and returns the PUBACK's reason code, or `None` if the
    /// broker closed the connection instead.
    fn publish1(&mut self, topic: &str, payload: Bytes) -> Option<ReasonCode> {
        self.next_id = self.next_id % 60_000 + 1;
        let id = PacketId::new(self.next_id).expect("non-zero");
        let mut p = Publish::new(TopicName::new(topic).expect("topic"), payload);
        p.qos = QoS::AtLeastOnce;
        p.packet_id = Some(id);
        self.send(&Packet::Publish(p));
        match self.recv(WAIT)? {
            Packet::PubAck(a) => {
                assert_eq!(a.packet_id, id);
                Some(a.reason_code)
            }
            Packet::Disconnect(_) => None,
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }

    /// Receives and acknowledges every queued message until none comes for `quiet`; returns
    /// how many.
    fn consume(&mut self, quiet: Duration) -> usize {
        let mut n = 0;
        loop {
            self.stream.set_read_timeout(Some(quiet)).expect("timeout");
            if let Ok(Some(p)) = self.decoder.decode(&mut self.buf) {
                if let Packet::Publish(p) = p
                    && let Some(id) = p.packet_id
                {
                    self.send(&Packet::PubAck(PublishAck::new(id)));
                    n += 1;
                }
                continue;
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("connection closed while consuming"),
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(_) => return n,
            }
        }
    }

    fn disconnect(mut self) {
        self.send(&Packet::Disconnect(Disconnect::default()));
        let _ = self.recv(Duration::from_secs(2));
    }
}

/// `midge serve` with its data directory `data`, its log outside it.
struct Broker {
    proc: Proc,
    port: u16,
    log: std::path::PathBuf,
}

impl Broker {
    fn start(data: &Path, log: &Path, extra: &[&str]) -> Broker {
        let port = free_port();
        let mut cmd = Command::new(MIDGE);
        cmd.arg("serve")
            .args(["-p", &port.to_string()])
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(File::create(log).expect("log")));
        let mut proc = Proc::spawn(&mut cmd, "midge serve");
        let deadline = Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("listening for MQTT") {
                return Broker {
                    proc,
                    port,
                    log: log.to_owned(),
                };
            }
            if let Some(status) = proc.child.try_wait().expect("try_wait") {
                panic!("midge serve exited ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "midge serve did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.proc.child.try_wait().expect("try_wait") {
            panic!("{when}: midge serve died ({status}):\n{}", self.log());
        }
        let log = self.log();
        assert!(!log.contains("panicked"), "{when}: panic:\n{log}");
    }

    fn stop(mut self) {
        self.proc.signal("TERM");
        let status = self.proc.wait_timeout(Duration::from_secs(15));
        assert!(
            status.is_some_and(|s| s.success()),
            "midge serve after SIGTERM: {status:?}\n{}",
            self.log()
        );
    }
}

/// Publishes 8 KiB persistent messages (the offline session `sink` subscribes to `fill/#`)
/// until one is refused with Quota exceeded; returns how many were accepted.
fn fill(broker: &mut Broker, limit: usize) -> usize {
    let (mut publisher, _) = Raw::connect(broker.port, ProtocolVersion::V5, "filler", 0);
    let payload = Bytes::from(vec![0x5Au8; CHUNK]);
    for n in 0..limit {
        match publisher.publish1("fill/x", payload.clone()) {
            Some(ReasonCode::SUCCESS) => {}
            Some(ReasonCode::QUOTA_EXCEEDED) => {
                broker.assert_alive("after Quota exceeded");
                publisher.disconnect();
                return n;
            }
            other => panic!(
                "message {n}: PUBACK {other:?}, expected Success or 0x97\n{}",
                broker.log()
            ),
        }
    }
    panic!(
        "{limit} messages of {CHUNK} bytes never filled the store\n{}",
        broker.log()
    );
}

/// The store takes persistent messages again: a fresh MQTT 5 publisher gets PUBACK 0x00
/// within 10 s (retrying every 100 ms).
fn accepted_again(broker: &mut Broker, what: &str) {
    let (mut publisher, _) = Raw::connect(broker.port, ProtocolVersion::V5, "retry", 0);
    let deadline = Instant::now() + WAIT;
    loop {
        match publisher.publish1("fill/again", Bytes::from_static(b"again")) {
            Some(ReasonCode::SUCCESS) => break,
            Some(ReasonCode::QUOTA_EXCEEDED) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => panic!(
                "{what}: persistent messages still refused ({other:?}) after 10 s\n{}",
                broker.log()
            ),
        }
    }
    publisher.disconnect();
    broker.assert_alive(what);
}

/// MQTT 3.1.1 has no negative PUBACK: a persistent message the store cannot take closes the
/// connection (the client resends it later); nothing is acknowledged.
fn v311_publisher_is_disconnected(broker: &mut Broker) {
    let (mut v3, _) = Raw::connect(broker.port, ProtocolVersion::V3_1_1, "v3-filler", 0);
    let got = v3.publish1("fill/v3", Bytes::from(vec![1u8; CHUNK]));
    assert_eq!(got, None, "MQTT 3.1.1 publisher on a full store");
    broker.assert_alive("after disconnecting the MQTT 3.1.1 publisher");
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn a_full_disk_refuses_persistent_messages_and_recovers() {
    if std::env::var_os(CHILD_ENV).is_some() || is_root() {
        match Tmpfs::mount("2m") {
            Ok(fs) => return disk_full_scenario(fs.dir.path()),
            Err(e) if std::env::var_os(CHILD_ENV).is_some() => {
                panic!("cannot mount a tmpfs even in a private namespace: {e}")
            }
            Err(e) => eprintln!("as root but {e}; trying a private namespace"),
        }
    }
    // Not root (or mounting failed): re-run just this test in a private user and mount
    // namespace, where mounting a tmpfs is allowed.
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new("unshare")
        .args(["-rm"])
        .arg(&exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output();
    match out {
        Err(e) => panic!(
            "this test needs a small filesystem to fill: run it as root (to mount a tmpfs) \
             or where `unshare -rm` works; `unshare` could not be run: {e}"
        ),
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            eprintln!("{stdout}{stderr}");
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "the disk-full test failed (or could not get a private mount namespace: run \
                 it as root or where `unshare -rm` works): {}\n{stderr}",
                out.status
            );
        }
    }
}

fn disk_full_scenario(fs: &Path) {
    let logs = tempfile::tempdir().expect("tempdir");
    let data = fs.join("data");
    // Room the test can give back later.
    let filler = fs.join("filler");
    std::fs::write(&filler, vec![0u8; 384 * 1024]).expect("filler");
    let mut broker = Broker::start(&data, &logs.path().join("midge-1.log"), &[]);
    let (mut sink, _) = Raw::connect(broker.port, ProtocolVersion::V5, "sink", 3600);
    sink.subscribe("fill/#");
    sink.disconnect();

    let accepted = fill(&mut broker, 2000);
    eprintln!("disk full after {accepted} messages of {CHUNK} bytes");
    assert!(accepted > 10, "only {accepted} messages fit");
    let log = broker.log();
    assert!(
        log.contains("disk holding the store is full"),
        "the log says why messages are refused:\n{log}"
    );
    v311_publisher_is_disconnected(&mut broker);
    // Other clients are still served: QoS 0 needs no store.
    let (mut other, _) = Raw::connect(broker.port, ProtocolVersion::V5, "other", 0);
    other.subscribe("live/#");
    let mut p = Publish::new(TopicName::new("live/x").expect("topic"), "still here");
    p.qos = QoS::AtMostOnce;
    other.send(&Packet::Publish(p));
    match other.recv(WAIT) {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"still here"),
        got => panic!("QoS 0 on a full disk: {got:?}"),
    }
    other.disconnect();
    // Every acknowledged message is delivered, full disk or not. (The two refused because
    // their commit failed were already routed in memory and may arrive too: a refusal tells
    // the publisher the message is not safe, not that nobody saw it.)
    let (mut sink, present) = Raw::connect(broker.port, ProtocolVersion::V5, "sink", 3600);
    assert!(present);
    let consumed = sink.consume(Duration::from_millis(1500));
    assert!(
        (accepted..=accepted + 2).contains(&consumed),
        "{consumed} messages delivered from a full store, {accepted} acknowledged"
    );
    sink.disconnect();

    // A restart on the full disk: the broker starts, or says why it cannot.
    broker.stop();
    let log = logs.path().join("midge-2.log");
    let port = free_port();
    let mut cmd = Command::new(MIDGE);
    cmd.arg("serve")
        .args(["-p", &port.to_string()])
        .arg("--data-dir")
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(&log).expect("log")));
    let mut proc = Proc::spawn(&mut cmd, "midge serve");
    let deadline = Instant::now() + WAIT;
    let restarted = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listening for MQTT") {
            break Some(Broker {
                proc,
                port,
                log: log.clone(),
            });
        }
        if let Some(status) = proc.child.try_wait().expect("try_wait") {
            assert!(
                !status.success() && (text.contains("full") || text.contains("space")),
                "midge serve on a full disk exited ({status}) without saying why:\n{text}"
            );
            assert!(!text.contains("panicked"), "{text}");
            eprintln!("restart on a full disk refused, as explained:\n{text}");
            break None;
        }
        assert!(
            Instant::now() < deadline,
            "midge serve did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    // Space returns (a file beside the store is deleted): persistent messages are accepted
    // again, by the running broker or by a new start.
    std::fs::remove_file(&filler).expect("remove filler");
    let mut broker = match restarted {
        Some(b) => b,
        None => Broker::start(&data, &logs.path().join("midge-3.log"), &[]),
    };
    accepted_again(&mut broker, "after deleting the filler file");
    let (mut sink, present) = Raw::connect(broker.port, ProtocolVersion::V5, "sink", 3600);
    assert!(present, "the persistent session survived the full disk");
    // Deletions that could not be committed on the full disk come back as duplicates
    // (QoS 1 allows them); the new message arrives.
    assert!(sink.consume(Duration::from_millis(1500)) >= 1);
    sink.disconnect();
    broker.stop();
}

/// `store.max_store_bytes`: refused with 0x97 once the stored messages reach the limit (an
/// MQTT 3.1.1 publisher is disconnected); accepted again once the queue is consumed, and the
/// space freed inside the file is reused by the next round.
#[test]
fn max_store_bytes_refuses_with_quota_exceeded() {
    const LIMIT: usize = 2 * 1024 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("midge.toml");
    std::fs::write(&config, format!("[store]\nmax_store_bytes = {LIMIT}\n")).expect("config");
    let mut broker = Broker::start(
        &dir.path().join("data"),
        &dir.path().join("midge.log"),
        &["-c", config.to_str().expect("utf-8 path")],
    );
    let (mut sink, _) = Raw::connect(broker.port, ProtocolVersion::V5, "sink", 3600);
    sink.subscribe("fill/#");
    sink.disconnect();
    let accepted = fill(&mut broker, 1000);
    let store = dir.path().join("data").join("store.redb");
    let size = std::fs::metadata(&store).expect("store").len();
    eprintln!("store limit reached after {accepted} messages of {CHUNK} bytes; file {size} bytes");
    assert!(
        accepted * CHUNK >= LIMIT * 9 / 10 && accepted * CHUNK <= LIMIT + 2 * CHUNK,
        "{accepted} messages of {CHUNK} bytes for a limit of {LIMIT}"
    );
    v311_publisher_is_disconnected(&mut broker);
    let (mut sink, _) = Raw::connect(broker.port, ProtocolVersion::V5, "sink", 3600);
    let consumed = sink.consume(Duration::from_millis(1500));
    assert_eq!(consumed, accepted);
    sink.disconnect();
    accepted_again(&mut broker, "after the subscriber consumed its queue");
    // The room freed inside the file is used again: the second round fits as many messages
    // without the file growing much.
    let (mut sink, _) = Raw::connect(broker.port, ProtocolVersion::V5, "sink", 3600);
    assert_eq!(
        sink.consume(Duration::from_millis(500)),
        1,
        "the retried message"
    );
    sink.disconnect();
    let again = fill(&mut broker, 1000);
    let grown = std::fs::metadata(&store).expect("store").len();
    eprintln!("second round: {again} messages, store file {grown} bytes");
    assert!(
        again.abs_diff(accepted) <= 2,
        "second round {again}, first {accepted}"
    );
    assert!(
        grown <= size * 3 / 2,
        "store grew from {size} to {grown} bytes"
    );
    broker.stop();
}
