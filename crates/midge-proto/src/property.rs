//! MQTT 5 properties (§2.2.2): the identifiers, their value types, the packets that may
//! carry each one, and a compact ordered container.

use bytes::Bytes;
use bytestring::ByteString;

use crate::QoS;
use crate::packet::PacketType;
use crate::topic::TopicName;

/// Where a property list appears: in a packet's variable header, or in CONNECT's Will
/// Properties (which allow a different set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyContext {
    /// The property list of a packet.
    Packet(PacketType),
    /// The Will Properties of CONNECT.
    Will,
}

impl PropertyContext {
    /// A name for error messages.
    pub fn name(self) -> &'static str {
        match self {
            PropertyContext::Packet(p) => p.name(),
            PropertyContext::Will => "Will Properties",
        }
    }
}

/// One MQTT 5 property with its typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Property {
    /// 0x01 Payload Format Indicator: `true` when the payload is UTF-8.
    PayloadFormatIndicator(bool),
    /// 0x02 Message Expiry Interval, seconds.
    MessageExpiryInterval(u32),
    /// 0x03 Content Type.
    ContentType(ByteString),
    /// 0x08 Response Topic.
    ResponseTopic(TopicName),
    /// 0x09 Correlation Data.
    CorrelationData(Bytes),
    /// 0x0B Subscription Identifier, 1 to 268,435,455.
    SubscriptionIdentifier(u32),
    /// 0x11 Session Expiry Interval, seconds.
    SessionExpiryInterval(u32),
    /// 0x12 Assigned Client Identifier.
    AssignedClientIdentifier(ByteString),
    /// 0x13 Server Keep Alive, seconds.
    ServerKeepAlive(u16),
    /// 0x15 Authentication Method.
    AuthenticationMethod(ByteString),
    /// 0x16 Authentication Data.
    AuthenticationData(Bytes),
    /// 0x17 Request Problem Information.
    RequestProblemInformation(bool),
    /// 0x18 Will Delay Interval, seconds.
    WillDelayInterval(u32),
    /// 0x19 Request Response Information.
    RequestResponseInformation(bool),
    /// 0x1A Response Information.
    ResponseInformation(ByteString),
    /// 0x1C Server Reference.
    ServerReference(ByteString),
    /// 0x1F Reason String.
    ReasonString(ByteString),
    /// 0x21 Receive Maximum, non-zero.
    ReceiveMaximum(u16),
    /// 0x22 Topic Alias Maximum.
    TopicAliasMaximum(u16),
    /// 0x23 Topic Alias, non-zero.
    TopicAlias(u16),
    /// 0x24 Maximum QoS, 0 or 1.
    MaximumQoS(QoS),
    /// 0x25 Retain Available.
    RetainAvailable(bool),
    /// 0x26 User Property: a name/value pair; may repeat, order is kept.
    UserProperty(ByteString, ByteString),
    /// 0x27 Maximum Packet Size, non-zero.
    MaximumPacketSize(u32),
    /// 0x28 Wildcard Subscription Available.
    WildcardSubscriptionAvailable(bool),
    /// 0x29 Subscription Identifier Available.
    SubscriptionIdentifierAvailable(bool),
    /// 0x2A Shared Subscription Available.
    SharedSubscriptionAvailable(bool),
}

use PacketType as T;

/// Static facts about one property identifier.
#[derive(Debug)]
pub(crate) struct PropertySpec {
    pub(crate) name: &'static str,
    packets: &'static [PacketType],
    in_will: bool,
}

const ACKS_AND_MORE: &[PacketType] = &[
    T::ConnAck,
    T::PubAck,
    T::PubRec,
    T::PubRel,
    T::PubComp,
    T::SubAck,
    T::UnsubAck,
    T::Disconnect,
    T::Auth,
];
const ALL: &[PacketType] = &[
    T::Connect,
    T::ConnAck,
    T::Publish,
    T::PubAck,
    T::PubRec,
    T::PubRel,
    T::PubComp,
    T::Subscribe,
    T::SubAck,
    T::Unsubscribe,
    T::UnsubAck,
    T::Disconnect,
    T::Auth,
];

const fn spec(name: &'static str, packets: &'static [PacketType], in_will: bool) -> PropertySpec {
    PropertySpec {
        name,
        packets,
        in_will,
    }
}

/// MQTT 5.0 Table 2-4: the identifier, name and packets of each property.
pub(crate) fn property_spec(id: u8) -> Option<PropertySpec> {
    Some(match id {
        0x01 => spec("Payload Format Indicator", &[T::Publish], true),
        0x02 => spec("Message Expiry Interval", &[T::Publish], true),
        0x03 => spec("Content Type", &[T::Publish], true),
        0x08 => spec("Response Topic", &[T::Publish], true),
        0x09 => spec("Correlation Data", &[T::Publish], true),
        0x0B => spec(
            "Subscription Identifier",
            &[T::Publish, T::Subscribe],
            false,
        ),
        0x11 => spec(
            "Session Expiry Interval",
            &[T::Connect, T::ConnAck, T::Disconnect],
            false,
        ),
        0x12 => spec("Assigned Client Identifier", &[T::ConnAck], false),
        0x13 => spec("Server Keep Alive", &[T::ConnAck], false),
        0x15 => spec(
            "Authentication Method",
            &[T::Connect, T::ConnAck, T::Auth],
            false,
        ),
        0x16 => spec(
            "Authentication Data",
            &[T::Connect, T::ConnAck, T::Auth],
            false,
        ),
        0x17 => spec("Request Problem Information", &[T::Connect], false),
        0x18 => spec("Will Delay Interval", &[], true),
        0x19 => spec("Request Response Information", &[T::Connect], false),
        0x1A => spec("Response Information", &[T::ConnAck], false),
        0x1C => spec("Server Reference", &[T::ConnAck, T::Disconnect], false),
        0x1F => spec("Reason String", ACKS_AND_MORE, false),
        0x21 => spec("Receive Maximum", &[T::Connect, T::ConnAck], false),
        0x22 => spec("Topic Alias Maximum", &[T::Connect, T::ConnAck], false),
        0x23 => spec("Topic Alias", &[T::Publish], false),
        0x24 => spec("Maximum QoS", &[T::ConnAck], false),
        0x25 => spec("Retain Available", &[T::ConnAck], false),
        0x26 => spec("User Property", ALL, true),
        0x27 => spec("Maximum Packet Size", &[T::Connect, T::ConnAck], false),
        0x28 => spec("Wildcard Subscription Available", &[T::ConnAck], false),
        0x29 => spec("Subscription Identifier Available", &[T::ConnAck], false),
        0x2A => spec("Shared Subscription Available", &[T::ConnAck], false),
        _ => return None,
    })
}

impl PropertySpec {
    /// Whether the property may appear in `context` (Table 2-4).
    pub(crate) fn allowed_in(&self, context: PropertyContext) -> bool {
        match context {
            PropertyContext::Packet(p) => self.packets.contains(&p),
            PropertyContext::Will => self.in_will,
        }
    }
}

/// Whether property `id` may appear more than once in `context`: User Property always,
/// Subscription Identifier in PUBLISH (one per matching subscription, `[MQTT-3.3.4-3]`).
pub(crate) fn may_repeat(id: u8, context: PropertyContext) -> bool {
    id == 0x26 || (id == 0x0B && context == PropertyContext::Packet(PacketType::Publish))
}

impl Property {
    /// The property identifier byte.
    pub fn id(&self) -> u8 {
        match self {
            Property::PayloadFormatIndicator(_) => 0x01,
            Property::MessageExpiryInterval(_) => 0x02,
            Property::ContentType(_) => 0x03,
            Property::ResponseTopic(_) => 0x08,
            Property::CorrelationData(_) => 0x09,
            Property::SubscriptionIdentifier(_) => 0x0B,
            Property::SessionExpiryInterval(_) => 0x11,
            Property::AssignedClientIdentifier(_) => 0x12,
            Property::ServerKeepAlive(_) => 0x13,
            Property::AuthenticationMethod(_) => 0x15,
            Property::AuthenticationData(_) => 0x16,
            Property::RequestProblemInformation(_) => 0x17,
            Property::WillDelayInterval(_) => 0x18,
            Property::RequestResponseInformation(_) => 0x19,
            Property::ResponseInformation(_) => 0x1A,
            Property::ServerReference(_) => 0x1C,
            Property::ReasonString(_) => 0x1F,
            Property::ReceiveMaximum(_) => 0x21,
            Property::TopicAliasMaximum(_) => 0x22,
            Property::TopicAlias(_) => 0x23,
            Property::MaximumQoS(_) => 0x24,
            Property::RetainAvailable(_) => 0x25,
            Property::UserProperty(..) => 0x26,
            Property::MaximumPacketSize(_) => 0x27,
            Property::WildcardSubscriptionAvailable(_) => 0x28,
            Property::SubscriptionIdentifierAvailable(_) => 0x29,
            Property::SharedSubscriptionAvailable(_) => 0x2A,
        }
    }

    /// The property's name as the specification writes it.
    pub fn name(&self) -> &'static str {
        property_spec(self.id()).map_or("unknown property", |s| s.name)
    }
}

/// The properties of one packet, in the order they were received or added.
///
/// Empty property lists (every MQTT 3.x packet) do not allocate. Order is kept so that User
/// Properties are forwarded unchanged and in order (`[MQTT-3.3.2-18]`) and so that decoding and
/// re-encoding a packet reproduces its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties(Vec<Property>);

macro_rules! getter {
    ($(#[$doc:meta])* $fn:ident, $variant:ident, $ty:ty, |$v:ident| $conv:expr) => {
        $(#[$doc])*
        pub fn $fn(&self) -> Option<$ty> {
            self.0.iter().find_map(|p| match p {
                Property::$variant($v) => Some($conv),
                _ => None,
            })
        }
    };
}

impl Properties {
    /// An empty list.
    pub const fn new() -> Properties {
        Properties(Vec::new())
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of properties.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The properties in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Property> {
        self.0.iter()
    }

    /// Appends a property, keeping any already present (use for User Property and repeated
    /// Subscription Identifiers).
    pub fn push(&mut self, property: Property) {
        self.0.push(property);
    }

    /// Sets a property, replacing every property with the same identifier.
    pub fn set(&mut self, property: Property) {
        let id = property.id();
        if let Some(pos) = self.0.iter().position(|p| p.id() == id) {
            self.0[pos] = property;
            let mut seen = false;
            self.0.retain(|p| {
                if p.id() != id {
                    return true;
                }
                let keep = !seen;
                seen = true;
                keep
            });
        } else {
            self.0.push(property);
        }
    }

    /// Removes every property with identifier `id`.
    pub fn remove(&mut self, id: u8) {
        self.0.retain(|p| p.id() != id);
    }

    /// Keeps the properties for which `keep` returns true.
    pub fn retain(&mut self, keep: impl FnMut(&Property) -> bool) {
        self.0.retain(keep);
    }

    /// Builder form of [`Properties::push`].
    pub fn with(mut self, property: Property) -> Properties {
        self.push(property);
        self
    }

    getter!(
        /// 0x01 Payload Format Indicator.
        payload_format_indicator, PayloadFormatIndicator, bool, |v| *v);
    getter!(
        /// 0x02 Message Expiry Interval.
        message_expiry_interval, MessageExpiryInterval, u32, |v| *v);
    getter!(
        /// 0x03 Content Type.
        content_type, ContentType, &ByteString, |v| v);
    getter!(
        /// 0x08 Response Topic.
        response_topic, ResponseTopic, &TopicName, |v| v);
    getter!(
        /// 0x09 Correlation Data.
        correlation_data, CorrelationData, &Bytes, |v| v);
    getter!(
        /// 0x11 Session Expiry Interval.
        session_expiry_interval, SessionExpiryInterval, u32, |v| *v);
    getter!(
        /// 0x12 Assigned Client Identifier.
        assigned_client_identifier, AssignedClientIdentifier, &ByteString, |v| v);
    getter!(
        /// 0x13 Server Keep Alive.
        server_keep_alive, ServerKeepAlive, u16, |v| *v);
    getter!(
        /// 0x15 Authentication Method.
        authentication_method, AuthenticationMethod, &ByteString, |v| v);
    getter!(
        /// 0x16 Authentication Data.
        authentication_data, AuthenticationData, &Bytes, |v| v);
    getter!(
        /// 0x17 Request Problem Information.
        request_problem_information, RequestProblemInformation, bool, |v| *v);
    getter!(
        /// 0x18 Will Delay Interval.
        will_delay_interval, WillDelayInterval, u32, |v| *v);
    getter!(
        /// 0x19 Request Response Information.
        request_response_information, RequestResponseInformation, bool, |v| *v);
    getter!(
        /// 0x1A Response Information.
        response_information, ResponseInformation, &ByteString, |v| v);
    getter!(
        /// 0x1C Server Reference.
        server_reference, ServerReference, &ByteString, |v| v);
    getter!(
        /// 0x1F Reason String.
        reason_string, ReasonString, &ByteString, |v| v);
    getter!(
        /// 0x21 Receive Maximum.
        receive_maximum, ReceiveMaximum, u16, |v| *v);
    getter!(
        /// 0x22 Topic Alias Maximum.
        topic_alias_maximum, TopicAliasMaximum, u16, |v| *v);
    getter!(
        /// 0x23 Topic Alias.
        topic_alias, TopicAlias, u16, |v| *v);
    getter!(
        /// 0x24 Maximum QoS.
        maximum_qos, MaximumQoS, QoS, |v| *v);
    getter!(
        /// 0x25 Retain Available.
        retain_available, RetainAvailable, bool, |v| *v);
    getter!(
        /// 0x27 Maximum Packet Size.
        maximum_packet_size, MaximumPacketSize, u32, |v| *v);
    getter!(
        /// 0x28 Wildcard Subscription Available.
        wildcard_subscription_available, WildcardSubscriptionAvailable, bool, |v| *v);
    getter!(
        /// 0x29 Subscription Identifier Available.
        subscription_identifier_available, SubscriptionIdentifierAvailable, bool, |v| *v);
    getter!(
        /// 0x2A Shared Subscription Available.
        shared_subscription_available, SharedSubscriptionAvailable, bool, |v| *v);

    /// Every Subscription Identifier, in order.
    pub fn subscription_identifiers(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().filter_map(|p| match p {
            Property::SubscriptionIdentifier(v) => Some(*v),
            _ => None,
        })
    }

    /// Every User Property, in order.
    pub fn user_properties(&self) -> impl Iterator<Item = (&ByteString, &ByteString)> + '_ {
        self.0.iter().filter_map(|p| match p {
            Property::UserProperty(k, v) => Some((k, v)),
            _ => None,
        })
    }
}

impl FromIterator<Property> for Properties {
    fn from_iter<I: IntoIterator<Item = Property>>(iter: I) -> Self {
        Properties(iter.into_iter().collect())
    }
}

impl From<Vec<Property>> for Properties {
    fn from(v: Vec<Property>) -> Self {
        Properties(v)
    }
}

impl<'a> IntoIterator for &'a Properties {
    type Item = &'a Property;
    type IntoIter = std::slice::Iter<'a, Property>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_and_push_keeps() {
        let mut p = Properties::new();
        p.push(Property::UserProperty("a".into(), "1".into()));
        p.set(Property::MessageExpiryInterval(5));
        p.set(Property::MessageExpiryInterval(7));
        p.push(Property::UserProperty("a".into(), "2".into()));
        assert_eq!(p.message_expiry_interval(), Some(7));
        assert_eq!(p.len(), 3);
        let users: Vec<_> = p.user_properties().map(|(_, v)| v.to_string()).collect();
        assert_eq!(users, ["1", "2"]);
    }

    #[test]
    fn table_2_4_contexts() {
        let will_delay = property_spec(0x18).expect("exists");
        assert!(will_delay.allowed_in(PropertyContext::Will));
        assert!(!will_delay.allowed_in(PropertyContext::Packet(PacketType::Connect)));
        let alias = property_spec(0x23).expect("exists");
        assert!(!alias.allowed_in(PropertyContext::Will));
        assert!(property_spec(0x04).is_none());
        assert!(may_repeat(
            0x0B,
            PropertyContext::Packet(PacketType::Publish)
        ));
        assert!(!may_repeat(
            0x0B,
            PropertyContext::Packet(PacketType::Subscribe)
        ));
    }
}
