//! Malformed and forbidden input after a successful CONNECT: each row must disconnect only the
//! offender (MQTT 5: DISCONNECT with the reason code the decode error calls for, then close;
//! MQTT 3.1.1: close, §4.8 of 3.1.1), while a well-behaved client on the same broker keeps
//! working. Ends with random byte strings that must never take the broker down.
//!
//! Reason codes (MQTT 5.0 §4.13): 0x81 Malformed Packet, 0x82 Protocol Error, 0x90 Topic Name
//! invalid, 0x95 Packet too large.

mod pubsub_support;

use std::time::Duration;

use midge_broker::Config;
use midge_proto::{ProtocolVersion, ReasonCode};
use midge_testkit::TestBroker;
use pubsub_support::*;

/// The broker in these tests accepts packets of at most this many bytes.
const MAX_PACKET: u32 = 1024;

const MALFORMED: ReasonCode = ReasonCode::MALFORMED_PACKET;
const PROTOCOL: ReasonCode = ReasonCode::PROTOCOL_ERROR;

/// Read as MQTT: `G` (0x47) is a PUBACK with flags 0111 and `E` a Remaining Length of 69,
/// which the request is long enough to fill.
const HTTP_REQUEST: &[u8] = b"GET /mqtt HTTP/1.1\r\nHost: localhost:1883\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nUser-Agent: curl/8.0\r\n\r\n";

struct Row {
    what: &'static str,
    version: ProtocolVersion,
    bytes: Vec<u8>,
    /// The MQTT 5 DISCONNECT reason (MQTT 3.1.1 rows just expect the close).
    code: ReasonCode,
}

fn row(what: &'static str, version: ProtocolVersion, bytes: Vec<u8>, code: ReasonCode) -> Row {
    Row {
        what,
        version,
        bytes,
        code,
    }
}

/// A v5 PUBLISH QoS 0 to `t` with the given raw property block.
fn publish_with_props(props: &[u8]) -> Vec<u8> {
    frame(0x30, &publish_body(b"t", None, Some(props), b"x"))
}

fn subscribe_body(id: u16, props: Option<&[u8]>, filter: &[u8], options: u8) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    if let Some(props) = props {
        body.push(props.len() as u8);
        body.extend_from_slice(props);
    }
    body.extend(field(filter));
    body.push(options);
    body
}

fn v5_rows() -> Vec<Row> {
    vec![
        // [MQTT-2.1.3-1]: reserved fixed-header flags.
        row(
            "PUBREL with flags 0000",
            V5,
            vec![0x60, 0x02, 0x00, 0x01],
            MALFORMED,
        ),
        row(
            "SUBSCRIBE with flags 0000",
            V5,
            frame(0x80, &subscribe_body(1, Some(&[]), b"t", 1)),
            MALFORMED,
        ),
        row(
            "UNSUBSCRIBE with flags 0000",
            V5,
            frame(0xA0, &[0x00, 0x01, 0x00, 0x00, 0x01, b't']),
            MALFORMED,
        ),
        row("PINGREQ with flags 0001", V5, vec![0xC1, 0x00], MALFORMED),
        row(
            "DISCONNECT with flags 1000",
            V5,
            vec![0xE8, 0x00],
            MALFORMED,
        ),
        // [MQTT-3.3.1-4], [MQTT-3.3.1-2].
        row(
            "PUBLISH with QoS 3",
            V5,
            frame(0x36, &publish_body(b"t", Some(1), Some(&[]), b"x")),
            MALFORMED,
        ),
        row(
            "PUBLISH with DUP and QoS 0",
            V5,
            frame(0x38, &publish_body(b"t", None, Some(&[]), b"x")),
            MALFORMED,
        ),
        // [MQTT-2.2.1-3]: packet identifier 0.
        row(
            "PUBLISH QoS 1 with packet id 0",
            V5,
            frame(0x32, &publish_body(b"t", Some(0), Some(&[]), b"x")),
            PROTOCOL,
        ),
        row(
            "SUBSCRIBE with packet id 0",
            V5,
            frame(0x82, &subscribe_body(0, Some(&[]), b"t", 1)),
            PROTOCOL,
        ),
        row(
            "PUBACK with packet id 0",
            V5,
            vec![0x40, 0x02, 0x00, 0x00],
            PROTOCOL,
        ),
        // [MQTT-1.5.4-1], [MQTT-1.5.4-2], [MQTT-4.7.3-2].
        row(
            "topic with invalid UTF-8",
            V5,
            frame(0x30, &publish_body(&[0xC3, 0x28], None, Some(&[]), b"x")),
            MALFORMED,
        ),
        row(
            "topic with an encoded surrogate",
            V5,
            frame(
                0x30,
                &publish_body(&[0xED, 0xA0, 0x80], None, Some(&[]), b"x"),
            ),
            MALFORMED,
        ),
        row(
            "topic with U+0000",
            V5,
            frame(0x30, &publish_body(b"a\0b", None, Some(&[]), b"x")),
            MALFORMED,
        ),
        // [MQTT-3.3.2-2].
        row(
            "topic with a wildcard",
            V5,
            frame(0x30, &publish_body(b"a/+/c", None, Some(&[]), b"x")),
            ReasonCode::TOPIC_NAME_INVALID,
        ),
        // The Remaining Length ends inside a field.
        row(
            "topic longer than the packet",
            V5,
            frame(0x30, &[0x00, 0x05, b'a']),
            MALFORMED,
        ),
        row(
            "QoS 1 PUBLISH without packet id",
            V5,
            frame(0x32, &[0x00, 0x01, b't']),
            MALFORMED,
        ),
        row(
            "property length beyond the packet",
            V5,
            frame(0x30, &[0x00, 0x01, b't', 0x10, 0x01]),
            MALFORMED,
        ),
        // [MQTT-1.5.5-1].
        row(
            "remaining length in five bytes",
            V5,
            vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            MALFORMED,
        ),
        row(
            "remaining length not minimal",
            V5,
            vec![0xC0, 0x80, 0x00],
            MALFORMED,
        ),
        row("PINGREQ with a body", V5, vec![0xC0, 0x01, 0x00], MALFORMED),
        // Properties (MQTT 5.0 §2.2.2, Table 2-4).
        row(
            "unknown property",
            V5,
            publish_with_props(&[0x7F, 0x00]),
            MALFORMED,
        ),
        row(
            "Session Expiry Interval in PUBLISH",
            V5,
            publish_with_props(&[0x11, 0, 0, 0, 1]),
            MALFORMED,
        ),
        row(
            "Content Type twice",
            V5,
            publish_with_props(&[0x03, 0, 1, b'a', 0x03, 0, 1, b'b']),
            PROTOCOL,
        ),
        row(
            "Payload Format Indicator 2",
            V5,
            publish_with_props(&[0x01, 0x02]),
            PROTOCOL,
        ),
        // [MQTT-3.3.2-14].
        row(
            "Response Topic with a wildcard",
            V5,
            publish_with_props(&[0x08, 0, 3, b'a', b'/', b'#']),
            PROTOCOL,
        ),
        // [MQTT-3.3.4-6]: only the server puts Subscription Identifiers in PUBLISH.
        row(
            "Subscription Identifier in a client PUBLISH",
            V5,
            publish_with_props(&[0x0B, 0x01]),
            PROTOCOL,
        ),
        row(
            "Subscription Identifier 0 in SUBSCRIBE",
            V5,
            frame(0x82, &subscribe_body(1, Some(&[0x0B, 0x00]), b"t", 1)),
            PROTOCOL,
        ),
        row(
            "PUBACK with a reason code PUBACK cannot carry",
            V5,
            vec![0x40, 0x03, 0x00, 0x01, 0x05],
            MALFORMED,
        ),
        // Packets only a server sends.
        row(
            "CONNACK from the client",
            V5,
            vec![0x20, 0x03, 0x00, 0x00, 0x00],
            PROTOCOL,
        ),
        row(
            "SUBACK from the client",
            V5,
            vec![0x90, 0x04, 0x00, 0x01, 0x00, 0x00],
            PROTOCOL,
        ),
        row("PINGRESP from the client", V5, vec![0xD0, 0x00], PROTOCOL),
        // §4.12: AUTH only after a CONNECT with an Authentication Method.
        row(
            "AUTH without an authentication method",
            V5,
            vec![0xF0, 0x00],
            PROTOCOL,
        ),
        // [MQTT-3.2.2-15] from the server side: refused from the fixed header alone; the body
        // is never sent.
        row(
            "remaining length above the maximum packet size (header only)",
            V5,
            vec![0x30, 0x80, 0x10],
            ReasonCode::PACKET_TOO_LARGE,
        ),
        row(
            "remaining length 268435455 (header only)",
            V5,
            vec![0x30, 0xFF, 0xFF, 0xFF, 0x7F],
            ReasonCode::PACKET_TOO_LARGE,
        ),
        // Garbage.
        row("an HTTP request", V5, HTTP_REQUEST.to_vec(), MALFORMED),
        row("reserved packet type 0", V5, vec![0x00, 0x00], MALFORMED),
        row("0xFF bytes", V5, vec![0xFF; 8], MALFORMED),
    ]
}

fn v3_rows() -> Vec<Row> {
    let close = MALFORMED;
    vec![
        row(
            "PUBREL with flags 0000",
            V311,
            vec![0x60, 0x02, 0x00, 0x01],
            close,
        ),
        row(
            "SUBSCRIBE with flags 0000",
            V311,
            frame(0x80, &subscribe_body(1, None, b"t", 1)),
            close,
        ),
        row("PINGREQ with flags 0001", V311, vec![0xC1, 0x00], close),
        row(
            "PUBLISH with QoS 3",
            V311,
            frame(0x36, &publish_body(b"t", Some(1), None, b"x")),
            close,
        ),
        row(
            "PUBLISH with DUP and QoS 0",
            V311,
            frame(0x38, &publish_body(b"t", None, None, b"x")),
            close,
        ),
        row(
            "PUBLISH QoS 2 with packet id 0",
            V311,
            frame(0x34, &publish_body(b"t", Some(0), None, b"x")),
            close,
        ),
        row(
            "UNSUBSCRIBE with packet id 0",
            V311,
            frame(0xA2, &[0x00, 0x00, 0x00, 0x01, b't']),
            close,
        ),
        row(
            "topic with invalid UTF-8",
            V311,
            frame(0x30, &publish_body(&[0xFF], None, None, b"x")),
            close,
        ),
        row(
            "topic with U+0000",
            V311,
            frame(0x30, &publish_body(b"\0", None, None, b"x")),
            close,
        ),
        row(
            "empty topic",
            V311,
            frame(0x30, &publish_body(b"", None, None, b"x")),
            close,
        ),
        row(
            "topic longer than the packet",
            V311,
            frame(0x30, &[0x00, 0x09, b'a']),
            close,
        ),
        row(
            "remaining length in five bytes",
            V311,
            vec![0x30, 0x80, 0x80, 0x80, 0x80, 0x01],
            close,
        ),
        // MQTT 3.1.1 has no packet type 15 ([MQTT-2.1.3-1] reserved).
        row("AUTH in MQTT 3.1.1", V311, vec![0xF0, 0x00], close),
        row(
            "DISCONNECT with a body",
            V311,
            vec![0xE0, 0x01, 0x00],
            close,
        ),
        row(
            "CONNACK from the client",
            V311,
            vec![0x20, 0x02, 0x00, 0x00],
            close,
        ),
        row(
            "remaining length above the maximum packet size (header only)",
            V311,
            vec![0x30, 0x80, 0x10],
            close,
        ),
        row("an HTTP request", V311, HTTP_REQUEST.to_vec(), close),
        row("0xFF bytes", V311, vec![0xFF; 8], close),
    ]
}

fn config() -> Config {
    let mut config = Config::default();
    config.limits.max_packet_size = MAX_PACKET;
    config
}

/// Every row disconnects its sender with the right reason (MQTT 5) or a plain close
/// (MQTT 3.1.1), and a well-behaved client connected throughout keeps publishing and
/// receiving after each row.
#[tokio::test]
async fn malformed_packets_disconnect_only_the_offender() {
    let broker = TestBroker::start_with(config()).await;
    let mut witness = Witness::new(&broker, "mal-witness").await;
    let mut witness3 = broker.client(V311, "mal-witness3").await;
    sub(
        &mut witness3,
        "probe/mal-witness",
        opts(midge_proto::QoS::AtMostOnce),
    )
    .await;
    for (i, r) in v5_rows().into_iter().chain(v3_rows()).enumerate() {
        let context = format!("{} ({})", r.what, r.version);
        eprintln!("row: {context}");
        let mut c = broker.client(r.version, &format!("mal-offender-{i}")).await;
        c.send_raw(&r.bytes).await;
        let got = c.expect_closed().await;
        if r.version.is_v5() {
            match got.as_slice() {
                [midge_proto::Packet::Disconnect(d)] => assert_eq!(
                    d.reason_code, r.code,
                    "{context}: expected DISCONNECT {}, got {}",
                    r.code, d.reason_code
                ),
                other => panic!("{context}: expected one DISCONNECT, got {other:?}"),
            }
        } else {
            assert!(
                got.is_empty(),
                "{context}: MQTT 3.1.1 gets no packet, got {got:?}"
            );
        }
        witness.check(&context).await;
        let p = witness3.recv_publish().await;
        assert!(p.payload.starts_with(b"probe"), "{context}");
    }
    assert_alive(&mut witness3).await;
}

/// A packet cut short by the client closing the connection ends that connection quietly; the
/// session goes away and everyone else carries on.
#[tokio::test]
async fn truncated_packet_then_close_is_cleaned_up() {
    let broker = TestBroker::start_with(config()).await;
    let mut witness = Witness::new(&broker, "trunc-witness").await;
    let baseline = broker.handle.session_count();
    for (i, bytes) in [
        &[0x30u8, 0x0A, 0x00, 0x03, b'a'][..],
        &[0x32, 0x7F],
        &[0x82],
        &[0x30, 0xFF, 0xFF],
    ]
    .into_iter()
    .enumerate()
    {
        for version in [V5, V311] {
            let mut c = broker
                .client(version, &format!("trunc-{i}-{version}"))
                .await;
            c.send_raw(bytes).await;
            drop(c);
            witness
                .check(&format!("truncated {bytes:02X?} then close"))
                .await;
        }
    }
    wait_until("sessions of closed clients removed", || {
        broker.handle.session_count() == baseline
    })
    .await;
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 200 random byte strings, each sent on its own connection right after CONNECT, never take
/// the broker down: a well-behaved client keeps working throughout, every offender's session
/// is cleaned up, and the broker still accepts new connections afterwards.
#[tokio::test]
async fn random_bytes_after_connect_never_break_the_broker() {
    const SEED: u64 = 0x6D69_6467_6521_2026;
    let broker = TestBroker::start_with(config()).await;
    let mut witness = Witness::new(&broker, "fuzz-witness").await;
    let baseline = broker.handle.session_count();
    let mut rng = Rng(SEED);
    for i in 0..200 {
        let version = if i % 2 == 0 { V5 } else { V311 };
        let len = 1 + rng.below(48) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 {
            // Half the time: a plausible fixed header with a body that fits, so the body
            // decoders see random input too.
            bytes[0] = ((1 + rng.below(15) as u8) << 4) | (rng.below(16) as u8);
            if len > 1 {
                bytes[1] = (len - 2) as u8;
            }
        }
        let mut c = broker.client(version, &format!("fuzz-{i}")).await;
        c.send_raw(&bytes).await;
        // Let the broker answer (or not), then go away.
        let _ = c.try_recv(Duration::from_millis(5)).await;
        drop(c);
        if i % 10 == 9 {
            witness
                .check(&format!("random input #{i} {bytes:02X?} (seed {SEED:#x})"))
                .await;
        }
    }
    wait_until("sessions of random clients removed", || {
        broker.handle.session_count() == baseline
    })
    .await;
    let mut fresh = broker.client(V5, "fuzz-after").await;
    sub(
        &mut fresh,
        "probe/fuzz-witness",
        opts(midge_proto::QoS::AtMostOnce),
    )
    .await;
    witness.check("after the random input").await;
    assert!(fresh.recv_publish().await.payload.starts_with(b"probe"));
}
