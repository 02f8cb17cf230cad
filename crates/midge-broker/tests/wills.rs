//! Will Messages (MQTT 3.1.1 §3.1.2.5, §3.14.4; MQTT 5.0 §3.1.2.5, §3.1.3.2, §3.14.2.1):
//! when a will is published and when it is not, its QoS, RETAIN and properties, and the Will
//! Delay Interval.

use std::time::{Duration, Instant};

use bytes::Bytes;
use midge_proto::{
    ByteString, ConnAck, Connect, Disconnect, Packet, Property, ProtocolVersion, Publish, QoS,
    ReasonCode, TopicName, Will,
};
use midge_testkit::{RawClient, TestBroker};

const ALL_VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

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

/// A CONNECT for `id` with a QoS 0, non-retained will on `topic` carrying `payload`.
fn with_will(version: ProtocolVersion, id: &str, topic: &str, payload: &'static str) -> Connect {
    let mut c = Connect::new(version, id);
    c.will = Some(Will::new(
        TopicName::new(topic).expect("valid topic"),
        payload,
    ));
    c
}

/// Connects `connect` and returns the client.
async fn open(broker: &TestBroker, connect: Connect) -> RawClient {
    let mut c = broker.raw(connect.protocol_version).await;
    connack(&mut c, connect).await;
    c
}

/// An MQTT 5 client subscribed to `filter` at QoS 2.
async fn watcher(broker: &TestBroker, id: &str, filter: &str) -> RawClient {
    let mut w = broker.client(ProtocolVersion::V5, id).await;
    w.subscribe(filter, QoS::ExactlyOnce).await;
    w
}

/// Receives the next PUBLISH and checks its topic and payload.
async fn expect_will(w: &mut RawClient, topic: &str, payload: &str) -> Publish {
    let p = w.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        (topic, payload.as_bytes())
    );
    p
}

/// A will is published when the network connection closes without DISCONNECT (MQTT 3.1.1
/// [MQTT-3.1.2-8]; MQTT 5.0 [MQTT-3.1.2-8], §3.1.2.5), for every protocol version; it is
/// published once and then removed ([MQTT-3.1.2-10]).
#[tokio::test]
async fn will_published_when_connection_closes_without_disconnect() {
    let broker = TestBroker::start().await;
    let mut w = watcher(&broker, "watch", "will/#").await;
    for version in ALL_VERSIONS {
        let id = format!("dies-{}", version.level());
        let topic = format!("will/{}", version.level());
        let c = open(&broker, with_will(version, &id, &topic, "gone")).await;
        drop(c);
        let p = expect_will(&mut w, &topic, "gone").await;
        assert_eq!((p.qos, p.retain), (QoS::AtMostOnce, false));
    }
    w.expect_nothing(Duration::from_millis(200)).await;
    broker.stop().await;
}

/// A client silent for 1.5 × its Keep Alive is disconnected as if the network had failed, so
/// its will is published (MQTT 5.0 [MQTT-3.1.2-22]; MQTT 3.1.1 [MQTT-3.1.2-24]); an MQTT 5
/// client is told Keep Alive timeout (0x8D). A client that keeps sending PINGREQ within the
/// interval is not disconnected.
#[tokio::test]
async fn will_published_on_keep_alive_timeout() {
    let broker = TestBroker::start().await;
    let mut w = watcher(&broker, "watch", "ka/#").await;
    let mut connect = with_will(ProtocolVersion::V5, "ka5", "ka/5", "timeout");
    connect.keep_alive = 1;
    let mut c5 = open(&broker, connect).await;
    let mut connect = with_will(ProtocolVersion::V3_1_1, "ka3", "ka/3", "timeout");
    connect.keep_alive = 1;
    let mut c3 = open(&broker, connect).await;

    // Alive while it talks: five PINGREQs 0.4 s apart span 2 s > 1.5 s.
    for _ in 0..5 {
        c5.send(&Packet::PingReq).await;
        assert_eq!(c5.recv().await, Packet::PingResp);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // c3 has been silent all along: its will is out already.
    expect_will(&mut w, "ka/3", "timeout").await;
    assert_eq!(c3.expect_closed().await, vec![]);

    let silent_since = Instant::now();
    let got = c5.expect_closed().await;
    let elapsed = silent_since.elapsed();
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::KEEP_ALIVE_TIMEOUT),
        "{got:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(1000) && elapsed < Duration::from_secs(3),
        "disconnected after {elapsed:?} of silence"
    );
    expect_will(&mut w, "ka/5", "timeout").await;
    broker.stop().await;
}

/// A connection closed by the server for a protocol violation publishes its will (MQTT 5.0
/// §3.1.2.5: "a protocol error"; MQTT 3.1.1 §3.1.2.5 "The Server closes the Network Connection
/// because of a protocol error"): a second CONNECT ([MQTT-3.1.0-2]), a malformed PUBLISH, and
/// a DISCONNECT that is not valid (non-zero Session Expiry after 0, §3.14.2.2.2).
#[tokio::test]
async fn will_published_on_protocol_error() {
    let broker = TestBroker::start().await;
    let mut w = watcher(&broker, "watch", "pe/#").await;

    let mut c = open(
        &broker,
        with_will(ProtocolVersion::V3_1_1, "pe1", "pe/1", "x"),
    )
    .await;
    c.send(&Packet::Connect(Box::new(Connect::new(
        ProtocolVersion::V3_1_1,
        "pe1",
    ))))
    .await;
    assert_eq!(c.expect_closed().await, vec![]);
    expect_will(&mut w, "pe/1", "x").await;

    // PUBLISH with both QoS bits set (QoS 3) is malformed ([MQTT-3.3.1-4]).
    let mut c = open(&broker, with_will(ProtocolVersion::V5, "pe2", "pe/2", "y")).await;
    c.send_raw(&[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01])
        .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::MALFORMED_PACKET),
        "{got:?}"
    );
    expect_will(&mut w, "pe/2", "y").await;

    let mut c = open(&broker, with_will(ProtocolVersion::V5, "pe3", "pe/3", "z")).await;
    let mut d = Disconnect::default();
    d.properties.push(Property::SessionExpiryInterval(10));
    c.send(&Packet::Disconnect(d)).await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::PROTOCOL_ERROR),
        "{got:?}"
    );
    expect_will(&mut w, "pe/3", "z").await;
    broker.stop().await;
}

/// The will of a connection that is taken over is published (MQTT 5.0 §3.1.4 step 3: "If the
/// existing Client has a Will Message, that Will Message is published"; MQTT 3.1.1
/// [MQTT-3.1.4-2] closes the old connection, which is not a DISCONNECT): for MQTT 3.1.1, for
/// MQTT 5 with Clean Start 1, and for MQTT 5 resuming with Clean Start 0 (no Will Delay).
#[tokio::test]
async fn will_published_on_takeover() {
    let broker = TestBroker::start().await;
    let mut w = watcher(&broker, "watch", "tk/#").await;
    for (version, clean) in [
        (ProtocolVersion::V3_1_1, true),
        (ProtocolVersion::V5, true),
        (ProtocolVersion::V5, false),
    ] {
        let topic = format!("tk/{}/{clean}", version.level());
        let mut old_connect = with_will(version, "same", &topic, "taken");
        old_connect.clean_start = clean;
        if version.is_v5() {
            old_connect
                .properties
                .push(Property::SessionExpiryInterval(60));
        }
        let mut old = open(&broker, old_connect).await;
        let mut new_connect = Connect::new(version, "same");
        new_connect.clean_start = clean;
        let mut new = open(&broker, new_connect).await;
        old.expect_closed().await;
        expect_will(&mut w, &topic, "taken").await;
        // The new connection has no will: closing it publishes nothing.
        new.send(&Packet::Disconnect(Disconnect::default())).await;
        new.expect_closed().await;
    }
    w.expect_nothing(Duration::from_millis(200)).await;
    broker.stop().await;
}

/// A normal DISCONNECT discards the will without publishing it (MQTT 3.1.1 [MQTT-3.14.4-3],
/// [MQTT-3.1.2-10]; MQTT 5.0 [MQTT-3.14.4-3] for reason 0x00, [MQTT-3.1.2-10]), also when
/// the session lives on and later expires.
#[tokio::test]
async fn no_will_on_normal_disconnect() {
    let broker = TestBroker::start().await;
    let mut w = watcher(&broker, "watch", "nd/#").await;
    for version in ALL_VERSIONS {
        let topic = format!("nd/{}", version.level());
        let mut connect = with_will(version, &format!("nd{}", version.level()), &topic, "no");
        if version.is_v5() {
            connect.properties.push(Property::SessionExpiryInterval(1));
        }
        let mut c = open(&broker, connect).await;
        c.send(&Packet::Disconnect(Disconnect::default())).await;
        assert_eq!(c.expect_closed().await, vec![]);
    }
    // Past the MQTT 5 session's expiry too.
    w.expect_nothing(Duration::from_millis(1500)).await;
    broker.stop().await;
}

/// MQTT 5.0 §3.14.2.1: DISCONNECT with reason 0x04 (Disconnect with Will Message) closes
/// normally but publishes the will.
#[tokio::test]
async fn disconnect_with_will_message_publishes_it() {
    let broker = TestBroker::start().await;
    let mut w = watcher(&broker, "watch", "dw/#").await;
    let mut c = open(&broker, with_will(ProtocolVersion::V5, "dw", "dw/x", "bye")).await;
    c.send(&Packet::Disconnect(Disconnect::new(
        ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
    )))
    .await;
    assert_eq!(c.expect_closed().await, vec![]);
    expect_will(&mut w, "dw/x", "bye").await;
    w.expect_nothing(Duration::from_millis(200)).await;
    broker.stop().await;
}

/// Will QoS and Will Retain are honoured: a retained will is published as a retained message
/// (MQTT 5.0 [MQTT-3.1.2-15]; MQTT 3.1.1 [MQTT-3.1.2-17]) that a later subscriber receives
/// with RETAIN 1, and a non-retained one as a non-retained message ([MQTT-3.1.2-14];
/// [MQTT-3.1.2-16]) that is not stored. Delivery QoS is min(Will QoS, subscription QoS)
/// (§3.8.4).
#[tokio::test]
async fn will_qos_and_retain_are_honoured() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let broker = TestBroker::start().await;
        let mut w = watcher(&broker, "watch", "wq/#").await;

        let mut connect = Connect::new(version, "retained");
        let mut will = Will::new(TopicName::new("wq/r").unwrap(), "kept");
        will.qos = QoS::ExactlyOnce;
        will.retain = true;
        connect.will = Some(will);
        drop(open(&broker, connect).await);
        let p = expect_will(&mut w, "wq/r", "kept").await;
        assert_eq!(p.qos, QoS::ExactlyOnce, "{version}");
        // Forwarded to an existing subscription without Retain As Published: RETAIN 0
        // ([MQTT-3.3.1-12]).
        assert!(!p.retain);

        let mut connect = Connect::new(version, "plain");
        let mut will = Will::new(TopicName::new("wq/p").unwrap(), "not kept");
        will.qos = QoS::AtLeastOnce;
        connect.will = Some(will);
        drop(open(&broker, connect).await);
        let p = expect_will(&mut w, "wq/p", "not kept").await;
        assert_eq!((p.qos, p.retain), (QoS::AtLeastOnce, false), "{version}");

        assert_eq!(broker.handle.retained_count(), 1, "{version}");
        let mut later = broker.client(version, "later").await;
        later.subscribe("wq/#", QoS::AtLeastOnce).await;
        let p = later.recv_publish().await;
        assert_eq!(
            (p.topic.as_str(), &p.payload[..], p.retain, p.qos),
            ("wq/r", &b"kept"[..], true, QoS::AtLeastOnce),
            "{version}"
        );
        later.expect_nothing(Duration::from_millis(200)).await;
        broker.stop().await;
    }
}

/// MQTT 5.0 §3.1.3.2: the will's properties are sent with it: Payload Format Indicator,
/// Message Expiry Interval, Content Type, Response Topic, Correlation Data and User
/// Properties, the latter in order ([MQTT-3.1.3-10]); Will Delay Interval is not a PUBLISH
/// property and is not forwarded.
#[tokio::test]
async fn v5_will_properties_are_forwarded() {
    let broker = TestBroker::start().await;
    let mut w = watcher(&broker, "watch", "wp/#").await;
    let mut connect = with_will(ProtocolVersion::V5, "props", "wp/x", "{\"a\":1}");
    let user = [("k", "1"), ("a", "2"), ("k", "3")];
    if let Some(will) = connect.will.as_mut() {
        let p = &mut will.properties;
        p.push(Property::WillDelayInterval(0));
        p.push(Property::PayloadFormatIndicator(true));
        p.push(Property::MessageExpiryInterval(3600));
        p.push(Property::ContentType(ByteString::from("application/json")));
        p.push(Property::ResponseTopic(TopicName::new("wp/reply").unwrap()));
        p.push(Property::CorrelationData(Bytes::from_static(
            b"\x00corr\xff",
        )));
        for (k, v) in user {
            p.push(Property::UserProperty(
                ByteString::from(k),
                ByteString::from(v),
            ));
        }
    }
    drop(open(&broker, connect).await);
    let p = expect_will(&mut w, "wp/x", "{\"a\":1}").await;
    let props = &p.properties;
    assert_eq!(props.payload_format_indicator(), Some(true));
    let expiry = props
        .message_expiry_interval()
        .expect("Message Expiry Interval");
    assert!((3590..=3600).contains(&expiry), "{expiry}");
    assert_eq!(
        props.content_type().map(|s| &s[..]),
        Some("application/json")
    );
    assert_eq!(props.response_topic().map(|t| t.as_str()), Some("wp/reply"));
    assert_eq!(
        props.correlation_data().map(|b| &b[..]),
        Some(&b"\x00corr\xff"[..])
    );
    let got: Vec<(&str, &str)> = props
        .user_properties()
        .map(|(k, v)| (&k[..], &v[..]))
        .collect();
    assert_eq!(got, user);
    assert_eq!(props.will_delay_interval(), None);
    broker.stop().await;
}

/// A CONNECT with Will Delay Interval `delay` and Session Expiry Interval `expiry`.
fn delayed(id: &str, topic: &str, delay: u32, expiry: u32) -> Connect {
    let mut c = with_will(ProtocolVersion::V5, id, topic, "late");
    c.clean_start = false;
    c.properties.push(Property::SessionExpiryInterval(expiry));
    if let Some(will) = c.will.as_mut() {
        will.properties.push(Property::WillDelayInterval(delay));
    }
    c
}

/// MQTT 5.0 §3.1.3.2.2: with a Will Delay Interval the will is published only when the
/// interval has passed.
#[tokio::test]
async fn will_delay_postpones_the_will() {
    let broker = TestBroker::start().await;
    let mut w = watcher(&broker, "watch", "wd/#").await;
    let c = open(&broker, delayed("wd", "wd/x", 1, 60)).await;
    let closed = Instant::now();
    drop(c);
    w.expect_nothing(Duration::from_millis(700)).await;
    expect_will(&mut w, "wd/x", "late").await;
    let elapsed = closed.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "will after {elapsed:?}"
    );
    broker.stop().await;
}

/// A reconnect to the session before the Will Delay Interval has passed cancels the will
/// ([MQTT-3.1.3-9]); so does a takeover that resumes the session.
#[tokio::test]
async fn reconnect_within_will_delay_cancels_the_will() {
    let broker = TestBroker::start().await;
    let mut w = watcher(&broker, "watch", "wc/#").await;
    let c = open(&broker, delayed("wc", "wc/x", 1, 60)).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut resumed = Connect::new(ProtocolVersion::V5, "wc");
    resumed.clean_start = false;
    resumed.properties.push(Property::SessionExpiryInterval(60));
    let mut back = broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut back, resumed.clone()).await;
    assert!(ack.session_present);

    // Takeover of a live connection whose will has a delay, resuming the session.
    let _old = open(&broker, delayed("wt", "wc/t", 1, 60)).await;
    let mut resumed_t = resumed;
    resumed_t.client_id = ByteString::from("wt");
    let _new = open(&broker, resumed_t).await;

    w.expect_nothing(Duration::from_millis(1500)).await;
    broker.stop().await;
}

/// The delayed will is published when the session ends, if that comes first (MQTT 5.0
/// §3.1.2.5, §3.1.3.2.2): a Session Expiry Interval shorter than the Will Delay Interval
/// (1 s, and 0), and a new connection with Clean Start 1 that ends the session during the delay.
#[tokio::test]
async fn delayed_will_published_when_the_session_ends_first() {
    let broker = TestBroker::start().await;
    let mut w = watcher(&broker, "watch", "we/#").await;
    let c = open(&broker, delayed("we", "we/x", 30, 1)).await;
    let closed = Instant::now();
    drop(c);
    w.expect_nothing(Duration::from_millis(600)).await;
    expect_will(&mut w, "we/x", "late").await;
    let elapsed = closed.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "will after {elapsed:?}"
    );

    // Session Expiry 0: the session ends with the connection, so the will goes at once.
    let c = open(&broker, delayed("w0", "we/0", 30, 0)).await;
    drop(c);
    let p = tokio::time::timeout(Duration::from_millis(700), w.recv_publish())
        .await
        .expect("will published when the session ended");
    assert_eq!(p.topic.as_str(), "we/0");

    let c = open(&broker, delayed("wn", "we/n", 30, 60)).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    w.expect_nothing(Duration::from_millis(100)).await;
    let _fresh = open(&broker, Connect::new(ProtocolVersion::V5, "wn")).await;
    expect_will(&mut w, "we/n", "late").await;
    broker.stop().await;
}
