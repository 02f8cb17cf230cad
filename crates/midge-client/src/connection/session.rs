//! The client's session state and everything it does with packets. No sockets here: packets
//! go into an [`Out`] buffer that the connection task writes, and events into an
//! [`EventSink`].
//!
//! What survives a reconnection lives here: QoS 1/2 messages in flight
//! ([`midge_proto::inflight::Outgoing`]), messages waiting for a slot in the server's Receive
//! Maximum, incoming QoS 2 identifiers awaiting PUBREL, SUBSCRIBE/UNSUBSCRIBE awaiting their
//! acknowledgement, the subscriptions granted so far and pending requests.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use midge_proto::inflight::{
    Incoming, InflightError, Outgoing, PacketIdAllocator, PubRecOutcome, Qos2Outcome, Resend,
};
use midge_proto::{
    ConnAck, EncodeError, PROTOCOL_MAX_PACKET_SIZE, Packet, PacketId, PacketType, Properties,
    ProtocolVersion, PublishAck, QoS, ReasonCode, SubAck, Subscribe, SubscribeFilter, TopicFilter,
    TopicName, UnsubAck, Unsubscribe,
};
use tokio::sync::oneshot;

use super::EventSink;
use super::out::{Out, WRITE_HIGH_WATER};
use crate::client::{Command, PendingPublish, Reply};
use crate::error::ClientError;
use crate::event::Event;
use crate::message::{Message, PublishOutcome};
use crate::options::ConnectOptions;

/// What the server allows, from its CONNACK (MQTT 5; MQTT 3.x servers state nothing).
#[derive(Debug, Clone)]
struct Limits {
    max_packet_size: u32,
    max_qos: QoS,
    retain_available: bool,
}

impl Limits {
    fn from_connack(connack: &ConnAck) -> Limits {
        let p = &connack.properties;
        Limits {
            max_packet_size: p.maximum_packet_size().unwrap_or(PROTOCOL_MAX_PACKET_SIZE),
            max_qos: p.maximum_qos().unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available().unwrap_or(true),
        }
    }

    fn check_publish(&self, qos: QoS, retain: bool) -> Result<(), ClientError> {
        if qos > self.max_qos {
            return Err(ClientError::QosNotSupported {
                requested: qos,
                maximum: self.max_qos,
            });
        }
        if retain && !self.retain_available {
            return Err(ClientError::RetainNotSupported);
        }
        Ok(())
    }

    fn check_size(&self, size: usize) -> Result<(), ClientError> {
        if size > self.max_packet_size as usize {
            return Err(ClientError::PacketTooLarge {
                size,
                maximum: self.max_packet_size,
            });
        }
        Ok(())
    }
}

/// Who is waiting for a SUBACK.
#[derive(Debug)]
enum SubReply {
    /// [`Client::subscribe_with`](crate::Client::subscribe_with).
    User(Reply<SubAck>),
    /// A request's response-topic subscription.
    Ready(Reply<()>),
    /// A re-subscription after a reconnection that found no session.
    Internal,
}

#[derive(Debug)]
struct PendingSub {
    packet: Subscribe,
    reply: SubReply,
}

#[derive(Debug)]
struct PendingUnsub {
    packet: Unsubscribe,
    reply: Reply<UnsubAck>,
}

/// A subscription the server granted, remembered to make it again if the session is lost.
#[derive(Debug, Clone)]
struct ActiveSub {
    filter: SubscribeFilter,
    /// The SUBSCRIBE's properties (Subscription Identifier, User Properties).
    properties: Properties,
}

/// The client side of the MQTT session.
#[derive(Debug)]
pub(crate) struct Session {
    version: ProtocolVersion,
    limits: Limits,
    /// Our cap on QoS 1/2 messages in flight, below the server's Receive Maximum.
    max_inflight: u16,
    max_queued: usize,
    /// Our Receive Maximum and Topic Alias Maximum, from the CONNECT properties.
    receive_maximum: u16,
    topic_alias_maximum: u16,
    outgoing: Outgoing<PendingPublish>,
    /// QoS 2 publishes released (PUBREL sent) awaiting PUBCOMP: who to tell, and what.
    awaiting_pubcomp: VecDeque<(PacketId, Option<Reply<PublishOutcome>>, PublishOutcome)>,
    /// Publishes waiting for a Receive Maximum slot or a connection, in order.
    queue: VecDeque<PendingPublish>,
    incoming: Incoming,
    /// Packet Identifiers of SUBSCRIBE and UNSUBSCRIBE; shared space with `outgoing`.
    ids: PacketIdAllocator,
    pending_subs: Vec<PendingSub>,
    pending_unsubs: Vec<PendingUnsub>,
    active: Vec<ActiveSub>,
    /// Correlation Data of requests awaiting their response.
    requests: Vec<(Bytes, oneshot::Sender<Message>)>,
    /// The server's topic aliases on this connection.
    aliases: HashMap<u16, TopicName>,
}

impl Session {
    pub(crate) fn new(options: &ConnectOptions) -> Session {
        let receive_maximum = if options.version.is_v5() {
            options.properties.receive_maximum().unwrap_or(u16::MAX)
        } else {
            u16::MAX
        };
        Session {
            version: options.version,
            limits: Limits::from_connack(&ConnAck::new(ReasonCode::SUCCESS, false)),
            max_inflight: options.max_inflight,
            max_queued: options.max_queued,
            receive_maximum,
            topic_alias_maximum: options.properties.topic_alias_maximum().unwrap_or(0),
            outgoing: Outgoing::new(options.max_inflight),
            awaiting_pubcomp: VecDeque::new(),
            queue: VecDeque::new(),
            incoming: Incoming::new(receive_maximum),
            ids: PacketIdAllocator::new(),
            pending_subs: Vec::new(),
            pending_unsubs: Vec::new(),
            active: Vec::new(),
            requests: Vec::new(),
            aliases: HashMap::new(),
        }
    }

    /// Whether the task should take more commands (the publish queue has room).
    pub(crate) fn accepting(&self) -> bool {
        self.queue.len() < self.max_queued
    }

    /// A new connection is up: apply the server's limits, then resume. With the session
    /// present, unacknowledged PUBLISH (DUP set) and PUBREL are resent in order
    /// (`[MQTT-4.4.0-1]`); without it, they start again as new messages and every granted
    /// subscription is made again. SUBSCRIBE/UNSUBSCRIBE whose acknowledgement was lost are
    /// resent either way.
    pub(crate) fn resume(&mut self, connack: &ConnAck, out: &mut Out) {
        self.limits = Limits::from_connack(connack);
        let server_max = connack.properties.receive_maximum().unwrap_or(u16::MAX);
        self.outgoing
            .set_receive_maximum(server_max.min(self.max_inflight));
        self.aliases.clear();
        if connack.session_present {
            for (packet_id, resend) in self.outgoing.resend() {
                match resend {
                    Resend::Publish { message, qos } => {
                        let mut p = message.publish.clone();
                        p.packet_id = Some(packet_id);
                        p.qos = qos;
                        p.dup = true;
                        out.encode_control(&Packet::Publish(p));
                    }
                    Resend::PubRel => {
                        out.encode_control(&Packet::PubRel(PublishAck::new(packet_id)));
                    }
                }
            }
        } else {
            self.restart_session();
        }
        for sub in &self.pending_subs {
            out.encode_control(&Packet::Subscribe(sub.packet.clone()));
        }
        for unsub in &self.pending_unsubs {
            out.encode_control(&Packet::Unsubscribe(unsub.packet.clone()));
        }
        if !connack.session_present {
            self.resubscribe(out);
        }
        self.pump(out);
    }

    /// The server has no session for us: messages in flight go back to the front of the queue
    /// (to be sent as new), released QoS 2 messages count as delivered (the server had them),
    /// and incoming QoS 2 state is forgotten.
    fn restart_session(&mut self) {
        let drained: Vec<_> = self.outgoing.drain().collect();
        for (packet_id, _, message) in drained.into_iter().rev() {
            match message {
                Some(m) => self.queue.push_front(m),
                None => self.complete_released(packet_id),
            }
        }
        self.incoming = Incoming::new(self.receive_maximum);
        // Re-subscriptions still waiting from an earlier connection are made afresh below.
        let ids = &mut self.ids;
        self.pending_subs.retain(|s| {
            let keep = !matches!(s.reply, SubReply::Internal);
            if !keep {
                ids.release(s.packet.packet_id);
            }
            keep
        });
    }

    /// One SUBSCRIBE per granted subscription, so that each keeps its own properties and no
    /// packet grows past the server's Maximum Packet Size.
    fn resubscribe(&mut self, out: &mut Out) {
        let active = self.active.clone();
        for sub in active {
            tracing::debug!(filter = %sub.filter.filter, "re-subscribing: the session was lost");
            self.start_subscribe(
                vec![sub.filter],
                sub.properties,
                SubReply::Internal,
                Some(&mut *out),
            );
        }
    }

    /// Handles a command other than Disconnect.
    pub(crate) fn command(&mut self, command: Command, out: Option<&mut Out>) {
        match command {
            Command::Publish(pending) => self.publish(pending, out),
            Command::Subscribe {
                filters,
                properties,
                reply,
            } => self.start_subscribe(filters, properties, SubReply::User(reply), out),
            Command::Unsubscribe {
                filters,
                properties,
                reply,
            } => self.start_unsubscribe(filters, properties, reply, out),
            Command::Request {
                response_topic,
                qos,
                correlation,
                response,
                ready,
            } => {
                self.requests.retain(|(_, tx)| !tx.is_closed());
                self.requests.push((correlation, response));
                if self
                    .active
                    .iter()
                    .any(|a| a.filter.filter == response_topic)
                {
                    let _ = ready.send(Ok(()));
                } else {
                    let filter = SubscribeFilter {
                        filter: response_topic,
                        options: midge_proto::SubscriptionOptions::qos(qos),
                    };
                    self.start_subscribe(
                        vec![filter],
                        Properties::new(),
                        SubReply::Ready(ready),
                        out,
                    );
                }
            }
            Command::Disconnect { reply, .. } => {
                // The task handles Disconnect itself; answer rather than drop the reply.
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn publish(&mut self, pending: PendingPublish, out: Option<&mut Out>) {
        if let Err(e) = self
            .limits
            .check_publish(pending.publish.qos, pending.publish.retain)
        {
            pending.finish(Err(e));
            return;
        }
        self.queue.push_back(pending);
        if let Some(out) = out {
            self.pump(out);
        }
    }

    /// Moves queued publishes into the write buffer, in order, while the server's Receive
    /// Maximum has room for QoS 1/2 messages (`[MQTT-4.9.0-2]`) and the buffer is below its
    /// high-water mark. A QoS 0 message waits behind a QoS 1/2 one to keep the order.
    pub(crate) fn pump(&mut self, out: &mut Out) {
        while out.wbuf.len() < WRITE_HIGH_WATER {
            let Some(front) = self.queue.front() else {
                break;
            };
            let qos = front.publish.qos;
            // Every identifier in use anywhere blocks one; keep one free for SUBSCRIBE.
            let ids_free = self.outgoing.len() + self.ids.len() < usize::from(u16::MAX) - 1;
            if qos != QoS::AtMostOnce && !(self.outgoing.has_capacity() && ids_free) {
                break;
            }
            let Some(pending) = self.queue.pop_front() else {
                break;
            };
            self.send_publish(pending, out);
        }
    }

    fn send_publish(&mut self, pending: PendingPublish, out: &mut Out) {
        let qos = pending.publish.qos;
        if let Err(e) = self.limits.check_publish(qos, pending.publish.retain) {
            pending.finish(Err(e));
            return;
        }
        if qos == QoS::AtMostOnce {
            let PendingPublish { publish, reply } = pending;
            let packet = Packet::Publish(publish);
            match self.checked_len(&packet) {
                Ok(_) => {
                    out.encode_control(&packet);
                    if let Some(reply) = reply {
                        out.confirm_when_written(reply);
                    }
                }
                Err(e) => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            return;
        }
        let mut publish = pending.publish.clone();
        // Same encoded size as the real identifier, so the size check below holds for it.
        publish.packet_id = Some(PacketId::MIN);
        let mut packet = Packet::Publish(publish);
        if let Err(e) = self.checked_len(&packet) {
            pending.finish(Err(e));
            return;
        }
        let ids = &self.ids;
        match self
            .outgoing
            .start_excluding(qos, pending, |id| ids.is_in_use(id))
        {
            Ok(packet_id) => {
                if let Packet::Publish(p) = &mut packet {
                    p.packet_id = Some(packet_id);
                }
                out.encode_control(&packet);
            }
            // Not reached: `pump` checked capacity and free identifiers. The message is lost
            // with the error, and its waiter sees the client as disconnected.
            Err(e) => tracing::error!(error = %e, "cannot start a publish"),
        }
    }

    /// The encoded length of a packet the application built, checked against the server's
    /// Maximum Packet Size.
    fn checked_len(&self, packet: &Packet) -> Result<usize, ClientError> {
        let len = packet.encoded_len(self.version)?;
        self.limits.check_size(len)?;
        Ok(len)
    }

    fn start_subscribe(
        &mut self,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
        reply: SubReply,
        out: Option<&mut Out>,
    ) {
        let fail = |reply: SubReply, e: ClientError| match reply {
            SubReply::User(r) => {
                let _ = r.send(Err(e));
            }
            SubReply::Ready(r) => {
                let _ = r.send(Err(e));
            }
            SubReply::Internal => tracing::warn!(error = %e, "cannot re-subscribe"),
        };
        if filters.is_empty() {
            return fail(reply, EncodeError::EmptyList(PacketType::Subscribe).into());
        }
        let outgoing = &self.outgoing;
        let packet_id = match self.ids.allocate_excluding(|id| outgoing.contains(id)) {
            Ok(id) => id,
            Err(_) => return fail(reply, ClientError::PacketIdsExhausted),
        };
        let packet = Subscribe {
            packet_id,
            properties,
            filters,
        };
        let wire = Packet::Subscribe(packet.clone());
        if let Err(e) = self.checked_len(&wire) {
            self.ids.release(packet_id);
            return fail(reply, e);
        }
        if let Some(out) = out {
            out.encode_control(&wire);
        }
        self.pending_subs.push(PendingSub { packet, reply });
    }

    fn start_unsubscribe(
        &mut self,
        filters: Vec<TopicFilter>,
        properties: Properties,
        reply: Reply<UnsubAck>,
        out: Option<&mut Out>,
    ) {
        if filters.is_empty() {
            let _ = reply.send(Err(EncodeError::EmptyList(PacketType::Unsubscribe).into()));
            return;
        }
        let outgoing = &self.outgoing;
        let packet_id = match self.ids.allocate_excluding(|id| outgoing.contains(id)) {
            Ok(id) => id,
            Err(_) => {
                let _ = reply.send(Err(ClientError::PacketIdsExhausted));
                return;
            }
        };
        let packet = Unsubscribe {
            packet_id,
            properties,
            filters,
        };
        let wire = Packet::Unsubscribe(packet.clone());
        if let Err(e) = self.checked_len(&wire) {
            self.ids.release(packet_id);
            let _ = reply.send(Err(e));
            return;
        }
        if let Some(out) = out {
            out.encode_control(&wire);
        }
        self.pending_unsubs.push(PendingUnsub { packet, reply });
    }

    /// Handles a packet from the server that belongs to the session (PUBLISH and the
    /// acknowledgements). An error is a protocol violation by the server: the connection is
    /// to be closed with its Reason Code.
    pub(crate) fn on_packet(
        &mut self,
        packet: Packet,
        out: &mut Out,
        events: &mut EventSink,
    ) -> Result<(), ClientError> {
        match packet {
            Packet::Publish(p) => self.on_publish(p, out, events)?,
            Packet::PubAck(ack) => match self.outgoing.on_puback(ack.packet_id) {
                Ok(m) => {
                    m.finish(ack_result(QoS::AtLeastOnce, PacketType::PubAck, ack));
                    self.pump(out);
                }
                Err(e) => tracing::debug!(error = %e, "PUBACK ignored"),
            },
            Packet::PubRec(ack) => self.on_pubrec(ack, out),
            Packet::PubComp(ack) => match self.outgoing.on_pubcomp(ack.packet_id) {
                Ok(()) => {
                    self.complete_released(ack.packet_id);
                    self.pump(out);
                }
                Err(e) => tracing::debug!(error = %e, "PUBCOMP ignored"),
            },
            Packet::PubRel(ack) => {
                // [MQTT-4.3.3-11]: answer PUBCOMP; 0x92 if the identifier is unknown (MQTT 5).
                let code = match self.incoming.on_pubrel(ack.packet_id) {
                    Ok(()) => ReasonCode::SUCCESS,
                    Err(_) => ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                };
                out.encode_control(&Packet::PubComp(PublishAck::with_reason(
                    ack.packet_id,
                    code,
                )));
            }
            Packet::SubAck(ack) => self.on_suback(ack),
            Packet::UnsubAck(ack) => self.on_unsuback(ack),
            other => {
                return Err(ClientError::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    format!("a server may not send {}", other.packet_type()),
                ));
            }
        }
        Ok(())
    }

    /// A released QoS 2 publish is complete (PUBCOMP, or a lost session that had received
    /// it): report the PUBREC's outcome. PUBCOMPs arrive in PUBREL order, so the entry is
    /// normally the first.
    fn complete_released(&mut self, packet_id: PacketId) {
        let position = self
            .awaiting_pubcomp
            .iter()
            .position(|(id, _, _)| *id == packet_id);
        if let Some((_, Some(reply), outcome)) =
            position.and_then(|i| self.awaiting_pubcomp.remove(i))
        {
            let _ = reply.send(Ok(outcome));
        }
    }

    fn on_pubrec(&mut self, ack: PublishAck, out: &mut Out) {
        let packet_id = ack.packet_id;
        match self
            .outgoing
            .on_pubrec(packet_id, ack.reason_code.is_error())
        {
            Ok(PubRecOutcome::SendPubRel(m)) => {
                out.encode_control(&Packet::PubRel(PublishAck::new(packet_id)));
                let outcome = PublishOutcome {
                    qos: QoS::ExactlyOnce,
                    packet_id: Some(packet_id),
                    reason_code: ack.reason_code,
                    properties: ack.properties,
                };
                self.awaiting_pubcomp
                    .push_back((packet_id, m.reply, outcome));
            }
            Ok(PubRecOutcome::Failed(m)) => {
                m.finish(ack_result(QoS::ExactlyOnce, PacketType::PubRec, ack));
                self.pump(out);
            }
            Ok(PubRecOutcome::ResendPubRel) => {
                out.encode_control(&Packet::PubRel(PublishAck::new(packet_id)));
            }
            Err(InflightError::PacketIdNotFound(_)) if !ack.reason_code.is_error() => {
                // MQTT 5.0 §4.3.3: release an identifier we do not know, with 0x92.
                out.encode_control(&Packet::PubRel(PublishAck::with_reason(
                    packet_id,
                    ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                )));
            }
            Err(e) => tracing::debug!(error = %e, "PUBREC ignored"),
        }
    }

    fn on_publish(
        &mut self,
        mut p: midge_proto::Publish,
        out: &mut Out,
        events: &mut EventSink,
    ) -> Result<(), ClientError> {
        if let Some(alias) = p.properties.topic_alias() {
            // [MQTT-3.3.2-9], [MQTT-3.3.2-10]: an alias must be 1..=our Topic Alias Maximum.
            if alias == 0 || alias > self.topic_alias_maximum {
                return Err(ClientError::protocol(
                    ReasonCode::TOPIC_ALIAS_INVALID,
                    format!(
                        "topic alias {alias} is outside 1..={}",
                        self.topic_alias_maximum
                    ),
                ));
            }
            if p.topic.is_empty() {
                p.topic = self.aliases.get(&alias).cloned().ok_or_else(|| {
                    ClientError::protocol(
                        ReasonCode::PROTOCOL_ERROR,
                        format!("topic alias {alias} was never set"),
                    )
                })?;
            } else {
                self.aliases.insert(alias, p.topic.clone());
            }
            p.properties.remove(0x23);
        }
        let protocol = |e: InflightError| ClientError::protocol(e.reason_code(), e.to_string());
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                self.incoming.on_publish_qos1(id).map_err(protocol)?;
                self.deliver(Message::from_publish(p), events);
                out.encode_control(&Packet::PubAck(PublishAck::new(id)));
                self.incoming.puback_sent(id);
            }
            (QoS::ExactlyOnce, Some(id)) => {
                if self.incoming.on_publish_qos2(id).map_err(protocol)? == Qos2Outcome::Deliver {
                    self.deliver(Message::from_publish(p), events);
                }
                out.encode_control(&Packet::PubRec(PublishAck::new(id)));
            }
            _ => self.deliver(Message::from_publish(p), events),
        }
        Ok(())
    }

    /// Passes a message to the request waiting for its Correlation Data, or to the events.
    fn deliver(&mut self, message: Message, events: &mut EventSink) {
        if !self.requests.is_empty() {
            let position = message
                .correlation_data()
                .and_then(|cd| self.requests.iter().position(|(c, _)| c == cd));
            if let Some(i) = position {
                let (_, tx) = self.requests.swap_remove(i);
                // A request that timed out has gone: report its late response as an event.
                if let Err(message) = tx.send(message) {
                    events.push(Event::Message(message));
                }
                return;
            }
        }
        events.push(Event::Message(message));
    }

    fn on_suback(&mut self, ack: SubAck) {
        let Some(i) = self
            .pending_subs
            .iter()
            .position(|s| s.packet.packet_id == ack.packet_id)
        else {
            tracing::debug!(packet_id = %ack.packet_id, "SUBACK for no pending SUBSCRIBE");
            return;
        };
        let pending = self.pending_subs.remove(i);
        self.ids.release(ack.packet_id);
        let internal = matches!(pending.reply, SubReply::Internal);
        for (f, code) in pending.packet.filters.iter().zip(&ack.reason_codes) {
            if !code.is_error() {
                self.remember(f, &pending.packet.properties);
            } else if internal {
                tracing::warn!(filter = %f.filter, %code, "re-subscription refused");
                self.active.retain(|a| a.filter.filter != f.filter);
            }
        }
        match pending.reply {
            SubReply::User(reply) => {
                let _ = reply.send(Ok(ack));
            }
            SubReply::Ready(reply) => {
                let refused = ack.reason_codes.iter().find(|c| c.is_error());
                let _ = reply.send(match refused {
                    Some(code) => Err(ClientError::Rejected {
                        packet: PacketType::SubAck,
                        reason_code: *code,
                        reason_string: ack.properties.reason_string().cloned(),
                    }),
                    None => Ok(()),
                });
            }
            SubReply::Internal => {}
        }
    }

    fn remember(&mut self, filter: &SubscribeFilter, properties: &Properties) {
        let sub = ActiveSub {
            filter: filter.clone(),
            properties: properties.clone(),
        };
        match self
            .active
            .iter_mut()
            .find(|a| a.filter.filter == filter.filter)
        {
            Some(existing) => *existing = sub,
            None => self.active.push(sub),
        }
    }

    fn on_unsuback(&mut self, ack: UnsubAck) {
        let Some(i) = self
            .pending_unsubs
            .iter()
            .position(|u| u.packet.packet_id == ack.packet_id)
        else {
            tracing::debug!(packet_id = %ack.packet_id, "UNSUBACK for no pending UNSUBSCRIBE");
            return;
        };
        let pending = self.pending_unsubs.remove(i);
        self.ids.release(ack.packet_id);
        for (n, filter) in pending.packet.filters.iter().enumerate() {
            // MQTT 3.x UNSUBACK has no codes: every filter is gone.
            if ack.reason_codes.get(n).is_none_or(|c| !c.is_error()) {
                self.active.retain(|a| &a.filter.filter != filter);
            }
        }
        let _ = pending.reply.send(Ok(ack));
    }

    /// The network connection is gone; the session stays. Unacknowledged incoming QoS 1
    /// messages will be resent by the server and are forgotten here.
    pub(crate) fn connection_lost(&mut self) {
        self.incoming.clear_qos1();
        self.aliases.clear();
    }

    /// The client stops: every waiting operation fails with `error`.
    pub(crate) fn fail_all(&mut self, error: &ClientError) {
        for m in self.queue.drain(..) {
            m.finish(Err(error.clone()));
        }
        for (_, _, m) in self.outgoing.drain() {
            if let Some(m) = m {
                m.finish(Err(error.clone()));
            }
        }
        for (_, reply, _) in self.awaiting_pubcomp.drain(..) {
            if let Some(reply) = reply {
                let _ = reply.send(Err(error.clone()));
            }
        }
        for sub in self.pending_subs.drain(..) {
            match sub.reply {
                SubReply::User(r) => {
                    let _ = r.send(Err(error.clone()));
                }
                SubReply::Ready(r) => {
                    let _ = r.send(Err(error.clone()));
                }
                SubReply::Internal => {}
            }
        }
        for unsub in self.pending_unsubs.drain(..) {
            let _ = unsub.reply.send(Err(error.clone()));
        }
        self.requests.clear();
    }
}

/// A PUBACK or failed PUBREC as the publish's result.
fn ack_result(
    qos: QoS,
    packet: PacketType,
    ack: PublishAck,
) -> Result<PublishOutcome, ClientError> {
    if ack.reason_code.is_error() {
        return Err(ClientError::Rejected {
            packet,
            reason_code: ack.reason_code,
            reason_string: ack.properties.reason_string().cloned(),
        });
    }
    Ok(PublishOutcome {
        qos,
        packet_id: Some(ack.packet_id),
        reason_code: ack.reason_code,
        properties: ack.properties,
    })
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
