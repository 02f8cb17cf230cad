//! Typed errors of the codec. Each decode error names the normative statement it enforces
//! (where the specification gives one) and the Reason Code a receiver must answer with.

use thiserror::Error;

use crate::packet::PacketType;
use crate::reason::ReasonCode;
use crate::topic::TopicError;

/// Why bytes from the network could not be decoded into a packet.
///
/// A server answers an MQTT 5 client with a DISCONNECT carrying [`DecodeError::reason_code`]
/// (or a CONNACK, during CONNECT) and closes the connection; an MQTT 3 client's connection is
/// simply closed (MQTT 3.1.1 §4.8).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A Variable Byte Integer used a fifth byte.
    #[error("[MQTT-1.5.5-1] variable byte integer is longer than four bytes")]
    VarIntTooLong,
    /// A Variable Byte Integer was not encoded in the fewest bytes.
    #[error("[MQTT-1.5.5-1] variable byte integer does not use the minimum number of bytes")]
    VarIntNotMinimal,
    /// The packet is larger than the receiver's Maximum Packet Size. Detected from the fixed
    /// header, before the body is buffered.
    #[error(
        "[MQTT-3.2.2-15] packet of {size} bytes exceeds the maximum packet size of {maximum} bytes"
    )]
    PacketTooLarge {
        /// Total size of the packet (fixed header included).
        size: usize,
        /// The limit in force.
        maximum: u32,
    },
    /// The Remaining Length ended before a field the packet needs.
    #[error("malformed packet: {packet} ended before its {field}")]
    Truncated {
        /// The packet being decoded.
        packet: PacketType,
        /// The field that did not fit.
        field: &'static str,
    },
    /// Bytes remain after the packet's last field.
    #[error("malformed packet: {packet} has {extra} unexpected bytes after its last field")]
    TrailingBytes {
        /// The packet being decoded.
        packet: PacketType,
        /// How many bytes were left over.
        extra: usize,
    },
    /// The packet type nibble is reserved (0, or 15 before MQTT 5).
    #[error("[MQTT-2.1.3-1] reserved control packet type {0}")]
    ReservedPacketType(u8),
    /// Fixed-header flags differ from the ones the packet type requires.
    #[error(
        "[MQTT-2.1.3-1] {packet} fixed header flags are 0b{flags:04b}, must be 0b{required:04b}"
    )]
    InvalidFixedHeaderFlags {
        /// The packet type.
        packet: PacketType,
        /// The flags received.
        flags: u8,
        /// The flags required.
        required: u8,
    },
    /// PUBLISH with both QoS bits set.
    #[error("[MQTT-3.3.1-4] PUBLISH has QoS 3")]
    PublishQos3,
    /// PUBLISH with DUP set at QoS 0.
    #[error("[MQTT-3.3.1-2] PUBLISH has DUP set with QoS 0")]
    DupWithQos0,
    /// A Packet Identifier of zero where one is required.
    #[error("[MQTT-2.2.1-3] {0} has packet identifier 0")]
    ZeroPacketId(PacketType),
    /// A UTF-8 string that is not well-formed (this includes encoded surrogates).
    #[error("[MQTT-1.5.4-1] {0} is not well-formed UTF-8")]
    InvalidUtf8(&'static str),
    /// A UTF-8 string containing U+0000.
    #[error("[MQTT-1.5.4-2] {0} contains the null character U+0000")]
    NullCharacter(&'static str),
    /// CONNECT with a protocol name other than `MQTT` (levels 4, 5) or `MQIsdp` (level 3).
    #[error("[MQTT-3.1.2-1] protocol name {name:?} does not match protocol level {level}")]
    InvalidProtocolName {
        /// The name received (lossy).
        name: String,
        /// The level received.
        level: u8,
    },
    /// CONNECT with a protocol level Midge does not speak.
    #[error("[MQTT-3.1.2-2] unsupported protocol level {0}")]
    UnsupportedProtocolLevel(u8),
    /// CONNECT with its reserved flag set.
    #[error("[MQTT-3.1.2-3] CONNECT reserved flag is set")]
    ConnectReservedFlag,
    /// CONNECT with Will QoS set but no Will Flag.
    #[error("[MQTT-3.1.2-11] will QoS is set without the will flag")]
    WillFlagsWithoutWill,
    /// CONNECT with Will QoS 3.
    #[error("[MQTT-3.1.2-12] will QoS is 3")]
    WillQos3,
    /// MQTT 3.x CONNECT with a password but no user name.
    #[error("[MQTT-3.1.2-22] password flag is set without the user name flag")]
    PasswordWithoutUsername,
    /// A packet other than CONNECT arrived before CONNECT.
    #[error("[MQTT-3.1.0-1] the first packet must be CONNECT, got {0}")]
    FirstPacketNotConnect(PacketType),
    /// CONNACK with reserved acknowledge flags set.
    #[error("[MQTT-3.2.2-1] CONNACK reserved flags are set")]
    ConnAckReservedFlags,
    /// CONNACK with Session Present set together with a failure.
    #[error("[MQTT-3.2.2-6] CONNACK has session present set with a failure reason code")]
    SessionPresentOnFailure,
    /// A reason or return code the specification does not allow in this packet.
    #[error("{packet} carries reason code 0x{code:02X}, which is not valid there")]
    InvalidReasonCode {
        /// The packet type.
        packet: PacketType,
        /// The code received.
        code: u8,
    },
    /// An invalid Topic Name (PUBLISH, Will Topic).
    #[error("{0}")]
    TopicName(TopicError),
    /// An invalid Topic Filter (SUBSCRIBE, UNSUBSCRIBE).
    #[error("{0}")]
    TopicFilter(TopicError),
    /// SUBSCRIBE or UNSUBSCRIBE without any topic filter.
    #[error("[{}] {packet} has no topic filters", if matches!(packet, PacketType::Subscribe) { "MQTT-3.8.3-2" } else { "MQTT-3.10.3-2" })]
    NoTopicFilters {
        /// SUBSCRIBE or UNSUBSCRIBE.
        packet: PacketType,
    },
    /// SUBACK or UNSUBACK (MQTT 5) without any reason code.
    #[error("malformed packet: {packet} has no reason codes")]
    NoReasonCodes {
        /// SUBACK or UNSUBACK.
        packet: PacketType,
    },
    /// Reserved bits of the Subscription Options byte are set.
    #[error("[MQTT-3.8.3-5] reserved bits of the subscription options are set")]
    SubscriptionOptionsReserved,
    /// A subscription requested QoS 3.
    #[error("protocol error: subscription requests QoS 3 (MQTT 5.0 §3.8.3.1)")]
    SubscriptionQos3,
    /// Retain Handling of 3.
    #[error("protocol error: retain handling is 3 (MQTT 5.0 §3.8.3.1)")]
    RetainHandling3,
    /// No Local set on a shared subscription.
    #[error("[MQTT-3.8.3-4] no local is set on a shared subscription")]
    NoLocalOnSharedSubscription,
    /// A property identifier that does not exist.
    #[error("malformed packet: unknown property identifier 0x{0:02X}")]
    UnknownProperty(u8),
    /// A property that may not appear in this packet.
    #[error("malformed packet: property {property} is not allowed in {context}")]
    PropertyNotAllowed {
        /// The property's name.
        property: &'static str,
        /// Where it appeared.
        context: &'static str,
    },
    /// A property other than User Property (or, in PUBLISH, Subscription Identifier) that
    /// appears more than once.
    #[error("protocol error: property {0} appears more than once (MQTT 5.0 §2.2.2.2)")]
    DuplicateProperty(&'static str),
    /// A property with a value the specification forbids (for example Receive Maximum 0).
    #[error("protocol error: property {property} has the invalid value {value}")]
    InvalidPropertyValue {
        /// The property's name.
        property: &'static str,
        /// The value received.
        value: u32,
    },
    /// A Topic Alias of 0.
    #[error("[MQTT-3.3.2-8] topic alias is 0")]
    TopicAliasZero,
    /// A Response Topic that contains wildcards or is empty.
    #[error("[MQTT-3.3.2-14] response topic is not a valid topic name: {0}")]
    InvalidResponseTopic(TopicError),
    /// A v5 PUBLISH with a zero-length Topic Name and no Topic Alias.
    #[error(
        "protocol error: PUBLISH has an empty topic name and no topic alias (MQTT 5.0 §3.3.2.1)"
    )]
    EmptyTopicWithoutAlias,
    /// CONNECT with Will Retain set but no Will Flag.
    #[error("[MQTT-3.1.2-13] will retain is set without the will flag")]
    WillRetainWithoutWill,
    /// Authentication Data without an Authentication Method.
    #[error(
        "protocol error: authentication data without an authentication method (MQTT 5.0 §3.1.2.11.10)"
    )]
    AuthDataWithoutMethod,
}

impl DecodeError {
    /// The Reason Code the receiver must send (MQTT 5.0 §4.13).
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            InvalidProtocolName { .. } | UnsupportedProtocolLevel(_) => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            TopicName(_) => ReasonCode::TOPIC_NAME_INVALID,
            TopicFilter(_) => ReasonCode::TOPIC_FILTER_INVALID,
            TopicAliasZero => ReasonCode::TOPIC_ALIAS_INVALID,
            ZeroPacketId(_)
            | FirstPacketNotConnect(_)
            | SessionPresentOnFailure
            | NoTopicFilters { .. }
            | SubscriptionQos3
            | RetainHandling3
            | NoLocalOnSharedSubscription
            | DuplicateProperty(_)
            | InvalidPropertyValue { .. }
            | InvalidResponseTopic(_)
            | EmptyTopicWithoutAlias
            | AuthDataWithoutMethod => ReasonCode::PROTOCOL_ERROR,
            VarIntTooLong
            | VarIntNotMinimal
            | Truncated { .. }
            | TrailingBytes { .. }
            | ReservedPacketType(_)
            | InvalidFixedHeaderFlags { .. }
            | PublishQos3
            | DupWithQos0
            | InvalidUtf8(_)
            | NullCharacter(_)
            | ConnectReservedFlag
            | WillFlagsWithoutWill
            | WillRetainWithoutWill
            | WillQos3
            | PasswordWithoutUsername
            | ConnAckReservedFlags
            | InvalidReasonCode { .. }
            | NoReasonCodes { .. }
            | SubscriptionOptionsReserved
            | UnknownProperty(_)
            | PropertyNotAllowed { .. } => ReasonCode::MALFORMED_PACKET,
        }
    }

    /// The normative statement this error enforces, e.g. `"MQTT-3.3.1-4"`, when the
    /// specification numbers one.
    pub fn spec_id(&self) -> Option<&'static str> {
        use DecodeError::*;
        Some(match self {
            VarIntTooLong | VarIntNotMinimal => "MQTT-1.5.5-1",
            PacketTooLarge { .. } => "MQTT-3.2.2-15",
            ReservedPacketType(_) | InvalidFixedHeaderFlags { .. } => "MQTT-2.1.3-1",
            PublishQos3 => "MQTT-3.3.1-4",
            DupWithQos0 => "MQTT-3.3.1-2",
            ZeroPacketId(_) => "MQTT-2.2.1-3",
            InvalidUtf8(_) => "MQTT-1.5.4-1",
            NullCharacter(_) => "MQTT-1.5.4-2",
            InvalidProtocolName { .. } => "MQTT-3.1.2-1",
            UnsupportedProtocolLevel(_) => "MQTT-3.1.2-2",
            ConnectReservedFlag => "MQTT-3.1.2-3",
            WillFlagsWithoutWill => "MQTT-3.1.2-11",
            WillRetainWithoutWill => "MQTT-3.1.2-13",
            WillQos3 => "MQTT-3.1.2-12",
            PasswordWithoutUsername => "MQTT-3.1.2-22",
            FirstPacketNotConnect(_) => "MQTT-3.1.0-1",
            ConnAckReservedFlags => "MQTT-3.2.2-1",
            SessionPresentOnFailure => "MQTT-3.2.2-6",
            TopicName(e) | TopicFilter(e) => e.spec_id(),
            InvalidResponseTopic(_) => "MQTT-3.3.2-14",
            NoTopicFilters {
                packet: PacketType::Subscribe,
            } => "MQTT-3.8.3-2",
            NoTopicFilters { .. } => "MQTT-3.10.3-2",
            SubscriptionOptionsReserved => "MQTT-3.8.3-5",
            NoLocalOnSharedSubscription => "MQTT-3.8.3-4",
            TopicAliasZero => "MQTT-3.3.2-8",
            _ => return None,
        })
    }
}

/// Why a packet could not be encoded. Encoding never produces bytes a conforming receiver
/// would reject.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string or binary field longer than 65,535 bytes.
    #[error("{field} is {len} bytes; the limit is 65535")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The packet's Remaining Length would exceed 268,435,455 bytes.
    #[error("packet body of {0} bytes exceeds the protocol limit of 268435455")]
    PacketTooLarge(usize),
    /// A PUBLISH at QoS 1 or 2 without a Packet Identifier.
    #[error("QoS {0} PUBLISH needs a packet identifier")]
    MissingPacketId(crate::QoS),
    /// A property that may not appear in this packet.
    #[error("property {property} is not allowed in {context}")]
    PropertyNotAllowed {
        /// The property's name.
        property: &'static str,
        /// Where it was placed.
        context: &'static str,
    },
    /// A property that may appear once, given twice.
    #[error("property {0} may appear only once")]
    DuplicateProperty(&'static str),
    /// SUBSCRIBE, UNSUBSCRIBE or (MQTT 5) SUBACK/UNSUBACK with an empty list.
    #[error("{0} needs at least one entry")]
    EmptyList(PacketType),
    /// A packet that does not exist in the target protocol version (AUTH before MQTT 5).
    #[error("{0} is not part of MQTT {1}")]
    NotInVersion(PacketType, crate::ProtocolVersion),
    /// A packet the receiver would reject as a protocol violation.
    #[error("invalid packet: {0}")]
    Invalid(&'static str),
    /// A property value the specification forbids (Subscription Identifier 0, Receive
    /// Maximum 0, …).
    #[error("property {property} may not have the value {value}")]
    InvalidPropertyValue {
        /// The property's name.
        property: &'static str,
        /// The offending value.
        value: u32,
    },
}
