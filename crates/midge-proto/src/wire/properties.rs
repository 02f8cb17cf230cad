//! The Properties field of MQTT 5 packets (§2.2.2): a Variable Byte Integer length followed
//! by identifier/value pairs.

use bytes::{BufMut, BytesMut};

use super::primitives::{MAX_VARINT, Reader, prefixed_len, put_prefixed, put_varint, varint_len};
use crate::QoS;
use crate::error::{DecodeError, EncodeError};
use crate::property::{Properties, Property, PropertyContext, may_repeat, property_spec};
use crate::topic::TopicName;

/// Reads a property list and checks it against Table 2-4 for `context`: identifiers exist
/// and are allowed there, single-valued properties appear once, and values are in range.
pub(crate) fn decode(r: &mut Reader, context: PropertyContext) -> Result<Properties, DecodeError> {
    let len = r.varint("property length")? as usize;
    let mut body = Reader::new(r.take(len, "properties")?, r.packet());
    let mut props = Properties::new();
    let mut seen: u64 = 0;
    while body.has_remaining() {
        let id = body.varint("property identifier")?;
        // Every identifier defined by MQTT 5 fits in one byte; larger values are unknown.
        let id = u8::try_from(id).map_err(|_| DecodeError::UnknownProperty(0xFF))?;
        let spec = property_spec(id).ok_or(DecodeError::UnknownProperty(id))?;
        if !spec.allowed_in(context) {
            return Err(DecodeError::PropertyNotAllowed {
                property: spec.name,
                context: context.name(),
            });
        }
        let bit = 1u64 << id;
        if seen & bit != 0 && !may_repeat(id, context) {
            return Err(DecodeError::DuplicateProperty(spec.name));
        }
        seen |= bit;
        props.push(decode_value(&mut body, id, spec.name)?);
    }
    if seen & (1 << 0x16) != 0 && seen & (1 << 0x15) == 0 {
        return Err(DecodeError::AuthDataWithoutMethod);
    }
    Ok(props)
}

fn flag(r: &mut Reader, name: &'static str) -> Result<bool, DecodeError> {
    match r.u8(name)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(DecodeError::InvalidPropertyValue {
            property: name,
            value: u32::from(v),
        }),
    }
}

fn non_zero_u16(r: &mut Reader, name: &'static str) -> Result<u16, DecodeError> {
    let v = r.u16(name)?;
    if v == 0 {
        return Err(DecodeError::InvalidPropertyValue {
            property: name,
            value: 0,
        });
    }
    Ok(v)
}

fn decode_value(r: &mut Reader, id: u8, name: &'static str) -> Result<Property, DecodeError> {
    Ok(match id {
        0x01 => Property::PayloadFormatIndicator(flag(r, name)?),
        0x02 => Property::MessageExpiryInterval(r.u32(name)?),
        0x03 => Property::ContentType(r.string(name)?),
        0x08 => {
            let topic = r.string(name)?;
            Property::ResponseTopic(
                TopicName::new(topic).map_err(DecodeError::InvalidResponseTopic)?,
            )
        }
        0x09 => Property::CorrelationData(r.binary(name)?),
        0x0B => {
            let v = r.varint(name)?;
            if v == 0 {
                return Err(DecodeError::InvalidPropertyValue {
                    property: name,
                    value: 0,
                });
            }
            Property::SubscriptionIdentifier(v)
        }
        0x11 => Property::SessionExpiryInterval(r.u32(name)?),
        0x12 => Property::AssignedClientIdentifier(r.string(name)?),
        0x13 => Property::ServerKeepAlive(r.u16(name)?),
        0x15 => Property::AuthenticationMethod(r.string(name)?),
        0x16 => Property::AuthenticationData(r.binary(name)?),
        0x17 => Property::RequestProblemInformation(flag(r, name)?),
        0x18 => Property::WillDelayInterval(r.u32(name)?),
        0x19 => Property::RequestResponseInformation(flag(r, name)?),
        0x1A => Property::ResponseInformation(r.string(name)?),
        0x1C => Property::ServerReference(r.string(name)?),
        0x1F => Property::ReasonString(r.string(name)?),
        0x21 => Property::ReceiveMaximum(non_zero_u16(r, name)?),
        0x22 => Property::TopicAliasMaximum(r.u16(name)?),
        0x23 => {
            let v = r.u16(name)?;
            if v == 0 {
                return Err(DecodeError::TopicAliasZero);
            }
            Property::TopicAlias(v)
        }
        0x24 => match r.u8(name)? {
            0 => Property::MaximumQoS(QoS::AtMostOnce),
            1 => Property::MaximumQoS(QoS::AtLeastOnce),
            v => {
                return Err(DecodeError::InvalidPropertyValue {
                    property: name,
                    value: v.into(),
                });
            }
        },
        0x25 => Property::RetainAvailable(flag(r, name)?),
        0x26 => {
            let key = r.string(name)?;
            let value = r.string(name)?;
            Property::UserProperty(key, value)
        }
        0x27 => {
            let v = r.u32(name)?;
            if v == 0 {
                return Err(DecodeError::InvalidPropertyValue {
                    property: name,
                    value: 0,
                });
            }
            Property::MaximumPacketSize(v)
        }
        0x28 => Property::WildcardSubscriptionAvailable(flag(r, name)?),
        0x29 => Property::SubscriptionIdentifierAvailable(flag(r, name)?),
        0x2A => Property::SharedSubscriptionAvailable(flag(r, name)?),
        // `property_spec` returned Some, so `id` is one of the identifiers above.
        _ => return Err(DecodeError::UnknownProperty(id)),
    })
}

fn value_len(p: &Property) -> Result<usize, EncodeError> {
    let name = p.name();
    let invalid = |value: u32| EncodeError::InvalidPropertyValue {
        property: name,
        value,
    };
    match p {
        Property::SubscriptionIdentifier(v) if *v == 0 || *v > MAX_VARINT => {
            return Err(invalid(*v));
        }
        Property::ReceiveMaximum(0) | Property::TopicAlias(0) | Property::MaximumPacketSize(0) => {
            return Err(invalid(0));
        }
        Property::ResponseTopic(t) if t.is_empty() => {
            return Err(EncodeError::Invalid("empty response topic"));
        }
        // Maximum QoS is 0 or 1 (§3.2.2.3.4); the decoder rejects 2.
        Property::MaximumQoS(QoS::ExactlyOnce) => return Err(invalid(2)),
        _ => {}
    }
    Ok(match p {
        Property::PayloadFormatIndicator(_)
        | Property::RequestProblemInformation(_)
        | Property::RequestResponseInformation(_)
        | Property::MaximumQoS(_)
        | Property::RetainAvailable(_)
        | Property::WildcardSubscriptionAvailable(_)
        | Property::SubscriptionIdentifierAvailable(_)
        | Property::SharedSubscriptionAvailable(_) => 1,
        Property::ServerKeepAlive(_)
        | Property::ReceiveMaximum(_)
        | Property::TopicAliasMaximum(_)
        | Property::TopicAlias(_) => 2,
        Property::MessageExpiryInterval(_)
        | Property::SessionExpiryInterval(_)
        | Property::WillDelayInterval(_)
        | Property::MaximumPacketSize(_) => 4,
        Property::SubscriptionIdentifier(v) => varint_len(*v as usize),
        Property::ContentType(s)
        | Property::AssignedClientIdentifier(s)
        | Property::AuthenticationMethod(s)
        | Property::ResponseInformation(s)
        | Property::ServerReference(s)
        | Property::ReasonString(s) => prefixed_len(name, s.len())?,
        Property::ResponseTopic(t) => prefixed_len(name, t.as_str().len())?,
        Property::CorrelationData(b) | Property::AuthenticationData(b) => {
            prefixed_len(name, b.len())?
        }
        Property::UserProperty(k, v) => prefixed_len(name, k.len())? + prefixed_len(name, v.len())?,
    })
}

/// The encoded size of the property list's content (without its length prefix), after
/// checking that each property is allowed in `context` and single-valued ones appear once.
pub(crate) fn content_len(
    props: &Properties,
    context: PropertyContext,
) -> Result<usize, EncodeError> {
    let mut len = 0;
    let mut seen: u64 = 0;
    for p in props {
        let id = p.id();
        let allowed = property_spec(id).is_some_and(|s| s.allowed_in(context));
        if !allowed {
            return Err(EncodeError::PropertyNotAllowed {
                property: p.name(),
                context: context.name(),
            });
        }
        let bit = 1u64 << id;
        if seen & bit != 0 && !may_repeat(id, context) {
            return Err(EncodeError::DuplicateProperty(p.name()));
        }
        seen |= bit;
        len += 1 + value_len(p)?;
    }
    if seen & (1 << 0x16) != 0 && seen & (1 << 0x15) == 0 {
        return Err(EncodeError::Invalid(
            "authentication data without an authentication method",
        ));
    }
    if len > MAX_VARINT as usize {
        return Err(EncodeError::PacketTooLarge(len));
    }
    Ok(len)
}

/// Writes the Properties field; `content_len` comes from [`content_len`].
pub(crate) fn put(buf: &mut BytesMut, props: &Properties, content_len: usize) {
    put_varint(buf, content_len);
    for p in props {
        buf.put_u8(p.id());
        match p {
            Property::PayloadFormatIndicator(v)
            | Property::RequestProblemInformation(v)
            | Property::RequestResponseInformation(v)
            | Property::RetainAvailable(v)
            | Property::WildcardSubscriptionAvailable(v)
            | Property::SubscriptionIdentifierAvailable(v)
            | Property::SharedSubscriptionAvailable(v) => buf.put_u8(u8::from(*v)),
            Property::MaximumQoS(q) => buf.put_u8(q.as_u8()),
            Property::ServerKeepAlive(v)
            | Property::ReceiveMaximum(v)
            | Property::TopicAliasMaximum(v)
            | Property::TopicAlias(v) => buf.put_u16(*v),
            Property::MessageExpiryInterval(v)
            | Property::SessionExpiryInterval(v)
            | Property::WillDelayInterval(v)
            | Property::MaximumPacketSize(v) => buf.put_u32(*v),
            Property::SubscriptionIdentifier(v) => put_varint(buf, *v as usize),
            Property::ContentType(s)
            | Property::AssignedClientIdentifier(s)
            | Property::AuthenticationMethod(s)
            | Property::ResponseInformation(s)
            | Property::ServerReference(s)
            | Property::ReasonString(s) => put_prefixed(buf, s.as_bytes()),
            Property::ResponseTopic(t) => put_prefixed(buf, t.as_str().as_bytes()),
            Property::CorrelationData(b) | Property::AuthenticationData(b) => put_prefixed(buf, b),
            Property::UserProperty(k, v) => {
                put_prefixed(buf, k.as_bytes());
                put_prefixed(buf, v.as_bytes());
            }
        }
    }
}
