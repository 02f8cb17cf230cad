//! One benchmark connection: a TCP socket speaking MQTT through `midge-proto`, without the
//! client library.
//!
//! The generator has to out-run the brokers it measures, so its hot path avoids everything a
//! general client needs and a load generator does not: no command channel, no per-message
//! future or allocation, no topic validation of received messages. Handshakes (CONNECT,
//! SUBSCRIBE) go through `midge-proto`'s encoder and [`Decoder`]; after that, PUBLISH is
//! written from a pre-encoded template and received packets are split and read in place by
//! [`next_frame`], which falls back to the [`Decoder`] for anything but PUBLISH and its
//! acknowledgements.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, BytesMut};
use midge_proto::{
    ByteString, Connect, Decoder, Packet, PacketId, Properties, ProtocolVersion, QoS, Subscribe,
    SubscribeFilter, SubscriptionOptions, TopicFilter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The largest packet the generator accepts from a broker.
const MAX_PACKET: u32 = 16 << 20;

/// Where and how to open one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectSpec {
    /// The broker.
    pub(crate) addr: SocketAddr,
    /// Local address to connect from (spreads many connections over 127.0.0.x).
    pub(crate) bind: Option<IpAddr>,
    /// Protocol version.
    pub(crate) version: ProtocolVersion,
    /// Client identifier.
    pub(crate) client_id: String,
    /// Credentials.
    pub(crate) username: Option<String>,
    /// Credentials.
    pub(crate) password: Option<String>,
    /// Keep Alive to ask for, in seconds.
    pub(crate) keep_alive: u16,
    /// Bound on each handshake step.
    pub(crate) timeout: Duration,
}

/// An open, acknowledged connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    /// Bytes read and not yet consumed.
    pub(crate) rbuf: BytesMut,
    /// Bytes to write; `wbuf[wpos..]` is still pending.
    pub(crate) wbuf: Vec<u8>,
    pub(crate) wpos: usize,
    pub(crate) version: ProtocolVersion,
    /// The server's Receive Maximum (MQTT 5), 65,535 when it sets none.
    pub(crate) receive_maximum: u16,
    /// The Keep Alive in force (the Server Keep Alive if the server sent one).
    pub(crate) keep_alive: Duration,
    decoder: Decoder,
    timeout: Duration,
}

impl Conn {
    /// Connects, sends CONNECT (Clean Start, no session kept) and waits for a successful
    /// CONNACK.
    pub(crate) async fn open(spec: &ConnectSpec) -> anyhow::Result<Conn> {
        let socket = if spec.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .context("cannot create a socket")?;
        if let Some(ip) = spec.bind {
            socket
                .bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("cannot bind to {ip}"))?;
        }
        let stream = tokio::time::timeout(spec.timeout, socket.connect(spec.addr))
            .await
            .map_err(|_| anyhow!("TCP connect to {} timed out", spec.addr))?
            .with_context(|| format!("cannot connect to {}", spec.addr))?;
        stream.set_nodelay(true)?;
        let mut conn = Conn {
            stream,
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            wpos: 0,
            version: spec.version,
            receive_maximum: u16::MAX,
            keep_alive: Duration::from_secs(u64::from(spec.keep_alive)),
            decoder: Decoder::with_version(spec.version, MAX_PACKET),
            timeout: spec.timeout,
        };
        let mut connect = Connect::new(spec.version, spec.client_id.as_str());
        connect.keep_alive = spec.keep_alive;
        connect.username = spec.username.as_deref().map(ByteString::from);
        connect.password = spec.password.clone().map(|p| p.into_bytes().into());
        conn.send(&Packet::from(connect)).await?;
        match conn.read_packet().await? {
            Packet::ConnAck(ack) if ack.reason_code.0 < 0x80 => {
                if let Some(max) = ack.properties.receive_maximum() {
                    conn.receive_maximum = max;
                }
                if let Some(ka) = ack.properties.server_keep_alive() {
                    conn.keep_alive = Duration::from_secs(u64::from(ka));
                }
                Ok(conn)
            }
            Packet::ConnAck(ack) => bail!(
                "the broker refused the connection: reason code {:#04x}",
                ack.reason_code.0
            ),
            other => bail!("expected CONNACK, got {}", other.packet_type()),
        }
    }

    /// Subscribes to `filters` at `qos` in one SUBSCRIBE and waits for a SUBACK granting
    /// every one of them.
    pub(crate) async fn subscribe(&mut self, filters: &[String], qos: QoS) -> anyhow::Result<()> {
        let filters = filters
            .iter()
            .map(|f| {
                Ok(SubscribeFilter {
                    filter: TopicFilter::new(f.as_str())
                        .map_err(|e| anyhow!("bad topic filter {f:?}: {e}"))?,
                    options: SubscriptionOptions::qos(qos),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let count = filters.len();
        let subscribe = Subscribe {
            packet_id: PacketId::MIN,
            properties: Properties::new(),
            filters,
        };
        self.send(&Packet::from(subscribe)).await?;
        match self.read_packet().await? {
            Packet::SubAck(ack) => {
                if ack.reason_codes.len() != count {
                    bail!(
                        "SUBACK has {} codes for {count} filters",
                        ack.reason_codes.len()
                    );
                }
                if let Some(code) = ack.reason_codes.iter().find(|c| c.0 >= 0x80) {
                    bail!(
                        "the broker refused a subscription: reason code {:#04x}",
                        code.0
                    );
                }
                if let Some(code) = ack.reason_codes.iter().find(|c| c.0 < qos.as_u8()) {
                    bail!(
                        "the broker granted QoS {} where {} was asked for",
                        code.0,
                        qos.as_u8()
                    );
                }
                Ok(())
            }
            other => bail!("expected SUBACK, got {}", other.packet_type()),
        }
    }

    /// Writes one packet and waits until it is written (handshakes only).
    async fn send(&mut self, packet: &Packet) -> anyhow::Result<()> {
        let mut buf = BytesMut::new();
        packet
            .encode(self.version, &mut buf)
            .map_err(|e| anyhow!("cannot encode {}: {e}", packet.packet_type()))?;
        tokio::time::timeout(self.timeout, self.stream.write_all(&buf))
            .await
            .map_err(|_| anyhow!("writing {} timed out", packet.packet_type()))?
            .with_context(|| format!("cannot write {}", packet.packet_type()))
    }

    /// Reads the next packet (handshakes only).
    async fn read_packet(&mut self) -> anyhow::Result<Packet> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(packet) = self
                .decoder
                .decode(&mut self.rbuf)
                .map_err(|e| anyhow!("malformed packet from the broker: {e}"))?
            {
                return Ok(packet);
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.rbuf))
                .await
                .map_err(|_| anyhow!("no answer from the broker within {:?}", self.timeout))?
                .context("read failed")?;
            if n == 0 {
                bail!("the broker closed the connection");
            }
        }
    }

    /// Reads what the socket has without waiting, up to about `limit` bytes. Fails on end of
    /// stream.
    pub(crate) fn try_fill(&mut self, chunk: usize, limit: usize) -> anyhow::Result<usize> {
        let mut total = 0;
        while total < limit {
            if self.rbuf.capacity() - self.rbuf.len() < chunk / 4 {
                self.rbuf.reserve(chunk);
            }
            match self.stream.try_read_buf(&mut self.rbuf) {
                Ok(0) => bail!("the broker closed the connection"),
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("read failed"),
            }
        }
        Ok(total)
    }

    /// Writes pending bytes without waiting; returns whether everything was written.
    pub(crate) fn try_flush(&mut self) -> anyhow::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match self.stream.try_write(&self.wbuf[self.wpos..]) {
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e).context("write failed"),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Ok(true)
    }

    /// Bytes waiting to be written.
    pub(crate) fn pending(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Sends DISCONNECT if the socket takes it at once, and drops the connection.
    pub(crate) fn close(mut self) {
        self.wbuf.extend_from_slice(&[0xE0, 0x00]);
        let _ = self.try_flush();
    }
}

/// PINGREQ.
pub(crate) const PINGREQ: [u8; 2] = [0xC0, 0x00];

/// Appends a PUBACK, PUBREC, PUBREL or PUBCOMP without properties or reason code (Success;
/// valid in every version). `first` is the fixed header's first byte.
pub(crate) fn put_ack(buf: &mut Vec<u8>, first: u8, packet_id: u16) {
    let id = packet_id.to_be_bytes();
    buf.extend_from_slice(&[first, 0x02, id[0], id[1]]);
}

/// First bytes of the acknowledgement packets.
pub(crate) const PUBACK: u8 = 0x40;
pub(crate) const PUBREC: u8 = 0x50;
pub(crate) const PUBREL: u8 = 0x62;
pub(crate) const PUBCOMP: u8 = 0x70;

/// A received packet, read in place.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// PUBLISH: its QoS, Packet Identifier (0 at QoS 0) and payload.
    Publish {
        qos: u8,
        packet_id: u16,
        payload: &'a [u8],
    },
    /// PUBACK (4), PUBREC (5) or PUBCOMP (7): the packet type, identifier and Reason Code.
    Ack {
        kind: u8,
        packet_id: u16,
        reason: u8,
    },
    /// PUBREL.
    PubRel(u16),
    /// PINGRESP.
    PingResp,
    /// Anything else, decoded by `midge-proto`.
    Other(Packet),
}

/// Splits the next complete packet off the front of `buf`: the packet and its length, or
/// `None` if it is not complete yet.
pub(crate) fn next_frame(
    buf: &[u8],
    version: ProtocolVersion,
) -> anyhow::Result<Option<(Frame<'_>, usize)>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    // Remaining Length: a varint of at most four bytes.
    let mut remaining: usize = 0;
    let mut header = 1;
    loop {
        let Some(&b) = buf.get(header) else {
            return Ok(None);
        };
        remaining |= usize::from(b & 0x7F) << (7 * (header - 1));
        header += 1;
        if b & 0x80 == 0 {
            break;
        }
        if header > 4 {
            bail!("malformed Remaining Length from the broker");
        }
    }
    let total = header + remaining;
    if total > MAX_PACKET as usize {
        bail!("the broker sent a {total}-byte packet");
    }
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[header..total];
    let malformed = || anyhow!("malformed packet from the broker (first byte {first:#04x})");
    let u16_at = |i: usize| -> anyhow::Result<u16> {
        let b = body.get(i..i + 2).ok_or_else(malformed)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    };
    let frame = match first >> 4 {
        3 => {
            let qos = (first >> 1) & 3;
            let mut pos = 2 + usize::from(u16_at(0)?);
            let mut packet_id = 0;
            if qos > 0 {
                packet_id = u16_at(pos)?;
                pos += 2;
            }
            if version.is_v5() {
                let (len, used) = varint(body.get(pos..).ok_or_else(malformed)?)?;
                pos += used + len;
            }
            let payload = body.get(pos..).ok_or_else(malformed)?;
            Frame::Publish {
                qos,
                packet_id,
                payload,
            }
        }
        4 | 5 | 7 => Frame::Ack {
            kind: first >> 4,
            packet_id: u16_at(0)?,
            reason: body.get(2).copied().unwrap_or(0),
        },
        6 => Frame::PubRel(u16_at(0)?),
        13 => Frame::PingResp,
        _ => Frame::Other(
            Packet::decode(&buf[..total], version)
                .map_err(|e| anyhow!("malformed packet from the broker: {e}"))?,
        ),
    };
    Ok(Some((frame, total)))
}

/// A property-length varint: its value and how many bytes it took.
fn varint(buf: &[u8]) -> anyhow::Result<(usize, usize)> {
    let mut value = 0usize;
    for (i, &b) in buf.iter().take(4).enumerate() {
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    bail!("malformed property length from the broker")
}

/// A PUBLISH encoded once, into which each message's Packet Identifier and payload header are
/// patched.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub(crate) bytes: Vec<u8>,
    /// Offset of the Packet Identifier (QoS 1/2).
    pub(crate) packet_id_at: usize,
    /// Offset of the payload.
    pub(crate) payload_at: usize,
}

impl Template {
    /// Encodes a PUBLISH of `size` payload bytes to `topic`.
    pub(crate) fn new(
        topic: &str,
        qos: QoS,
        size: usize,
        version: ProtocolVersion,
    ) -> anyhow::Result<Template> {
        let topic =
            midge_proto::TopicName::new(topic).map_err(|e| anyhow!("bad topic {topic:?}: {e}"))?;
        // A recognisable filler after the header, so a packet capture is easy to read.
        let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let mut publish = midge_proto::Publish::new(topic, payload);
        publish.qos = qos;
        if qos != QoS::AtMostOnce {
            publish.packet_id = Some(PacketId::MIN);
        }
        let mut buf = BytesMut::new();
        Packet::Publish(publish)
            .encode(version, &mut buf)
            .map_err(|e| anyhow!("cannot encode PUBLISH: {e}"))?;
        let payload_at = buf.len() - size;
        // What precedes the payload: the Packet Identifier, then (MQTT 5) an empty property
        // list, one zero byte.
        let packet_id_at = payload_at - 2 - usize::from(version.is_v5());
        Ok(Template {
            bytes: buf.chunk().to_vec(),
            packet_id_at,
            payload_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::Stamp;

    #[test]
    fn template_patches_decode_as_intended() {
        for version in [
            ProtocolVersion::V3_1,
            ProtocolVersion::V3_1_1,
            ProtocolVersion::V5,
        ] {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let t = Template::new("a/b/c", qos, 300, version).expect("template");
                let mut bytes = t.bytes.clone();
                if qos != QoS::AtMostOnce {
                    bytes[t.packet_id_at..t.packet_id_at + 2]
                        .copy_from_slice(&513u16.to_be_bytes());
                }
                let stamp = Stamp {
                    publisher: 3,
                    topic: 9,
                    seq: 77,
                    sent_ns: 5,
                };
                stamp.write(&mut bytes[t.payload_at..]);
                let Packet::Publish(p) = Packet::decode(&bytes, version).expect("decodes") else {
                    panic!("not a PUBLISH");
                };
                assert_eq!(p.qos, qos);
                assert_eq!(p.topic.as_str(), "a/b/c");
                assert_eq!(p.payload.len(), 300);
                if qos != QoS::AtMostOnce {
                    assert_eq!(p.packet_id.map(PacketId::get), Some(513));
                }
                assert_eq!(Stamp::read(&p.payload), Some(stamp));
                // The in-place reader agrees with the decoder.
                let (frame, len) = next_frame(&bytes, version).expect("ok").expect("complete");
                assert_eq!(len, bytes.len());
                let Frame::Publish {
                    qos: q,
                    packet_id,
                    payload,
                } = frame
                else {
                    panic!("not read as PUBLISH");
                };
                assert_eq!(q, qos.as_u8());
                assert_eq!(payload, &p.payload[..]);
                if qos != QoS::AtMostOnce {
                    assert_eq!(packet_id, 513);
                }
                assert!(
                    next_frame(&bytes[..bytes.len() - 1], version)
                        .expect("ok")
                        .is_none()
                );
            }
        }
    }

    #[test]
    fn reads_v5_publish_with_properties_and_acks() {
        let mut publish =
            midge_proto::Publish::new(midge_proto::TopicName::new("t").expect("topic"), "xyz");
        publish.qos = QoS::AtLeastOnce;
        publish.packet_id = PacketId::new(9);
        publish
            .properties
            .push(midge_proto::Property::SubscriptionIdentifier(300));
        let mut buf = BytesMut::new();
        Packet::Publish(publish)
            .encode(ProtocolVersion::V5, &mut buf)
            .expect("encode");
        let (frame, _) = next_frame(&buf, ProtocolVersion::V5)
            .expect("ok")
            .expect("complete");
        assert!(matches!(
            frame,
            Frame::Publish {
                qos: 1,
                packet_id: 9,
                payload: b"xyz"
            }
        ));
        let mut acks = Vec::new();
        put_ack(&mut acks, PUBACK, 7);
        acks.extend_from_slice(&[0x50, 0x03, 0x00, 0x08, 0x87]); // PUBREC with a failure code
        let (frame, n) = next_frame(&acks, ProtocolVersion::V5)
            .expect("ok")
            .expect("some");
        assert!(matches!(
            frame,
            Frame::Ack {
                kind: 4,
                packet_id: 7,
                reason: 0
            }
        ));
        let (frame, _) = next_frame(&acks[n..], ProtocolVersion::V5)
            .expect("ok")
            .expect("some");
        assert!(matches!(
            frame,
            Frame::Ack {
                kind: 5,
                packet_id: 8,
                reason: 0x87
            }
        ));
        assert!(next_frame(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], ProtocolVersion::V5).is_err());
    }
}
