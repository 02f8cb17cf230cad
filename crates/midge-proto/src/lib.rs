//! # midge-proto
//!
//! A sans-IO codec for MQTT 3.1, 3.1.1 and 5.0: bytes in, packets out, and back. No
//! runtime, no sockets; the broker, the client and the fuzzers drive it.
//!
//! ## Overview
//! - One packet model for all versions ([`packet`]): MQTT 5 is the superset; MQTT 3.x packets
//!   have empty properties and Success reason codes, and codes map down when encoding.
//! - [`Decoder`] splits a byte stream at packet boundaries, checks the Maximum Packet Size
//!   before buffering a body and returns [`DecodeError`]s that carry the normative statement
//!   violated and the [`ReasonCode`] to answer with.
//! - [`Packet::encode`] writes a packet for a given [`ProtocolVersion`] in one pass.
//! - Topic names and filters are validated newtypes ([`topic`]); payloads, topics and
//!   property values are reference-counted [`bytes::Bytes`], so fan-out never copies a
//!   payload.
//! - [`inflight`] holds the QoS 1 / QoS 2 state machines and packet-identifier allocation
//!   shared by broker and client.
//!
//! ## Layout
//! | module | what |
//! |---|---|
//! | [`packet`] | packet types, one file per packet family |
//! | [`property`] | MQTT 5 properties and Table 2-4 |
//! | [`reason`] | Reason Codes and the MQTT 3 return-code mapping |
//! | [`topic`] | Topic Names, Topic Filters, shared subscriptions, matching |
//! | [`wire`] | byte layouts (the only module that knows them) |
//! | [`decoder`] | the streaming decoder |
//! | [`inflight`] | QoS 1/2 flows, Receive Maximum, packet identifiers |
//!
//! ## Example
//! ```
//! use bytes::BytesMut;
//! use midge_proto::{Decoder, Packet, ProtocolVersion, Publish, QoS, TopicName, PacketId};
//!
//! let mut publish = Publish::new(TopicName::new("sensors/t1").unwrap(), "21.5");
//! publish.qos = QoS::AtLeastOnce;
//! publish.packet_id = PacketId::new(7);
//! let mut wire = BytesMut::new();
//! Packet::Publish(publish.clone()).encode(ProtocolVersion::V5, &mut wire).unwrap();
//!
//! let mut decoder = Decoder::with_version(ProtocolVersion::V5, 1 << 20);
//! assert_eq!(decoder.decode(&mut wire).unwrap(), Some(Packet::Publish(publish)));
//! ```

pub mod decoder;
pub mod error;
pub mod inflight;
pub mod packet;
pub mod property;
mod qos;
pub mod reason;
pub mod topic;
pub mod wire;

pub use decoder::{Decoder, PROTOCOL_MAX_PACKET_SIZE};
pub use error::{DecodeError, EncodeError};
pub use packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PacketType, ProtocolVersion, Publish, PublishAck,
    RetainHandling, SubAck, Subscribe, SubscribeFilter, SubscriptionOptions, UnsubAck, Unsubscribe,
    Will,
};
pub use property::{Properties, Property, PropertyContext};
pub use qos::{PacketId, QoS};
pub use reason::ReasonCode;
pub use topic::{TopicError, TopicFilter, TopicName};

/// Re-exported so users can name string fields without adding the crate themselves.
pub use bytestring::ByteString;
