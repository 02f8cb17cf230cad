//! PUBLISH and its acknowledgements (MQTT 5.0 §3.3–3.7, MQTT 3.1.1 §3.3–3.7).

use bytes::{BufMut, BytesMut};

use super::Sizes;
use super::primitives::{Reader, prefixed_len, put_prefixed, qos_bits, varint_len};
use super::{properties, reason_code};
use crate::error::{DecodeError, EncodeError};
use crate::packet::{PacketType, ProtocolVersion, Publish, PublishAck};
use crate::property::{Properties, PropertyContext};
use crate::reason::ReasonCode;
use crate::topic::TopicName;
use crate::{PacketId, QoS};

const CONTEXT: PropertyContext = PropertyContext::Packet(PacketType::Publish);

pub(super) fn decode_publish(
    r: &mut Reader,
    flags: u8,
    version: ProtocolVersion,
) -> Result<Publish, DecodeError> {
    let dup = flags & 0b1000 != 0;
    let qos = qos_bits(flags >> 1, DecodeError::PublishQos3)?;
    let retain = flags & 0b0001 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::DupWithQos0);
    }
    let raw_topic = r.string("topic name")?;
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(r.packet_id()?)
    };
    let properties = if version.is_v5() {
        properties::decode(r, CONTEXT)?
    } else {
        Properties::new()
    };
    let topic = if raw_topic.is_empty() && properties.topic_alias().is_some() {
        // An MQTT 5 sender may leave the name out when a Topic Alias stands for it (§3.3.2.3.4).
        TopicName::empty_for_alias()
    } else if raw_topic.is_empty() && version.is_v5() {
        return Err(DecodeError::EmptyTopicWithoutAlias);
    } else {
        TopicName::new(raw_topic).map_err(DecodeError::TopicName)?
    };
    let payload = r.rest();
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        properties,
        payload,
    })
}

pub(super) fn fixed_header_flags(p: &Publish) -> u8 {
    // DUP is meaningless and forbidden at QoS 0 ([MQTT-3.3.1-2]).
    let dup = p.dup && p.qos != QoS::AtMostOnce;
    (u8::from(dup) << 3) | (p.qos.as_u8() << 1) | u8::from(p.retain)
}

pub(super) fn publish_sizes(p: &Publish, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
    let mut body = prefixed_len("topic name", p.topic.as_str().len())?;
    if p.qos != QoS::AtMostOnce {
        if p.packet_id.is_none() {
            return Err(EncodeError::MissingPacketId(p.qos));
        }
        body += 2;
    }
    let mut props = 0;
    if version.is_v5() {
        props = properties::content_len(&p.properties, CONTEXT)?;
        body += varint_len(props) + props;
    } else if p.topic.is_empty() {
        // MQTT 3 has no topic aliases; an empty name would be rejected by the receiver.
        return Err(EncodeError::FieldTooLong {
            field: "topic name (empty)",
            len: 0,
        });
    }
    body += p.payload.len();
    Ok(Sizes {
        body,
        props,
        extra: 0,
    })
}

pub(super) fn write_publish(
    p: &Publish,
    version: ProtocolVersion,
    props: usize,
    buf: &mut BytesMut,
) {
    put_prefixed(buf, p.topic.as_str().as_bytes());
    if let (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(id)) = (p.qos, p.packet_id) {
        buf.put_u16(id.get());
    }
    if version.is_v5() {
        properties::put(buf, &p.properties, props);
    }
    buf.put_slice(&p.payload);
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP: a packet identifier, then (MQTT 5) an optional reason
/// code and optional properties (§3.4.2.1: a Remaining Length of 2 means Success).
pub(super) fn decode_ack(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<PublishAck, DecodeError> {
    let packet_id: PacketId = r.packet_id()?;
    if !version.is_v5() || !r.has_remaining() {
        return Ok(PublishAck::new(packet_id));
    }
    let reason_code: ReasonCode = reason_code(r)?;
    let properties = if r.has_remaining() {
        properties::decode(r, PropertyContext::Packet(r.packet()))?
    } else {
        Properties::new()
    };
    Ok(PublishAck {
        packet_id,
        reason_code,
        properties,
    })
}
