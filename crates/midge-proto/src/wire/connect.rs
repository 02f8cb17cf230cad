//! CONNECT and CONNACK layouts (MQTT 5.0 §3.1–3.2, MQTT 3.1.1 §3.1–3.2).

use bytes::{BufMut, BytesMut};

use super::Sizes;
use super::primitives::{Reader, prefixed_len, put_prefixed, qos_bits, varint_len};
use super::properties;
use crate::QoS;
use crate::error::{DecodeError, EncodeError};
use crate::packet::{ConnAck, Connect, PacketType, ProtocolVersion, Will};
use crate::property::{Properties, PropertyContext};
use crate::reason::ReasonCode;
use crate::topic::TopicName;

const USERNAME: u8 = 0x80;
const PASSWORD: u8 = 0x40;
const WILL_RETAIN: u8 = 0x20;
const WILL_QOS: u8 = 0x18;
const WILL: u8 = 0x04;
const CLEAN_START: u8 = 0x02;
const RESERVED: u8 = 0x01;

pub(super) fn decode_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name = r.binary("protocol name")?;
    let raw_level = r.u8("protocol level")?;
    // Bit 7 marks a Mosquitto bridge (0x83/0x84); it only exists before MQTT 5.
    let bridge = raw_level & 0x80 != 0 && matches!(raw_level & 0x7F, 3 | 4);
    let level = if bridge { raw_level & 0x7F } else { raw_level };
    let version = match (name.as_ref(), level) {
        (b"MQIsdp", 3) => ProtocolVersion::V3_1,
        (b"MQTT", 4) => ProtocolVersion::V3_1_1,
        (b"MQTT", 5) => ProtocolVersion::V5,
        (b"MQTT" | b"MQIsdp", _) if ProtocolVersion::from_level(level).is_none() => {
            return Err(DecodeError::UnsupportedProtocolLevel(raw_level));
        }
        _ => {
            return Err(DecodeError::InvalidProtocolName {
                name: String::from_utf8_lossy(&name).into_owned(),
                level: raw_level,
            });
        }
    };
    let flags = r.u8("connect flags")?;
    if flags & RESERVED != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let will_flag = flags & WILL != 0;
    let will_qos = qos_bits((flags & WILL_QOS) >> 3, DecodeError::WillQos3)?;
    let will_retain = flags & WILL_RETAIN != 0;
    if !will_flag && will_qos != QoS::AtMostOnce {
        return Err(DecodeError::WillFlagsWithoutWill);
    }
    if !will_flag && will_retain {
        return Err(DecodeError::WillRetainWithoutWill);
    }
    let has_username = flags & USERNAME != 0;
    let has_password = flags & PASSWORD != 0;
    if !version.is_v5() && has_password && !has_username {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = r.u16("keep alive")?;
    let properties = if version.is_v5() {
        properties::decode(r, PropertyContext::Packet(PacketType::Connect))?
    } else {
        Properties::new()
    };
    let client_id = r.string("client identifier")?;
    let will = if will_flag {
        let properties = if version.is_v5() {
            properties::decode(r, PropertyContext::Will)?
        } else {
            Properties::new()
        };
        let topic = TopicName::new(r.string("will topic")?).map_err(DecodeError::TopicName)?;
        let payload = r.binary("will payload")?;
        Some(Will {
            qos: will_qos,
            retain: will_retain,
            properties,
            topic,
            payload,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.string("user name")?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary("password")?)
    } else {
        None
    };
    Ok(Connect {
        protocol_version: version,
        bridge,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        properties,
        client_id,
        will,
        username,
        password,
    })
}

pub(super) fn connect_sizes(p: &Connect) -> Result<Sizes, EncodeError> {
    let v5 = p.protocol_version.is_v5();
    if !v5 && p.password.is_some() && p.username.is_none() {
        // [MQTT-3.1.2-22]: MQTT 3.x has no password without a user name.
        return Err(EncodeError::Invalid(
            "MQTT 3.x CONNECT with a password but no user name",
        ));
    }
    let mut body = 2 + p.protocol_version.protocol_name().len() + 1 + 1 + 2;
    let mut props = 0;
    if v5 {
        props =
            properties::content_len(&p.properties, PropertyContext::Packet(PacketType::Connect))?;
        body += varint_len(props) + props;
    }
    body += prefixed_len("client identifier", p.client_id.len())?;
    let mut will_props = 0;
    if let Some(will) = &p.will {
        if v5 {
            will_props = properties::content_len(&will.properties, PropertyContext::Will)?;
            body += varint_len(will_props) + will_props;
        }
        body += prefixed_len("will topic", will.topic.as_str().len())?;
        body += prefixed_len("will payload", will.payload.len())?;
    }
    if let Some(u) = &p.username {
        body += prefixed_len("user name", u.len())?;
    }
    if let Some(pw) = &p.password {
        body += prefixed_len("password", pw.len())?;
    }
    Ok(Sizes {
        body,
        props,
        extra: will_props,
    })
}

pub(super) fn write_connect(p: &Connect, props: usize, will_props: usize, buf: &mut BytesMut) {
    let version = p.protocol_version;
    put_prefixed(buf, version.protocol_name().as_bytes());
    let level = version.level()
        | if p.bridge && !version.is_v5() {
            0x80
        } else {
            0
        };
    buf.put_u8(level);
    let mut flags = 0;
    if p.username.is_some() {
        flags |= USERNAME;
    }
    if p.password.is_some() {
        flags |= PASSWORD;
    }
    if let Some(will) = &p.will {
        flags |= WILL | (will.qos.as_u8() << 3);
        if will.retain {
            flags |= WILL_RETAIN;
        }
    }
    if p.clean_start {
        flags |= CLEAN_START;
    }
    buf.put_u8(flags);
    buf.put_u16(p.keep_alive);
    if version.is_v5() {
        properties::put(buf, &p.properties, props);
    }
    put_prefixed(buf, p.client_id.as_bytes());
    if let Some(will) = &p.will {
        if version.is_v5() {
            properties::put(buf, &will.properties, will_props);
        }
        put_prefixed(buf, will.topic.as_str().as_bytes());
        put_prefixed(buf, &will.payload);
    }
    if let Some(u) = &p.username {
        put_prefixed(buf, u.as_bytes());
    }
    if let Some(pw) = &p.password {
        put_prefixed(buf, pw);
    }
}

pub(super) fn decode_connack(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<ConnAck, DecodeError> {
    let flags = r.u8("connect acknowledge flags")?;
    // MQTT 3.1 has no Session Present flag: the whole byte is reserved.
    let reserved = if version == ProtocolVersion::V3_1 {
        0xFF
    } else {
        0xFE
    };
    if flags & reserved != 0 {
        return Err(DecodeError::ConnAckReservedFlags);
    }
    let session_present = flags & 0x01 != 0;
    let code = r.u8("connect reason code")?;
    let reason_code = if version.is_v5() {
        let code = ReasonCode(code);
        if !code.is_valid_for(PacketType::ConnAck) {
            return Err(DecodeError::InvalidReasonCode {
                packet: PacketType::ConnAck,
                code: code.0,
            });
        }
        code
    } else {
        ReasonCode::from_v3_connack(code).ok_or(DecodeError::InvalidReasonCode {
            packet: PacketType::ConnAck,
            code,
        })?
    };
    if session_present && reason_code.is_error() {
        return Err(DecodeError::SessionPresentOnFailure);
    }
    let properties = if version.is_v5() {
        properties::decode(r, PropertyContext::Packet(PacketType::ConnAck))?
    } else {
        Properties::new()
    };
    Ok(ConnAck {
        session_present,
        reason_code,
        properties,
    })
}

pub(super) fn connack_sizes(p: &ConnAck, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
    if version.is_v5() {
        let props =
            properties::content_len(&p.properties, PropertyContext::Packet(PacketType::ConnAck))?;
        Ok(Sizes {
            body: 2 + varint_len(props) + props,
            props,
            extra: 0,
        })
    } else {
        Ok(Sizes {
            body: 2,
            props: 0,
            extra: 0,
        })
    }
}

pub(super) fn write_connack(
    p: &ConnAck,
    version: ProtocolVersion,
    props: usize,
    buf: &mut BytesMut,
) {
    // Session Present must be 0 with a failure code ([MQTT-3.2.2-6]) and does not exist in
    // MQTT 3.1.
    let session_present =
        p.session_present && !p.reason_code.is_error() && version != ProtocolVersion::V3_1;
    buf.put_u8(u8::from(session_present));
    if version.is_v5() {
        buf.put_u8(p.reason_code.0);
        properties::put(buf, &p.properties, props);
    } else {
        // Reason codes without an MQTT 3 equivalent are sent as "Server unavailable"; the
        // server normally closes without a CONNACK in those cases (see `to_v3_connack`).
        buf.put_u8(p.reason_code.to_v3_connack().unwrap_or(3));
    }
}
