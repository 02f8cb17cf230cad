//! SUBSCRIBE and UNSUBSCRIBE: wildcard matching, `$` topics, overlapping subscriptions,
//! SUBACK and UNSUBACK codes, replacement, No Local, Subscription Identifiers, and invalid
//! SUBSCRIBE packets.

mod pubsub_support;

use midge_broker::Config;
use midge_proto::{Packet, Properties, QoS, ReasonCode, SubscriptionOptions};
use midge_testkit::{RawClient, TestBroker};
use pubsub_support::*;

/// Publishes each topic at QoS 0, then a marker, and returns the topics `subscriber`
/// receives before the marker, in order. The subscriber must be subscribed to `end/marker`.
async fn delivered(
    publisher: &mut RawClient,
    subscriber: &mut RawClient,
    topics: &[&str],
) -> Vec<String> {
    for t in topics {
        send_publish(publisher, publish(t, QoS::AtMostOnce, 0, "x")).await;
    }
    send_publish(publisher, publish("end/marker", QoS::AtMostOnce, 0, "x")).await;
    let mut got = Vec::new();
    loop {
        let p = subscriber.recv_publish().await;
        if p.topic.as_str() == "end/marker" {
            break;
        }
        got.push(p.topic.as_str().to_owned());
    }
    subscriber.expect_nothing(QUIET).await;
    got
}

/// `+` matches exactly one level, empty levels included; `#` matches the parent level and
/// every level below it (MQTT 5.0 §4.7.1.2, §4.7.1.3; MQTT 3.1.1 §4.7.1.2, §4.7.1.3).
#[tokio::test]
async fn wildcards_match_as_specified() {
    let broker = TestBroker::start().await;
    let topics = [
        "a",
        "a/b",
        "a/b/c",
        "a/",
        "/a",
        "b/a",
        "a/x/c",
        "sport/tennis/player1",
    ];
    let cases: &[(&str, &[&str])] = &[
        ("a/+", &["a/b", "a/"]),
        ("+/+", &["a/b", "a/", "/a", "b/a"]),
        ("+", &["a"]),
        ("a/+/c", &["a/b/c", "a/x/c"]),
        ("a/#", &["a", "a/b", "a/b/c", "a/", "a/x/c"]),
        (
            "#",
            &[
                "a",
                "a/b",
                "a/b/c",
                "a/",
                "/a",
                "b/a",
                "a/x/c",
                "sport/tennis/player1",
            ],
        ),
        (
            "+/#",
            &[
                "a",
                "a/b",
                "a/b/c",
                "a/",
                "/a",
                "b/a",
                "a/x/c",
                "sport/tennis/player1",
            ],
        ),
        ("sport/+/player1", &["sport/tennis/player1"]),
        ("sport/tennis/player1/#", &["sport/tennis/player1"]),
        ("a/b", &["a/b"]),
    ];
    let mut publisher = broker.client(V5, "wc-pub").await;
    for (i, (filter, expected)) in cases.iter().enumerate() {
        let version = if i % 2 == 0 { V5 } else { V311 };
        let mut subscriber = broker.client(version, &format!("wc-sub-{i}")).await;
        sub(&mut subscriber, filter, opts(QoS::AtMostOnce)).await;
        sub(&mut subscriber, "end/marker", opts(QoS::AtMostOnce)).await;
        let got = delivered(&mut publisher, &mut subscriber, &topics).await;
        assert_eq!(&got, expected, "filter {filter}");
    }
}

/// Filters that start with a wildcard do not match topic names that start with `$`; filters
/// that name the `$` level do. [MQTT-4.7.2-1].
#[tokio::test]
async fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let broker = TestBroker::start().await;
    let topics = ["$SYS/broker/load", "$foo/x", "foo/x"];
    let cases: &[(&str, &[&str])] = &[
        ("#", &["foo/x"]),
        ("+/x", &["foo/x"]),
        ("+/#", &["foo/x"]),
        ("$SYS/#", &["$SYS/broker/load"]),
        ("$foo/+", &["$foo/x"]),
        ("$SYS/+/load", &["$SYS/broker/load"]),
    ];
    let mut publisher = broker.client(V311, "dl-pub").await;
    for (i, (filter, expected)) in cases.iter().enumerate() {
        let version = if i % 2 == 0 { V311 } else { V5 };
        let mut subscriber = broker.client(version, &format!("dl-sub-{i}")).await;
        sub(&mut subscriber, filter, opts(QoS::AtMostOnce)).await;
        sub(&mut subscriber, "end/marker", opts(QoS::AtMostOnce)).await;
        let got = delivered(&mut publisher, &mut subscriber, &topics).await;
        assert_eq!(&got, expected, "filter {filter}");
    }
}

/// Overlapping subscriptions of one session: the message is delivered once, at the highest
/// QoS of the matching subscriptions ([MQTT-3.3.4-2]; MQTT 3.1.1 §3.3.5), and in MQTT 5 it
/// carries the Subscription Identifier of every matching subscription that has one
/// ([MQTT-3.3.4-3], [MQTT-3.3.4-4]).
#[tokio::test]
async fn overlapping_subscriptions_give_one_delivery_at_the_highest_qos() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "ov-pub").await;

    let mut v5 = broker.client(V5, "ov-5").await;
    sub_id(&mut v5, "ov/#", opts(QoS::AtMostOnce), 1).await;
    sub_id(&mut v5, "ov/+", opts(QoS::ExactlyOnce), 2).await;
    sub(&mut v5, "ov/x", opts(QoS::AtLeastOnce)).await;
    let mut v3 = broker.client(V311, "ov-3").await;
    sub(&mut v3, "ov/#", opts(QoS::AtMostOnce)).await;
    sub(&mut v3, "ov/x", opts(QoS::AtLeastOnce)).await;

    send_publish(&mut publisher, publish("ov/x", QoS::ExactlyOnce, 1, "m")).await;
    let got = recv_acked(&mut v5).await;
    assert_eq!(got.qos, QoS::ExactlyOnce);
    let mut ids: Vec<u32> = got.properties.subscription_identifiers().collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2]);
    v5.expect_nothing(QUIET).await;
    let got = recv_acked(&mut v3).await;
    assert_eq!(got.qos, QoS::AtLeastOnce);
    v3.expect_nothing(QUIET).await;

    // Only `ov/#` matches `ov/y/z`: its QoS and its identifier alone.
    send_publish(&mut publisher, publish("ov/y/z", QoS::ExactlyOnce, 2, "n")).await;
    let got = recv_acked(&mut v5).await;
    assert_eq!(got.qos, QoS::AtMostOnce);
    assert_eq!(
        got.properties
            .subscription_identifiers()
            .collect::<Vec<_>>(),
        vec![1]
    );
    v5.expect_nothing(QUIET).await;
}

/// SUBACK has the SUBSCRIBE's packet identifier and one code per filter, in order, each the
/// QoS granted; `mqtt.max_qos` caps the grant and the delivery QoS. MQTT 5 [MQTT-3.8.4-2],
/// [MQTT-3.8.4-5], [MQTT-3.8.4-6], [MQTT-3.8.4-7], [MQTT-3.8.4-8]; MQTT 3.1.1 [MQTT-3.8.4-2],
/// [MQTT-3.8.4-4], [MQTT-3.8.4-5], [MQTT-3.8.4-6], [MQTT-3.9.3-1].
#[tokio::test]
async fn suback_has_one_code_per_filter_capped_by_max_qos() {
    for (max_qos, expected) in [(2u8, [0u8, 1, 2]), (1, [0, 1, 1]), (0, [0, 0, 0])] {
        let mut config = Config::default();
        config.mqtt.max_qos = max_qos;
        let broker = TestBroker::start_with(config).await;
        for version in [V311, V5] {
            let mut c = broker.client(version, &format!("sa-{version}")).await;
            let ack = subscribe_with(
                &mut c,
                0xBEEF,
                &[
                    ("sa/0", opts(QoS::AtMostOnce)),
                    ("sa/1", opts(QoS::AtLeastOnce)),
                    ("sa/2", opts(QoS::ExactlyOnce)),
                ],
                Properties::new(),
            )
            .await;
            assert_eq!(
                ack.reason_codes,
                expected.map(ReasonCode).to_vec(),
                "{version}, max_qos {max_qos}"
            );
            // Deliveries respect the granted QoS. A publisher may only use QoS up to max_qos.
            let mut publisher = broker.client(V5, &format!("sa-pub-{version}")).await;
            let pub_qos = QoS::from_u8(max_qos).expect("0..=2");
            send_publish(&mut publisher, publish("sa/2", pub_qos, 1, "m")).await;
            let got = recv_acked(&mut c).await;
            assert_eq!(got.qos.as_u8(), expected[2]);
        }
    }
}

/// A SUBSCRIBE with a filter this broker refuses gets a failure code for that filter only:
/// MQTT 5 0x9E Shared Subscriptions not supported and 0xA2 Wildcard Subscriptions not
/// supported, MQTT 3.1.1 0x80. [MQTT-3.8.4-6], [MQTT-3.8.4-7] (MQTT 3.1.1 [MQTT-3.8.4-5],
/// [MQTT-3.9.3-2]).
#[tokio::test]
async fn suback_reports_refused_filters_individually() {
    let mut config = Config::default();
    config.mqtt.shared_subscriptions = false;
    config.mqtt.wildcard_subscriptions = false;
    let broker = TestBroker::start_with(config).await;
    for (version, shared_code, wildcard_code) in [
        (
            V5,
            ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
        ),
        (V311, ReasonCode(0x80), ReasonCode(0x80)),
    ] {
        let mut c = broker.client(version, &format!("refuse-{version}")).await;
        let ack = subscribe_with(
            &mut c,
            5,
            &[
                ("$share/g/r/t", opts(QoS::AtLeastOnce)),
                ("r/t", opts(QoS::AtLeastOnce)),
                ("r/+", opts(QoS::AtLeastOnce)),
            ],
            Properties::new(),
        )
        .await;
        assert_eq!(
            ack.reason_codes,
            vec![shared_code, ReasonCode(1), wildcard_code],
            "{version}"
        );
        // The accepted filter works, the refused ones do not deliver.
        let mut publisher = broker.client(V311, &format!("refuse-pub-{version}")).await;
        send_publish(&mut publisher, publish("r/t", QoS::AtLeastOnce, 1, "m")).await;
        assert_eq!(&recv_acked(&mut c).await.payload[..], b"m");
        c.expect_nothing(QUIET).await;
    }
}

/// A SUBSCRIBE for a filter the session already has replaces that subscription: one
/// subscription remains, with the new options. [MQTT-3.8.4-3] (both versions).
#[tokio::test]
async fn repeated_subscribe_replaces_the_subscription() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "rep-pub").await;
    for version in [V311, V5] {
        let mut c = broker.client(version, &format!("rep-{version}")).await;
        let before = broker.handle.subscription_count();
        sub(&mut c, "rep/t", opts(QoS::ExactlyOnce)).await;
        sub(&mut c, "rep/t", opts(QoS::AtMostOnce)).await;
        assert_eq!(broker.handle.subscription_count(), before + 1);
        send_publish(&mut publisher, publish("rep/t", QoS::ExactlyOnce, 1, "m")).await;
        let got = c.recv_publish().await;
        assert_eq!(got.qos, QoS::AtMostOnce, "{version}: the new QoS applies");
        c.expect_nothing(QUIET).await;
    }
}

/// UNSUBSCRIBE removes exactly the named filters (compared character by character) and is
/// answered with UNSUBACK carrying its packet identifier and, in MQTT 5, one code per filter:
/// 0x00 Success or 0x11 No subscription existed. Nothing is delivered afterwards.
/// MQTT 5 [MQTT-3.10.4-1], [MQTT-3.10.4-2], [MQTT-3.10.4-4], [MQTT-3.10.4-5],
/// [MQTT-3.10.4-6], [MQTT-3.11.3-1]; MQTT 3.1.1 [MQTT-3.10.4-1], [MQTT-3.10.4-2],
/// [MQTT-3.10.4-4], [MQTT-3.10.4-5].
#[tokio::test]
async fn unsubscribe_stops_delivery_and_reports_each_filter() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "un-pub").await;
    for version in [V5, V311] {
        let mut c = broker.client(version, &format!("un-{version}")).await;
        sub(&mut c, "un/a", opts(QoS::AtLeastOnce)).await;
        sub(&mut c, "un/+", opts(QoS::AtLeastOnce)).await;
        let before = broker.handle.subscription_count();
        let ack = unsubscribe(&mut c, 0x0102, &["un/a", "un/nothing", "un/#"]).await;
        if version.is_v5() {
            assert_eq!(
                ack.reason_codes,
                vec![
                    ReasonCode::SUCCESS,
                    ReasonCode::NO_SUBSCRIPTION_EXISTED,
                    ReasonCode::NO_SUBSCRIPTION_EXISTED
                ]
            );
        } else {
            assert!(ack.reason_codes.is_empty());
        }
        assert_eq!(broker.handle.subscription_count(), before - 1);
        // `un/+` (not named: `un/#` is a different filter) still delivers.
        send_publish(&mut publisher, publish("un/a", QoS::AtLeastOnce, 1, "m")).await;
        assert_eq!(&recv_acked(&mut c).await.payload[..], b"m");
        let ack = unsubscribe(&mut c, 0x0103, &["un/+"]).await;
        if version.is_v5() {
            assert_eq!(ack.reason_codes, vec![ReasonCode::SUCCESS]);
        }
        send_publish(&mut publisher, publish("un/a", QoS::AtLeastOnce, 1, "gone")).await;
        c.expect_nothing(QUIET).await;
        assert_alive(&mut c).await;
    }
}

/// No Local: a message is not forwarded to the connection whose client id published it;
/// others (and the publisher's own subscriptions without No Local) still get it.
/// [MQTT-3.8.3-3].
#[tokio::test]
async fn no_local_subscription_does_not_receive_own_messages() {
    let broker = TestBroker::start().await;
    let mut me = broker.client(V5, "nl-me").await;
    sub(
        &mut me,
        "nl/t",
        SubscriptionOptions {
            no_local: true,
            ..opts(QoS::AtLeastOnce)
        },
    )
    .await;
    let mut other = broker.client(V5, "nl-other").await;
    sub(&mut other, "nl/t", opts(QoS::AtLeastOnce)).await;

    send_publish(&mut me, publish("nl/t", QoS::AtLeastOnce, 1, "mine")).await;
    assert_eq!(&recv_acked(&mut other).await.payload[..], b"mine");
    me.expect_nothing(QUIET).await;

    send_publish(&mut other, publish("nl/t", QoS::AtLeastOnce, 1, "theirs")).await;
    assert_eq!(&recv_acked(&mut me).await.payload[..], b"theirs");
    assert_eq!(&recv_acked(&mut other).await.payload[..], b"theirs");

    // A second, overlapping subscription without No Local does deliver own messages, once.
    sub(&mut me, "nl/#", opts(QoS::AtLeastOnce)).await;
    me.send(&Packet::Publish(publish(
        "nl/t",
        QoS::AtLeastOnce,
        2,
        "again",
    )))
    .await;
    let mut got_ack = false;
    let mut got_msg = 0;
    while let Ok(Some(p)) = me.try_recv(QUIET).await {
        match p {
            Packet::PubAck(_) => got_ack = true,
            Packet::Publish(p) => {
                assert_eq!(&p.payload[..], b"again");
                ack(&mut me, &p).await;
                got_msg += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(got_ack);
    assert_eq!(got_msg, 1);
}

/// A Subscription Identifier given in SUBSCRIBE comes back in every PUBLISH the subscription
/// causes; a replacing SUBSCRIBE without one removes it ([MQTT-3.8.4-3]); MQTT 3.1.1
/// subscribers never see properties. [MQTT-3.3.4-3].
#[tokio::test]
async fn subscription_identifiers_are_sent_with_matching_messages() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "sid-pub").await;
    let mut c = broker.client(V5, "sid").await;
    sub_id(&mut c, "sid/a", opts(QoS::AtLeastOnce), 268_435_455).await;
    sub_id(&mut c, "sid/b", opts(QoS::AtMostOnce), 7).await;

    send_publish(&mut publisher, publish("sid/a", QoS::AtLeastOnce, 1, "a")).await;
    let got = recv_acked(&mut c).await;
    assert_eq!(
        got.properties
            .subscription_identifiers()
            .collect::<Vec<_>>(),
        vec![268_435_455]
    );
    send_publish(&mut publisher, publish("sid/b", QoS::AtLeastOnce, 1, "b")).await;
    let got = recv_acked(&mut c).await;
    assert_eq!(
        got.properties
            .subscription_identifiers()
            .collect::<Vec<_>>(),
        vec![7]
    );

    sub(&mut c, "sid/b", opts(QoS::AtMostOnce)).await;
    send_publish(&mut publisher, publish("sid/b", QoS::AtLeastOnce, 1, "b2")).await;
    let got = recv_acked(&mut c).await;
    assert_eq!(got.properties.subscription_identifiers().count(), 0);
    c.expect_nothing(QUIET).await;
}

/// An invalid Topic Filter in SUBSCRIBE or UNSUBSCRIBE ends the connection: MQTT 5 DISCONNECT
/// 0x8F Topic Filter invalid, MQTT 3.1.1 close. [MQTT-4.7.1-1], [MQTT-4.7.1-2],
/// [MQTT-4.7.3-1], [MQTT-4.8.2-1], [MQTT-4.8.2-2] (MQTT 3.1.1 [MQTT-4.7.1-2],
/// [MQTT-4.7.1-3], [MQTT-4.7.3-1]); §4.13 / MQTT 3.1.1 §4.8.
#[tokio::test]
async fn invalid_topic_filter_disconnects() {
    let broker = TestBroker::start().await;
    let mut witness = Witness::new(&broker, "if-witness").await;
    let filters: [&[u8]; 7] = [
        b"a/#/b",
        b"a#",
        b"a/b+",
        b"+a",
        b"",
        b"$share/g",
        b"$share//t",
    ];
    for (i, filter) in filters.into_iter().enumerate() {
        for version in [V5, V311] {
            if !version.is_v5() && filter.starts_with(b"$share") {
                // MQTT 3.1.1 has no shared subscriptions: `$share/g` is an ordinary filter.
                continue;
            }
            let context = format!("{version} filter {:?}", String::from_utf8_lossy(filter));
            let mut c = broker
                .client(version, &format!("if-sub-{i}-{version}"))
                .await;
            let mut body = vec![0x00, 0x01];
            if version.is_v5() {
                body.push(0);
            }
            body.extend(field(filter));
            body.push(0x01);
            c.send_raw(&frame(0x82, &body)).await;
            expect_disconnect(&mut c, ReasonCode::TOPIC_FILTER_INVALID).await;

            let mut c = broker
                .client(version, &format!("if-unsub-{i}-{version}"))
                .await;
            let mut body = vec![0x00, 0x02];
            if version.is_v5() {
                body.push(0);
            }
            body.extend(field(filter));
            c.send_raw(&frame(0xA2, &body)).await;
            expect_disconnect(&mut c, ReasonCode::TOPIC_FILTER_INVALID).await;
            witness.check(&context).await;
        }
    }
}

/// A SUBSCRIBE or UNSUBSCRIBE without any filter is a protocol error: MQTT 5 DISCONNECT 0x82,
/// MQTT 3.1.1 close. MQTT 5 [MQTT-3.8.3-2], [MQTT-3.10.3-2]; MQTT 3.1.1 [MQTT-3.8.3-3],
/// [MQTT-3.10.3-2].
#[tokio::test]
async fn subscribe_without_filters_disconnects() {
    let broker = TestBroker::start().await;
    let mut witness = Witness::new(&broker, "nf-witness").await;
    for version in [V5, V311] {
        for first in [0x82u8, 0xA2] {
            let mut c = broker
                .client(version, &format!("nf-{version}-{first}"))
                .await;
            let body: &[u8] = if version.is_v5() { &[0, 1, 0] } else { &[0, 1] };
            c.send_raw(&frame(first, body)).await;
            expect_disconnect(&mut c, ReasonCode::PROTOCOL_ERROR).await;
            witness
                .check(&format!("{version} empty 0x{first:02X}"))
                .await;
        }
    }
}

/// The subscription options byte: reserved bits set, QoS 3 or Retain Handling 3 end the
/// connection (MQTT 5 [MQTT-3.8.3-5] 0x81, §3.8.3.1 0x82; MQTT 3.1.1 [MQTT-3.8.3-4]).
#[tokio::test]
async fn invalid_subscription_options_disconnect() {
    let broker = TestBroker::start().await;
    let rows: &[(midge_proto::ProtocolVersion, u8, ReasonCode)] = &[
        (V5, 0x40, ReasonCode::MALFORMED_PACKET),
        (V5, 0x80, ReasonCode::MALFORMED_PACKET),
        (V5, 0x03, ReasonCode::PROTOCOL_ERROR),
        (V5, 0x30, ReasonCode::PROTOCOL_ERROR),
        (V311, 0x04, ReasonCode::MALFORMED_PACKET),
        (V311, 0x03, ReasonCode::MALFORMED_PACKET),
    ];
    for (i, &(version, options, code)) in rows.iter().enumerate() {
        let mut c = broker.client(version, &format!("opt-{i}")).await;
        let mut body = vec![0x00, 0x01];
        if version.is_v5() {
            body.push(0);
        }
        body.extend(field(b"opt/t"));
        body.push(options);
        c.send_raw(&frame(0x82, &body)).await;
        expect_disconnect(&mut c, code).await;
    }
}
