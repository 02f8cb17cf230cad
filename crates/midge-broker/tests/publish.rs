//! PUBLISH flows through the broker, packet by packet: QoS 0/1/2 from publisher to broker and
//! from broker to subscriber, delivery QoS, ordering, and the broker's answers to PUBLISH
//! packets it cannot route.

mod pubsub_support;

use bytes::Bytes;
use midge_broker::Config;
use midge_proto::{Packet, Properties, PublishAck, QoS, ReasonCode};
use midge_testkit::TestBroker;
use pubsub_support::*;

/// QoS 1 from a publisher: PUBACK with the PUBLISH's packet identifier, and the message goes
/// out once. After the PUBACK the identifier is free: the same identifier is a new message.
/// [MQTT-4.3.2-4], [MQTT-4.3.2-5], [MQTT-3.3.4-1].
#[tokio::test]
async fn qos1_publish_is_answered_with_puback_carrying_its_packet_id() {
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let mut subscriber = broker.client(V5, &format!("q1-sub-{version}")).await;
        sub(&mut subscriber, "q1/t", opts(QoS::AtLeastOnce)).await;
        let mut publisher = broker.client(version, &format!("q1-pub-{version}")).await;
        for round in 0..2 {
            publisher
                .send(&Packet::Publish(publish(
                    "q1/t",
                    QoS::AtLeastOnce,
                    0x1234,
                    "m",
                )))
                .await;
            assert_eq!(
                publisher.recv().await,
                Packet::PubAck(PublishAck::new(pid(0x1234))),
                "{version} round {round}"
            );
            let got = recv_acked(&mut subscriber).await;
            assert_eq!(got.qos, QoS::AtLeastOnce);
            assert_eq!(&got.payload[..], b"m");
        }
        subscriber.expect_nothing(QUIET).await;
    }
}

/// QoS 2 from a publisher: PUBLISH → PUBREC (same id) → PUBREL → PUBCOMP (same id, Success);
/// the message goes out once, and after PUBCOMP the identifier starts a new message.
/// [MQTT-4.3.3-8], [MQTT-4.3.3-11], [MQTT-4.3.3-12].
#[tokio::test]
async fn qos2_publish_runs_pubrec_pubrel_pubcomp() {
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let mut subscriber = broker.client(V5, &format!("q2-sub-{version}")).await;
        sub(&mut subscriber, "q2/t", opts(QoS::ExactlyOnce)).await;
        let mut publisher = broker.client(version, &format!("q2-pub-{version}")).await;
        for round in 0..2 {
            publisher
                .send(&Packet::Publish(publish("q2/t", QoS::ExactlyOnce, 7, "m")))
                .await;
            assert_eq!(
                publisher.recv().await,
                Packet::PubRec(PublishAck::new(pid(7))),
                "{version} round {round}"
            );
            publisher
                .send(&Packet::PubRel(PublishAck::new(pid(7))))
                .await;
            assert_eq!(
                publisher.recv().await,
                Packet::PubComp(PublishAck::new(pid(7)))
            );
            let got = recv_acked(&mut subscriber).await;
            assert_eq!(got.qos, QoS::ExactlyOnce);
        }
        subscriber.expect_nothing(QUIET).await;
    }
}

/// A QoS 2 PUBLISH resent with DUP=1 before PUBREL is acknowledged again with PUBREC but not
/// delivered again. [MQTT-4.3.3-10], [MQTT-3.3.1-1].
#[tokio::test]
async fn duplicate_qos2_publish_before_pubrel_is_delivered_once() {
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let mut subscriber = broker.client(V311, &format!("dup-sub-{version}")).await;
        sub(&mut subscriber, "dup/t", opts(QoS::ExactlyOnce)).await;
        let mut publisher = broker.client(version, &format!("dup-pub-{version}")).await;
        let mut p = publish("dup/t", QoS::ExactlyOnce, 9, "once");
        publisher.send(&Packet::Publish(p.clone())).await;
        assert_eq!(
            publisher.recv().await,
            Packet::PubRec(PublishAck::new(pid(9)))
        );
        p.dup = true;
        for _ in 0..2 {
            publisher.send(&Packet::Publish(p.clone())).await;
            match publisher.recv().await {
                Packet::PubRec(a) => assert_eq!(a.packet_id, pid(9)),
                other => panic!("expected PUBREC, got {other:?}"),
            }
        }
        let got = recv_acked(&mut subscriber).await;
        assert_eq!(&got.payload[..], b"once");
        subscriber.expect_nothing(QUIET).await;
        publisher
            .send(&Packet::PubRel(PublishAck::new(pid(9))))
            .await;
        assert_eq!(
            publisher.recv().await,
            Packet::PubComp(PublishAck::new(pid(9)))
        );
        subscriber.expect_nothing(QUIET).await;
    }
}

/// PUBREL for an identifier the broker does not know is still answered with PUBCOMP
/// ([MQTT-4.3.3-11]); MQTT 5 says 0x92 Packet Identifier not found.
#[tokio::test]
async fn pubrel_for_an_unknown_packet_id_gets_pubcomp() {
    let broker = TestBroker::start().await;
    let mut v5 = broker.client(V5, "rel5").await;
    v5.send(&Packet::PubRel(PublishAck::new(pid(77)))).await;
    assert_eq!(
        v5.recv().await,
        Packet::PubComp(PublishAck::with_reason(
            pid(77),
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        ))
    );
    assert_alive(&mut v5).await;
    let mut v3 = broker.client(V311, "rel3").await;
    v3.send(&Packet::PubRel(PublishAck::new(pid(78)))).await;
    assert_eq!(v3.recv().await, Packet::PubComp(PublishAck::new(pid(78))));
    assert_alive(&mut v3).await;
}

/// Every combination of publish QoS and subscription QoS: the message is delivered at the
/// lower of the two, QoS 0 deliveries carry no packet identifier, first sends have DUP=0.
/// MQTT 5 [MQTT-3.8.4-8], MQTT 3.1.1 [MQTT-3.8.4-6]; [MQTT-2.2.1-2], [MQTT-4.3.2-2],
/// [MQTT-4.3.3-2], [MQTT-4.3.1-1].
#[tokio::test]
async fn delivery_qos_is_the_minimum_of_publish_and_subscription_qos() {
    let broker = TestBroker::start().await;
    for (sub_version, pub_version) in [(V5, V311), (V311, V5)] {
        let mut subscriber = broker
            .client(sub_version, &format!("min-sub-{sub_version}"))
            .await;
        let ack = subscribe_with(
            &mut subscriber,
            3,
            &[
                ("min/0", opts(QoS::AtMostOnce)),
                ("min/1", opts(QoS::AtLeastOnce)),
                ("min/2", opts(QoS::ExactlyOnce)),
            ],
            Properties::new(),
        )
        .await;
        assert_eq!(
            ack.reason_codes,
            vec![ReasonCode(0), ReasonCode(1), ReasonCode(2)]
        );
        let mut publisher = broker
            .client(pub_version, &format!("min-pub-{sub_version}"))
            .await;
        for pub_qos in QOS {
            for sub_qos in QOS {
                let topic = format!("min/{}", sub_qos.as_u8());
                let payload = format!("p{}s{}", pub_qos.as_u8(), sub_qos.as_u8());
                send_publish(
                    &mut publisher,
                    publish(&topic, pub_qos, 1, Bytes::from(payload.clone())),
                )
                .await;
                let got = recv_acked(&mut subscriber).await;
                let context = format!("{sub_version} subscriber, {payload}");
                assert_eq!(got.topic.as_str(), topic, "{context}");
                assert_eq!(&got.payload[..], payload.as_bytes(), "{context}");
                assert_eq!(got.qos, pub_qos.min(sub_qos), "{context}");
                assert_eq!(got.packet_id.is_some(), got.qos != QoS::AtMostOnce);
                assert!(!got.dup, "{context}: first delivery must have DUP=0");
                assert!(!got.retain, "{context}");
            }
        }
        subscriber.expect_nothing(QUIET).await;
    }
}

/// Outbound QoS 1: a delivery stays unacknowledged until the subscriber's PUBACK, so with an
/// inflight window of one the next message waits for that PUBACK; identifiers of deliveries in
/// flight are non-zero. [MQTT-4.3.2-1], [MQTT-4.3.2-3].
#[tokio::test]
async fn outbound_qos1_waits_for_puback() {
    let mut config = Config::default();
    config.limits.max_inflight_messages = 1;
    let broker = TestBroker::start_with(config).await;
    let mut subscriber = broker.client(V311, "out1-sub").await;
    sub(&mut subscriber, "out1/t", opts(QoS::AtLeastOnce)).await;
    let mut publisher = broker.client(V5, "out1-pub").await;
    for i in 0..3u16 {
        send_publish(
            &mut publisher,
            publish("out1/t", QoS::AtLeastOnce, i + 1, vec![i as u8]),
        )
        .await;
    }
    for i in 0..3u8 {
        let p = subscriber.recv_publish().await;
        assert_eq!(&p.payload[..], &[i]);
        assert_eq!(p.qos, QoS::AtLeastOnce);
        assert!(!p.dup);
        assert!(p.packet_id.is_some(), "QoS 1 has a packet id");
        // Unacknowledged: the next message must wait.
        subscriber.expect_nothing(QUIET).await;
        ack(&mut subscriber, &p).await;
    }
    subscriber.expect_nothing(QUIET).await;
}

/// Outbound QoS 2: the broker sends PUBLISH, waits for PUBREC, answers it with PUBREL (same
/// id), and the delivery holds its inflight slot until PUBCOMP. [MQTT-4.3.3-1],
/// [MQTT-4.3.3-3], [MQTT-4.3.3-4], [MQTT-4.3.3-5]; MQTT 5 §4.9 send quota.
#[tokio::test]
async fn outbound_qos2_sends_pubrel_after_pubrec_and_waits_for_pubcomp() {
    let broker = TestBroker::start().await;
    let mut subscriber = v5_with(
        &broker,
        "out2-sub",
        vec![midge_proto::Property::ReceiveMaximum(1)],
    )
    .await;
    sub(&mut subscriber, "out2/t", opts(QoS::ExactlyOnce)).await;
    let mut publisher = broker.client(V311, "out2-pub").await;
    pub_msg(&mut publisher, "out2/t", QoS::ExactlyOnce, b"first").await;
    pub_msg(&mut publisher, "out2/t", QoS::ExactlyOnce, b"second").await;

    let first = subscriber.recv_publish().await;
    assert_eq!(&first.payload[..], b"first");
    assert_eq!(first.qos, QoS::ExactlyOnce);
    let id = first.packet_id.expect("QoS 2 has a packet id");
    subscriber.expect_nothing(QUIET).await;
    subscriber.send(&Packet::PubRec(PublishAck::new(id))).await;
    assert_eq!(subscriber.recv().await, Packet::PubRel(PublishAck::new(id)));
    // PUBREL is unacknowledged until PUBCOMP: the window of one is still taken.
    subscriber.expect_nothing(QUIET).await;
    subscriber.send(&Packet::PubComp(PublishAck::new(id))).await;
    let second = recv_acked(&mut subscriber).await;
    assert_eq!(&second.payload[..], b"second");
    subscriber.expect_nothing(QUIET).await;
}

/// 200 messages on one topic at each QoS reach the subscriber in the order they were
/// published, and the publisher's acknowledgements come back in order too. MQTT 5
/// [MQTT-4.6.0-5], [MQTT-4.6.0-6]; MQTT 3.1.1 [MQTT-4.6.0-5], [MQTT-4.6.0-6].
#[tokio::test]
async fn two_hundred_messages_per_qos_arrive_in_order() {
    const N: u16 = 200;
    let broker = TestBroker::start().await;
    for (sub_version, pub_version) in [(V5, V311), (V311, V5)] {
        let mut subscriber = broker
            .client(sub_version, &format!("order-sub-{sub_version}"))
            .await;
        sub(&mut subscriber, "order/t", opts(QoS::ExactlyOnce)).await;
        let mut publisher = broker
            .client(pub_version, &format!("order-pub-{sub_version}"))
            .await;
        for qos in QOS {
            // Pipelined: all PUBLISH packets first, then the acknowledgements.
            for i in 1..=N {
                let payload = Bytes::from(format!("{qos}-{i}"));
                publisher
                    .send(&Packet::Publish(publish("order/t", qos, i, payload)))
                    .await;
            }
            if qos == QoS::AtLeastOnce {
                for i in 1..=N {
                    match publisher.recv().await {
                        Packet::PubAck(a) => assert_eq!(a.packet_id, pid(i)),
                        other => panic!("expected PUBACK {i}, got {other:?}"),
                    }
                }
            }
            if qos == QoS::ExactlyOnce {
                for i in 1..=N {
                    match publisher.recv().await {
                        Packet::PubRec(a) => assert_eq!(a.packet_id, pid(i)),
                        other => panic!("expected PUBREC {i}, got {other:?}"),
                    }
                }
                for i in 1..=N {
                    publisher
                        .send(&Packet::PubRel(PublishAck::new(pid(i))))
                        .await;
                }
                for i in 1..=N {
                    match publisher.recv().await {
                        Packet::PubComp(a) => assert_eq!(a.packet_id, pid(i)),
                        other => panic!("expected PUBCOMP {i}, got {other:?}"),
                    }
                }
            }
            let got = collect(&mut subscriber, usize::from(N)).await;
            for (i, p) in (1..=N).zip(&got) {
                assert_eq!(
                    p.payload,
                    Bytes::from(format!("{qos}-{i}")),
                    "{sub_version} subscriber, QoS {qos}"
                );
                assert_eq!(p.qos, qos);
            }
        }
        subscriber.expect_nothing(QUIET).await;
    }
}

/// A message nobody subscribed to is accepted: MQTT 5 PUBACK / PUBREC say 0x10 No matching
/// subscribers (MQTT 5.0 §3.4.2.1, §3.5.2.1), MQTT 3.1.1 gets a plain PUBACK, and the
/// connection stays up. With a matching subscriber the code is Success.
#[tokio::test]
async fn publish_without_subscribers_is_accepted() {
    let broker = TestBroker::start().await;
    let mut other = broker.client(V5, "nosub-other").await;
    sub(&mut other, "elsewhere/#", opts(QoS::ExactlyOnce)).await;

    let mut v5 = broker.client(V5, "nosub5").await;
    send_publish(&mut v5, publish("nosub/t", QoS::AtMostOnce, 1, "0")).await;
    let a = send_publish(&mut v5, publish("nosub/t", QoS::AtLeastOnce, 1, "1")).await;
    assert_eq!(
        a.map(|a| a.reason_code),
        Some(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
    let a = send_publish(&mut v5, publish("nosub/t", QoS::ExactlyOnce, 2, "2")).await;
    assert_eq!(
        a.map(|a| a.reason_code),
        Some(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
    assert_alive(&mut v5).await;

    let mut v3 = broker.client(V311, "nosub3").await;
    v3.send(&Packet::Publish(publish(
        "nosub/t",
        QoS::AtLeastOnce,
        5,
        "x",
    )))
    .await;
    assert_eq!(v3.recv().await, Packet::PubAck(PublishAck::new(pid(5))));
    assert_alive(&mut v3).await;
    other.expect_nothing(QUIET).await;

    // Once somebody matches, Success.
    let mut subscriber = broker.client(V311, "nosub-sub").await;
    sub(&mut subscriber, "nosub/#", opts(QoS::AtMostOnce)).await;
    let a = send_publish(&mut v5, publish("nosub/t", QoS::AtLeastOnce, 3, "3")).await;
    assert_eq!(a.map(|a| a.reason_code), Some(ReasonCode::SUCCESS));
    assert_eq!(&subscriber.recv_publish().await.payload[..], b"3");
}

/// A Topic Name with a wildcard character is refused: MQTT 5 DISCONNECT 0x90 Topic Name
/// invalid, MQTT 3.1.1 close; nothing is delivered. [MQTT-3.3.2-2], [MQTT-4.7.0-1]
/// (3.1.1: [MQTT-4.7.1-1]).
#[tokio::test]
async fn wildcard_in_topic_name_disconnects_the_publisher() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "wild-sub").await;
    sub(&mut subscriber, "#", opts(QoS::AtLeastOnce)).await;
    for topic in [&b"a/+"[..], b"a/#", b"#", b"+"] {
        let mut v5 = broker.client(V5, "wild5").await;
        v5.send_raw(&frame(0x30, &publish_body(topic, None, Some(&[]), b"x")))
            .await;
        expect_disconnect(&mut v5, ReasonCode::TOPIC_NAME_INVALID).await;

        let mut v3 = broker.client(V311, "wild3").await;
        v3.send_raw(&frame(0x32, &publish_body(topic, Some(1), None, b"x")))
            .await;
        expect_disconnect(&mut v3, ReasonCode::TOPIC_NAME_INVALID).await;
    }
    subscriber.expect_nothing(QUIET).await;
}

/// 0x10 No matching subscribers is only for a message that matched no subscription (MQTT 5.0
/// §3.4.2.1: "If the Server knows that there are no matching subscribers"): a subscription
/// whose session is offline still matches, even when its QoS 0 copy is not queued.
#[tokio::test]
async fn puback_is_success_when_the_matching_subscriber_is_offline() {
    let broker = TestBroker::start().await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let id = format!("offline-sub-{qos}");
        let (mut subscriber, _) = connect_with(&broker, V5, &id, |c| {
            c.clean_start = true;
            c.properties
                .push(midge_proto::Property::SessionExpiryInterval(60));
        })
        .await;
        sub(&mut subscriber, "offline/t", opts(qos)).await;
        subscriber
            .send(&Packet::Disconnect(Default::default()))
            .await;
        // Closed by the broker only after it marked the session offline.
        assert!(subscriber.expect_closed().await.is_empty());
        let mut publisher = broker.client(V5, "offline-pub").await;
        let a = send_publish(
            &mut publisher,
            publish("offline/t", QoS::AtLeastOnce, 1, "x"),
        )
        .await;
        assert_eq!(
            a.map(|a| a.reason_code),
            Some(ReasonCode::SUCCESS),
            "subscription at QoS {qos} of an offline session"
        );
        // Clean up the session for the next round.
        let (mut subscriber, _) = connect_with(&broker, V5, &id, |c| c.clean_start = true).await;
        subscriber
            .send(&Packet::Disconnect(Default::default()))
            .await;
    }
}
