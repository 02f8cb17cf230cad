//! SUBSCRIBE and UNSUBSCRIBE (MQTT 5.0 §3.8, §3.10).

use crate::property::Properties;
use crate::topic::TopicFilter;
use crate::{PacketId, QoS};

/// Whether retained messages are sent when a subscription is made (MQTT 5.0 §3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription does not currently exist.
    SendAtSubscribeIfNew = 1,
    /// 2: do not send retained messages.
    DoNotSend = 2,
}

impl RetainHandling {
    /// From the two-bit wire value; 3 is a protocol error.
    pub const fn from_u8(value: u8) -> Option<RetainHandling> {
        match value {
            0 => Some(RetainHandling::SendAtSubscribe),
            1 => Some(RetainHandling::SendAtSubscribeIfNew),
            2 => Some(RetainHandling::DoNotSend),
            _ => None,
        }
    }
}

/// The Subscription Options byte (MQTT 5.0 §3.8.3.1). MQTT 3.x carries only the QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local: do not deliver messages published by this connection.
    pub no_local: bool,
    /// Retain As Published: keep the RETAIN flag of forwarded messages.
    pub retain_as_published: bool,
    /// Retain Handling.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with the given QoS and MQTT 5 defaults for the rest.
    pub fn qos(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        }
    }
}

/// One entry of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// The Topic Filter.
    pub filter: TopicFilter,
    /// Its options.
    pub options: SubscriptionOptions,
}

/// SUBSCRIBE: a request for one or more subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet Identifier.
    pub packet_id: PacketId,
    /// Properties (MQTT 5): Subscription Identifier, User Property.
    pub properties: Properties,
    /// At least one filter (`[MQTT-3.8.3-2]`).
    pub filters: Vec<SubscribeFilter>,
}

/// UNSUBSCRIBE: a request to remove subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet Identifier.
    pub packet_id: PacketId,
    /// Properties (MQTT 5): User Property.
    pub properties: Properties,
    /// At least one filter (`[MQTT-3.10.3-2]`).
    pub filters: Vec<TopicFilter>,
}
