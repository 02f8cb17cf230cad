//! PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.

use crate::PacketId;
use crate::property::Properties;
use crate::reason::ReasonCode;

/// The body shared by PUBACK, PUBREC, PUBREL and PUBCOMP (MQTT 5.0 §3.4–3.7): a Packet
/// Identifier, a Reason Code (MQTT 5; Success in MQTT 3.x) and properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishAck {
    /// The Packet Identifier of the PUBLISH being acknowledged.
    pub packet_id: PacketId,
    /// Reason Code; Success when the packet omits it.
    pub reason_code: ReasonCode,
    /// Properties (MQTT 5).
    pub properties: Properties,
}

impl PublishAck {
    /// A successful acknowledgement with no properties.
    pub fn new(packet_id: PacketId) -> PublishAck {
        PublishAck {
            packet_id,
            reason_code: ReasonCode::SUCCESS,
            properties: Properties::new(),
        }
    }

    /// An acknowledgement with the given reason code.
    pub fn with_reason(packet_id: PacketId, reason_code: ReasonCode) -> PublishAck {
        PublishAck {
            packet_id,
            reason_code,
            properties: Properties::new(),
        }
    }
}

/// SUBACK (MQTT 5.0 §3.9): one reason code per requested topic filter, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The SUBSCRIBE's Packet Identifier.
    pub packet_id: PacketId,
    /// Properties (MQTT 5).
    pub properties: Properties,
    /// One code per filter: Granted QoS 0–2 or a failure (MQTT 3.x: 0x80).
    pub reason_codes: Vec<ReasonCode>,
}

/// UNSUBACK (MQTT 5.0 §3.11). MQTT 3.x UNSUBACK carries no reason codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The UNSUBSCRIBE's Packet Identifier.
    pub packet_id: PacketId,
    /// Properties (MQTT 5).
    pub properties: Properties,
    /// One code per filter (MQTT 5); empty for MQTT 3.x.
    pub reason_codes: Vec<ReasonCode>,
}
