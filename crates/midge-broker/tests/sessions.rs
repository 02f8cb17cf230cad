//! Sessions (MQTT 3.1.1 §3.1.2.4, §4.1; MQTT 5.0 §3.1.2.4, §3.1.2.11.2, §4.1): Clean Start /
//! Clean Session and Session Present, persistent sessions and their offline queues, Session
//! Expiry (at CONNECT and changed at DISCONNECT), session takeover, and the resending of
//! unacknowledged QoS 1/2 flows on reconnect in both directions.

use std::time::Duration;

use midge_broker::stats::Stats;
use midge_proto::{
    ConnAck, Connect, Disconnect, Packet, PacketId, Property, ProtocolVersion, Publish, PublishAck,
    QoS, ReasonCode, TopicName,
};
use midge_testkit::{RawClient, TestBroker};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

/// Sends CONNECT and returns the CONNACK, asserting success.
async fn connack(c: &mut RawClient, connect: Connect) -> ConnAck {
    c.send(&Packet::Connect(Box::new(connect))).await;
    match c.recv().await {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{ack:?}");
            ack
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// A CONNECT with Clean Start / Clean Session `clean`; for MQTT 5, Session Expiry Interval
/// `expiry` (absent when `None`, meaning 0).
fn connect(version: ProtocolVersion, id: &str, clean: bool, expiry: Option<u32>) -> Connect {
    let mut c = Connect::new(version, id);
    c.clean_start = clean;
    if let (true, Some(e)) = (version.is_v5(), expiry) {
        c.properties.push(Property::SessionExpiryInterval(e));
    }
    c
}

/// Opens a connection and completes CONNECT, returning the client and its CONNACK.
async fn open(broker: &TestBroker, connect: Connect) -> (RawClient, ConnAck) {
    let mut c = broker.raw(connect.protocol_version).await;
    let ack = connack(&mut c, connect).await;
    (c, ack)
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

/// Publishes with `qos` (packet id `id`) and completes the acknowledgement flow.
async fn publish(c: &mut RawClient, topic: &str, payload: &'static [u8], qos: QoS, id: u16) {
    let mut p = Publish::new(TopicName::new(topic).expect("valid topic"), payload);
    p.qos = qos;
    if qos != QoS::AtMostOnce {
        p.packet_id = Some(pid(id));
    }
    c.send(&Packet::Publish(p)).await;
    match qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => match c.recv().await {
            Packet::PubAck(a) => assert_eq!(a.packet_id, pid(id)),
            other => panic!("expected PUBACK, got {other:?}"),
        },
        QoS::ExactlyOnce => {
            match c.recv().await {
                Packet::PubRec(a) => assert_eq!(a.packet_id, pid(id)),
                other => panic!("expected PUBREC, got {other:?}"),
            }
            c.send(&Packet::PubRel(PublishAck::new(pid(id)))).await;
            match c.recv().await {
                Packet::PubComp(a) => assert_eq!(a.packet_id, pid(id)),
                other => panic!("expected PUBCOMP, got {other:?}"),
            }
        }
    }
}

/// Sends a normal DISCONNECT and waits for the broker to close the connection.
async fn disconnect(mut c: RawClient) {
    c.send(&Packet::Disconnect(Disconnect::default())).await;
    assert_eq!(c.expect_closed().await, vec![]);
}

/// Waits (up to 3 s) until `f` holds.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Acknowledges a received PUBLISH as its QoS requires (QoS 2: PUBREC, PUBREL, PUBCOMP).
async fn acknowledge(c: &mut RawClient, p: &Publish) {
    let Some(id) = p.packet_id else { return };
    if p.qos == QoS::AtLeastOnce {
        c.send(&Packet::PubAck(PublishAck::new(id))).await;
    } else {
        c.send(&Packet::PubRec(PublishAck::new(id))).await;
        match c.recv().await {
            Packet::PubRel(a) => assert_eq!(a.packet_id, id),
            other => panic!("expected PUBREL, got {other:?}"),
        }
        c.send(&Packet::PubComp(PublishAck::new(id))).await;
    }
}

/// MQTT 5.0: Session Present is 0 with Clean Start 1 ([MQTT-3.2.2-2]) even when a session
/// existed, which is discarded with its subscriptions ([MQTT-3.1.2-4]); with Clean Start 0 it
/// is 1 when the server has a session and 0 when it has none ([MQTT-3.2.2-3],
/// [MQTT-3.1.2-5]).
#[tokio::test]
async fn v5_clean_start_and_session_present() {
    let broker = TestBroker::start().await;
    let v5 = ProtocolVersion::V5;
    let mut publisher = broker.client(v5, "pub").await;

    let (mut c, ack) = open(&broker, connect(v5, "s", false, Some(60))).await;
    assert!(!ack.session_present, "no session existed");
    c.subscribe("cs/#", QoS::AtLeastOnce).await;
    disconnect(c).await;

    let (mut c, ack) = open(&broker, connect(v5, "s", false, Some(60))).await;
    assert!(ack.session_present, "[MQTT-3.2.2-3]");
    publisher.publish0("cs/a", b"kept").await;
    assert_eq!(&c.recv_publish().await.payload[..], b"kept");
    disconnect(c).await;

    let (mut c, ack) = open(&broker, connect(v5, "s", true, Some(60))).await;
    assert!(!ack.session_present, "[MQTT-3.2.2-2]");
    publisher.publish0("cs/a", b"gone").await;
    c.expect_nothing(Duration::from_millis(200)).await;
    disconnect(c).await;

    // The clean session has no subscriptions: resuming it shows none either.
    let (mut c, ack) = open(&broker, connect(v5, "s", false, Some(60))).await;
    assert!(ack.session_present);
    publisher.publish0("cs/a", b"still gone").await;
    c.expect_nothing(Duration::from_millis(200)).await;
    broker.stop().await;
}

/// MQTT 3.1.1: Clean Session 1 gives Session Present 0 ([MQTT-3.2.2-1]) and a session that
/// ends with the connection ([MQTT-3.1.2-6]); Clean Session 0 gives Session Present 1 when a
/// session is stored ([MQTT-3.2.2-2]) and 0 when none is ([MQTT-3.2.2-3]), and resumes its
/// subscriptions ([MQTT-3.1.2-4]).
#[tokio::test]
async fn v311_clean_session_and_session_present() {
    let broker = TestBroker::start().await;
    let v3 = ProtocolVersion::V3_1_1;
    let mut publisher = broker.client(v3, "pub").await;

    let (mut c, ack) = open(&broker, connect(v3, "s3", false, None)).await;
    assert!(!ack.session_present, "[MQTT-3.2.2-3]");
    c.subscribe("cs3/#", QoS::AtLeastOnce).await;
    disconnect(c).await;
    assert_eq!(broker.handle.session_count(), 2);

    let (mut c, ack) = open(&broker, connect(v3, "s3", false, None)).await;
    assert!(ack.session_present, "[MQTT-3.2.2-2]");
    publisher.publish0("cs3/a", b"kept").await;
    assert_eq!(&c.recv_publish().await.payload[..], b"kept");
    drop(c);

    let (mut c, ack) = open(&broker, connect(v3, "s3", true, None)).await;
    assert!(!ack.session_present, "[MQTT-3.2.2-1]");
    publisher.publish0("cs3/a", b"gone").await;
    c.expect_nothing(Duration::from_millis(200)).await;
    disconnect(c).await;
    // A Clean Session 1 session ends with its connection.
    eventually("clean session removed", || {
        broker.handle.session_count() == 1
    })
    .await;
    let (_c, ack) = open(&broker, connect(v3, "s3", false, None)).await;
    assert!(!ack.session_present, "[MQTT-3.2.2-3]");
    broker.stop().await;
}

/// MQTT 3.1.1 [MQTT-3.1.2-5]: after a Clean Session 0 client disconnects, the server keeps
/// its subscriptions and stores QoS 1 and QoS 2 messages that match them, delivering them on
/// reconnect in order ([MQTT-4.6.0-6]); QoS 0 messages are not stored by default (the
/// specification allows but does not require it).
#[tokio::test]
async fn v311_persistent_session_queues_qos1_and_qos2_offline() {
    let broker = TestBroker::start().await;
    let v3 = ProtocolVersion::V3_1_1;
    let (mut sub, _) = open(&broker, connect(v3, "offline", false, None)).await;
    sub.subscribe("off/#", QoS::ExactlyOnce).await;
    disconnect(sub).await;

    let mut publisher = broker.client(v3, "pub").await;
    publish(&mut publisher, "off/0", b"zero", QoS::AtMostOnce, 0).await;
    publish(&mut publisher, "off/1", b"one", QoS::AtLeastOnce, 1).await;
    publish(&mut publisher, "off/2", b"two", QoS::ExactlyOnce, 2).await;
    publish(&mut publisher, "off/1", b"one again", QoS::AtLeastOnce, 3).await;

    let (mut sub, ack) = open(&broker, connect(v3, "offline", false, None)).await;
    assert!(ack.session_present);
    let mut received = Vec::new();
    for (topic, payload, qos) in [
        ("off/1", &b"one"[..], QoS::AtLeastOnce),
        ("off/2", b"two", QoS::ExactlyOnce),
        ("off/1", b"one again", QoS::AtLeastOnce),
    ] {
        let p = sub.recv_publish().await;
        assert_eq!(
            (p.topic.as_str(), &p.payload[..], p.qos, p.dup),
            (topic, payload, qos, false)
        );
        received.push(p);
    }
    for p in &received {
        acknowledge(&mut sub, p).await;
    }
    sub.expect_nothing(Duration::from_millis(200)).await;
    // The subscription is live again.
    publisher.publish0("off/live", b"live").await;
    assert_eq!(&sub.recv_publish().await.payload[..], b"live");
    broker.stop().await;
}

/// With `limits.queue_qos0_messages` the offline queue also keeps QoS 0 messages (the option
/// [MQTT-3.1.2-5] allows).
#[tokio::test]
async fn qos0_queued_offline_when_configured() {
    let mut config = midge_broker::Config::default();
    config.limits.queue_qos0_messages = true;
    let broker = TestBroker::start_with(config).await;
    let v3 = ProtocolVersion::V3_1_1;
    let (mut sub, _) = open(&broker, connect(v3, "q0", false, None)).await;
    sub.subscribe("q0/#", QoS::AtMostOnce).await;
    disconnect(sub).await;
    let mut publisher = broker.client(v3, "pub").await;
    publisher.publish0("q0/a", b"queued").await;
    publisher.send(&Packet::PingReq).await;
    assert_eq!(publisher.recv().await, Packet::PingResp);
    let (mut sub, _) = open(&broker, connect(v3, "q0", false, None)).await;
    let p = sub.recv_publish().await;
    assert_eq!((&p.payload[..], p.qos), (&b"queued"[..], QoS::AtMostOnce));
    broker.stop().await;
}

/// MQTT 5.0 §3.1.2.11.2: with Session Expiry Interval 0 (or absent) the session ends when the
/// network connection closes; nothing is kept and a later Clean Start 0 finds no session
/// ([MQTT-3.2.2-3]).
#[tokio::test]
async fn v5_session_expiry_zero_ends_session_at_disconnect() {
    let broker = TestBroker::start().await;
    let v5 = ProtocolVersion::V5;
    let mut publisher = broker.client(v5, "pub").await;
    for (expiry, graceful) in [(None, true), (Some(0), false)] {
        let (mut c, _) = open(&broker, connect(v5, "e0", false, expiry)).await;
        c.subscribe("e0/#", QoS::AtLeastOnce).await;
        if graceful {
            disconnect(c).await;
        } else {
            drop(c);
        }
        eventually("session ended", || broker.handle.session_count() == 1).await;
        assert_eq!(broker.handle.subscription_count(), 0);
        let mut p = Publish::new(TopicName::new("e0/x").unwrap(), "lost");
        p.qos = QoS::AtLeastOnce;
        p.packet_id = Some(pid(1));
        publisher.send(&Packet::Publish(p)).await;
        match publisher.recv().await {
            Packet::PubAck(a) => assert_eq!(a.reason_code, ReasonCode::NO_MATCHING_SUBSCRIBERS),
            other => panic!("expected PUBACK, got {other:?}"),
        }
        let (mut c, ack) = open(&broker, connect(v5, "e0", false, Some(60))).await;
        assert!(!ack.session_present);
        c.expect_nothing(Duration::from_millis(100)).await;
        disconnect(c).await;
        // Clean up the expiry-60 session for the next round.
        let (c, _) = open(&broker, connect(v5, "e0", true, None)).await;
        disconnect(c).await;
    }
    broker.stop().await;
}

/// MQTT 5.0 §3.1.2.11.2, [MQTT-3.1.2-23]: a session with Session Expiry Interval N outlives
/// its connection for N seconds (a reconnect within them finds it, with the QoS 1 message
/// queued meanwhile) and is gone after them.
#[tokio::test]
async fn v5_session_expires_after_its_interval() {
    let broker = TestBroker::start().await;
    let v5 = ProtocolVersion::V5;
    let mut publisher = broker.client(v5, "pub").await;
    let (mut c, _) = open(&broker, connect(v5, "e1", false, Some(1))).await;
    c.subscribe("e1/#", QoS::AtLeastOnce).await;
    disconnect(c).await;
    publish(&mut publisher, "e1/x", b"while away", QoS::AtLeastOnce, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (mut c, ack) = open(&broker, connect(v5, "e1", false, Some(1))).await;
    assert!(ack.session_present, "resumed within the interval");
    let p = c.recv_publish().await;
    assert_eq!(&p.payload[..], b"while away");
    acknowledge(&mut c, &p).await;
    disconnect(c).await;

    // Still there well inside the interval (the clock restarted at this disconnect)...
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(broker.handle.session_count(), 2, "expired too early");
    // ...and gone after it.
    eventually("session expired", || broker.handle.session_count() == 1).await;
    assert_eq!(broker.handle.subscription_count(), 0);
    let (_c, ack) = open(&broker, connect(v5, "e1", false, Some(1))).await;
    assert!(!ack.session_present, "expired session must not resume");
    broker.stop().await;
}

/// MQTT 5.0 §3.2.2.3.2: a server that uses another Session Expiry Interval than the client
/// asked for (here capped by `session.max_session_expiry_secs`) says so in CONNACK, and only
/// then; the capped value is the one in force.
#[tokio::test]
async fn capped_session_expiry_is_returned_in_connack() {
    let mut config = midge_broker::Config::default();
    config.session.max_session_expiry_secs = 1;
    let broker = TestBroker::start_with(config).await;
    let v5 = ProtocolVersion::V5;
    let (c, ack) = open(&broker, connect(v5, "cap", false, Some(3600))).await;
    assert_eq!(ack.properties.session_expiry_interval(), Some(1));
    disconnect(c).await;
    let (_ok, ack) = open(&broker, connect(v5, "ok", false, Some(1))).await;
    assert_eq!(ack.properties.session_expiry_interval(), None);
    // The 1 s cap is what applies: the "cap" session is gone soon after.
    eventually("capped session expired", || {
        broker.handle.session_count() == 1
    })
    .await;
    broker.stop().await;
}

/// MQTT 5.0 §3.14.2.2.2: the Session Expiry Interval may be changed by the client's
/// DISCONNECT: lowered to 0 it ends the session at once, raised it keeps the session longer.
#[tokio::test]
async fn disconnect_changes_session_expiry() {
    let broker = TestBroker::start().await;
    let v5 = ProtocolVersion::V5;
    let (mut c, _) = open(&broker, connect(v5, "d0", false, Some(60))).await;
    c.subscribe("d0/#", QoS::AtLeastOnce).await;
    let mut d = Disconnect::default();
    d.properties.push(Property::SessionExpiryInterval(0));
    c.send(&Packet::Disconnect(d)).await;
    assert_eq!(c.expect_closed().await, vec![]);
    eventually("session ended", || broker.handle.session_count() == 0).await;
    let (c, ack) = open(&broker, connect(v5, "d0", false, Some(60))).await;
    assert!(!ack.session_present);
    drop(c);

    let (mut c, _) = open(&broker, connect(v5, "d1", false, Some(1))).await;
    c.subscribe("d1/#", QoS::AtLeastOnce).await;
    let mut d = Disconnect::default();
    d.properties.push(Property::SessionExpiryInterval(60));
    c.send(&Packet::Disconnect(d)).await;
    assert_eq!(c.expect_closed().await, vec![]);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (_c, ack) = open(&broker, connect(v5, "d1", false, Some(60))).await;
    assert!(ack.session_present, "DISCONNECT raised the expiry to 60 s");
    broker.stop().await;
}

/// MQTT 5.0 §3.14.2.2.2: a DISCONNECT setting a non-zero Session Expiry Interval after
/// CONNECT set 0 is a Protocol Error: the server answers DISCONNECT 0x82 (carrying no Session
/// Expiry Interval, [MQTT-3.14.2-2]), closes, and the session still ends.
#[tokio::test]
async fn disconnect_expiry_after_zero_is_a_protocol_error() {
    let broker = TestBroker::start().await;
    let v5 = ProtocolVersion::V5;
    let (mut c, _) = open(&broker, connect(v5, "z", false, None)).await;
    c.subscribe("z/#", QoS::AtLeastOnce).await;
    let mut d = Disconnect::default();
    d.properties.push(Property::SessionExpiryInterval(30));
    c.send(&Packet::Disconnect(d)).await;
    let got = c.expect_closed().await;
    let [Packet::Disconnect(d)] = got.as_slice() else {
        panic!("expected one DISCONNECT, got {got:?}");
    };
    assert_eq!(d.reason_code, ReasonCode::PROTOCOL_ERROR);
    assert_eq!(d.properties.session_expiry_interval(), None);
    eventually("session ended", || broker.handle.session_count() == 0).await;
    let (_c, ack) = open(&broker, connect(v5, "z", false, Some(60))).await;
    assert!(!ack.session_present);
    broker.stop().await;
}

/// MQTT 5.0 [MQTT-3.1.4-3]: a second connection with the same client id takes the session
/// over: the old connection gets DISCONNECT 0x8E (without Session Expiry Interval,
/// [MQTT-3.14.2-2]) and is closed; the new one, with Clean Start 0, gets Session Present 1
/// ([MQTT-3.2.2-3]) and the session's subscriptions.
#[tokio::test]
async fn v5_takeover_disconnects_the_old_connection() {
    let broker = TestBroker::start().await;
    let v5 = ProtocolVersion::V5;
    let mut publisher = broker.client(v5, "pub").await;
    let (mut old, _) = open(&broker, connect(v5, "dup", false, Some(60))).await;
    old.subscribe("tk/#", QoS::AtLeastOnce).await;

    let (mut new, ack) = open(&broker, connect(v5, "dup", false, Some(60))).await;
    assert!(ack.session_present);
    let got = old.expect_closed().await;
    let [Packet::Disconnect(d)] = got.as_slice() else {
        panic!("expected one DISCONNECT, got {got:?}");
    };
    assert_eq!(d.reason_code, ReasonCode::SESSION_TAKEN_OVER);
    assert_eq!(d.properties.session_expiry_interval(), None);
    assert_eq!(broker.handle.session_count(), 2);

    publish(&mut publisher, "tk/a", b"to new", QoS::AtLeastOnce, 1).await;
    let p = new.recv_publish().await;
    assert_eq!(&p.payload[..], b"to new");
    acknowledge(&mut new, &p).await;

    // Taking over with Clean Start 1 discards the session.
    let (mut newer, ack) = open(&broker, connect(v5, "dup", true, Some(60))).await;
    assert!(!ack.session_present, "[MQTT-3.2.2-2]");
    let got = new.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::SESSION_TAKEN_OVER),
        "{got:?}"
    );
    publisher.publish0("tk/a", b"nobody").await;
    newer.expect_nothing(Duration::from_millis(200)).await;
    broker.stop().await;
}

/// MQTT 3.1.1 [MQTT-3.1.4-2]: the server disconnects the existing client with the same id
/// (no DISCONNECT packet in 3.1.1); Clean Session 0 resumes its session ([MQTT-3.2.2-2]).
#[tokio::test]
async fn v311_takeover_closes_the_old_connection() {
    let broker = TestBroker::start().await;
    let v3 = ProtocolVersion::V3_1_1;
    let mut publisher = broker.client(v3, "pub").await;
    let (mut old, _) = open(&broker, connect(v3, "dup3", false, None)).await;
    old.subscribe("tk3/#", QoS::AtLeastOnce).await;
    let (mut new, ack) = open(&broker, connect(v3, "dup3", false, None)).await;
    assert!(ack.session_present);
    assert_eq!(old.expect_closed().await, vec![]);
    publisher.publish0("tk3/a", b"to new").await;
    assert_eq!(&new.recv_publish().await.payload[..], b"to new");
    broker.stop().await;
}

/// On reconnect with Clean Start 0 the server resends unacknowledged QoS 1 PUBLISH packets
/// with their original Packet Identifiers ([MQTT-4.4.0-1]) and DUP 1 ([MQTT-3.3.1-1]), in
/// their original order (§4.6, the server's side of [MQTT-4.6.0-1]), before messages queued
/// while offline.
#[tokio::test]
async fn unacknowledged_qos1_resent_with_dup_in_order() {
    for version in VERSIONS {
        let broker = TestBroker::start().await;
        let mut publisher = broker.client(version, "pub").await;
        let (mut sub, _) = open(&broker, connect(version, "r", false, Some(60))).await;
        sub.subscribe("r/#", QoS::AtLeastOnce).await;
        let payloads: [&'static [u8]; 3] = [b"1", b"2", b"3"];
        for (i, payload) in payloads.iter().enumerate() {
            publish(
                &mut publisher,
                "r/x",
                payload,
                QoS::AtLeastOnce,
                i as u16 + 1,
            )
            .await;
        }
        let mut first = Vec::new();
        for payload in payloads {
            let p = sub.recv_publish().await;
            assert_eq!((&p.payload[..], p.dup), (payload, false));
            first.push(p.packet_id.expect("QoS 1 has an id"));
        }
        drop(sub); // no PUBACK, no DISCONNECT
        eventually("offline", || {
            Stats::get(&broker.handle.stats().clients_connected) == 1
        })
        .await;
        publish(&mut publisher, "r/x", b"4", QoS::AtLeastOnce, 9).await;

        let (mut sub, ack) = open(&broker, connect(version, "r", false, Some(60))).await;
        assert!(ack.session_present);
        for (payload, id) in payloads.iter().zip(&first) {
            let p = sub.recv_publish().await;
            assert_eq!(
                (&p.payload[..], p.dup, p.packet_id, p.qos),
                (*payload, true, Some(*id), QoS::AtLeastOnce),
                "{version}"
            );
        }
        let p = sub.recv_publish().await;
        assert_eq!((&p.payload[..], p.dup), (&b"4"[..], false), "{version}");
        for id in first.iter().chain(p.packet_id.iter()) {
            sub.send(&Packet::PubAck(PublishAck::new(*id))).await;
        }
        sub.expect_nothing(Duration::from_millis(200)).await;
        // Acknowledged: not resent on the next reconnect.
        disconnect(sub).await;
        let (mut sub, _) = open(&broker, connect(version, "r", false, Some(60))).await;
        sub.expect_nothing(Duration::from_millis(200)).await;
        broker.stop().await;
    }
}

/// On reconnect the server resends a PUBREL for a QoS 2 message whose PUBREC it had received
/// but whose PUBCOMP it had not ([MQTT-4.4.0-1]), not the PUBLISH.
#[tokio::test]
async fn pubrel_resent_for_qos2_awaiting_pubcomp() {
    for version in VERSIONS {
        let broker = TestBroker::start().await;
        let mut publisher = broker.client(version, "pub").await;
        let (mut sub, _) = open(&broker, connect(version, "r2", false, Some(60))).await;
        sub.subscribe("r2/#", QoS::ExactlyOnce).await;
        publish(&mut publisher, "r2/x", b"q2", QoS::ExactlyOnce, 1).await;
        let p = sub.recv_publish().await;
        let id = p.packet_id.expect("QoS 2 has an id");
        sub.send(&Packet::PubRec(PublishAck::new(id))).await;
        match sub.recv().await {
            Packet::PubRel(a) => assert_eq!(a.packet_id, id),
            other => panic!("expected PUBREL, got {other:?}"),
        }
        drop(sub); // no PUBCOMP

        let (mut sub, ack) = open(&broker, connect(version, "r2", false, Some(60))).await;
        assert!(ack.session_present);
        match sub.recv().await {
            Packet::PubRel(a) => assert_eq!(a.packet_id, id, "{version}"),
            other => panic!("{version}: expected PUBREL, got {other:?}"),
        }
        sub.send(&Packet::PubComp(PublishAck::new(id))).await;
        sub.expect_nothing(Duration::from_millis(200)).await;
        broker.stop().await;
    }
}

/// QoS 2 from a client across a reconnect: after PUBREC the server holds the Packet
/// Identifier; a resent PUBLISH (DUP 1) on the resumed session gets PUBREC again and is not
/// delivered a second time ([MQTT-4.3.3-10]; 3.1.1 [MQTT-4.3.3-2]); PUBREL gets PUBCOMP
/// ([MQTT-4.3.3-11]); afterwards the identifier starts a new message ([MQTT-4.3.3-12]).
#[tokio::test]
async fn inbound_qos2_not_delivered_twice_across_reconnect() {
    for version in VERSIONS {
        let broker = TestBroker::start().await;
        let mut sub = broker.client(version, "sub").await;
        sub.subscribe("in2/#", QoS::ExactlyOnce).await;

        let (mut publisher, _) = open(&broker, connect(version, "p2", false, Some(60))).await;
        let mut p = Publish::new(TopicName::new("in2/x").unwrap(), "once");
        p.qos = QoS::ExactlyOnce;
        p.packet_id = Some(pid(7));
        publisher.send(&Packet::Publish(p.clone())).await;
        match publisher.recv().await {
            Packet::PubRec(a) => assert_eq!(a.packet_id, pid(7)),
            other => panic!("expected PUBREC, got {other:?}"),
        }
        drop(publisher);

        let got = sub.recv_publish().await;
        assert_eq!(&got.payload[..], b"once");
        acknowledge(&mut sub, &got).await;

        let (mut publisher, ack_) = open(&broker, connect(version, "p2", false, Some(60))).await;
        assert!(ack_.session_present);
        p.dup = true;
        publisher.send(&Packet::Publish(p.clone())).await;
        match publisher.recv().await {
            Packet::PubRec(a) => assert_eq!(a.packet_id, pid(7)),
            other => panic!("expected PUBREC, got {other:?}"),
        }
        sub.expect_nothing(Duration::from_millis(300)).await;
        publisher
            .send(&Packet::PubRel(PublishAck::new(pid(7))))
            .await;
        match publisher.recv().await {
            Packet::PubComp(a) => {
                assert_eq!((a.packet_id, a.reason_code), (pid(7), ReasonCode::SUCCESS));
            }
            other => panic!("expected PUBCOMP, got {other:?}"),
        }
        // Same identifier after PUBCOMP: a new message.
        p.dup = false;
        p.payload = bytes::Bytes::from_static(b"again");
        publisher.send(&Packet::Publish(p)).await;
        assert!(matches!(publisher.recv().await, Packet::PubRec(_)));
        assert_eq!(&sub.recv_publish().await.payload[..], b"again", "{version}");
        broker.stop().await;
    }
}

/// A client whose old connection is still being closed by the server (here: disconnected for
/// overflowing its queue while the server is blocked writing to it, as with a stalled or
/// half-open connection) and that reconnects with Clean Start 0 resumes its session: Session
/// Present 1 and its subscriptions ([MQTT-3.2.2-3], [MQTT-3.1.2-5], [MQTT-3.1.2-23]), with no
/// orphaned subscriptions left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_while_old_connection_is_closing_resumes_the_session() {
    let mut config = midge_broker::Config::default();
    config.limits.max_write_buffer = 64 * 1024;
    config.limits.max_queued_messages = 2000;
    config.limits.queue_full_policy = midge_broker::config::QueueFullPolicy::Disconnect;
    let broker = TestBroker::start_with(config).await;
    let v5 = ProtocolVersion::V5;
    let (mut old, _) = open(&broker, connect(v5, "stalled", false, Some(60))).await;
    old.subscribe("st/#", QoS::AtMostOnce).await;
    old.subscribe("keep/#", QoS::AtLeastOnce).await;

    // Flood the old connection, which never reads, until its socket, write buffer and queue
    // are full and the server disconnects it; it then blocks writing the DISCONNECT.
    let mut publisher = broker.client(v5, "pub").await;
    let stats = broker.handle.stats();
    let mut sent = 0;
    while Stats::get(&stats.clients_connected) == 2 {
        assert!(sent < 30_000, "old connection never overflowed");
        for _ in 0..100 {
            publisher
                .send(&Packet::Publish(Publish::new(
                    TopicName::new("st/x").unwrap(),
                    vec![0u8; 1024],
                )))
                .await;
        }
        sent += 100;
        publisher.send(&Packet::PingReq).await;
        assert_eq!(publisher.recv().await, Packet::PingResp);
    }
    let (mut new, ack) = open(&broker, connect(v5, "stalled", false, Some(60))).await;
    assert!(
        ack.session_present,
        "session lost in a takeover during close"
    );
    publish(&mut publisher, "keep/x", b"kept", QoS::AtLeastOnce, 1).await;
    loop {
        let p = new.recv_publish().await;
        if p.topic.as_str() == "keep/x" {
            assert_eq!(&p.payload[..], b"kept");
            break;
        }
    }
    // One session per client id, and no orphaned subscriptions.
    assert_eq!(broker.handle.session_count(), 2);
    assert_eq!(broker.handle.subscription_count(), 2);
    drop(old);
    broker.stop().await;
}
