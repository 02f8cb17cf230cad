//! PUBLISH (MQTT 5.0 §3.3, MQTT 3.1.1 §3.3).

use std::fmt;

use bytes::Bytes;

use crate::property::Properties;
use crate::topic::TopicName;
use crate::{PacketId, QoS};

/// An Application Message in transit.
///
/// The topic, payload and properties are reference-counted [`Bytes`], so delivering one
/// message to many subscribers clones references, never the payload. `Debug` prints the
/// payload's length, not its contents.
#[derive(Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP: this may be a re-delivery.
    pub dup: bool,
    /// QoS level.
    pub qos: QoS,
    /// RETAIN.
    pub retain: bool,
    /// Topic Name. Empty only in an MQTT 5 PUBLISH that carries a Topic Alias.
    pub topic: TopicName,
    /// Packet Identifier: present exactly when `qos` is 1 or 2.
    pub packet_id: Option<PacketId>,
    /// PUBLISH properties (MQTT 5).
    pub properties: Properties,
    /// The payload.
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0, non-retained message with no properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: None,
            properties: Properties::new(),
            payload: payload.into(),
        }
    }
}

impl fmt::Debug for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publish")
            .field("dup", &self.dup)
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("topic", &self.topic)
            .field("packet_id", &self.packet_id)
            .field("properties", &self.properties)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .finish()
    }
}
