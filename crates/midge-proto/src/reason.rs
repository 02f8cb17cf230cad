//! Reason Codes (MQTT 5.0 §2.4) and their mapping to MQTT 3.1.1 return codes.
//!
//! One type serves both versions: MQTT 3.x CONNACK return codes and SUBACK return codes are
//! decoded into the equivalent MQTT 5 Reason Code and mapped back down when encoding, so the
//! broker and client speak one vocabulary.

use std::fmt;

use crate::packet::PacketType;

/// An MQTT 5 Reason Code: a one-byte result of an operation.
///
/// Several names share the value `0x00` (Success, Normal disconnection, Granted QoS 0);
/// all of them are provided as constants.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReasonCode(pub u8);

macro_rules! reason_codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, $text:literal, [$($pt:ident),*]; )*) => {
        impl ReasonCode {
            $( $(#[$doc])* pub const $name: ReasonCode = ReasonCode($value); )*

            /// The name the specification gives this code in the context of `packet`,
            /// or `None` if the code is not valid in that packet.
            pub fn name_in(self, packet: PacketType) -> Option<&'static str> {
                $( if self.0 == $value && [$(PacketType::$pt),*].contains(&packet) { return Some($text); } )*
                None
            }

            /// Whether the specification lists this code for `packet` (MQTT 5.0 §2.4, Table 2-6).
            pub fn is_valid_for(self, packet: PacketType) -> bool {
                self.name_in(packet).is_some()
            }

            /// A human-readable name for the code, independent of the packet.
            pub fn name(self) -> &'static str {
                $( if self.0 == $value { return $text; } )*
                "Unknown reason code"
            }
        }
    };
}

reason_codes! {
    /// 0x00 Success.
    SUCCESS = 0x00, "Success", [ConnAck, PubAck, PubRec, PubRel, PubComp, UnsubAck, Auth];
    /// 0x00 Normal disconnection.
    NORMAL_DISCONNECTION = 0x00, "Normal disconnection", [Disconnect];
    /// 0x00 Granted QoS 0.
    GRANTED_QOS_0 = 0x00, "Granted QoS 0", [SubAck];
    /// 0x01 Granted QoS 1.
    GRANTED_QOS_1 = 0x01, "Granted QoS 1", [SubAck];
    /// 0x02 Granted QoS 2.
    GRANTED_QOS_2 = 0x02, "Granted QoS 2", [SubAck];
    /// 0x04 Disconnect with Will Message.
    DISCONNECT_WITH_WILL_MESSAGE = 0x04, "Disconnect with Will Message", [Disconnect];
    /// 0x10 No matching subscribers.
    NO_MATCHING_SUBSCRIBERS = 0x10, "No matching subscribers", [PubAck, PubRec];
    /// 0x11 No subscription existed.
    NO_SUBSCRIPTION_EXISTED = 0x11, "No subscription existed", [UnsubAck];
    /// 0x18 Continue authentication.
    CONTINUE_AUTHENTICATION = 0x18, "Continue authentication", [Auth];
    /// 0x19 Re-authenticate.
    RE_AUTHENTICATE = 0x19, "Re-authenticate", [Auth];
    /// 0x80 Unspecified error.
    UNSPECIFIED_ERROR = 0x80, "Unspecified error", [ConnAck, PubAck, PubRec, SubAck, UnsubAck, Disconnect];
    /// 0x81 Malformed Packet.
    MALFORMED_PACKET = 0x81, "Malformed Packet", [ConnAck, Disconnect];
    /// 0x82 Protocol Error.
    PROTOCOL_ERROR = 0x82, "Protocol Error", [ConnAck, Disconnect];
    /// 0x83 Implementation specific error.
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83, "Implementation specific error", [ConnAck, PubAck, PubRec, SubAck, UnsubAck, Disconnect];
    /// 0x84 Unsupported Protocol Version.
    UNSUPPORTED_PROTOCOL_VERSION = 0x84, "Unsupported Protocol Version", [ConnAck];
    /// 0x85 Client Identifier not valid.
    CLIENT_IDENTIFIER_NOT_VALID = 0x85, "Client Identifier not valid", [ConnAck];
    /// 0x86 Bad User Name or Password.
    BAD_USER_NAME_OR_PASSWORD = 0x86, "Bad User Name or Password", [ConnAck];
    /// 0x87 Not authorized.
    NOT_AUTHORIZED = 0x87, "Not authorized", [ConnAck, PubAck, PubRec, SubAck, UnsubAck, Disconnect];
    /// 0x88 Server unavailable.
    SERVER_UNAVAILABLE = 0x88, "Server unavailable", [ConnAck];
    /// 0x89 Server busy.
    SERVER_BUSY = 0x89, "Server busy", [ConnAck, Disconnect];
    /// 0x8A Banned.
    BANNED = 0x8A, "Banned", [ConnAck];
    /// 0x8B Server shutting down.
    SERVER_SHUTTING_DOWN = 0x8B, "Server shutting down", [Disconnect];
    /// 0x8C Bad authentication method.
    BAD_AUTHENTICATION_METHOD = 0x8C, "Bad authentication method", [ConnAck, Disconnect];
    /// 0x8D Keep Alive timeout.
    KEEP_ALIVE_TIMEOUT = 0x8D, "Keep Alive timeout", [Disconnect];
    /// 0x8E Session taken over.
    SESSION_TAKEN_OVER = 0x8E, "Session taken over", [Disconnect];
    /// 0x8F Topic Filter invalid.
    TOPIC_FILTER_INVALID = 0x8F, "Topic Filter invalid", [SubAck, UnsubAck, Disconnect];
    /// 0x90 Topic Name invalid.
    TOPIC_NAME_INVALID = 0x90, "Topic Name invalid", [ConnAck, PubAck, PubRec, Disconnect];
    /// 0x91 Packet Identifier in use.
    PACKET_IDENTIFIER_IN_USE = 0x91, "Packet Identifier in use", [PubAck, PubRec, SubAck, UnsubAck];
    /// 0x92 Packet Identifier not found.
    PACKET_IDENTIFIER_NOT_FOUND = 0x92, "Packet Identifier not found", [PubRel, PubComp];
    /// 0x93 Receive Maximum exceeded.
    RECEIVE_MAXIMUM_EXCEEDED = 0x93, "Receive Maximum exceeded", [Disconnect];
    /// 0x94 Topic Alias invalid.
    TOPIC_ALIAS_INVALID = 0x94, "Topic Alias invalid", [Disconnect];
    /// 0x95 Packet too large.
    PACKET_TOO_LARGE = 0x95, "Packet too large", [ConnAck, Disconnect];
    /// 0x96 Message rate too high.
    MESSAGE_RATE_TOO_HIGH = 0x96, "Message rate too high", [Disconnect];
    /// 0x97 Quota exceeded.
    QUOTA_EXCEEDED = 0x97, "Quota exceeded", [ConnAck, PubAck, PubRec, SubAck, Disconnect];
    /// 0x98 Administrative action.
    ADMINISTRATIVE_ACTION = 0x98, "Administrative action", [Disconnect];
    /// 0x99 Payload format invalid.
    PAYLOAD_FORMAT_INVALID = 0x99, "Payload format invalid", [ConnAck, PubAck, PubRec, Disconnect];
    /// 0x9A Retain not supported.
    RETAIN_NOT_SUPPORTED = 0x9A, "Retain not supported", [ConnAck, Disconnect];
    /// 0x9B QoS not supported.
    QOS_NOT_SUPPORTED = 0x9B, "QoS not supported", [ConnAck, Disconnect];
    /// 0x9C Use another server.
    USE_ANOTHER_SERVER = 0x9C, "Use another server", [ConnAck, Disconnect];
    /// 0x9D Server moved.
    SERVER_MOVED = 0x9D, "Server moved", [ConnAck, Disconnect];
    /// 0x9E Shared Subscriptions not supported.
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E, "Shared Subscriptions not supported", [SubAck, Disconnect];
    /// 0x9F Connection rate exceeded.
    CONNECTION_RATE_EXCEEDED = 0x9F, "Connection rate exceeded", [ConnAck, Disconnect];
    /// 0xA0 Maximum connect time.
    MAXIMUM_CONNECT_TIME = 0xA0, "Maximum connect time", [Disconnect];
    /// 0xA1 Subscription Identifiers not supported.
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1, "Subscription Identifiers not supported", [SubAck, Disconnect];
    /// 0xA2 Wildcard Subscriptions not supported.
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2, "Wildcard Subscriptions not supported", [SubAck, Disconnect];
}

impl ReasonCode {
    /// Codes of 0x80 and above indicate failure (MQTT 5.0 §2.4).
    pub const fn is_error(self) -> bool {
        self.0 >= 0x80
    }

    /// The MQTT 3.1 / 3.1.1 CONNACK return code for this reason, or `None` when MQTT 3
    /// has no CONNACK for it and the server closes the connection without one (for example
    /// a malformed CONNECT, MQTT 3.1.1 §3.2.2.3).
    ///
    /// | v5 | v3 |
    /// |---|---|
    /// | 0x00 Success | 0 Connection Accepted |
    /// | 0x84 Unsupported Protocol Version | 1 unacceptable protocol version |
    /// | 0x85 Client Identifier not valid | 2 identifier rejected |
    /// | 0x80, 0x83, 0x88, 0x89, 0x97, 0x9C, 0x9D, 0x9F | 3 Server unavailable |
    /// | 0x86 Bad User Name or Password | 4 bad user name or password |
    /// | 0x87, 0x8A, 0x8C | 5 not authorized |
    pub const fn to_v3_connack(self) -> Option<u8> {
        match self.0 {
            0x00 => Some(0),
            0x84 => Some(1),
            0x85 => Some(2),
            0x80 | 0x83 | 0x88 | 0x89 | 0x97 | 0x9C | 0x9D | 0x9F => Some(3),
            0x86 => Some(4),
            0x87 | 0x8A | 0x8C => Some(5),
            _ => None,
        }
    }

    /// The MQTT 5 Reason Code for an MQTT 3.1 / 3.1.1 CONNACK return code (0–5), the
    /// inverse of [`ReasonCode::to_v3_connack`] on its canonical values.
    pub const fn from_v3_connack(code: u8) -> Option<ReasonCode> {
        match code {
            0 => Some(ReasonCode::SUCCESS),
            1 => Some(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
            2 => Some(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
            3 => Some(ReasonCode::SERVER_UNAVAILABLE),
            4 => Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
            5 => Some(ReasonCode::NOT_AUTHORIZED),
            _ => None,
        }
    }

    /// The MQTT 3.1.1 SUBACK return code: granted QoS 0–2 as is, every failure as 0x80
    /// (MQTT 3.1.1 §3.9.3).
    pub const fn to_v3_suback(self) -> u8 {
        if self.0 <= 2 { self.0 } else { 0x80 }
    }
}

impl fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReasonCode(0x{:02X} {})", self.0, self.name())
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:02X} ({})", self.0, self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_connack_mapping_round_trips_canonical_codes() {
        for code in 0..=5u8 {
            let reason = ReasonCode::from_v3_connack(code).expect("valid v3 code");
            assert_eq!(reason.to_v3_connack(), Some(code));
        }
        assert_eq!(ReasonCode::from_v3_connack(6), None);
        assert_eq!(ReasonCode::SERVER_BUSY.to_v3_connack(), Some(3));
        assert_eq!(ReasonCode::BANNED.to_v3_connack(), Some(5));
        assert_eq!(ReasonCode::MALFORMED_PACKET.to_v3_connack(), None);
    }

    #[test]
    fn validity_follows_table_2_6() {
        assert!(ReasonCode::SESSION_TAKEN_OVER.is_valid_for(PacketType::Disconnect));
        assert!(!ReasonCode::SESSION_TAKEN_OVER.is_valid_for(PacketType::ConnAck));
        assert!(ReasonCode(0x00).is_valid_for(PacketType::SubAck));
        assert!(!ReasonCode(0x04).is_valid_for(PacketType::PubAck));
        assert_eq!(
            ReasonCode(0x00).name_in(PacketType::Disconnect),
            Some("Normal disconnection")
        );
        assert_eq!(ReasonCode::QUOTA_EXCEEDED.to_v3_suback(), 0x80);
        assert_eq!(ReasonCode::GRANTED_QOS_2.to_v3_suback(), 2);
    }
}
