//! Helpers shared by the integration tests: short constructors, a byte-string builder for
//! hand-written wire vectors, and proptest strategies that generate valid packets.
//!
//! The property and reason-code tables below are written from the MQTT 5.0 specification
//! (Table 2-4 and the per-packet Reason Code tables of chapter 3), not copied from the crate, so
//! the round-trip tests check the codec against the specification rather than against itself.
#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use midge_proto::{
    Auth, ByteString, ConnAck, Connect, Disconnect, Packet, PacketId, Properties, Property,
    ProtocolVersion, Publish, PublishAck, QoS, ReasonCode, RetainHandling, SubAck, Subscribe,
    SubscribeFilter, SubscriptionOptions, TopicFilter, TopicName, UnsubAck, Unsubscribe, Will,
};
use proptest::collection::vec;
use proptest::prelude::*;

pub(crate) use ProtocolVersion::{V3_1, V3_1_1, V5};

/// Every protocol version.
pub(crate) const VERSIONS: [ProtocolVersion; 3] = [V3_1, V3_1_1, V5];

/// A valid Topic Name.
pub(crate) fn name(s: &str) -> TopicName {
    TopicName::new(s).unwrap_or_else(|e| panic!("{s:?} is not a topic name: {e}"))
}

/// A valid Topic Filter.
pub(crate) fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap_or_else(|e| panic!("{s:?} is not a topic filter: {e}"))
}

/// A non-zero Packet Identifier.
pub(crate) fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// Properties from a list.
pub(crate) fn props(list: impl IntoIterator<Item = Property>) -> Properties {
    list.into_iter().collect()
}

/// A User Property.
pub(crate) fn user(k: &str, v: &str) -> Property {
    Property::UserProperty(k.into(), v.into())
}

/// Lowercase hex with a space between bytes, for readable assertion failures.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One piece of a hand-written wire vector: a byte (`0x10`, `b'a'`) or a run of raw bytes
/// (`"MQTT"`, `b"\x00\x01"`, `&[..]`, `vec![..]`). Strings are copied as they are: length
/// prefixes are written by hand next to them.
pub(crate) trait Piece {
    /// Appends the piece.
    fn put(self, out: &mut Vec<u8>);
}

impl Piece for u8 {
    fn put(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}

impl Piece for i32 {
    fn put(self, out: &mut Vec<u8>) {
        out.push(u8::try_from(self).unwrap_or_else(|_| panic!("{self} is not a byte")));
    }
}

impl Piece for &str {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl Piece for &[u8] {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<const N: usize> Piece for &[u8; N] {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl Piece for Vec<u8> {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self);
    }
}

/// Builds a `Vec<u8>` from [`Piece`]s: `wire![0x30, 0x05, 0x00, 0x03, "a/b"]`. Declare the
/// module with `#[macro_use] mod common;` to use it.
#[allow(unused_macros)]
macro_rules! wire {
    ($($piece:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut out: Vec<u8> = Vec::new();
        $( $crate::common::Piece::put($piece, &mut out); )*
        out
    }};
}

// ---------------------------------------------------------------------------------------------
// Specification tables (MQTT 5.0).
// ---------------------------------------------------------------------------------------------

/// Table 2-4: single-valued properties allowed in CONNECT (User Property is added separately).
pub(crate) const CONNECT_PROPS: &[u8] = &[0x11, 0x21, 0x27, 0x22, 0x19, 0x17, 0x15, 0x16];
/// Single-valued properties allowed in CONNACK.
pub(crate) const CONNACK_PROPS: &[u8] = &[
    0x11, 0x21, 0x24, 0x25, 0x27, 0x12, 0x22, 0x1F, 0x28, 0x29, 0x2A, 0x13, 0x1A, 0x1C, 0x15, 0x16,
];
/// Single-valued properties allowed in PUBLISH (Subscription Identifier may repeat there and
/// is added separately).
pub(crate) const PUBLISH_PROPS: &[u8] = &[0x01, 0x02, 0x23, 0x08, 0x09, 0x03];
/// Single-valued properties allowed in the Will Properties.
pub(crate) const WILL_PROPS: &[u8] = &[0x18, 0x01, 0x02, 0x03, 0x08, 0x09];
/// Single-valued properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
pub(crate) const ACK_PROPS: &[u8] = &[0x1F];
/// Single-valued properties of SUBSCRIBE.
pub(crate) const SUBSCRIBE_PROPS: &[u8] = &[0x0B];
/// Single-valued properties of DISCONNECT.
pub(crate) const DISCONNECT_PROPS: &[u8] = &[0x11, 0x1F, 0x1C];
/// Single-valued properties of AUTH.
pub(crate) const AUTH_PROPS: &[u8] = &[0x15, 0x16, 0x1F];

/// §3.2.2.2 Connect Reason Codes.
pub(crate) const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
/// The MQTT 5 codes that MQTT 3.x CONNACK return codes 0–5 decode to.
pub(crate) const V3_CONNACK_CODES: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
/// §3.4.2.1 / §3.5.2.1 PUBACK and PUBREC Reason Codes.
pub(crate) const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
/// §3.6.2.1 / §3.7.2.1 PUBREL and PUBCOMP Reason Codes.
pub(crate) const PUBREL_CODES: &[u8] = &[0x00, 0x92];
/// §3.9.3 SUBACK Reason Codes.
pub(crate) const SUBACK_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
/// MQTT 3.1.1 §3.9.3 SUBACK return codes.
pub(crate) const V3_SUBACK_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];
/// §3.11.3 UNSUBACK Reason Codes.
pub(crate) const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
/// §3.14.2.1 Disconnect Reason Codes.
pub(crate) const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
/// §3.15.2.1 Authenticate Reason Codes.
pub(crate) const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];

// ---------------------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------------------

/// Any protocol version.
pub(crate) fn version() -> impl Strategy<Value = ProtocolVersion> + Clone {
    prop::sample::select(VERSIONS.to_vec())
}

/// Any QoS level.
pub(crate) fn qos() -> impl Strategy<Value = QoS> + Clone {
    prop::sample::select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

/// Any packet identifier (never 0).
pub(crate) fn packet_id() -> impl Strategy<Value = PacketId> + Clone {
    (1..=u16::MAX).prop_map(pid)
}

/// A reason code from a list.
pub(crate) fn code_in(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> + Clone {
    prop::sample::select(codes).prop_map(ReasonCode)
}

/// A UTF-8 string without U+0000: mostly a small alphabet with multi-byte characters, now and
/// then any printable text.
pub(crate) fn string() -> BoxedStrategy<ByteString> {
    prop_oneof![
        4 => "[a-z0-9 /_é€😀]{0,10}",
        1 => "\\PC{0,16}",
    ]
    .prop_map(ByteString::from)
    .boxed()
}

/// Arbitrary binary data.
pub(crate) fn binary() -> BoxedStrategy<Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from).boxed()
}

/// A valid Topic Name: levels of a small alphabet plus multi-byte characters and `$`.
pub(crate) fn topic_name() -> BoxedStrategy<TopicName> {
    let level = prop_oneof![
        6 => "[a-z]{1,3}",
        1 => Just(String::new()),
        1 => Just("$SYS".to_owned()),
        2 => "[é€😀 ]{1,2}",
    ];
    vec(level, 1..5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter_map("not a topic name", |s| TopicName::new(s).ok())
        .boxed()
}

/// A valid Topic Filter, with wildcards and sometimes as a Shared Subscription.
pub(crate) fn topic_filter() -> BoxedStrategy<TopicFilter> {
    let level = prop_oneof![
        6 => "[a-z]{1,3}",
        1 => Just(String::new()),
        2 => Just("+".to_owned()),
        2 => "[é😀]{1,2}",
    ];
    (
        vec(level, 1..5),
        prop::bool::weighted(0.25),
        prop::option::weighted(0.2, "[a-z]{1,4}"),
    )
        .prop_map(|(levels, hash, share)| {
            let mut s = levels.join("/");
            if hash {
                if !s.is_empty() {
                    s.push('/');
                }
                s.push('#');
            }
            match share {
                Some(group) => format!("$share/{group}/{s}"),
                None => s,
            }
        })
        .prop_filter_map("not a topic filter", |s| TopicFilter::new(s).ok())
        .boxed()
}

/// A valid value for property `id`.
pub(crate) fn property(id: u8) -> BoxedStrategy<Property> {
    use Property as P;
    match id {
        0x01 => any::<bool>().prop_map(P::PayloadFormatIndicator).boxed(),
        0x02 => any::<u32>().prop_map(P::MessageExpiryInterval).boxed(),
        0x03 => string().prop_map(P::ContentType).boxed(),
        0x08 => topic_name().prop_map(P::ResponseTopic).boxed(),
        0x09 => binary().prop_map(P::CorrelationData).boxed(),
        0x0B => subscription_identifier()
            .prop_map(P::SubscriptionIdentifier)
            .boxed(),
        0x11 => any::<u32>().prop_map(P::SessionExpiryInterval).boxed(),
        0x12 => string().prop_map(P::AssignedClientIdentifier).boxed(),
        0x13 => any::<u16>().prop_map(P::ServerKeepAlive).boxed(),
        0x15 => string().prop_map(P::AuthenticationMethod).boxed(),
        0x16 => binary().prop_map(P::AuthenticationData).boxed(),
        0x17 => any::<bool>().prop_map(P::RequestProblemInformation).boxed(),
        0x18 => any::<u32>().prop_map(P::WillDelayInterval).boxed(),
        0x19 => any::<bool>()
            .prop_map(P::RequestResponseInformation)
            .boxed(),
        0x1A => string().prop_map(P::ResponseInformation).boxed(),
        0x1C => string().prop_map(P::ServerReference).boxed(),
        0x1F => string().prop_map(P::ReasonString).boxed(),
        0x21 => (1..=u16::MAX).prop_map(P::ReceiveMaximum).boxed(),
        0x22 => any::<u16>().prop_map(P::TopicAliasMaximum).boxed(),
        0x23 => (1..=u16::MAX).prop_map(P::TopicAlias).boxed(),
        0x24 => prop::sample::select(vec![QoS::AtMostOnce, QoS::AtLeastOnce])
            .prop_map(P::MaximumQoS)
            .boxed(),
        0x25 => any::<bool>().prop_map(P::RetainAvailable).boxed(),
        0x26 => (string(), string())
            .prop_map(|(k, v)| P::UserProperty(k, v))
            .boxed(),
        0x27 => (1..=u32::MAX).prop_map(P::MaximumPacketSize).boxed(),
        0x28 => any::<bool>()
            .prop_map(P::WildcardSubscriptionAvailable)
            .boxed(),
        0x29 => any::<bool>()
            .prop_map(P::SubscriptionIdentifierAvailable)
            .boxed(),
        0x2A => any::<bool>()
            .prop_map(P::SharedSubscriptionAvailable)
            .boxed(),
        _ => panic!("no such property 0x{id:02X}"),
    }
}

/// A Subscription Identifier: 1 to 268,435,455, favouring the Variable Byte Integer
/// boundaries.
pub(crate) fn subscription_identifier() -> BoxedStrategy<u32> {
    prop_oneof![
        Just(1u32),
        Just(127),
        Just(128),
        Just(16_383),
        Just(16_384),
        Just(2_097_151),
        Just(2_097_152),
        Just(268_435_455),
        1..=268_435_455u32,
    ]
    .boxed()
}

/// A property list valid in one place: each of `singles` at most once, any number of User
/// Properties, and (when `repeated_sub_ids`) any number of Subscription Identifiers, in random
/// order.
pub(crate) fn properties(
    singles: &'static [u8],
    repeated_sub_ids: bool,
) -> BoxedStrategy<Properties> {
    let singles: Vec<BoxedStrategy<Option<Property>>> = singles
        .iter()
        .map(|&id| prop::option::weighted(0.4, property(id)).boxed())
        .collect();
    let users = vec(property(0x26), 0..3);
    let sub_ids = if repeated_sub_ids {
        vec(property(0x0B), 0..3).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    let full = (singles, users, sub_ids)
        .prop_flat_map(|(singles, users, sub_ids)| {
            let mut all: Vec<Property> = singles
                .into_iter()
                .flatten()
                .chain(users)
                .chain(sub_ids)
                .collect();
            // Authentication Data needs an Authentication Method (MQTT 5.0 §3.1.2.11.10).
            let has_method = all
                .iter()
                .any(|p| matches!(p, Property::AuthenticationMethod(_)));
            if !has_method {
                all.retain(|p| !matches!(p, Property::AuthenticationData(_)));
            }
            Just(all).prop_shuffle()
        })
        .prop_map(Properties::from);
    prop_oneof![1 => Just(Properties::new()), 3 => full].boxed()
}

/// Properties for `singles` in MQTT 5, none before.
fn props_for(
    v: ProtocolVersion,
    singles: &'static [u8],
    repeat: bool,
) -> BoxedStrategy<Properties> {
    if v.is_v5() {
        properties(singles, repeat)
    } else {
        Just(Properties::new()).boxed()
    }
}

/// A valid CONNECT of version `v`.
pub(crate) fn connect(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let will = (
        qos(),
        any::<bool>(),
        props_for(v, WILL_PROPS, false),
        topic_name(),
        binary(),
    )
        .prop_map(|(qos, retain, properties, topic, payload)| Will {
            qos,
            retain,
            properties,
            topic,
            payload,
        });
    (
        any::<bool>(),
        any::<bool>(),
        any::<u16>(),
        props_for(v, CONNECT_PROPS, false),
        string(),
        prop::option::of(will),
        prop::option::of(string()),
        prop::option::of(binary()),
    )
        .prop_map(
            move |(
                bridge,
                clean_start,
                keep_alive,
                properties,
                client_id,
                will,
                username,
                password,
            )| {
                // MQTT 3.x forbids a password without a user name ([MQTT-3.1.2-22]); the bridge
                // bit of the protocol level only exists before MQTT 5.
                let password = if v.is_v5() || username.is_some() {
                    password
                } else {
                    None
                };
                Packet::from(Connect {
                    protocol_version: v,
                    bridge: bridge && !v.is_v5(),
                    clean_start,
                    keep_alive,
                    properties,
                    client_id,
                    will,
                    username,
                    password,
                })
            },
        )
        .boxed()
}

/// A valid CONNACK for version `v`.
pub(crate) fn connack(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let codes = if v.is_v5() {
        CONNACK_CODES
    } else {
        V3_CONNACK_CODES
    };
    (
        any::<bool>(),
        code_in(codes),
        props_for(v, CONNACK_PROPS, false),
    )
        .prop_map(move |(session_present, reason_code, properties)| {
            // Session Present is 0 with a failure ([MQTT-3.2.2-6]) and does not exist in 3.1.
            let session_present =
                session_present && !reason_code.is_error() && v != ProtocolVersion::V3_1;
            Packet::ConnAck(ConnAck {
                session_present,
                reason_code,
                properties,
            })
        })
        .boxed()
}

/// A valid PUBLISH for version `v`.
pub(crate) fn publish(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        prop::bool::weighted(0.3),
        packet_id(),
        props_for(v, PUBLISH_PROPS, true),
        binary(),
    )
        .prop_map(
            |(qos, dup, retain, topic, drop_topic, id, properties, payload)| {
                // An empty Topic Name needs a Topic Alias (§3.3.2.3.4).
                let topic = if drop_topic && properties.topic_alias().is_some() {
                    TopicName::empty_for_alias()
                } else {
                    topic
                };
                let at_least_once = qos != QoS::AtMostOnce;
                Packet::Publish(Publish {
                    // DUP only with QoS > 0 ([MQTT-3.3.1-2]), and an id exactly then.
                    dup: dup && at_least_once,
                    qos,
                    retain,
                    topic,
                    packet_id: at_least_once.then_some(id),
                    properties,
                    payload,
                })
            },
        )
        .boxed()
}

/// Which of the four PUBLISH acknowledgements.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::enum_variant_names)]
pub(crate) enum AckKind {
    /// PUBACK.
    PubAck,
    /// PUBREC.
    PubRec,
    /// PUBREL.
    PubRel,
    /// PUBCOMP.
    PubComp,
}

/// A valid PUBACK, PUBREC, PUBREL or PUBCOMP for version `v`.
pub(crate) fn publish_ack(v: ProtocolVersion, kind: AckKind) -> BoxedStrategy<Packet> {
    let codes = match kind {
        AckKind::PubAck | AckKind::PubRec => PUBACK_CODES,
        AckKind::PubRel | AckKind::PubComp => PUBREL_CODES,
    };
    let code = if v.is_v5() {
        code_in(codes).boxed()
    } else {
        Just(ReasonCode::SUCCESS).boxed()
    };
    (packet_id(), code, props_for(v, ACK_PROPS, false))
        .prop_map(move |(packet_id, reason_code, properties)| {
            let ack = PublishAck {
                packet_id,
                reason_code,
                properties,
            };
            match kind {
                AckKind::PubAck => Packet::PubAck(ack),
                AckKind::PubRec => Packet::PubRec(ack),
                AckKind::PubRel => Packet::PubRel(ack),
                AckKind::PubComp => Packet::PubComp(ack),
            }
        })
        .boxed()
}

/// Valid subscription options for version `v` (MQTT 3.x carries only the QoS).
fn subscribe_filter(v: ProtocolVersion) -> BoxedStrategy<SubscribeFilter> {
    let retain_handling = prop::sample::select(vec![
        RetainHandling::SendAtSubscribe,
        RetainHandling::SendAtSubscribeIfNew,
        RetainHandling::DoNotSend,
    ]);
    (
        topic_filter(),
        qos(),
        any::<bool>(),
        any::<bool>(),
        retain_handling,
    )
        .prop_map(move |(filter, qos, no_local, rap, retain_handling)| {
            let options = if v.is_v5() {
                SubscriptionOptions {
                    qos,
                    // No Local on a Shared Subscription is a Protocol Error ([MQTT-3.8.3-4]).
                    no_local: no_local && !filter.is_shared(),
                    retain_as_published: rap,
                    retain_handling,
                }
            } else {
                SubscriptionOptions::qos(qos)
            };
            SubscribeFilter { filter, options }
        })
        .boxed()
}

/// A valid SUBSCRIBE for version `v`.
pub(crate) fn subscribe(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        packet_id(),
        props_for(v, SUBSCRIBE_PROPS, false),
        vec(subscribe_filter(v), 1..5),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        })
        .boxed()
}

/// A valid SUBACK for version `v`.
pub(crate) fn suback(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let codes = if v.is_v5() {
        SUBACK_CODES
    } else {
        V3_SUBACK_CODES
    };
    (
        packet_id(),
        props_for(v, ACK_PROPS, false),
        vec(code_in(codes), 1..6),
    )
        .prop_map(|(packet_id, properties, reason_codes)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reason_codes,
            })
        })
        .boxed()
}

/// A valid UNSUBSCRIBE for version `v`.
pub(crate) fn unsubscribe(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        packet_id(),
        props_for(v, &[], false),
        vec(topic_filter(), 1..5),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters,
            })
        })
        .boxed()
}

/// A valid UNSUBACK for version `v` (MQTT 3.x has no reason codes).
pub(crate) fn unsuback(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let codes = if v.is_v5() {
        vec(code_in(UNSUBACK_CODES), 1..6).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (packet_id(), props_for(v, ACK_PROPS, false), codes)
        .prop_map(|(packet_id, properties, reason_codes)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reason_codes,
            })
        })
        .boxed()
}

/// A valid DISCONNECT for version `v` (MQTT 3.x: always the empty one).
pub(crate) fn disconnect(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    if !v.is_v5() {
        return Just(Packet::Disconnect(Disconnect::default())).boxed();
    }
    (
        code_in(DISCONNECT_CODES),
        properties(DISCONNECT_PROPS, false),
    )
        .prop_map(|(reason_code, properties)| {
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
        })
        .boxed()
}

/// A valid AUTH (MQTT 5 only).
pub(crate) fn auth() -> BoxedStrategy<Packet> {
    (code_in(AUTH_CODES), properties(AUTH_PROPS, false))
        .prop_map(|(reason_code, properties)| {
            Packet::Auth(Auth {
                reason_code,
                properties,
            })
        })
        .boxed()
}

/// Any valid packet for version `v`, CONNECT included.
pub(crate) fn any_packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let mut all = vec![
        connect(v),
        connack(v),
        publish(v),
        publish_ack(v, AckKind::PubAck),
        publish_ack(v, AckKind::PubRec),
        publish_ack(v, AckKind::PubRel),
        publish_ack(v, AckKind::PubComp),
        subscribe(v),
        suback(v),
        unsubscribe(v),
        unsuback(v),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect(v),
    ];
    if v.is_v5() {
        all.push(auth());
    }
    prop::strategy::Union::new(all).boxed()
}
