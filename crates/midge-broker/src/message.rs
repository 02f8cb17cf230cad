//! Application Messages as the broker holds them: shared, immutable, routed by reference.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use midge_proto::{ByteString, Properties, Property, Publish, QoS, TopicName};
use smallvec::SmallVec;

/// One published message. Created once per PUBLISH and shared (`Arc`) by every subscriber
/// queue it is delivered to; the payload is never copied.
#[derive(Debug)]
pub struct Message {
    /// Topic Name (aliases already resolved).
    pub topic: TopicName,
    /// Payload.
    pub payload: Bytes,
    /// QoS it was published with.
    pub qos: QoS,
    /// Whether it was published with RETAIN.
    pub retain: bool,
    /// Properties forwarded to subscribers unchanged and in order: Payload Format Indicator,
    /// Content Type, Response Topic, Correlation Data, User Properties (`[MQTT-3.3.2-4]`,
    /// `[MQTT-3.3.2-15]`, `[MQTT-3.3.2-17]`, `[MQTT-3.3.2-18]`, `[MQTT-3.3.2-20]`). Topic Alias,
    /// Subscription Identifier and Message Expiry Interval are set per delivery.
    pub properties: Properties,
    /// When the message expires (Message Expiry Interval), if it does.
    pub expires_at: Option<Instant>,
    /// Client identifier of the publisher, for No Local (`[MQTT-3.8.3-3]`).
    pub origin: Option<ByteString>,
    /// The message's id in the durable store, once stored (it is stored once, however many
    /// persistent sessions queue it).
    pub store_id: std::sync::OnceLock<u64>,
}

impl Message {
    /// Builds a message from a PUBLISH received from `origin`.
    pub fn from_publish(
        publish: &Publish,
        topic: TopicName,
        origin: Option<ByteString>,
    ) -> Message {
        let now = Instant::now();
        let mut properties = Properties::new();
        let mut expires_at = None;
        for p in &publish.properties {
            match p {
                Property::TopicAlias(_) | Property::SubscriptionIdentifier(_) => {}
                Property::MessageExpiryInterval(secs) => {
                    expires_at = Some(now + Duration::from_secs(u64::from(*secs)));
                }
                other => properties.push(other.clone()),
            }
        }
        Message {
            topic,
            payload: publish.payload.clone(),
            qos: publish.qos,
            retain: publish.retain,
            properties,
            expires_at,
            origin,
            store_id: std::sync::OnceLock::new(),
        }
    }

    /// Whether the message has expired at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Seconds left before expiry, rounded up, for the forwarded Message Expiry Interval
    /// (`[MQTT-3.3.2-6]`).
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|t| {
            let left = t.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }

    /// Bytes this message accounts for in queue limits.
    pub fn size(&self) -> usize {
        self.payload.len() + self.topic.as_str().len()
    }
}

/// Subscription identifiers that matched one delivery; usually none or one.
pub type SubscriptionIds = SmallVec<[u32; 1]>;

/// Identifies the shared subscription a delivery came through, so an unacknowledged message
/// can be handed to another member when this one leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedOrigin {
    /// The ShareName.
    pub group: Arc<str>,
    /// The inner topic filter.
    pub filter: Arc<str>,
}

/// One message on its way to one session.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The shared message.
    pub message: Arc<Message>,
    /// QoS of this delivery: min(publish QoS, subscription QoS).
    pub qos: QoS,
    /// RETAIN flag to send.
    pub retain: bool,
    /// Matching subscription identifiers (MQTT 5).
    pub subscription_ids: SubscriptionIds,
    /// Set when delivered through a shared subscription.
    pub shared: Option<SharedOrigin>,
    /// Position in the session's stored queue, when the delivery is persisted.
    pub seq: Option<u64>,
    /// The store commit that holds this delivery's stored copy (and the publisher's QoS 2
    /// state), when it had not completed as the delivery was queued. A QoS 2 delivery is not
    /// sent before it completes: a receiver that hands messages on at PUBLISH (method B)
    /// would otherwise see the message twice if the broker crashed before the commit and the
    /// publisher resent it.
    pub commit: Option<midge_store::Ticket>,
}
