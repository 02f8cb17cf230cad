//! State shared by every connection: the subscription index, retained messages, the session
//! registry and counters, plus routing.
//!
//! Lock order (see `docs/locks.md`): registry → (index shard | retained | mailbox); a mailbox
//! lock is never held while taking another lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use midge_proto::{ByteString, Property, QoS, SubscriptionOptions, TopicFilter, Will};
use parking_lot::RwLock;
use smallvec::SmallVec;

use crate::auth::{AllowAnonymous, Authenticator};
use crate::config::Config;
use crate::index::{Match, SubscriptionIndex};
use crate::mailbox::{Mailbox, Pushed, QueueLimits};
use crate::message::{Delivery, Message, SharedOrigin, SubscriptionIds};
use crate::persist::Persistence;
use crate::retain_tree::RetainTree;
use crate::session::{Registry, Session, SessionKey};
use crate::stats::Stats;
use midge_store::{DeliveryState, Op, Ticket};

/// What the index stores for one subscription: where to deliver and how.
#[derive(Debug, Clone)]
pub(crate) struct Subscriber {
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) options: SubscriptionOptions,
    pub(crate) identifier: Option<u32>,
    pub(crate) shared: Option<SharedOrigin>,
}

/// The broker's shared state.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) index: SubscriptionIndex<SessionKey, Subscriber>,
    pub(crate) retained: RwLock<RetainTree<Arc<Message>>>,
    pub(crate) registry: Registry,
    pub(crate) stats: Stats,
    pub(crate) queue_limits: QueueLimits,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) connections: AtomicUsize,
    /// The durable store, unless `durability = "none"`.
    pub(crate) store: Option<Persistence>,
    next_id: AtomicU64,
}

/// What publishing a message did.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Sessions whose subscriptions matched.
    pub(crate) matched: usize,
    /// The store batch that must commit before the message is acknowledged.
    pub(crate) ticket: Option<Ticket>,
}

/// A delivery on its way into a session's mailbox (see [`Shared::route`]).
#[derive(Debug)]
pub(crate) struct Routed {
    mailbox: Arc<Mailbox>,
    delivery: Delivery,
}

struct Target {
    mailbox: Arc<Mailbox>,
    qos: QoS,
    retain: bool,
    ids: SubscriptionIds,
    shared: Option<SharedOrigin>,
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        authenticator: Option<Arc<dyn Authenticator>>,
        store: Option<Persistence>,
    ) -> Shared {
        let queue_limits = QueueLimits::from_config(&config.limits);
        Shared {
            config,
            index: SubscriptionIndex::new(),
            retained: RwLock::new(RetainTree::new()),
            registry: Registry::default(),
            stats: Stats::default(),
            queue_limits,
            authenticator: authenticator.unwrap_or_else(|| Arc::new(AllowAnonymous)),
            connections: AtomicUsize::new(0),
            store,
            next_id: AtomicU64::new(1),
        }
    }

    /// Whether new persistent messages must be refused for lack of space.
    pub(crate) fn store_full(&self) -> bool {
        self.store.as_ref().is_some_and(Persistence::is_full)
    }

    /// Queues store operations without waiting for them.
    pub(crate) fn store_ops(&self, ops: Vec<Op>) -> Option<Ticket> {
        self.store.as_ref().and_then(|s| s.submit(ops))
    }

    /// A process-unique number for connections and sessions.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A new, empty session.
    pub(crate) fn new_session(&self, client_id: ByteString) -> Box<Session> {
        let mailbox = Arc::new(Mailbox::new(client_id.clone(), self.queue_limits));
        Box::new(Session::new(SessionKey(self.next_id()), client_id, mailbox))
    }

    /// Publishes a message: updates the retained store if it is retained, then routes it.
    /// `ops` (e.g. the publisher's QoS 2 state) are committed in the same store batch.
    pub(crate) fn publish(&self, message: Arc<Message>, mut ops: Vec<Op>) -> Published {
        if message.retain && self.config.retain.available {
            let mut retained = self.retained.write();
            if message.payload.is_empty() {
                // An empty retained message deletes the topic's retained message and is not
                // itself stored ([MQTT-3.3.1-6], [MQTT-3.3.1-7]).
                if retained.remove(&message.topic).is_some() && self.store.is_some() {
                    ops.push(Op::DeleteRetained {
                        topic: message.topic.as_str().to_owned(),
                    });
                }
            } else {
                retained.insert(&message.topic, message.clone());
                if let Some(store) = &self.store {
                    let id = store.ensure_stored(&message, &mut ops);
                    ops.push(Op::PutRetained {
                        topic: message.topic.as_str().to_owned(),
                        message_id: id,
                    });
                }
            }
        }
        let pending = self.route(&message, &mut ops);
        // The stored copies are submitted before any subscriber can see the deliveries: the
        // subscriber's own writes about a delivery (PUBREL sent, acknowledged) must reach the
        // store after the write that creates it, or a late "queued" record would resurrect a
        // completed delivery, which a restart would then send again.
        let ticket = self.store_ops(ops);
        let matched = self.push_routed(pending, ticket);
        Published { matched, ticket }
    }

    /// Finds who receives a message: one delivery per session for overlapping subscriptions,
    /// with the highest QoS and every Subscription Identifier (`[MQTT-3.3.4-2]`,
    /// `[MQTT-3.3.4-3]`); one member per shared group. Deliveries a persistent session's
    /// stored queue must hold get their queue position and a `PutDelivery` in `ops`; the
    /// caller submits `ops`, then hands the result to [`Shared::push_routed`].
    pub(crate) fn route(&self, message: &Arc<Message>, ops: &mut Vec<Op>) -> Vec<Routed> {
        let mut targets: SmallVec<[Target; 8]> = SmallVec::new();
        let origin = message.origin.as_ref();
        self.index.for_each_match(&message.topic, |m| match m {
            Match::Direct { value, .. } => {
                // No Local: not back to the publisher's own client id ([MQTT-3.8.3-3]).
                if value.options.no_local && origin == Some(&value.mailbox.client_id) {
                    return;
                }
                targets.push(target(message, value));
            }
            Match::Shared(group) => {
                if let Some((_, value)) = group.pick(|_, v| v.mailbox.is_online()) {
                    targets.push(target(message, value));
                }
            }
        });
        if targets.is_empty() {
            return Vec::new();
        }
        // Merge overlapping direct subscriptions of one session.
        targets.sort_by_key(|t| (t.shared.is_some(), Arc::as_ptr(&t.mailbox) as usize));
        let mut merged: SmallVec<[Target; 8]> = SmallVec::new();
        for t in targets {
            match merged.last_mut() {
                Some(last)
                    if t.shared.is_none()
                        && last.shared.is_none()
                        && Arc::ptr_eq(&last.mailbox, &t.mailbox) =>
                {
                    last.qos = last.qos.max(t.qos);
                    last.retain |= t.retain;
                    last.ids.extend(t.ids);
                }
                _ => merged.push(t),
            }
        }
        let mut routed = Vec::with_capacity(merged.len());
        for t in merged {
            let mailbox = t.mailbox;
            let mut delivery = Delivery {
                message: message.clone(),
                qos: t.qos,
                retain: t.retain,
                subscription_ids: t.ids,
                shared: t.shared,
                seq: None,
                commit: None,
            };
            // A persistent session's queue is mirrored in the store: QoS 1/2 always, QoS 0
            // only while it waits offline (and only if offline QoS 0 is queued at all).
            let stored = self.store.is_some()
                && mailbox.is_persistent()
                && (delivery.qos != QoS::AtMostOnce
                    || (!mailbox.is_online() && self.queue_limits.queues_qos0_offline()));
            if let (Some(store), true) = (&self.store, stored) {
                delivery.seq = Some(mailbox.next_seq());
                store.put_delivery(&mailbox.client_id, &delivery, DeliveryState::Queued, ops);
            }
            routed.push(Routed { mailbox, delivery });
        }
        routed
    }

    /// Queues routed deliveries (after their stored copies were submitted in the batch
    /// `ticket`) and returns how many sessions matched. Stored copies of deliveries that were
    /// not queued after all (queue full, session gone) and of older ones evicted for them are
    /// deleted.
    pub(crate) fn push_routed(&self, routed: Vec<Routed>, ticket: Option<Ticket>) -> usize {
        let mut delivered = 0;
        let mut evicted = Vec::new();
        let mut ops = Vec::new();
        for Routed {
            mailbox,
            mut delivery,
        } in routed
        {
            let seq = delivery.seq;
            if seq.is_some() && delivery.qos == QoS::ExactlyOnce {
                delivery.commit = ticket;
            }
            let pushed = mailbox.push(delivery, &self.stats, &mut evicted);
            let forget = match pushed {
                Pushed::Queued | Pushed::QueuedDroppingOldest => None,
                Pushed::Dropped | Pushed::SkippedOffline | Pushed::Closed => seq,
            };
            for seq in forget
                .into_iter()
                .chain(evicted.drain(..).filter_map(|d| d.seq))
            {
                ops.push(Op::DeleteDelivery {
                    client_id: mailbox.client_id.to_string(),
                    seq,
                });
            }
            // An offline session's subscription still matches even when its QoS 0 copy is
            // not queued: only a message that matched nobody is "No matching subscribers"
            // (MQTT 5.0 §3.4.2.1).
            if matches!(
                pushed,
                Pushed::Queued
                    | Pushed::QueuedDroppingOldest
                    | Pushed::Dropped
                    | Pushed::SkippedOffline
            ) {
                delivered += 1;
            }
        }
        self.store_ops(ops);
        delivered
    }

    /// Retained messages matching a new subscription, not expired.
    pub(crate) fn retained_for(&self, filter: &TopicFilter) -> Vec<Arc<Message>> {
        let now = Instant::now();
        let mut out = Vec::new();
        self.retained
            .read()
            .for_each_match(filter.filter(), |_, m| {
                if !m.is_expired(now) {
                    out.push(m.clone());
                }
            });
        out
    }

    /// Builds the message a will publishes.
    pub(crate) fn will_message(will: &Will, client_id: &ByteString) -> Arc<Message> {
        let publish = midge_proto::Publish {
            dup: false,
            qos: will.qos,
            retain: will.retain,
            topic: will.topic.clone(),
            packet_id: None,
            properties: will
                .properties
                .iter()
                .filter(|p| !matches!(p, Property::WillDelayInterval(_)))
                .cloned()
                .collect(),
            payload: will.payload.clone(),
        };
        Arc::new(Message::from_publish(
            &publish,
            will.topic.clone(),
            Some(client_id.clone()),
        ))
    }

    /// Ends a session: removes its subscriptions, closes its mailbox, hands unacknowledged
    /// shared-subscription messages to other members, and publishes `will` if given.
    pub(crate) fn end_session(&self, mut session: Box<Session>, will: Option<Arc<Message>>) {
        for filter in session.subscriptions.keys() {
            self.index.remove(filter, &session.key);
        }
        // A QoS 2 delivery already started is never handed to another member when the
        // session ends ([MQTT-4.8.2-5]); queued ones that were never sent may be.
        let mut leftovers: Vec<Delivery> = session
            .outgoing
            .drain()
            .filter_map(|(_, _, d)| d)
            .filter(|d| d.qos != QoS::ExactlyOnce)
            .collect();
        leftovers.extend(session.mailbox.close());
        let mut ops = Vec::new();
        if session.mailbox.is_persistent() {
            // Removes the session's record, queue and QoS 2 state at once.
            ops.push(Op::DeleteSession {
                client_id: session.client_id.to_string(),
            });
        }
        for mut d in leftovers {
            d.seq = None;
            self.redeliver_shared(session.key, d, &mut ops);
        }
        self.store_ops(ops);
        if let Some(will) = will.or_else(|| session.pending_will.take().map(|w| w.message)) {
            self.publish(will, Vec::new());
        }
    }

    /// Gives a shared-subscription delivery to another member of its group (MQTT 5.0
    /// §4.8.2); non-shared deliveries are dropped. The caller forgets the delivery's stored
    /// copy in the old session; the new member's copy is added to `ops`.
    pub(crate) fn redeliver_shared(
        &self,
        from: SessionKey,
        mut delivery: Delivery,
        ops: &mut Vec<Op>,
    ) -> bool {
        let Some(origin) = delivery.shared.clone() else {
            return false;
        };
        if delivery.qos == QoS::AtMostOnce || delivery.message.is_expired(Instant::now()) {
            return false;
        }
        let mailbox = self
            .index
            .with_shared_group(&origin.group, &origin.filter, |g| {
                g.pick_other(&from, |_, v| v.mailbox.is_online())
                    .map(|(_, v)| v.mailbox.clone())
            });
        match mailbox.flatten() {
            Some(mailbox) => {
                delivery.seq = None;
                if let Some(store) = &self.store
                    && mailbox.is_persistent()
                {
                    // Submitted before the new member can see the delivery (see `publish`).
                    delivery.seq = Some(mailbox.next_seq());
                    let mut put = Vec::new();
                    store.put_delivery(
                        &mailbox.client_id,
                        &delivery,
                        DeliveryState::Queued,
                        &mut put,
                    );
                    self.store_ops(put);
                }
                let seq = delivery.seq;
                let mut evicted = Vec::new();
                let pushed = mailbox.push(delivery, &self.stats, &mut evicted);
                let forget = match pushed {
                    Pushed::Queued | Pushed::QueuedDroppingOldest => None,
                    Pushed::Dropped | Pushed::SkippedOffline | Pushed::Closed => seq,
                };
                for seq in forget
                    .into_iter()
                    .chain(evicted.into_iter().filter_map(|d| d.seq))
                {
                    ops.push(Op::DeleteDelivery {
                        client_id: mailbox.client_id.to_string(),
                        seq,
                    });
                }
                true
            }
            None => false,
        }
    }

    /// Keeps an offline session until it expires, publishing its delayed will when due.
    pub(crate) fn watch_offline(
        self: &Arc<Self>,
        client_id: ByteString,
        generation: u64,
        will_at: Option<Instant>,
        expires_at: Option<Instant>,
    ) {
        if will_at.is_none() && expires_at.is_none() {
            return;
        }
        // A weak reference: a timer must not keep a stopped broker (and its store) alive.
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            if let Some(at) = will_at {
                let at = expires_at.map_or(at, |e| e.min(at));
                tokio::time::sleep_until(at.into()).await;
                let Some(shared) = weak.upgrade() else { return };
                let will = shared
                    .registry
                    .with_offline(&client_id, generation, |s| {
                        let will = s.pending_will.take();
                        let record = s
                            .mailbox
                            .is_persistent()
                            .then(|| crate::persist::session_record(s));
                        (false, (will, record))
                    })
                    .and_then(|(_, (will, record))| {
                        if let Some(session) = record {
                            shared.store_ops(vec![Op::PutSession {
                                client_id: client_id.to_string(),
                                session,
                            }]);
                        }
                        will
                    });
                if let Some(will) = will {
                    shared.publish(will.message, Vec::new());
                }
            }
            if let Some(at) = expires_at {
                tokio::time::sleep_until(at.into()).await;
                let Some(shared) = weak.upgrade() else { return };
                if let Some((Some(session), ())) =
                    shared
                        .registry
                        .with_offline(&client_id, generation, |_| (true, ()))
                {
                    tracing::debug!(client_id = %client_id, "session expired");
                    shared.end_session(session, None);
                }
            }
        });
    }
}

fn target(message: &Message, s: &Subscriber) -> Target {
    let mut ids = SubscriptionIds::new();
    if let Some(id) = s.identifier {
        ids.push(id);
    }
    Target {
        mailbox: s.mailbox.clone(),
        qos: message.qos.min(s.options.qos),
        // Forwarded messages keep RETAIN only with Retain As Published ([MQTT-3.3.1-12],
        // [MQTT-3.3.1-13]); MQTT 3.1.1 always clears it ([MQTT-3.3.1-9]).
        retain: s.options.retain_as_published && message.retain,
        ids,
        shared: s.shared.clone(),
    }
}
