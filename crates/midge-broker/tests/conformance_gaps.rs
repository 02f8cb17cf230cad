//! Server-side normative statements that no other test covered when `docs/conformance.md`
//! was written. Each test names the statements it covers; ids are given per version because
//! MQTT 3.1.1 and MQTT 5.0 number them differently.

mod pubsub_support;

use std::time::Duration;

use midge_broker::Config;
use midge_proto::{Connect, Packet, Properties, Property, PublishAck, QoS, ReasonCode, Will};
use midge_testkit::{RawClient, TestBroker};
use pubsub_support::*;

/// A CONNECT packet as raw bytes: protocol name "MQTT", `level`, `flags`, Keep Alive 60, an
/// MQTT 5 property length of 0 when `level` is 5, then `payload` (the payload fields, already
/// length-prefixed).
fn raw_connect(level: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = field(b"MQTT");
    body.push(level);
    body.push(flags);
    body.extend_from_slice(&60u16.to_be_bytes());
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(payload);
    frame(0x10, &body)
}

/// The connection must close without a successful CONNACK: MQTT 3.1.1 without any packet,
/// MQTT 5 with at most a CONNACK carrying an error code.
async fn expect_refused(c: &mut RawClient, what: &str) {
    let got = c.expect_closed().await;
    match got.as_slice() {
        [] => {}
        [Packet::ConnAck(ack)] if c.version.is_v5() && ack.reason_code.is_error() => {}
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

/// MQTT 5.0 [MQTT-3.1.3-5], MQTT 3.1.1 [MQTT-3.1.3-5]: the server accepts every Client
/// Identifier of 1 to 23 bytes made of `0-9a-zA-Z`, here the longest such and a one-byte one.
#[tokio::test]
async fn client_ids_of_1_to_23_alphanumerics_are_accepted() {
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        for id in ["0123456789abcdefghijkLM", "Z"] {
            let mut c = broker.raw(version).await;
            let ack = c.connect(Connect::new(version, id)).await;
            assert_eq!(ack.properties.assigned_client_identifier(), None);
            assert_alive(&mut c).await;
        }
    }
    broker.stop().await;
}

/// MQTT 5.0 [MQTT-3.1.3-8]: a Client Identifier the server rejects (here the zero-length one,
/// with `session.allow_zero_length_clientid` off) gets CONNACK 0x85 and the connection is
/// closed; MQTT 3.1.1 [MQTT-3.1.3-9]: return code 0x02, then close.
#[tokio::test]
async fn rejected_client_id_gets_0x85_or_return_code_2_then_close() {
    let mut config = Config::default();
    config.session.allow_zero_length_clientid = false;
    let broker = TestBroker::start_with(config).await;
    let mut v5 = broker.raw(V5).await;
    v5.send(&Packet::Connect(Box::new(Connect::new(V5, ""))))
        .await;
    match v5.recv().await {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
            assert!(!ack.session_present);
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert_eq!(v5.expect_closed().await, vec![]);

    let mut v3 = broker.raw(V311).await;
    v3.send_raw(&raw_connect(4, 0x02, &field(b""))).await;
    v3.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x02]).await;
    assert_eq!(v3.expect_closed().await, vec![]);
    assert_eq!(broker.handle.session_count(), 0);
    broker.stop().await;
}

/// A Password Flag without a Password in the payload is malformed and refused: MQTT 5.0
/// [MQTT-3.1.2-19], [MQTT-3.1.4-1]; MQTT 3.1.1 [MQTT-3.1.2-21], [MQTT-3.1.4-1] (closed
/// without CONNACK).
#[tokio::test]
async fn password_flag_without_password_is_refused() {
    let broker = TestBroker::start().await;
    for (version, level) in [(V311, 4u8), (V5, 5)] {
        let mut payload = field(b"c");
        payload.extend(field(b"user"));
        let mut c = broker.raw(version).await;
        // User Name, Password and Clean Start flags; only the User Name follows.
        c.send_raw(&raw_connect(level, 0xC2, &payload)).await;
        expect_refused(&mut c, &format!("{version}")).await;
    }
    assert_eq!(broker.handle.session_count(), 0);
    broker.stop().await;
}

/// The Will Topic and the User Name must be UTF-8 Encoded Strings; a CONNECT with 0xFF in
/// either is refused. MQTT 5.0 [MQTT-3.1.3-11], [MQTT-3.1.3-12], [MQTT-1.5.4-1]; MQTT 3.1.1
/// [MQTT-3.1.3-10], [MQTT-3.1.3-11], [MQTT-1.5.3-1], [MQTT-3.1.4-1].
#[tokio::test]
async fn will_topic_and_user_name_must_be_utf8() {
    let broker = TestBroker::start().await;
    for (version, level) in [(V311, 4u8), (V5, 5)] {
        // Will Flag, Clean Start: client id, [will properties,] will topic 0xFF, payload.
        let mut will = field(b"c");
        if level == 5 {
            will.push(0);
        }
        will.extend(field(&[b'w', 0xFF]));
        will.extend(field(b"x"));
        let mut c = broker.raw(version).await;
        c.send_raw(&raw_connect(level, 0x06, &will)).await;
        expect_refused(&mut c, &format!("{version} will topic")).await;

        // User Name Flag, Clean Start: client id, user name 0xFF.
        let mut user = field(b"c");
        user.extend(field(&[0xFF]));
        let mut c = broker.raw(version).await;
        c.send_raw(&raw_connect(level, 0x82, &user)).await;
        expect_refused(&mut c, &format!("{version} user name")).await;
    }
    assert_eq!(broker.handle.session_count(), 0);
    broker.stop().await;
}

/// Topic Filters in SUBSCRIBE and UNSUBSCRIBE, and the Response Topic, must be UTF-8 Encoded
/// Strings: 0xFF in one ends the connection (MQTT 5 DISCONNECT 0x81, MQTT 3.1.1 close).
/// MQTT 5.0 [MQTT-3.8.3-1], [MQTT-3.10.3-1], [MQTT-3.3.2-13]; MQTT 3.1.1 [MQTT-3.8.3-1],
/// [MQTT-3.10.3-1], [MQTT-1.5.3-1].
#[tokio::test]
async fn filters_and_response_topic_must_be_utf8() {
    let broker = TestBroker::start().await;
    let mut witness = Witness::new(&broker, "utf8-witness").await;
    for version in [V5, V311] {
        let props: &[u8] = if version.is_v5() { &[0] } else { &[] };
        let mut sub_body = vec![0x00, 0x01];
        sub_body.extend_from_slice(props);
        sub_body.extend(field(&[b'a', 0xFF]));
        sub_body.push(0x01);
        let mut unsub_body = vec![0x00, 0x02];
        unsub_body.extend_from_slice(props);
        unsub_body.extend(field(&[b'a', 0xFF]));
        for (what, bytes) in [
            ("SUBSCRIBE", frame(0x82, &sub_body)),
            ("UNSUBSCRIBE", frame(0xA2, &unsub_body)),
        ] {
            let mut c = broker.client(version, &format!("utf8-{what}")).await;
            c.send_raw(&bytes).await;
            expect_disconnect(&mut c, ReasonCode::MALFORMED_PACKET).await;
            witness.check(&format!("{version} {what}")).await;
        }
    }
    // Response Topic (0x08) "a" 0xFF.
    let mut c = broker.client(V5, "utf8-response").await;
    c.send_raw(&frame(
        0x30,
        &publish_body(b"t", None, Some(&[0x08, 0x00, 0x02, b'a', 0xFF]), b"x"),
    ))
    .await;
    expect_disconnect(&mut c, ReasonCode::MALFORMED_PACKET).await;
    witness.check("Response Topic").await;
}

/// Reserved fixed-header flags are checked on every packet type: MQTT 3.1.1 UNSUBSCRIBE with
/// flags 0000 ([MQTT-3.10.1-1]) and DISCONNECT with flags 0001 ([MQTT-3.14.1-1],
/// [MQTT-2.2.2-2]) close the connection, and the latter is a protocol violation, not a normal
/// DISCONNECT, so the will is published; MQTT 5 AUTH with flags 0001 is malformed
/// ([MQTT-3.15.1-1], [MQTT-2.1.3-1]): DISCONNECT 0x81, then close.
#[tokio::test]
async fn reserved_flags_of_unsubscribe_disconnect_and_auth_are_checked() {
    let broker = TestBroker::start().await;
    let mut watcher = broker.client(V5, "flags-watch").await;
    sub(&mut watcher, "flags/#", opts(QoS::AtMostOnce)).await;

    let mut c = broker.client(V311, "flags-unsub").await;
    c.send_raw(&frame(0xA0, &[0x00, 0x01, 0x00, 0x01, b't']))
        .await;
    expect_disconnect(&mut c, ReasonCode::MALFORMED_PACKET).await;

    let mut connect = Connect::new(V311, "flags-disc");
    connect.will = Some(Will::new(name("flags/will"), "gone"));
    let mut c = broker.raw(V311).await;
    c.connect(connect).await;
    c.send_raw(&[0xE1, 0x00]).await;
    expect_disconnect(&mut c, ReasonCode::MALFORMED_PACKET).await;
    let will = watcher.recv_publish().await;
    assert_eq!(will.topic.as_str(), "flags/will");

    let mut c = broker.client(V5, "flags-auth").await;
    c.send_raw(&[0xF1, 0x00]).await;
    expect_disconnect(&mut c, ReasonCode::MALFORMED_PACKET).await;
    watcher.expect_nothing(QUIET).await;
    broker.stop().await;
}

/// The DUP flag of a forwarded PUBLISH depends only on whether the server is retransmitting
/// it: a PUBLISH received with DUP 1 goes out with DUP 0. MQTT 5.0 [MQTT-3.3.1-3]; MQTT 3.1.1
/// [MQTT-3.3.1-3].
#[tokio::test]
async fn incoming_dup_is_not_forwarded() {
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let mut subscriber = broker.client(version, &format!("dup-sub-{version}")).await;
        sub(&mut subscriber, "dupf/t", opts(QoS::ExactlyOnce)).await;
        let mut publisher = broker.client(version, &format!("dup-pub-{version}")).await;
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let mut p = publish("dupf/t", qos, 5, "x");
            p.dup = true;
            send_publish(&mut publisher, p).await;
            let got = recv_acked(&mut subscriber).await;
            assert_eq!(got.qos, qos);
            assert!(
                !got.dup,
                "{version} QoS {qos}: DUP must be 0 on a first delivery"
            );
        }
    }
    broker.stop().await;
}

/// MQTT 3.1.1 [MQTT-3.3.1-7]: a retained QoS 0 message discards the message previously
/// retained for that topic (here a QoS 1 one); Midge stores the QoS 0 one in its place.
#[tokio::test]
async fn retained_qos0_message_discards_the_previous_one() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "r0-pub").await;
    let mut old = publish("r0/t", QoS::AtLeastOnce, 1, "old");
    old.retain = true;
    send_publish(&mut publisher, old).await;
    let mut new = publish("r0/t", QoS::AtMostOnce, 0, "new");
    new.retain = true;
    send_publish(&mut publisher, new).await;
    assert_alive(&mut publisher).await;
    let mut subscriber = broker.client(V311, "r0-sub").await;
    sub(&mut subscriber, "r0/t", opts(QoS::AtLeastOnce)).await;
    let got = subscriber.recv_publish().await;
    assert_eq!(
        (&got.payload[..], got.qos, got.retain),
        (&b"new"[..], QoS::AtMostOnce, true)
    );
    subscriber.expect_nothing(QUIET).await;
    broker.stop().await;
}

/// MQTT 3.1.1 [MQTT-3.1.2.7]: retained messages are not part of the session state and are
/// not deleted when the session that published them ends.
#[tokio::test]
async fn retained_messages_outlive_the_publishing_session() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "rs-pub").await;
    let mut p = publish("rs/t", QoS::AtLeastOnce, 1, "kept");
    p.retain = true;
    send_publish(&mut publisher, p).await;
    publisher
        .send(&Packet::Disconnect(Default::default()))
        .await;
    assert_eq!(publisher.expect_closed().await, vec![]);
    wait_until("publisher's session ended", || {
        broker.handle.session_count() == 0
    })
    .await;
    assert_eq!(broker.handle.retained_count(), 1);
    let mut subscriber = broker.client(V311, "rs-sub").await;
    sub(&mut subscriber, "rs/t", opts(QoS::AtLeastOnce)).await;
    let got = recv_acked(&mut subscriber).await;
    assert_eq!((&got.payload[..], got.retain), (&b"kept"[..], true));
    broker.stop().await;
}

/// MQTT 3.1.1 [MQTT-3.1.2-12]: with the Will Flag 0 nothing is published when the network
/// connection ends, even abnormally.
#[tokio::test]
async fn no_will_flag_means_nothing_is_published_on_a_lost_connection() {
    let broker = TestBroker::start().await;
    let mut watcher = broker.client(V5, "nw-watch").await;
    sub(&mut watcher, "#", opts(QoS::AtMostOnce)).await;
    for version in [V311, V5] {
        let c = broker.client(version, &format!("nw-{version}")).await;
        drop(c);
    }
    wait_until("both connections gone", || {
        broker.handle.session_count() == 1
    })
    .await;
    watcher.expect_nothing(QUIET).await;
    broker.stop().await;
}

/// After refusing a CONNECT the server processes nothing else the client sent: a PUBLISH that
/// arrived in the same segment as the refused CONNECT is neither delivered nor retained.
/// MQTT 5.0 [MQTT-3.1.4-6]; MQTT 3.1.1 [MQTT-3.1.4-5].
#[tokio::test]
async fn nothing_is_processed_after_a_refused_connect() {
    let broker = TestBroker::start().await;
    let mut watcher = broker.client(V5, "rf-watch").await;
    sub(&mut watcher, "rf/#", opts(QoS::AtMostOnce)).await;
    let mut retained = publish("rf/t", QoS::AtMostOnce, 0, "must not arrive");
    retained.retain = true;

    // MQTT 5: an Authentication Method the (default) authenticator does not support: 0x8C.
    let mut connect = Connect::new(V5, "rf5");
    connect.properties.push(Property::AuthenticationMethod(
        midge_proto::ByteString::from("SCRAM-SHA-1"),
    ));
    let mut bytes = Packet::Connect(Box::new(connect))
        .to_bytes(V5)
        .expect("encode")
        .to_vec();
    bytes.extend_from_slice(
        &Packet::Publish(retained.clone())
            .to_bytes(V5)
            .expect("encode"),
    );
    let mut c = broker.raw(V5).await;
    c.send_raw(&bytes).await;
    match c.recv().await {
        Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::BAD_AUTHENTICATION_METHOD),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert_eq!(c.expect_closed().await, vec![]);

    // MQTT 3.1.1: a zero-length Client Identifier with Clean Session 0: return code 2.
    let mut bytes = raw_connect(4, 0x00, &field(b""));
    bytes.extend_from_slice(&Packet::Publish(retained).to_bytes(V311).expect("encode"));
    let mut c = broker.raw(V311).await;
    c.send_raw(&bytes).await;
    c.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x02]).await;
    assert_eq!(c.expect_closed().await, vec![]);

    watcher.expect_nothing(QUIET).await;
    assert_eq!(broker.handle.retained_count(), 0);
    assert_eq!(broker.handle.session_count(), 1);
    broker.stop().await;
}

/// MQTT 3.1.1 [MQTT-3.2.2-6]: when no CONNACK return code fits the refusal (a Will QoS above
/// the server's maximum has no MQTT 3.1.1 return code), the server closes the connection
/// without sending a CONNACK.
#[tokio::test]
async fn v311_refusal_without_a_return_code_closes_without_connack() {
    let mut config = Config::default();
    config.mqtt.max_qos = 1;
    let broker = TestBroker::start_with(config).await;
    let mut connect = Connect::new(V311, "wq2");
    let mut will = Will::new(name("wq/t"), "x");
    will.qos = QoS::ExactlyOnce;
    connect.will = Some(will);
    let mut c = broker.raw(V311).await;
    c.send(&Packet::Connect(Box::new(connect))).await;
    assert_eq!(c.expect_closed().await, vec![]);
    assert_eq!(broker.handle.session_count(), 0);
    broker.stop().await;
}

/// MQTT 5.0 [MQTT-3.1.2-28]: with Request Response Information 0 the CONNACK carries no
/// Response Information (Midge never sends it).
#[tokio::test]
async fn no_response_information_when_not_requested() {
    let broker = TestBroker::start().await;
    for requested in [false, true] {
        let (_c, ack) = connect_with(&broker, V5, &format!("rri-{requested}"), |c| {
            c.properties
                .push(Property::RequestResponseInformation(requested));
        })
        .await;
        assert_eq!(ack.properties.response_information(), None);
    }
    broker.stop().await;
}

/// After UNSUBSCRIBE the server completes the QoS 2 delivery it had started for the removed
/// subscription: the subscriber's PUBREC still gets PUBREL, and PUBCOMP ends it; nothing new
/// arrives. MQTT 5.0 [MQTT-3.10.4-3]; MQTT 3.1.1 [MQTT-3.10.4-3].
#[tokio::test]
async fn unsubscribe_completes_a_delivery_in_flight() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "uc-pub").await;
    for version in [V5, V311] {
        let mut c = broker.client(version, &format!("uc-{version}")).await;
        sub(&mut c, "uc/t", opts(QoS::ExactlyOnce)).await;
        send_publish(&mut publisher, publish("uc/t", QoS::ExactlyOnce, 1, "m")).await;
        let p = c.recv_publish().await;
        let id = p.packet_id.expect("QoS 2");
        let ack = unsubscribe(&mut c, 9, &["uc/t"]).await;
        if version.is_v5() {
            assert_eq!(ack.reason_codes, vec![ReasonCode::SUCCESS]);
        }
        c.send(&Packet::PubRec(PublishAck::new(id))).await;
        assert_eq!(c.recv().await, Packet::PubRel(PublishAck::new(id)));
        c.send(&Packet::PubComp(PublishAck::new(id))).await;
        send_publish(
            &mut publisher,
            publish("uc/t", QoS::ExactlyOnce, 2, "after"),
        )
        .await;
        c.expect_nothing(QUIET).await;
        assert_alive(&mut c).await;
    }
    broker.stop().await;
}

/// MQTT 5.0 [MQTT-4.4.0-2]: a PUBLISH answered with PUBACK or PUBREC 0x80 or above is
/// acknowledged: no PUBREL follows the failed PUBREC, and neither message is sent again when
/// the session resumes.
#[tokio::test]
async fn failed_acknowledgements_end_the_delivery() {
    let broker = TestBroker::start().await;
    let keep = || vec![Property::SessionExpiryInterval(60)];
    let mut c = v5_with(&broker, "fa", keep()).await;
    sub(&mut c, "fa/#", opts(QoS::ExactlyOnce)).await;
    let mut publisher = broker.client(V5, "fa-pub").await;
    send_publish(&mut publisher, publish("fa/1", QoS::AtLeastOnce, 1, "one")).await;
    send_publish(&mut publisher, publish("fa/2", QoS::ExactlyOnce, 2, "two")).await;
    for _ in 0..2 {
        let p = c.recv_publish().await;
        let id = p.packet_id.expect("QoS > 0");
        let refusal = PublishAck::with_reason(id, ReasonCode::UNSPECIFIED_ERROR);
        c.send(&match p.qos {
            QoS::AtLeastOnce => Packet::PubAck(refusal),
            _ => Packet::PubRec(refusal),
        })
        .await;
    }
    c.expect_nothing(QUIET).await;
    c.send(&Packet::Disconnect(Default::default())).await;
    assert_eq!(c.expect_closed().await, vec![]);
    let (mut c, connack) = connect_with(&broker, V5, "fa", |c| {
        c.clean_start = false;
        c.properties.push(Property::SessionExpiryInterval(60));
    })
    .await;
    assert!(connack.session_present);
    c.expect_nothing(QUIET).await;
    broker.stop().await;
}

/// MQTT 5.0 [MQTT-4.3.3-7]: once a QoS 2 PUBLISH has been sent, message expiry no longer
/// applies to it: after the interval has passed, the resumed session still gets it again
/// (DUP 1, same Packet Identifier) and the exchange completes.
#[tokio::test]
async fn expiry_is_not_applied_to_a_sent_qos2_publish() {
    let broker = TestBroker::start().await;
    let keep = || vec![Property::SessionExpiryInterval(60)];
    let mut c = v5_with(&broker, "ex2", keep()).await;
    sub(&mut c, "ex2/t", opts(QoS::ExactlyOnce)).await;
    let mut publisher = broker.client(V5, "ex2-pub").await;
    let mut p = publish("ex2/t", QoS::ExactlyOnce, 1, "short-lived");
    p.properties.push(Property::MessageExpiryInterval(1));
    send_publish(&mut publisher, p).await;
    let first = c.recv_publish().await;
    drop(c); // no PUBREC
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut c, connack) = connect_with(&broker, V5, "ex2", |c| {
        c.clean_start = false;
        c.properties.push(Property::SessionExpiryInterval(60));
    })
    .await;
    assert!(connack.session_present);
    let again = c.recv_publish().await;
    assert_eq!(
        (&again.payload[..], again.dup, again.packet_id),
        (&b"short-lived"[..], true, first.packet_id)
    );
    ack(&mut c, &again).await;
    c.expect_nothing(QUIET).await;
    broker.stop().await;
}

/// MQTT 5.0 [MQTT-4.3.3-13]: the server, as receiver, completes the QoS 2 exchange even when
/// the message has expired meanwhile: PUBREL after the interval still gets PUBCOMP Success.
#[tokio::test]
async fn qos2_exchange_completes_after_expiry() {
    let broker = TestBroker::start().await;
    let mut c = broker.client(V5, "ex13").await;
    let mut p = publish("ex13/t", QoS::ExactlyOnce, 3, "x");
    p.properties.push(Property::MessageExpiryInterval(1));
    c.send(&Packet::Publish(p)).await;
    assert!(matches!(c.recv().await, Packet::PubRec(a) if a.packet_id == pid(3)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.send(&Packet::PubRel(PublishAck::new(pid(3)))).await;
    assert_eq!(c.recv().await, Packet::PubComp(PublishAck::new(pid(3))));
    broker.stop().await;
}

/// The server's acknowledgements carry no Reason String or User Property, so none can take
/// them past the client's Maximum Packet Size, failure codes included. A client with Maximum
/// Packet Size 16 gets PUBACK 0x10, PUBREC 0x10, PUBREL 0x92, PUBCOMP 0x92, SUBACK 0x9E and
/// UNSUBACK 0x11, each without properties and within 16 bytes. MQTT 5.0 [MQTT-3.4.2-2],
/// [MQTT-3.4.2-3], [MQTT-3.5.2-2], [MQTT-3.5.2-3], [MQTT-3.6.2-2], [MQTT-3.6.2-3],
/// [MQTT-3.7.2-2], [MQTT-3.7.2-3], [MQTT-3.9.2-1], [MQTT-3.9.2-2], [MQTT-3.11.2-1],
/// [MQTT-3.11.2-2].
#[tokio::test]
async fn acknowledgements_fit_a_small_maximum_packet_size() {
    let mut config = Config::default();
    config.mqtt.shared_subscriptions = false;
    let broker = TestBroker::start_with(config).await;
    let mut c = v5_with(&broker, "small", vec![Property::MaximumPacketSize(16)]).await;
    let check = |packet: &Packet, what: &str| {
        let (properties, code): (&Properties, ReasonCode) = match packet {
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                (&a.properties, a.reason_code)
            }
            Packet::SubAck(a) => (&a.properties, a.reason_codes[0]),
            Packet::UnsubAck(a) => (&a.properties, a.reason_codes[0]),
            other => panic!("{what}: unexpected {other:?}"),
        };
        assert!(
            properties.is_empty(),
            "{what} ({code}) carries {properties:?}"
        );
        let size = packet.encoded_len(V5).expect("encodable");
        assert!(size <= 16, "{what}: {size} bytes");
    };
    c.send(&Packet::Publish(publish(
        "nobody/1",
        QoS::AtLeastOnce,
        1,
        "x",
    )))
    .await;
    let got = c.recv().await;
    assert!(
        matches!(&got, Packet::PubAck(a) if a.reason_code == ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
    check(&got, "PUBACK");
    c.send(&Packet::Publish(publish(
        "nobody/2",
        QoS::ExactlyOnce,
        2,
        "x",
    )))
    .await;
    let got = c.recv().await;
    assert!(
        matches!(&got, Packet::PubRec(a) if a.reason_code == ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
    check(&got, "PUBREC");
    c.send(&Packet::PubRel(PublishAck::new(pid(2)))).await;
    check(&c.recv().await, "PUBCOMP");
    c.send(&Packet::PubRec(PublishAck::new(pid(40)))).await;
    let got = c.recv().await;
    assert!(
        matches!(&got, Packet::PubRel(a) if a.reason_code == ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
    );
    check(&got, "PUBREL");
    c.send(&Packet::PubRel(PublishAck::new(pid(41)))).await;
    let got = c.recv().await;
    assert!(
        matches!(&got, Packet::PubComp(a) if a.reason_code == ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
    );
    check(&got, "PUBCOMP");
    let ack = subscribe_with(
        &mut c,
        3,
        &[("$share/g/x", opts(QoS::AtMostOnce))],
        Properties::new(),
    )
    .await;
    assert_eq!(
        ack.reason_codes,
        vec![ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED]
    );
    check(&Packet::SubAck(ack), "SUBACK");
    let ack = unsubscribe(&mut c, 4, &["never/subscribed"]).await;
    assert_eq!(ack.reason_codes, vec![ReasonCode::NO_SUBSCRIPTION_EXISTED]);
    check(&Packet::UnsubAck(ack), "UNSUBACK");
    assert_alive(&mut c).await;
    broker.stop().await;
}

/// [MQTT-3.14.2-3], [MQTT-3.1.2-24]: a server DISCONNECT never exceeds the client's Maximum
/// Packet Size; its Reason String is left out instead.
#[tokio::test]
async fn disconnect_reason_string_respects_maximum_packet_size() {
    use midge_proto::{Connect, Packet, Property, ProtocolVersion, ReasonCode};
    let broker = midge_testkit::TestBroker::start().await;
    let mut c = broker.raw(ProtocolVersion::V5).await;
    let mut connect = Connect::new(ProtocolVersion::V5, "small-max");
    connect.properties.push(Property::MaximumPacketSize(16));
    c.connect(connect.clone()).await;
    c.send(&Packet::Connect(Box::new(connect))).await;
    let got = c.expect_closed().await;
    let Some(Packet::Disconnect(d)) = got.first() else {
        panic!("expected DISCONNECT, got {got:?}");
    };
    assert_eq!(d.reason_code, ReasonCode::PROTOCOL_ERROR);
    assert!(d.properties.reason_string().is_none(), "{d:?}");
    let len = Packet::Disconnect(d.clone())
        .encoded_len(ProtocolVersion::V5)
        .unwrap();
    assert!(len <= 16, "DISCONNECT of {len} bytes");
}

/// [MQTT-3.2.2-19]: a refusing CONNACK leaves its Reason String out when it would exceed the
/// client's Maximum Packet Size.
#[tokio::test]
async fn connack_reason_string_respects_maximum_packet_size() {
    use midge_proto::{Connect, Packet, Property, ProtocolVersion, ReasonCode, TopicName, Will};
    let mut config = midge_broker::Config::default();
    config.retain.available = false;
    let broker = midge_testkit::TestBroker::start_with(config).await;
    let mut c = broker.raw(ProtocolVersion::V5).await;
    let mut connect = Connect::new(ProtocolVersion::V5, "small-max-connack");
    connect.properties.push(Property::MaximumPacketSize(8));
    let mut will = Will::new(TopicName::new("w").unwrap(), "x");
    will.retain = true;
    connect.will = Some(will);
    c.send(&Packet::Connect(Box::new(connect))).await;
    let got = c.expect_closed().await;
    let Some(Packet::ConnAck(ack)) = got.first() else {
        panic!("expected CONNACK, got {got:?}");
    };
    assert_eq!(ack.reason_code, ReasonCode::RETAIN_NOT_SUPPORTED);
    assert!(ack.properties.reason_string().is_none(), "{ack:?}");
    let len = Packet::ConnAck(ack.clone())
        .encoded_len(ProtocolVersion::V5)
        .unwrap();
    assert!(len <= 8, "CONNACK of {len} bytes");
}
