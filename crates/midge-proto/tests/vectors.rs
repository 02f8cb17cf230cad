//! Byte-exact vectors, written by hand from the OASIS MQTT 3.1, 3.1.1 and 5.0 specifications.
//!
//! Each canonical vector is checked in both directions: the bytes decode to the packet, and the
//! packet encodes to exactly the bytes (and `encoded_len` agrees). Decode-only vectors are
//! accepted non-canonical forms; encode-only vectors show what a version cannot carry being
//! mapped down or left out.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use bytes::{Bytes, BytesMut};
use common::{V3_1, V3_1_1, V5, filter, hex, name, pid, props, user};
use midge_proto::{
    Auth, ConnAck, Connect, Decoder, Disconnect, EncodeError, Packet, PacketType, Property,
    ProtocolVersion, Publish, PublishAck, QoS, ReasonCode, RetainHandling, SubAck, Subscribe,
    SubscribeFilter, SubscriptionOptions, TopicName, UnsubAck, Unsubscribe, Will,
};

fn check_decode(version: ProtocolVersion, wire: &[u8], expected: &Packet) {
    assert_eq!(
        Packet::decode(wire, version).as_ref(),
        Ok(expected),
        "decoding {} for {version}",
        hex(wire)
    );
    if let Packet::Connect(c) = expected {
        let mut decoder = Decoder::server(1 << 20);
        let mut buf = BytesMut::from(wire);
        assert_eq!(
            decoder.decode(&mut buf).as_ref(),
            Ok(&Some(expected.clone()))
        );
        assert_eq!(decoder.version(), Some(c.protocol_version));
    }
}

fn check_encode(version: ProtocolVersion, packet: &Packet, wire: &[u8]) {
    let encoded = packet.to_bytes(version).unwrap();
    assert_eq!(
        hex(&encoded),
        hex(wire),
        "encoding {packet:?} for {version}"
    );
    assert_eq!(packet.encoded_len(version), Ok(wire.len()));
}

/// Canonical vectors: `name(VERSION, packet) = [bytes];` checks both directions.
macro_rules! vectors {
    ($( $(#[$meta:meta])* $name:ident($version:expr, $packet:expr) = [$($piece:expr),* $(,)?]; )*) => {$(
        $(#[$meta])*
        #[test]
        fn $name() {
            let packet: Packet = $packet;
            let bytes = wire![$($piece),*];
            check_decode($version, &bytes, &packet);
            check_encode($version, &packet, &bytes);
        }
    )*};
}

/// Accepted but non-canonical forms: the bytes decode to the packet, which re-encodes to
/// `canonical`.
macro_rules! decode_only {
    ($( $(#[$meta:meta])* $name:ident($version:expr, $packet:expr) = [$($piece:expr),* $(,)?] => [$($canon:expr),* $(,)?]; )*) => {$(
        $(#[$meta])*
        #[test]
        fn $name() {
            let packet: Packet = $packet;
            check_decode($version, &wire![$($piece),*], &packet);
            check_encode($version, &packet, &wire![$($canon),*]);
        }
    )*};
}

/// Lossy encodings: what the version cannot carry is left out or mapped down; the bytes decode
/// to `decoded`.
macro_rules! encode_only {
    ($( $(#[$meta:meta])* $name:ident($version:expr, $packet:expr) = [$($piece:expr),* $(,)?] => $decoded:expr; )*) => {$(
        $(#[$meta])*
        #[test]
        fn $name() {
            let packet: Packet = $packet;
            let bytes = wire![$($piece),*];
            check_encode($version, &packet, &bytes);
            check_decode($version, &bytes, &$decoded);
        }
    )*};
}

fn connect(version: ProtocolVersion, client_id: &str, keep_alive: u16) -> Connect {
    Connect {
        keep_alive,
        ..Connect::new(version, client_id)
    }
}

fn publish(topic: TopicName, qos: QoS, id: Option<u16>, payload: &'static [u8]) -> Publish {
    Publish {
        qos,
        packet_id: id.map(pid),
        ..Publish::new(topic, Bytes::from_static(payload))
    }
}

fn ack(id: u16, code: u8, properties: Vec<Property>) -> PublishAck {
    PublishAck {
        packet_id: pid(id),
        reason_code: ReasonCode(code),
        properties: props(properties),
    }
}

fn sub(f: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter {
        filter: filter(f),
        options: SubscriptionOptions::qos(qos),
    }
}

fn codes(list: &[u8]) -> Vec<ReasonCode> {
    list.iter().copied().map(ReasonCode).collect()
}

// ---------------------------------------------------------------------------------------------
// CONNECT (MQTT 3.1 §3.1, MQTT 3.1.1 §3.1, MQTT 5.0 §3.1)
// ---------------------------------------------------------------------------------------------

vectors! {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3, Clean Session, Keep Alive 60.
    connect_v3_1(V3_1, connect(V3_1, "c1", 60).into()) = [
        0x10, 0x10,
        0x00, 0x06, "MQIsdp", 0x03,
        0x02,               // flags: Clean Session
        0x00, 0x3C,         // keep alive 60
        0x00, 0x02, "c1",
    ];

    /// MQTT 3.1 with user name and password (flags 0xC0 | Clean Session).
    connect_v3_1_credentials(V3_1, Connect {
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"secret")),
        ..connect(V3_1, "c1", 10)
    }.into()) = [
        0x10, 0x1E,
        0x00, 0x06, "MQIsdp", 0x03,
        0xC2,
        0x00, 0x0A,
        0x00, 0x02, "c1",
        0x00, 0x04, "user",
        0x00, 0x06, "secret",
    ];

    /// A Mosquitto bridge sets bit 7 of the protocol level (0x83).
    connect_v3_1_bridge(V3_1, Connect { bridge: true, clean_start: false, ..connect(V3_1, "b", 0) }.into()) = [
        0x10, 0x0F,
        0x00, 0x06, "MQIsdp", 0x83,
        0x00,
        0x00, 0x00,
        0x00, 0x01, "b",
    ];

    /// MQTT 3.1.1 with the smallest possible payload: an empty Client Identifier.
    connect_v3_1_1_minimal(V3_1_1, connect(V3_1_1, "", 0).into()) = [
        0x10, 0x0C,
        0x00, 0x04, "MQTT", 0x04,
        0x02,
        0x00, 0x00,
        0x00, 0x00,
    ];

    /// MQTT 3.1.1 with a retained QoS 1 will, user name and password, no Clean Session.
    connect_v3_1_1_will_and_credentials(V3_1_1, Connect {
        clean_start: false,
        will: Some(Will { qos: QoS::AtLeastOnce, retain: true, ..Will::new(name("w/t"), "bye") }),
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"pw")),
        ..connect(V3_1_1, "cid", 10)
    }.into()) = [
        0x10, 0x23,
        0x00, 0x04, "MQTT", 0x04,
        0xEC,               // user name, password, will retain, will QoS 1, will flag
        0x00, 0x0A,
        0x00, 0x03, "cid",
        0x00, 0x03, "w/t",
        0x00, 0x03, "bye",
        0x00, 0x04, "user",
        0x00, 0x02, "pw",
    ];

    /// MQTT 3.1.1, will at QoS 2 with an empty payload.
    connect_v3_1_1_will_qos2(V3_1_1, Connect {
        will: Some(Will { qos: QoS::ExactlyOnce, ..Will::new(name("t"), "") }),
        ..connect(V3_1_1, "c", 5)
    }.into()) = [
        0x10, 0x12,
        0x00, 0x04, "MQTT", 0x04,
        0x16,               // will QoS 2, will flag, clean session
        0x00, 0x05,
        0x00, 0x01, "c",
        0x00, 0x01, "t",
        0x00, 0x00,
    ];

    /// A Mosquitto bridge speaking MQTT 3.1.1 (protocol level 0x84).
    connect_v3_1_1_bridge(V3_1_1, Connect { bridge: true, ..connect(V3_1_1, "b", 1) }.into()) = [
        0x10, 0x0D, 0x00, 0x04, "MQTT", 0x84, 0x02, 0x00, 0x01, 0x00, 0x01, "b",
    ];

    /// MQTT 5 with every CONNECT property.
    connect_v5_properties(V5, Connect {
        properties: props([
            Property::SessionExpiryInterval(120),
            Property::ReceiveMaximum(20),
            Property::MaximumPacketSize(1024),
            Property::TopicAliasMaximum(10),
            Property::RequestResponseInformation(true),
            Property::RequestProblemInformation(false),
            user("k", "v"),
            Property::AuthenticationMethod("m".into()),
            Property::AuthenticationData(Bytes::from_static(&[1, 2])),
        ]),
        ..connect(V5, "c", 30)
    }.into()) = [
        0x10, 0x32,
        0x00, 0x04, "MQTT", 0x05,
        0x02,
        0x00, 0x1E,
        0x24,                                   // property length 36
        0x11, 0x00, 0x00, 0x00, 0x78,           // Session Expiry Interval 120
        0x21, 0x00, 0x14,                       // Receive Maximum 20
        0x27, 0x00, 0x00, 0x04, 0x00,           // Maximum Packet Size 1024
        0x22, 0x00, 0x0A,                       // Topic Alias Maximum 10
        0x19, 0x01,                             // Request Response Information
        0x17, 0x00,                             // Request Problem Information
        0x26, 0x00, 0x01, "k", 0x00, 0x01, "v", // User Property
        0x15, 0x00, 0x01, "m",                  // Authentication Method
        0x16, 0x00, 0x02, 0x01, 0x02,           // Authentication Data
        0x00, 0x01, "c",
    ];

    /// MQTT 5 with a will carrying every Will Property, user name and binary password.
    connect_v5_will_properties(V5, Connect {
        will: Some(Will {
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: props([
                Property::WillDelayInterval(5),
                Property::PayloadFormatIndicator(true),
                Property::MessageExpiryInterval(60),
                Property::ContentType("t".into()),
                Property::ResponseTopic(name("r")),
                Property::CorrelationData(Bytes::from_static(&[0xAB])),
                user("a", "b"),
            ]),
            topic: name("w"),
            payload: Bytes::from_static(b"x"),
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(&[0x00, 0xFF])),
        ..connect(V5, "c", 0)
    }.into()) = [
        0x10, 0x3B,
        0x00, 0x04, "MQTT", 0x05,
        0xD6,               // user name, password, will QoS 2, will flag, clean start
        0x00, 0x00,
        0x00,               // no CONNECT properties
        0x00, 0x01, "c",
        0x1F,                                   // will property length 31
        0x18, 0x00, 0x00, 0x00, 0x05,           // Will Delay Interval 5
        0x01, 0x01,                             // Payload Format Indicator: UTF-8
        0x02, 0x00, 0x00, 0x00, 0x3C,           // Message Expiry Interval 60
        0x03, 0x00, 0x01, "t",                  // Content Type
        0x08, 0x00, 0x01, "r",                  // Response Topic
        0x09, 0x00, 0x01, 0xAB,                 // Correlation Data
        0x26, 0x00, 0x01, "a", 0x00, 0x01, "b", // User Property
        0x00, 0x01, "w",
        0x00, 0x01, "x",
        0x00, 0x01, "u",
        0x00, 0x02, 0x00, 0xFF,
    ];

    /// MQTT 5 allows a password without a user name (§3.1.2.9).
    connect_v5_password_only(V5, Connect {
        password: Some(Bytes::from_static(b"p")),
        ..connect(V5, "c", 60)
    }.into()) = [
        0x10, 0x11,
        0x00, 0x04, "MQTT", 0x05,
        0x42,
        0x00, 0x3C,
        0x00,
        0x00, 0x01, "c",
        0x00, 0x01, "p",
    ];
}

// ---------------------------------------------------------------------------------------------
// CONNACK
// ---------------------------------------------------------------------------------------------

vectors! {
    connack_v3_1_accepted(V3_1, ConnAck::new(ReasonCode::SUCCESS, false).into()) = [0x20, 0x02, 0x00, 0x00];
    connack_v3_1_1_session_present(V3_1_1, ConnAck::new(ReasonCode::SUCCESS, true).into()) = [0x20, 0x02, 0x01, 0x00];
    /// Return code 1: unacceptable protocol version.
    connack_v3_1_1_code_1(V3_1_1, ConnAck::new(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION, false).into()) = [0x20, 0x02, 0x00, 0x01];
    /// Return code 2: identifier rejected.
    connack_v3_1_1_code_2(V3_1_1, ConnAck::new(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID, false).into()) = [0x20, 0x02, 0x00, 0x02];
    /// Return code 3: server unavailable.
    connack_v3_1_1_code_3(V3_1_1, ConnAck::new(ReasonCode::SERVER_UNAVAILABLE, false).into()) = [0x20, 0x02, 0x00, 0x03];
    /// Return code 4: bad user name or password.
    connack_v3_1_1_code_4(V3_1_1, ConnAck::new(ReasonCode::BAD_USER_NAME_OR_PASSWORD, false).into()) = [0x20, 0x02, 0x00, 0x04];
    /// Return code 5: not authorized.
    connack_v3_1_1_code_5(V3_1_1, ConnAck::new(ReasonCode::NOT_AUTHORIZED, false).into()) = [0x20, 0x02, 0x00, 0x05];
    connack_v3_1_code_5(V3_1, ConnAck::new(ReasonCode::NOT_AUTHORIZED, false).into()) = [0x20, 0x02, 0x00, 0x05];

    connack_v5_success(V5, ConnAck::new(ReasonCode::SUCCESS, false).into()) = [0x20, 0x03, 0x00, 0x00, 0x00];
    connack_v5_not_authorized(V5, ConnAck::new(ReasonCode::NOT_AUTHORIZED, false).into()) = [0x20, 0x03, 0x00, 0x87, 0x00];
    connack_v5_packet_too_large(V5, ConnAck {
        properties: props([Property::ReasonString("big".into())]),
        ..ConnAck::new(ReasonCode::PACKET_TOO_LARGE, false)
    }.into()) = [0x20, 0x09, 0x00, 0x95, 0x06, 0x1F, 0x00, 0x03, "big"];

    /// MQTT 5 CONNACK with every server property.
    connack_v5_properties(V5, ConnAck {
        properties: props([
            Property::AssignedClientIdentifier("id".into()),
            Property::ServerKeepAlive(30),
            Property::MaximumQoS(QoS::AtLeastOnce),
            Property::RetainAvailable(false),
            Property::WildcardSubscriptionAvailable(true),
            Property::SubscriptionIdentifierAvailable(false),
            Property::SharedSubscriptionAvailable(true),
            Property::TopicAliasMaximum(5),
            Property::ReceiveMaximum(100),
            Property::ResponseInformation("ri".into()),
            Property::ServerReference("s".into()),
            Property::ReasonString("ok".into()),
            Property::SessionExpiryInterval(0),
            Property::MaximumPacketSize(256),
        ]),
        ..ConnAck::new(ReasonCode::SUCCESS, true)
    }.into()) = [
        0x20, 0x33,
        0x01, 0x00,
        0x30,                           // property length 48
        0x12, 0x00, 0x02, "id",         // Assigned Client Identifier
        0x13, 0x00, 0x1E,               // Server Keep Alive 30
        0x24, 0x01,                     // Maximum QoS 1
        0x25, 0x00,                     // Retain Available: no
        0x28, 0x01,                     // Wildcard Subscription Available
        0x29, 0x00,                     // Subscription Identifier Available: no
        0x2A, 0x01,                     // Shared Subscription Available
        0x22, 0x00, 0x05,               // Topic Alias Maximum 5
        0x21, 0x00, 0x64,               // Receive Maximum 100
        0x1A, 0x00, 0x02, "ri",         // Response Information
        0x1C, 0x00, 0x01, "s",          // Server Reference
        0x1F, 0x00, 0x02, "ok",         // Reason String
        0x11, 0x00, 0x00, 0x00, 0x00,   // Session Expiry Interval 0
        0x27, 0x00, 0x00, 0x01, 0x00,   // Maximum Packet Size 256
    ];
}

#[test]
fn v3_connack_return_codes_map_to_reason_codes() {
    let expected = [
        ReasonCode::SUCCESS,
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
        ReasonCode::SERVER_UNAVAILABLE,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        ReasonCode::NOT_AUTHORIZED,
    ];
    for version in [V3_1, V3_1_1] {
        for (byte, reason) in (0u8..).zip(expected) {
            let bytes = [0x20, 0x02, 0x00, byte];
            let packet = Packet::ConnAck(ConnAck::new(reason, false));
            check_decode(version, &bytes, &packet);
            check_encode(version, &packet, &bytes);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PUBLISH
// ---------------------------------------------------------------------------------------------

vectors! {
    publish_v3_1_1_qos0(V3_1_1, publish(name("a/b"), QoS::AtMostOnce, None, b"hi").into()) = [
        0x30, 0x07, 0x00, 0x03, "a/b", "hi",
    ];
    publish_v3_1_qos0(V3_1, publish(name("a/b"), QoS::AtMostOnce, None, b"hi").into()) = [
        0x30, 0x07, 0x00, 0x03, "a/b", "hi",
    ];
    publish_v3_1_1_qos1_retain(V3_1_1, Publish {
        retain: true,
        ..publish(name("a/b"), QoS::AtLeastOnce, Some(10), b"x")
    }.into()) = [
        0x33, 0x08, 0x00, 0x03, "a/b", 0x00, 0x0A, "x",
    ];
    publish_v3_1_qos1(V3_1, publish(name("a"), QoS::AtLeastOnce, Some(0x0102), b"").into()) = [
        0x32, 0x05, 0x00, 0x01, "a", 0x01, 0x02,
    ];
    /// QoS 2 with DUP, packet identifier 65535 and an empty payload.
    publish_v3_1_1_qos2_dup(V3_1_1, Publish {
        dup: true,
        ..publish(name("t"), QoS::ExactlyOnce, Some(0xFFFF), b"")
    }.into()) = [
        0x3C, 0x05, 0x00, 0x01, "t", 0xFF, 0xFF,
    ];
    publish_v3_1_1_qos1_dup_retain(V3_1_1, Publish {
        dup: true,
        retain: true,
        ..publish(name("t"), QoS::AtLeastOnce, Some(1), b"p")
    }.into()) = [
        0x3B, 0x06, 0x00, 0x01, "t", 0x00, 0x01, "p",
    ];
    /// A multi-byte topic, and a 200-byte payload whose Remaining Length takes two bytes.
    publish_v3_1_1_two_byte_length(V3_1_1, Publish::new(name("é/€"), Bytes::from(vec![0x55; 200])).into()) = [
        0x30, 0xD0, 0x01,                   // remaining length 208 = 0x50 + 1 * 128
        0x00, 0x06, 0xC3, 0xA9, "/", 0xE2, 0x82, 0xAC,
        vec![0x55; 200],
    ];

    publish_v5_qos0(V5, publish(name("a/b"), QoS::AtMostOnce, None, b"").into()) = [
        0x30, 0x06, 0x00, 0x03, "a/b", 0x00,
    ];
    publish_v5_qos2_retain(V5, Publish {
        retain: true,
        ..publish(name("a"), QoS::ExactlyOnce, Some(2), b"z")
    }.into()) = [
        0x35, 0x07, 0x00, 0x01, "a", 0x00, 0x02, 0x00, "z",
    ];
    /// Every PUBLISH property; User Property and Subscription Identifier repeat.
    publish_v5_properties(V5, Publish {
        properties: props([
            Property::PayloadFormatIndicator(true),
            Property::MessageExpiryInterval(3600),
            Property::ContentType("json".into()),
            Property::ResponseTopic(name("r/1")),
            Property::CorrelationData(Bytes::from_static(&[1, 2, 3])),
            Property::SubscriptionIdentifier(1),
            Property::SubscriptionIdentifier(268_435_455),
            user("k", "v"),
            user("k", "w"),
        ]),
        ..publish(name("a"), QoS::AtLeastOnce, Some(1), b"{}")
    }.into()) = [
        0x32, 0x37,
        0x00, 0x01, "a",
        0x00, 0x01,
        0x2F,                                   // property length 47
        0x01, 0x01,                             // Payload Format Indicator
        0x02, 0x00, 0x00, 0x0E, 0x10,           // Message Expiry Interval 3600
        0x03, 0x00, 0x04, "json",               // Content Type
        0x08, 0x00, 0x03, "r/1",                // Response Topic
        0x09, 0x00, 0x03, 0x01, 0x02, 0x03,     // Correlation Data
        0x0B, 0x01,                             // Subscription Identifier 1
        0x0B, 0xFF, 0xFF, 0xFF, 0x7F,           // Subscription Identifier 268435455
        0x26, 0x00, 0x01, "k", 0x00, 0x01, "v",
        0x26, 0x00, 0x01, "k", 0x00, 0x01, "w",
        "{}",
    ];
    /// A Topic Alias standing for the topic: the Topic Name is empty (§3.3.2.3.4).
    publish_v5_topic_alias_empty_topic(V5, Publish {
        properties: props([Property::TopicAlias(7)]),
        ..Publish::new(TopicName::empty_for_alias(), "p")
    }.into()) = [
        0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x07, "p",
    ];
    /// A Topic Alias being set up: topic and alias together.
    publish_v5_topic_alias_with_topic(V5, Publish {
        properties: props([Property::TopicAlias(1)]),
        ..publish(name("t/x"), QoS::AtLeastOnce, Some(9), b"")
    }.into()) = [
        0x32, 0x0B, 0x00, 0x03, "t/x", 0x00, 0x09, 0x03, 0x23, 0x00, 0x01,
    ];
}

// ---------------------------------------------------------------------------------------------
// PUBACK, PUBREC, PUBREL, PUBCOMP
// ---------------------------------------------------------------------------------------------

vectors! {
    puback_v3_1_1(V3_1_1, Packet::PubAck(PublishAck::new(pid(1)))) = [0x40, 0x02, 0x00, 0x01];
    pubrec_v3_1_1(V3_1_1, Packet::PubRec(PublishAck::new(pid(2)))) = [0x50, 0x02, 0x00, 0x02];
    /// PUBREL has the fixed-header flags 0b0010.
    pubrel_v3_1_1(V3_1_1, Packet::PubRel(PublishAck::new(pid(3)))) = [0x62, 0x02, 0x00, 0x03];
    pubcomp_v3_1_1(V3_1_1, Packet::PubComp(PublishAck::new(pid(0x1234)))) = [0x70, 0x02, 0x12, 0x34];
    puback_v3_1(V3_1, Packet::PubAck(PublishAck::new(pid(1)))) = [0x40, 0x02, 0x00, 0x01];
    pubrec_v3_1(V3_1, Packet::PubRec(PublishAck::new(pid(2)))) = [0x50, 0x02, 0x00, 0x02];
    pubrel_v3_1(V3_1, Packet::PubRel(PublishAck::new(pid(3)))) = [0x62, 0x02, 0x00, 0x03];
    pubcomp_v3_1(V3_1, Packet::PubComp(PublishAck::new(pid(4)))) = [0x70, 0x02, 0x00, 0x04];

    /// MQTT 5 short form: Success without properties has Remaining Length 2.
    puback_v5_short(V5, Packet::PubAck(PublishAck::new(pid(1)))) = [0x40, 0x02, 0x00, 0x01];
    pubrec_v5_short(V5, Packet::PubRec(PublishAck::new(pid(2)))) = [0x50, 0x02, 0x00, 0x02];
    pubrel_v5_short(V5, Packet::PubRel(PublishAck::new(pid(3)))) = [0x62, 0x02, 0x00, 0x03];
    pubcomp_v5_short(V5, Packet::PubComp(PublishAck::new(pid(4)))) = [0x70, 0x02, 0x00, 0x04];

    /// Reason code only: Remaining Length 3, no Property Length.
    puback_v5_reason_only(V5, Packet::PubAck(ack(1, 0x10, vec![]))) = [0x40, 0x03, 0x00, 0x01, 0x10];
    pubrec_v5_reason_only(V5, Packet::PubRec(ack(2, 0x80, vec![]))) = [0x50, 0x03, 0x00, 0x02, 0x80];
    pubrel_v5_reason_only(V5, Packet::PubRel(ack(3, 0x92, vec![]))) = [0x62, 0x03, 0x00, 0x03, 0x92];
    pubcomp_v5_reason_only(V5, Packet::PubComp(ack(4, 0x92, vec![]))) = [0x70, 0x03, 0x00, 0x04, 0x92];

    puback_v5_properties(V5, Packet::PubAck(ack(5, 0x87, vec![Property::ReasonString("no".into())]))) = [
        0x40, 0x09, 0x00, 0x05, 0x87, 0x05, 0x1F, 0x00, 0x02, "no",
    ];
    pubrec_v5_properties(V5, Packet::PubRec(ack(6, 0x99, vec![user("a", "b"), Property::ReasonString("r".into())]))) = [
        0x50, 0x0F, 0x00, 0x06, 0x99, 0x0B,
        0x26, 0x00, 0x01, "a", 0x00, 0x01, "b",
        0x1F, 0x00, 0x01, "r",
    ];
    /// Success with properties: the reason code must be present.
    pubrel_v5_properties(V5, Packet::PubRel(ack(7, 0x00, vec![user("a", "b")]))) = [
        0x62, 0x0B, 0x00, 0x07, 0x00, 0x07, 0x26, 0x00, 0x01, "a", 0x00, 0x01, "b",
    ];
    pubcomp_v5_properties(V5, Packet::PubComp(ack(8, 0x92, vec![Property::ReasonString("gone".into())]))) = [
        0x70, 0x0B, 0x00, 0x08, 0x92, 0x07, 0x1F, 0x00, 0x04, "gone",
    ];
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK
// ---------------------------------------------------------------------------------------------

vectors! {
    subscribe_v3_1_1(V3_1_1, Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: props([]),
        filters: vec![sub("a/+", QoS::AtLeastOnce), sub("#", QoS::AtMostOnce), sub("$share/g/x", QoS::ExactlyOnce)],
    })) = [
        0x82, 0x19,
        0x00, 0x01,
        0x00, 0x03, "a/+", 0x01,
        0x00, 0x01, "#", 0x00,
        0x00, 0x0A, "$share/g/x", 0x02,
    ];
    subscribe_v3_1(V3_1, Packet::Subscribe(Subscribe {
        packet_id: pid(0x0A0B),
        properties: props([]),
        filters: vec![sub("x/y", QoS::ExactlyOnce)],
    })) = [
        0x82, 0x08, 0x0A, 0x0B, 0x00, 0x03, "x/y", 0x02,
    ];
    /// MQTT 5 subscription options: No Local (bit 2), Retain As Published (bit 3), Retain
    /// Handling (bits 4–5).
    subscribe_v5_options(V5, Packet::Subscribe(Subscribe {
        packet_id: pid(2),
        properties: props([Property::SubscriptionIdentifier(300), user("k", "v")]),
        filters: vec![
            SubscribeFilter {
                filter: filter("a/#"),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            },
            SubscribeFilter {
                filter: filter("$share/g/t"),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendAtSubscribeIfNew,
                },
            },
            sub("b", QoS::AtMostOnce),
        ],
    })) = [
        0x82, 0x24,
        0x00, 0x02,
        0x0A,                                   // property length 10
        0x0B, 0xAC, 0x02,                       // Subscription Identifier 300
        0x26, 0x00, 0x01, "k", 0x00, 0x01, "v",
        0x00, 0x03, "a/#", 0x2E,                // RH 2, RAP, NL, QoS 2
        0x00, 0x0A, "$share/g/t", 0x11,         // RH 1, QoS 1
        0x00, 0x01, "b", 0x00,
    ];

    /// MQTT 3.1.1 SUBACK: granted QoS 0, 1, 2 and the failure code 0x80.
    suback_v3_1_1(V3_1_1, Packet::SubAck(SubAck {
        packet_id: pid(1),
        properties: props([]),
        reason_codes: codes(&[0x00, 0x01, 0x02, 0x80]),
    })) = [0x90, 0x06, 0x00, 0x01, 0x00, 0x01, 0x02, 0x80];
    suback_v3_1(V3_1, Packet::SubAck(SubAck {
        packet_id: pid(7),
        properties: props([]),
        reason_codes: codes(&[0x01]),
    })) = [0x90, 0x03, 0x00, 0x07, 0x01];
    /// Every MQTT 5 SUBACK reason code.
    suback_v5_all_codes(V5, Packet::SubAck(SubAck {
        packet_id: pid(1),
        properties: props([]),
        reason_codes: codes(&[0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2]),
    })) = [
        0x90, 0x0F, 0x00, 0x01, 0x00,
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ];
    suback_v5_properties(V5, Packet::SubAck(SubAck {
        packet_id: pid(3),
        properties: props([Property::ReasonString("q".into()), user("x", "")]),
        reason_codes: codes(&[0x97]),
    })) = [
        0x90, 0x0E, 0x00, 0x03,
        0x0A, 0x1F, 0x00, 0x01, "q", 0x26, 0x00, 0x01, "x", 0x00, 0x00,
        0x97,
    ];

    unsubscribe_v3_1_1(V3_1_1, Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(3),
        properties: props([]),
        filters: vec![filter("a/b"), filter("c/#")],
    })) = [
        0xA2, 0x0C, 0x00, 0x03, 0x00, 0x03, "a/b", 0x00, 0x03, "c/#",
    ];
    unsubscribe_v3_1(V3_1, Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(4),
        properties: props([]),
        filters: vec![filter("+")],
    })) = [0xA2, 0x05, 0x00, 0x04, 0x00, 0x01, "+"];
    unsubscribe_v5(V5, Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(3),
        properties: props([]),
        filters: vec![filter("a"), filter("$share/g/+")],
    })) = [
        0xA2, 0x12, 0x00, 0x03, 0x00, 0x00, 0x01, "a", 0x00, 0x0A, "$share/g/+",
    ];
    unsubscribe_v5_properties(V5, Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(3),
        properties: props([user("k", "v")]),
        filters: vec![filter("a")],
    })) = [
        0xA2, 0x0D, 0x00, 0x03, 0x07, 0x26, 0x00, 0x01, "k", 0x00, 0x01, "v", 0x00, 0x01, "a",
    ];

    /// MQTT 3.x UNSUBACK carries only the packet identifier.
    unsuback_v3_1_1(V3_1_1, Packet::UnsubAck(UnsubAck {
        packet_id: pid(3),
        properties: props([]),
        reason_codes: vec![],
    })) = [0xB0, 0x02, 0x00, 0x03];
    unsuback_v3_1(V3_1, Packet::UnsubAck(UnsubAck {
        packet_id: pid(0x0100),
        properties: props([]),
        reason_codes: vec![],
    })) = [0xB0, 0x02, 0x01, 0x00];
    unsuback_v5(V5, Packet::UnsubAck(UnsubAck {
        packet_id: pid(3),
        properties: props([]),
        reason_codes: codes(&[0x00, 0x11]),
    })) = [0xB0, 0x05, 0x00, 0x03, 0x00, 0x00, 0x11];
    unsuback_v5_properties(V5, Packet::UnsubAck(UnsubAck {
        packet_id: pid(9),
        properties: props([Property::ReasonString("no".into())]),
        reason_codes: codes(&[0x80, 0x83, 0x87, 0x8F, 0x91]),
    })) = [
        0xB0, 0x0D, 0x00, 0x09, 0x05, 0x1F, 0x00, 0x02, "no", 0x80, 0x83, 0x87, 0x8F, 0x91,
    ];
}

// ---------------------------------------------------------------------------------------------
// PINGREQ, PINGRESP, DISCONNECT, AUTH
// ---------------------------------------------------------------------------------------------

vectors! {
    pingreq_v3_1(V3_1, Packet::PingReq) = [0xC0, 0x00];
    pingreq_v3_1_1(V3_1_1, Packet::PingReq) = [0xC0, 0x00];
    pingreq_v5(V5, Packet::PingReq) = [0xC0, 0x00];
    pingresp_v3_1(V3_1, Packet::PingResp) = [0xD0, 0x00];
    pingresp_v3_1_1(V3_1_1, Packet::PingResp) = [0xD0, 0x00];
    pingresp_v5(V5, Packet::PingResp) = [0xD0, 0x00];

    disconnect_v3_1(V3_1, Disconnect::default().into()) = [0xE0, 0x00];
    disconnect_v3_1_1(V3_1_1, Disconnect::default().into()) = [0xE0, 0x00];
    /// MQTT 5: Remaining Length 0 means Normal disconnection without properties.
    disconnect_v5_empty(V5, Disconnect::default().into()) = [0xE0, 0x00];
    // DISCONNECT and AUTH with a reason code carry a zero Property Length (Mosquitto's form;
    // rumqttc 0.25 cannot read the reason-code-only form).
    disconnect_v5_reason_only(V5, Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE).into()) = [0xE0, 0x02, 0x04, 0x00];
    disconnect_v5_session_expiry(V5, Disconnect {
        properties: props([Property::SessionExpiryInterval(30)]),
        ..Disconnect::default()
    }.into()) = [0xE0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x1E];
    disconnect_v5_server_moved(V5, Disconnect {
        properties: props([
            Property::ServerReference("srv".into()),
            Property::ReasonString("bye".into()),
            user("a", "b"),
        ]),
        ..Disconnect::new(ReasonCode::USE_ANOTHER_SERVER)
    }.into()) = [
        0xE0, 0x15, 0x9C, 0x13,
        0x1C, 0x00, 0x03, "srv",
        0x1F, 0x00, 0x03, "bye",
        0x26, 0x00, 0x01, "a", 0x00, 0x01, "b",
    ];

    /// AUTH: Remaining Length 0 means Success without properties (§3.15.2.1).
    auth_v5_success(V5, Auth::new(ReasonCode::SUCCESS).into()) = [0xF0, 0x00];
    auth_v5_continue_reason_only(V5, Auth::new(ReasonCode::CONTINUE_AUTHENTICATION).into()) = [0xF0, 0x02, 0x18, 0x00];
    auth_v5_continue(V5, Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: props([
            Property::AuthenticationMethod("SCRAM".into()),
            Property::AuthenticationData(Bytes::from_static(b"abc")),
        ]),
    }.into()) = [
        0xF0, 0x10, 0x18, 0x0E,
        0x15, 0x00, 0x05, "SCRAM",
        0x16, 0x00, 0x03, "abc",
    ];
    auth_v5_reauthenticate(V5, Auth {
        reason_code: ReasonCode::RE_AUTHENTICATE,
        properties: props([
            Property::AuthenticationMethod("K".into()),
            Property::ReasonString("again".into()),
            user("u", "1"),
        ]),
    }.into()) = [
        0xF0, 0x15, 0x19, 0x13,
        0x15, 0x00, 0x01, "K",
        0x1F, 0x00, 0x05, "again",
        0x26, 0x00, 0x01, "u", 0x00, 0x01, "1",
    ];
}

#[test]
fn auth_does_not_exist_before_mqtt_5() {
    for version in [V3_1, V3_1_1] {
        let packet = Packet::Auth(Auth::new(ReasonCode::SUCCESS));
        assert_eq!(
            packet.to_bytes(version),
            Err(EncodeError::NotInVersion(PacketType::Auth, version))
        );
        assert_eq!(
            packet.encoded_len(version),
            Err(EncodeError::NotInVersion(PacketType::Auth, version))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Accepted non-canonical forms.
// ---------------------------------------------------------------------------------------------

decode_only! {
    /// Success with a zero Property Length (Remaining Length 4) is the same as the short form.
    puback_v5_success_with_empty_properties(V5, Packet::PubAck(PublishAck::new(pid(1))))
        = [0x40, 0x04, 0x00, 0x01, 0x00, 0x00] => [0x40, 0x02, 0x00, 0x01];
    /// Success written out without properties (Remaining Length 3).
    pubrel_v5_explicit_success(V5, Packet::PubRel(PublishAck::new(pid(1))))
        = [0x62, 0x03, 0x00, 0x01, 0x00] => [0x62, 0x02, 0x00, 0x01];
    pubcomp_v5_reason_with_empty_properties(V5, Packet::PubComp(ack(1, 0x92, vec![])))
        = [0x70, 0x04, 0x00, 0x01, 0x92, 0x00] => [0x70, 0x03, 0x00, 0x01, 0x92];
    disconnect_v5_explicit_normal(V5, Disconnect::default().into())
        = [0xE0, 0x02, 0x00, 0x00] => [0xE0, 0x00];
    /// The reason-code-only form (Remaining Length 1) is read; we write the Property Length.
    disconnect_v5_reason_without_property_length(V5, Disconnect::new(ReasonCode::SERVER_SHUTTING_DOWN).into())
        = [0xE0, 0x01, 0x8B] => [0xE0, 0x02, 0x8B, 0x00];
    auth_v5_reason_without_property_length(V5, Auth::new(ReasonCode::CONTINUE_AUTHENTICATION).into())
        = [0xF0, 0x01, 0x18] => [0xF0, 0x02, 0x18, 0x00];
    auth_v5_explicit_success(V5, Auth::new(ReasonCode::SUCCESS).into())
        = [0xF0, 0x02, 0x00, 0x00] => [0xF0, 0x00];
}

// ---------------------------------------------------------------------------------------------
// Lossy encodings: what a version cannot carry.
// ---------------------------------------------------------------------------------------------

encode_only! {
    /// Banned has no MQTT 3 return code of its own: it becomes 5, not authorized.
    connack_v3_1_1_banned(V3_1_1, ConnAck::new(ReasonCode::BANNED, false).into())
        = [0x20, 0x02, 0x00, 0x05] => ConnAck::new(ReasonCode::NOT_AUTHORIZED, false).into();
    /// Server busy becomes 3, server unavailable.
    connack_v3_1_1_server_busy(V3_1_1, ConnAck::new(ReasonCode::SERVER_BUSY, false).into())
        = [0x20, 0x02, 0x00, 0x03] => ConnAck::new(ReasonCode::SERVER_UNAVAILABLE, false).into();
    /// MQTT 3.1 has no Session Present flag.
    connack_v3_1_session_present(V3_1, ConnAck::new(ReasonCode::SUCCESS, true).into())
        = [0x20, 0x02, 0x00, 0x00] => ConnAck::new(ReasonCode::SUCCESS, false).into();
    /// Session Present is cleared with a failure ([MQTT-3.2.2-6]).
    connack_v5_session_present_with_failure(V5, ConnAck::new(ReasonCode::NOT_AUTHORIZED, true).into())
        = [0x20, 0x03, 0x00, 0x87, 0x00] => ConnAck::new(ReasonCode::NOT_AUTHORIZED, false).into();
    connack_v3_1_1_properties_dropped(V3_1_1, ConnAck {
        properties: props([Property::ReceiveMaximum(5)]),
        ..ConnAck::new(ReasonCode::SUCCESS, true)
    }.into()) = [0x20, 0x02, 0x01, 0x00] => ConnAck::new(ReasonCode::SUCCESS, true).into();
    /// MQTT 3 PUBACK has no reason code.
    puback_v3_1_1_reason_dropped(V3_1_1, Packet::PubAck(ack(1, 0x10, vec![user("a", "b")])))
        = [0x40, 0x02, 0x00, 0x01] => Packet::PubAck(PublishAck::new(pid(1)));
    /// Every SUBACK failure is 0x80 in MQTT 3.
    suback_v3_1_1_failures(V3_1_1, Packet::SubAck(SubAck {
        packet_id: pid(1),
        properties: props([]),
        reason_codes: codes(&[0x97, 0x02, 0x8F]),
    })) = [0x90, 0x05, 0x00, 0x01, 0x80, 0x02, 0x80] => Packet::SubAck(SubAck {
        packet_id: pid(1),
        properties: props([]),
        reason_codes: codes(&[0x80, 0x02, 0x80]),
    });
    unsuback_v3_1_1_codes_dropped(V3_1_1, Packet::UnsubAck(UnsubAck {
        packet_id: pid(2),
        properties: props([Property::ReasonString("x".into())]),
        reason_codes: codes(&[0x11]),
    })) = [0xB0, 0x02, 0x00, 0x02] => Packet::UnsubAck(UnsubAck {
        packet_id: pid(2),
        properties: props([]),
        reason_codes: vec![],
    });
    /// MQTT 3 subscription options carry only the QoS.
    subscribe_v3_1_1_options_dropped(V3_1_1, Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: props([Property::SubscriptionIdentifier(1)]),
        filters: vec![SubscribeFilter {
            filter: filter("a"),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        }],
    })) = [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, "a", 0x01] => Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: props([]),
        filters: vec![sub("a", QoS::AtLeastOnce)],
    });
    publish_v3_1_1_properties_dropped(V3_1_1, Publish {
        properties: props([Property::MessageExpiryInterval(1)]),
        ..publish(name("t"), QoS::AtMostOnce, None, b"")
    }.into()) = [0x30, 0x03, 0x00, 0x01, "t"] => publish(name("t"), QoS::AtMostOnce, None, b"").into();
    /// DUP is never sent at QoS 0 ([MQTT-3.3.1-2]).
    publish_v5_qos0_dup_dropped(V5, Publish { dup: true, ..publish(name("t"), QoS::AtMostOnce, None, b"") }.into())
        = [0x30, 0x04, 0x00, 0x01, "t", 0x00] => publish(name("t"), QoS::AtMostOnce, None, b"").into();
    disconnect_v3_1_1_reason_dropped(V3_1_1, Disconnect::new(ReasonCode::SERVER_SHUTTING_DOWN).into())
        = [0xE0, 0x00] => Disconnect::default().into();
    /// CONNECT carries its own version: an MQTT 5 CONNECT encodes as MQTT 5 whatever the
    /// connection version says.
    connect_v5_encoded_for_v3(V3_1_1, connect(V5, "c", 1).into())
        = [0x10, 0x0E, 0x00, 0x04, "MQTT", 0x05, 0x02, 0x00, 0x01, 0x00, 0x00, 0x01, "c"]
        => connect(V5, "c", 1).into();
}

// ---------------------------------------------------------------------------------------------
// Packets that cannot be encoded.
// ---------------------------------------------------------------------------------------------

/// The encoder refuses what a conforming receiver would reject.
#[test]
fn encoding_refuses_invalid_packets() {
    let with_props = |list: Vec<Property>| -> Packet {
        Publish {
            properties: props(list),
            ..publish(name("t"), QoS::AtMostOnce, None, b"")
        }
        .into()
    };
    let connack_with = |p: Property| -> Packet {
        ConnAck {
            properties: props([p]),
            ..ConnAck::new(ReasonCode::SUCCESS, false)
        }
        .into()
    };
    let invalid =
        |property: &'static str, value: u32| EncodeError::InvalidPropertyValue { property, value };
    let cases: Vec<(&str, ProtocolVersion, Packet, EncodeError)> = vec![
        (
            "Maximum QoS 2",
            V5,
            connack_with(Property::MaximumQoS(QoS::ExactlyOnce)),
            invalid("Maximum QoS", 2),
        ),
        (
            "Receive Maximum 0",
            V5,
            connack_with(Property::ReceiveMaximum(0)),
            invalid("Receive Maximum", 0),
        ),
        (
            "Maximum Packet Size 0",
            V5,
            connack_with(Property::MaximumPacketSize(0)),
            invalid("Maximum Packet Size", 0),
        ),
        (
            "Topic Alias 0",
            V5,
            with_props(vec![Property::TopicAlias(0)]),
            invalid("Topic Alias", 0),
        ),
        (
            "Subscription Identifier 0",
            V5,
            with_props(vec![Property::SubscriptionIdentifier(0)]),
            invalid("Subscription Identifier", 0),
        ),
        (
            "Subscription Identifier above 268435455",
            V5,
            with_props(vec![Property::SubscriptionIdentifier(268_435_456)]),
            invalid("Subscription Identifier", 268_435_456),
        ),
        (
            "Session Expiry Interval in PUBLISH",
            V5,
            with_props(vec![Property::SessionExpiryInterval(1)]),
            EncodeError::PropertyNotAllowed {
                property: "Session Expiry Interval",
                context: "PUBLISH",
            },
        ),
        (
            "two Content Types",
            V5,
            with_props(vec![
                Property::ContentType("a".into()),
                Property::ContentType("b".into()),
            ]),
            EncodeError::DuplicateProperty("Content Type"),
        ),
        (
            "QoS 1 without packet identifier",
            V3_1_1,
            Publish {
                qos: QoS::AtLeastOnce,
                ..Publish::new(name("t"), "")
            }
            .into(),
            EncodeError::MissingPacketId(QoS::AtLeastOnce),
        ),
        (
            "SUBSCRIBE without filters",
            V3_1_1,
            Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                properties: props([]),
                filters: vec![],
            }),
            EncodeError::EmptyList(PacketType::Subscribe),
        ),
        (
            "UNSUBSCRIBE without filters",
            V5,
            Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(1),
                properties: props([]),
                filters: vec![],
            }),
            EncodeError::EmptyList(PacketType::Unsubscribe),
        ),
        (
            "MQTT 5 SUBACK without reason codes",
            V5,
            Packet::SubAck(SubAck {
                packet_id: pid(1),
                properties: props([]),
                reason_codes: vec![],
            }),
            EncodeError::EmptyList(PacketType::SubAck),
        ),
        (
            "client identifier over 65535 bytes",
            V3_1_1,
            connect(V3_1_1, &"x".repeat(65_536), 0).into(),
            EncodeError::FieldTooLong {
                field: "client identifier",
                len: 65_536,
            },
        ),
    ];
    for (what, version, packet, error) in cases {
        assert_eq!(packet.to_bytes(version), Err(error.clone()), "{what}");
        assert_eq!(packet.encoded_len(version), Err(error), "{what}");
    }
}
