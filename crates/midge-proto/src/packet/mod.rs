//! The packet model: one set of types for MQTT 3.1, 3.1.1 and 5.0.
//!
//! MQTT 5 is a superset of MQTT 3.x, so every packet is modelled as its MQTT 5 form. When a
//! packet is encoded for MQTT 3.x, fields that version cannot carry (properties, most reason
//! codes) are left out; when an MQTT 3.x packet is decoded, they take their MQTT 5 defaults
//! (no properties, reason code Success). See [`crate::wire`] for the byte layouts.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod subscribe;

pub use ack::{PublishAck, SubAck, UnsubAck};
pub use auth::Auth;
pub use connack::ConnAck;
pub use connect::{Connect, Will};
pub use disconnect::Disconnect;
pub use publish::Publish;
pub use subscribe::{RetainHandling, Subscribe, SubscribeFilter, SubscriptionOptions, Unsubscribe};

use std::fmt;

/// The protocol level a connection speaks, fixed by its CONNECT packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V3_1_1,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolVersion {
    /// The Protocol Level byte of CONNECT.
    pub const fn level(self) -> u8 {
        match self {
            ProtocolVersion::V3_1 => 3,
            ProtocolVersion::V3_1_1 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// The Protocol Name of CONNECT.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            ProtocolVersion::V3_1 => "MQIsdp",
            _ => "MQTT",
        }
    }

    /// The version for a Protocol Level byte (3, 4 or 5).
    pub const fn from_level(level: u8) -> Option<ProtocolVersion> {
        match level {
            3 => Some(ProtocolVersion::V3_1),
            4 => Some(ProtocolVersion::V3_1_1),
            5 => Some(ProtocolVersion::V5),
            _ => None,
        }
    }

    /// Whether this version has properties and reason codes.
    pub const fn is_v5(self) -> bool {
        matches!(self, ProtocolVersion::V5)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtocolVersion::V3_1 => "3.1",
            ProtocolVersion::V3_1_1 => "3.1.1",
            ProtocolVersion::V5 => "5.0",
        })
    }
}

/// The MQTT Control Packet type: the high nibble of the fixed header's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// CONNECT (1): client request to connect.
    Connect = 1,
    /// CONNACK (2): connect acknowledgement.
    ConnAck = 2,
    /// PUBLISH (3).
    Publish = 3,
    /// PUBACK (4): QoS 1 acknowledgement.
    PubAck = 4,
    /// PUBREC (5): QoS 2 delivery, part 1.
    PubRec = 5,
    /// PUBREL (6): QoS 2 delivery, part 2.
    PubRel = 6,
    /// PUBCOMP (7): QoS 2 delivery, part 3.
    PubComp = 7,
    /// SUBSCRIBE (8).
    Subscribe = 8,
    /// SUBACK (9).
    SubAck = 9,
    /// UNSUBSCRIBE (10).
    Unsubscribe = 10,
    /// UNSUBACK (11).
    UnsubAck = 11,
    /// PINGREQ (12).
    PingReq = 12,
    /// PINGRESP (13).
    PingResp = 13,
    /// DISCONNECT (14).
    Disconnect = 14,
    /// AUTH (15), MQTT 5 only.
    Auth = 15,
}

impl PacketType {
    /// The packet type for a fixed-header nibble; `None` for the reserved value 0.
    pub const fn from_nibble(nibble: u8) -> Option<PacketType> {
        Some(match nibble {
            1 => PacketType::Connect,
            2 => PacketType::ConnAck,
            3 => PacketType::Publish,
            4 => PacketType::PubAck,
            5 => PacketType::PubRec,
            6 => PacketType::PubRel,
            7 => PacketType::PubComp,
            8 => PacketType::Subscribe,
            9 => PacketType::SubAck,
            10 => PacketType::Unsubscribe,
            11 => PacketType::UnsubAck,
            12 => PacketType::PingReq,
            13 => PacketType::PingResp,
            14 => PacketType::Disconnect,
            15 => PacketType::Auth,
            _ => return None,
        })
    }

    /// The packet's name as the specification writes it.
    pub const fn name(self) -> &'static str {
        match self {
            PacketType::Connect => "CONNECT",
            PacketType::ConnAck => "CONNACK",
            PacketType::Publish => "PUBLISH",
            PacketType::PubAck => "PUBACK",
            PacketType::PubRec => "PUBREC",
            PacketType::PubRel => "PUBREL",
            PacketType::PubComp => "PUBCOMP",
            PacketType::Subscribe => "SUBSCRIBE",
            PacketType::SubAck => "SUBACK",
            PacketType::Unsubscribe => "UNSUBSCRIBE",
            PacketType::UnsubAck => "UNSUBACK",
            PacketType::PingReq => "PINGREQ",
            PacketType::PingResp => "PINGRESP",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Auth => "AUTH",
        }
    }

    /// The fixed-header flags (low nibble) every packet but PUBLISH must carry:
    /// `0b0010` for PUBREL, SUBSCRIBE and UNSUBSCRIBE, `0b0000` otherwise (`[MQTT-2.1.3-1]`).
    pub const fn required_flags(self) -> u8 {
        match self {
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Any MQTT Control Packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT.
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(PublishAck),
    /// PUBREC.
    PubRec(PublishAck),
    /// PUBREL.
    PubRel(PublishAck),
    /// PUBCOMP.
    PubComp(PublishAck),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (MQTT 5 only).
    Auth(Auth),
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }
}

impl From<Connect> for Packet {
    fn from(p: Connect) -> Self {
        Packet::Connect(Box::new(p))
    }
}
impl From<ConnAck> for Packet {
    fn from(p: ConnAck) -> Self {
        Packet::ConnAck(p)
    }
}
impl From<Publish> for Packet {
    fn from(p: Publish) -> Self {
        Packet::Publish(p)
    }
}
impl From<Subscribe> for Packet {
    fn from(p: Subscribe) -> Self {
        Packet::Subscribe(p)
    }
}
impl From<SubAck> for Packet {
    fn from(p: SubAck) -> Self {
        Packet::SubAck(p)
    }
}
impl From<Unsubscribe> for Packet {
    fn from(p: Unsubscribe) -> Self {
        Packet::Unsubscribe(p)
    }
}
impl From<UnsubAck> for Packet {
    fn from(p: UnsubAck) -> Self {
        Packet::UnsubAck(p)
    }
}
impl From<Disconnect> for Packet {
    fn from(p: Disconnect) -> Self {
        Packet::Disconnect(p)
    }
}
impl From<Auth> for Packet {
    fn from(p: Auth) -> Self {
        Packet::Auth(p)
    }
}
