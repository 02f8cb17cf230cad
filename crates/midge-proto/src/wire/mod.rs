//! Byte layouts: the only place that knows how packets look on the wire.
//!
//! Each packet type has a `decode` and an `encoded_len`/`write` pair in the file named after
//! it. MQTT 3.1, 3.1.1 and 5.0 share most of every layout, so each function takes the
//! [`ProtocolVersion`] and branches where the versions differ (see
//! `docs/decisions/0002-one-packet-model.md`).

mod connect;
mod primitives;
mod properties;
mod publish;
mod subscribe;

pub use primitives::{MAX_VARINT, parse_varint, varint_len};

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::packet::{Auth, Disconnect, Packet, PacketType, ProtocolVersion};
use crate::property::{Properties, PropertyContext};
use crate::reason::ReasonCode;
use primitives::{Reader, put_varint};

/// Decodes one packet's body, given its fixed-header first byte.
///
/// `version` is the connection's protocol version; CONNECT carries its own and ignores it.
pub fn decode_body(
    first_byte: u8,
    body: Bytes,
    version: ProtocolVersion,
) -> Result<Packet, DecodeError> {
    let packet_type = check_fixed_header(first_byte, version)?;
    let flags = first_byte & 0x0F;
    let mut r = Reader::new(body, packet_type);
    let packet = match packet_type {
        PacketType::Connect => Packet::Connect(Box::new(connect::decode_connect(&mut r)?)),
        PacketType::ConnAck => Packet::ConnAck(connect::decode_connack(&mut r, version)?),
        PacketType::Publish => Packet::Publish(publish::decode_publish(&mut r, flags, version)?),
        PacketType::PubAck => Packet::PubAck(publish::decode_ack(&mut r, version)?),
        PacketType::PubRec => Packet::PubRec(publish::decode_ack(&mut r, version)?),
        PacketType::PubRel => Packet::PubRel(publish::decode_ack(&mut r, version)?),
        PacketType::PubComp => Packet::PubComp(publish::decode_ack(&mut r, version)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe::decode_subscribe(&mut r, version)?),
        PacketType::SubAck => Packet::SubAck(subscribe::decode_suback(&mut r, version)?),
        PacketType::Unsubscribe => {
            Packet::Unsubscribe(subscribe::decode_unsubscribe(&mut r, version)?)
        }
        PacketType::UnsubAck => Packet::UnsubAck(subscribe::decode_unsuback(&mut r, version)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => {
            let (reason_code, properties) = decode_reason_and_properties(&mut r, version)?;
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
        }
        PacketType::Auth => {
            let (reason_code, properties) = decode_reason_and_properties(&mut r, version)?;
            Packet::Auth(Auth {
                reason_code,
                properties,
            })
        }
    };
    r.finish()?;
    Ok(packet)
}

/// Checks the first byte of a fixed header: a packet type that exists in `version`, the
/// flags that type requires (`[MQTT-2.1.3-1]`), and for PUBLISH a QoS other than 3
/// (`[MQTT-3.3.1-4]`) and no DUP at QoS 0 (`[MQTT-3.3.1-2]`). The decoder calls it as soon as
/// the byte arrives, before the rest of the packet.
pub fn check_fixed_header(
    first_byte: u8,
    version: ProtocolVersion,
) -> Result<PacketType, DecodeError> {
    let nibble = first_byte >> 4;
    let flags = first_byte & 0x0F;
    let packet_type = PacketType::from_nibble(nibble)
        .filter(|t| *t != PacketType::Auth || version.is_v5())
        .ok_or(DecodeError::ReservedPacketType(nibble))?;
    if packet_type == PacketType::Publish {
        if flags & 0b0110 == 0b0110 {
            return Err(DecodeError::PublishQos3);
        }
        if flags & 0b1000 != 0 && flags & 0b0110 == 0 {
            return Err(DecodeError::DupWithQos0);
        }
    } else if flags != packet_type.required_flags() {
        return Err(DecodeError::InvalidFixedHeaderFlags {
            packet: packet_type,
            flags,
            required: packet_type.required_flags(),
        });
    }
    Ok(packet_type)
}

/// Reads a Reason Code checked against the packet's list (Table 2-6).
pub(crate) fn reason_code(r: &mut Reader) -> Result<ReasonCode, DecodeError> {
    let code = ReasonCode(r.u8("reason code")?);
    if !code.is_valid_for(r.packet()) {
        return Err(DecodeError::InvalidReasonCode {
            packet: r.packet(),
            code: code.0,
        });
    }
    Ok(code)
}

/// DISCONNECT and AUTH (MQTT 5): an optional reason code, then optional properties; a
/// Remaining Length of 0 means Success / Normal disconnection (§3.14.2.1, §3.15.2.1).
fn decode_reason_and_properties(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<(ReasonCode, Properties), DecodeError> {
    if !version.is_v5() || !r.has_remaining() {
        return Ok((ReasonCode::SUCCESS, Properties::new()));
    }
    let code = reason_code(r)?;
    let props = if r.has_remaining() {
        properties::decode(r, PropertyContext::Packet(r.packet()))?
    } else {
        Properties::new()
    };
    Ok((code, props))
}

/// Length of an optional-reason-and-properties tail (acks, DISCONNECT, AUTH), using the
/// shortest form: nothing for Success without properties, the code alone without properties.
fn reason_tail_len(
    code: ReasonCode,
    props: &Properties,
    packet: PacketType,
) -> Result<(usize, usize), EncodeError> {
    // DISCONNECT and AUTH with a reason code always carry a Property Length (0 when there
    // are no properties): allowed by §3.14.2.2.1 / §3.15.2.2.1, it is what Mosquitto sends,
    // and some clients (rumqttc 0.25) cannot read the shorter reason-code-only form.
    let always_props = matches!(packet, PacketType::Disconnect | PacketType::Auth);
    if props.is_empty() && !(always_props && code != ReasonCode::SUCCESS) {
        return Ok((usize::from(code != ReasonCode::SUCCESS), 0));
    }
    let content = properties::content_len(props, PropertyContext::Packet(packet))?;
    Ok((1 + varint_len(content) + content, content))
}

fn put_reason_tail(buf: &mut BytesMut, code: ReasonCode, props: &Properties, tail: (usize, usize)) {
    if tail.0 == 0 {
        return;
    }
    buf.put_u8(code.0);
    if tail.0 > 1 {
        properties::put(buf, props, tail.1);
    }
}

/// Per-packet sizes computed before writing, so the Remaining Length is known up front and
/// the packet is written in one pass.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    body: usize,
    props: usize,
    extra: usize,
}

impl Packet {
    /// The number of bytes [`Packet::encode`] will write for `version`, fixed header included.
    /// Use it to respect a peer's Maximum Packet Size before encoding.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let sizes = self.sizes(version)?;
        Ok(1 + varint_len(sizes.body) + sizes.body)
    }

    fn sizes(&self, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
        let v5 = version.is_v5();
        let simple = |body| {
            Ok(Sizes {
                body,
                props: 0,
                extra: 0,
            })
        };
        let sizes = match self {
            Packet::Connect(p) => connect::connect_sizes(p),
            Packet::ConnAck(p) => connect::connack_sizes(p, version),
            Packet::Publish(p) => publish::publish_sizes(p, version),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                if v5 {
                    let (tail, props) =
                        reason_tail_len(p.reason_code, &p.properties, self.packet_type())?;
                    Ok(Sizes {
                        body: 2 + tail,
                        props,
                        extra: tail,
                    })
                } else {
                    simple(2)
                }
            }
            Packet::Subscribe(p) => subscribe::subscribe_sizes(p, version),
            Packet::SubAck(p) => subscribe::suback_sizes(p, version),
            Packet::Unsubscribe(p) => subscribe::unsubscribe_sizes(p, version),
            Packet::UnsubAck(p) => subscribe::unsuback_sizes(p, version),
            Packet::PingReq | Packet::PingResp => simple(0),
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
            | Packet::Auth(Auth {
                reason_code,
                properties,
            }) => {
                if matches!(self, Packet::Auth(_)) && !v5 {
                    return Err(EncodeError::NotInVersion(PacketType::Auth, version));
                }
                if v5 {
                    let (tail, props) =
                        reason_tail_len(*reason_code, properties, self.packet_type())?;
                    Ok(Sizes {
                        body: tail,
                        props,
                        extra: tail,
                    })
                } else {
                    simple(0)
                }
            }
        }?;
        if sizes.body > MAX_VARINT as usize {
            return Err(EncodeError::PacketTooLarge(sizes.body));
        }
        Ok(sizes)
    }

    /// Appends the packet's bytes for `version` to `buf`.
    ///
    /// What `version` cannot carry is left out: properties and reason codes for MQTT 3.x
    /// (SUBACK failures become 0x80). AUTH cannot be encoded for MQTT 3.x.
    pub fn encode(&self, version: ProtocolVersion, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let sizes = self.sizes(version)?;
        buf.reserve(1 + varint_len(sizes.body) + sizes.body);
        let flags = match self {
            Packet::Publish(p) => publish::fixed_header_flags(p),
            other => other.packet_type().required_flags(),
        };
        buf.put_u8(((self.packet_type() as u8) << 4) | flags);
        put_varint(buf, sizes.body);
        let v5 = version.is_v5();
        match self {
            Packet::Connect(p) => connect::write_connect(p, sizes.props, sizes.extra, buf),
            Packet::ConnAck(p) => connect::write_connack(p, version, sizes.props, buf),
            Packet::Publish(p) => publish::write_publish(p, version, sizes.props, buf),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                buf.put_u16(p.packet_id.get());
                if v5 {
                    put_reason_tail(
                        buf,
                        p.reason_code,
                        &p.properties,
                        (sizes.extra, sizes.props),
                    );
                }
            }
            Packet::Subscribe(p) => subscribe::write_subscribe(p, version, sizes.props, buf),
            Packet::SubAck(p) => subscribe::write_suback(p, version, sizes.props, buf),
            Packet::Unsubscribe(p) => subscribe::write_unsubscribe(p, version, sizes.props, buf),
            Packet::UnsubAck(p) => subscribe::write_unsuback(p, version, sizes.props, buf),
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
            | Packet::Auth(Auth {
                reason_code,
                properties,
            }) => {
                if v5 {
                    put_reason_tail(buf, *reason_code, properties, (sizes.extra, sizes.props));
                }
            }
        }
        Ok(())
    }

    /// Encodes into a new buffer.
    pub fn to_bytes(&self, version: ProtocolVersion) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        self.encode(version, &mut buf)?;
        Ok(buf.freeze())
    }
}
