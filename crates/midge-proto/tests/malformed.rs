//! A table of malformed and protocol-violating inputs: each row names the exact
//! [`DecodeError`], the Reason Code a receiver answers with, and the normative statement when
//! the specification numbers one. Every row is also fed to a streaming [`Decoder`] split at
//! every byte offset, which must report the same error. A second table holds near misses that
//! must be accepted.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use bytes::{Bytes, BytesMut};
use common::{V3_1, V3_1_1, V5, filter, hex, name, pid, props, user};
use midge_proto::{
    Connect, DecodeError, Decoder, PROTOCOL_MAX_PACKET_SIZE, Packet, PacketType, Property,
    ProtocolVersion, Publish, QoS, RetainHandling, Subscribe, SubscribeFilter, SubscriptionOptions,
    TopicError, TopicName,
};

use DecodeError as E;
use PacketType as T;

/// How the bytes reach the codec.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// A decoder for a known version with the protocol's maximum packet size; the row is also
    /// checked with [`Packet::decode`].
    Version(ProtocolVersion),
    /// A decoder for a known version with the given Maximum Packet Size.
    Limit(ProtocolVersion, u32),
    /// A server-side decoder (first packet must be CONNECT) with the given Maximum Packet Size.
    Server(u32),
}

impl Mode {
    fn decoder(self) -> Decoder {
        match self {
            Mode::Version(v) => Decoder::with_version(v, PROTOCOL_MAX_PACKET_SIZE),
            Mode::Limit(v, max) => Decoder::with_version(v, max),
            Mode::Server(max) => Decoder::server(max),
        }
    }
}

const V31: Mode = Mode::Version(V3_1);
const V311: Mode = Mode::Version(V3_1_1);
const V50: Mode = Mode::Version(V5);
const SERVER: Mode = Mode::Server(PROTOCOL_MAX_PACKET_SIZE);

#[derive(Debug)]
struct Row {
    name: &'static str,
    mode: Mode,
    bytes: Vec<u8>,
    error: DecodeError,
    reason: u8,
    spec: Option<&'static str>,
}

macro_rules! bad {
    ($name:literal, $mode:expr, [$($b:expr),* $(,)?], $error:expr, $reason:literal, $spec:expr $(,)?) => {
        Row {
            name: $name,
            mode: $mode,
            bytes: wire![$($b),*],
            error: $error,
            reason: $reason,
            spec: $spec,
        }
    };
}

fn not_allowed(property: &'static str, context: &'static str) -> DecodeError {
    E::PropertyNotAllowed { property, context }
}

fn bad_value(property: &'static str, value: u32) -> DecodeError {
    E::InvalidPropertyValue { property, value }
}

fn truncated(packet: PacketType, field: &'static str) -> DecodeError {
    E::Truncated { packet, field }
}

fn trailing(packet: PacketType, extra: usize) -> DecodeError {
    E::TrailingBytes { packet, extra }
}

fn flags(packet: PacketType, flags: u8, required: u8) -> DecodeError {
    E::InvalidFixedHeaderFlags {
        packet,
        flags,
        required,
    }
}

fn invalid_code(packet: PacketType, code: u8) -> DecodeError {
    E::InvalidReasonCode { packet, code }
}

const HDR: &str = "MQTT-2.1.3-1";
const ZERO_ID: &str = "MQTT-2.2.1-3";

#[rustfmt::skip]
fn rows() -> Vec<Row> {
    vec![
        // ---- Variable Byte Integers (§1.5.5) -------------------------------------------------
        bad!("remaining length with five bytes", V311, [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
            E::VarIntTooLong, 0x81, Some("MQTT-1.5.5-1")),
        bad!("remaining length with four continuation bytes", V50, [0xC0, 0x80, 0x80, 0x80, 0x80, 0x01],
            E::VarIntTooLong, 0x81, Some("MQTT-1.5.5-1")),
        bad!("remaining length 0 in two bytes", V311, [0xC0, 0x80, 0x00],
            E::VarIntNotMinimal, 0x81, Some("MQTT-1.5.5-1")),
        bad!("remaining length 5 in three bytes", V311, [0x30, 0x85, 0x80, 0x00],
            E::VarIntNotMinimal, 0x81, Some("MQTT-1.5.5-1")),
        bad!("property length 0 in two bytes", V50, [0x40, 0x05, 0x00, 0x01, 0x00, 0x80, 0x00],
            E::VarIntNotMinimal, 0x81, Some("MQTT-1.5.5-1")),
        bad!("subscription identifier with five bytes", V50,
            [0x82, 0x0D, 0x00, 0x01, 0x06, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, "a", 0x00],
            E::VarIntTooLong, 0x81, Some("MQTT-1.5.5-1")),

        // ---- Fixed header (§2.1) ---------------------------------------------------------------
        bad!("reserved packet type 0", V311, [0x00, 0x00], E::ReservedPacketType(0), 0x81, Some(HDR)),
        bad!("reserved packet type 0 in MQTT 5", V50, [0x00, 0x00], E::ReservedPacketType(0), 0x81, Some(HDR)),
        bad!("reserved packet type 0 as first packet", SERVER, [0x00, 0x00], E::ReservedPacketType(0), 0x81, Some(HDR)),
        // Type 15 is "Reserved" in MQTT 3.1.1 (the codec does not use NotInVersion here).
        bad!("AUTH (type 15) in MQTT 3.1.1", V311, [0xF0, 0x00], E::ReservedPacketType(15), 0x81, Some(HDR)),
        bad!("AUTH (type 15) in MQTT 3.1", V31, [0xF0, 0x00], E::ReservedPacketType(15), 0x81, Some(HDR)),
        bad!("PUBREL with flags 0000", V311, [0x60, 0x02, 0x00, 0x01], flags(T::PubRel, 0, 2), 0x81, Some(HDR)),
        bad!("PUBREL with flags 0011 in MQTT 5", V50, [0x63, 0x02, 0x00, 0x01], flags(T::PubRel, 3, 2), 0x81, Some(HDR)),
        bad!("SUBSCRIBE with flags 0000", V311, [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, "a", 0x00],
            flags(T::Subscribe, 0, 2), 0x81, Some(HDR)),
        bad!("UNSUBSCRIBE with flags 0011", V311, [0xA3, 0x05, 0x00, 0x01, 0x00, 0x01, "a"],
            flags(T::Unsubscribe, 3, 2), 0x81, Some(HDR)),
        bad!("PINGREQ with flags 0001", V311, [0xC1, 0x00], flags(T::PingReq, 1, 0), 0x81, Some(HDR)),
        bad!("PUBACK with flags 0010", V50, [0x42, 0x02, 0x00, 0x01], flags(T::PubAck, 2, 0), 0x81, Some(HDR)),
        bad!("DISCONNECT with flags 1000", V50, [0xE8, 0x00], flags(T::Disconnect, 8, 0), 0x81, Some(HDR)),
        bad!("CONNECT with flags 0010", SERVER,
            [0x12, 0x0C, 0x00, 0x04, "MQTT", 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00],
            flags(T::Connect, 2, 0), 0x81, Some(HDR)),

        // ---- PUBLISH fixed header and topic (§3.3) ---------------------------------------------
        bad!("PUBLISH with QoS 3", V311, [0x36, 0x05, 0x00, 0x01, "t", 0x00, 0x01],
            E::PublishQos3, 0x81, Some("MQTT-3.3.1-4")),
        bad!("PUBLISH with DUP and QoS 3", V50, [0x3E, 0x06, 0x00, 0x01, "t", 0x00, 0x01, 0x00],
            E::PublishQos3, 0x81, Some("MQTT-3.3.1-4")),
        bad!("PUBLISH with DUP at QoS 0", V311, [0x38, 0x03, 0x00, 0x01, "t"],
            E::DupWithQos0, 0x81, Some("MQTT-3.3.1-2")),
        bad!("PUBLISH with packet identifier 0", V311, [0x32, 0x05, 0x00, 0x01, "t", 0x00, 0x00],
            E::ZeroPacketId(T::Publish), 0x82, Some(ZERO_ID)),
        bad!("PUBLISH QoS 2 with packet identifier 0", V50, [0x34, 0x06, 0x00, 0x01, "t", 0x00, 0x00, 0x00],
            E::ZeroPacketId(T::Publish), 0x82, Some(ZERO_ID)),
        bad!("topic that is not UTF-8", V311, [0x30, 0x03, 0x00, 0x01, 0xFF],
            E::InvalidUtf8("topic name"), 0x81, Some("MQTT-1.5.4-1")),
        bad!("topic with an overlong encoding of /", V311, [0x30, 0x04, 0x00, 0x02, 0xC0, 0xAF],
            E::InvalidUtf8("topic name"), 0x81, Some("MQTT-1.5.4-1")),
        bad!("topic with an encoded surrogate (ED A0 80)", V311, [0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80],
            E::InvalidUtf8("topic name"), 0x81, Some("MQTT-1.5.4-1")),
        bad!("topic with U+0000", V311, [0x30, 0x05, 0x00, 0x03, "a", 0x00, "b"],
            E::NullCharacter("topic name"), 0x81, Some("MQTT-1.5.4-2")),
        bad!("topic with U+0000 in MQTT 5", V50, [0x30, 0x04, 0x00, 0x01, 0x00, 0x00],
            E::NullCharacter("topic name"), 0x81, Some("MQTT-1.5.4-2")),
        bad!("topic with +", V311, [0x30, 0x05, 0x00, 0x03, "a/+"],
            E::TopicName(TopicError::WildcardInName), 0x90, Some("MQTT-4.7.0-1")),
        bad!("topic with #", V311, [0x30, 0x03, 0x00, 0x01, "#"],
            E::TopicName(TopicError::WildcardInName), 0x90, Some("MQTT-4.7.0-1")),
        bad!("topic with # in MQTT 5", V50, [0x30, 0x06, 0x00, 0x03, "a/#", 0x00],
            E::TopicName(TopicError::WildcardInName), 0x90, Some("MQTT-4.7.0-1")),
        bad!("empty topic in MQTT 3.1.1", V311, [0x30, 0x02, 0x00, 0x00],
            E::TopicName(TopicError::Empty), 0x90, Some("MQTT-4.7.3-1")),
        // MQTT 5.0 §3.3.2.1: a Protocol Error.
        bad!("empty topic without a topic alias", V50, [0x30, 0x03, 0x00, 0x00, 0x00],
            E::EmptyTopicWithoutAlias, 0x82, None),
        bad!("empty topic with other properties but no alias", V50, [0x30, 0x05, 0x00, 0x00, 0x02, 0x01, 0x01],
            E::EmptyTopicWithoutAlias, 0x82, None),
        bad!("empty PUBLISH body", V311, [0x30, 0x00], truncated(T::Publish, "topic name"), 0x81, None),
        bad!("topic longer than the packet", V311, [0x30, 0x03, 0x00, 0x05, "a"],
            truncated(T::Publish, "topic name"), 0x81, None),
        bad!("PUBLISH QoS 1 without packet identifier", V311, [0x32, 0x04, 0x00, 0x01, "t", 0x00],
            truncated(T::Publish, "packet identifier"), 0x81, None),
        bad!("MQTT 5 PUBLISH without property length", V50, [0x30, 0x03, 0x00, 0x01, "t"],
            truncated(T::Publish, "property length"), 0x81, None),

        // ---- CONNECT (§3.1) ----------------------------------------------------------------------
        bad!("protocol name MQTX", SERVER, [0x10, 0x0C, 0x00, 0x04, "MQTX", 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00],
            E::InvalidProtocolName { name: "MQTX".into(), level: 4 }, 0x84, Some("MQTT-3.1.2-1")),
        bad!("protocol name MQIsdp with level 4", SERVER,
            [0x10, 0x0E, 0x00, 0x06, "MQIsdp", 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00],
            E::InvalidProtocolName { name: "MQIsdp".into(), level: 4 }, 0x84, Some("MQTT-3.1.2-1")),
        bad!("protocol name MQTT with level 3", V311, [0x10, 0x0C, 0x00, 0x04, "MQTT", 0x03, 0x02, 0x00, 0x3C, 0x00, 0x00],
            E::InvalidProtocolName { name: "MQTT".into(), level: 3 }, 0x84, Some("MQTT-3.1.2-1")),
        bad!("protocol level 6", SERVER, [0x10, 0x0C, 0x00, 0x04, "MQTT", 0x06, 0x02, 0x00, 0x3C, 0x00, 0x00],
            E::UnsupportedProtocolLevel(6), 0x84, Some("MQTT-3.1.2-2")),
        bad!("protocol level 6 on a known-version decoder", V50,
            [0x10, 0x0C, 0x00, 0x04, "MQTT", 0x06, 0x02, 0x00, 0x3C, 0x00, 0x00],
            E::UnsupportedProtocolLevel(6), 0x84, Some("MQTT-3.1.2-2")),
        bad!("bridge bit on MQTT 5 (level 0x85)", SERVER,
            [0x10, 0x0C, 0x00, 0x04, "MQTT", 0x85, 0x02, 0x00, 0x3C, 0x00, 0x00],
            E::UnsupportedProtocolLevel(0x85), 0x84, Some("MQTT-3.1.2-2")),
        bad!("CONNECT reserved flag", SERVER, [0x10, 0x0C, 0x00, 0x04, "MQTT", 0x04, 0x03, 0x00, 0x3C, 0x00, 0x00],
            E::ConnectReservedFlag, 0x81, Some("MQTT-3.1.2-3")),
        bad!("CONNECT reserved flag in MQTT 5", SERVER,
            [0x10, 0x0D, 0x00, 0x04, "MQTT", 0x05, 0x01, 0x00, 0x3C, 0x00, 0x00, 0x00],
            E::ConnectReservedFlag, 0x81, Some("MQTT-3.1.2-3")),
        bad!("will QoS 3", SERVER,
            [0x10, 0x11, 0x00, 0x04, "MQTT", 0x04, 0x1E, 0x00, 0x3C, 0x00, 0x00, 0x00, 0x01, "t", 0x00, 0x00],
            E::WillQos3, 0x81, Some("MQTT-3.1.2-12")),
        // MQTT 5.0 numbers the Will Retain rule [MQTT-3.1.2-13] (3.1.1: [MQTT-3.1.2-15]).
        bad!("will retain without will flag", SERVER,
            [0x10, 0x0C, 0x00, 0x04, "MQTT", 0x04, 0x22, 0x00, 0x3C, 0x00, 0x00],
            E::WillRetainWithoutWill, 0x81, Some("MQTT-3.1.2-13")),
        bad!("will QoS 1 without will flag", SERVER,
            [0x10, 0x0C, 0x00, 0x04, "MQTT", 0x04, 0x0A, 0x00, 0x3C, 0x00, 0x00],
            E::WillFlagsWithoutWill, 0x81, Some("MQTT-3.1.2-11")),
        bad!("MQTT 3.1.1 password without user name", SERVER,
            [0x10, 0x0F, 0x00, 0x04, "MQTT", 0x04, 0x42, 0x00, 0x3C, 0x00, 0x00, 0x00, 0x01, "p"],
            E::PasswordWithoutUsername, 0x81, Some("MQTT-3.1.2-22")),
        bad!("MQTT 3.1 password without user name", SERVER,
            [0x10, 0x11, 0x00, 0x06, "MQIsdp", 0x03, 0x42, 0x00, 0x3C, 0x00, 0x00, 0x00, 0x01, "p"],
            E::PasswordWithoutUsername, 0x81, Some("MQTT-3.1.2-22")),
        bad!("client identifier that is not UTF-8", SERVER,
            [0x10, 0x0D, 0x00, 0x04, "MQTT", 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01, 0xFE],
            E::InvalidUtf8("client identifier"), 0x81, Some("MQTT-1.5.4-1")),
        bad!("will topic with a wildcard", SERVER,
            [0x10, 0x14, 0x00, 0x04, "MQTT", 0x04, 0x06, 0x00, 0x3C, 0x00, 0x01, "c", 0x00, 0x03, "a/#", 0x00, 0x00],
            E::TopicName(TopicError::WildcardInName), 0x90, Some("MQTT-4.7.0-1")),
        bad!("CONNECT ending before keep alive", SERVER, [0x10, 0x08, 0x00, 0x04, "MQTT", 0x04, 0x02],
            truncated(T::Connect, "keep alive"), 0x81, None),
        bad!("user name flag without user name", SERVER,
            [0x10, 0x0C, 0x00, 0x04, "MQTT", 0x04, 0x82, 0x00, 0x3C, 0x00, 0x00],
            truncated(T::Connect, "user name"), 0x81, None),
        bad!("will flag without will payload", SERVER,
            [0x10, 0x0F, 0x00, 0x04, "MQTT", 0x04, 0x06, 0x00, 0x3C, 0x00, 0x00, 0x00, 0x01, "t"],
            truncated(T::Connect, "will payload"), 0x81, None),
        bad!("CONNECT with a byte after the payload", SERVER,
            [0x10, 0x0D, 0x00, 0x04, "MQTT", 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00, 0xFF],
            trailing(T::Connect, 1), 0x81, None),
        bad!("Topic Alias in CONNECT properties", SERVER,
            [0x10, 0x10, 0x00, 0x04, "MQTT", 0x05, 0x02, 0x00, 0x3C, 0x03, 0x23, 0x00, 0x01, 0x00, 0x00],
            not_allowed("Topic Alias", "CONNECT"), 0x81, None),
        bad!("Will Delay Interval in CONNECT properties", SERVER,
            [0x10, 0x12, 0x00, 0x04, "MQTT", 0x05, 0x02, 0x00, 0x3C, 0x05, 0x18, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00],
            not_allowed("Will Delay Interval", "CONNECT"), 0x81, None),
        bad!("Session Expiry Interval in Will Properties", SERVER,
            [0x10, 0x18, 0x00, 0x04, "MQTT", 0x05, 0x06, 0x00, 0x3C, 0x00, 0x00, 0x00,
             0x05, 0x11, 0x00, 0x00, 0x00, 0x05, 0x00, 0x01, "t", 0x00, 0x00],
            not_allowed("Session Expiry Interval", "Will Properties"), 0x81, None),
        bad!("Receive Maximum 0 in CONNECT", SERVER,
            [0x10, 0x10, 0x00, 0x04, "MQTT", 0x05, 0x02, 0x00, 0x3C, 0x03, 0x21, 0x00, 0x00, 0x00, 0x00],
            bad_value("Receive Maximum", 0), 0x82, None),
        bad!("Maximum Packet Size 0 in CONNECT", SERVER,
            [0x10, 0x12, 0x00, 0x04, "MQTT", 0x05, 0x02, 0x00, 0x3C, 0x05, 0x27, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            bad_value("Maximum Packet Size", 0), 0x82, None),
        bad!("Request Problem Information 2", SERVER,
            [0x10, 0x0F, 0x00, 0x04, "MQTT", 0x05, 0x02, 0x00, 0x3C, 0x02, 0x17, 0x02, 0x00, 0x00],
            bad_value("Request Problem Information", 2), 0x82, None),
        bad!("two Session Expiry Intervals in CONNECT", SERVER,
            [0x10, 0x17, 0x00, 0x04, "MQTT", 0x05, 0x02, 0x00, 0x3C,
             0x0A, 0x11, 0x00, 0x00, 0x00, 0x01, 0x11, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00],
            E::DuplicateProperty("Session Expiry Interval"), 0x82, None),

        // ---- First packet (§3.1) -------------------------------------------------------------------
        bad!("PUBLISH before CONNECT", SERVER, [0x30, 0x03, 0x00, 0x01, "t"],
            E::FirstPacketNotConnect(T::Publish), 0x82, Some("MQTT-3.1.0-1")),
        bad!("PINGREQ before CONNECT", SERVER, [0xC0, 0x00],
            E::FirstPacketNotConnect(T::PingReq), 0x82, Some("MQTT-3.1.0-1")),
        bad!("CONNACK before CONNECT", SERVER, [0x20, 0x02, 0x00, 0x00],
            E::FirstPacketNotConnect(T::ConnAck), 0x82, Some("MQTT-3.1.0-1")),
        bad!("AUTH before CONNECT", SERVER, [0xF0, 0x00],
            E::FirstPacketNotConnect(T::Auth), 0x82, Some("MQTT-3.1.0-1")),

        // ---- CONNACK (§3.2) ------------------------------------------------------------------------
        bad!("CONNACK reserved flag", V311, [0x20, 0x02, 0x02, 0x00],
            E::ConnAckReservedFlags, 0x81, Some("MQTT-3.2.2-1")),
        bad!("CONNACK reserved flag in MQTT 5", V50, [0x20, 0x03, 0x80, 0x00, 0x00],
            E::ConnAckReservedFlags, 0x81, Some("MQTT-3.2.2-1")),
        bad!("session present with return code 5", V311, [0x20, 0x02, 0x01, 0x05],
            E::SessionPresentOnFailure, 0x82, Some("MQTT-3.2.2-6")),
        bad!("session present with Not authorized", V50, [0x20, 0x03, 0x01, 0x87, 0x00],
            E::SessionPresentOnFailure, 0x82, Some("MQTT-3.2.2-6")),
        bad!("CONNACK return code 6", V311, [0x20, 0x02, 0x00, 0x06], invalid_code(T::ConnAck, 6), 0x81, None),
        bad!("CONNACK MQTT 5 code in MQTT 3.1.1", V311, [0x20, 0x02, 0x00, 0x87], invalid_code(T::ConnAck, 0x87), 0x81, None),
        bad!("CONNACK reason 0x10", V50, [0x20, 0x03, 0x00, 0x10, 0x00], invalid_code(T::ConnAck, 0x10), 0x81, None),
        bad!("Maximum QoS 2", V50, [0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02],
            bad_value("Maximum QoS", 2), 0x82, None),
        bad!("Receive Maximum 0 in CONNACK", V50, [0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00],
            bad_value("Receive Maximum", 0), 0x82, None),
        bad!("Maximum Packet Size 0 in CONNACK", V50, [0x20, 0x08, 0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00, 0x00],
            bad_value("Maximum Packet Size", 0), 0x82, None),
        bad!("Retain Available 2", V50, [0x20, 0x05, 0x00, 0x00, 0x02, 0x25, 0x02],
            bad_value("Retain Available", 2), 0x82, None),
        bad!("Topic Alias in CONNACK", V50, [0x20, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01],
            not_allowed("Topic Alias", "CONNACK"), 0x81, None),
        bad!("CONNACK without return code", V311, [0x20, 0x01, 0x00],
            truncated(T::ConnAck, "connect reason code"), 0x81, None),
        bad!("MQTT 5 CONNACK without property length", V50, [0x20, 0x02, 0x00, 0x00],
            truncated(T::ConnAck, "property length"), 0x81, None),
        bad!("MQTT 3.1.1 CONNACK with Remaining Length 3", V311, [0x20, 0x03, 0x00, 0x00, 0x00],
            trailing(T::ConnAck, 1), 0x81, None),

        // ---- PUBLISH properties (§3.3.2.3) -------------------------------------------------------
        bad!("two Message Expiry Intervals", V50,
            [0x30, 0x0E, 0x00, 0x01, "t", 0x0A, 0x02, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x02],
            E::DuplicateProperty("Message Expiry Interval"), 0x82, None),
        bad!("two Topic Aliases", V50,
            [0x30, 0x0A, 0x00, 0x01, "t", 0x06, 0x23, 0x00, 0x01, 0x23, 0x00, 0x02],
            E::DuplicateProperty("Topic Alias"), 0x82, None),
        bad!("Topic Alias 0", V50, [0x30, 0x07, 0x00, 0x01, "t", 0x03, 0x23, 0x00, 0x00],
            E::TopicAliasZero, 0x94, Some("MQTT-3.3.2-8")),
        bad!("Topic Alias 0 with an empty topic", V50, [0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x00],
            E::TopicAliasZero, 0x94, Some("MQTT-3.3.2-8")),
        bad!("Payload Format Indicator 2", V50, [0x30, 0x06, 0x00, 0x01, "t", 0x02, 0x01, 0x02],
            bad_value("Payload Format Indicator", 2), 0x82, None),
        bad!("Subscription Identifier 0 in PUBLISH", V50, [0x30, 0x06, 0x00, 0x01, "t", 0x02, 0x0B, 0x00],
            bad_value("Subscription Identifier", 0), 0x82, None),
        bad!("Response Topic with #", V50, [0x30, 0x0A, 0x00, 0x01, "t", 0x06, 0x08, 0x00, 0x03, "a/#"],
            E::InvalidResponseTopic(TopicError::WildcardInName), 0x82, Some("MQTT-3.3.2-14")),
        bad!("Response Topic with +", V50, [0x30, 0x08, 0x00, 0x01, "t", 0x04, 0x08, 0x00, 0x01, "+"],
            E::InvalidResponseTopic(TopicError::WildcardInName), 0x82, Some("MQTT-3.3.2-14")),
        bad!("empty Response Topic", V50, [0x30, 0x07, 0x00, 0x01, "t", 0x03, 0x08, 0x00, 0x00],
            E::InvalidResponseTopic(TopicError::Empty), 0x82, Some("MQTT-3.3.2-14")),
        bad!("unknown property 0x04", V50, [0x30, 0x06, 0x00, 0x01, "t", 0x02, 0x04, 0x00],
            E::UnknownProperty(0x04), 0x81, None),
        bad!("unknown property 0x2B", V50, [0x30, 0x06, 0x00, 0x01, "t", 0x02, 0x2B, 0x00],
            E::UnknownProperty(0x2B), 0x81, None),
        bad!("property identifier above 255", V50, [0x30, 0x07, 0x00, 0x01, "t", 0x03, 0x80, 0x02, 0x00],
            E::UnknownProperty(0xFF), 0x81, None),
        bad!("Server Keep Alive in PUBLISH", V50, [0x30, 0x07, 0x00, 0x01, "t", 0x03, 0x13, 0x00, 0x0A],
            not_allowed("Server Keep Alive", "PUBLISH"), 0x81, None),
        bad!("Will Delay Interval in PUBLISH", V50,
            [0x30, 0x09, 0x00, 0x01, "t", 0x05, 0x18, 0x00, 0x00, 0x00, 0x01],
            not_allowed("Will Delay Interval", "PUBLISH"), 0x81, None),
        bad!("property length beyond the packet", V50, [0x30, 0x05, 0x00, 0x01, "t", 0x05, 0x01],
            truncated(T::Publish, "properties"), 0x81, None),
        bad!("property value cut by the property length", V50,
            [0x30, 0x08, 0x00, 0x01, "t", 0x03, 0x02, 0x00, 0x00, 0x00],
            truncated(T::Publish, "Message Expiry Interval"), 0x81, None),
        bad!("User Property name that is not UTF-8", V50,
            [0x30, 0x0B, 0x00, 0x01, "t", 0x07, 0x26, 0x00, 0x01, 0xFF, 0x00, 0x01, "v"],
            E::InvalidUtf8("User Property"), 0x81, Some("MQTT-1.5.4-1")),
        bad!("Content Type with U+0000", V50, [0x30, 0x09, 0x00, 0x01, "t", 0x05, 0x03, 0x00, 0x02, "a", 0x00],
            E::NullCharacter("Content Type"), 0x81, Some("MQTT-1.5.4-2")),

        // ---- PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4–3.7) -------------------------------------------
        bad!("PUBACK with packet identifier 0", V311, [0x40, 0x02, 0x00, 0x00],
            E::ZeroPacketId(T::PubAck), 0x82, Some(ZERO_ID)),
        bad!("PUBCOMP with packet identifier 0", V50, [0x70, 0x02, 0x00, 0x00],
            E::ZeroPacketId(T::PubComp), 0x82, Some(ZERO_ID)),
        bad!("PUBACK reason 0x04", V50, [0x40, 0x03, 0x00, 0x01, 0x04], invalid_code(T::PubAck, 0x04), 0x81, None),
        bad!("PUBREC reason 0x92", V50, [0x50, 0x03, 0x00, 0x01, 0x92], invalid_code(T::PubRec, 0x92), 0x81, None),
        bad!("PUBREL reason 0x10", V50, [0x62, 0x03, 0x00, 0x01, 0x10], invalid_code(T::PubRel, 0x10), 0x81, None),
        bad!("PUBCOMP reason 0x80", V50, [0x70, 0x03, 0x00, 0x01, 0x80], invalid_code(T::PubComp, 0x80), 0x81, None),
        bad!("MQTT 3.1.1 PUBACK with Remaining Length 3", V311, [0x40, 0x03, 0x00, 0x01, 0x00],
            trailing(T::PubAck, 1), 0x81, None),
        bad!("MQTT 3.1 PUBREL with Remaining Length 4", V31, [0x62, 0x04, 0x00, 0x01, 0x00, 0x00],
            trailing(T::PubRel, 2), 0x81, None),
        bad!("PUBACK with Remaining Length 1", V311, [0x40, 0x01, 0x00],
            truncated(T::PubAck, "packet identifier"), 0x81, None),
        bad!("PUBACK property length beyond the packet", V50, [0x40, 0x04, 0x00, 0x01, 0x00, 0x05],
            truncated(T::PubAck, "properties"), 0x81, None),
        bad!("PUBACK with a byte after its properties", V50, [0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0xAA],
            trailing(T::PubAck, 1), 0x81, None),
        bad!("two Reason Strings in PUBACK", V50,
            [0x40, 0x0C, 0x00, 0x01, 0x80, 0x08, 0x1F, 0x00, 0x01, "a", 0x1F, 0x00, 0x01, "b"],
            E::DuplicateProperty("Reason String"), 0x82, None),
        bad!("Topic Alias in PUBACK", V50, [0x40, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01],
            not_allowed("Topic Alias", "PUBACK"), 0x81, None),

        // ---- SUBSCRIBE (§3.8) -----------------------------------------------------------------------
        bad!("SUBSCRIBE with packet identifier 0", V311, [0x82, 0x06, 0x00, 0x00, 0x00, 0x01, "a", 0x00],
            E::ZeroPacketId(T::Subscribe), 0x82, Some(ZERO_ID)),
        bad!("SUBSCRIBE with no filters", V311, [0x82, 0x02, 0x00, 0x01],
            E::NoTopicFilters { packet: T::Subscribe }, 0x82, Some("MQTT-3.8.3-2")),
        bad!("MQTT 5 SUBSCRIBE with no filters", V50, [0x82, 0x03, 0x00, 0x01, 0x00],
            E::NoTopicFilters { packet: T::Subscribe }, 0x82, Some("MQTT-3.8.3-2")),
        bad!("MQTT 3.1.1 subscription options with bit 2 set", V311, [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, "a", 0x04],
            E::SubscriptionOptionsReserved, 0x81, Some("MQTT-3.8.3-5")),
        bad!("MQTT 3.1 subscription options with bit 7 set", V31, [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, "a", 0x81],
            E::SubscriptionOptionsReserved, 0x81, Some("MQTT-3.8.3-5")),
        bad!("MQTT 5 subscription options with bit 6 set", V50, [0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, "a", 0x40],
            E::SubscriptionOptionsReserved, 0x81, Some("MQTT-3.8.3-5")),
        bad!("subscription QoS 3", V311, [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, "a", 0x03],
            E::SubscriptionQos3, 0x82, None),
        bad!("MQTT 5 subscription QoS 3", V50, [0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, "a", 0x07],
            E::SubscriptionQos3, 0x82, None),
        bad!("retain handling 3", V50, [0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, "a", 0x30],
            E::RetainHandling3, 0x82, None),
        bad!("no local on $share/g/x", V50, [0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A, "$share/g/x", 0x04],
            E::NoLocalOnSharedSubscription, 0x82, Some("MQTT-3.8.3-4")),
        bad!("filter a/#/b", V311, [0x82, 0x0A, 0x00, 0x01, 0x00, 0x05, "a/#/b", 0x00],
            E::TopicFilter(TopicError::MisplacedMultiLevelWildcard), 0x8F, Some("MQTT-4.7.1-1")),
        bad!("filter a+", V311, [0x82, 0x07, 0x00, 0x01, 0x00, 0x02, "a+", 0x00],
            E::TopicFilter(TopicError::MisplacedSingleLevelWildcard), 0x8F, Some("MQTT-4.7.1-2")),
        bad!("filter $share/g", V50, [0x82, 0x0E, 0x00, 0x01, 0x00, 0x00, 0x08, "$share/g", 0x00],
            E::TopicFilter(TopicError::MissingSharedFilter), 0x8F, Some("MQTT-4.8.2-2")),
        bad!("filter $share//x", V50, [0x82, 0x0F, 0x00, 0x01, 0x00, 0x00, 0x09, "$share//x", 0x00],
            E::TopicFilter(TopicError::EmptyShareName), 0x8F, Some("MQTT-4.8.2-1")),
        bad!("empty filter", V311, [0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00],
            E::TopicFilter(TopicError::Empty), 0x8F, Some("MQTT-4.7.3-1")),
        bad!("invalid second filter", V50,
            [0x82, 0x0C, 0x00, 0x01, 0x00, 0x00, 0x01, "a", 0x00, 0x00, 0x02, "##", 0x00],
            E::TopicFilter(TopicError::MisplacedMultiLevelWildcard), 0x8F, Some("MQTT-4.7.1-1")),
        bad!("filter without options", V311, [0x82, 0x05, 0x00, 0x01, 0x00, 0x01, "a"],
            truncated(T::Subscribe, "subscription options"), 0x81, None),
        bad!("two Subscription Identifiers in SUBSCRIBE", V50,
            [0x82, 0x0B, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, "a", 0x00],
            E::DuplicateProperty("Subscription Identifier"), 0x82, None),
        bad!("Subscription Identifier 0 in SUBSCRIBE", V50,
            [0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, "a", 0x00],
            bad_value("Subscription Identifier", 0), 0x82, None),
        bad!("Reason String in SUBSCRIBE", V50,
            [0x82, 0x0B, 0x00, 0x01, 0x04, 0x1F, 0x00, 0x01, "r", 0x00, 0x01, "a", 0x00],
            not_allowed("Reason String", "SUBSCRIBE"), 0x81, None),

        // ---- SUBACK, UNSUBSCRIBE, UNSUBACK (§3.9–3.11) -------------------------------------------
        bad!("MQTT 3.1.1 SUBACK return code 3", V311, [0x90, 0x03, 0x00, 0x01, 0x03],
            invalid_code(T::SubAck, 0x03), 0x81, None),
        bad!("MQTT 3.1.1 SUBACK with an MQTT 5 code", V311, [0x90, 0x03, 0x00, 0x01, 0x87],
            invalid_code(T::SubAck, 0x87), 0x81, None),
        bad!("MQTT 5 SUBACK reason 0x11", V50, [0x90, 0x04, 0x00, 0x01, 0x00, 0x11],
            invalid_code(T::SubAck, 0x11), 0x81, None),
        bad!("SUBACK without return codes", V311, [0x90, 0x02, 0x00, 0x01],
            E::NoReasonCodes { packet: T::SubAck }, 0x81, None),
        bad!("SUBACK with packet identifier 0", V50, [0x90, 0x04, 0x00, 0x00, 0x00, 0x00],
            E::ZeroPacketId(T::SubAck), 0x82, Some(ZERO_ID)),
        bad!("UNSUBSCRIBE with no filters", V311, [0xA2, 0x02, 0x00, 0x01],
            E::NoTopicFilters { packet: T::Unsubscribe }, 0x82, Some("MQTT-3.10.3-2")),
        bad!("MQTT 5 UNSUBSCRIBE with no filters", V50, [0xA2, 0x03, 0x00, 0x01, 0x00],
            E::NoTopicFilters { packet: T::Unsubscribe }, 0x82, Some("MQTT-3.10.3-2")),
        bad!("UNSUBSCRIBE with packet identifier 0", V311, [0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, "a"],
            E::ZeroPacketId(T::Unsubscribe), 0x82, Some(ZERO_ID)),
        bad!("UNSUBSCRIBE filter a/#/b", V311, [0xA2, 0x09, 0x00, 0x01, 0x00, 0x05, "a/#/b"],
            E::TopicFilter(TopicError::MisplacedMultiLevelWildcard), 0x8F, Some("MQTT-4.7.1-1")),
        bad!("UNSUBSCRIBE filter longer than the packet", V311, [0xA2, 0x05, 0x00, 0x01, 0x00, 0x03, "a"],
            truncated(T::Unsubscribe, "topic filter"), 0x81, None),
        bad!("MQTT 5 UNSUBACK without reason codes", V50, [0xB0, 0x03, 0x00, 0x01, 0x00],
            E::NoReasonCodes { packet: T::UnsubAck }, 0x81, None),
        bad!("UNSUBACK reason 0x01", V50, [0xB0, 0x04, 0x00, 0x01, 0x00, 0x01],
            invalid_code(T::UnsubAck, 0x01), 0x81, None),
        bad!("MQTT 3.1.1 UNSUBACK with Remaining Length 4", V311, [0xB0, 0x04, 0x00, 0x01, 0x00, 0x00],
            trailing(T::UnsubAck, 2), 0x81, None),

        // ---- PINGREQ, PINGRESP, DISCONNECT, AUTH --------------------------------------------------
        bad!("PINGREQ with Remaining Length 1", V311, [0xC0, 0x01, 0x00], trailing(T::PingReq, 1), 0x81, None),
        bad!("PINGRESP with Remaining Length 2", V50, [0xD0, 0x02, 0x00, 0x00], trailing(T::PingResp, 2), 0x81, None),
        bad!("MQTT 3.1.1 DISCONNECT with a body", V311, [0xE0, 0x01, 0x00], trailing(T::Disconnect, 1), 0x81, None),
        bad!("DISCONNECT reason 0x01", V50, [0xE0, 0x01, 0x01], invalid_code(T::Disconnect, 0x01), 0x81, None),
        bad!("Topic Alias in DISCONNECT", V50, [0xE0, 0x05, 0x00, 0x03, 0x23, 0x00, 0x01],
            not_allowed("Topic Alias", "DISCONNECT"), 0x81, None),
        bad!("DISCONNECT with a byte after its properties", V50, [0xE0, 0x03, 0x00, 0x00, 0x00],
            trailing(T::Disconnect, 1), 0x81, None),
        bad!("AUTH reason 0x01", V50, [0xF0, 0x01, 0x01], invalid_code(T::Auth, 0x01), 0x81, None),
        bad!("Session Expiry Interval in AUTH", V50, [0xF0, 0x07, 0x18, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01],
            not_allowed("Session Expiry Interval", "AUTH"), 0x81, None),
        bad!("two Authentication Methods in AUTH", V50,
            [0xF0, 0x0A, 0x18, 0x08, 0x15, 0x00, 0x01, "a", 0x15, 0x00, 0x01, "b"],
            E::DuplicateProperty("Authentication Method"), 0x82, None),

        // ---- Maximum Packet Size ---------------------------------------------------------------------
        bad!("PUBLISH of 20 bytes with a 16-byte maximum", Mode::Limit(V3_1_1, 16),
            [0x30, 0x12, 0x00, 0x01, "t", vec![0xAA; 15]],
            E::PacketTooLarge { size: 20, maximum: 16 }, 0x95, Some("MQTT-3.2.2-15")),
        bad!("PUBLISH of 203 bytes with a 100-byte maximum", Mode::Limit(V5, 100),
            [0x30, 0xC8, 0x01, 0x00, 0x01, "t", 0x00, vec![0xAA; 196]],
            E::PacketTooLarge { size: 203, maximum: 100 }, 0x95, Some("MQTT-3.2.2-15")),
        bad!("PINGREQ with a 1-byte maximum", Mode::Limit(V3_1_1, 1), [0xC0, 0x00],
            E::PacketTooLarge { size: 2, maximum: 1 }, 0x95, Some("MQTT-3.2.2-15")),
        bad!("one byte over the maximum", Mode::Limit(V5, 7), [0x30, 0x06, 0x00, 0x01, "t", 0x00, "xy"],
            E::PacketTooLarge { size: 8, maximum: 7 }, 0x95, Some("MQTT-3.2.2-15")),
        bad!("CONNECT larger than the server's maximum", Mode::Server(10),
            [0x10, 0x0C, 0x00, 0x04, "MQTT", 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00],
            E::PacketTooLarge { size: 14, maximum: 10 }, 0x95, Some("MQTT-3.2.2-15")),
    ]
}

/// The length of the fixed header at the start of `bytes`.
fn header_len(bytes: &[u8]) -> usize {
    1 + bytes[1..].iter().position(|b| b & 0x80 == 0).unwrap() + 1
}

#[test]
fn every_row_fails_with_its_error_reason_code_and_spec_id() {
    let mut failures = Vec::new();
    for row in rows() {
        let mut buf = BytesMut::from(&row.bytes[..]);
        let got = row.mode.decoder().decode(&mut buf);
        if got.as_ref() != Err(&row.error) {
            failures.push(format!(
                "{}: decoder gave {got:?}, expected {:?} ({})",
                row.name,
                row.error,
                hex(&row.bytes)
            ));
        }
        if let Mode::Version(v) = row.mode {
            let got = Packet::decode(&row.bytes, v);
            if got.as_ref() != Err(&row.error) {
                failures.push(format!("{}: Packet::decode gave {got:?}", row.name));
            }
        }
        if row.error.reason_code().0 != row.reason {
            failures.push(format!(
                "{}: reason code {}, expected 0x{:02X}",
                row.name,
                row.error.reason_code(),
                row.reason
            ));
        }
        if row.error.spec_id() != row.spec {
            failures.push(format!(
                "{}: spec id {:?}, expected {:?}",
                row.name,
                row.error.spec_id(),
                row.spec
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_row_split_at_every_offset_gives_the_same_error() {
    let mut failures = Vec::new();
    for row in rows() {
        let early = matches!(row.error, E::PacketTooLarge { .. }).then(|| header_len(&row.bytes));
        for at in 0..=row.bytes.len() {
            let mut decoder = row.mode.decoder();
            let mut buf = BytesMut::from(&row.bytes[..at]);
            let first = decoder.decode(&mut buf);
            let result = match first {
                Ok(None) => {
                    if early.is_some_and(|h| at >= h) {
                        failures.push(format!(
                            "{}: {at} bytes include the whole header but gave no error",
                            row.name
                        ));
                    }
                    buf.extend_from_slice(&row.bytes[at..]);
                    decoder.decode(&mut buf)
                }
                other => other,
            };
            if result.as_ref() != Err(&row.error) {
                failures.push(format!("{}: split at {at} gave {result:?}", row.name));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_row_fed_byte_by_byte_fails_once_and_not_before_it_must() {
    let mut failures = Vec::new();
    for row in rows() {
        let mut decoder = row.mode.decoder();
        let mut buf = BytesMut::new();
        let mut outcome = None;
        for (i, &b) in row.bytes.iter().enumerate() {
            buf.extend_from_slice(&[b]);
            match decoder.decode(&mut buf) {
                Ok(None) => {}
                other => {
                    outcome = Some((i + 1, other));
                    break;
                }
            }
        }
        match outcome {
            Some((_, Err(e))) if e == row.error => {}
            other => failures.push(format!("{}: byte by byte gave {other:?}", row.name)),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn too_large_packets_fail_from_the_fixed_header_alone() {
    for row in rows() {
        let E::PacketTooLarge { .. } = row.error else {
            continue;
        };
        let header = header_len(&row.bytes);
        let mut decoder = row.mode.decoder();
        let mut buf = BytesMut::from(&row.bytes[..header]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(row.error.clone()),
            "{}",
            row.name
        );
        // Nothing of the body was buffered or asked for.
        assert!(
            buf.capacity() < 64,
            "{}: reserved {} bytes",
            row.name,
            buf.capacity()
        );
    }
}

#[test]
fn first_packet_not_connect_fails_on_its_first_byte() {
    for row in rows() {
        let E::FirstPacketNotConnect(_) = row.error else {
            continue;
        };
        let mut buf = BytesMut::from(&row.bytes[..1]);
        assert_eq!(
            row.mode.decoder().decode(&mut buf),
            Err(row.error.clone()),
            "{}",
            row.name
        );
    }
}

/// The message of an error that cites a normative statement starts with it, and it is the one
/// `spec_id` returns.
#[test]
fn messages_cite_the_spec_id() {
    for row in rows() {
        let message = row.error.to_string();
        match row.error.spec_id() {
            Some(id) => assert!(
                message.starts_with(&format!("[{id}]")),
                "{}: {message:?} does not start with [{id}]",
                row.name
            ),
            None => assert!(
                !message.starts_with("[MQTT-"),
                "{}: {message:?} cites a statement but spec_id is None",
                row.name
            ),
        }
    }
}

/// A decoder that failed is not resynchronised: the connection must be closed. Check that the
/// error does not depend on what follows the bad packet in the buffer.
#[test]
fn trailing_garbage_does_not_change_the_error() {
    for row in rows() {
        let mut bytes = row.bytes.clone();
        bytes.extend_from_slice(&[0xC0, 0x00, 0xFF, 0xFF]);
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            row.mode.decoder().decode(&mut buf),
            Err(row.error.clone()),
            "{}",
            row.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Near misses that must be accepted.
// ---------------------------------------------------------------------------------------------

struct Good {
    name: &'static str,
    mode: Mode,
    bytes: Vec<u8>,
    packet: Packet,
}

macro_rules! good {
    ($name:literal, $mode:expr, [$($b:expr),* $(,)?], $packet:expr $(,)?) => {
        Good { name: $name, mode: $mode, bytes: wire![$($b),*], packet: $packet }
    };
}

fn publish_with(properties: Vec<Property>) -> Packet {
    Packet::Publish(Publish {
        properties: props(properties),
        ..Publish::new(name("t"), Bytes::new())
    })
}

#[rustfmt::skip]
fn accepted() -> Vec<Good> {
    vec![
        good!("repeated User Property in PUBLISH", V50,
            [0x30, 0x12, 0x00, 0x01, "t", 0x0E,
             0x26, 0x00, 0x01, "k", 0x00, 0x01, "a",
             0x26, 0x00, 0x01, "k", 0x00, 0x01, "b"],
            publish_with(vec![user("k", "a"), user("k", "b")])),
        good!("repeated Subscription Identifier in PUBLISH", V50,
            [0x30, 0x08, 0x00, 0x01, "t", 0x04, 0x0B, 0x01, 0x0B, 0x02],
            publish_with(vec![Property::SubscriptionIdentifier(1), Property::SubscriptionIdentifier(2)])),
        good!("repeated User Property in CONNACK", V50,
            [0x20, 0x0D, 0x00, 0x00, 0x0A, 0x26, 0x00, 0x00, 0x00, 0x00, 0x26, 0x00, 0x00, 0x00, 0x00],
            Packet::ConnAck(midge_proto::ConnAck {
                properties: props([user("", ""), user("", "")]),
                ..midge_proto::ConnAck::new(midge_proto::ReasonCode::SUCCESS, false)
            })),
        good!("one Subscription Identifier and two User Properties in SUBSCRIBE", V50,
            [0x82, 0x16, 0x00, 0x01, 0x0F, 0x26, 0x00, 0x01, "a", 0x00, 0x00, 0x0B, 0x05,
             0x26, 0x00, 0x01, "a", 0x00, 0x01, "b", 0x00, 0x01, "x", 0x00],
            Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                properties: props([user("a", ""), Property::SubscriptionIdentifier(5), user("a", "b")]),
                filters: vec![SubscribeFilter { filter: filter("x"), options: SubscriptionOptions::default() }],
            })),
        good!("no local on a filter that only looks shared", V50,
            [0x82, 0x11, 0x00, 0x01, 0x00, 0x00, 0x0B, "$sharex/g/x", 0x04],
            Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                properties: props([]),
                filters: vec![SubscribeFilter {
                    filter: filter("$sharex/g/x"),
                    options: SubscriptionOptions { no_local: true, ..SubscriptionOptions::default() },
                }],
            })),
        good!("shared subscription without no local", V50,
            [0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A, "$share/g/#", 0x2A],
            Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                properties: props([]),
                filters: vec![SubscribeFilter {
                    filter: filter("$share/g/#"),
                    options: SubscriptionOptions {
                        qos: QoS::ExactlyOnce,
                        no_local: false,
                        retain_as_published: true,
                        retain_handling: RetainHandling::DoNotSend,
                    },
                }],
            })),
        good!("MQTT 5 password without user name", SERVER,
            [0x10, 0x10, 0x00, 0x04, "MQTT", 0x05, 0x42, 0x00, 0x3C, 0x00, 0x00, 0x00, 0x00, 0x01, "p"],
            Packet::from(Connect {
                password: Some(Bytes::from_static(b"p")),
                ..Connect::new(V5, "")
            })),
        good!("empty topic with a Topic Alias", V50, [0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0xFF, 0xFF],
            Packet::Publish(Publish {
                properties: props([Property::TopicAlias(0xFFFF)]),
                ..Publish::new(TopicName::empty_for_alias(), Bytes::new())
            })),
        good!("Maximum QoS 1 and Receive Maximum 1", V50,
            [0x20, 0x08, 0x00, 0x00, 0x05, 0x24, 0x01, 0x21, 0x00, 0x01],
            Packet::ConnAck(midge_proto::ConnAck {
                properties: props([Property::MaximumQoS(QoS::AtLeastOnce), Property::ReceiveMaximum(1)]),
                ..midge_proto::ConnAck::new(midge_proto::ReasonCode::SUCCESS, false)
            })),
        good!("packet exactly at the maximum size", Mode::Limit(V3_1_1, 20),
            [0x30, 0x12, 0x00, 0x01, "t", vec![0xAA; 15]],
            Packet::Publish(Publish::new(name("t"), Bytes::from(vec![0xAA; 15])))),
        good!("a U+FEFF byte order mark is kept in a topic", V311,
            [0x30, 0x05, 0x00, 0x03, 0xEF, 0xBB, 0xBF],
            Packet::Publish(Publish::new(name("\u{FEFF}"), Bytes::new()))),
    ]
}

#[test]
fn near_misses_are_accepted_whatever_the_split() {
    for good in accepted() {
        for at in 0..=good.bytes.len() {
            let mut decoder = good.mode.decoder();
            let mut buf = BytesMut::from(&good.bytes[..at]);
            let mut got = decoder.decode(&mut buf);
            if at < good.bytes.len() {
                assert_eq!(got, Ok(None), "{}: split at {at}", good.name);
                buf.extend_from_slice(&good.bytes[at..]);
                got = decoder.decode(&mut buf);
            }
            assert_eq!(
                got,
                Ok(Some(good.packet.clone())),
                "{}: split at {at}",
                good.name
            );
            assert!(buf.is_empty(), "{}", good.name);
        }
        if let Mode::Version(v) = good.mode {
            // Every accepted form here is also the canonical encoding.
            assert_eq!(
                hex(&good.packet.to_bytes(v).unwrap()),
                hex(&good.bytes),
                "{}",
                good.name
            );
        }
    }
}

#[test]
fn a_server_decoder_takes_its_version_from_connect() {
    // After an MQTT 3.1.1 CONNECT, AUTH is a reserved packet type; after MQTT 5 it is not.
    let v311 = wire![
        0x10, 0x0C, 0x00, 0x04, "MQTT", 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00, 0xF0, 0x00
    ];
    let mut decoder = Decoder::server(1024);
    let mut buf = BytesMut::from(&v311[..]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Packet::Connect(_)))
    ));
    assert_eq!(decoder.version(), Some(V3_1_1));
    assert_eq!(decoder.decode(&mut buf), Err(E::ReservedPacketType(15)));

    let v5 = wire![
        0x10, 0x0D, 0x00, 0x04, "MQTT", 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x00, 0xF0, 0x00
    ];
    let mut decoder = Decoder::server(1024);
    let mut buf = BytesMut::from(&v5[..]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Packet::Connect(_)))
    ));
    assert_eq!(decoder.version(), Some(V5));
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(Packet::Auth(midge_proto::Auth::new(
            midge_proto::ReasonCode::SUCCESS
        ))))
    );
}
