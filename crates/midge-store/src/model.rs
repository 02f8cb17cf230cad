//! What the store keeps, independent of the engine.

use std::collections::HashMap;

use midge_proto::{Publish, SubscriptionOptions};

/// A message referenced by session queues and/or the retained store. Stored once however
/// many sessions queue it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Topic, payload, QoS, RETAIN and the forwarded properties, as a PUBLISH (no packet id,
    /// no DUP, no topic alias, no subscription identifiers, no Message Expiry Interval).
    pub publish: Publish,
    /// When the message expires, in milliseconds since the Unix epoch (wall clock, so expiry
    /// continues across a restart).
    pub expires_at_ms: Option<u64>,
    /// Client identifier of the publisher (for No Local).
    pub origin: Option<String>,
}

/// One subscription of a persistent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The topic filter as subscribed (including any `$share/{group}/` prefix).
    pub filter: String,
    /// Subscription options.
    pub options: SubscriptionOptions,
    /// Subscription Identifier.
    pub identifier: Option<u32>,
}

/// A will waiting on its Will Delay Interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWill {
    /// The will as a message.
    pub message: StoredMessage,
    /// When to publish it, ms since the Unix epoch.
    pub publish_at_ms: u64,
}

/// A persistent session (Session Expiry Interval > 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// Session Expiry Interval in seconds; `u32::MAX` never expires.
    pub expiry_interval: u32,
    /// When the last connection ended (ms since the Unix epoch); `None` while connected. After
    /// a crash a connected session counts as disconnected at recovery time.
    pub disconnected_at_ms: Option<u64>,
    /// Subscriptions.
    pub subscriptions: Vec<StoredSubscription>,
    /// QoS 2 packet identifiers received from the client and awaiting PUBREL. Written with
    /// [`Op::PutPubRel`]/[`Op::DeletePubRel`]; filled in by [`crate::Store::load`]. Ids given
    /// here in a `PutSession` are stored as well.
    pub awaiting_pubrel: Vec<u16>,
    /// A delayed will.
    pub will: Option<StoredWill>,
}

/// Where a queued delivery stands. Packet identifiers are recorded once assigned so a QoS 2
/// resend after a crash uses the same identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not sent yet.
    Queued,
    /// QoS 1 PUBLISH sent with this identifier.
    AwaitingPubAck(u16),
    /// QoS 2 PUBLISH sent with this identifier.
    AwaitingPubRec(u16),
    /// PUBREL sent for this identifier.
    AwaitingPubComp(u16),
}

/// One message queued for (or in flight to) one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    /// The message.
    pub message_id: u64,
    /// Delivery QoS.
    pub qos: u8,
    /// RETAIN flag to send.
    pub retain: bool,
    /// Matching subscription identifiers.
    pub subscription_ids: Vec<u32>,
    /// `(group, filter)` when delivered through a shared subscription.
    pub shared: Option<(String, String)>,
    /// Progress.
    pub state: DeliveryState,
}

/// One change. A batch of them is committed atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Stores a message under `id` (the broker allocates ids).
    PutMessage {
        /// Message id.
        id: u64,
        /// The message.
        message: StoredMessage,
    },
    /// Creates or replaces a session record (its queue is untouched).
    PutSession {
        /// Client identifier.
        client_id: String,
        /// The record.
        session: StoredSession,
    },
    /// Deletes a session and its whole queue.
    DeleteSession {
        /// Client identifier.
        client_id: String,
    },
    /// Adds or replaces a delivery at position `seq` of a session's queue.
    PutDelivery {
        /// Client identifier.
        client_id: String,
        /// Position; increasing per session.
        seq: u64,
        /// The delivery.
        delivery: StoredDelivery,
    },
    /// Removes a delivery (acknowledged, expired or dropped).
    DeleteDelivery {
        /// Client identifier.
        client_id: String,
        /// Position.
        seq: u64,
    },
    /// Makes message `message_id` the retained message of `topic`.
    PutRetained {
        /// Topic name.
        topic: String,
        /// Message id (stored by a `PutMessage` in the same or an earlier batch).
        message_id: u64,
    },
    /// Clears the retained message of `topic`.
    DeleteRetained {
        /// Topic name.
        topic: String,
    },
    /// Records a QoS 2 packet identifier received from the client and awaiting PUBREL
    /// (kept apart from the session record so each QoS 2 message writes a few bytes).
    PutPubRel {
        /// Client identifier.
        client_id: String,
        /// Packet identifier.
        packet_id: u16,
    },
    /// Forgets a QoS 2 packet identifier (PUBREL arrived).
    DeletePubRel {
        /// Client identifier.
        client_id: String,
        /// Packet identifier.
        packet_id: u16,
    },
}

/// A persistent session as loaded at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSession {
    /// Client identifier.
    pub client_id: String,
    /// The record.
    pub session: StoredSession,
    /// The queue, in `seq` order.
    pub deliveries: Vec<(u64, StoredDelivery)>,
}

/// Everything in the store, read once at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Messages referenced by deliveries or retained topics.
    pub messages: HashMap<u64, StoredMessage>,
    /// Persistent sessions with their queues.
    pub sessions: Vec<LoadedSession>,
    /// Retained topics and their message ids.
    pub retained: Vec<(String, u64)>,
}

impl Snapshot {
    /// The largest message id in use (0 when empty); new ids start above it.
    pub fn max_message_id(&self) -> u64 {
        self.messages.keys().copied().max().unwrap_or(0)
    }
}
