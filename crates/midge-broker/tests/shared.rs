//! Shared subscriptions (`$share/{group}/{filter}`, MQTT 5.0 §4.8.2): one member per message,
//! round-robin, independent groups, shared and normal subscriptions side by side, messages in
//! flight to a member that leaves, retained messages and No Local.

mod pubsub_support;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use midge_proto::{
    Packet, Property, Publish, PublishAck, QoS, ReasonCode, RetainHandling, SubscriptionOptions,
};
use midge_testkit::{RawClient, TestBroker};
use pubsub_support::*;

fn numbered(topic: &str, qos: QoS, i: u16) -> Publish {
    publish(topic, qos, i, Bytes::from(i.to_string()))
}

fn number(p: &Publish) -> u16 {
    std::str::from_utf8(&p.payload)
        .expect("utf-8")
        .parse()
        .expect("a number")
}

/// Reads `n` PUBLISH packets (acknowledging them), then checks that nothing else arrives.
async fn take(c: &mut RawClient, n: usize) -> Vec<Publish> {
    let got = collect(c, n).await;
    c.expect_nothing(QUIET).await;
    got
}

/// 30 messages to a group of three: each message reaches exactly one member, and the members
/// take turns, so each gets 10 (MQTT 5.0 §4.8.2: one member per message; round-robin is
/// Midge's choice).
#[tokio::test]
async fn each_message_goes_to_one_member_in_turn() {
    let broker = TestBroker::start().await;
    let mut members = Vec::new();
    for (i, version) in [V5, V311, V5].into_iter().enumerate() {
        let mut c = broker.client(version, &format!("rr-{i}")).await;
        sub(&mut c, "$share/g/rr/t", opts(QoS::AtLeastOnce)).await;
        members.push(c);
    }
    let mut publisher = broker.client(V5, "rr-pub").await;
    for i in 0..30 {
        send_publish(&mut publisher, numbered("rr/t", QoS::AtLeastOnce, i + 1)).await;
    }
    let mut all = BTreeSet::new();
    for c in &mut members {
        let got = take(c, 10).await;
        let numbers: Vec<u16> = got.iter().map(number).collect();
        // Turns: a member gets every third message.
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 3),
            "member {} got {numbers:?}",
            c.version
        );
        for p in &got {
            assert_eq!(p.topic.as_str(), "rr/t");
            assert!(
                all.insert(number(p)),
                "message {} delivered twice",
                number(p)
            );
        }
    }
    assert_eq!(all, (1..=30).collect());
}

/// Two groups on the same filter each get every message, once per group.
#[tokio::test]
async fn every_group_gets_every_message() {
    let broker = TestBroker::start().await;
    let mut a1 = broker.client(V5, "grp-a1").await;
    let mut a2 = broker.client(V5, "grp-a2").await;
    let mut b = broker.client(V311, "grp-b").await;
    sub(&mut a1, "$share/a/grp/+", opts(QoS::AtLeastOnce)).await;
    sub(&mut a2, "$share/a/grp/+", opts(QoS::AtLeastOnce)).await;
    sub(&mut b, "$share/b/grp/+", opts(QoS::AtLeastOnce)).await;
    let mut publisher = broker.client(V311, "grp-pub").await;
    for i in 1..=10 {
        send_publish(&mut publisher, numbered("grp/x", QoS::AtLeastOnce, i)).await;
    }
    let in_b: BTreeSet<u16> = take(&mut b, 10).await.iter().map(number).collect();
    assert_eq!(in_b, (1..=10).collect());
    let mut in_a: Vec<u16> = take(&mut a1, 5).await.iter().map(number).collect();
    in_a.extend(take(&mut a2, 5).await.iter().map(number));
    in_a.sort_unstable();
    assert_eq!(in_a, (1..=10).collect::<Vec<_>>());
}

/// A client with a normal subscription and a shared one on the same filter gets every message
/// through the normal one and its turns through the shared one, as separate PUBLISH packets
/// each carrying its own Subscription Identifier ([MQTT-3.3.4-5]).
#[tokio::test]
async fn shared_and_normal_subscription_on_one_client() {
    let broker = TestBroker::start().await;
    let mut both = broker.client(V5, "mix-both").await;
    sub_id(&mut both, "mix/t", opts(QoS::AtLeastOnce), 1).await;
    sub_id(&mut both, "$share/g/mix/t", opts(QoS::AtLeastOnce), 2).await;
    let mut other = broker.client(V5, "mix-other").await;
    sub_id(&mut other, "$share/g/mix/t", opts(QoS::AtLeastOnce), 3).await;
    let mut publisher = broker.client(V5, "mix-pub").await;
    for i in 1..=10 {
        send_publish(&mut publisher, numbered("mix/t", QoS::AtLeastOnce, i)).await;
    }
    let got = take(&mut both, 15).await;
    let by_id = |id: u32| -> BTreeSet<u16> {
        got.iter()
            .filter(|p| p.properties.subscription_identifiers().eq([id]))
            .map(number)
            .collect()
    };
    assert_eq!(by_id(1), (1..=10).collect(), "normal subscription: all");
    let shared_here = by_id(2);
    assert_eq!(shared_here.len(), 5, "shared subscription: every other");
    let shared_there: BTreeSet<u16> = take(&mut other, 5)
        .await
        .iter()
        .inspect(|p| assert!(p.properties.subscription_identifiers().eq([3])))
        .map(number)
        .collect();
    assert!(shared_here.is_disjoint(&shared_there));
    assert_eq!(
        shared_here
            .union(&shared_there)
            .copied()
            .collect::<BTreeSet<_>>(),
        (1..=10).collect()
    );
}

/// Which of two clients receives the next PUBLISH: `(receiver, other, publish, a_received)`.
async fn first_receiver(
    mut a: RawClient,
    mut b: RawClient,
) -> (RawClient, RawClient, Publish, bool) {
    tokio::select! {
        p = a.recv() => match p {
            Packet::Publish(p) => (a, b, p, true),
            other => panic!("expected PUBLISH, got {other:?}"),
        },
        p = b.recv() => match p {
            Packet::Publish(p) => (b, a, p, false),
            other => panic!("expected PUBLISH, got {other:?}"),
        },
    }
}

/// How a member leaves without acknowledging.
#[derive(Debug, Clone, Copy)]
enum Leave {
    /// The socket closes; the session (expiry 0) ends.
    Drop,
    /// DISCONNECT; the session (expiry 0) ends.
    Disconnect,
    /// The socket closes; the session (expiry 60 s) stays.
    DropKeepingSession,
}

async fn member(broker: &TestBroker, id: &str, filter: &str, qos: QoS, expiry: u32) -> RawClient {
    let mut c = v5_with(broker, id, vec![Property::SessionExpiryInterval(expiry)]).await;
    sub(&mut c, filter, opts(qos)).await;
    c
}

/// A QoS 1 message in flight to a member that leaves before acknowledging it goes to another
/// member of the group (MQTT 5.0 §4.8.2: the Server should send it to another subscribed
/// client when the session ends, and may do so as soon as the connection is lost).
#[tokio::test]
async fn unacknowledged_qos1_message_moves_to_another_member() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "fo-pub").await;
    for (round, leave) in [Leave::Drop, Leave::Disconnect, Leave::DropKeepingSession]
        .into_iter()
        .enumerate()
    {
        let filter = format!("$share/g/fo/{round}");
        let topic = format!("fo/{round}");
        let expiry = if matches!(leave, Leave::DropKeepingSession) {
            60
        } else {
            0
        };
        let a = member(
            &broker,
            &format!("fo-a{round}"),
            &filter,
            QoS::AtLeastOnce,
            expiry,
        )
        .await;
        let b = member(
            &broker,
            &format!("fo-b{round}"),
            &filter,
            QoS::AtLeastOnce,
            expiry,
        )
        .await;
        send_publish(&mut publisher, numbered(&topic, QoS::AtLeastOnce, 1)).await;
        let (mut gone, mut stays, first, _) = first_receiver(a, b).await;
        assert_eq!(number(&first), 1);
        stays.expect_nothing(QUIET).await;
        match leave {
            Leave::Disconnect => {
                gone.send(&Packet::Disconnect(Default::default())).await;
                drop(gone);
            }
            Leave::Drop | Leave::DropKeepingSession => drop(gone),
        }
        let moved = stays.recv_publish().await;
        assert_eq!(number(&moved), 1, "{leave:?}");
        assert_eq!(moved.qos, QoS::AtLeastOnce);
        assert_eq!(moved.topic.as_str(), topic);
        ack(&mut stays, &moved).await;
        stays.expect_nothing(QUIET).await;
        // The group goes on with the remaining member.
        send_publish(&mut publisher, numbered(&topic, QoS::AtLeastOnce, 2)).await;
        assert_eq!(number(&recv_acked(&mut stays).await), 2);
    }
}

/// A QoS 2 message in flight to a member that loses its connection is not given to another
/// member: delivery completes with that member when it reconnects ([MQTT-4.8.2-4]), and if
/// its session ends instead, nobody else gets it ([MQTT-4.8.2-5]).
#[tokio::test]
async fn unacknowledged_qos2_message_stays_with_its_member() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "q2s-pub").await;
    for (round, expiry) in [60u32, 0].into_iter().enumerate() {
        let filter = format!("$share/g/q2s/{round}");
        let topic = format!("q2s/{round}");
        let a = member(
            &broker,
            &format!("q2s-a{round}"),
            &filter,
            QoS::ExactlyOnce,
            expiry,
        )
        .await;
        let b = member(
            &broker,
            &format!("q2s-b{round}"),
            &filter,
            QoS::ExactlyOnce,
            expiry,
        )
        .await;
        send_publish(&mut publisher, numbered(&topic, QoS::ExactlyOnce, 1)).await;
        let (gone, mut stays, first, a_received) = first_receiver(a, b).await;
        drop(gone);
        stays.expect_nothing(Duration::from_millis(500)).await;
        if expiry == 0 {
            // [MQTT-4.8.2-5]: the session ended; the message is not sent to anyone else.
            continue;
        }
        // [MQTT-4.8.2-4]: the member comes back and the delivery completes, DUP=1.
        let gone_id = format!("q2s-{}{round}", if a_received { "a" } else { "b" });
        let (mut c, connack) = connect_with(&broker, V5, &gone_id, |c| {
            c.clean_start = false;
            c.properties.push(Property::SessionExpiryInterval(60));
        })
        .await;
        assert!(connack.session_present);
        let resumed = match c.try_recv(midge_testkit::TIMEOUT).await {
            Ok(Some(Packet::Publish(p))) => Some((c, p)),
            _ => None,
        };
        let (mut c, p) = resumed.expect("the member that left gets the message again");
        assert_eq!(number(&p), 1);
        assert!(p.dup, "[MQTT-3.3.1-1] a resent PUBLISH has DUP=1");
        assert_eq!(p.packet_id, first.packet_id);
        let id = p.packet_id.expect("QoS 2");
        c.send(&Packet::PubRec(PublishAck::new(id))).await;
        assert_eq!(c.recv().await, Packet::PubRel(PublishAck::new(id)));
        c.send(&Packet::PubComp(PublishAck::new(id))).await;
        c.expect_nothing(QUIET).await;
        stays.expect_nothing(QUIET).await;
    }
}

/// A member that answers with a failure reason code (PUBACK 0x80) ends that message's
/// delivery: it is not given to another member, not even when the refusing member leaves
/// ([MQTT-4.8.2-6]).
#[tokio::test]
async fn refused_message_is_not_sent_to_another_member() {
    let broker = TestBroker::start().await;
    let a = member(&broker, "ref-a", "$share/g/ref/t", QoS::AtLeastOnce, 0).await;
    let b = member(&broker, "ref-b", "$share/g/ref/t", QoS::AtLeastOnce, 0).await;
    let mut publisher = broker.client(V5, "ref-pub").await;
    send_publish(&mut publisher, numbered("ref/t", QoS::AtLeastOnce, 1)).await;
    let (mut refuser, mut other, p, _) = first_receiver(a, b).await;
    refuser
        .send(&Packet::PubAck(PublishAck::with_reason(
            p.packet_id.expect("QoS 1"),
            ReasonCode::UNSPECIFIED_ERROR,
        )))
        .await;
    assert_alive(&mut refuser).await;
    other.expect_nothing(QUIET).await;
    drop(refuser);
    other.expect_nothing(QUIET).await;
}

/// Retained messages are not sent for a shared subscription: they are sent when a new
/// Non-shared Subscription is made (MQTT 5.0 §3.3.1.3, §4.8.2), whatever Retain Handling says.
#[tokio::test]
async fn shared_subscriptions_get_no_retained_messages() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "sr-pub").await;
    let mut p = publish("sr/t", QoS::AtLeastOnce, 1, "retained");
    p.retain = true;
    send_publish(&mut publisher, p).await;
    let mut c = broker.client(V5, "sr-sub").await;
    for rh in [
        RetainHandling::SendAtSubscribe,
        RetainHandling::SendAtSubscribeIfNew,
    ] {
        sub(&mut c, "$share/g/sr/t", opts_rh(QoS::AtLeastOnce, rh)).await;
        sub(&mut c, "$share/h/sr/#", opts_rh(QoS::AtLeastOnce, rh)).await;
        c.expect_nothing(QUIET).await;
    }
    // The same filter without $share does get it.
    sub(&mut c, "sr/t", opts(QoS::AtLeastOnce)).await;
    let got = recv_acked(&mut c).await;
    assert!(got.retain);
    assert!(got.properties.subscription_identifiers().next().is_none());
    c.expect_nothing(QUIET).await;
}

/// Each member gets messages at the QoS granted to its own subscription ([MQTT-4.8.2-3]).
#[tokio::test]
async fn members_get_their_own_granted_qos() {
    let broker = TestBroker::start().await;
    let mut q0 = broker.client(V5, "gq-0").await;
    sub(&mut q0, "$share/g/gq/t", opts(QoS::AtMostOnce)).await;
    let mut q2 = broker.client(V311, "gq-2").await;
    sub(&mut q2, "$share/g/gq/t", opts(QoS::ExactlyOnce)).await;
    let mut publisher = broker.client(V5, "gq-pub").await;
    for i in 1..=4 {
        send_publish(&mut publisher, numbered("gq/t", QoS::ExactlyOnce, i)).await;
    }
    for p in take(&mut q0, 2).await {
        assert_eq!(p.qos, QoS::AtMostOnce);
    }
    for p in take(&mut q2, 2).await {
        assert_eq!(p.qos, QoS::ExactlyOnce);
    }
}

/// No Local on a shared subscription is a Protocol Error: DISCONNECT 0x82 ([MQTT-3.8.3-4]).
#[tokio::test]
async fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let broker = TestBroker::start().await;
    let mut witness = Witness::new(&broker, "nls-witness").await;
    let mut c = broker.client(V5, "nls").await;
    c.send(&Packet::Subscribe(midge_proto::Subscribe {
        packet_id: pid(1),
        properties: Default::default(),
        filters: vec![midge_proto::SubscribeFilter {
            filter: midge_proto::TopicFilter::new("$share/g/nls/t").expect("valid"),
            options: SubscriptionOptions {
                no_local: true,
                ..opts(QoS::AtLeastOnce)
            },
        }],
    }))
    .await;
    expect_disconnect(&mut c, ReasonCode::PROTOCOL_ERROR).await;
    witness.check("no local on $share").await;
}
