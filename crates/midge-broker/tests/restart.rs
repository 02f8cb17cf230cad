//! Durability across a broker restart (issue 5), in-process: a broker is stopped and a new
//! one started on the same `store.data_dir`. Persistent sessions come back with their
//! subscriptions and queues (Session Present 1), stored deliveries are resent with the
//! packet identifiers the client saw, QoS 2 state continues in both directions, retained
//! messages survive, and session expiry, will delay and message expiry continue from
//! wall-clock time.
//!
//! The kill -9 variant (a `midge serve` child killed under load) is `crates/midge/tests/crash.rs`.

use std::path::Path;
use std::time::{Duration, Instant};

use midge_broker::Config;
use midge_proto::{
    ByteString, ConnAck, Connect, Disconnect, Packet, PacketId, Property, ProtocolVersion, Publish,
    PublishAck, QoS, ReasonCode, TopicName, Will,
};
use midge_testkit::{RawClient, TestBroker};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

/// A broker whose store lives in `dir` (kept by the test across restarts).
async fn start(dir: &Path) -> TestBroker {
    start_with(dir, Config::default()).await
}

async fn start_with(dir: &Path, mut config: Config) -> TestBroker {
    config.store.data_dir = dir.to_owned();
    TestBroker::start_with(config).await
}

/// Stops `broker` (cleanly) and starts a new one on the same store.
async fn restart(broker: TestBroker, dir: &Path) -> TestBroker {
    broker.stop().await;
    start(dir).await
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

/// A CONNECT with Clean Start `clean` and, for MQTT 5, Session Expiry Interval `expiry`
/// (MQTT 3.1.1: Clean Session 0 keeps the session).
fn connect(version: ProtocolVersion, id: &str, clean: bool, expiry: u32) -> Connect {
    let mut c = Connect::new(version, id);
    c.clean_start = clean;
    if version.is_v5() && expiry != 0 {
        c.properties.push(Property::SessionExpiryInterval(expiry));
    }
    c
}

async fn open(broker: &TestBroker, connect: Connect) -> (RawClient, ConnAck) {
    let mut c = broker.raw(connect.protocol_version).await;
    c.send(&Packet::Connect(Box::new(connect))).await;
    match c.recv().await {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{ack:?}");
            (c, ack)
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// A persistent session (Clean Start 0, expiry 1 h) and its CONNACK.
async fn persistent(broker: &TestBroker, version: ProtocolVersion, id: &str) -> (RawClient, bool) {
    let (c, ack) = open(broker, connect(version, id, false, 3600)).await;
    (c, ack.session_present)
}

async fn disconnect(mut c: RawClient) {
    c.send(&Packet::Disconnect(Disconnect::default())).await;
    let _ = c.expect_closed().await;
}

fn publish_packet(topic: &str, payload: &'static [u8], qos: QoS, id: u16) -> Publish {
    let mut p = Publish::new(TopicName::new(topic).expect("valid topic"), payload);
    p.qos = qos;
    if qos != QoS::AtMostOnce {
        p.packet_id = Some(pid(id));
    }
    p
}

/// Publishes and completes the flow; returns the PUBACK/PUBREC reason code.
async fn publish(c: &mut RawClient, p: Publish) -> ReasonCode {
    let qos = p.qos;
    let id = p.packet_id;
    c.send(&Packet::Publish(p)).await;
    match qos {
        QoS::AtMostOnce => ReasonCode::SUCCESS,
        QoS::AtLeastOnce => match c.recv().await {
            Packet::PubAck(a) => {
                assert_eq!(Some(a.packet_id), id);
                a.reason_code
            }
            other => panic!("expected PUBACK, got {other:?}"),
        },
        QoS::ExactlyOnce => {
            let code = match c.recv().await {
                Packet::PubRec(a) => {
                    assert_eq!(Some(a.packet_id), id);
                    a.reason_code
                }
                other => panic!("expected PUBREC, got {other:?}"),
            };
            let id = id.expect("QoS 2 has an id");
            c.send(&Packet::PubRel(PublishAck::new(id))).await;
            match c.recv().await {
                Packet::PubComp(a) => assert_eq!(a.packet_id, id),
                other => panic!("expected PUBCOMP, got {other:?}"),
            }
            code
        }
    }
}

/// Acknowledges a received PUBLISH as its QoS requires.
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

/// A persistent session's subscriptions and its queued QoS 1 and QoS 2 messages come back
/// after a restart (Session Present 1, [MQTT-3.2.2-3]); the subscription keeps matching new
/// messages; QoS 0 is not queued offline by default.
#[tokio::test]
async fn persistent_session_and_queue_survive_restart() {
    for version in VERSIONS {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = start(dir.path()).await;
        let (mut sub, present) = persistent(&broker, version, "s1").await;
        assert!(!present);
        sub.subscribe("q/#", QoS::ExactlyOnce).await;
        disconnect(sub).await;

        let mut publisher = broker.client(version, "pub").await;
        publish(
            &mut publisher,
            publish_packet("q/0", b"zero", QoS::AtMostOnce, 0),
        )
        .await;
        publish(
            &mut publisher,
            publish_packet("q/1", b"one", QoS::AtLeastOnce, 1),
        )
        .await;
        publish(
            &mut publisher,
            publish_packet("q/2", b"two", QoS::ExactlyOnce, 2),
        )
        .await;
        drop(publisher);

        let broker = restart(broker, dir.path()).await;
        assert_eq!(broker.handle.subscription_count(), 1, "{version}");
        let (mut sub, present) = persistent(&broker, version, "s1").await;
        assert!(present, "{version}: Session Present after restart");
        let p1 = sub.recv_publish().await;
        assert_eq!(
            (p1.topic.as_str(), &p1.payload[..], p1.qos),
            ("q/1", &b"one"[..], QoS::AtLeastOnce),
            "{version}"
        );
        acknowledge(&mut sub, &p1).await;
        let p2 = sub.recv_publish().await;
        assert_eq!(
            (p2.topic.as_str(), &p2.payload[..], p2.qos),
            ("q/2", &b"two"[..], QoS::ExactlyOnce),
            "{version}"
        );
        acknowledge(&mut sub, &p2).await;
        sub.expect_nothing(Duration::from_millis(200)).await;

        // The subscription itself came back.
        let mut publisher = broker.client(version, "pub").await;
        publish(
            &mut publisher,
            publish_packet("q/3", b"three", QoS::AtLeastOnce, 3),
        )
        .await;
        let p3 = sub.recv_publish().await;
        assert_eq!(&p3.payload[..], b"three", "{version}");
        acknowledge(&mut sub, &p3).await;
        disconnect(sub).await;

        // Acknowledged messages are gone from the store: nothing after another restart.
        let broker = restart(broker, dir.path()).await;
        let (mut sub, present) = persistent(&broker, version, "s1").await;
        assert!(present);
        sub.expect_nothing(Duration::from_millis(300)).await;
        broker.stop().await;
    }
}

/// A QoS 1 message sent and not acknowledged before the restart is resent after it with the
/// same packet identifier and DUP 1 ([MQTT-4.4.0-1]); so is a QoS 2 PUBLISH whose PUBREC never
/// came. Both for a client that went away before the stop and for one still connected when
/// the server shut down.
#[tokio::test]
async fn inflight_resent_with_same_packet_id_and_dup_after_restart() {
    for version in VERSIONS {
        for connected_at_stop in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let broker = start(dir.path()).await;
            let (mut sub, _) = persistent(&broker, version, "inflight").await;
            sub.subscribe("i/#", QoS::ExactlyOnce).await;
            let mut publisher = broker.client(version, "pub").await;
            // Skip a few queue positions so the identifiers are not trivially 1, 2.
            for n in 0..5u16 {
                publish(
                    &mut publisher,
                    publish_packet("i/warm", b"w", QoS::AtLeastOnce, 10 + n),
                )
                .await;
                let p = sub.recv_publish().await;
                acknowledge(&mut sub, &p).await;
            }
            publish(
                &mut publisher,
                publish_packet("i/1", b"one", QoS::AtLeastOnce, 1),
            )
            .await;
            publish(
                &mut publisher,
                publish_packet("i/2", b"two", QoS::ExactlyOnce, 2),
            )
            .await;
            let first1 = sub.recv_publish().await;
            let first2 = sub.recv_publish().await;
            assert_eq!((&first1.payload[..], first1.dup), (&b"one"[..], false));
            assert_eq!((&first2.payload[..], first2.dup), (&b"two"[..], false));
            drop(publisher);
            // No PUBACK / PUBREC, no DISCONNECT: the client vanishes, or stays connected
            // while the server shuts down.
            let held = connected_at_stop.then_some(sub);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let broker = restart(broker, dir.path()).await;
            let (mut sub2, present) = persistent(&broker, version, "inflight").await;
            assert!(present);
            let again1 = sub2.recv_publish().await;
            let again2 = sub2.recv_publish().await;
            let what = format!("{version}, connected at stop: {connected_at_stop}");
            assert_eq!(
                (
                    &again1.payload[..],
                    again1.packet_id,
                    again1.qos,
                    again1.dup
                ),
                (&b"one"[..], first1.packet_id, QoS::AtLeastOnce, true),
                "{what}"
            );
            assert_eq!(
                (
                    &again2.payload[..],
                    again2.packet_id,
                    again2.qos,
                    again2.dup
                ),
                (&b"two"[..], first2.packet_id, QoS::ExactlyOnce, true),
                "{what}"
            );
            acknowledge(&mut sub2, &again1).await;
            acknowledge(&mut sub2, &again2).await;
            sub2.expect_nothing(Duration::from_millis(200)).await;
            drop(held);
            broker.stop().await;
        }
    }
}

/// After a restart the outgoing QoS 2 flow continues where it stopped: a message whose
/// PUBREC the server had received gets PUBREL, never the PUBLISH again ([MQTT-4.4.0-1]).
#[tokio::test]
async fn outgoing_qos2_pubrel_state_continues_after_restart() {
    for version in VERSIONS {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = start(dir.path()).await;
        let (mut sub, _) = persistent(&broker, version, "rel").await;
        sub.subscribe("r/#", QoS::ExactlyOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publish(
            &mut publisher,
            publish_packet("r/x", b"q2", QoS::ExactlyOnce, 1),
        )
        .await;
        let p = sub.recv_publish().await;
        let id = p.packet_id.expect("QoS 2 has an id");
        sub.send(&Packet::PubRec(PublishAck::new(id))).await;
        match sub.recv().await {
            Packet::PubRel(a) => assert_eq!(a.packet_id, id),
            other => panic!("expected PUBREL, got {other:?}"),
        }
        drop(sub); // no PUBCOMP
        drop(publisher);
        tokio::time::sleep(Duration::from_millis(100)).await;

        let broker = restart(broker, dir.path()).await;
        let (mut sub, present) = persistent(&broker, version, "rel").await;
        assert!(present);
        match sub.recv().await {
            Packet::PubRel(a) => assert_eq!(a.packet_id, id, "{version}"),
            other => panic!("{version}: expected PUBREL after restart, got {other:?}"),
        }
        sub.send(&Packet::PubComp(PublishAck::new(id))).await;
        sub.expect_nothing(Duration::from_millis(200)).await;
        disconnect(sub).await;

        // Completed: nothing comes back after another restart.
        let broker = restart(broker, dir.path()).await;
        let (mut sub, _) = persistent(&broker, version, "rel").await;
        sub.expect_nothing(Duration::from_millis(300)).await;
        broker.stop().await;
    }
}

/// A QoS 2 message received from a persistent session and awaiting PUBREL survives a
/// restart: the client's resent PUBLISH (DUP 1) is answered with PUBREC and not delivered a
/// second time ([MQTT-4.3.3-10]), and its PUBREL gets PUBCOMP with Success, not 0x92.
#[tokio::test]
async fn incoming_qos2_awaiting_pubrel_survives_restart() {
    for version in VERSIONS {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = start(dir.path()).await;
        let (mut sub, _) = persistent(&broker, version, "watcher").await;
        sub.subscribe("in/#", QoS::ExactlyOnce).await;
        let (mut publisher, _) = persistent(&broker, version, "p2").await;
        let mut p = publish_packet("in/x", b"once", QoS::ExactlyOnce, 7);
        publisher.send(&Packet::Publish(p.clone())).await;
        match publisher.recv().await {
            Packet::PubRec(a) => assert_eq!(a.packet_id, pid(7)),
            other => panic!("expected PUBREC, got {other:?}"),
        }
        let got = sub.recv_publish().await;
        assert_eq!(&got.payload[..], b"once");
        acknowledge(&mut sub, &got).await;
        disconnect(sub).await;
        drop(publisher); // PUBREL never sent

        let broker = restart(broker, dir.path()).await;
        let (mut sub, present) = persistent(&broker, version, "watcher").await;
        assert!(present);
        let (mut publisher, present) = persistent(&broker, version, "p2").await;
        assert!(present, "{version}");
        p.dup = true;
        publisher.send(&Packet::Publish(p.clone())).await;
        match publisher.recv().await {
            Packet::PubRec(a) => {
                assert_eq!((a.packet_id, a.reason_code), (pid(7), ReasonCode::SUCCESS));
            }
            other => panic!("expected PUBREC, got {other:?}"),
        }
        sub.expect_nothing(Duration::from_millis(300)).await;
        publisher
            .send(&Packet::PubRel(PublishAck::new(pid(7))))
            .await;
        match publisher.recv().await {
            Packet::PubComp(a) => {
                assert_eq!(
                    (a.packet_id, a.reason_code),
                    (pid(7), ReasonCode::SUCCESS),
                    "{version}"
                );
            }
            other => panic!("expected PUBCOMP, got {other:?}"),
        }
        disconnect(publisher).await;
        disconnect(sub).await;

        // Released: after another restart the identifier starts a new message.
        let broker = restart(broker, dir.path()).await;
        let (mut sub, _) = persistent(&broker, version, "watcher").await;
        let (mut publisher, _) = persistent(&broker, version, "p2").await;
        p.dup = false;
        p.payload = bytes::Bytes::from_static(b"again");
        assert_eq!(publish(&mut publisher, p).await, ReasonCode::SUCCESS);
        let got = sub.recv_publish().await;
        assert_eq!(&got.payload[..], b"again", "{version}");
        acknowledge(&mut sub, &got).await;
        broker.stop().await;
    }
}

/// Retained messages survive a restart; one cleared by an empty retained message stays
/// cleared; a retained message that expired while the broker was down is not sent.
#[tokio::test]
async fn retained_messages_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path()).await;
    let mut publisher = broker.client(ProtocolVersion::V5, "pub").await;
    for (topic, payload, qos) in [
        ("ret/a", &b"a1"[..], QoS::AtLeastOnce),
        ("ret/a", b"a2", QoS::AtLeastOnce),
        ("ret/b", b"b", QoS::ExactlyOnce),
        ("ret/c", b"c", QoS::AtMostOnce),
        ("ret/gone", b"x", QoS::AtLeastOnce),
        ("ret/gone", b"", QoS::AtLeastOnce),
    ] {
        let mut p = Publish::new(TopicName::new(topic).unwrap(), bytes::Bytes::from(payload));
        p.qos = qos;
        p.retain = true;
        if qos != QoS::AtMostOnce {
            p.packet_id = Some(pid(1));
        }
        publish(&mut publisher, p).await;
    }
    let mut short = publish_packet("ret/short", b"s", QoS::AtLeastOnce, 2);
    short.retain = true;
    short.properties.push(Property::MessageExpiryInterval(1));
    publish(&mut publisher, short).await;
    drop(publisher);
    broker.stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let broker = start(dir.path()).await;
    let mut sub = broker.client(ProtocolVersion::V5, "fresh").await;
    sub.subscribe("ret/#", QoS::AtLeastOnce).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let p = sub.recv_publish().await;
        assert!(p.retain, "{p:?}");
        got.push((p.topic.to_string(), p.payload.to_vec()));
        acknowledge(&mut sub, &p).await;
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            ("ret/a".to_owned(), b"a2".to_vec()),
            ("ret/b".to_owned(), b"b".to_vec()),
            ("ret/c".to_owned(), b"c".to_vec()),
        ]
    );
    sub.expect_nothing(Duration::from_millis(300)).await;
    assert_eq!(broker.handle.retained_count(), 4, "ret/short is expired");
    broker.stop().await;
}

/// Session expiry continues from wall-clock time across a restart: time spent with the
/// broker down counts. A session with 4 s left after a 1.5 s stop is still there; one with
/// 1 s is gone (Session Present 0); one with 3 s expires about on time after the restart.
#[tokio::test]
async fn session_expiry_continues_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path()).await;
    let v5 = ProtocolVersion::V5;
    for (id, expiry) in [("long", 5), ("short", 1), ("mid", 3)] {
        let (mut c, _) = open(&broker, connect(v5, id, false, expiry)).await;
        c.subscribe(&format!("exp/{id}"), QoS::AtLeastOnce).await;
        disconnect(c).await;
    }
    let disconnected = Instant::now();
    broker.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let broker = start(dir.path()).await;
    let (c, ack) = open(&broker, connect(v5, "long", false, 5)).await;
    assert!(ack.session_present, "5 s session after 1.5 s down");
    disconnect(c).await;
    let (c, ack) = open(&broker, connect(v5, "short", false, 1)).await;
    assert!(!ack.session_present, "1 s session after 1.5 s down");
    disconnect(c).await;

    // "mid" (3 s) must still exist now and be gone shortly after its deadline. ("short" is
    // a new session without subscriptions.)
    assert!(disconnected.elapsed() < Duration::from_millis(2700));
    assert_eq!(broker.handle.subscription_count(), 2, "long and mid");
    let deadline = disconnected + Duration::from_secs(3);
    tokio::time::sleep_until((deadline - Duration::from_millis(300)).into()).await;
    assert_eq!(broker.handle.subscription_count(), 2, "mid still there");
    let give_up = deadline + Duration::from_secs(2);
    while broker.handle.subscription_count() != 1 {
        assert!(Instant::now() < give_up, "mid did not expire on time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(disconnected.elapsed() >= Duration::from_millis(2900));
    let (_c, ack) = open(&broker, connect(v5, "mid", false, 3)).await;
    assert!(!ack.session_present);
    broker.stop().await;
}

/// A CONNECT with a will on `topic` delayed by `delay` seconds, session expiry `expiry`.
fn with_delayed_will(id: &str, topic: &str, delay: u32, expiry: u32) -> Connect {
    let mut c = connect(ProtocolVersion::V5, id, false, expiry);
    let mut will = Will::new(TopicName::new(topic).expect("will topic"), "will");
    will.qos = QoS::AtLeastOnce;
    will.properties.push(Property::WillDelayInterval(delay));
    c.will = Some(will);
    c
}

/// A delayed will survives a restart and is published about when it was due, counted from
/// the connection's end (MQTT 5.0 §3.1.3.2.2); a will whose session expired while the broker
/// was down is published at start-up, when the session ends (§3.1.2.5), and reaches a
/// persistent subscriber whatever the order in which sessions are recovered.
#[tokio::test]
async fn delayed_will_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path()).await;
    let v5 = ProtocolVersion::V5;
    // Subscribers with persistent sessions, recovered after ("z…") the wills' owners.
    let (mut w, _) = open(&broker, connect(v5, "z-watch", false, 3600)).await;
    w.subscribe("will/#", QoS::AtLeastOnce).await;
    disconnect(w).await;
    // Due 2.5 s after the drop; the session outlives it.
    let c = open(
        &broker,
        with_delayed_will("a-delayed", "will/delayed", 2, 60),
    )
    .await;
    // The session (1 s) ends before the will delay (30 s): the will goes at session end.
    let e = open(&broker, with_delayed_will("a-ends", "will/ends", 30, 1)).await;
    drop(c);
    drop(e);
    let dropped = Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    broker.stop().await;
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let broker = start(dir.path()).await;
    let (mut w, ack) = open(&broker, connect(v5, "z-watch", false, 3600)).await;
    assert!(ack.session_present);
    let p = w.recv_publish().await;
    assert_eq!(
        p.topic.as_str(),
        "will/ends",
        "the expired session's will, at start-up"
    );
    acknowledge(&mut w, &p).await;
    // The delayed will must not come early: checked by the time it arrives (a slow restart
    // on a loaded machine may already be past the delay here).
    let p = tokio::time::timeout(Duration::from_secs(3), w.recv_publish())
        .await
        .expect("delayed will after the restart");
    let at = dropped.elapsed();
    assert_eq!(p.topic.as_str(), "will/delayed");
    assert!(
        at >= Duration::from_millis(1900) && at < Duration::from_millis(6000),
        "delayed will (2 s) published {at:?} after the connection dropped"
    );
    acknowledge(&mut w, &p).await;
    broker.stop().await;
}

/// Message expiry continues across a restart: a queued message with 3 s left is delivered
/// after a 1.2 s stop with at most 2 s remaining ([MQTT-3.3.2-6]); one with 1 s that expired
/// while the broker was down is not delivered ([MQTT-3.3.2-5]).
#[tokio::test]
async fn message_expiry_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path()).await;
    let v5 = ProtocolVersion::V5;
    let (mut sub, _) = open(&broker, connect(v5, "exp-sub", false, 3600)).await;
    sub.subscribe("mx/#", QoS::AtLeastOnce).await;
    disconnect(sub).await;
    let mut publisher = broker.client(v5, "pub").await;
    let mut keep = publish_packet("mx/keep", b"keep", QoS::AtLeastOnce, 1);
    keep.properties.push(Property::MessageExpiryInterval(3));
    let mut lose = publish_packet("mx/lose", b"lose", QoS::AtLeastOnce, 2);
    lose.properties.push(Property::MessageExpiryInterval(1));
    publish(&mut publisher, lose).await;
    publish(&mut publisher, keep).await;
    drop(publisher);
    broker.stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let broker = start(dir.path()).await;
    let (mut sub, ack) = open(&broker, connect(v5, "exp-sub", false, 3600)).await;
    assert!(ack.session_present);
    let p = sub.recv_publish().await;
    assert_eq!(&p.payload[..], b"keep");
    let left = p
        .properties
        .message_expiry_interval()
        .expect("Message Expiry Interval forwarded");
    assert!((1..=2).contains(&left), "remaining expiry {left}");
    acknowledge(&mut sub, &p).await;
    sub.expect_nothing(Duration::from_millis(300)).await;
    broker.stop().await;
}

/// A QoS 1 message for an offline persistent subscriber is acknowledged and then survives an
/// immediate stop and start (PUBACK follows the commit that holds it); the same for QoS 2
/// (PUBREC) and for an MQTT 3.1.1 subscriber.
#[tokio::test]
async fn acknowledged_message_survives_immediate_restart() {
    for version in VERSIONS {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = start(dir.path()).await;
        let (mut sub, _) = persistent(&broker, version, "offline").await;
        sub.subscribe("ack/#", QoS::ExactlyOnce).await;
        disconnect(sub).await;
        let mut publisher = broker.raw(version).await;
        publisher.connect(Connect::new(version, "pub")).await;
        publisher
            .send(&Packet::Publish(publish_packet(
                "ack/1",
                b"one",
                QoS::AtLeastOnce,
                1,
            )))
            .await;
        assert!(
            matches!(publisher.recv().await, Packet::PubAck(a) if a.reason_code == ReasonCode::SUCCESS)
        );
        publisher
            .send(&Packet::Publish(publish_packet(
                "ack/2",
                b"two",
                QoS::ExactlyOnce,
                2,
            )))
            .await;
        assert!(
            matches!(publisher.recv().await, Packet::PubRec(a) if a.reason_code == ReasonCode::SUCCESS)
        );
        let broker = restart(broker, dir.path()).await;
        let (mut sub, present) = persistent(&broker, version, "offline").await;
        assert!(present);
        let mut got = Vec::new();
        for _ in 0..2 {
            let p = sub.recv_publish().await;
            got.push(p.payload.to_vec());
            acknowledge(&mut sub, &p).await;
        }
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()], "{version}");
        drop(publisher);
        broker.stop().await;
    }
}

/// A session whose client id is not valid as a topic still round-trips (the store keys by
/// client id, whatever its characters).
#[tokio::test]
async fn unusual_client_ids_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path()).await;
    let ids = ["with space", "+/#", "ünïcødé"];
    for id in ids {
        let (mut c, _) = open(&broker, connect(ProtocolVersion::V5, id, false, 3600)).await;
        c.subscribe("u/#", QoS::AtLeastOnce).await;
        disconnect(c).await;
    }
    let broker = restart(broker, dir.path()).await;
    for id in ids {
        let mut c = connect(ProtocolVersion::V5, id, false, 3600);
        c.client_id = ByteString::from(id);
        let (_c, ack) = open(&broker, c).await;
        assert!(ack.session_present, "{id:?}");
    }
    broker.stop().await;
}

/// A message dropped because the session's queue was full is not stored either: it does not
/// come back after a restart (queue limit 2, newest dropped; and oldest dropped).
#[tokio::test]
async fn messages_dropped_for_a_full_queue_stay_dropped_after_restart() {
    use midge_broker::config::QueueFullPolicy;
    for (policy, expected) in [
        (QueueFullPolicy::DropNewest, [&b"1"[..], b"2"]),
        (QueueFullPolicy::DropOldest, [&b"2"[..], b"3"]),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::default();
        config.limits.max_queued_messages = 2;
        config.limits.queue_full_policy = policy;
        let broker = start_with(dir.path(), config.clone()).await;
        let (mut sub, _) = persistent(&broker, ProtocolVersion::V5, "small").await;
        sub.subscribe("full/#", QoS::AtLeastOnce).await;
        disconnect(sub).await;
        let mut publisher = broker.client(ProtocolVersion::V5, "pub").await;
        for (i, payload) in [&b"1"[..], b"2", b"3"].into_iter().enumerate() {
            let p = Publish {
                qos: QoS::AtLeastOnce,
                packet_id: Some(pid(i as u16 + 1)),
                ..Publish::new(
                    TopicName::new("full/x").unwrap(),
                    bytes::Bytes::from(payload),
                )
            };
            publish(&mut publisher, p).await;
        }
        drop(publisher);
        broker.stop().await;
        let broker = start_with(dir.path(), config).await;
        let (mut sub, _) = persistent(&broker, ProtocolVersion::V5, "small").await;
        for payload in expected {
            let p = sub.recv_publish().await;
            assert_eq!(&p.payload[..], payload, "{policy:?}");
            acknowledge(&mut sub, &p).await;
        }
        sub.expect_nothing(Duration::from_millis(300)).await;
        broker.stop().await;
    }
}

/// `store.max_store_bytes` counts what the store holds across a restart: a store filled to
/// its limit still refuses new persistent messages (Quota exceeded) after a restart, and
/// takes them again once the subscriber has consumed its queue.
#[tokio::test]
async fn store_size_limit_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.store.max_store_bytes = 20_000;
    let broker = start_with(dir.path(), config.clone()).await;
    let (mut sub, _) = persistent(&broker, ProtocolVersion::V5, "limited").await;
    sub.subscribe("lim/#", QoS::AtLeastOnce).await;
    disconnect(sub).await;
    let mut publisher = broker.client(ProtocolVersion::V5, "pub").await;
    let payload = bytes::Bytes::from(vec![7u8; 1024]);
    let mut accepted = 0;
    for i in 1..=100u16 {
        let p = Publish {
            qos: QoS::AtLeastOnce,
            packet_id: Some(pid(i)),
            ..Publish::new(TopicName::new("lim/x").expect("topic"), payload.clone())
        };
        match publish(&mut publisher, p).await {
            ReasonCode::SUCCESS => accepted += 1,
            ReasonCode::QUOTA_EXCEEDED => break,
            other => panic!("PUBACK {other:?}"),
        }
    }
    assert!(
        (15..=21).contains(&accepted),
        "{accepted} KiB messages under 20,000 bytes"
    );
    drop(publisher);

    broker.stop().await;
    let broker = start_with(dir.path(), config).await;
    let mut publisher = broker.client(ProtocolVersion::V5, "pub").await;
    let p = Publish {
        qos: QoS::AtLeastOnce,
        packet_id: Some(pid(1)),
        ..Publish::new(TopicName::new("lim/x").expect("topic"), payload.clone())
    };
    assert_eq!(
        publish(&mut publisher, p.clone()).await,
        ReasonCode::QUOTA_EXCEEDED,
        "still full after the restart"
    );
    let (mut sub, _) = persistent(&broker, ProtocolVersion::V5, "limited").await;
    for _ in 0..accepted {
        let got = sub.recv_publish().await;
        acknowledge(&mut sub, &got).await;
    }
    disconnect(sub).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match publish(&mut publisher, p.clone()).await {
            ReasonCode::SUCCESS => break,
            ReasonCode::QUOTA_EXCEEDED if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("after consuming the queue: {other:?}"),
        }
    }
    broker.stop().await;
}
