//! Acknowledgements that wait for the store.
//!
//! A PUBACK or PUBREC for a message that must outlive the connection (retained, or queued
//! for a persistent session) is sent only after the store commit that holds it; so is a
//! PUBREL whose state change must survive a crash, and a SUBACK for a persistent session's
//! subscription. Acknowledgements leave in the order their packets arrived
//! (`[MQTT-4.6.0-2]`, `[MQTT-4.6.0-3]`), so one that waits holds back those after it.

use std::collections::VecDeque;

use midge_proto::{Packet, ReasonCode};
use midge_store::Ticket;

use super::{Connection, End};

/// What to do with an acknowledgement whose store batch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnFailure {
    /// Send it anyway (the in-memory state is correct; only durability was lost).
    Send,
    /// The message was not stored: MQTT 5 clients get Quota exceeded (0x97) in the
    /// PUBACK/PUBREC; MQTT 3 clients, which have no negative acknowledgement, are
    /// disconnected so they resend later.
    Refuse,
}

/// An acknowledgement waiting for its turn.
#[derive(Debug)]
pub(super) struct PendingAck {
    ticket: Option<Ticket>,
    packet: Packet,
    on_failure: OnFailure,
}

/// The queue of acknowledgements of one connection.
#[derive(Debug, Default)]
pub(super) struct Acks {
    queue: VecDeque<PendingAck>,
}

impl Acks {
    /// Whether an acknowledgement is waiting on a store commit.
    pub(super) fn waiting(&self) -> bool {
        self.queue.front().is_some_and(|a| a.ticket.is_some())
    }
}

impl Connection {
    /// Sends `packet` once `ticket` (if any) is committed, after every earlier one.
    pub(super) fn ack(&mut self, packet: Packet, ticket: Option<Ticket>, on_failure: OnFailure) {
        if ticket.is_none() && self.acks.queue.is_empty() {
            self.send(&packet);
        } else {
            self.acks.queue.push_back(PendingAck {
                ticket,
                packet,
                on_failure,
            });
        }
    }

    /// Sends every acknowledgement whose commit is done, in order. `Some` ends the
    /// connection (an MQTT 3 client whose message could not be stored).
    pub(super) fn flush_acks(&mut self) -> Option<End> {
        if self.acks.queue.is_empty() {
            return None;
        }
        let Some(store) = &self.shared.store else {
            // No store: nothing ever waits.
            while let Some(a) = self.acks.queue.pop_front() {
                self.send(&a.packet);
            }
            return None;
        };
        let writer = store.writer.clone();
        if let Some(rx) = &mut self.committed {
            rx.borrow_and_update();
        }
        while let Some(front) = self.acks.queue.front() {
            let failed = match front.ticket {
                Some(t) if !writer.is_done(t) => break,
                Some(t) => writer.failed(t),
                None => false,
            };
            let Some(PendingAck {
                mut packet,
                on_failure,
                ..
            }) = self.acks.queue.pop_front()
            else {
                break;
            };
            if failed && on_failure == OnFailure::Refuse {
                if !self.n.version.is_v5() {
                    return Some(End::Violation(
                        ReasonCode::QUOTA_EXCEEDED,
                        "the message could not be stored".into(),
                    ));
                }
                match &mut packet {
                    Packet::PubAck(a) | Packet::PubRec(a) => {
                        a.reason_code = ReasonCode::QUOTA_EXCEEDED;
                        if let Packet::PubRec(a) = &packet {
                            self.session.incoming.qos2_rejected(a.packet_id);
                        }
                    }
                    _ => {}
                }
            }
            self.send(&packet);
        }
        None
    }
}
