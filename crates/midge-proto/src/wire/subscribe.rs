//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK layouts (MQTT 5.0 §3.8–3.11).

use bytes::{BufMut, BytesMut};

use super::Sizes;
use super::primitives::{Reader, prefixed_len, put_prefixed, qos_bits, varint_len};
use super::properties;
use crate::error::{DecodeError, EncodeError};
use crate::packet::{
    PacketType, ProtocolVersion, RetainHandling, SubAck, Subscribe, SubscribeFilter,
    SubscriptionOptions, UnsubAck, Unsubscribe,
};
use crate::property::{Properties, PropertyContext};
use crate::reason::ReasonCode;
use crate::topic::TopicFilter;

fn props_or_empty(
    r: &mut Reader,
    version: ProtocolVersion,
    packet: PacketType,
) -> Result<Properties, DecodeError> {
    if version.is_v5() {
        properties::decode(r, PropertyContext::Packet(packet))
    } else {
        Ok(Properties::new())
    }
}

fn props_len(
    props: &Properties,
    version: ProtocolVersion,
    packet: PacketType,
) -> Result<(usize, usize), EncodeError> {
    if !version.is_v5() {
        return Ok((0, 0));
    }
    let content = properties::content_len(props, PropertyContext::Packet(packet))?;
    Ok((varint_len(content) + content, content))
}

fn topic_filter(r: &mut Reader) -> Result<TopicFilter, DecodeError> {
    TopicFilter::new(r.string("topic filter")?).map_err(DecodeError::TopicFilter)
}

fn decode_options(byte: u8, version: ProtocolVersion) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = if version.is_v5() { 0xC0 } else { 0xFC };
    if byte & reserved != 0 {
        return Err(DecodeError::SubscriptionOptionsReserved);
    }
    let qos = qos_bits(byte, DecodeError::SubscriptionQos3)?;
    if !version.is_v5() {
        return Ok(SubscriptionOptions::qos(qos));
    }
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & 0x04 != 0,
        retain_as_published: byte & 0x08 != 0,
        retain_handling: RetainHandling::from_u8((byte >> 4) & 0b11)
            .ok_or(DecodeError::RetainHandling3)?,
    })
}

fn encode_options(o: &SubscriptionOptions, version: ProtocolVersion) -> u8 {
    let mut byte = o.qos.as_u8();
    if version.is_v5() {
        byte |= u8::from(o.no_local) << 2;
        byte |= u8::from(o.retain_as_published) << 3;
        byte |= (o.retain_handling as u8) << 4;
    }
    byte
}

pub(super) fn decode_subscribe(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Subscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = props_or_empty(r, version, PacketType::Subscribe)?;
    let mut filters = Vec::new();
    while r.has_remaining() {
        let filter = topic_filter(r)?;
        let options = decode_options(r.u8("subscription options")?, version)?;
        if options.no_local && filter.is_shared() {
            return Err(DecodeError::NoLocalOnSharedSubscription);
        }
        filters.push(SubscribeFilter { filter, options });
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters {
            packet: PacketType::Subscribe,
        });
    }
    Ok(Subscribe {
        packet_id,
        properties,
        filters,
    })
}

pub(super) fn subscribe_sizes(
    p: &Subscribe,
    version: ProtocolVersion,
) -> Result<Sizes, EncodeError> {
    if p.filters.is_empty() {
        return Err(EncodeError::EmptyList(PacketType::Subscribe));
    }
    let (field, props) = props_len(&p.properties, version, PacketType::Subscribe)?;
    let mut body = 2 + field;
    for f in &p.filters {
        body += prefixed_len("topic filter", f.filter.as_str().len())? + 1;
    }
    Ok(Sizes {
        body,
        props,
        extra: 0,
    })
}

pub(super) fn write_subscribe(
    p: &Subscribe,
    version: ProtocolVersion,
    props: usize,
    buf: &mut BytesMut,
) {
    buf.put_u16(p.packet_id.get());
    if version.is_v5() {
        properties::put(buf, &p.properties, props);
    }
    for f in &p.filters {
        put_prefixed(buf, f.filter.as_str().as_bytes());
        buf.put_u8(encode_options(&f.options, version));
    }
}

pub(super) fn decode_suback(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<SubAck, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = props_or_empty(r, version, PacketType::SubAck)?;
    let mut reason_codes = Vec::with_capacity(r.remaining());
    while r.has_remaining() {
        let code = r.u8("reason code")?;
        let valid = if version.is_v5() {
            ReasonCode(code).is_valid_for(PacketType::SubAck)
        } else {
            matches!(code, 0 | 1 | 2 | 0x80)
        };
        if !valid {
            return Err(DecodeError::InvalidReasonCode {
                packet: PacketType::SubAck,
                code,
            });
        }
        reason_codes.push(ReasonCode(code));
    }
    if reason_codes.is_empty() {
        return Err(DecodeError::NoReasonCodes {
            packet: PacketType::SubAck,
        });
    }
    Ok(SubAck {
        packet_id,
        properties,
        reason_codes,
    })
}

pub(super) fn suback_sizes(p: &SubAck, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
    if p.reason_codes.is_empty() {
        return Err(EncodeError::EmptyList(PacketType::SubAck));
    }
    let (field, props) = props_len(&p.properties, version, PacketType::SubAck)?;
    Ok(Sizes {
        body: 2 + field + p.reason_codes.len(),
        props,
        extra: 0,
    })
}

pub(super) fn write_suback(p: &SubAck, version: ProtocolVersion, props: usize, buf: &mut BytesMut) {
    buf.put_u16(p.packet_id.get());
    if version.is_v5() {
        properties::put(buf, &p.properties, props);
        for code in &p.reason_codes {
            buf.put_u8(code.0);
        }
    } else {
        for code in &p.reason_codes {
            buf.put_u8(code.to_v3_suback());
        }
    }
}

pub(super) fn decode_unsubscribe(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Unsubscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = props_or_empty(r, version, PacketType::Unsubscribe)?;
    let mut filters = Vec::new();
    while r.has_remaining() {
        filters.push(topic_filter(r)?);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters {
            packet: PacketType::Unsubscribe,
        });
    }
    Ok(Unsubscribe {
        packet_id,
        properties,
        filters,
    })
}

pub(super) fn unsubscribe_sizes(
    p: &Unsubscribe,
    version: ProtocolVersion,
) -> Result<Sizes, EncodeError> {
    if p.filters.is_empty() {
        return Err(EncodeError::EmptyList(PacketType::Unsubscribe));
    }
    let (field, props) = props_len(&p.properties, version, PacketType::Unsubscribe)?;
    let mut body = 2 + field;
    for f in &p.filters {
        body += prefixed_len("topic filter", f.as_str().len())?;
    }
    Ok(Sizes {
        body,
        props,
        extra: 0,
    })
}

pub(super) fn write_unsubscribe(
    p: &Unsubscribe,
    version: ProtocolVersion,
    props: usize,
    buf: &mut BytesMut,
) {
    buf.put_u16(p.packet_id.get());
    if version.is_v5() {
        properties::put(buf, &p.properties, props);
    }
    for f in &p.filters {
        put_prefixed(buf, f.as_str().as_bytes());
    }
}

pub(super) fn decode_unsuback(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<UnsubAck, DecodeError> {
    let packet_id = r.packet_id()?;
    if !version.is_v5() {
        return Ok(UnsubAck {
            packet_id,
            properties: Properties::new(),
            reason_codes: Vec::new(),
        });
    }
    let properties = props_or_empty(r, version, PacketType::UnsubAck)?;
    let mut reason_codes = Vec::with_capacity(r.remaining());
    while r.has_remaining() {
        let code = ReasonCode(r.u8("reason code")?);
        if !code.is_valid_for(PacketType::UnsubAck) {
            return Err(DecodeError::InvalidReasonCode {
                packet: PacketType::UnsubAck,
                code: code.0,
            });
        }
        reason_codes.push(code);
    }
    if reason_codes.is_empty() {
        return Err(DecodeError::NoReasonCodes {
            packet: PacketType::UnsubAck,
        });
    }
    Ok(UnsubAck {
        packet_id,
        properties,
        reason_codes,
    })
}

pub(super) fn unsuback_sizes(p: &UnsubAck, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
    if !version.is_v5() {
        return Ok(Sizes {
            body: 2,
            props: 0,
            extra: 0,
        });
    }
    if p.reason_codes.is_empty() {
        return Err(EncodeError::EmptyList(PacketType::UnsubAck));
    }
    let (field, props) = props_len(&p.properties, version, PacketType::UnsubAck)?;
    Ok(Sizes {
        body: 2 + field + p.reason_codes.len(),
        props,
        extra: 0,
    })
}

pub(super) fn write_unsuback(
    p: &UnsubAck,
    version: ProtocolVersion,
    props: usize,
    buf: &mut BytesMut,
) {
    buf.put_u16(p.packet_id.get());
    if version.is_v5() {
        properties::put(buf, &p.properties, props);
        for code in &p.reason_codes {
            buf.put_u8(code.0);
        }
    }
}
