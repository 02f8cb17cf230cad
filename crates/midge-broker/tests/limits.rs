//! Limits that protect the broker (architecture §3 "Memory": bounded queues everywhere, what
//! happens when they fill is configurable and counted): `limits.max_connections`,
//! `limits.max_packet_size` (MQTT 5.0 §3.2.2.3.6), per-session queue limits and their policies,
//! and a slow consumer that must not hold up anyone else.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use midge_broker::Config;
use midge_broker::config::QueueFullPolicy;
use midge_broker::stats::Stats;
use midge_proto::{
    ConnAck, Connect, Disconnect, Packet, PacketId, Property, ProtocolVersion, Publish, PublishAck,
    QoS, ReasonCode, TopicName,
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

/// A persistent-session CONNECT (Clean Start 0; MQTT 5: Session Expiry 60 s).
fn persistent(version: ProtocolVersion, id: &str) -> Connect {
    let mut c = Connect::new(version, id);
    c.clean_start = false;
    if version.is_v5() {
        c.properties.push(Property::SessionExpiryInterval(60));
    }
    c
}

/// Publishes at QoS 1 with packet id `id` and waits for the PUBACK.
async fn publish1(c: &mut RawClient, topic: &str, payload: impl Into<Bytes>, id: u16) {
    let mut p = Publish::new(TopicName::new(topic).expect("valid topic"), payload.into());
    p.qos = QoS::AtLeastOnce;
    p.packet_id = PacketId::new(id);
    c.send(&Packet::Publish(p)).await;
    match c.recv().await {
        Packet::PubAck(a) => assert_eq!(a.packet_id.get(), id),
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

fn dropped(stats: &Stats) -> u64 {
    Stats::get(&stats.publish_dropped)
}

/// Waits (up to 3 s) until `f` holds.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `limits.max_connections` refuses the connection over the limit: MQTT 5 with CONNACK 0x97
/// Quota exceeded, MQTT 3.1.1 with return code 3 Server unavailable, then closes
/// (MQTT 5.0 [MQTT-3.2.2-7]; MQTT 3.1.1 [MQTT-3.2.2-5]). A place freed by a disconnect can be
/// used again.
#[tokio::test]
async fn max_connections_refuses_the_extra_connection() {
    let mut config = Config::default();
    config.limits.max_connections = 2;
    let broker = TestBroker::start_with(config).await;
    let first = broker.client(ProtocolVersion::V5, "one").await;
    let mut second = broker.client(ProtocolVersion::V3_1_1, "two").await;

    let mut extra = broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut extra, Connect::new(ProtocolVersion::V5, "three")).await;
    assert_eq!(ack.reason_code, ReasonCode::QUOTA_EXCEEDED);
    assert!(!ack.session_present);
    assert_eq!(extra.expect_closed().await, vec![]);

    let mut extra3 = broker.raw(ProtocolVersion::V3_1_1).await;
    extra3
        .send(&Packet::Connect(Box::new(Connect::new(
            ProtocolVersion::V3_1_1,
            "four",
        ))))
        .await;
    extra3.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x03]).await;
    assert_eq!(extra3.expect_closed().await, vec![]);
    // Refused clients got no session; the admitted ones are unharmed.
    assert_eq!(broker.handle.session_count(), 2);
    second.send(&Packet::PingReq).await;
    assert_eq!(second.recv().await, Packet::PingResp);

    drop(first);
    let mut again = broker.raw(ProtocolVersion::V5).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let ack = connack(&mut again, Connect::new(ProtocolVersion::V5, "five")).await;
        if ack.reason_code == ReasonCode::SUCCESS {
            break;
        }
        // The first connection's task may still be finishing.
        assert!(Instant::now() < deadline, "place never freed: {ack:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        again = broker.raw(ProtocolVersion::V5).await;
    }
    broker.stop().await;
}

/// `limits.max_packet_size` is advertised as Maximum Packet Size (MQTT 5.0 §3.2.2.3.6) and
/// enforced: a PUBLISH of exactly that size is accepted, one byte more is a "Packet too
/// large" error, DISCONNECT 0x95 for MQTT 5 (§3.2.2.3.6, §4.13) and a plain close for MQTT
/// 3.1.1, and neither harms another connected client.
#[tokio::test]
async fn oversized_packet_disconnects_only_the_sender() {
    let mut config = Config::default();
    config.limits.max_packet_size = 1024;
    let broker = TestBroker::start_with(config).await;
    let mut other = broker.client(ProtocolVersion::V5, "other").await;
    other.subscribe("big/#", QoS::AtMostOnce).await;

    let mut big = broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut big, Connect::new(ProtocolVersion::V5, "big")).await;
    assert_eq!(ack.properties.maximum_packet_size(), Some(1024));
    // 1 (type) + 2 (Remaining Length 1021) + 2 + 5 ("big/x") + 1 (no properties) + 1013 = 1024.
    let fits = Packet::Publish(Publish::new(
        TopicName::new("big/x").unwrap(),
        vec![b'a'; 1013],
    ));
    assert_eq!(fits.encoded_len(ProtocolVersion::V5).unwrap(), 1024);
    big.send(&fits).await;
    assert_eq!(other.recv_publish().await.payload.len(), 1013);
    big.send(&Packet::Publish(Publish::new(
        TopicName::new("big/x").unwrap(),
        vec![b'b'; 1014],
    )))
    .await;
    let got = big.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::PACKET_TOO_LARGE),
        "{got:?}"
    );

    let mut big3 = broker.client(ProtocolVersion::V3_1_1, "big3").await;
    big3.send(&Packet::Publish(Publish::new(
        TopicName::new("big/y").unwrap(),
        vec![b'c'; 4000],
    )))
    .await;
    assert_eq!(big3.expect_closed().await, vec![]);

    // The other client saw neither oversized message and still works.
    other.expect_nothing(Duration::from_millis(200)).await;
    let mut small = broker.client(ProtocolVersion::V3_1_1, "small").await;
    small.publish0("big/z", b"small").await;
    assert_eq!(&other.recv_publish().await.payload[..], b"small");
    other.send(&Packet::PingReq).await;
    assert_eq!(other.recv().await, Packet::PingResp);
    broker.stop().await;
}

/// An offline persistent session queues at most `limits.max_queued_messages` messages; each
/// message that does not fit is counted in `publish_dropped`. `drop-newest` (the default)
/// keeps the first five, `drop-oldest` the last five; either way order is kept
/// ([MQTT-4.6.0-6]).
#[tokio::test]
async fn offline_queue_is_bounded_and_drops_are_counted() {
    for (policy, kept) in [
        (QueueFullPolicy::DropNewest, 0..5),
        (QueueFullPolicy::DropOldest, 3..8),
    ] {
        let mut config = Config::default();
        config.limits.max_queued_messages = 5;
        config.limits.queue_full_policy = policy;
        let broker = TestBroker::start_with(config).await;
        let mut sub = broker.raw(ProtocolVersion::V5).await;
        connack(&mut sub, persistent(ProtocolVersion::V5, "offline")).await;
        sub.subscribe("q/#", QoS::AtLeastOnce).await;
        sub.send(&Packet::Disconnect(Disconnect::default())).await;
        sub.expect_closed().await;

        let before = dropped(broker.handle.stats());
        let mut publisher = broker.client(ProtocolVersion::V3_1_1, "pub").await;
        for i in 0..8u16 {
            publish1(&mut publisher, "q/x", format!("m{i}"), i + 1).await;
        }
        assert_eq!(dropped(broker.handle.stats()) - before, 3, "{policy:?}");

        let mut sub = broker.raw(ProtocolVersion::V5).await;
        let ack = connack(&mut sub, persistent(ProtocolVersion::V5, "offline")).await;
        assert!(ack.session_present);
        for i in kept {
            let p = sub.recv_publish().await;
            assert_eq!(&p.payload[..], format!("m{i}").as_bytes(), "{policy:?}");
            sub.send(&Packet::PubAck(PublishAck::new(p.packet_id.unwrap())))
                .await;
        }
        sub.expect_nothing(Duration::from_millis(200)).await;
        broker.stop().await;
    }
}

/// With `queue_full_policy = "disconnect"`, an online subscriber whose queue overflows (it
/// does not acknowledge, so its inflight window stays full) is disconnected with DISCONNECT
/// 0x97 Quota exceeded (MQTT 5.0 §3.14.2.1); its session keeps what was in flight and queued,
/// and the overflowing messages are counted as dropped.
#[tokio::test]
async fn disconnect_policy_disconnects_an_overflowing_subscriber() {
    let mut config = Config::default();
    config.limits.max_inflight_messages = 2;
    config.limits.max_queued_messages = 5;
    config.limits.queue_full_policy = QueueFullPolicy::Disconnect;
    let broker = TestBroker::start_with(config).await;
    let mut sub = broker.raw(ProtocolVersion::V5).await;
    connack(&mut sub, persistent(ProtocolVersion::V5, "slow")).await;
    sub.subscribe("d/#", QoS::AtLeastOnce).await;

    let before = dropped(broker.handle.stats());
    let mut publisher = broker.client(ProtocolVersion::V5, "pub").await;
    for i in 0..10u16 {
        publish1(&mut publisher, "d/x", format!("m{i}"), i + 1).await;
    }
    let got = sub.expect_closed().await;
    let (last, publishes) = got.split_last().expect("a DISCONNECT");
    assert!(
        matches!(last, Packet::Disconnect(d) if d.reason_code == ReasonCode::QUOTA_EXCEEDED),
        "{got:?}"
    );
    assert!(publishes.len() <= 2, "inflight window exceeded: {got:?}");
    assert!(
        publishes.iter().all(|p| matches!(p, Packet::Publish(_))),
        "{got:?}"
    );
    assert_eq!(dropped(broker.handle.stats()) - before, 3);

    // The session kept the 2 in flight and the 5 queued: m0..m6, in order.
    let mut sub = broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut sub, persistent(ProtocolVersion::V5, "slow")).await;
    assert!(ack.session_present);
    for i in 0..7 {
        let p = sub.recv_publish().await;
        assert_eq!(&p.payload[..], format!("m{i}").as_bytes());
        sub.send(&Packet::PubAck(PublishAck::new(p.packet_id.unwrap())))
            .await;
    }
    sub.expect_nothing(Duration::from_millis(200)).await;
    broker.stop().await;
}

/// The `disconnect` policy also reaches a subscriber that stopped reading altogether (its
/// socket and write buffer full, so the server no longer drains its queue): once its queue
/// overflows it is disconnected, instead of staying connected with every message dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_policy_disconnects_a_stalled_subscriber() {
    let mut config = Config::default();
    // A queue large enough that only a stalled connection (not a merely busy one) fills it.
    config.limits.max_queued_messages = 2000;
    config.limits.max_write_buffer = 64 * 1024;
    config.limits.queue_full_policy = QueueFullPolicy::Disconnect;
    let broker = TestBroker::start_with(config).await;
    let mut stalled = broker.client(ProtocolVersion::V5, "stalled").await;
    stalled.subscribe("st/#", QoS::AtMostOnce).await;
    let mut publisher = broker.client(ProtocolVersion::V5, "pub").await;
    let stats = broker.handle.stats();
    let topic = TopicName::new("st/x").unwrap();
    let mut sent = 0;
    while Stats::get(&stats.clients_connected) == 2 {
        assert!(
            sent < 30_000,
            "stalled subscriber still connected; {} messages dropped",
            dropped(stats)
        );
        for _ in 0..100 {
            publisher
                .send(&Packet::Publish(Publish::new(
                    topic.clone(),
                    vec![0u8; 1024],
                )))
                .await;
        }
        sent += 100;
        publisher.send(&Packet::PingReq).await;
        assert_eq!(publisher.recv().await, Packet::PingResp);
    }
    assert!(dropped(stats) > 0);
    // The stalled client finds its connection closed once it reads what was sent.
    // (The server gives up writing to it after a while, so the stream may end mid-packet.)
    loop {
        match stalled.try_recv(Duration::from_secs(3)).await {
            Ok(Some(Packet::Publish(_))) => {}
            Ok(Some(Packet::Disconnect(d))) => {
                assert_eq!(d.reason_code, ReasonCode::QUOTA_EXCEEDED);
            }
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            Ok(None) => break,
            Err(e) if e.starts_with("decode") => break,
            Err(e) => panic!("stalled connection not closed: {e}"),
        }
    }
    broker.stop().await;
}

/// A subscriber that never reads fills its socket, write buffer and queue; the broker then
/// drops (and counts) its QoS 0 messages but keeps serving everyone else: another subscriber
/// receives all 5000 1 KB messages in order and new clients are served promptly
/// (architecture §3 "Concurrency" and "Memory").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_does_not_hold_up_others() {
    const MESSAGES: usize = 5000;
    const BATCH: usize = 100;
    let mut config = Config::default();
    config.limits.max_queued_messages = 200;
    config.limits.max_write_buffer = 64 * 1024;
    let broker = TestBroker::start_with(config).await;

    let mut stalled = broker.client(ProtocolVersion::V3_1_1, "stalled").await;
    stalled.subscribe("flood/#", QoS::AtMostOnce).await;

    let mut fast = broker.client(ProtocolVersion::V3_1_1, "fast").await;
    fast.subscribe("flood/#", QoS::AtMostOnce).await;
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let reader = tokio::spawn(async move {
        for i in 0..MESSAGES {
            let p = fast.recv_publish().await;
            assert_eq!(p.payload.len(), 1024);
            let n = u32::from_be_bytes(p.payload[..4].try_into().unwrap());
            assert_eq!(n as usize, i, "out of order or lost");
            counter.store(i + 1, Ordering::Release);
        }
        fast
    });

    let mut publisher = broker.client(ProtocolVersion::V3_1_1, "flooder").await;
    let topic = TopicName::new("flood/x").unwrap();
    let started = Instant::now();
    for batch in 0..MESSAGES / BATCH {
        for i in batch * BATCH..(batch + 1) * BATCH {
            let mut payload = vec![0u8; 1024];
            payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
            publisher
                .send(&Packet::Publish(Publish::new(topic.clone(), payload)))
                .await;
        }
        // Pace on the fast subscriber only (its queue holds 200): the stalled one must not
        // matter.
        let target = (batch + 1) * BATCH;
        let deadline = Instant::now() + Duration::from_secs(10);
        while received.load(Ordering::Acquire) < target {
            assert!(
                Instant::now() < deadline,
                "fast subscriber stuck at {} of {target}",
                received.load(Ordering::Acquire)
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut fast = reader
        .await
        .expect("fast subscriber got everything in order");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    // The stalled subscriber really was backed up: its overflow was dropped and counted.
    assert!(
        dropped(broker.handle.stats()) > 0,
        "stalled subscriber never filled up"
    );

    // Still responsive: the publisher, the fast subscriber and a new client are served at once.
    let t = Instant::now();
    publisher.send(&Packet::PingReq).await;
    assert_eq!(publisher.recv().await, Packet::PingResp);
    fast.send(&Packet::PingReq).await;
    assert_eq!(fast.recv().await, Packet::PingResp);
    let mut newcomer = broker.client(ProtocolVersion::V5, "newcomer").await;
    newcomer.send(&Packet::PingReq).await;
    assert_eq!(newcomer.recv().await, Packet::PingResp);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "slow: {:?}",
        t.elapsed()
    );

    // What the stalled subscriber does get, once it reads, is an in-order subsequence.
    let mut last = None;
    let mut got = 0;
    while let Ok(Some(packet)) = stalled.try_recv(Duration::from_millis(500)).await {
        let Packet::Publish(p) = packet else {
            panic!("unexpected {packet:?}");
        };
        let n = u32::from_be_bytes(p.payload[..4].try_into().unwrap());
        assert!(last < Some(n), "stalled subscriber out of order");
        last = Some(n);
        got += 1;
    }
    assert!(got < MESSAGES, "stalled subscriber lost nothing?");
    eventually("all still connected", || {
        Stats::get(&broker.handle.stats().clients_connected) == 4
    })
    .await;
    broker.stop().await;
}
