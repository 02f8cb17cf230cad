//! The bridge between the broker's in-memory state and the durable store: what is written
//! when, and how state comes back at start-up.
//!
//! What is stored: persistent sessions (Session Expiry Interval > 0) with their
//! subscriptions, delayed will and QoS 2 receive state; every delivery queued for them
//! (QoS 1/2 always, QoS 0 only while offline); retained messages. Messages only for
//! connected clean sessions never touch the store.
//!
//! Outgoing packet identifiers of stored deliveries are derived from their queue position
//! (`seq % 65535 + 1`), so a resend after a crash reuses the identifier the client saw and a
//! QoS 2 receiver does not deliver twice; only the PUBREC → PUBREL step is written before
//! the PUBREL goes out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use midge_proto::{PacketId, Publish};
use midge_store::{
    DeliveryState, Op, StoredDelivery, StoredMessage, StoredSession, StoredSubscription,
    StoredWill, Ticket, Writer,
};

use crate::message::{Delivery, Message};
use crate::session::Session;

/// While the store is full, one persistent message is let through this often: its commit is
/// how the broker learns that space has returned (a disk that fills up says nothing when it
/// empties again).
const FULL_PROBE_INTERVAL_MS: u64 = 500;

/// The broker's handle on the store.
#[derive(Debug)]
pub(crate) struct Persistence {
    pub(crate) writer: Writer,
    next_message_id: AtomicU64,
    max_store_bytes: u64,
    /// When the last message was let through as a probe while full (ms since the epoch).
    last_probe_ms: AtomicU64,
}

impl Persistence {
    pub(crate) fn new(writer: Writer, first_message_id: u64, max_store_bytes: u64) -> Persistence {
        Persistence {
            writer,
            next_message_id: AtomicU64::new(first_message_id.max(1)),
            max_store_bytes,
            last_probe_ms: AtomicU64::new(0),
        }
    }

    /// Queues a batch; `None` when there is nothing to write.
    pub(crate) fn submit(&self, ops: Vec<Op>) -> Option<Ticket> {
        (!ops.is_empty()).then(|| self.writer.submit(ops))
    }

    /// Whether new persistent messages must be refused: the stored messages reached the
    /// configured size limit (until consumed ones free room), or the disk is full (the last
    /// commit failed for lack of space). A full disk says nothing when space returns, so
    /// every [`FULL_PROBE_INTERVAL_MS`] one message is let through: if its commit succeeds,
    /// the store takes messages again.
    pub(crate) fn is_full(&self) -> bool {
        let status = self.writer.status();
        if self.max_store_bytes != 0 && status.live_bytes >= self.max_store_bytes {
            return true;
        }
        if !status.out_of_space {
            return false;
        }
        let now = now_ms();
        let last = self.last_probe_ms.load(Ordering::Acquire);
        let probe = now.saturating_sub(last) >= FULL_PROBE_INTERVAL_MS
            && self
                .last_probe_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        !probe
    }

    /// The store id of `message`, adding a `PutMessage` to `ops` the first time.
    pub(crate) fn ensure_stored(&self, message: &Message, ops: &mut Vec<Op>) -> u64 {
        let mut fresh = false;
        let id = *message.store_id.get_or_init(|| {
            fresh = true;
            self.next_message_id.fetch_add(1, Ordering::AcqRel)
        });
        if fresh {
            ops.push(Op::PutMessage {
                id,
                message: stored_message(message),
            });
        }
        id
    }

    /// Ops that put `delivery` (with its `seq`) into `client_id`'s stored queue.
    pub(crate) fn put_delivery(
        &self,
        client_id: &str,
        delivery: &Delivery,
        state: DeliveryState,
        ops: &mut Vec<Op>,
    ) {
        let Some(seq) = delivery.seq else { return };
        let message_id = self.ensure_stored(&delivery.message, ops);
        ops.push(Op::PutDelivery {
            client_id: client_id.to_owned(),
            seq,
            delivery: StoredDelivery {
                message_id,
                qos: delivery.qos.as_u8(),
                retain: delivery.retain,
                subscription_ids: delivery.subscription_ids.to_vec(),
                shared: delivery
                    .shared
                    .as_ref()
                    .map(|s| (s.group.to_string(), s.filter.to_string())),
                state,
            },
        });
    }
}

/// The packet identifier of a stored delivery: a function of its queue position.
pub(crate) fn packet_id_for(seq: u64) -> PacketId {
    PacketId::new((seq % 65_535) as u16 + 1).unwrap_or(PacketId::MIN)
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An `Instant` as wall-clock milliseconds (so deadlines survive a restart).
pub(crate) fn instant_to_ms(at: Instant) -> u64 {
    let now = Instant::now();
    let now_ms = now_ms();
    if at >= now {
        now_ms.saturating_add(at.duration_since(now).as_millis() as u64)
    } else {
        now_ms.saturating_sub(now.duration_since(at).as_millis() as u64)
    }
}

/// Wall-clock milliseconds as an `Instant` (in the past if already due).
pub(crate) fn ms_to_instant(ms: u64) -> Instant {
    let now = Instant::now();
    let now_ms = now_ms();
    if ms >= now_ms {
        now + Duration::from_millis(ms - now_ms)
    } else {
        now.checked_sub(Duration::from_millis(now_ms - ms))
            .unwrap_or(now)
    }
}

/// A message as the store keeps it.
pub(crate) fn stored_message(m: &Message) -> StoredMessage {
    StoredMessage {
        publish: Publish {
            dup: false,
            qos: m.qos,
            retain: m.retain,
            topic: m.topic.clone(),
            packet_id: None,
            properties: m.properties.clone(),
            payload: m.payload.clone(),
        },
        expires_at_ms: m.expires_at.map(instant_to_ms),
        origin: m.origin.as_ref().map(|o| o.to_string()),
    }
}

/// A stored message back in memory.
pub(crate) fn loaded_message(id: u64, m: StoredMessage) -> Arc<Message> {
    let message = Message {
        topic: m.publish.topic,
        payload: m.publish.payload,
        qos: m.publish.qos,
        retain: m.publish.retain,
        properties: m.publish.properties,
        expires_at: m.expires_at_ms.map(ms_to_instant),
        origin: m.origin.map(Into::into),
        store_id: std::sync::OnceLock::new(),
    };
    let _ = message.store_id.set(id);
    Arc::new(message)
}

/// The session record of `session` (offline since `session.offline_since_ms`, if set).
pub(crate) fn session_record(session: &Session) -> StoredSession {
    StoredSession {
        expiry_interval: session.expiry_interval,
        disconnected_at_ms: session.offline_since_ms,
        subscriptions: session
            .subscriptions
            .iter()
            .map(|(filter, entry)| StoredSubscription {
                filter: filter.as_str().to_owned(),
                options: entry.options,
                identifier: entry.identifier,
            })
            .collect(),
        awaiting_pubrel: session
            .incoming
            .awaiting_pubrel()
            .map(PacketId::get)
            .collect(),
        will: session.pending_will.as_ref().map(|w| StoredWill {
            message: stored_message(&w.message),
            publish_at_ms: instant_to_ms(w.at),
        }),
    }
}

/// Opens the store named by the configuration and reads it, or `None` for
/// `durability = "none"`.
pub(crate) fn open(
    config: &crate::config::StoreConfig,
) -> Result<Option<(Persistence, midge_store::Snapshot)>, midge_store::StoreError> {
    use crate::config::DurabilityMode;
    let durability = match config.durability {
        DurabilityMode::None => return Ok(None),
        DurabilityMode::Sync => midge_store::Durability::Sync,
        DurabilityMode::Periodic => {
            midge_store::Durability::Periodic(Duration::from_millis(config.sync_interval_ms.max(1)))
        }
    };
    let mut options = midge_store::StoreOptions::in_dir(&config.data_dir);
    options.cache_bytes = config.cache_mb.max(1) << 20;
    let store = midge_store::RedbStore::open(options)?;
    let snapshot = midge_store::Store::load(&store)?;
    let writer = Writer::spawn(Arc::new(store), durability)
        .map_err(|e| midge_store::StoreError::Io(format!("cannot start the store writer: {e}")))?;
    let first_id = snapshot.max_message_id() + 1;
    Ok(Some((
        Persistence::new(writer, first_id, config.max_store_bytes),
        snapshot,
    )))
}

impl crate::broker::Shared {
    /// Rebuilds sessions, subscriptions, queues and retained messages from the store.
    /// Session expiry, delayed wills and message expiry continue from wall-clock time.
    pub(crate) fn recover(
        self: &Arc<Self>,
        snapshot: midge_store::Snapshot,
    ) -> (usize, usize, usize) {
        use std::collections::HashMap;

        use midge_proto::{ByteString, TopicFilter, TopicName};

        use crate::broker::Subscriber;
        use crate::message::{SharedOrigin, SubscriptionIds};
        use crate::session::{PendingWill, SubscriptionEntry};

        let now = now_ms();
        let messages: HashMap<u64, Arc<Message>> = snapshot
            .messages
            .into_iter()
            .map(|(id, m)| (id, loaded_message(id, m)))
            .collect();
        let mut retained_count = 0;
        {
            let mut retained = self.retained.write();
            for (topic, id) in &snapshot.retained {
                if let (Ok(topic), Some(m)) = (TopicName::new(topic.as_str()), messages.get(id)) {
                    retained.insert(&topic, m.clone());
                    retained_count += 1;
                }
            }
        }
        let mut sessions = 0;
        let mut queued = 0;
        // Sessions that expired while the broker was down, and the timers of the others, are
        // handled once every session is back: a will published now must reach subscribers
        // whose sessions come later in the store's order.
        let mut expired = Vec::new();
        let mut timers = Vec::new();
        let now_instant = std::time::Instant::now();
        for loaded in snapshot.sessions {
            let client_id = ByteString::from(loaded.client_id.as_str());
            let record = loaded.session;
            let mut session = self.new_session(client_id.clone());
            session.mailbox.set_persistent(true);
            session.expiry_interval = record.expiry_interval;
            let offline_since = record.disconnected_at_ms.unwrap_or(now);
            session.offline_since_ms = Some(offline_since);
            session.pending_will = record.will.map(|w| PendingWill {
                message: loaded_message(0, w.message),
                at: ms_to_instant(w.publish_at_ms),
            });
            if let Some(w) = &mut session.pending_will {
                // The will was stored inline; it gets its own id if it is ever persisted.
                w.message = Arc::new(Message {
                    topic: w.message.topic.clone(),
                    payload: w.message.payload.clone(),
                    qos: w.message.qos,
                    retain: w.message.retain,
                    properties: w.message.properties.clone(),
                    expires_at: w.message.expires_at,
                    origin: w.message.origin.clone(),
                    store_id: std::sync::OnceLock::new(),
                });
            }
            let expires_at_ms = (record.expiry_interval != u32::MAX)
                .then(|| offline_since.saturating_add(u64::from(record.expiry_interval) * 1000));
            if expires_at_ms.is_some_and(|t| t <= now) {
                // Expired while the broker was down: end it now (its will goes out).
                tracing::info!(client_id = %client_id, "stored session expired during downtime");
                expired.push(session);
                continue;
            }
            for sub in record.subscriptions {
                let Ok(filter) = TopicFilter::new(sub.filter.as_str()) else {
                    continue;
                };
                let shared = filter.share_name().map(|group| SharedOrigin {
                    group: Arc::from(group),
                    filter: Arc::from(filter.filter()),
                });
                self.index.insert(
                    &filter,
                    session.key,
                    Subscriber {
                        mailbox: session.mailbox.clone(),
                        options: sub.options,
                        identifier: sub.identifier,
                        shared,
                    },
                );
                session.subscriptions.insert(
                    filter,
                    SubscriptionEntry {
                        options: sub.options,
                        identifier: sub.identifier,
                    },
                );
            }
            for id in record.awaiting_pubrel {
                if let Some(id) = PacketId::new(id) {
                    session.incoming.restore_awaiting_pubrel(id);
                }
            }
            let mut next_seq = 0;
            for (seq, d) in loaded.deliveries {
                next_seq = next_seq.max(seq + 1);
                if let midge_store::DeliveryState::AwaitingPubComp(id) = d.state {
                    if let Some(pid) = PacketId::new(id) {
                        let _ = session.outgoing.restore(
                            pid,
                            midge_proto::inflight::OutgoingState::AwaitingPubComp,
                            None,
                        );
                        session.pubcomp_seqs.insert(id, seq);
                    }
                    continue;
                }
                let Some(message) = messages.get(&d.message_id) else {
                    continue;
                };
                let Some(qos) = midge_proto::QoS::from_u8(d.qos) else {
                    continue;
                };
                let delivery = Delivery {
                    message: message.clone(),
                    qos,
                    retain: d.retain,
                    subscription_ids: SubscriptionIds::from_vec(d.subscription_ids),
                    shared: d.shared.map(|(g, f)| SharedOrigin {
                        group: Arc::from(g.as_str()),
                        filter: Arc::from(f.as_str()),
                    }),
                    seq: Some(seq),
                    commit: None,
                };
                queued += 1;
                // A PUBLISH known to have been sent (recorded when its connection ended) is
                // in flight again: resent first, with DUP and its identifier
                // ([MQTT-4.4.0-1]). Expired ones go through the queue, which drops them.
                let inflight = match d.state {
                    midge_store::DeliveryState::AwaitingPubAck(id) => {
                        Some((id, midge_proto::inflight::OutgoingState::AwaitingPubAck))
                    }
                    midge_store::DeliveryState::AwaitingPubRec(id) => {
                        Some((id, midge_proto::inflight::OutgoingState::AwaitingPubRec))
                    }
                    _ => None,
                };
                if let Some((Some(pid), state)) =
                    inflight.map(|(id, state)| (PacketId::new(id), state))
                    && !message.is_expired(now_instant)
                    && !session.outgoing.contains(pid)
                {
                    let _ = session.outgoing.restore(pid, state, Some(delivery));
                    continue;
                }
                session.mailbox.push_unbounded(delivery);
            }
            session.mailbox.set_next_seq(next_seq);
            let will_at = session.pending_will.as_ref().map(|w| w.at);
            let generation = self.registry.insert_offline(client_id.clone(), session);
            timers.push((
                client_id,
                generation,
                will_at,
                expires_at_ms.map(ms_to_instant),
            ));
            sessions += 1;
        }
        for session in expired {
            self.end_session(session, None);
        }
        for (client_id, generation, will_at, expires_at) in timers {
            self.watch_offline(client_id, generation, will_at, expires_at);
        }
        (sessions, queued, retained_count)
    }
}
