//! Application messages, and what a publish returns.

use std::fmt;

use bytes::Bytes;
use midge_proto::{
    ByteString, PacketId, Properties, Property, Publish, QoS, ReasonCode, TopicName,
};

/// An Application Message: one received from the server, or one to publish.
///
/// Received messages carry the properties the server sent (MQTT 5): Payload Format
/// Indicator, Message Expiry Interval, Content Type, Response Topic, Correlation Data, User
/// Properties and one Subscription Identifier per matching subscription. Topic Aliases are
/// already resolved: `topic` is always the full name.
///
/// `Debug` prints the payload's length, never its contents.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The Topic Name.
    pub topic: TopicName,
    /// The payload; reference-counted, so cloning a message does not copy it.
    pub payload: Bytes,
    /// The QoS it was delivered (or is to be published) at.
    pub qos: QoS,
    /// RETAIN: for a received message, whether it was sent because of a retained message
    /// (or, with Retain As Published, the publisher's flag).
    pub retain: bool,
    /// DUP: the server may have sent this message before (received messages only; ignored
    /// when publishing).
    pub dup: bool,
    /// The Packet Identifier the server delivered it with (received QoS 1 and 2 messages
    /// only; ignored when publishing, where the client allocates one).
    pub packet_id: Option<PacketId>,
    /// MQTT 5 properties.
    pub properties: Properties,
}

impl Message {
    /// A QoS 0, non-retained message with no properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Message {
        Message {
            topic,
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            dup: false,
            packet_id: None,
            properties: Properties::new(),
        }
    }

    /// Sets the QoS.
    pub fn with_qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// Sets RETAIN.
    pub fn with_retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Replaces the properties.
    pub fn with_properties(mut self, properties: Properties) -> Self {
        self.properties = properties;
        self
    }

    /// Adds a property (use it for User Properties, which may repeat).
    pub fn with_property(mut self, property: Property) -> Self {
        self.properties.push(property);
        self
    }

    /// Adds a User Property.
    pub fn with_user_property(
        self,
        name: impl Into<ByteString>,
        value: impl Into<ByteString>,
    ) -> Self {
        self.with_property(Property::UserProperty(name.into(), value.into()))
    }

    /// The payload as UTF-8 text, if it is.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }

    /// The Response Topic property (MQTT 5 request/response).
    pub fn response_topic(&self) -> Option<&TopicName> {
        self.properties.response_topic()
    }

    /// The Correlation Data property (MQTT 5 request/response).
    pub fn correlation_data(&self) -> Option<&Bytes> {
        self.properties.correlation_data()
    }

    /// The User Properties, in order.
    pub fn user_properties(&self) -> impl Iterator<Item = (&ByteString, &ByteString)> + '_ {
        self.properties.user_properties()
    }

    /// The Subscription Identifiers of the subscriptions that matched (MQTT 5).
    pub fn subscription_identifiers(&self) -> impl Iterator<Item = u32> + '_ {
        self.properties.subscription_identifiers()
    }

    pub(crate) fn from_publish(p: Publish) -> Message {
        Message {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            dup: p.dup,
            packet_id: p.packet_id,
            properties: p.properties,
        }
    }

    pub(crate) fn into_publish(self) -> Publish {
        Publish {
            dup: false,
            qos: self.qos,
            retain: self.retain,
            topic: self.topic,
            packet_id: None,
            properties: self.properties,
            payload: self.payload,
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("dup", &self.dup)
            .field("packet_id", &self.packet_id)
            .field("properties", &self.properties)
            .finish()
    }
}

/// How a publish ended.
///
/// QoS 0: written to the transport. QoS 1: the PUBACK. QoS 2: the PUBREC (whose Reason Code
/// and properties are reported here) followed by the PUBCOMP. A failure Reason Code (0x80 or
/// more) is returned as [`ClientError::Rejected`](crate::ClientError::Rejected) instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOutcome {
    /// The QoS the message was sent at.
    pub qos: QoS,
    /// The Packet Identifier of the last attempt (QoS 1 and 2).
    pub packet_id: Option<PacketId>,
    /// The PUBACK's (QoS 1) or PUBREC's (QoS 2) Reason Code, for example 0x10 No matching
    /// subscribers; Success for QoS 0 and for MQTT 3.x.
    pub reason_code: ReasonCode,
    /// That acknowledgement's properties (Reason String, User Properties).
    pub properties: Properties,
}

impl PublishOutcome {
    pub(crate) fn qos0() -> PublishOutcome {
        PublishOutcome {
            qos: QoS::AtMostOnce,
            packet_id: None,
            reason_code: ReasonCode::SUCCESS,
            properties: Properties::new(),
        }
    }
}
