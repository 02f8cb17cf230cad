//! Unit tests of the session state: what it writes for each situation, decoded back.

use bytes::BytesMut;
use midge_proto::{Decoder, PROTOCOL_MAX_PACKET_SIZE, Property, Publish, SubscriptionOptions};
use tokio::sync::mpsc;

use super::*;

fn options() -> ConnectOptions {
    ConnectOptions::tcp("localhost", 1883).topic_alias_maximum(5)
}

fn connack(present: bool, receive_maximum: Option<u16>) -> ConnAck {
    let mut c = ConnAck::new(ReasonCode::SUCCESS, present);
    if let Some(rm) = receive_maximum {
        c.properties.push(Property::ReceiveMaximum(rm));
    }
    c
}

/// Every packet in the write buffer, which is emptied.
fn written(out: &mut Out) -> Vec<Packet> {
    let mut decoder = Decoder::with_version(ProtocolVersion::V5, PROTOCOL_MAX_PACKET_SIZE);
    let mut buf = BytesMut::from(&out.wbuf[..]);
    let n = out.wbuf.len();
    out.advance(n);
    let mut packets = Vec::new();
    while let Some(p) = decoder.decode(&mut buf).expect("valid packets") {
        packets.push(p);
    }
    packets
}

fn publish(session: &mut Session, out: &mut Out, topic: &str, qos: QoS) {
    let mut p = Publish::new(TopicName::new(topic).expect("topic"), "x");
    p.qos = qos;
    session.command(
        Command::Publish(PendingPublish {
            publish: p,
            reply: None,
        }),
        Some(out),
    );
}

fn ids_and_dups(packets: &[Packet]) -> Vec<(String, u16, bool)> {
    packets
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => (
                format!("PUBLISH {}", p.topic),
                p.packet_id.map_or(0, PacketId::get),
                p.dup,
            ),
            other => (
                other.packet_type().to_string(),
                match other {
                    Packet::PubRel(a) => a.packet_id.get(),
                    Packet::Subscribe(s) => s.packet_id.get(),
                    _ => 0,
                },
                false,
            ),
        })
        .collect()
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

#[test]
fn queue_waits_for_the_receive_maximum_window() {
    let mut s = Session::new(&options());
    let mut out = Out::new(ProtocolVersion::V5);
    s.resume(&connack(false, Some(2)), &mut out);
    for t in ["a", "b", "c", "d"] {
        publish(&mut s, &mut out, t, QoS::AtLeastOnce);
    }
    // QoS 0 keeps its place behind the waiting QoS 1 messages.
    publish(&mut s, &mut out, "e", QoS::AtMostOnce);
    assert_eq!(
        ids_and_dups(&written(&mut out)),
        [
            ("PUBLISH a".into(), 1, false),
            ("PUBLISH b".into(), 2, false)
        ]
    );
    let (tx, _rx) = mpsc::channel(8);
    let mut events = EventSink::new(tx);
    s.on_packet(
        Packet::PubAck(PublishAck::new(pid(1))),
        &mut out,
        &mut events,
    )
    .expect("ok");
    assert_eq!(
        ids_and_dups(&written(&mut out)),
        [("PUBLISH c".into(), 3, false)]
    );
    s.on_packet(
        Packet::PubAck(PublishAck::new(pid(2))),
        &mut out,
        &mut events,
    )
    .expect("ok");
    assert_eq!(
        ids_and_dups(&written(&mut out)),
        [
            ("PUBLISH d".into(), 4, false),
            ("PUBLISH e".into(), 0, false)
        ]
    );
}

#[test]
fn resumed_session_resends_publish_with_dup_and_pubrel_in_order() {
    let mut s = Session::new(&options());
    let mut out = Out::new(ProtocolVersion::V5);
    let (tx, _rx) = mpsc::channel(8);
    let mut events = EventSink::new(tx);
    s.resume(&connack(false, None), &mut out);
    publish(&mut s, &mut out, "q2", QoS::ExactlyOnce);
    publish(&mut s, &mut out, "q1", QoS::AtLeastOnce);
    written(&mut out);
    s.on_packet(
        Packet::PubRec(PublishAck::new(pid(1))),
        &mut out,
        &mut events,
    )
    .expect("ok");
    assert_eq!(
        ids_and_dups(&written(&mut out)),
        [("PUBREL".into(), 1, false)]
    );

    s.connection_lost();
    let mut out = Out::new(ProtocolVersion::V5);
    s.resume(&connack(true, None), &mut out);
    assert_eq!(
        ids_and_dups(&written(&mut out)),
        [("PUBLISH q1".into(), 2, true), ("PUBREL".into(), 1, false)]
    );
}

#[test]
fn lost_session_sends_again_as_new_and_resubscribes() {
    let mut s = Session::new(&options());
    let mut out = Out::new(ProtocolVersion::V5);
    let (tx, _rx) = mpsc::channel(8);
    let mut events = EventSink::new(tx);
    s.resume(&connack(false, None), &mut out);
    let (reply, _answer) = tokio::sync::oneshot::channel();
    s.command(
        Command::Subscribe {
            filters: vec![SubscribeFilter {
                filter: TopicFilter::new("s/#").expect("filter"),
                options: SubscriptionOptions::qos(QoS::AtLeastOnce),
            }],
            properties: Properties::new().with(Property::SubscriptionIdentifier(9)),
            reply,
        },
        Some(&mut out),
    );
    s.on_packet(
        Packet::SubAck(SubAck {
            packet_id: pid(1),
            properties: Properties::new(),
            reason_codes: vec![ReasonCode::GRANTED_QOS_1],
        }),
        &mut out,
        &mut events,
    )
    .expect("ok");
    publish(&mut s, &mut out, "p", QoS::AtLeastOnce);
    written(&mut out);

    s.connection_lost();
    let mut out = Out::new(ProtocolVersion::V5);
    s.resume(&connack(false, None), &mut out);
    let packets = written(&mut out);
    assert_eq!(
        ids_and_dups(&packets),
        [
            ("SUBSCRIBE".into(), 2, false),
            ("PUBLISH p".into(), 3, false)
        ]
    );
    let Packet::Subscribe(sub) = &packets[0] else {
        panic!("not a SUBSCRIBE");
    };
    assert_eq!(
        sub.properties
            .subscription_identifiers()
            .collect::<Vec<_>>(),
        [9]
    );
}

#[test]
fn incoming_qos2_is_delivered_once_and_aliases_resolve() {
    let mut s = Session::new(&options());
    let mut out = Out::new(ProtocolVersion::V5);
    let (tx, mut rx) = mpsc::channel(8);
    let mut events = EventSink::new(tx);
    s.resume(&connack(false, None), &mut out);
    let mut p = Publish::new(TopicName::new("long/topic/name").expect("topic"), "x");
    p.qos = QoS::ExactlyOnce;
    p.packet_id = Some(pid(7));
    p.properties.push(Property::TopicAlias(3));
    s.on_packet(Packet::Publish(p.clone()), &mut out, &mut events)
        .expect("ok");
    // The same identifier again, now with the alias standing for the topic.
    p.dup = true;
    p.topic = TopicName::empty_for_alias();
    s.on_packet(Packet::Publish(p), &mut out, &mut events)
        .expect("ok");
    s.on_packet(
        Packet::PubRel(PublishAck::new(pid(7))),
        &mut out,
        &mut events,
    )
    .expect("ok");
    let kinds: Vec<_> = written(&mut out)
        .iter()
        .map(|p| p.packet_type().name())
        .collect();
    assert_eq!(kinds, ["PUBREC", "PUBREC", "PUBCOMP"]);
    let Ok(Event::Message(m)) = rx.try_recv() else {
        panic!("one message");
    };
    assert_eq!(m.topic, "long/topic/name");
    assert_eq!(m.properties.topic_alias(), None);
    assert!(rx.try_recv().is_err(), "delivered once");

    // An alias above our Topic Alias Maximum (5) is a protocol error.
    let mut bad = Publish::new(TopicName::new("t").expect("topic"), "x");
    bad.properties.push(Property::TopicAlias(6));
    let err = s
        .on_packet(Packet::Publish(bad), &mut out, &mut events)
        .expect_err("invalid alias");
    assert_eq!(err.reason_code(), Some(ReasonCode::TOPIC_ALIAS_INVALID));
}

#[test]
fn too_large_for_the_server_is_refused_without_sending() {
    let mut s = Session::new(&options());
    let mut out = Out::new(ProtocolVersion::V5);
    let mut c = connack(false, None);
    c.properties.push(Property::MaximumPacketSize(64));
    s.resume(&c, &mut out);
    let (reply, mut answer) = tokio::sync::oneshot::channel();
    let mut p = Publish::new(TopicName::new("t").expect("topic"), vec![0u8; 100]);
    p.qos = QoS::AtLeastOnce;
    s.command(
        Command::Publish(PendingPublish {
            publish: p,
            reply: Some(reply),
        }),
        Some(&mut out),
    );
    assert!(out.wbuf.is_empty());
    assert!(matches!(
        answer.try_recv(),
        Ok(Err(ClientError::PacketTooLarge { maximum: 64, .. }))
    ));
}
