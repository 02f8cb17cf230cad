//! Sessions (MQTT 5.0 §4.1) and the registry that finds them by client identifier.
//!
//! While a client is connected its connection task owns the [`Session`]; when the connection
//! ends, a session that must outlive it goes back into the registry as `Offline`, and the
//! next connection with the same client identifier takes it out again. A connection that
//! finds the session `Online` takes it over: it asks the old connection to stop and waits for
//! the session to be handed back (`[MQTT-3.1.4-3]`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use midge_proto::inflight::{Incoming, Outgoing};
use midge_proto::{ByteString, SubscriptionOptions, TopicFilter};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::mailbox::Mailbox;
use crate::message::{Delivery, Message};

/// A process-unique identity for one session instance. A client that starts a clean session
/// gets a new key even if its client identifier is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SessionKey(pub(crate) u64);

/// One subscription as the session remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubscriptionEntry {
    pub(crate) options: SubscriptionOptions,
    pub(crate) identifier: Option<u32>,
}

/// A will that waits for its Will Delay Interval while the session is offline.
#[derive(Debug, Clone)]
pub(crate) struct PendingWill {
    pub(crate) message: Arc<Message>,
    /// When to publish it (the end of the Will Delay Interval).
    pub(crate) at: Instant,
}

/// Everything the broker keeps for one client between connections.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) key: SessionKey,
    pub(crate) client_id: ByteString,
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) subscriptions: HashMap<TopicFilter, SubscriptionEntry>,
    /// QoS 1/2 deliveries sent and not yet acknowledged.
    pub(crate) outgoing: Outgoing<Delivery>,
    /// QoS 2 packet identifiers received and awaiting PUBREL (exactly once, method B).
    pub(crate) incoming: Incoming,
    /// Session Expiry Interval in force, seconds; `u32::MAX` never expires.
    pub(crate) expiry_interval: u32,
    /// A delayed will, while offline.
    pub(crate) pending_will: Option<PendingWill>,
    /// When the session went offline (ms since the Unix epoch), for expiry across restarts.
    pub(crate) offline_since_ms: Option<u64>,
    /// Queue positions of stored QoS 2 deliveries awaiting PUBCOMP, by packet identifier.
    pub(crate) pubcomp_seqs: HashMap<u16, u64>,
}

impl Session {
    pub(crate) fn new(key: SessionKey, client_id: ByteString, mailbox: Arc<Mailbox>) -> Session {
        Session {
            key,
            client_id,
            mailbox,
            subscriptions: HashMap::new(),
            outgoing: Outgoing::new(u16::MAX),
            incoming: Incoming::new(u16::MAX),
            expiry_interval: 0,
            pending_will: None,
            offline_since_ms: None,
            pubcomp_seqs: HashMap::new(),
        }
    }
}

/// Why a connection is asked to stop.
#[derive(Debug)]
pub(crate) struct Takeover {
    /// Clean Start of the connection taking over: decides whether the old will is sent
    /// (MQTT 5.0 §3.1.3.2.2).
    pub(crate) new_clean_start: bool,
    /// Where to hand the session back.
    pub(crate) reply: oneshot::Sender<Box<Session>>,
}

#[derive(Debug)]
enum Slot {
    Online {
        connection: u64,
        kick: Option<oneshot::Sender<Takeover>>,
    },
    Offline {
        session: Box<Session>,
        generation: u64,
    },
}

/// What [`Registry::claim`] found for a client identifier.
#[derive(Debug)]
pub(crate) enum Claim {
    /// No session existed.
    Vacant,
    /// An offline session, now owned by the caller.
    Resumed(Box<Session>),
    /// A connected session: wait on the receiver for the old connection to hand it back.
    TakingOver(oneshot::Receiver<Box<Session>>),
}

/// Outcome of [`Registry::release`].
#[derive(Debug)]
pub(crate) enum Release {
    /// The session is stored offline under this generation.
    Stored {
        /// Identifies this offline period, for expiry and will-delay timers.
        generation: u64,
    },
    /// The session ended and its slot is gone.
    Removed,
    /// Another connection took the client identifier over meanwhile; the session (if any) is
    /// returned so it can be handed to that connection.
    TakenOver(Option<Box<Session>>),
}

/// Sessions by client identifier. Locked once per connect and disconnect, never per message.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    slots: Mutex<HashMap<ByteString, Slot>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Registry {
    /// Marks `client_id` as served by `connection` and returns what was there before.
    pub(crate) fn claim(
        &self,
        client_id: &ByteString,
        connection: u64,
        kick: oneshot::Sender<Takeover>,
        clean_start: bool,
    ) -> Claim {
        let mut slots = self.slots.lock();
        let previous = slots.insert(
            client_id.clone(),
            Slot::Online {
                connection,
                kick: Some(kick),
            },
        );
        match previous {
            None => Claim::Vacant,
            Some(Slot::Offline { session, .. }) => Claim::Resumed(session),
            Some(Slot::Online {
                kick: Some(old), ..
            }) => {
                let (reply, rx) = oneshot::channel();
                // If the old connection already ended its task, the send fails and the
                // receiver reports a closed channel: the caller then starts afresh.
                let _ = old.send(Takeover {
                    new_clean_start: clean_start,
                    reply,
                });
                Claim::TakingOver(rx)
            }
            Some(Slot::Online { kick: None, .. }) => Claim::Vacant,
        }
    }

    /// Called when a connection ends, with the session if it must outlive the connection.
    pub(crate) fn release(
        &self,
        client_id: &ByteString,
        connection: u64,
        keep: Option<Box<Session>>,
    ) -> Release {
        let mut slots = self.slots.lock();
        let owned = matches!(
            slots.get(client_id),
            Some(Slot::Online { connection: c, .. }) if *c == connection
        );
        if !owned {
            return Release::TakenOver(keep);
        }
        match keep {
            Some(session) => {
                let generation = self
                    .generation
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                slots.insert(
                    client_id.clone(),
                    Slot::Offline {
                        session,
                        generation,
                    },
                );
                Release::Stored { generation }
            }
            None => {
                slots.remove(client_id);
                Release::Removed
            }
        }
    }

    /// Registers a session recovered from the store as offline; returns its generation.
    pub(crate) fn insert_offline(&self, client_id: ByteString, session: Box<Session>) -> u64 {
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        self.slots.lock().insert(
            client_id,
            Slot::Offline {
                session,
                generation,
            },
        );
        generation
    }

    /// Runs `f` on an offline session if it is still the same one (`generation`); `f` may
    /// take it out of the registry by returning `true`.
    pub(crate) fn with_offline<R>(
        &self,
        client_id: &ByteString,
        generation: u64,
        f: impl FnOnce(&mut Session) -> (bool, R),
    ) -> Option<(Option<Box<Session>>, R)> {
        let mut slots = self.slots.lock();
        let Some(Slot::Offline {
            session,
            generation: g,
        }) = slots.get_mut(client_id)
        else {
            return None;
        };
        if *g != generation {
            return None;
        }
        let (remove, r) = f(session);
        if remove {
            match slots.remove(client_id) {
                Some(Slot::Offline { session, .. }) => Some((Some(session), r)),
                _ => Some((None, r)),
            }
        } else {
            Some((None, r))
        }
    }

    /// Number of sessions, online and offline.
    pub(crate) fn len(&self) -> usize {
        self.slots.lock().len()
    }
}
