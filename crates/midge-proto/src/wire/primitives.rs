//! Data representations of MQTT 5.0 §1.5 / MQTT 3.1.1 §1.5: bytes, two- and four-byte
//! integers, Variable Byte Integers, UTF-8 strings and binary data.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::{DecodeError, EncodeError};
use crate::packet::PacketType;
use crate::{PacketId, QoS};

/// The largest value a Variable Byte Integer can hold (MQTT 5.0 §1.5.5).
pub const MAX_VARINT: u32 = 268_435_455;

/// Parses a Variable Byte Integer from the start of `buf`.
///
/// Returns `Ok(None)` when `buf` ends before the integer does, or the value and the number of
/// bytes it used. Rejects a fifth byte and non-minimal encodings (`[MQTT-1.5.5-1]`).
pub fn parse_varint(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().enumerate() {
        if i == 4 {
            return Err(DecodeError::VarIntTooLong);
        }
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // A final byte of zero after at least one other byte adds nothing: the sender
            // could have used fewer bytes.
            if i > 0 && byte == 0 {
                return Err(DecodeError::VarIntNotMinimal);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        return Err(DecodeError::VarIntTooLong);
    }
    Ok(None)
}

/// The number of bytes `value` takes as a Variable Byte Integer.
pub const fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `value` as a Variable Byte Integer. `value` must not exceed [`MAX_VARINT`].
pub(crate) fn put_varint(buf: &mut BytesMut, value: usize) {
    debug_assert!(value <= MAX_VARINT as usize);
    let mut v = value;
    loop {
        let mut byte = (v % 128) as u8;
        v /= 128;
        if v > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if v == 0 {
            break;
        }
    }
}

/// Length of a two-byte-prefixed string or binary field, checking the 65,535-byte limit.
pub(crate) fn prefixed_len(field: &'static str, len: usize) -> Result<usize, EncodeError> {
    if len > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong { field, len });
    }
    Ok(2 + len)
}

/// Appends a two-byte length and the bytes. The length was checked by [`prefixed_len`].
pub(crate) fn put_prefixed(buf: &mut BytesMut, data: &[u8]) {
    buf.put_u16(data.len() as u16);
    buf.put_slice(data);
}

/// A cursor over one packet's body. Every read names the field it reads, so a short packet
/// reports exactly what was missing.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    packet: PacketType,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, packet: PacketType) -> Reader {
        Reader { buf, packet }
    }

    pub(crate) fn packet(&self) -> PacketType {
        self.packet
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.remaining()
    }

    pub(crate) fn has_remaining(&self) -> bool {
        self.buf.has_remaining()
    }

    fn need(&self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        if self.buf.remaining() < n {
            return Err(DecodeError::Truncated {
                packet: self.packet,
                field,
            });
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.need(1, field)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.need(2, field)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.need(4, field)?;
        Ok(self.buf.get_u32())
    }

    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        match parse_varint(&self.buf)? {
            Some((value, used)) => {
                self.buf.advance(used);
                Ok(value)
            }
            None => Err(DecodeError::Truncated {
                packet: self.packet,
                field,
            }),
        }
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        self.need(n, field)?;
        Ok(self.buf.split_to(n))
    }

    /// Two-byte length followed by that many bytes (§1.5.6).
    pub(crate) fn binary(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u16(field)?;
        self.take(usize::from(len), field)
    }

    /// A UTF-8 Encoded String (§1.5.4): well-formed, no U+0000.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<ByteString, DecodeError> {
        let raw = self.binary(field)?;
        if raw.contains(&0) {
            return Err(DecodeError::NullCharacter(field));
        }
        ByteString::try_from(raw).map_err(|_| DecodeError::InvalidUtf8(field))
    }

    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        let raw = self.u16("packet identifier")?;
        PacketId::new(raw).ok_or(DecodeError::ZeroPacketId(self.packet))
    }

    /// Everything that is left (PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        self.buf.split_off(0)
    }

    /// Fails if bytes remain after the last field.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.has_remaining() {
            return Err(DecodeError::TrailingBytes {
                packet: self.packet,
                extra: self.buf.remaining(),
            });
        }
        Ok(())
    }
}

/// Decodes a QoS from two bits, mapping 3 to `err`.
pub(crate) fn qos_bits(bits: u8, err: DecodeError) -> Result<QoS, DecodeError> {
    QoS::from_u8(bits & 0b11).ok_or(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_boundaries_round_trip() {
        for value in [
            0usize,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            268_435_455,
        ] {
            let mut buf = BytesMut::new();
            put_varint(&mut buf, value);
            assert_eq!(buf.len(), varint_len(value));
            assert_eq!(parse_varint(&buf), Ok(Some((value as u32, buf.len()))));
        }
    }

    #[test]
    fn varint_rejects_five_bytes_and_non_minimal() {
        assert_eq!(
            parse_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
            Err(DecodeError::VarIntTooLong)
        );
        assert_eq!(
            parse_varint(&[0x80, 0x80, 0x80, 0x80]),
            Err(DecodeError::VarIntTooLong)
        );
        assert_eq!(
            parse_varint(&[0x80, 0x00]),
            Err(DecodeError::VarIntNotMinimal)
        );
        assert_eq!(parse_varint(&[0x80]), Ok(None));
        assert_eq!(parse_varint(&[]), Ok(None));
    }

    #[test]
    fn strings_reject_null_and_surrogates() {
        let mut r = Reader::new(
            Bytes::from_static(&[0, 3, b'a', 0, b'b']),
            PacketType::Publish,
        );
        assert_eq!(r.string("topic"), Err(DecodeError::NullCharacter("topic")));
        // U+D800 encoded as ED A0 80 is ill-formed UTF-8 [MQTT-1.5.4-1].
        let mut r = Reader::new(
            Bytes::from_static(&[0, 3, 0xED, 0xA0, 0x80]),
            PacketType::Publish,
        );
        assert_eq!(r.string("topic"), Err(DecodeError::InvalidUtf8("topic")));
        let mut r = Reader::new(Bytes::from_static(&[0, 5, b'a']), PacketType::Publish);
        assert_eq!(
            r.string("topic"),
            Err(DecodeError::Truncated {
                packet: PacketType::Publish,
                field: "topic"
            })
        );
    }
}
