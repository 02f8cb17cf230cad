//! PUBLISH from the client and the QoS 1 / QoS 2 acknowledgements (MQTT 5.0 §3.3–3.7, §4.3).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use midge_proto::inflight::Qos2Outcome;
use midge_proto::{Packet, Publish, PublishAck, QoS, ReasonCode, TopicName};

use super::acks::OnFailure;
use super::{Connection, End};
use crate::broker::Published;
use crate::message::Message;

impl Connection {
    pub(super) fn on_publish(&mut self, publish: Publish) -> Option<End> {
        self.shared
            .stats
            .publish_received
            .fetch_add(1, Ordering::Relaxed);
        let config = &self.shared.config;
        if publish
            .properties
            .subscription_identifiers()
            .next()
            .is_some()
        {
            // Only the server puts Subscription Identifiers in a PUBLISH ([MQTT-3.3.4-6]); the
            // codec accepts them because it decodes both directions.
            return Some(End::Violation(
                ReasonCode::PROTOCOL_ERROR,
                "[MQTT-3.3.4-6] a PUBLISH from a client contains a Subscription Identifier".into(),
            ));
        }
        if publish.qos > config.mqtt.maximum_qos() {
            // [MQTT-3.2.2-11]
            return Some(End::Violation(
                ReasonCode::QOS_NOT_SUPPORTED,
                format!("QoS {} exceeds the server's Maximum QoS", publish.qos),
            ));
        }
        if publish.retain && !config.retain.available {
            // [MQTT-3.2.2-14]
            return Some(End::Violation(
                ReasonCode::RETAIN_NOT_SUPPORTED,
                "retained messages are not supported".into(),
            ));
        }
        let topic = match self.resolve_topic(&publish) {
            Ok(t) => t,
            Err(end) => return Some(end),
        };
        if self.shared.store_full() && (publish.qos != QoS::AtMostOnce || publish.retain) {
            return self.refuse_for_space(&publish);
        }
        let v5 = self.n.version.is_v5();
        let reason = |matched: usize| {
            if matched == 0 && v5 {
                ReasonCode::NO_MATCHING_SUBSCRIBERS
            } else {
                ReasonCode::SUCCESS
            }
        };
        match publish.qos {
            QoS::AtMostOnce => {
                self.route(&publish, topic, Vec::new());
                None
            }
            QoS::AtLeastOnce => {
                let id = publish.packet_id?;
                if let Err(e) = self.session.incoming.on_publish_qos1(id) {
                    return Some(End::Violation(e.reason_code(), e.to_string()));
                }
                let published = self.route(&publish, topic, Vec::new());
                self.session.incoming.puback_sent(id);
                // Sent once the message is on disk, if it had to be stored.
                self.ack(
                    Packet::PubAck(PublishAck::with_reason(id, reason(published.matched))),
                    published.ticket,
                    OnFailure::Refuse,
                );
                None
            }
            QoS::ExactlyOnce => {
                let id = publish.packet_id?;
                match self.session.incoming.on_publish_qos2(id) {
                    Err(e) => return Some(End::Violation(e.reason_code(), e.to_string())),
                    Ok(Qos2Outcome::Deliver) => {
                        // Method B: deliver now, remember the id until PUBREL, so a resent
                        // PUBLISH is not delivered twice ([MQTT-4.3.3-10]); a persistent
                        // session remembers it on disk with the message.
                        let mut ops = Vec::new();
                        if self.shared.store.is_some() && self.session.mailbox.is_persistent() {
                            ops.push(midge_store::Op::PutPubRel {
                                client_id: self.session.client_id.to_string(),
                                packet_id: id.get(),
                            });
                        }
                        let published = self.route(&publish, topic, ops);
                        self.ack(
                            Packet::PubRec(PublishAck::with_reason(id, reason(published.matched))),
                            published.ticket,
                            OnFailure::Refuse,
                        );
                    }
                    Ok(Qos2Outcome::Duplicate) => {
                        self.ack(Packet::PubRec(PublishAck::new(id)), None, OnFailure::Send);
                    }
                }
                None
            }
        }
    }

    /// The store is out of space: refuse a message that would have to be stored (MQTT 5:
    /// Quota exceeded, 0x97; MQTT 3 has no negative acknowledgement, so the client is
    /// disconnected and resends later). Nothing acknowledged is lost.
    fn refuse_for_space(&mut self, publish: &Publish) -> Option<End> {
        tracing::warn!(client_id = %self.session.client_id, "store full: message refused");
        if !self.n.version.is_v5() {
            return Some(End::Violation(
                ReasonCode::QUOTA_EXCEEDED,
                "the store is full".into(),
            ));
        }
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => self.ack(
                Packet::PubAck(PublishAck::with_reason(id, ReasonCode::QUOTA_EXCEEDED)),
                None,
                OnFailure::Send,
            ),
            (QoS::ExactlyOnce, Some(id)) => self.ack(
                Packet::PubRec(PublishAck::with_reason(id, ReasonCode::QUOTA_EXCEEDED)),
                None,
                OnFailure::Send,
            ),
            _ => {}
        }
        None
    }

    /// Applies an MQTT 5 Topic Alias (§3.3.2.3.4): sets it when a name is given, looks it up
    /// when the name is empty.
    fn resolve_topic(&mut self, publish: &Publish) -> Result<TopicName, End> {
        let Some(alias) = publish.properties.topic_alias() else {
            return Ok(publish.topic.clone());
        };
        let max = self.shared.config.mqtt.topic_alias_maximum;
        if alias == 0 || alias > max {
            return Err(End::Violation(
                ReasonCode::TOPIC_ALIAS_INVALID,
                format!("[MQTT-3.3.2-9] topic alias {alias} exceeds the maximum {max}"),
            ));
        }
        let slot = usize::from(alias - 1);
        if publish.topic.is_empty() {
            match self.inbound_aliases.get(slot).cloned().flatten() {
                Some(t) => Ok(t),
                None => Err(End::Violation(
                    ReasonCode::PROTOCOL_ERROR,
                    format!("[MQTT-3.3.4-?] topic alias {alias} used before it was set"),
                )),
            }
        } else {
            if self.inbound_aliases.len() <= slot {
                self.inbound_aliases.resize(slot + 1, None);
            }
            self.inbound_aliases[slot] = Some(publish.topic.clone());
            Ok(publish.topic.clone())
        }
    }

    fn route(
        &mut self,
        publish: &Publish,
        topic: TopicName,
        ops: Vec<midge_store::Op>,
    ) -> Published {
        let message = Arc::new(Message::from_publish(
            publish,
            topic,
            Some(self.session.client_id.clone()),
        ));
        self.shared.publish(message, ops)
    }

    pub(super) fn on_pubrec(&mut self, ack: PublishAck) -> Option<End> {
        use midge_proto::inflight::PubRecOutcome;
        let id = ack.packet_id;
        match self
            .session
            .outgoing
            .on_pubrec(id, ack.reason_code.is_error())
        {
            Ok(PubRecOutcome::SendPubRel(delivery)) => {
                // A stored QoS 2 delivery moves to "PUBREL sent" on disk before the PUBREL
                // leaves: after a crash the broker resends PUBREL, never the PUBLISH the
                // client already completed, so it is not delivered twice.
                let mut ticket = None;
                if let (Some(store), Some(seq)) = (&self.shared.store, delivery.seq) {
                    let mut ops = Vec::new();
                    store.put_delivery(
                        &self.session.client_id,
                        &delivery,
                        midge_store::DeliveryState::AwaitingPubComp(id.get()),
                        &mut ops,
                    );
                    ticket = store.submit(ops);
                    self.session.pubcomp_seqs.insert(id.get(), seq);
                }
                self.ack(Packet::PubRel(PublishAck::new(id)), ticket, OnFailure::Send);
            }
            Ok(PubRecOutcome::ResendPubRel) => {
                self.ack(Packet::PubRel(PublishAck::new(id)), None, OnFailure::Send);
            }
            Ok(PubRecOutcome::Failed(delivery)) => self.forget_stored(delivery.seq),
            Err(_) => {
                // Unknown identifier: answer so the client can finish (§4.3.3).
                let reason = if self.n.version.is_v5() {
                    ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                } else {
                    ReasonCode::SUCCESS
                };
                self.ack(
                    Packet::PubRel(PublishAck::with_reason(id, reason)),
                    None,
                    OnFailure::Send,
                );
            }
        }
        None
    }

    pub(super) fn on_pubrel(&mut self, ack: PublishAck) -> Option<End> {
        let mut ticket = None;
        let reason = match self.session.incoming.on_pubrel(ack.packet_id) {
            Ok(()) => {
                if self.shared.store.is_some() && self.session.mailbox.is_persistent() {
                    // PUBCOMP waits for the identifier to be released on disk: once the client
                    // has PUBCOMP it may reuse the identifier for a new message, which a
                    // restarted broker still holding the old state would take for a
                    // duplicate and drop ([MQTT-4.3.3-12]).
                    ticket = self.shared.store_ops(vec![midge_store::Op::DeletePubRel {
                        client_id: self.session.client_id.to_string(),
                        packet_id: ack.packet_id.get(),
                    }]);
                }
                ReasonCode::SUCCESS
            }
            Err(_) if self.n.version.is_v5() => ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            Err(_) => ReasonCode::SUCCESS,
        };
        self.ack(
            Packet::PubComp(PublishAck::with_reason(ack.packet_id, reason)),
            ticket,
            OnFailure::Send,
        );
        None
    }
}
