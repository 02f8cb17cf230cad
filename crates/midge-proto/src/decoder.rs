//! The streaming decoder: bytes in, packets out, for input split at any byte.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::packet::{Packet, PacketType, ProtocolVersion};
use crate::wire::{MAX_VARINT, check_fixed_header, decode_body, parse_varint};

/// The largest packet MQTT can express: a 1-byte header, 4-byte length and 268,435,455-byte
/// body.
pub const PROTOCOL_MAX_PACKET_SIZE: u32 = 1 + 4 + MAX_VARINT;

/// Splits a byte stream into packets.
///
/// Feed it whatever arrived in a `BytesMut` and call [`Decoder::decode`] until it returns
/// `Ok(None)`; unconsumed bytes stay in the buffer for the next read. The Maximum Packet Size
/// is checked as soon as the fixed header is complete, before the body is buffered, so an
/// oversized packet costs at most five bytes of memory. After an error the stream cannot be
/// resynchronised: the connection must be closed.
#[derive(Debug, Clone)]
pub struct Decoder {
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
}

impl Decoder {
    /// A server-side decoder: the first packet must be CONNECT (`[MQTT-3.1.0-1]`), and its
    /// protocol level fixes the version for the rest of the connection.
    pub fn server(max_packet_size: u32) -> Decoder {
        Decoder {
            version: None,
            max_packet_size,
        }
    }

    /// A decoder for a known version (a client after sending CONNECT).
    pub fn with_version(version: ProtocolVersion, max_packet_size: u32) -> Decoder {
        Decoder {
            version: Some(version),
            max_packet_size,
        }
    }

    /// The connection's protocol version, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Sets the protocol version.
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = Some(version);
    }

    /// The Maximum Packet Size in force.
    pub fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// Changes the Maximum Packet Size.
    pub fn set_max_packet_size(&mut self, max_packet_size: u32) {
        self.max_packet_size = max_packet_size;
    }

    /// Decodes the next complete packet from the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        if self.version.is_none() && first >> 4 != PacketType::Connect as u8 {
            let packet = PacketType::from_nibble(first >> 4)
                .ok_or(DecodeError::ReservedPacketType(first >> 4))?;
            return Err(DecodeError::FirstPacketNotConnect(packet));
        }
        // Refuse a bad first byte at once, rather than after waiting for a body that may
        // never come (e.g. an HTTP request sent to the MQTT port).
        check_fixed_header(first, self.version.unwrap_or(ProtocolVersion::V5))?;
        let Some((remaining, len_bytes)) = parse_varint(&buf[1..])? else {
            return Ok(None);
        };
        let header = 1 + len_bytes;
        let total = header + remaining as usize;
        if total > self.max_packet_size as usize {
            return Err(DecodeError::PacketTooLarge {
                size: total,
                maximum: self.max_packet_size,
            });
        }
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut frame = buf.split_to(total);
        frame.advance(header);
        let body: Bytes = frame.freeze();
        // CONNECT carries its own version; any other packet here follows a CONNECT.
        let version = self.version.unwrap_or(ProtocolVersion::V5);
        let packet = decode_body(first, body, version)?;
        if let (None, Packet::Connect(connect)) = (self.version, &packet) {
            self.version = Some(connect.protocol_version);
        }
        Ok(Some(packet))
    }
}

impl Packet {
    /// Decodes exactly one complete packet from `bytes` for `version`.
    ///
    /// Fails if `bytes` holds less or more than one packet.
    pub fn decode(bytes: &[u8], version: ProtocolVersion) -> Result<Packet, DecodeError> {
        let mut decoder = Decoder::with_version(version, PROTOCOL_MAX_PACKET_SIZE);
        let mut buf = BytesMut::from(bytes);
        match decoder.decode(&mut buf)? {
            Some(packet) if buf.is_empty() => Ok(packet),
            Some(packet) => Err(DecodeError::TrailingBytes {
                packet: packet.packet_type(),
                extra: buf.len(),
            }),
            None => {
                let packet = bytes
                    .first()
                    .and_then(|b| PacketType::from_nibble(b >> 4))
                    .unwrap_or(PacketType::Connect);
                Err(DecodeError::Truncated {
                    packet,
                    field: "fixed header or body",
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_packet_is_refused_from_its_header() {
        let mut d = Decoder::with_version(ProtocolVersion::V3_1_1, 100);
        // PUBLISH claiming a 1000-byte body; only the header has arrived.
        let mut buf = BytesMut::from(&[0x30u8, 0xE8, 0x07][..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(DecodeError::PacketTooLarge {
                size: 1003,
                maximum: 100
            })
        );
    }

    #[test]
    fn first_packet_must_be_connect() {
        let mut d = Decoder::server(1024);
        let mut buf = BytesMut::from(&[0xC0u8, 0x00][..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(DecodeError::FirstPacketNotConnect(PacketType::PingReq))
        );
    }

    #[test]
    fn decodes_every_packet_in_a_buffer_and_keeps_the_tail() {
        let mut d = Decoder::with_version(ProtocolVersion::V3_1_1, 1024);
        let mut buf = BytesMut::from(&[0xC0u8, 0x00, 0xD0, 0x00, 0xC0][..]);
        assert_eq!(d.decode(&mut buf), Ok(Some(Packet::PingReq)));
        assert_eq!(d.decode(&mut buf), Ok(Some(Packet::PingResp)));
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], &[0xC0]);
    }
}
