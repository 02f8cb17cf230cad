//! CONNECT and CONNACK (MQTT 3.1.1 §3.1–3.2, MQTT 5.0 §3.1–3.2): protocol levels, the first
//! and second CONNECT, the CONNECT timeout, client identifiers, Keep Alive and the CONNACK
//! properties that advertise what the broker supports.
//!
//! Refusals of MQTT 3.x clients are checked byte for byte with
//! [`RawClient::expect_raw_bytes`], so they do not depend on Midge's own decoder.

use std::time::{Duration, Instant};

use midge_broker::Config;
use midge_proto::{
    ConnAck, Connect, Packet, Property, ProtocolVersion, QoS, ReasonCode, TopicName, Will,
};
use midge_testkit::{RawClient, TestBroker};

/// Sends CONNECT and returns the CONNACK, whatever its reason code.
async fn connack(c: &mut RawClient, connect: Connect) -> ConnAck {
    c.send(&Packet::Connect(Box::new(connect))).await;
    match c.recv().await {
        Packet::ConnAck(ack) => ack,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// The reason code of the DISCONNECT among `packets`, if one was sent.
fn disconnect_code(packets: &[Packet]) -> Option<ReasonCode> {
    packets.iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    })
}

/// An MQTT 3.1.1 CONNECT for client id "c" with the given protocol name, level and flags, as
/// raw bytes.
fn raw_connect(name: &[u8], level: u8, flags: u8) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name);
    body.push(level);
    body.push(flags);
    body.extend_from_slice(&60u16.to_be_bytes());
    body.extend_from_slice(&[0x00, 0x01, b'c']);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

/// Protocol levels 3 (MQTT 3.1, "MQIsdp"), 4 (MQTT 3.1.1) and 5 (MQTT 5.0) are all
/// accepted with return code 0 / Success and Session Present 0 on a new session.
/// MQTT 3.1.1 [MQTT-3.2.2-1] (Clean Session 1 → Session Present 0), [MQTT-3.2.0-1]
/// (CONNACK is the first packet from the server).
#[tokio::test]
async fn protocol_levels_3_4_and_5_are_accepted() {
    let broker = TestBroker::start().await;
    // MQTT 3.1 and 3.1.1: the CONNACK is exactly 20 02 00 00.
    let mut v31 = broker.raw(ProtocolVersion::V3_1).await;
    let mut expected = vec![0x10, 0x0F, 0x00, 0x06];
    expected.extend_from_slice(b"MQIsdp");
    expected.extend_from_slice(&[0x03, 0x02, 0x00, 0x3C, 0x00, 0x01, b'a']);
    v31.send_raw(&expected).await;
    v31.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x00]).await;

    let mut v311 = broker.raw(ProtocolVersion::V3_1_1).await;
    v311.send_raw(&raw_connect(b"MQTT", 4, 0x02)).await;
    v311.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x00]).await;

    let mut v5 = broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut v5, Connect::new(ProtocolVersion::V5, "e")).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert!(!ack.session_present);

    // All three are really connected: each answers PINGREQ.
    for c in [&mut v31, &mut v311, &mut v5] {
        c.send(&Packet::PingReq).await;
        assert_eq!(c.recv().await, Packet::PingResp);
    }
    broker.stop().await;
}

/// An unsupported protocol level gets CONNACK return code 0x01 and the connection is closed:
/// MQTT 3.1.1 [MQTT-3.1.2-2]; MQTT 5.0 [MQTT-3.1.2-2] allows this answer for a level that is
/// not 5 (a server cannot know which CONNACK layout a future client reads).
#[tokio::test]
async fn unsupported_protocol_level_gets_return_code_1_then_close() {
    let broker = TestBroker::start().await;
    for level in [6u8, 2, 0] {
        let mut c = broker.raw(ProtocolVersion::V3_1_1).await;
        c.send_raw(&raw_connect(b"MQTT", level, 0x02)).await;
        c.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x01]).await;
        assert_eq!(c.expect_closed().await, vec![], "level {level}");
    }
    broker.stop().await;
}

/// A protocol name that is neither "MQTT" nor "MQIsdp" (or does not match the level) is
/// refused with return code 0x01 and the connection closed; the server does not go on to
/// process the CONNECT under this specification (MQTT 3.1.1 [MQTT-3.1.2-1], MQTT 5.0
/// [MQTT-3.1.2-1]).
#[tokio::test]
async fn wrong_protocol_name_gets_return_code_1_then_close() {
    let broker = TestBroker::start().await;
    for (name, level) in [
        (&b"MQTX"[..], 4u8),
        (b"mqtt", 4),
        (b"MQIsdp", 4),
        (b"MQTT", 3),
    ] {
        let mut c = broker.raw(ProtocolVersion::V3_1_1).await;
        c.send_raw(&raw_connect(name, level, 0x02)).await;
        c.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x01]).await;
        assert_eq!(c.expect_closed().await, vec![], "{name:?} level {level}");
    }
    assert_eq!(broker.handle.session_count(), 0);
    broker.stop().await;
}

/// The first packet must be CONNECT; anything else closes the connection without an answer
/// ([MQTT-3.1.0-1]).
#[tokio::test]
async fn first_packet_not_connect_closes() {
    let broker = TestBroker::start().await;
    let first_packets: [&[u8]; 4] = [
        &[0xC0, 0x00],                               // PINGREQ
        &[0x30, 0x05, 0x00, 0x01, b'a', b'h', b'i'], // PUBLISH a "hi"
        &[0xE0, 0x00],                               // DISCONNECT
        &[0x00, 0x00],                               // reserved packet type 0
    ];
    for bytes in first_packets {
        let mut c = broker.raw(ProtocolVersion::V3_1_1).await;
        c.send_raw(bytes).await;
        assert_eq!(c.expect_closed().await, vec![], "first packet {bytes:02X?}");
    }
    assert_eq!(broker.handle.session_count(), 0);
    broker.stop().await;
}

/// A second CONNECT is a Protocol Error ([MQTT-3.1.0-2]): an MQTT 5 client gets DISCONNECT
/// 0x82 and is closed; an MQTT 3.1.1 client is closed without an answer.
#[tokio::test]
async fn second_connect_is_a_protocol_error() {
    let broker = TestBroker::start().await;
    let mut v5 = broker.client(ProtocolVersion::V5, "twice5").await;
    v5.send(&Packet::Connect(Box::new(Connect::new(
        ProtocolVersion::V5,
        "twice5",
    ))))
    .await;
    let got = v5.expect_closed().await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(disconnect_code(&got), Some(ReasonCode::PROTOCOL_ERROR));

    let mut v3 = broker.client(ProtocolVersion::V3_1_1, "twice3").await;
    v3.send(&Packet::Connect(Box::new(Connect::new(
        ProtocolVersion::V3_1_1,
        "twice3",
    ))))
    .await;
    assert_eq!(v3.expect_closed().await, vec![]);
    broker.stop().await;
}

/// A connection that sends nothing (or only part of a CONNECT) within
/// `limits.connect_timeout_secs` is closed without a CONNACK (MQTT 5.0 §3.1.4: "If the Server
/// does not receive a CONNECT packet within a reasonable amount of time after the Network
/// Connection is established, the Server SHOULD close the Network Connection").
#[tokio::test]
async fn connect_timeout_closes_a_silent_connection() {
    let mut config = Config::default();
    config.limits.connect_timeout_secs = 1;
    let broker = TestBroker::start_with(config).await;

    let started = Instant::now();
    let mut silent = broker.raw(ProtocolVersion::V3_1_1).await;
    let mut partial = broker.raw(ProtocolVersion::V3_1_1).await;
    partial.send_raw(&raw_connect(b"MQTT", 4, 0x02)[..6]).await;
    silent.expect_nothing(Duration::from_millis(600)).await;
    assert_eq!(silent.expect_closed().await, vec![]);
    assert_eq!(partial.expect_closed().await, vec![]);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}"
    );
    // A client that does send CONNECT in time is unaffected by the timeout.
    let mut ok = broker.client(ProtocolVersion::V3_1_1, "in-time").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    ok.send(&Packet::PingReq).await;
    assert_eq!(ok.recv().await, Packet::PingResp);
    broker.stop().await;
}

/// MQTT 3.1.1: a zero-length client identifier is accepted with Clean Session 1 (the server
/// assigns one, [MQTT-3.1.3-6]) and refused with return code 0x02 then closed with Clean
/// Session 0 ([MQTT-3.1.3-8]).
#[tokio::test]
async fn v311_empty_client_id_needs_clean_session() {
    let broker = TestBroker::start().await;
    // CONNECT "MQTT" 4, flags, keep alive 60, empty client id.
    let connect = |flags: u8| {
        vec![
            0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x3C, 0x00, 0x00,
        ]
    };
    let mut clean = broker.raw(ProtocolVersion::V3_1_1).await;
    clean.send_raw(&connect(0x02)).await;
    clean.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x00]).await;
    let mut clean2 = broker.raw(ProtocolVersion::V3_1_1).await;
    clean2.send_raw(&connect(0x02)).await;
    clean2.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x00]).await;
    // Each got its own identifier: two sessions, and the first was not taken over.
    assert_eq!(broker.handle.session_count(), 2);
    clean.send(&Packet::PingReq).await;
    assert_eq!(clean.recv().await, Packet::PingResp);

    let mut persistent = broker.raw(ProtocolVersion::V3_1_1).await;
    persistent.send_raw(&connect(0x00)).await;
    persistent.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x02]).await;
    assert_eq!(persistent.expect_closed().await, vec![]);
    assert_eq!(broker.handle.session_count(), 2);
    broker.stop().await;
}

/// MQTT 5.0: a zero-length client identifier is accepted and the server returns the
/// identifier it assigned in CONNACK ([MQTT-3.1.3-6], [MQTT-3.1.3-7], [MQTT-3.2.2-16]); each
/// connection gets a different one. A non-empty identifier gets no Assigned Client Identifier.
#[tokio::test]
async fn v5_empty_client_id_gets_assigned_identifier() {
    let broker = TestBroker::start().await;
    let mut ids = Vec::new();
    let mut clients = Vec::new();
    for clean_start in [true, false] {
        let mut c = broker.raw(ProtocolVersion::V5).await;
        let mut connect = Connect::new(ProtocolVersion::V5, "");
        connect.clean_start = clean_start;
        let ack = connack(&mut c, connect).await;
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
        assert!(!ack.session_present);
        let id = ack
            .properties
            .assigned_client_identifier()
            .expect("Assigned Client Identifier [MQTT-3.2.2-16]")
            .clone();
        assert!(!id.is_empty());
        ids.push(id);
        clients.push(c);
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(broker.handle.session_count(), 2);

    let mut named = broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut named, Connect::new(ProtocolVersion::V5, "named")).await;
    assert_eq!(ack.properties.assigned_client_identifier(), None);
    broker.stop().await;
}

/// MQTT 3.1 requires a client identifier of 1 to 23 characters (MQTT 3.1 §3.1, CONNACK
/// return code 2 "Identifier rejected"): an empty one is refused with return code 0x02.
#[tokio::test]
async fn v31_empty_client_id_is_refused() {
    let broker = TestBroker::start().await;
    let mut c = broker.raw(ProtocolVersion::V3_1).await;
    let mut bytes = vec![0x10, 0x0E, 0x00, 0x06];
    bytes.extend_from_slice(b"MQIsdp");
    bytes.extend_from_slice(&[0x03, 0x02, 0x00, 0x3C, 0x00, 0x00]);
    c.send_raw(&bytes).await;
    c.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x02]).await;
    assert_eq!(c.expect_closed().await, vec![]);
    assert_eq!(broker.handle.session_count(), 0);
    broker.stop().await;
}

/// The CONNACK of an MQTT 5 client advertises Receive Maximum, Maximum Packet Size and Topic
/// Alias Maximum from the configuration (MQTT 5.0 §3.2.2.3.3, §3.2.2.3.6, §3.2.2.3.8), and
/// leaves out the "available" properties when everything is available (absent means
/// supported). MQTT 3.1.1 CONNACKs carry no properties.
#[tokio::test]
async fn connack_advertises_limits() {
    let mut config = Config::default();
    config.limits.receive_maximum = 17;
    config.limits.max_packet_size = 54_321;
    config.mqtt.topic_alias_maximum = 9;
    let broker = TestBroker::start_with(config).await;
    let mut c = broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut c, Connect::new(ProtocolVersion::V5, "limits")).await;
    let p = &ack.properties;
    assert_eq!(p.receive_maximum(), Some(17));
    assert_eq!(p.maximum_packet_size(), Some(54_321));
    assert_eq!(p.topic_alias_maximum(), Some(9));
    assert_eq!(p.retain_available(), None);
    assert_eq!(p.maximum_qos(), None);
    assert_eq!(p.wildcard_subscription_available(), None);
    assert_eq!(p.shared_subscription_available(), None);
    assert_eq!(p.subscription_identifier_available(), None);
    assert_eq!(p.server_keep_alive(), None);
    assert_eq!(p.authentication_method(), None);
    // Session Expiry is only returned when the server changed the requested one.
    assert_eq!(p.session_expiry_interval(), None);
    broker.stop().await;
}

/// Features switched off in the configuration are advertised as such: Retain Available 0,
/// Maximum QoS, Wildcard / Shared / Subscription Identifier Available 0 (MQTT 5.0
/// §3.2.2.3.4–5, §3.2.2.3.11–13); a will the server cannot honour is refused with 0x9A / 0x9B
/// ([MQTT-3.2.2-12]: Will QoS above Maximum QoS; [MQTT-3.2.2-13]: Will Retain without Retain
/// Available).
#[tokio::test]
async fn connack_advertises_disabled_features() {
    let mut config = Config::default();
    config.retain.available = false;
    config.mqtt.max_qos = 1;
    config.mqtt.wildcard_subscriptions = false;
    config.mqtt.shared_subscriptions = false;
    config.mqtt.subscription_identifiers = false;
    let broker = TestBroker::start_with(config).await;
    let mut c = broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut c, Connect::new(ProtocolVersion::V5, "off")).await;
    let p = &ack.properties;
    assert_eq!(p.retain_available(), Some(false));
    assert_eq!(p.maximum_qos(), Some(QoS::AtLeastOnce));
    assert_eq!(p.wildcard_subscription_available(), Some(false));
    assert_eq!(p.shared_subscription_available(), Some(false));
    assert_eq!(p.subscription_identifier_available(), Some(false));

    let topic = TopicName::new("will/t").unwrap();
    let mut retained_will = Connect::new(ProtocolVersion::V5, "w1");
    let mut will = Will::new(topic.clone(), "x");
    will.retain = true;
    retained_will.will = Some(will);
    let mut w1 = broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut w1, retained_will).await;
    assert_eq!(ack.reason_code, ReasonCode::RETAIN_NOT_SUPPORTED);
    assert_eq!(w1.expect_closed().await, vec![]);

    let mut qos2_will = Connect::new(ProtocolVersion::V5, "w2");
    let mut will = Will::new(topic, "x");
    will.qos = QoS::ExactlyOnce;
    qos2_will.will = Some(will);
    let mut w2 = broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut w2, qos2_will).await;
    assert_eq!(ack.reason_code, ReasonCode::QOS_NOT_SUPPORTED);
    assert_eq!(w2.expect_closed().await, vec![]);
    broker.stop().await;
}

/// With `mqtt.server_keep_alive` set, CONNACK carries Server Keep Alive and the server
/// enforces that value instead of the client's ([MQTT-3.2.2-21], [MQTT-3.1.2-22]): a client
/// that asked for 60 s but was told 1 s is disconnected (0x8D) after about 1.5 s of silence.
#[tokio::test]
async fn server_keep_alive_is_advertised_and_enforced() {
    let mut config = Config::default();
    config.mqtt.server_keep_alive = 1;
    let broker = TestBroker::start_with(config).await;
    let mut c = broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut c, Connect::new(ProtocolVersion::V5, "ska")).await;
    assert_eq!(ack.properties.server_keep_alive(), Some(1));
    let started = Instant::now();
    let got = c.expect_closed().await;
    let elapsed = started.elapsed();
    assert_eq!(disconnect_code(&got), Some(ReasonCode::KEEP_ALIVE_TIMEOUT));
    assert!(
        elapsed >= Duration::from_millis(1200) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}"
    );
    broker.stop().await;
}

/// Without `mqtt.server_keep_alive` the server uses the client's Keep Alive and sends no
/// Server Keep Alive ([MQTT-3.2.2-22]); `mqtt.max_keepalive` caps an MQTT 5 client's value
/// (including 0) through Server Keep Alive, and refuses an MQTT 3.1.1 client asking for more
/// (return code 0x02, as Mosquitto does; MQTT 3 has no way to tell the client a lower value).
#[tokio::test]
async fn max_keepalive_caps_v5_and_refuses_v3() {
    let mut config = Config::default();
    config.mqtt.max_keepalive = 30;
    let broker = TestBroker::start_with(config).await;
    for (asked, told) in [(10u16, None), (30, None), (31, Some(30)), (0, Some(30))] {
        let mut c = broker.raw(ProtocolVersion::V5).await;
        let mut connect = Connect::new(ProtocolVersion::V5, format!("ka{asked}"));
        connect.keep_alive = asked;
        let ack = connack(&mut c, connect).await;
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
        assert_eq!(ack.properties.server_keep_alive(), told, "asked {asked}");
    }

    // MQTT 3.1.1, Keep Alive 31 (> 30): refused. Keep Alive 30: accepted.
    let mut too_long = broker.raw(ProtocolVersion::V3_1_1).await;
    let mut bytes = raw_connect(b"MQTT", 4, 0x02);
    bytes[10..12].copy_from_slice(&31u16.to_be_bytes());
    too_long.send_raw(&bytes).await;
    too_long.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x02]).await;
    assert_eq!(too_long.expect_closed().await, vec![]);

    let mut ok = broker.raw(ProtocolVersion::V3_1_1).await;
    let mut bytes = raw_connect(b"MQTT", 4, 0x02);
    bytes[10..12].copy_from_slice(&30u16.to_be_bytes());
    ok.send_raw(&bytes).await;
    ok.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x00]).await;
    broker.stop().await;
}

/// An MQTT 3.1.1 CONNECT that does not conform to §3.1 is answered by closing the connection
/// without a CONNACK ([MQTT-3.1.4-1]): reserved flag set ([MQTT-3.1.2-3]), Will QoS or Will
/// Retain without the Will Flag ([MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]), Will QoS
/// 3 ([MQTT-3.1.2-14]), Password without User Name ([MQTT-3.1.2-22]), a truncated payload and
/// a Remaining Length that is too long for the fields.
#[tokio::test]
async fn malformed_v3_connect_closes_without_connack() {
    let broker = TestBroker::start().await;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("reserved flag", raw_connect(b"MQTT", 4, 0x03)),
        ("will QoS without will", raw_connect(b"MQTT", 4, 0x0A)),
        ("will retain without will", raw_connect(b"MQTT", 4, 0x22)),
        ("password without user name", raw_connect(b"MQTT", 4, 0x42)),
    ];
    // Will QoS 3 with a will topic and payload present.
    let mut will_qos3 = raw_connect(b"MQTT", 4, 0x1E);
    will_qos3.extend_from_slice(&[0x00, 0x01, b'w', 0x00, 0x00]);
    will_qos3[1] += 5;
    cases.push(("will QoS 3", will_qos3));
    // Client id length says 5 bytes, only 1 follows (Remaining Length covers 1).
    let mut short_id = raw_connect(b"MQTT", 4, 0x02);
    short_id[13] = 0x05;
    cases.push(("truncated client id", short_id));
    // Remaining Length one byte longer than the fields: trailing garbage.
    let mut trailing = raw_connect(b"MQTT", 4, 0x02);
    trailing.push(0xFF);
    trailing[1] += 1;
    cases.push(("trailing byte", trailing));
    for (what, bytes) in cases {
        let mut c = broker.raw(ProtocolVersion::V3_1_1).await;
        c.send_raw(&bytes).await;
        assert_eq!(c.expect_closed().await, vec![], "{what}");
    }
    assert_eq!(broker.handle.session_count(), 0);
    // The broker is still serving.
    let mut ok = broker.client(ProtocolVersion::V3_1_1, "after").await;
    ok.send(&Packet::PingReq).await;
    assert_eq!(ok.recv().await, Packet::PingResp);
    broker.stop().await;
}

/// An MQTT 5 CONNECT with a Protocol Error in its properties (Receive Maximum 0,
/// §3.1.2.11.3) or the reserved flag set ([MQTT-3.1.2-3]) is refused: the connection is
/// closed, with at most a CONNACK carrying an error code (MQTT 5.0 §4.13.1).
#[tokio::test]
async fn malformed_v5_connect_is_refused() {
    let broker = TestBroker::start().await;
    // Encoded with Receive Maximum 1, then patched to 0 (the encoder refuses 0). Layout:
    // header (2), name (6), level, flags, keep alive (2), property length, 0x21, value (2).
    let mut zero_recv_max = Connect::new(ProtocolVersion::V5, "rm0");
    zero_recv_max.properties.push(Property::ReceiveMaximum(1));
    let mut zero_recv_max = Packet::Connect(Box::new(zero_recv_max))
        .to_bytes(ProtocolVersion::V5)
        .unwrap()
        .to_vec();
    assert_eq!(&zero_recv_max[12..16], &[0x03, 0x21, 0x00, 0x01]);
    zero_recv_max[15] = 0x00;
    let mut reserved = Packet::Connect(Box::new(Connect::new(ProtocolVersion::V5, "res")))
        .to_bytes(ProtocolVersion::V5)
        .unwrap()
        .to_vec();
    // Fixed header (2) + name (6) + level (1): the flags byte.
    reserved[9] |= 0x01;
    let cases = vec![zero_recv_max, reserved];
    for bytes in cases {
        let mut c = broker.raw(ProtocolVersion::V5).await;
        c.send_raw(&bytes).await;
        let got = c.expect_closed().await;
        match got.as_slice() {
            [] => {}
            [Packet::ConnAck(ack)] => assert!(ack.reason_code.is_error(), "{ack:?}"),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(broker.handle.session_count(), 0);
    broker.stop().await;
}
