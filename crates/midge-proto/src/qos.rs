//! Quality of Service levels and Packet Identifiers.

use std::fmt;
use std::num::NonZeroU16;

/// The delivery guarantee of an Application Message (MQTT 5.0 §4.3, MQTT 3.1.1 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// At most once delivery.
    #[default]
    AtMostOnce = 0,
    /// At least once delivery.
    AtLeastOnce = 1,
    /// Exactly once delivery.
    ExactlyOnce = 2,
}

impl QoS {
    /// Parses the two-bit wire value. `3` is not a QoS level and returns `None`
    /// (a PUBLISH with QoS 3 is malformed, `[MQTT-3.3.1-4]`).
    pub const fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// The wire value.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The lower of two levels: a message is delivered at `min(publish QoS, subscription QoS)`.
    pub fn min(self, other: QoS) -> QoS {
        std::cmp::min(self, other)
    }
}

impl fmt::Display for QoS {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u8())
    }
}

/// A Packet Identifier: non-zero by construction (`[MQTT-2.2.1-3]`, MQTT 3.1.1 `[MQTT-2.3.1-1]`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// Wraps a raw identifier; `None` for zero, which the protocol forbids.
    pub const fn new(value: u16) -> Option<PacketId> {
        match NonZeroU16::new(value) {
            Some(v) => Some(PacketId(v)),
            None => None,
        }
    }

    /// The raw value (never zero).
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The identifier after this one, wrapping from 65535 to 1.
    pub const fn next(self) -> PacketId {
        match NonZeroU16::new(self.0.get().wrapping_add(1)) {
            Some(v) => PacketId(v),
            None => PacketId(NonZeroU16::MIN),
        }
    }

    /// The smallest identifier, 1.
    pub const MIN: PacketId = PacketId(NonZeroU16::MIN);
}

impl fmt::Debug for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PacketId({})", self.get())
    }
}

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_id_wraps_past_65535_to_1() {
        let last = PacketId::new(u16::MAX).expect("non-zero");
        assert_eq!(last.next().get(), 1);
        assert!(PacketId::new(0).is_none());
    }

    #[test]
    fn qos_3_is_not_a_level() {
        assert_eq!(QoS::from_u8(3), None);
        assert_eq!(QoS::ExactlyOnce.min(QoS::AtLeastOnce), QoS::AtLeastOnce);
    }
}
