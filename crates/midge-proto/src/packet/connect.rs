//! CONNECT (MQTT 5.0 §3.1, MQTT 3.1.1 §3.1).

use std::fmt;

use bytes::Bytes;
use bytestring::ByteString;

use super::ProtocolVersion;
use crate::QoS;
use crate::property::Properties;
use crate::topic::TopicName;

/// A client's request to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol version, from the Protocol Name and Protocol Level.
    pub protocol_version: ProtocolVersion,
    /// Bit 7 of the Protocol Level (0x83, 0x84): set by Mosquitto bridges
    /// (`try_private`). Accepted and kept so the broker can tell bridges apart.
    pub bridge: bool,
    /// Clean Start (MQTT 5) / Clean Session (MQTT 3.x).
    pub clean_start: bool,
    /// Keep Alive in seconds; 0 turns the mechanism off.
    pub keep_alive: u16,
    /// CONNECT properties (MQTT 5).
    pub properties: Properties,
    /// Client Identifier; may be empty.
    pub client_id: ByteString,
    /// The Will Message, if the Will Flag is set.
    pub will: Option<Will>,
    /// User Name, if its flag is set.
    pub username: Option<ByteString>,
    /// Password, if its flag is set.
    pub password: Option<Bytes>,
}

impl Connect {
    /// A CONNECT with the given version and client id, Clean Start set, Keep Alive 60 s and
    /// nothing else.
    pub fn new(protocol_version: ProtocolVersion, client_id: impl Into<ByteString>) -> Connect {
        Connect {
            protocol_version,
            bridge: false,
            clean_start: true,
            keep_alive: 60,
            properties: Properties::new(),
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
        }
    }
}

impl fmt::Debug for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connect")
            .field("protocol_version", &self.protocol_version)
            .field("bridge", &self.bridge)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("properties", &self.properties)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<REDACTED>"))
            .finish()
    }
}

/// The Will Message of a CONNECT: published by the server when the connection ends
/// abnormally.
#[derive(Clone, PartialEq, Eq)]
pub struct Will {
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// Will Properties (MQTT 5).
    pub properties: Properties,
    /// Will Topic.
    pub topic: TopicName,
    /// Will Payload.
    pub payload: Bytes,
}

impl Will {
    /// A will at QoS 0, not retained, with no properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Will {
        Will {
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::new(),
            topic,
            payload: payload.into(),
        }
    }
}

impl fmt::Debug for Will {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Will")
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("properties", &self.properties)
            .field("topic", &self.topic)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .finish()
    }
}
