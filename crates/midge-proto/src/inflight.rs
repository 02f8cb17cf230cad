//! QoS 1 and QoS 2 delivery state, flow control and Packet Identifier allocation
//! (MQTT 5.0 §2.2.1, §4.3, §4.4, §4.6, §4.9; MQTT 3.1.1 §2.3.1, §4.3, §4.4, §4.6).
//!
//! Sans-IO: these types record what was sent and received and tell the caller what to send
//! next; sending, persistence and timing are the caller's. There are no timers: MQTT resends
//! only when a session resumes on a new Network Connection (`[MQTT-4.4.0-1]`).
//!
//! - [`Outgoing`]: QoS 1/2 PUBLISH packets we sent and whose acknowledgement we await, with
//!   Packet Identifier allocation and the peer's Receive Maximum.
//! - [`Incoming`]: QoS 1/2 PUBLISH packets the peer sent that are not fully acknowledged yet,
//!   with our Receive Maximum and QoS 2 duplicate suppression.
//! - [`PacketIdAllocator`]: Packet Identifiers for SUBSCRIBE and UNSUBSCRIBE.
//!
//! Memory: an empty value does not allocate, and each keeps its entries in a single
//! `VecDeque` or `Vec` that grows with the number in flight. Lookups scan linearly, starting
//! where in-order acknowledgements land, which suits the windows Receive Maximum bounds; a
//! broker should cap the window it grants and uses (for example the peer's Receive Maximum
//! and a configured limit, whichever is lower) so scans stay short.
//!
//! MQTT 3.1 and 3.1.1 have no Receive Maximum: use `u16::MAX` (the MQTT 5 default when the
//! property is absent) or a configured limit.

use std::collections::VecDeque;
use std::fmt;

use crate::qos::{PacketId, QoS};
use crate::reason::ReasonCode;

/// Receive Maximum 0 is a Protocol Error upstream (MQTT 5.0 §3.1.2.11.3, §3.2.2.3.3); the
/// decoder rejects it. Should one get here anyway, debug builds stop and release builds use 1.
const fn clamp_receive_maximum(receive_maximum: u16) -> u16 {
    debug_assert!(
        receive_maximum != 0,
        "Receive Maximum 0 is a Protocol Error"
    );
    if receive_maximum == 0 {
        1
    } else {
        receive_maximum
    }
}

/// The first identifier after `last` (0 meaning none yet) for which `taken` is false,
/// wrapping from 65535 to 1; `None` if all 65535 are taken.
fn next_free_id(last: u16, mut taken: impl FnMut(PacketId) -> bool) -> Option<PacketId> {
    let mut candidate = PacketId::new(last).map_or(PacketId::MIN, PacketId::next);
    for _ in 0..u16::MAX {
        if !taken(candidate) {
            return Some(candidate);
        }
        candidate = candidate.next();
    }
    None
}

/// Where an outgoing QoS 1 or QoS 2 delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutgoingState {
    /// QoS 1: PUBLISH sent, PUBACK awaited (`[MQTT-4.3.2-3]`).
    AwaitingPubAck,
    /// QoS 2: PUBLISH sent, PUBREC awaited (`[MQTT-4.3.3-3]`).
    AwaitingPubRec,
    /// QoS 2: PUBREL sent, PUBCOMP awaited (`[MQTT-4.3.3-5]`). The message itself has been
    /// released and is never sent again (`[MQTT-4.3.3-6]`).
    AwaitingPubComp,
}

impl OutgoingState {
    /// The QoS of the delivery: 1 while awaiting PUBACK, otherwise 2.
    pub const fn qos(self) -> QoS {
        match self {
            OutgoingState::AwaitingPubAck => QoS::AtLeastOnce,
            OutgoingState::AwaitingPubRec | OutgoingState::AwaitingPubComp => QoS::ExactlyOnce,
        }
    }
}

impl fmt::Display for OutgoingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutgoingState::AwaitingPubAck => "awaiting PUBACK",
            OutgoingState::AwaitingPubRec => "awaiting PUBREC",
            OutgoingState::AwaitingPubComp => "awaiting PUBCOMP",
        })
    }
}

/// What [`Outgoing::on_pubrec`] tells the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubRecOutcome<M> {
    /// The PUBREC was a success: send PUBREL for this Packet Identifier (`[MQTT-4.3.3-4]`).
    /// The message is handed back because it will never be sent again (`[MQTT-4.3.3-6]`).
    SendPubRel(M),
    /// The PUBREC carried a Reason Code of 0x80 or more: the delivery failed and ends here. The
    /// PUBLISH counts as acknowledged and is not retransmitted (`[MQTT-4.4.0-2]`); the Packet
    /// Identifier and the send quota slot are free again (§4.9).
    Failed(M),
    /// A repeated PUBREC for a delivery already awaiting PUBCOMP: send the PUBREL again.
    ResendPubRel,
}

/// One packet to resend when a session resumes, from [`Outgoing::resend`].
#[derive(Debug, PartialEq, Eq)]
pub enum Resend<'a, M> {
    /// Send the PUBLISH again, with the same Packet Identifier, this QoS and the DUP flag set
    /// (`[MQTT-4.4.0-1]`, `[MQTT-3.3.1-1]`).
    Publish {
        /// The message.
        message: &'a M,
        /// The QoS of this delivery (1 or 2), which may be lower than the QoS the message was
        /// originally published with.
        qos: QoS,
    },
    /// Send the PUBREL again (`[MQTT-4.4.0-1]`).
    PubRel,
}

// Not derived: the derive would require `M: Clone`, but only a reference is copied.
impl<M> Clone for Resend<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for Resend<'_, M> {}

/// The state of one outgoing delivery; the message is kept only while it may be resent.
#[derive(Debug)]
enum OutSlot<M> {
    /// QoS 1, awaiting PUBACK.
    Qos1(M),
    /// QoS 2, awaiting PUBREC.
    Qos2(M),
    /// QoS 2, PUBREL sent, awaiting PUBCOMP; the message is gone.
    Released,
}

impl<M> OutSlot<M> {
    fn state(&self) -> OutgoingState {
        match self {
            OutSlot::Qos1(_) => OutgoingState::AwaitingPubAck,
            OutSlot::Qos2(_) => OutgoingState::AwaitingPubRec,
            OutSlot::Released => OutgoingState::AwaitingPubComp,
        }
    }

    fn message(&self) -> Option<&M> {
        match self {
            OutSlot::Qos1(m) | OutSlot::Qos2(m) => Some(m),
            OutSlot::Released => None,
        }
    }

    fn into_message(self) -> Option<M> {
        match self {
            OutSlot::Qos1(m) | OutSlot::Qos2(m) => Some(m),
            OutSlot::Released => None,
        }
    }
}

#[derive(Debug)]
struct OutEntry<M> {
    packet_id: PacketId,
    slot: OutSlot<M>,
}

/// Outgoing QoS 1/2 messages we sent and await acknowledgement for, with Packet Identifier
/// allocation and the peer's Receive Maximum (flow control, MQTT 5.0 §4.9).
///
/// Entries are kept in the order in which their latest packet was sent: a PUBLISH when the
/// delivery starts, a PUBREL when a successful PUBREC moves a QoS 2 delivery on. Resending in
/// that order re-sends PUBLISH packets in their original order (`[MQTT-4.6.0-1]`) and PUBREL
/// packets in the order their PUBREC packets arrived (`[MQTT-4.6.0-4]`).
///
/// Every entry counts against the send quota until it completes: PUBACK, PUBCOMP, or a PUBREC
/// with a Reason Code of 0x80 or more (`[MQTT-3.3.4-7]`, `[MQTT-3.3.4-9]`, `[MQTT-4.9.0-2]`).
///
/// `M` is whatever the caller needs to rebuild the PUBLISH (for example a shared handle to
/// the message); it is handed back when the delivery completes or fails.
#[derive(Debug)]
pub struct Outgoing<M> {
    entries: VecDeque<OutEntry<M>>,
    receive_maximum: u16,
    /// The last Packet Identifier handed out or restored; 0 before the first.
    last_id: u16,
}

impl<M> Default for Outgoing<M> {
    /// No deliveries, Receive Maximum 65,535 (the MQTT 5 default when the property is absent).
    fn default() -> Self {
        Outgoing::new(u16::MAX)
    }
}

impl<M> Outgoing<M> {
    /// No deliveries in flight; at most `receive_maximum` may be at once. Does not allocate.
    ///
    /// Receive Maximum 0 is a Protocol Error the decoder rejects; if it gets here anyway, debug
    /// builds panic and release builds use 1.
    pub const fn new(receive_maximum: u16) -> Self {
        Outgoing {
            entries: VecDeque::new(),
            receive_maximum: clamp_receive_maximum(receive_maximum),
            last_id: 0,
        }
    }

    /// Changes the peer's Receive Maximum, e.g. from the CONNACK (or CONNECT) of a new
    /// connection resuming the session. Nothing in flight is dropped; if more are in flight
    /// than the new maximum, [`has_capacity`](Outgoing::has_capacity) stays false until enough
    /// complete. 0 is treated as in [`new`](Outgoing::new).
    pub fn set_receive_maximum(&mut self, receive_maximum: u16) {
        self.receive_maximum = clamp_receive_maximum(receive_maximum);
    }

    /// The peer's Receive Maximum in force.
    pub fn receive_maximum(&self) -> u16 {
        self.receive_maximum
    }

    /// The number of deliveries in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether another QoS 1 or QoS 2 PUBLISH may be sent now: fewer than Receive Maximum are
    /// in flight (`[MQTT-4.9.0-2]`, `[MQTT-3.3.4-7]`, `[MQTT-3.3.4-9]`). QoS 0 messages and
    /// all other packets are not limited (`[MQTT-4.9.0-3]`).
    pub fn has_capacity(&self) -> bool {
        self.entries.len() < usize::from(self.receive_maximum)
    }

    /// Whether `packet_id` belongs to a delivery in flight.
    pub fn contains(&self, packet_id: PacketId) -> bool {
        self.position(packet_id).is_some()
    }

    /// The state of the delivery using `packet_id`, if any.
    pub fn state(&self, packet_id: PacketId) -> Option<OutgoingState> {
        self.position(packet_id)
            .and_then(|i| self.entries.get(i))
            .map(|e| e.slot.state())
    }

    /// Starts a QoS 1 or QoS 2 delivery of `message` and returns its Packet Identifier: the
    /// first unused one after the last handed out, wrapping from 65535 to 1 and skipping those
    /// still in flight (`[MQTT-2.2.1-3]`, `[MQTT-2.2.1-4]`, `[MQTT-4.3.2-1]`,
    /// `[MQTT-4.3.3-1]`). The delivery then awaits PUBACK (QoS 1) or PUBREC (QoS 2); the
    /// caller sends the PUBLISH with DUP 0.
    ///
    /// Errors: [`InflightError::NotQos1Or2`] for QoS 0, [`InflightError::NoCapacity`] when
    /// [`has_capacity`](Outgoing::has_capacity) is false, [`InflightError::PacketIdsExhausted`]
    /// when no identifier is free. On error `message` is dropped: check `has_capacity` first
    /// to keep it for later.
    pub fn start(&mut self, qos: QoS, message: M) -> Result<PacketId, InflightError> {
        self.start_excluding(qos, message, |_| false)
    }

    /// Like [`start`](Outgoing::start), but also skips identifiers for which
    /// `in_use_elsewhere` returns true. A client shares one identifier space between PUBLISH,
    /// SUBSCRIBE and UNSUBSCRIBE (`[MQTT-2.2.1-3]`), so it passes
    /// `|id| allocator.is_in_use(id)` for its [`PacketIdAllocator`].
    pub fn start_excluding(
        &mut self,
        qos: QoS,
        message: M,
        mut in_use_elsewhere: impl FnMut(PacketId) -> bool,
    ) -> Result<PacketId, InflightError> {
        let slot = match qos {
            QoS::AtMostOnce => return Err(InflightError::NotQos1Or2),
            QoS::AtLeastOnce => OutSlot::Qos1(message),
            QoS::ExactlyOnce => OutSlot::Qos2(message),
        };
        if !self.has_capacity() {
            return Err(InflightError::NoCapacity);
        }
        let packet_id = next_free_id(self.last_id, |id| self.contains(id) || in_use_elsewhere(id))
            .ok_or(InflightError::PacketIdsExhausted)?;
        self.last_id = packet_id.get();
        self.entries.push_back(OutEntry { packet_id, slot });
        Ok(packet_id)
    }

    /// Records a delivery that already has a Packet Identifier, e.g. when restoring a
    /// persisted session. Call it in the order of [`iter`](Outgoing::iter) at the time the
    /// session was saved, so that resending keeps the original order. New identifiers continue
    /// after `packet_id`. The Receive Maximum is not checked: a restored session may hold more
    /// than a newly lowered maximum allows.
    ///
    /// `message` is required while the PUBLISH may still be resent (awaiting PUBACK or PUBREC);
    /// for [`OutgoingState::AwaitingPubComp`] it is ignored and dropped.
    ///
    /// Errors: [`InflightError::PacketIdInUse`] if `packet_id` is in flight already,
    /// [`InflightError::MissingMessage`] if `message` is required but `None`.
    pub fn restore(
        &mut self,
        packet_id: PacketId,
        state: OutgoingState,
        message: Option<M>,
    ) -> Result<(), InflightError> {
        if self.contains(packet_id) {
            return Err(InflightError::PacketIdInUse(packet_id));
        }
        let slot = match (state, message) {
            (OutgoingState::AwaitingPubAck, Some(m)) => OutSlot::Qos1(m),
            (OutgoingState::AwaitingPubRec, Some(m)) => OutSlot::Qos2(m),
            (OutgoingState::AwaitingPubComp, _) => OutSlot::Released,
            (_, None) => return Err(InflightError::MissingMessage(packet_id)),
        };
        self.last_id = packet_id.get();
        self.entries.push_back(OutEntry { packet_id, slot });
        Ok(())
    }

    /// A PUBACK arrived: completes a QoS 1 delivery, frees its identifier and quota slot
    /// (`[MQTT-4.3.2-3]`), and returns the message. The Reason Code does not matter here: an
    /// error PUBACK also ends the delivery (`[MQTT-4.4.0-2]`).
    ///
    /// Errors: [`InflightError::PacketIdNotFound`] for an identifier not in flight,
    /// [`InflightError::UnexpectedAck`] for a QoS 2 delivery (a Protocol Error by the peer).
    pub fn on_puback(&mut self, packet_id: PacketId) -> Result<M, InflightError> {
        let index = self.position_in_state(packet_id, OutgoingState::AwaitingPubAck)?;
        self.remove_message(index, packet_id)
    }

    /// A PUBREC arrived; `reason_is_error` is whether its Reason Code is 0x80 or more (always
    /// false for MQTT 3, whose PUBREC has none).
    ///
    /// - Awaiting PUBREC, success: the delivery now awaits PUBCOMP and moves behind the others
    ///   (PUBREL order, `[MQTT-4.6.0-4]`); returns [`PubRecOutcome::SendPubRel`] with the
    ///   message, which is no longer needed (`[MQTT-4.3.3-4]`, `[MQTT-4.3.3-6]`).
    /// - Awaiting PUBREC, error: the delivery ends, its identifier and quota slot are freed
    ///   (`[MQTT-4.4.0-2]`, §4.9); returns [`PubRecOutcome::Failed`] with the message.
    /// - Awaiting PUBCOMP, success: a repeated PUBREC; returns [`PubRecOutcome::ResendPubRel`].
    ///
    /// Errors: [`InflightError::PacketIdNotFound`] for an identifier not in flight,
    /// [`InflightError::UnexpectedAck`] for a QoS 1 delivery, or an error PUBREC for a
    /// delivery awaiting PUBCOMP.
    pub fn on_pubrec(
        &mut self,
        packet_id: PacketId,
        reason_is_error: bool,
    ) -> Result<PubRecOutcome<M>, InflightError> {
        let index = self
            .position(packet_id)
            .ok_or(InflightError::PacketIdNotFound(packet_id))?;
        let state = self.state_at(index, packet_id)?;
        match state {
            OutgoingState::AwaitingPubRec => {
                let message = self.remove_message(index, packet_id)?;
                if reason_is_error {
                    Ok(PubRecOutcome::Failed(message))
                } else {
                    // Removing then pushing keeps the length, so this never reallocates.
                    self.entries.push_back(OutEntry {
                        packet_id,
                        slot: OutSlot::Released,
                    });
                    Ok(PubRecOutcome::SendPubRel(message))
                }
            }
            OutgoingState::AwaitingPubComp if !reason_is_error => Ok(PubRecOutcome::ResendPubRel),
            expected => Err(InflightError::UnexpectedAck {
                packet_id,
                expected,
            }),
        }
    }

    /// A PUBCOMP arrived: completes a QoS 2 delivery and frees its identifier and quota slot
    /// (`[MQTT-4.3.3-5]`). A PUBCOMP with Reason Code 0x92 (Packet Identifier not found) also
    /// ends the delivery.
    ///
    /// Errors: [`InflightError::PacketIdNotFound`] for an identifier not in flight,
    /// [`InflightError::UnexpectedAck`] for a delivery not awaiting PUBCOMP.
    pub fn on_pubcomp(&mut self, packet_id: PacketId) -> Result<(), InflightError> {
        let index = self.position_in_state(packet_id, OutgoingState::AwaitingPubComp)?;
        self.entries.remove(index);
        Ok(())
    }

    /// Everything to resend when a session resumes on a new connection, in order
    /// (`[MQTT-4.4.0-1]`, `[MQTT-4.6.0-1]`, `[MQTT-4.6.0-4]`): the PUBLISH (with DUP set by
    /// the caller) for deliveries awaiting PUBACK or PUBREC, the PUBREL for those awaiting
    /// PUBCOMP. Everything listed already counts against Receive Maximum, so no capacity check
    /// is needed.
    pub fn resend(&self) -> impl Iterator<Item = (PacketId, Resend<'_, M>)> + '_ {
        self.entries.iter().map(|e| {
            let resend = match &e.slot {
                OutSlot::Qos1(message) => Resend::Publish {
                    message,
                    qos: QoS::AtLeastOnce,
                },
                OutSlot::Qos2(message) => Resend::Publish {
                    message,
                    qos: QoS::ExactlyOnce,
                },
                OutSlot::Released => Resend::PubRel,
            };
            (e.packet_id, resend)
        })
    }

    /// Removes and returns every delivery, in the order of [`iter`](Outgoing::iter), e.g. when
    /// a shared-subscription member leaves and its unacknowledged messages go to another
    /// member. The message is `None` for deliveries awaiting PUBCOMP. Identifiers handed out
    /// next still continue after the last one, rather than restarting at 1.
    pub fn drain(&mut self) -> impl Iterator<Item = (PacketId, OutgoingState, Option<M>)> + '_ {
        self.entries.drain(..).map(|e| {
            let state = e.slot.state();
            (e.packet_id, state, e.slot.into_message())
        })
    }

    /// The deliveries in flight, in the order their latest packet was sent (see the type's
    /// documentation); the message is `None` for deliveries awaiting PUBCOMP. This is the
    /// order to persist and to [`restore`](Outgoing::restore) in.
    pub fn iter(&self) -> impl Iterator<Item = (PacketId, OutgoingState, Option<&M>)> + '_ {
        self.entries
            .iter()
            .map(|e| (e.packet_id, e.slot.state(), e.slot.message()))
    }

    /// Index of `packet_id`. Acknowledgements normally arrive in send order, so the scan
    /// starts at the front, where they land.
    fn position(&self, packet_id: PacketId) -> Option<usize> {
        self.entries.iter().position(|e| e.packet_id == packet_id)
    }

    fn state_at(&self, index: usize, packet_id: PacketId) -> Result<OutgoingState, InflightError> {
        self.entries
            .get(index)
            .map(|e| e.slot.state())
            .ok_or(InflightError::PacketIdNotFound(packet_id))
    }

    /// Index of `packet_id`, which must be in state `wanted`.
    fn position_in_state(
        &self,
        packet_id: PacketId,
        wanted: OutgoingState,
    ) -> Result<usize, InflightError> {
        let index = self
            .position(packet_id)
            .ok_or(InflightError::PacketIdNotFound(packet_id))?;
        match self.state_at(index, packet_id)? {
            state if state == wanted => Ok(index),
            expected => Err(InflightError::UnexpectedAck {
                packet_id,
                expected,
            }),
        }
    }

    /// Removes the entry at `index`, which the caller has checked still holds its message.
    fn remove_message(&mut self, index: usize, packet_id: PacketId) -> Result<M, InflightError> {
        self.entries
            .remove(index)
            .and_then(|e| e.slot.into_message())
            .ok_or(InflightError::PacketIdNotFound(packet_id))
    }
}

/// What [`Incoming::on_publish_qos2`] tells the caller to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos2Outcome {
    /// A new message: pass it on once, then send PUBREC (`[MQTT-4.3.3-8]`). If it is refused
    /// (PUBREC with a Reason Code of 0x80 or more), call [`Incoming::qos2_rejected`].
    Deliver,
    /// The identifier is still awaiting PUBREL: send PUBREC again and do not pass the message
    /// on again (`[MQTT-4.3.3-10]`).
    Duplicate,
}

/// What an incoming PUBLISH is waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    /// QoS 1: our PUBACK, which the caller has not sent yet.
    PubAck,
    /// QoS 2: the peer's PUBREL, after our PUBREC.
    PubRel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InEntry {
    packet_id: PacketId,
    awaiting: Awaiting,
}

/// Incoming QoS 1/2 PUBLISH packets from the peer that are not yet fully acknowledged,
/// enforcing our Receive Maximum and QoS 2 exactly-once delivery.
///
/// QoS 2 uses "method B" (MQTT 5.0 §4.3.3, Figure 4.3): the message is passed on when the
/// PUBLISH arrives, and only its Packet Identifier is remembered until PUBREL, so that a
/// repeated PUBLISH is acknowledged without being passed on again (`[MQTT-4.3.3-10]`).
///
/// A QoS 1 identifier counts against Receive Maximum until [`Incoming::puback_sent`], a QoS 2
/// identifier until PUBREL arrives or the message is refused (§3.3.4: more than Receive
/// Maximum unacknowledged is answered with DISCONNECT 0x93).
#[derive(Debug)]
pub struct Incoming {
    pending: VecDeque<InEntry>,
    receive_maximum: u16,
}

impl Default for Incoming {
    /// Nothing pending, Receive Maximum 65,535 (the MQTT 5 default when the property is
    /// absent).
    fn default() -> Self {
        Incoming::new(u16::MAX)
    }
}

impl Incoming {
    /// Nothing pending; at most `receive_maximum` unacknowledged PUBLISH packets are accepted.
    /// Does not allocate. 0 is treated as in [`Outgoing::new`].
    pub const fn new(receive_maximum: u16) -> Self {
        Incoming {
            pending: VecDeque::new(),
            receive_maximum: clamp_receive_maximum(receive_maximum),
        }
    }

    /// Changes our Receive Maximum, e.g. for a new connection resuming the session. Nothing
    /// pending is dropped. 0 is treated as in [`Outgoing::new`].
    pub fn set_receive_maximum(&mut self, receive_maximum: u16) {
        self.receive_maximum = clamp_receive_maximum(receive_maximum);
    }

    /// Our Receive Maximum in force.
    pub fn receive_maximum(&self) -> u16 {
        self.receive_maximum
    }

    /// The number of unacknowledged QoS 1 and QoS 2 PUBLISH packets.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// A QoS 1 PUBLISH arrived. It counts against Receive Maximum until
    /// [`puback_sent`](Incoming::puback_sent). A resend (DUP) of an identifier whose PUBACK
    /// has not been sent yet is accepted and not counted twice; the caller decides whether to
    /// pass it on again (QoS 1 allows duplicates). Once the PUBACK is sent, the same identifier
    /// is a new message (`[MQTT-4.3.2-5]`).
    ///
    /// Errors: [`InflightError::ReceiveMaximumExceeded`] (Reason Code 0x93, §3.3.4) when
    /// Receive Maximum identifiers are already pending; [`InflightError::PacketIdInUse`]
    /// (0x91) when the identifier is a QoS 2 message still awaiting PUBREL.
    pub fn on_publish_qos1(&mut self, packet_id: PacketId) -> Result<(), InflightError> {
        match self.awaiting(packet_id) {
            Some(Awaiting::PubAck) => Ok(()),
            Some(Awaiting::PubRel) => Err(InflightError::PacketIdInUse(packet_id)),
            None => self.admit(packet_id, Awaiting::PubAck),
        }
    }

    /// The PUBACK for `packet_id` was sent (`[MQTT-4.3.2-4]`): frees its Receive Maximum slot.
    /// Does nothing for an identifier not pending at QoS 1.
    pub fn puback_sent(&mut self, packet_id: PacketId) {
        // The PUBACK normally follows its PUBLISH at once, so look from the back.
        let index = self
            .pending
            .iter()
            .rposition(|e| e.packet_id == packet_id && e.awaiting == Awaiting::PubAck);
        if let Some(index) = index {
            self.pending.remove(index);
        }
    }

    /// A QoS 2 PUBLISH arrived. Returns [`Qos2Outcome::Deliver`] for a new identifier (pass the
    /// message on once, then send PUBREC, `[MQTT-4.3.3-8]`), or [`Qos2Outcome::Duplicate`] if
    /// the identifier is still awaiting PUBREL (send PUBREC again, do not pass it on,
    /// `[MQTT-4.3.3-10]`). The identifier counts against Receive Maximum until
    /// [`on_pubrel`](Incoming::on_pubrel) or [`qos2_rejected`](Incoming::qos2_rejected).
    ///
    /// Errors: [`InflightError::ReceiveMaximumExceeded`] (0x93, §3.3.4) for a new identifier
    /// when Receive Maximum are already pending; [`InflightError::PacketIdInUse`] (0x91) when
    /// the identifier is a QoS 1 message whose PUBACK has not been sent.
    pub fn on_publish_qos2(&mut self, packet_id: PacketId) -> Result<Qos2Outcome, InflightError> {
        match self.awaiting(packet_id) {
            Some(Awaiting::PubRel) => Ok(Qos2Outcome::Duplicate),
            Some(Awaiting::PubAck) => Err(InflightError::PacketIdInUse(packet_id)),
            None => self
                .admit(packet_id, Awaiting::PubRel)
                .map(|()| Qos2Outcome::Deliver),
        }
    }

    /// The QoS 2 message was refused with a PUBREC carrying a Reason Code of 0x80 or more:
    /// forget the identifier at once, so a later PUBLISH with it is a new message
    /// (`[MQTT-4.3.3-9]`). Does nothing for an identifier not awaiting PUBREL.
    pub fn qos2_rejected(&mut self, packet_id: PacketId) {
        self.remove_awaiting_pubrel(packet_id);
    }

    /// A PUBREL arrived: forgets the identifier; the caller sends PUBCOMP with Success
    /// (`[MQTT-4.3.3-11]`), after which the identifier is free for a new message
    /// (`[MQTT-4.3.3-12]`).
    ///
    /// Errors: [`InflightError::PacketIdNotFound`] for an identifier not awaiting PUBREL; the
    /// caller still answers with PUBCOMP, with Reason Code 0x92 in MQTT 5.
    pub fn on_pubrel(&mut self, packet_id: PacketId) -> Result<(), InflightError> {
        if self.remove_awaiting_pubrel(packet_id) {
            Ok(())
        } else {
            Err(InflightError::PacketIdNotFound(packet_id))
        }
    }

    /// The QoS 2 identifiers awaiting PUBREL, oldest first: the part of the Session State to
    /// persist (MQTT 5.0 §4.1).
    pub fn awaiting_pubrel(&self) -> impl Iterator<Item = PacketId> + '_ {
        self.pending
            .iter()
            .filter(|e| e.awaiting == Awaiting::PubRel)
            .map(|e| e.packet_id)
    }

    /// Restores a QoS 2 identifier awaiting PUBREL from a persisted session. Receive Maximum
    /// is not checked. Restoring an identifier that is already pending marks it as awaiting
    /// PUBREL without adding it twice.
    pub fn restore_awaiting_pubrel(&mut self, packet_id: PacketId) {
        match self.pending.iter_mut().find(|e| e.packet_id == packet_id) {
            Some(entry) => entry.awaiting = Awaiting::PubRel,
            None => self.pending.push_back(InEntry {
                packet_id,
                awaiting: Awaiting::PubRel,
            }),
        }
    }

    /// Forgets QoS 1 identifiers whose PUBACK was never sent, keeping QoS 2 identifiers
    /// awaiting PUBREL (which are Session State). Call it when the Network Connection is lost:
    /// the peer resends those PUBLISH packets on the next connection (`[MQTT-4.4.0-1]`) and
    /// they are counted afresh.
    pub fn clear_qos1(&mut self) {
        self.pending.retain(|e| e.awaiting == Awaiting::PubRel);
    }

    fn awaiting(&self, packet_id: PacketId) -> Option<Awaiting> {
        self.pending
            .iter()
            .find(|e| e.packet_id == packet_id)
            .map(|e| e.awaiting)
    }

    fn admit(&mut self, packet_id: PacketId, awaiting: Awaiting) -> Result<(), InflightError> {
        if self.pending.len() >= usize::from(self.receive_maximum) {
            return Err(InflightError::ReceiveMaximumExceeded {
                maximum: self.receive_maximum,
            });
        }
        self.pending.push_back(InEntry {
            packet_id,
            awaiting,
        });
        Ok(())
    }

    fn remove_awaiting_pubrel(&mut self, packet_id: PacketId) -> bool {
        let index = self
            .pending
            .iter()
            .position(|e| e.packet_id == packet_id && e.awaiting == Awaiting::PubRel);
        index.and_then(|i| self.pending.remove(i)).is_some()
    }
}

/// Allocates Packet Identifiers for SUBSCRIBE and UNSUBSCRIBE (and anything else that is not
/// a QoS 1/2 PUBLISH tracked by [`Outgoing`]), never handing out one still in use
/// (`[MQTT-2.2.1-3]`). Identifiers are handed out in increasing order, wrapping from 65535 to
/// 1. Does not allocate until the first identifier is in use.
#[derive(Debug, Default)]
pub struct PacketIdAllocator {
    in_use: Vec<PacketId>,
    /// The last identifier handed out; 0 before the first.
    last: u16,
}

impl PacketIdAllocator {
    /// No identifiers in use.
    pub const fn new() -> Self {
        PacketIdAllocator {
            in_use: Vec::new(),
            last: 0,
        }
    }

    /// Hands out the next unused identifier and marks it in use until
    /// [`release`](PacketIdAllocator::release).
    ///
    /// Errors: [`InflightError::PacketIdsExhausted`] if all 65,535 are in use.
    pub fn allocate(&mut self) -> Result<PacketId, InflightError> {
        self.allocate_excluding(|_| false)
    }

    /// Like [`allocate`](PacketIdAllocator::allocate), but also skips identifiers for which
    /// `in_use_elsewhere` returns true; a client passes `|id| outgoing.contains(id)` so that
    /// SUBSCRIBE and PUBLISH identifiers never collide (`[MQTT-2.2.1-3]`).
    pub fn allocate_excluding(
        &mut self,
        mut in_use_elsewhere: impl FnMut(PacketId) -> bool,
    ) -> Result<PacketId, InflightError> {
        let packet_id = next_free_id(self.last, |id| {
            self.in_use.contains(&id) || in_use_elsewhere(id)
        })
        .ok_or(InflightError::PacketIdsExhausted)?;
        self.last = packet_id.get();
        self.in_use.push(packet_id);
        Ok(packet_id)
    }

    /// Frees `packet_id` once its SUBACK or UNSUBACK has been processed. Returns whether it was
    /// in use.
    pub fn release(&mut self, packet_id: PacketId) -> bool {
        match self.in_use.iter().position(|&id| id == packet_id) {
            Some(index) => {
                self.in_use.swap_remove(index);
                true
            }
            None => false,
        }
    }

    /// Whether `packet_id` has been handed out and not released.
    pub fn is_in_use(&self, packet_id: PacketId) -> bool {
        self.in_use.contains(&packet_id)
    }

    /// The number of identifiers in use.
    pub fn len(&self) -> usize {
        self.in_use.len()
    }

    /// Whether no identifier is in use.
    pub fn is_empty(&self) -> bool {
        self.in_use.is_empty()
    }
}

/// Why an [`Outgoing`], [`Incoming`] or [`PacketIdAllocator`] operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InflightError {
    /// The peer's Receive Maximum of unacknowledged QoS 1/2 PUBLISH packets is reached; wait
    /// for an acknowledgement (`[MQTT-4.9.0-2]`).
    #[error("[MQTT-4.9.0-2] the peer's Receive Maximum of in-flight QoS 1/2 PUBLISH is reached")]
    NoCapacity,
    /// QoS 0 messages have no acknowledgement to track.
    #[error("only QoS 1 and QoS 2 deliveries are tracked")]
    NotQos1Or2,
    /// All 65,535 Packet Identifiers are in use.
    #[error("all 65535 packet identifiers are in use")]
    PacketIdsExhausted,
    /// The Packet Identifier is already in use by another exchange.
    #[error("packet identifier {0} is already in use")]
    PacketIdInUse(PacketId),
    /// No exchange uses the Packet Identifier.
    #[error("packet identifier {0} not found")]
    PacketIdNotFound(PacketId),
    /// An acknowledgement that does not fit the delivery's state (a Protocol Error by the
    /// peer), such as a PUBACK for a QoS 2 delivery or a PUBCOMP before the PUBREC.
    #[error(
        "unexpected acknowledgement for packet identifier {packet_id}: the delivery is {expected}"
    )]
    UnexpectedAck {
        /// The Packet Identifier acknowledged.
        packet_id: PacketId,
        /// The state the delivery is in, naming the acknowledgement that was expected.
        expected: OutgoingState,
    },
    /// The peer sent more unacknowledged QoS 1/2 PUBLISH packets than our Receive Maximum
    /// allows (§3.3.4, `[MQTT-3.3.4-7]`, `[MQTT-3.3.4-9]`); answer with DISCONNECT 0x93.
    #[error(
        "more than Receive Maximum ({maximum}) unacknowledged QoS 1/2 PUBLISH packets received"
    )]
    ReceiveMaximumExceeded {
        /// Our Receive Maximum.
        maximum: u16,
    },
    /// [`Outgoing::restore`] of a delivery awaiting PUBACK or PUBREC without its message.
    #[error("packet identifier {0}: a delivery awaiting PUBACK or PUBREC needs its message")]
    MissingMessage(PacketId),
}

impl InflightError {
    /// The MQTT 5 Reason Code that describes this error on the wire: 0x91 Packet Identifier in
    /// use, 0x92 Packet Identifier not found, 0x93 Receive Maximum exceeded, 0x82 Protocol
    /// Error for an unexpected acknowledgement, and 0x83 Implementation specific error for
    /// local conditions that are the caller's own ([`NotQos1Or2`](Self::NotQos1Or2),
    /// [`PacketIdsExhausted`](Self::PacketIdsExhausted), [`MissingMessage`](Self::MissingMessage)).
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            InflightError::NoCapacity | InflightError::ReceiveMaximumExceeded { .. } => {
                ReasonCode::RECEIVE_MAXIMUM_EXCEEDED
            }
            InflightError::PacketIdInUse(_) => ReasonCode::PACKET_IDENTIFIER_IN_USE,
            InflightError::PacketIdNotFound(_) => ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            InflightError::UnexpectedAck { .. } => ReasonCode::PROTOCOL_ERROR,
            InflightError::NotQos1Or2
            | InflightError::PacketIdsExhausted
            | InflightError::MissingMessage(_) => ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn pid(value: u16) -> PacketId {
        PacketId::new(value).unwrap_or_else(|| panic!("{value} is not a packet id"))
    }

    fn ids<M>(out: &Outgoing<M>) -> Vec<u16> {
        out.iter().map(|(id, _, _)| id.get()).collect()
    }

    #[test]
    fn empty_values_do_not_allocate() {
        let out: Outgoing<String> = Outgoing::new(10);
        assert_eq!(out.entries.capacity(), 0);
        assert!(out.is_empty());
        let incoming = Incoming::new(10);
        assert_eq!(incoming.pending.capacity(), 0);
        let alloc = PacketIdAllocator::new();
        assert_eq!(alloc.in_use.capacity(), 0);
        assert!(std::mem::size_of::<Outgoing<String>>() <= 48);
        assert!(std::mem::size_of::<Incoming>() <= 40);
        assert!(std::mem::size_of::<PacketIdAllocator>() <= 32);
    }

    #[test]
    fn qos1_full_flow() {
        let mut out = Outgoing::new(10);
        let id = out
            .start(QoS::AtLeastOnce, "m1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id.get(), 1);
        assert_eq!(out.state(id), Some(OutgoingState::AwaitingPubAck));
        assert_eq!(out.len(), 1);
        assert_eq!(out.on_puback(id), Ok("m1"));
        assert!(out.is_empty());
        assert_eq!(out.on_puback(id), Err(InflightError::PacketIdNotFound(id)));
    }

    #[test]
    fn qos2_full_flow() {
        let mut out = Outgoing::new(10);
        let id = out
            .start(QoS::ExactlyOnce, "m1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.state(id), Some(OutgoingState::AwaitingPubRec));
        // PUBCOMP before PUBREC is a protocol error and changes nothing.
        assert_eq!(
            out.on_pubcomp(id),
            Err(InflightError::UnexpectedAck {
                packet_id: id,
                expected: OutgoingState::AwaitingPubRec
            })
        );
        assert_eq!(
            out.on_pubrec(id, false),
            Ok(PubRecOutcome::SendPubRel("m1"))
        );
        assert_eq!(out.state(id), Some(OutgoingState::AwaitingPubComp));
        assert_eq!(
            out.iter().collect::<Vec<_>>(),
            [(id, OutgoingState::AwaitingPubComp, None)]
        );
        assert_eq!(
            out.len(),
            1,
            "a delivery awaiting PUBCOMP still counts against the quota"
        );
        assert_eq!(out.on_pubcomp(id), Ok(()));
        assert!(out.is_empty());
        assert_eq!(out.on_pubcomp(id), Err(InflightError::PacketIdNotFound(id)));
    }

    #[test]
    fn qos0_is_not_tracked() {
        let mut out = Outgoing::new(10);
        assert_eq!(
            out.start(QoS::AtMostOnce, ()),
            Err(InflightError::NotQos1Or2)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn acks_of_the_wrong_kind_are_protocol_errors() {
        let mut out = Outgoing::new(10);
        let q1 = out
            .start(QoS::AtLeastOnce, 1)
            .unwrap_or_else(|e| panic!("{e}"));
        let q2 = out
            .start(QoS::ExactlyOnce, 2)
            .unwrap_or_else(|e| panic!("{e}"));
        let err = out.on_puback(q2);
        assert_eq!(
            err,
            Err(InflightError::UnexpectedAck {
                packet_id: q2,
                expected: OutgoingState::AwaitingPubRec
            })
        );
        assert_eq!(
            err.map_err(|e| e.reason_code()),
            Err(ReasonCode::PROTOCOL_ERROR)
        );
        assert_eq!(
            out.on_pubrec(q1, false),
            Err(InflightError::UnexpectedAck {
                packet_id: q1,
                expected: OutgoingState::AwaitingPubAck
            })
        );
        assert_eq!(
            out.on_pubcomp(q1),
            Err(InflightError::UnexpectedAck {
                packet_id: q1,
                expected: OutgoingState::AwaitingPubAck
            })
        );
        assert_eq!(out.on_pubrec(q2, false), Ok(PubRecOutcome::SendPubRel(2)));
        assert_eq!(
            out.on_puback(q2),
            Err(InflightError::UnexpectedAck {
                packet_id: q2,
                expected: OutgoingState::AwaitingPubComp
            })
        );
        assert_eq!(
            out.on_pubrec(q2, true),
            Err(InflightError::UnexpectedAck {
                packet_id: q2,
                expected: OutgoingState::AwaitingPubComp
            })
        );
        assert_eq!(out.len(), 2, "errors leave the state alone");
        let unknown = pid(999);
        assert_eq!(
            out.on_pubrec(unknown, false),
            Err(InflightError::PacketIdNotFound(unknown))
        );
        assert_eq!(
            InflightError::PacketIdNotFound(unknown).reason_code(),
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        );
    }

    #[test]
    fn out_of_order_acks() {
        let mut out = Outgoing::new(10);
        let a = out
            .start(QoS::AtLeastOnce, "a")
            .unwrap_or_else(|e| panic!("{e}"));
        let b = out
            .start(QoS::AtLeastOnce, "b")
            .unwrap_or_else(|e| panic!("{e}"));
        let c = out
            .start(QoS::AtLeastOnce, "c")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.on_puback(b), Ok("b"));
        assert_eq!(ids(&out), [a.get(), c.get()]);
        assert_eq!(out.on_puback(c), Ok("c"));
        assert_eq!(out.on_puback(a), Ok("a"));
        assert!(out.is_empty());
        // Identifiers keep increasing rather than reusing freed ones at once.
        assert_eq!(out.start(QoS::AtLeastOnce, "d").map(PacketId::get), Ok(4));
    }

    #[test]
    fn duplicate_pubrec_resends_pubrel() {
        let mut out = Outgoing::new(10);
        let id = out
            .start(QoS::ExactlyOnce, "m")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.on_pubrec(id, false), Ok(PubRecOutcome::SendPubRel("m")));
        assert_eq!(out.on_pubrec(id, false), Ok(PubRecOutcome::ResendPubRel));
        assert_eq!(out.state(id), Some(OutgoingState::AwaitingPubComp));
        assert_eq!(out.on_pubcomp(id), Ok(()));
    }

    #[test]
    fn pubrec_with_error_frees_the_id_and_the_quota() {
        let mut out = Outgoing::new(1);
        let id = out
            .start(QoS::ExactlyOnce, "m")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.has_capacity());
        assert_eq!(out.on_pubrec(id, true), Ok(PubRecOutcome::Failed("m")));
        assert!(out.is_empty());
        assert!(!out.contains(id));
        assert!(out.has_capacity());
        assert_eq!(out.on_pubcomp(id), Err(InflightError::PacketIdNotFound(id)));
    }

    #[test]
    fn flow_control() {
        let mut out = Outgoing::new(2);
        let a = out
            .start(QoS::AtLeastOnce, 'a')
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.has_capacity());
        let b = out
            .start(QoS::ExactlyOnce, 'b')
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.has_capacity());
        let err = out.start(QoS::AtLeastOnce, 'c');
        assert_eq!(err, Err(InflightError::NoCapacity));
        assert_eq!(
            err.map_err(|e| e.reason_code()),
            Err(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
        );
        assert_eq!(out.len(), 2);
        // PUBREC success does not free the slot; PUBCOMP does.
        assert_eq!(out.on_pubrec(b, false), Ok(PubRecOutcome::SendPubRel('b')));
        assert!(!out.has_capacity());
        assert_eq!(out.on_pubcomp(b), Ok(()));
        assert!(out.has_capacity());
        // Lowering the maximum drops nothing but blocks new deliveries.
        let c = out
            .start(QoS::AtLeastOnce, 'c')
            .unwrap_or_else(|e| panic!("{e}"));
        out.set_receive_maximum(1);
        assert_eq!(out.receive_maximum(), 1);
        assert_eq!(out.len(), 2);
        assert!(!out.has_capacity());
        assert_eq!(out.on_puback(a), Ok('a'));
        assert!(!out.has_capacity());
        assert_eq!(out.on_puback(c), Ok('c'));
        assert!(out.has_capacity());
        out.set_receive_maximum(u16::MAX);
        assert!(out.has_capacity());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "Receive Maximum 0")]
    fn receive_maximum_zero_is_caught_in_debug_builds() {
        let _ = Outgoing::<()>::new(0);
    }

    #[test]
    fn ids_wrap_around_and_skip_ids_in_flight() {
        let mut out = Outgoing::new(100);
        for (id, state, message) in [
            (1, OutgoingState::AwaitingPubAck, Some("one")),
            (2, OutgoingState::AwaitingPubComp, None),
            (65534, OutgoingState::AwaitingPubRec, Some("last")),
        ] {
            assert_eq!(out.restore(pid(id), state, message), Ok(()));
        }
        // Allocation continues after the last restored id, wraps past 65535 and skips 1 and 2.
        let next: Vec<u16> = (0..3)
            .map(|_| out.start(QoS::AtLeastOnce, "new").map_or(0, PacketId::get))
            .collect();
        assert_eq!(next, [65535, 3, 4]);
        // Freed ids are reused only when the counter comes round again.
        assert_eq!(out.on_puback(pid(1)), Ok("one"));
        assert_eq!(out.start(QoS::AtLeastOnce, "x").map(PacketId::get), Ok(5));
    }

    #[test]
    fn all_ids_in_use() {
        let mut out = Outgoing::new(u16::MAX);
        assert_eq!(
            out.start_excluding(QoS::AtLeastOnce, (), |_| true),
            Err(InflightError::PacketIdsExhausted)
        );
        // Only id 7 is free elsewhere.
        assert_eq!(
            out.start_excluding(QoS::AtLeastOnce, (), |id| id.get() != 7)
                .map(PacketId::get),
            Ok(7)
        );
        assert_eq!(
            out.start_excluding(QoS::AtLeastOnce, (), |id| id.get() != 7),
            Err(InflightError::PacketIdsExhausted),
            "7 is now in flight here"
        );
    }

    #[test]
    fn restore_checks_ids_and_messages() {
        let mut out = Outgoing::new(10);
        assert_eq!(
            out.restore(pid(5), OutgoingState::AwaitingPubAck, Some("a")),
            Ok(())
        );
        assert_eq!(
            out.restore(pid(5), OutgoingState::AwaitingPubComp, None),
            Err(InflightError::PacketIdInUse(pid(5)))
        );
        assert_eq!(
            InflightError::PacketIdInUse(pid(5)).reason_code(),
            ReasonCode::PACKET_IDENTIFIER_IN_USE
        );
        assert_eq!(
            out.restore(pid(6), OutgoingState::AwaitingPubRec, None),
            Err(InflightError::MissingMessage(pid(6)))
        );
        // A message given for a delivery past PUBREC is not kept.
        assert_eq!(
            out.restore(pid(7), OutgoingState::AwaitingPubComp, Some("gone")),
            Ok(())
        );
        assert_eq!(
            out.iter().nth(1),
            Some((pid(7), OutgoingState::AwaitingPubComp, None))
        );
        // Restoring ignores Receive Maximum.
        let mut small = Outgoing::new(1);
        for id in 1..=3 {
            assert_eq!(
                small.restore(pid(id), OutgoingState::AwaitingPubAck, Some(id)),
                Ok(())
            );
        }
        assert_eq!(small.len(), 3);
        assert!(!small.has_capacity());
    }

    #[test]
    fn restore_then_resend_in_order() {
        let mut out = Outgoing::new(10);
        out.restore(pid(10), OutgoingState::AwaitingPubAck, Some("a"))
            .unwrap_or_else(|e| panic!("{e}"));
        out.restore(pid(11), OutgoingState::AwaitingPubComp, None)
            .unwrap_or_else(|e| panic!("{e}"));
        out.restore(pid(12), OutgoingState::AwaitingPubRec, Some("c"))
            .unwrap_or_else(|e| panic!("{e}"));
        let d = out
            .start(QoS::ExactlyOnce, "d")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.get(), 13);
        let resend: Vec<_> = out.resend().collect();
        assert_eq!(
            resend,
            [
                (
                    pid(10),
                    Resend::Publish {
                        message: &"a",
                        qos: QoS::AtLeastOnce
                    }
                ),
                (pid(11), Resend::PubRel),
                (
                    pid(12),
                    Resend::Publish {
                        message: &"c",
                        qos: QoS::ExactlyOnce
                    }
                ),
                (
                    pid(13),
                    Resend::Publish {
                        message: &"d",
                        qos: QoS::ExactlyOnce
                    }
                ),
            ]
        );
    }

    #[test]
    fn pubrel_resend_order_follows_pubrec_order() {
        // [MQTT-4.6.0-1]: PUBLISH packets in original order; [MQTT-4.6.0-4]: PUBREL packets in
        // the order their PUBREC arrived.
        let mut out = Outgoing::new(10);
        let a = out
            .start(QoS::ExactlyOnce, "a")
            .unwrap_or_else(|e| panic!("{e}"));
        let b = out
            .start(QoS::ExactlyOnce, "b")
            .unwrap_or_else(|e| panic!("{e}"));
        let c = out
            .start(QoS::AtLeastOnce, "c")
            .unwrap_or_else(|e| panic!("{e}"));
        let d = out
            .start(QoS::ExactlyOnce, "d")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.on_pubrec(b, false), Ok(PubRecOutcome::SendPubRel("b")));
        assert_eq!(out.on_pubrec(a, false), Ok(PubRecOutcome::SendPubRel("a")));
        let resend: Vec<_> = out.resend().collect();
        assert_eq!(
            resend,
            [
                (
                    c,
                    Resend::Publish {
                        message: &"c",
                        qos: QoS::AtLeastOnce
                    }
                ),
                (
                    d,
                    Resend::Publish {
                        message: &"d",
                        qos: QoS::ExactlyOnce
                    }
                ),
                (b, Resend::PubRel),
                (a, Resend::PubRel),
            ]
        );
        // PUBCOMP for either, in any order.
        assert_eq!(out.on_pubcomp(a), Ok(()));
        assert_eq!(out.on_pubcomp(b), Ok(()));
        assert_eq!(ids(&out), [c.get(), d.get()]);
    }

    #[test]
    fn drain_empties_everything() {
        let mut out = Outgoing::new(10);
        let a = out
            .start(QoS::AtLeastOnce, "a")
            .unwrap_or_else(|e| panic!("{e}"));
        let b = out
            .start(QoS::ExactlyOnce, "b")
            .unwrap_or_else(|e| panic!("{e}"));
        let c = out
            .start(QoS::ExactlyOnce, "c")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.on_pubrec(b, false), Ok(PubRecOutcome::SendPubRel("b")));
        let drained: Vec<_> = out.drain().collect();
        assert_eq!(
            drained,
            [
                (a, OutgoingState::AwaitingPubAck, Some("a")),
                (c, OutgoingState::AwaitingPubRec, Some("c")),
                (b, OutgoingState::AwaitingPubComp, None),
            ]
        );
        assert!(out.is_empty());
        assert_eq!(out.start(QoS::AtLeastOnce, "d").map(PacketId::get), Ok(4));
    }

    #[test]
    fn incoming_qos1() {
        let mut incoming = Incoming::new(2);
        assert_eq!(incoming.on_publish_qos1(pid(1)), Ok(()));
        // A DUP resend before our PUBACK is accepted and not counted twice.
        assert_eq!(incoming.on_publish_qos1(pid(1)), Ok(()));
        assert_eq!(incoming.len(), 1);
        assert_eq!(incoming.on_publish_qos1(pid(2)), Ok(()));
        let err = incoming.on_publish_qos1(pid(3));
        assert_eq!(
            err,
            Err(InflightError::ReceiveMaximumExceeded { maximum: 2 })
        );
        assert_eq!(
            err.map_err(|e| e.reason_code()),
            Err(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
        );
        incoming.puback_sent(pid(1));
        assert_eq!(incoming.len(), 1);
        assert_eq!(incoming.on_publish_qos1(pid(3)), Ok(()));
        // After the PUBACK, the same id is a new message ([MQTT-4.3.2-5]).
        incoming.puback_sent(pid(2));
        incoming.puback_sent(pid(3));
        incoming.puback_sent(pid(3));
        assert!(incoming.is_empty());
        assert_eq!(incoming.on_publish_qos1(pid(1)), Ok(()));
        assert_eq!(incoming.len(), 1);
    }

    #[test]
    fn incoming_qos2_duplicates_are_not_delivered_twice() {
        let mut incoming = Incoming::new(10);
        assert_eq!(incoming.on_publish_qos2(pid(7)), Ok(Qos2Outcome::Deliver));
        assert_eq!(incoming.on_publish_qos2(pid(7)), Ok(Qos2Outcome::Duplicate));
        assert_eq!(incoming.on_publish_qos2(pid(7)), Ok(Qos2Outcome::Duplicate));
        assert_eq!(incoming.len(), 1);
        assert_eq!(incoming.on_pubrel(pid(7)), Ok(()));
        assert!(incoming.is_empty());
        // After PUBCOMP the id is a new message ([MQTT-4.3.3-12]).
        assert_eq!(incoming.on_publish_qos2(pid(7)), Ok(Qos2Outcome::Deliver));
    }

    #[test]
    fn incoming_pubrel_for_unknown_id() {
        let mut incoming = Incoming::new(10);
        let err = incoming.on_pubrel(pid(3));
        assert_eq!(err, Err(InflightError::PacketIdNotFound(pid(3))));
        assert_eq!(
            err.map_err(|e| e.reason_code()),
            Err(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
        );
        // A QoS 1 id is not released by PUBREL.
        assert_eq!(incoming.on_publish_qos1(pid(4)), Ok(()));
        assert_eq!(
            incoming.on_pubrel(pid(4)),
            Err(InflightError::PacketIdNotFound(pid(4)))
        );
        assert_eq!(incoming.len(), 1);
    }

    #[test]
    fn incoming_rejected_qos2_is_forgotten() {
        let mut incoming = Incoming::new(1);
        assert_eq!(incoming.on_publish_qos2(pid(9)), Ok(Qos2Outcome::Deliver));
        incoming.qos2_rejected(pid(9));
        assert!(incoming.is_empty());
        // [MQTT-4.3.3-9]: the same id is now a new message.
        assert_eq!(incoming.on_publish_qos2(pid(9)), Ok(Qos2Outcome::Deliver));
        assert_eq!(incoming.on_pubrel(pid(9)), Ok(()));
    }

    #[test]
    fn incoming_receive_maximum_counts_both_qos_levels() {
        let mut incoming = Incoming::new(2);
        assert_eq!(incoming.on_publish_qos2(pid(1)), Ok(Qos2Outcome::Deliver));
        assert_eq!(incoming.on_publish_qos1(pid(2)), Ok(()));
        assert_eq!(
            incoming.on_publish_qos2(pid(3)),
            Err(InflightError::ReceiveMaximumExceeded { maximum: 2 })
        );
        // Duplicates of pending ids are still answered when full.
        assert_eq!(incoming.on_publish_qos2(pid(1)), Ok(Qos2Outcome::Duplicate));
        assert_eq!(incoming.on_publish_qos1(pid(2)), Ok(()));
        incoming.puback_sent(pid(2));
        assert_eq!(incoming.on_publish_qos2(pid(3)), Ok(Qos2Outcome::Deliver));
        incoming.set_receive_maximum(5);
        assert_eq!(incoming.receive_maximum(), 5);
        assert_eq!(incoming.on_publish_qos1(pid(4)), Ok(()));
    }

    #[test]
    fn incoming_id_reused_across_qos_levels_is_in_use() {
        let mut incoming = Incoming::new(10);
        assert_eq!(incoming.on_publish_qos2(pid(1)), Ok(Qos2Outcome::Deliver));
        assert_eq!(
            incoming.on_publish_qos1(pid(1)),
            Err(InflightError::PacketIdInUse(pid(1)))
        );
        assert_eq!(incoming.on_publish_qos1(pid(2)), Ok(()));
        assert_eq!(
            incoming.on_publish_qos2(pid(2)),
            Err(InflightError::PacketIdInUse(pid(2)))
        );
        // puback_sent does not release a QoS 2 id.
        incoming.puback_sent(pid(1));
        assert_eq!(incoming.awaiting_pubrel().collect::<Vec<_>>(), [pid(1)]);
    }

    #[test]
    fn incoming_session_persistence() {
        let mut incoming = Incoming::new(10);
        assert_eq!(incoming.on_publish_qos2(pid(5)), Ok(Qos2Outcome::Deliver));
        assert_eq!(incoming.on_publish_qos1(pid(6)), Ok(()));
        assert_eq!(incoming.on_publish_qos2(pid(7)), Ok(Qos2Outcome::Deliver));
        let saved: Vec<PacketId> = incoming.awaiting_pubrel().collect();
        assert_eq!(saved, [pid(5), pid(7)]);

        incoming.clear_qos1();
        assert_eq!(incoming.len(), 2);

        let mut restored = Incoming::default();
        for id in saved {
            restored.restore_awaiting_pubrel(id);
        }
        restored.restore_awaiting_pubrel(pid(5));
        assert_eq!(restored.len(), 2);
        assert_eq!(restored.on_publish_qos2(pid(7)), Ok(Qos2Outcome::Duplicate));
        assert_eq!(restored.on_pubrel(pid(5)), Ok(()));
        assert_eq!(restored.on_pubrel(pid(7)), Ok(()));
        assert!(restored.is_empty());
    }

    #[test]
    fn allocator() {
        let mut alloc = PacketIdAllocator::default();
        let a = alloc.allocate().unwrap_or_else(|e| panic!("{e}"));
        let b = alloc.allocate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a.get(), b.get()), (1, 2));
        assert!(alloc.is_in_use(a));
        assert_eq!(alloc.len(), 2);
        assert!(alloc.release(a));
        assert!(!alloc.release(a));
        assert!(!alloc.is_in_use(a));
        // Skips ids in use elsewhere (a client's Outgoing).
        let mut out = Outgoing::new(10);
        let p = out
            .start_excluding(QoS::AtLeastOnce, (), |id| alloc.is_in_use(id))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.get(), 1);
        let c = alloc
            .allocate_excluding(|id| out.contains(id))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get(), 3);
        assert!(alloc.release(b));
        assert!(alloc.release(c));
        assert!(alloc.is_empty());
    }

    #[test]
    fn allocator_wraps_and_exhausts() {
        let mut alloc = PacketIdAllocator {
            in_use: vec![pid(1)],
            last: 65534,
        };
        assert_eq!(alloc.allocate().map(PacketId::get), Ok(65535));
        assert_eq!(alloc.allocate().map(PacketId::get), Ok(2));
        assert_eq!(
            alloc.allocate_excluding(|_| true),
            Err(InflightError::PacketIdsExhausted)
        );
        assert_eq!(alloc.len(), 3);
    }

    #[test]
    fn error_messages_and_reason_codes() {
        let cases = [
            (InflightError::NoCapacity, 0x93),
            (InflightError::NotQos1Or2, 0x83),
            (InflightError::PacketIdsExhausted, 0x83),
            (InflightError::PacketIdInUse(pid(1)), 0x91),
            (InflightError::PacketIdNotFound(pid(1)), 0x92),
            (
                InflightError::UnexpectedAck {
                    packet_id: pid(1),
                    expected: OutgoingState::AwaitingPubComp,
                },
                0x82,
            ),
            (InflightError::ReceiveMaximumExceeded { maximum: 3 }, 0x93),
            (InflightError::MissingMessage(pid(1)), 0x83),
        ];
        for (error, code) in cases {
            assert_eq!(error.reason_code().0, code, "{error:?}");
            assert!(!error.to_string().is_empty());
        }
        assert_eq!(
            InflightError::UnexpectedAck {
                packet_id: pid(4),
                expected: OutgoingState::AwaitingPubRec
            }
            .to_string(),
            "unexpected acknowledgement for packet identifier 4: the delivery is awaiting PUBREC"
        );
        assert_eq!(OutgoingState::AwaitingPubAck.qos(), QoS::AtLeastOnce);
        assert_eq!(OutgoingState::AwaitingPubComp.qos(), QoS::ExactlyOnce);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Start(QoS),
        PubAck(usize),
        PubRec(usize, bool),
        PubComp(usize),
        Unknown(u16),
        SetReceiveMaximum(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => prop::sample::select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
                .prop_map(Op::Start),
            2 => any::<usize>().prop_map(Op::PubAck),
            2 => (any::<usize>(), any::<bool>()).prop_map(|(i, e)| Op::PubRec(i, e)),
            2 => any::<usize>().prop_map(Op::PubComp),
            1 => (1..=20u16).prop_map(Op::Unknown),
            1 => (1..=8u16).prop_map(Op::SetReceiveMaximum),
        ]
    }

    proptest! {
        /// Random start/ack sequences against a model: ids handed out are never in flight,
        /// `len()` never exceeds Receive Maximum through `start`, and every ack gives back
        /// what the model expects.
        #[test]
        fn outgoing_matches_model(
            receive_maximum in 1..=8u16,
            start_id in 0..=u16::MAX,
            ops in prop::collection::vec(op(), 0..200),
        ) {
            let mut out: Outgoing<u32> = Outgoing::new(receive_maximum);
            // Start near an arbitrary point of the id space so wrap-around is exercised.
            out.last_id = start_id;
            let mut model: HashMap<PacketId, (OutgoingState, u32)> = HashMap::new();
            let mut counter = 0u32;
            let mut maximum = receive_maximum;
            for op in ops {
                let in_flight: Vec<PacketId> = out.iter().map(|(id, _, _)| id).collect();
                let pick = |i: usize| in_flight.get(i % in_flight.len().max(1)).copied();
                match op {
                    Op::Start(qos) => {
                        counter += 1;
                        let had_capacity = out.len() < usize::from(maximum);
                        match out.start(qos, counter) {
                            Ok(id) => {
                                prop_assert!(qos != QoS::AtMostOnce);
                                prop_assert!(had_capacity);
                                prop_assert!(!model.contains_key(&id), "{id:?} is in flight");
                                let state = if qos == QoS::AtLeastOnce {
                                    OutgoingState::AwaitingPubAck
                                } else {
                                    OutgoingState::AwaitingPubRec
                                };
                                model.insert(id, (state, counter));
                                prop_assert!(out.len() <= usize::from(maximum));
                            }
                            Err(InflightError::NotQos1Or2) => prop_assert_eq!(qos, QoS::AtMostOnce),
                            Err(InflightError::NoCapacity) => prop_assert!(!had_capacity),
                            Err(e) => prop_assert!(false, "unexpected {e}"),
                        }
                    }
                    Op::PubAck(i) => {
                        if let Some(id) = pick(i) {
                            let result = out.on_puback(id);
                            match model.get(&id).copied() {
                                Some((OutgoingState::AwaitingPubAck, m)) => {
                                    prop_assert_eq!(result, Ok(m));
                                    model.remove(&id);
                                }
                                Some((expected, _)) => prop_assert_eq!(
                                    result,
                                    Err(InflightError::UnexpectedAck { packet_id: id, expected })
                                ),
                                None => prop_assert!(false, "{id:?} listed but not in model"),
                            }
                        }
                    }
                    Op::PubRec(i, is_error) => {
                        if let Some(id) = pick(i) {
                            let result = out.on_pubrec(id, is_error);
                            match model.get(&id).copied() {
                                Some((OutgoingState::AwaitingPubRec, m)) => {
                                    if is_error {
                                        prop_assert_eq!(result, Ok(PubRecOutcome::Failed(m)));
                                        model.remove(&id);
                                    } else {
                                        prop_assert_eq!(result, Ok(PubRecOutcome::SendPubRel(m)));
                                        model.insert(id, (OutgoingState::AwaitingPubComp, m));
                                    }
                                }
                                Some((OutgoingState::AwaitingPubComp, _)) if !is_error => {
                                    prop_assert_eq!(result, Ok(PubRecOutcome::ResendPubRel));
                                }
                                Some((expected, _)) => prop_assert_eq!(
                                    result,
                                    Err(InflightError::UnexpectedAck { packet_id: id, expected })
                                ),
                                None => prop_assert!(false, "{id:?} listed but not in model"),
                            }
                        }
                    }
                    Op::PubComp(i) => {
                        if let Some(id) = pick(i) {
                            let result = out.on_pubcomp(id);
                            match model.get(&id).copied() {
                                Some((OutgoingState::AwaitingPubComp, _)) => {
                                    prop_assert_eq!(result, Ok(()));
                                    model.remove(&id);
                                }
                                Some((expected, _)) => prop_assert_eq!(
                                    result,
                                    Err(InflightError::UnexpectedAck { packet_id: id, expected })
                                ),
                                None => prop_assert!(false, "{id:?} listed but not in model"),
                            }
                        }
                    }
                    Op::Unknown(raw) => {
                        let id = pid(raw);
                        if !model.contains_key(&id) {
                            let not_found = InflightError::PacketIdNotFound(id);
                            prop_assert_eq!(out.on_puback(id), Err(not_found.clone()));
                            prop_assert_eq!(out.on_pubcomp(id), Err(not_found.clone()));
                            prop_assert_eq!(out.on_pubrec(id, false), Err(not_found));
                        }
                    }
                    Op::SetReceiveMaximum(m) => {
                        maximum = m;
                        out.set_receive_maximum(m);
                    }
                }
                prop_assert_eq!(out.len(), model.len());
                for (id, state, message) in out.iter() {
                    let expected = model.get(&id).copied();
                    prop_assert_eq!(Some(state), expected.map(|(s, _)| s));
                    if state != OutgoingState::AwaitingPubComp {
                        prop_assert_eq!(message.copied(), expected.map(|(_, m)| m));
                    }
                }
                prop_assert_eq!(out.has_capacity(), out.len() < usize::from(maximum));
            }
        }

        /// Incoming never holds more than Receive Maximum distinct ids, and QoS 2 delivers
        /// each id once until PUBREL.
        #[test]
        fn incoming_matches_model(
            receive_maximum in 1..=6u16,
            ops in prop::collection::vec((0..4u8, 1..=10u16), 0..200),
        ) {
            let mut incoming = Incoming::new(receive_maximum);
            let mut qos1: Vec<PacketId> = Vec::new();
            let mut qos2: Vec<PacketId> = Vec::new();
            let exceeded = InflightError::ReceiveMaximumExceeded { maximum: receive_maximum };
            for (kind, raw) in ops {
                let id = pid(raw);
                let full = qos1.len() + qos2.len() >= usize::from(receive_maximum);
                match kind {
                    0 => {
                        let result = incoming.on_publish_qos1(id);
                        if qos2.contains(&id) {
                            prop_assert_eq!(result, Err(InflightError::PacketIdInUse(id)));
                        } else if qos1.contains(&id) {
                            prop_assert_eq!(result, Ok(()));
                        } else if full {
                            prop_assert_eq!(result, Err(exceeded.clone()));
                        } else {
                            prop_assert_eq!(result, Ok(()));
                            qos1.push(id);
                        }
                    }
                    1 => {
                        incoming.puback_sent(id);
                        qos1.retain(|&x| x != id);
                    }
                    2 => {
                        let result = incoming.on_publish_qos2(id);
                        if qos1.contains(&id) {
                            prop_assert_eq!(result, Err(InflightError::PacketIdInUse(id)));
                        } else if qos2.contains(&id) {
                            prop_assert_eq!(result, Ok(Qos2Outcome::Duplicate));
                        } else if full {
                            prop_assert_eq!(result, Err(exceeded.clone()));
                        } else {
                            prop_assert_eq!(result, Ok(Qos2Outcome::Deliver));
                            qos2.push(id);
                        }
                    }
                    _ => {
                        let result = incoming.on_pubrel(id);
                        if qos2.contains(&id) {
                            prop_assert_eq!(result, Ok(()));
                            qos2.retain(|&x| x != id);
                        } else {
                            prop_assert_eq!(result, Err(InflightError::PacketIdNotFound(id)));
                        }
                    }
                }
                prop_assert_eq!(incoming.len(), qos1.len() + qos2.len());
                prop_assert!(incoming.len() <= usize::from(receive_maximum));
                prop_assert_eq!(incoming.awaiting_pubrel().collect::<Vec<_>>(), qos2.clone());
            }
        }
    }
}
