//! MQTT 5 features on the PUBLISH path: topic aliases both ways, Message Expiry, forwarded
//! publication properties, Receive Maximum, the client's Maximum Packet Size, Request Problem
//! Information, and the DISCONNECT reason codes for features the broker does not offer.

mod pubsub_support;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use midge_broker::Config;
use midge_proto::{
    ByteString, Packet, Properties, Property, Publish, PublishAck, QoS, ReasonCode, TopicName,
};
use midge_testkit::TestBroker;
use pubsub_support::*;

fn with_alias(topic: &str, alias: u16, payload: &'static str) -> Publish {
    let mut p = Publish::new(
        if topic.is_empty() {
            TopicName::empty_for_alias()
        } else {
            name(topic)
        },
        payload,
    );
    p.properties.push(Property::TopicAlias(alias));
    p
}

/// Inbound Topic Aliases: a PUBLISH with a name and an alias sets the alias, a later PUBLISH
/// with an empty name and the alias goes to that name, and a new name rebinds the alias; every
/// alias from 1 to the advertised Topic Alias Maximum is accepted ([MQTT-3.3.2-12]). The
/// alias is not forwarded to subscribers.
#[tokio::test]
async fn inbound_topic_alias_stands_for_its_topic() {
    let broker = TestBroker::start().await;
    let mut v3 = broker.client(V311, "tai-sub3").await;
    sub(&mut v3, "tai/#", opts(QoS::AtLeastOnce)).await;
    let mut v5 = broker.client(V5, "tai-sub5").await;
    sub(&mut v5, "tai/#", opts(QoS::AtLeastOnce)).await;

    let mut publisher = broker.raw(V5).await;
    let connack = publisher
        .connect(midge_proto::Connect::new(V5, "tai-pub"))
        .await;
    let max = connack
        .properties
        .topic_alias_maximum()
        .expect("Topic Alias Maximum advertised");
    assert!(max >= 2);
    let steps = [
        (with_alias("tai/x", 1, "1"), "tai/x"),
        (with_alias("", 1, "2"), "tai/x"),
        (with_alias("tai/y", 1, "3"), "tai/y"),
        (with_alias("", 1, "4"), "tai/y"),
        (with_alias("tai/z", max, "5"), "tai/z"),
        (with_alias("", max, "6"), "tai/z"),
        (with_alias("", 1, "7"), "tai/y"),
    ];
    for (p, topic) in steps {
        let payload = p.payload.clone();
        let mut p = p;
        p.qos = QoS::AtLeastOnce;
        p.packet_id = Some(pid(1));
        let a = send_publish(&mut publisher, p).await;
        assert_eq!(a.map(|a| a.reason_code), Some(ReasonCode::SUCCESS));
        for c in [&mut v3, &mut v5] {
            let got = recv_acked(c).await;
            assert_eq!(got.topic.as_str(), topic);
            assert_eq!(got.payload, payload);
            assert_eq!(
                got.properties.topic_alias(),
                None,
                "aliases are per connection"
            );
        }
    }
}

/// Topic Alias 0 ([MQTT-3.3.2-8]) or above the server's Topic Alias Maximum
/// ([MQTT-3.3.2-9]) ends the connection with DISCONNECT 0x94 Topic Alias invalid
/// (MQTT 5.0 §3.3.2.3.4); with a maximum of 0, any alias is invalid.
#[tokio::test]
async fn invalid_topic_alias_disconnects_with_0x94() {
    let broker = TestBroker::start().await;
    let mut witness = Witness::new(&broker, "tai-witness").await;
    // Alias 0 cannot be encoded by the codec: raw bytes.
    let mut c = broker.client(V5, "tai-zero").await;
    c.send_raw(&frame(
        0x30,
        &publish_body(b"t", None, Some(&[0x23, 0, 0]), b"x"),
    ))
    .await;
    expect_disconnect(&mut c, ReasonCode::TOPIC_ALIAS_INVALID).await;
    witness.check("alias 0").await;

    let max = Config::default().mqtt.topic_alias_maximum;
    for alias in [max + 1, u16::MAX] {
        let mut c = broker.client(V5, &format!("tai-big-{alias}")).await;
        c.send(&Packet::Publish(with_alias("t", alias, "x"))).await;
        expect_disconnect(&mut c, ReasonCode::TOPIC_ALIAS_INVALID).await;
        witness.check("alias above maximum").await;
    }

    let mut config = Config::default();
    config.mqtt.topic_alias_maximum = 0;
    let broker = TestBroker::start_with(config).await;
    let mut c = broker.raw(V5).await;
    let connack = c.connect(midge_proto::Connect::new(V5, "tai-none")).await;
    assert_eq!(connack.properties.topic_alias_maximum().unwrap_or(0), 0);
    c.send(&Packet::Publish(with_alias("t", 1, "x"))).await;
    expect_disconnect(&mut c, ReasonCode::TOPIC_ALIAS_INVALID).await;
}

/// An empty Topic Name with an alias that was never set on this connection, or with no
/// alias at all, is a Protocol Error (MQTT 5.0 §3.3.2.1, §3.3.2.3.4); mappings are not
/// carried from one connection to the next ([MQTT-3.3.2-7]).
#[tokio::test]
async fn empty_topic_without_a_known_alias_is_a_protocol_error() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "tau-sub").await;
    sub(&mut subscriber, "#", opts(QoS::AtMostOnce)).await;

    let mut c = broker.client(V5, "tau-1").await;
    c.send(&Packet::Publish(with_alias("", 3, "x"))).await;
    expect_disconnect(&mut c, ReasonCode::PROTOCOL_ERROR).await;

    // Set on one connection, used on the next: unknown there.
    let mut c = broker.client(V5, "tau-2").await;
    c.send(&Packet::Publish(with_alias("tau/t", 1, "set")))
        .await;
    assert_eq!(subscriber.recv_publish().await.topic.as_str(), "tau/t");
    c.send(&Packet::Disconnect(Default::default())).await;
    assert!(c.expect_closed().await.is_empty());
    let mut c = broker.client(V5, "tau-2").await;
    c.send(&Packet::Publish(with_alias("", 1, "stale"))).await;
    expect_disconnect(&mut c, ReasonCode::PROTOCOL_ERROR).await;

    // No alias at all.
    let mut c = broker.client(V5, "tau-3").await;
    c.send_raw(&frame(0x30, &publish_body(b"", None, Some(&[]), b"x")))
        .await;
    expect_disconnect(&mut c, ReasonCode::PROTOCOL_ERROR).await;

    subscriber.expect_nothing(QUIET).await;
}

/// Resolves outbound topic aliases as a client must, checking the server never uses an
/// alias above `max` ([MQTT-3.3.2-11]) or an unknown one. Returns the resolved topic and
/// whether the PUBLISH used an alias in place of the name.
fn resolve(aliases: &mut HashMap<u16, TopicName>, p: &Publish, max: u16) -> (String, bool) {
    match p.properties.topic_alias() {
        None => {
            assert!(!p.topic.is_empty(), "empty topic without alias");
            (p.topic.as_str().to_owned(), false)
        }
        Some(alias) => {
            assert!(
                alias >= 1 && alias <= max,
                "[MQTT-3.3.2-11] alias {alias} > {max}"
            );
            if p.topic.is_empty() {
                let t = aliases.get(&alias).expect("alias used before it was set");
                (t.as_str().to_owned(), true)
            } else {
                aliases.insert(alias, p.topic.clone());
                (p.topic.as_str().to_owned(), false)
            }
        }
    }
}

/// Outbound Topic Aliases: a subscriber that accepts aliases gets the name with an alias
/// first and the alias alone afterwards, never an alias above its Topic Alias Maximum
/// ([MQTT-3.3.2-11]); one that accepts none (or speaks MQTT 3.1.1) gets full names only;
/// mappings start afresh on a new connection ([MQTT-3.3.2-7]).
#[tokio::test]
async fn outbound_topic_aliases_respect_the_client_maximum() {
    let broker = TestBroker::start().await;
    let keep = Property::SessionExpiryInterval(60);
    let mut with = v5_with(
        &broker,
        "tao-2",
        vec![Property::TopicAliasMaximum(2), keep.clone()],
    )
    .await;
    sub(&mut with, "tao/#", opts(QoS::AtLeastOnce)).await;
    let mut without = broker.client(V5, "tao-0").await;
    sub(&mut without, "tao/#", opts(QoS::AtLeastOnce)).await;
    let mut v3 = broker.client(V311, "tao-3").await;
    sub(&mut v3, "tao/#", opts(QoS::AtLeastOnce)).await;

    let topics = [
        "tao/1", "tao/1", "tao/2", "tao/3", "tao/3", "tao/1", "tao/2",
    ];
    let mut publisher = broker.client(V5, "tao-pub").await;
    for t in topics {
        send_publish(&mut publisher, publish(t, QoS::AtLeastOnce, 1, "x")).await;
    }
    let mut aliases = HashMap::new();
    let mut used_alias = 0;
    for t in topics {
        let p = recv_acked(&mut with).await;
        let (topic, by_alias) = resolve(&mut aliases, &p, 2);
        assert_eq!(topic, t);
        used_alias += usize::from(by_alias);
    }
    assert!(used_alias >= 3, "aliases were used: {used_alias}");
    for c in [&mut without, &mut v3] {
        for t in topics {
            let p = recv_acked(c).await;
            assert_eq!(p.topic.as_str(), t);
            assert_eq!(p.properties.topic_alias(), None);
        }
    }

    // A new connection: the first PUBLISH for each topic must carry its name again.
    with.send(&Packet::Disconnect(Default::default())).await;
    assert!(with.expect_closed().await.is_empty());
    let (mut with, connack) = connect_with(&broker, V5, "tao-2", |c| {
        c.clean_start = false;
        c.properties.push(Property::TopicAliasMaximum(2));
        c.properties.push(keep);
    })
    .await;
    assert!(connack.session_present);
    for t in ["tao/2", "tao/2"] {
        send_publish(&mut publisher, publish(t, QoS::AtLeastOnce, 1, "y")).await;
    }
    let mut fresh = HashMap::new();
    for _ in 0..2 {
        let p = recv_acked(&mut with).await;
        assert_eq!(resolve(&mut fresh, &p, 2).0, "tao/2");
    }
}

/// Message Expiry Interval: a message that waited in the server is forwarded with the
/// interval minus the time it waited ([MQTT-3.3.2-6]); one whose interval passed before it
/// could be sent is not delivered to the reconnecting session ([MQTT-3.3.2-5]). A message
/// forwarded at once keeps its interval.
#[tokio::test]
async fn message_expiry_counts_down_and_expired_messages_are_dropped() {
    let broker = TestBroker::start().await;
    let keep = || vec![Property::SessionExpiryInterval(60)];
    let mut subscriber = v5_with(&broker, "mei-sub", keep()).await;
    sub(&mut subscriber, "mei/#", opts(QoS::AtLeastOnce)).await;
    let mut publisher = broker.client(V5, "mei-pub").await;

    let expiring = |topic: &str, secs: u32, payload: &'static str| {
        let mut p = publish(topic, QoS::AtLeastOnce, 1, payload);
        p.properties.push(Property::MessageExpiryInterval(secs));
        p
    };
    send_publish(&mut publisher, expiring("mei/now", 10, "now")).await;
    let got = recv_acked(&mut subscriber).await;
    assert_eq!(got.properties.message_expiry_interval(), Some(10));

    subscriber
        .send(&Packet::Disconnect(Default::default()))
        .await;
    assert!(subscriber.expect_closed().await.is_empty());
    send_publish(&mut publisher, expiring("mei/short", 1, "short")).await;
    send_publish(&mut publisher, expiring("mei/long", 10, "long")).await;
    send_publish(
        &mut publisher,
        publish("mei/none", QoS::AtLeastOnce, 1, "none"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (mut subscriber, connack) = connect_with(&broker, V5, "mei-sub", |c| {
        c.clean_start = false;
        c.properties.push(Property::SessionExpiryInterval(60));
    })
    .await;
    assert!(connack.session_present);
    let got = recv_acked(&mut subscriber).await;
    assert_eq!(&got.payload[..], b"long", "the expired message is skipped");
    let left = got
        .properties
        .message_expiry_interval()
        .expect("interval kept");
    assert!((1..=9).contains(&left), "interval counted down: {left}");
    let got = recv_acked(&mut subscriber).await;
    assert_eq!(&got.payload[..], b"none");
    assert_eq!(got.properties.message_expiry_interval(), None);
    subscriber.expect_nothing(QUIET).await;
}

/// Payload Format Indicator, Content Type, Response Topic, Correlation Data and User
/// Properties reach every MQTT 5 subscriber unchanged, User Properties in their order, both
/// for live and for retained messages. [MQTT-3.3.2-4], [MQTT-3.3.2-15], [MQTT-3.3.2-16],
/// [MQTT-3.3.2-17], [MQTT-3.3.2-18], [MQTT-3.3.2-20].
#[tokio::test]
async fn publication_properties_are_forwarded_unchanged() {
    let broker = TestBroker::start().await;
    let props = vec![
        Property::PayloadFormatIndicator(true),
        Property::UserProperty(ByteString::from("k1"), ByteString::from("v1")),
        Property::ContentType(ByteString::from("application/json; charset=utf-8")),
        Property::ResponseTopic(name("reply/to/me")),
        Property::UserProperty(ByteString::from("k2"), ByteString::from("v2")),
        Property::CorrelationData(Bytes::from_static(&[0, 1, 2, 0xFF])),
        Property::UserProperty(ByteString::from("k1"), ByteString::from("v3")),
        Property::UserProperty(ByteString::from("é"), ByteString::from("")),
    ];
    let forwarded = |p: &Publish| -> Vec<Property> {
        p.properties
            .iter()
            .filter(|p| {
                !matches!(
                    p,
                    Property::SubscriptionIdentifier(_)
                        | Property::TopicAlias(_)
                        | Property::MessageExpiryInterval(_)
                )
            })
            .cloned()
            .collect()
    };
    let mut live = broker.client(V5, "props-live").await;
    sub(&mut live, "props/t", opts(QoS::ExactlyOnce)).await;
    let mut v3 = broker.client(V311, "props-v3").await;
    sub(&mut v3, "props/t", opts(QoS::ExactlyOnce)).await;
    let mut publisher = broker.client(V5, "props-pub").await;
    for qos in QOS {
        let mut p = publish("props/t", qos, 1, "{}");
        p.retain = true;
        p.properties = props.iter().cloned().collect();
        send_publish(&mut publisher, p).await;
        let got = recv_acked(&mut live).await;
        assert_eq!(forwarded(&got), props, "QoS {qos}");
        let got = recv_acked(&mut v3).await;
        assert_eq!(&got.payload[..], b"{}");
    }
    let mut late = broker.client(V5, "props-late").await;
    sub(&mut late, "props/#", opts(QoS::AtLeastOnce)).await;
    let got = recv_acked(&mut late).await;
    assert!(got.retain);
    assert_eq!(forwarded(&got), props, "retained copy");
}

/// Receive Maximum: a subscriber that allows 2 never has more than 2 unacknowledged QoS 1
/// PUBLISH packets from the broker, gets the rest as it acknowledges, in order
/// ([MQTT-3.3.4-9]); other packets are not held back meanwhile ([MQTT-3.3.4-10]).
#[tokio::test]
async fn receive_maximum_bounds_unacknowledged_deliveries() {
    const N: usize = 10;
    let broker = TestBroker::start().await;
    let mut subscriber = v5_with(&broker, "rm-sub", vec![Property::ReceiveMaximum(2)]).await;
    sub(&mut subscriber, "rm/t", opts(QoS::AtLeastOnce)).await;
    let mut publisher = broker.client(V5, "rm-pub").await;
    for i in 0..N {
        send_publish(
            &mut publisher,
            publish("rm/t", QoS::AtLeastOnce, 1, Bytes::from(i.to_string())),
        )
        .await;
    }
    let mut unacked: Vec<Publish> = Vec::new();
    let mut next = 0;
    let mut checked_ping = false;
    while next < N || !unacked.is_empty() {
        while unacked.len() < 2 && next < N {
            let p = subscriber.recv_publish().await;
            assert_eq!(p.payload, Bytes::from(next.to_string()), "in order");
            next += 1;
            unacked.push(p);
        }
        if next < N {
            // The window is full: nothing more until an acknowledgement…
            subscriber.expect_nothing(Duration::from_millis(100)).await;
            // …but a PINGREQ is still answered at once.
            if !checked_ping {
                assert_alive(&mut subscriber).await;
                checked_ping = true;
            }
        }
        let oldest = unacked.remove(0);
        subscriber
            .send(&Packet::PubAck(PublishAck::new(
                oldest.packet_id.expect("QoS 1"),
            )))
            .await;
    }
    subscriber.expect_nothing(QUIET).await;
}

/// A message larger than the subscriber's Maximum Packet Size is not sent to it
/// ([MQTT-3.1.2-24]) but discarded as if delivered ([MQTT-3.1.2-25]): it holds no inflight
/// slot and later messages still flow; other subscribers get it.
#[tokio::test]
async fn messages_above_the_client_maximum_packet_size_are_skipped() {
    let broker = TestBroker::start().await;
    let mut small = v5_with(
        &broker,
        "mps-small",
        vec![Property::MaximumPacketSize(64), Property::ReceiveMaximum(1)],
    )
    .await;
    sub(&mut small, "mps/t", opts(QoS::AtLeastOnce)).await;
    let mut big = broker.client(V5, "mps-big").await;
    sub(&mut big, "mps/t", opts(QoS::AtLeastOnce)).await;
    let mut publisher = broker.client(V5, "mps-pub").await;

    let large = Bytes::from(vec![b'L'; 100]);
    send_publish(
        &mut publisher,
        publish("mps/t", QoS::AtLeastOnce, 1, large.clone()),
    )
    .await;
    send_publish(
        &mut publisher,
        publish("mps/t", QoS::AtLeastOnce, 1, "small"),
    )
    .await;
    assert_eq!(recv_acked(&mut big).await.payload, large);
    assert_eq!(&recv_acked(&mut big).await.payload[..], b"small");
    let got = recv_acked(&mut small).await;
    assert_eq!(&got.payload[..], b"small");
    let size = Packet::Publish(got).encoded_len(V5).expect("encodable");
    assert!(size <= 64);
    small.expect_nothing(QUIET).await;
    assert_alive(&mut small).await;
}

/// With Request Problem Information 0 the server sends no Reason String or User Property on
/// PUBACK, PUBREC, PUBCOMP, SUBACK or UNSUBACK ([MQTT-3.1.2-29]), including failures.
#[tokio::test]
async fn request_problem_information_0_means_no_reason_strings() {
    let mut config = Config::default();
    config.mqtt.shared_subscriptions = false;
    let broker = TestBroker::start_with(config).await;
    let mut c = v5_with(
        &broker,
        "rpi",
        vec![Property::RequestProblemInformation(false)],
    )
    .await;
    let quiet = |props: &Properties, what: &str| {
        assert!(
            props.reason_string().is_none() && props.user_properties().next().is_none(),
            "{what} carries problem information: {props:?}"
        );
    };
    let a = send_publish(&mut c, publish("rpi/none", QoS::AtLeastOnce, 1, "x"))
        .await
        .expect("PUBACK");
    assert_eq!(a.reason_code, ReasonCode::NO_MATCHING_SUBSCRIBERS);
    quiet(&a.properties, "PUBACK");
    c.send(&Packet::Publish(publish(
        "rpi/none",
        QoS::ExactlyOnce,
        2,
        "x",
    )))
    .await;
    match c.recv().await {
        Packet::PubRec(a) => quiet(&a.properties, "PUBREC"),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    c.send(&Packet::PubRel(PublishAck::new(pid(999)))).await;
    match c.recv().await {
        Packet::PubComp(a) => {
            assert_eq!(a.reason_code, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND);
            quiet(&a.properties, "PUBCOMP");
        }
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    c.send(&Packet::PubRel(PublishAck::new(pid(2)))).await;
    assert!(matches!(c.recv().await, Packet::PubComp(_)));
    let ack = subscribe_with(
        &mut c,
        3,
        &[("$share/g/rpi", opts(QoS::AtMostOnce))],
        Properties::new(),
    )
    .await;
    assert_eq!(
        ack.reason_codes,
        vec![ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED]
    );
    quiet(&ack.properties, "SUBACK");
    let ack = unsubscribe(&mut c, 4, &["rpi/never"]).await;
    assert_eq!(ack.reason_codes, vec![ReasonCode::NO_SUBSCRIPTION_EXISTED]);
    quiet(&ack.properties, "UNSUBACK");
}

/// The broker advertises its Maximum QoS ([MQTT-3.2.2-9]); a PUBLISH above it (the client
/// broke [MQTT-3.2.2-11]) is a Protocol Error answered with DISCONNECT 0x9B QoS not supported
/// (MQTT 5.0 §3.2.2.3.4); MQTT 3.1.1 clients are disconnected (MQTT 3.1.1 [MQTT-3.3.5-2]).
#[tokio::test]
async fn qos_above_maximum_qos_disconnects_with_0x9b() {
    let mut config = Config::default();
    config.mqtt.max_qos = 1;
    let broker = TestBroker::start_with(config).await;
    let mut witness = Witness::new(&broker, "mq-witness").await;
    let mut c = broker.raw(V5).await;
    let connack = c.connect(midge_proto::Connect::new(V5, "mq")).await;
    assert_eq!(connack.properties.maximum_qos(), Some(QoS::AtLeastOnce));
    send_publish(&mut c, publish("mq/t", QoS::AtLeastOnce, 1, "ok")).await;
    c.send(&Packet::Publish(publish("mq/t", QoS::ExactlyOnce, 2, "no")))
        .await;
    expect_disconnect(&mut c, ReasonCode::QOS_NOT_SUPPORTED).await;
    let mut c = broker.client(V311, "mq3").await;
    c.send(&Packet::Publish(publish("mq/t", QoS::ExactlyOnce, 2, "no")))
        .await;
    expect_disconnect(&mut c, ReasonCode::QOS_NOT_SUPPORTED).await;
    witness.check("QoS 2 refused").await;
}

/// A retained PUBLISH when Retain Available is 0 (the client broke [MQTT-3.2.2-14]):
/// DISCONNECT 0x9A Retain not supported (MQTT 5.0 §3.2.2.3.5); nothing is stored and
/// non-retained messages still work.
#[tokio::test]
async fn retain_when_unavailable_disconnects_with_0x9a() {
    let mut config = Config::default();
    config.retain.available = false;
    let broker = TestBroker::start_with(config).await;
    let mut c = broker.raw(V5).await;
    let connack = c.connect(midge_proto::Connect::new(V5, "ra")).await;
    assert_eq!(connack.properties.retain_available(), Some(false));
    send_publish(&mut c, publish("ra/t", QoS::AtLeastOnce, 1, "plain")).await;
    let mut p = publish("ra/t", QoS::AtLeastOnce, 2, "retained");
    p.retain = true;
    c.send(&Packet::Publish(p.clone())).await;
    expect_disconnect(&mut c, ReasonCode::RETAIN_NOT_SUPPORTED).await;
    let mut c = broker.client(V311, "ra3").await;
    c.send(&Packet::Publish(p)).await;
    expect_disconnect(&mut c, ReasonCode::RETAIN_NOT_SUPPORTED).await;
    assert_eq!(broker.handle.retained_count(), 0);
}

/// More unacknowledged QoS 2 PUBLISH packets than the broker's Receive Maximum: DISCONNECT
/// 0x93 Receive Maximum exceeded (MQTT 5.0 §3.3.4; the client broke [MQTT-3.3.4-7]).
#[tokio::test]
async fn client_exceeding_receive_maximum_disconnects_with_0x93() {
    let mut config = Config::default();
    config.limits.receive_maximum = 3;
    let broker = TestBroker::start_with(config).await;
    let mut c = broker.raw(V5).await;
    let connack = c.connect(midge_proto::Connect::new(V5, "rmx")).await;
    assert_eq!(connack.properties.receive_maximum(), Some(3));
    for i in 1..=3 {
        c.send(&Packet::Publish(publish("rmx/t", QoS::ExactlyOnce, i, "x")))
            .await;
        assert!(matches!(c.recv().await, Packet::PubRec(_)));
    }
    // Three QoS 2 messages await PUBREL: a fourth exceeds the quota.
    c.send(&Packet::Publish(publish("rmx/t", QoS::ExactlyOnce, 4, "x")))
        .await;
    expect_disconnect(&mut c, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED).await;
}

/// A Subscription Identifier when the broker does not support them: DISCONNECT 0xA1
/// (MQTT 5.0 §3.8.2.1.2); CONNACK said Subscription Identifier Available 0.
#[tokio::test]
async fn subscription_identifier_when_unsupported_disconnects_with_0xa1() {
    let mut config = Config::default();
    config.mqtt.subscription_identifiers = false;
    let broker = TestBroker::start_with(config).await;
    let mut c = broker.raw(V5).await;
    let connack = c.connect(midge_proto::Connect::new(V5, "sia")).await;
    assert_eq!(
        connack.properties.subscription_identifier_available(),
        Some(false)
    );
    sub(&mut c, "sia/plain", opts(QoS::AtMostOnce)).await;
    c.send(&Packet::Subscribe(midge_proto::Subscribe {
        packet_id: pid(2),
        properties: Properties::new().with(Property::SubscriptionIdentifier(5)),
        filters: vec![midge_proto::SubscribeFilter {
            filter: midge_proto::TopicFilter::new("sia/t").expect("valid"),
            options: opts(QoS::AtMostOnce),
        }],
    }))
    .await;
    expect_disconnect(&mut c, ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED).await;
}

/// Server shutdown: MQTT 5 clients get DISCONNECT 0x8B Server shutting down before the
/// connection closes (MQTT 5.0 §3.14.2.1); MQTT 3.1.1 connections just close.
#[tokio::test]
async fn shutdown_sends_disconnect_0x8b() {
    let broker = TestBroker::start().await;
    let mut v5 = broker.client(V5, "bye5").await;
    let mut v3 = broker.client(V311, "bye3").await;
    let stop = tokio::spawn(broker.stop());
    expect_disconnect(&mut v5, ReasonCode::SERVER_SHUTTING_DOWN).await;
    expect_disconnect(&mut v3, ReasonCode::SERVER_SHUTTING_DOWN).await;
    stop.await.expect("broker stopped");
}
