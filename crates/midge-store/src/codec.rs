//! Record encodings. Each record starts with a one-byte record version so the format can
//! evolve; messages are stored as MQTT 5 PUBLISH packets (encoded by midge-proto), so every
//! property survives as it was received.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use midge_proto::{Packet, ProtocolVersion, QoS, RetainHandling, SubscriptionOptions};

use crate::error::StoreError;
use crate::model::{
    DeliveryState, StoredDelivery, StoredMessage, StoredSession, StoredSubscription, StoredWill,
};

const RECORD_V1: u8 = 1;

fn err(what: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Decode {
        what,
        detail: detail.into(),
    }
}

fn need(buf: &Bytes, n: usize, what: &'static str) -> Result<(), StoreError> {
    if buf.remaining() < n {
        return Err(err(what, "truncated"));
    }
    Ok(())
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_u32(s.len() as u32);
    buf.put_slice(s.as_bytes());
}

fn get_bytes(buf: &mut Bytes, what: &'static str) -> Result<Bytes, StoreError> {
    need(buf, 4, what)?;
    let len = buf.get_u32() as usize;
    need(buf, len, what)?;
    Ok(buf.split_to(len))
}

fn get_str(buf: &mut Bytes, what: &'static str) -> Result<String, StoreError> {
    let b = get_bytes(buf, what)?;
    String::from_utf8(b.to_vec()).map_err(|_| err(what, "invalid UTF-8"))
}

fn put_opt_u64(buf: &mut BytesMut, v: Option<u64>) {
    match v {
        Some(v) => {
            buf.put_u8(1);
            buf.put_u64(v);
        }
        None => buf.put_u8(0),
    }
}

fn get_opt_u64(buf: &mut Bytes, what: &'static str) -> Result<Option<u64>, StoreError> {
    need(buf, 1, what)?;
    match buf.get_u8() {
        0 => Ok(None),
        _ => {
            need(buf, 8, what)?;
            Ok(Some(buf.get_u64()))
        }
    }
}

fn get_version(buf: &mut Bytes, what: &'static str) -> Result<(), StoreError> {
    need(buf, 1, what)?;
    match buf.get_u8() {
        RECORD_V1 => Ok(()),
        v => Err(err(what, format!("unknown record version {v}"))),
    }
}

/// Encodes a message record.
pub(crate) fn encode_message(m: &StoredMessage) -> Result<Vec<u8>, StoreError> {
    let mut buf = BytesMut::new();
    buf.put_u8(RECORD_V1);
    put_opt_u64(&mut buf, m.expires_at_ms);
    match &m.origin {
        Some(o) => {
            buf.put_u8(1);
            put_str(&mut buf, o);
        }
        None => buf.put_u8(0),
    }
    let mut publish = m.publish.clone();
    // Stored without a packet identifier: QoS is kept, the id is assigned per delivery.
    publish.packet_id = if publish.qos == QoS::AtMostOnce {
        None
    } else {
        midge_proto::PacketId::new(1)
    };
    publish.dup = false;
    Packet::Publish(publish)
        .encode(ProtocolVersion::V5, &mut buf)
        .map_err(|e| err("message", e.to_string()))?;
    Ok(buf.to_vec())
}

/// Decodes a message record.
pub(crate) fn decode_message(raw: &[u8]) -> Result<StoredMessage, StoreError> {
    let mut buf = Bytes::copy_from_slice(raw);
    get_version(&mut buf, "message")?;
    let expires_at_ms = get_opt_u64(&mut buf, "message")?;
    need(&buf, 1, "message")?;
    let origin = match buf.get_u8() {
        0 => None,
        _ => Some(get_str(&mut buf, "message")?),
    };
    match Packet::decode(&buf, ProtocolVersion::V5) {
        Ok(Packet::Publish(mut publish)) => {
            publish.packet_id = None;
            Ok(StoredMessage {
                publish,
                expires_at_ms,
                origin,
            })
        }
        Ok(_) => Err(err("message", "not a PUBLISH")),
        Err(e) => Err(err("message", e.to_string())),
    }
}

fn encode_options(o: &SubscriptionOptions) -> u8 {
    o.qos.as_u8()
        | (u8::from(o.no_local) << 2)
        | (u8::from(o.retain_as_published) << 3)
        | ((o.retain_handling as u8) << 4)
}

fn decode_options(b: u8) -> Result<SubscriptionOptions, StoreError> {
    Ok(SubscriptionOptions {
        qos: QoS::from_u8(b & 3).ok_or_else(|| err("session", "subscription QoS"))?,
        no_local: b & 4 != 0,
        retain_as_published: b & 8 != 0,
        retain_handling: RetainHandling::from_u8((b >> 4) & 3)
            .ok_or_else(|| err("session", "retain handling"))?,
    })
}

/// Encodes a session record.
pub(crate) fn encode_session(s: &StoredSession) -> Result<Vec<u8>, StoreError> {
    let mut buf = BytesMut::new();
    buf.put_u8(RECORD_V1);
    buf.put_u32(s.expiry_interval);
    put_opt_u64(&mut buf, s.disconnected_at_ms);
    buf.put_u32(s.subscriptions.len() as u32);
    for sub in &s.subscriptions {
        put_str(&mut buf, &sub.filter);
        buf.put_u8(encode_options(&sub.options));
        match sub.identifier {
            Some(id) => {
                buf.put_u8(1);
                buf.put_u32(id);
            }
            None => buf.put_u8(0),
        }
    }
    buf.put_u32(s.awaiting_pubrel.len() as u32);
    for id in &s.awaiting_pubrel {
        buf.put_u16(*id);
    }
    match &s.will {
        Some(w) => {
            buf.put_u8(1);
            buf.put_u64(w.publish_at_ms);
            let m = encode_message(&w.message)?;
            buf.put_u32(m.len() as u32);
            buf.put_slice(&m);
        }
        None => buf.put_u8(0),
    }
    Ok(buf.to_vec())
}

/// Decodes a session record.
pub(crate) fn decode_session(raw: &[u8]) -> Result<StoredSession, StoreError> {
    const W: &str = "session";
    let mut buf = Bytes::copy_from_slice(raw);
    get_version(&mut buf, W)?;
    need(&buf, 4, W)?;
    let expiry_interval = buf.get_u32();
    let disconnected_at_ms = get_opt_u64(&mut buf, W)?;
    need(&buf, 4, W)?;
    let n = buf.get_u32() as usize;
    let mut subscriptions = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let filter = get_str(&mut buf, W)?;
        need(&buf, 2, W)?;
        let options = decode_options(buf.get_u8())?;
        let identifier = match buf.get_u8() {
            0 => None,
            _ => {
                need(&buf, 4, W)?;
                Some(buf.get_u32())
            }
        };
        subscriptions.push(StoredSubscription {
            filter,
            options,
            identifier,
        });
    }
    need(&buf, 4, W)?;
    let n = buf.get_u32() as usize;
    need(&buf, n * 2, W)?;
    let awaiting_pubrel = (0..n).map(|_| buf.get_u16()).collect();
    need(&buf, 1, W)?;
    let will = match buf.get_u8() {
        0 => None,
        _ => {
            need(&buf, 8, W)?;
            let publish_at_ms = buf.get_u64();
            let m = get_bytes(&mut buf, W)?;
            Some(StoredWill {
                message: decode_message(&m)?,
                publish_at_ms,
            })
        }
    };
    Ok(StoredSession {
        expiry_interval,
        disconnected_at_ms,
        subscriptions,
        awaiting_pubrel,
        will,
    })
}

/// Encodes a delivery record.
pub(crate) fn encode_delivery(d: &StoredDelivery) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_u8(RECORD_V1);
    buf.put_u64(d.message_id);
    buf.put_u8(d.qos);
    buf.put_u8(u8::from(d.retain));
    buf.put_u32(d.subscription_ids.len() as u32);
    for id in &d.subscription_ids {
        buf.put_u32(*id);
    }
    match &d.shared {
        Some((g, f)) => {
            buf.put_u8(1);
            put_str(&mut buf, g);
            put_str(&mut buf, f);
        }
        None => buf.put_u8(0),
    }
    let (tag, id) = match d.state {
        DeliveryState::Queued => (0, 0),
        DeliveryState::AwaitingPubAck(id) => (1, id),
        DeliveryState::AwaitingPubRec(id) => (2, id),
        DeliveryState::AwaitingPubComp(id) => (3, id),
    };
    buf.put_u8(tag);
    buf.put_u16(id);
    buf.to_vec()
}

/// Decodes a delivery record.
pub(crate) fn decode_delivery(raw: &[u8]) -> Result<StoredDelivery, StoreError> {
    const W: &str = "delivery";
    let mut buf = Bytes::copy_from_slice(raw);
    get_version(&mut buf, W)?;
    need(&buf, 14, W)?;
    let message_id = buf.get_u64();
    let qos = buf.get_u8();
    let retain = buf.get_u8() != 0;
    let n = buf.get_u32() as usize;
    need(&buf, n * 4, W)?;
    let subscription_ids = (0..n).map(|_| buf.get_u32()).collect();
    need(&buf, 1, W)?;
    let shared = match buf.get_u8() {
        0 => None,
        _ => Some((get_str(&mut buf, W)?, get_str(&mut buf, W)?)),
    };
    need(&buf, 3, W)?;
    let tag = buf.get_u8();
    let id = buf.get_u16();
    let state = match tag {
        0 => DeliveryState::Queued,
        1 => DeliveryState::AwaitingPubAck(id),
        2 => DeliveryState::AwaitingPubRec(id),
        3 => DeliveryState::AwaitingPubComp(id),
        t => return Err(err(W, format!("unknown state {t}"))),
    };
    Ok(StoredDelivery {
        message_id,
        qos,
        retain,
        subscription_ids,
        shared,
        state,
    })
}
