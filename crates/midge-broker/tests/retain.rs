//! Retained messages: storage, replacement and deletion, delivery on subscribe, the RETAIN flag
//! on forwarded messages, Retain Handling, Retain As Published, expiry, large retained sets and
//! `$` topics.
//!
//! Spec ids are given per version: MQTT 3.1.1 numbers the retain rules [MQTT-3.3.1-5] to
//! [MQTT-3.3.1-12] differently from MQTT 5.0.

mod pubsub_support;

use std::time::Duration;

use bytes::Bytes;
use midge_proto::{
    Packet, Property, Publish, PublishAck, QoS, ReasonCode, RetainHandling, SubscriptionOptions,
};
use midge_testkit::TestBroker;
use pubsub_support::*;

fn retained(topic: &str, qos: QoS, payload: impl Into<Bytes>) -> Publish {
    let mut p = publish(topic, qos, 1, payload);
    p.retain = true;
    p
}

/// A retained PUBLISH is stored per topic and replaces the previous one; a new subscription
/// gets the last retained message of each matching topic with RETAIN=1, at
/// min(stored QoS, granted QoS).
/// MQTT 3.1.1 [MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-8]; MQTT 5 [MQTT-3.3.1-5],
/// [MQTT-3.3.1-9], [MQTT-3.8.4-8].
#[tokio::test]
async fn retained_message_is_stored_replaced_and_sent_on_subscribe() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "ret-pub").await;
    send_publish(&mut publisher, retained("ret/a", QoS::AtLeastOnce, "one")).await;
    send_publish(&mut publisher, retained("ret/a", QoS::ExactlyOnce, "two")).await;
    send_publish(&mut publisher, retained("ret/b", QoS::AtMostOnce, "bee")).await;
    wait_until("two retained topics", || {
        broker.handle.retained_count() == 2
    })
    .await;

    for version in [V311, V5] {
        let mut subscriber = broker.client(version, &format!("ret-sub-{version}")).await;
        sub(&mut subscriber, "ret/a", opts(QoS::AtLeastOnce)).await;
        let got = recv_acked(&mut subscriber).await;
        assert_eq!(
            &got.payload[..],
            b"two",
            "{version}: the replacement is kept"
        );
        assert!(got.retain, "{version}: RETAIN=1 on subscribe");
        assert_eq!(got.qos, QoS::AtLeastOnce, "min(2, 1)");
        subscriber.expect_nothing(QUIET).await;

        sub(&mut subscriber, "ret/+", opts(QoS::ExactlyOnce)).await;
        let mut got = collect(&mut subscriber, 2).await;
        got.sort_by(|a, b| a.topic.cmp(&b.topic));
        assert_eq!(got[0].topic.as_str(), "ret/a");
        assert_eq!(got[0].qos, QoS::ExactlyOnce);
        assert_eq!(got[1].topic.as_str(), "ret/b");
        assert_eq!(got[1].qos, QoS::AtMostOnce, "min(0, 2)");
        assert!(got.iter().all(|p| p.retain));
        subscriber.expect_nothing(QUIET).await;
    }
}

/// A retained PUBLISH with an empty payload is forwarded as normal, removes the topic's
/// retained message and is not itself stored.
/// MQTT 3.1.1 [MQTT-3.3.1-10], [MQTT-3.3.1-11]; MQTT 5 [MQTT-3.3.1-6], [MQTT-3.3.1-7].
#[tokio::test]
async fn empty_retained_payload_deletes_the_retained_message() {
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let topic = format!("del/{version}");
        let mut publisher = broker.client(version, &format!("del-pub-{version}")).await;
        let mut live = broker.client(version, &format!("del-live-{version}")).await;
        sub(&mut live, &topic, opts(QoS::AtLeastOnce)).await;
        send_publish(&mut publisher, retained(&topic, QoS::AtLeastOnce, "keep")).await;
        assert_eq!(&recv_acked(&mut live).await.payload[..], b"keep");
        wait_until("stored", || broker.handle.retained_count() == 1).await;

        send_publish(&mut publisher, retained(&topic, QoS::AtLeastOnce, "")).await;
        let forwarded = recv_acked(&mut live).await;
        assert!(
            forwarded.payload.is_empty(),
            "the empty message is forwarded"
        );
        wait_until("deleted", || broker.handle.retained_count() == 0).await;

        let mut late = broker.client(version, &format!("del-late-{version}")).await;
        sub(&mut late, &topic, opts(QoS::AtLeastOnce)).await;
        late.expect_nothing(QUIET).await;
    }
}

/// A PUBLISH with RETAIN=0 neither stores nor replaces nor removes the retained message, even
/// with an empty payload. MQTT 3.1.1 [MQTT-3.3.1-12]; MQTT 5 [MQTT-3.3.1-8].
#[tokio::test]
async fn non_retained_publish_leaves_the_retained_message_alone() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "keep-pub").await;
    send_publish(&mut publisher, retained("keep/t", QoS::AtLeastOnce, "kept")).await;
    send_publish(
        &mut publisher,
        publish("keep/t", QoS::AtLeastOnce, 2, "live"),
    )
    .await;
    send_publish(&mut publisher, publish("keep/t", QoS::AtMostOnce, 0, "")).await;
    send_publish(
        &mut publisher,
        publish("keep/other", QoS::AtMostOnce, 0, "x"),
    )
    .await;
    for version in [V311, V5] {
        let mut late = broker
            .client(version, &format!("keep-late-{version}"))
            .await;
        sub(&mut late, "keep/#", opts(QoS::AtLeastOnce)).await;
        let got = recv_acked(&mut late).await;
        assert_eq!(got.topic.as_str(), "keep/t");
        assert_eq!(&got.payload[..], b"kept");
        late.expect_nothing(QUIET).await;
    }
    assert_eq!(broker.handle.retained_count(), 1);
}

/// A retained message forwarded to an established subscription has RETAIN=0 (MQTT 3.1.1
/// always, [MQTT-3.3.1-9]; MQTT 5 unless Retain As Published, [MQTT-3.3.1-12]), while the copy
/// sent because of a new subscription has RETAIN=1 (MQTT 3.1.1 [MQTT-3.3.1-8]).
#[tokio::test]
async fn forwarded_messages_have_retain_cleared() {
    let broker = TestBroker::start().await;
    let mut v3 = broker.client(V311, "clr-3").await;
    sub(&mut v3, "clr/t", opts(QoS::AtLeastOnce)).await;
    let mut v5 = broker.client(V5, "clr-5").await;
    sub(&mut v5, "clr/t", opts(QoS::AtLeastOnce)).await;
    let mut publisher = broker.client(V5, "clr-pub").await;
    send_publish(&mut publisher, retained("clr/t", QoS::AtLeastOnce, "r")).await;
    for c in [&mut v3, &mut v5] {
        let got = recv_acked(c).await;
        assert_eq!(&got.payload[..], b"r");
        assert!(!got.retain, "{}: forwarded copy has RETAIN=0", c.version);
    }
    // Subscribing again (a new subscription for MQTT 3.1.1, Retain Handling 0 for MQTT 5)
    // sends the retained copy with RETAIN=1.
    for c in [&mut v3, &mut v5] {
        sub(c, "clr/t", opts(QoS::AtLeastOnce)).await;
        let got = recv_acked(c).await;
        assert!(
            got.retain,
            "{}: copy sent on subscribe has RETAIN=1",
            c.version
        );
    }
}

/// Retain Handling 0 sends retained messages on every SUBSCRIBE, including one that replaces an
/// existing subscription; 1 only when the subscription did not exist; 2 never.
/// [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11], [MQTT-3.8.4-4] (MQTT 5).
#[tokio::test]
async fn retain_handling_decides_when_retained_messages_are_sent() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "rh-pub").await;
    send_publish(&mut publisher, retained("rh/t", QoS::AtMostOnce, "r")).await;
    wait_until("stored", || broker.handle.retained_count() == 1).await;

    let mut c = broker.client(V5, "rh-sub").await;
    let rh0 = opts_rh(QoS::AtMostOnce, RetainHandling::SendAtSubscribe);
    let rh1 = opts_rh(QoS::AtMostOnce, RetainHandling::SendAtSubscribeIfNew);
    let rh2 = opts_rh(QoS::AtMostOnce, RetainHandling::DoNotSend);

    // 0: every time.
    for _ in 0..2 {
        sub(&mut c, "rh/t", rh0).await;
        assert_eq!(&c.recv_publish().await.payload[..], b"r");
        c.expect_nothing(QUIET).await;
    }
    let ack = unsubscribe(&mut c, 2, &["rh/t"]).await;
    assert_eq!(ack.reason_codes, vec![ReasonCode::SUCCESS]);

    // 1: only when new.
    sub(&mut c, "rh/t", rh1).await;
    assert_eq!(&c.recv_publish().await.payload[..], b"r");
    sub(&mut c, "rh/t", rh1).await;
    c.expect_nothing(QUIET).await;
    // An existing subscription made with another Retain Handling is not new either.
    sub(&mut c, "rh/+", rh0).await;
    assert_eq!(&c.recv_publish().await.payload[..], b"r");
    sub(&mut c, "rh/+", rh1).await;
    c.expect_nothing(QUIET).await;
    unsubscribe(&mut c, 3, &["rh/t", "rh/+"]).await;
    sub(&mut c, "rh/t", rh1).await;
    assert_eq!(
        &c.recv_publish().await.payload[..],
        b"r",
        "new again after UNSUBSCRIBE"
    );

    // 2: never, neither new nor replacing.
    sub(&mut c, "rh/#", rh2).await;
    sub(&mut c, "rh/#", rh2).await;
    c.expect_nothing(QUIET).await;

    // The subscriptions still receive live messages.
    send_publish(&mut publisher, publish("rh/t", QoS::AtMostOnce, 0, "live")).await;
    let got = c.recv_publish().await;
    assert_eq!(&got.payload[..], b"live");
    c.expect_nothing(QUIET).await;
}

/// Retain As Published: with 1 a forwarded message keeps the RETAIN flag it was published
/// with ([MQTT-3.3.1-13]); with 0 the flag is cleared ([MQTT-3.3.1-12]).
#[tokio::test]
async fn retain_as_published_keeps_the_flag() {
    let broker = TestBroker::start().await;
    let mut rap = broker.client(V5, "rap-1").await;
    sub(
        &mut rap,
        "rap/t",
        SubscriptionOptions {
            retain_as_published: true,
            ..opts(QoS::AtLeastOnce)
        },
    )
    .await;
    let mut plain = broker.client(V5, "rap-0").await;
    sub(&mut plain, "rap/t", opts(QoS::AtLeastOnce)).await;
    let mut publisher = broker.client(V311, "rap-pub").await;

    send_publish(&mut publisher, retained("rap/t", QoS::AtLeastOnce, "r")).await;
    assert!(recv_acked(&mut rap).await.retain, "[MQTT-3.3.1-13]");
    assert!(!recv_acked(&mut plain).await.retain, "[MQTT-3.3.1-12]");

    send_publish(&mut publisher, publish("rap/t", QoS::AtLeastOnce, 2, "n")).await;
    assert!(!recv_acked(&mut rap).await.retain, "[MQTT-3.3.1-13]");
    assert!(!recv_acked(&mut plain).await.retain);
}

/// A retained message whose Message Expiry Interval has passed is not sent to new
/// subscribers ([MQTT-3.3.2-5]); before that it is sent with the remaining interval
/// ([MQTT-3.3.2-6]).
#[tokio::test]
async fn expired_retained_message_is_not_sent() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "exp-pub").await;
    let mut short = retained("exp/short", QoS::AtLeastOnce, "short");
    short.properties.push(Property::MessageExpiryInterval(1));
    send_publish(&mut publisher, short).await;
    let mut long = retained("exp/long", QoS::AtLeastOnce, "long");
    long.properties.push(Property::MessageExpiryInterval(3600));
    send_publish(&mut publisher, long).await;

    let mut early = broker.client(V5, "exp-early").await;
    sub(&mut early, "exp/short", opts(QoS::AtLeastOnce)).await;
    let got = recv_acked(&mut early).await;
    assert_eq!(&got.payload[..], b"short");
    assert_eq!(got.properties.message_expiry_interval(), Some(1));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut late = broker.client(V5, "exp-late").await;
    sub(&mut late, "exp/#", opts(QoS::AtLeastOnce)).await;
    let got = recv_acked(&mut late).await;
    assert_eq!(&got.payload[..], b"long", "only the unexpired message");
    let left = got.properties.message_expiry_interval();
    assert!(
        matches!(left, Some(3598..=3600)),
        "remaining expiry {left:?}"
    );
    late.expect_nothing(QUIET).await;
}

/// 3000 retained messages reach a `#` subscriber with Receive Maximum 10 that acknowledges
/// as it goes: all of them, each once, with never more than 10 unacknowledged
/// ([MQTT-3.3.4-9]), although `limits.max_queued_messages` is 1000: retained messages sent
/// for a SUBSCRIBE are paced by flow control, never cut short.
#[tokio::test]
async fn thousands_of_retained_messages_are_all_delivered_under_flow_control() {
    const N: u16 = 3000;
    const WINDOW: usize = 10;
    let broker = TestBroker::start().await;
    assert_eq!(
        midge_broker::Config::default().limits.max_queued_messages,
        1000
    );
    let mut publisher = broker.client(V5, "many-pub").await;
    for chunk in (1..=N).collect::<Vec<_>>().chunks(100) {
        for &i in chunk {
            let p = retained(&format!("many/{i}"), QoS::AtLeastOnce, format!("{i}"));
            publisher
                .send(&Packet::Publish(Publish {
                    packet_id: Some(pid(i)),
                    ..p
                }))
                .await;
        }
        for &i in chunk {
            match publisher.recv().await {
                Packet::PubAck(a) => assert_eq!(a.packet_id, pid(i)),
                other => panic!("expected PUBACK, got {other:?}"),
            }
        }
    }
    assert_eq!(broker.handle.retained_count(), usize::from(N));

    let mut subscriber = v5_with(
        &broker,
        "many-sub",
        vec![Property::ReceiveMaximum(WINDOW as u16)],
    )
    .await;
    sub(&mut subscriber, "#", opts(QoS::AtLeastOnce)).await;
    let mut seen = std::collections::HashSet::new();
    let mut unacked = Vec::new();
    let mut rounds = 0;
    while seen.len() < usize::from(N) {
        let p = subscriber.recv_publish().await;
        assert!(p.retain);
        assert_eq!(p.qos, QoS::AtLeastOnce);
        assert_eq!(
            p.topic.as_str(),
            format!("many/{}", String::from_utf8_lossy(&p.payload))
        );
        assert!(seen.insert(p.topic.clone()), "{} sent twice", p.topic);
        unacked.push(p.packet_id.expect("QoS 1"));
        assert!(unacked.len() <= WINDOW);
        if unacked.len() == WINDOW || seen.len() == usize::from(N) {
            // Now and then, check that the broker really stops at the window.
            if rounds % 50 == 0 && unacked.len() == WINDOW {
                subscriber.expect_nothing(Duration::from_millis(100)).await;
            }
            rounds += 1;
            for id in unacked.drain(..) {
                subscriber.send(&Packet::PubAck(PublishAck::new(id))).await;
            }
        }
    }
    subscriber.expect_nothing(QUIET).await;
    // Nothing was dropped for the queue limit.
    assert_eq!(
        broker
            .handle
            .stats()
            .publish_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

/// Filters starting with a wildcard do not match topics starting with `$`: a retained
/// `$SYS/x` is not sent to `#` or `+/x` subscribers, but is to `$SYS/#`. [MQTT-4.7.2-1].
#[tokio::test]
async fn dollar_retained_messages_are_not_sent_to_leading_wildcards() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "dollar-pub").await;
    send_publish(&mut publisher, retained("$SYS/x", QoS::AtMostOnce, "sys")).await;
    send_publish(
        &mut publisher,
        retained("plain/x", QoS::AtMostOnce, "plain"),
    )
    .await;
    wait_until("stored", || broker.handle.retained_count() == 2).await;
    for version in [V311, V5] {
        let mut c = broker.client(version, &format!("dollar-{version}")).await;
        sub(&mut c, "#", opts(QoS::AtMostOnce)).await;
        assert_eq!(&c.recv_publish().await.payload[..], b"plain");
        c.expect_nothing(QUIET).await;
        sub(&mut c, "+/x", opts(QoS::AtMostOnce)).await;
        assert_eq!(&c.recv_publish().await.payload[..], b"plain");
        c.expect_nothing(QUIET).await;
        sub(&mut c, "$SYS/#", opts(QoS::AtMostOnce)).await;
        let got = c.recv_publish().await;
        assert_eq!(got.topic.as_str(), "$SYS/x");
        assert!(got.retain);
        c.expect_nothing(QUIET).await;
    }
}
