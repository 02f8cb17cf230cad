//! Messages to the client: draining the mailbox under flow control, topic aliases, Maximum
//! Packet Size, message expiry, and resending after a reconnect.

use std::sync::atomic::Ordering;
use std::time::Instant;

use midge_proto::inflight::{OutgoingState, Resend};
use midge_proto::{Packet, PacketId, Properties, Property, Publish, PublishAck, QoS, TopicName};

use super::Connection;
use crate::message::Delivery;

/// At most this many deliveries are encoded per wake-up, so one busy subscriber cannot
/// monopolise its task's time slice.
const DRAIN_BATCH: usize = 256;

impl Connection {
    /// Moves deliveries from the mailbox into the write buffer while the inflight window and
    /// the buffer allow.
    pub(super) fn drain_mailbox(&mut self) {
        // Mark the commit watermark seen before checking it, so a commit that completes after
        // the check wakes the connection (`held_for_commit`).
        if let Some(rx) = &mut self.committed {
            rx.borrow_and_update();
        }
        self.held_for_commit = false;
        let mut batch = std::mem::take(&mut self.scratch);
        let slots = self.free_slots();
        self.session.mailbox.take(&mut batch, slots, DRAIN_BATCH);
        let now = Instant::now();
        let mut forget = Vec::new();
        let mut pending = batch.drain(..);
        while let Some(delivery) = pending.next() {
            if let Some(stalled) = self.deliver(delivery, now, &mut forget) {
                // Its packet identifier is still in flight: keep it and the rest, in order,
                // for the next drain.
                let rest: Vec<Delivery> = pending.by_ref().collect();
                for d in rest.into_iter().rev() {
                    self.session.mailbox.push_front(d);
                }
                self.session.mailbox.push_front(stalled);
                break;
            }
        }
        drop(pending);
        self.scratch = batch;
        if !forget.is_empty() {
            let client_id = self.session.client_id.to_string();
            self.shared.store_ops(
                forget
                    .into_iter()
                    .map(|seq| midge_store::Op::DeleteDelivery {
                        client_id: client_id.clone(),
                        seq,
                    })
                    .collect(),
            );
        }
    }

    fn free_slots(&self) -> usize {
        let out = &self.session.outgoing;
        usize::from(out.receive_maximum()).saturating_sub(out.len())
    }

    /// Encodes one delivery. Stored deliveries that are finished here (QoS 0 sent, expired,
    /// too large) have their queue position added to `forget`. Returns the delivery if it
    /// cannot be sent yet.
    fn deliver(
        &mut self,
        delivery: Delivery,
        now: Instant,
        forget: &mut Vec<u64>,
    ) -> Option<Delivery> {
        if delivery.message.is_expired(now) {
            // Expired messages are not delivered ([MQTT-3.3.2-5]).
            self.shared
                .stats
                .messages_expired
                .fetch_add(1, Ordering::Relaxed);
            forget.extend(delivery.seq);
            return None;
        }
        if let (Some(ticket), Some(store)) = (delivery.commit, &self.shared.store) {
            if !store.writer.is_done(ticket) {
                // Not on disk yet (see `Delivery::commit`): wait, keeping the order.
                self.held_for_commit = true;
                return Some(delivery);
            }
            if store.writer.failed(ticket) {
                // Never stored: the publisher was refused (0x97) and may send it again.
                return None;
            }
        }
        // A stored delivery's packet identifier is a function of its queue position, so a
        // resend after a crash uses the identifier the client saw.
        let stored_id = match (delivery.qos, delivery.seq) {
            (QoS::AtMostOnce, _) | (_, None) => None,
            (_, Some(seq)) => {
                let id = crate::persist::packet_id_for(seq);
                if self.session.outgoing.state(id).is_some() {
                    return Some(delivery);
                }
                Some(id)
            }
        };
        let (mut publish, new_alias) = self.build_publish(&delivery, now, false);
        if delivery.qos != QoS::AtMostOnce {
            // Any identifier: the length does not depend on its value.
            publish.packet_id = Some(PacketId::MIN);
        }
        // Never send more than the client accepts ([MQTT-3.1.2-24]): drop the message as if
        // it had been delivered.
        let packet = Packet::Publish(publish);
        let fits = packet
            .encoded_len(self.n.version)
            .is_ok_and(|len| len <= self.n.client_max_packet_size as usize);
        let Packet::Publish(mut publish) = packet else {
            return None;
        };
        if !fits {
            if let Some(topic) = new_alias {
                self.outbound_aliases.remove(&topic);
            }
            self.shared
                .stats
                .publish_dropped
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(client_id = %self.session.client_id, topic = %delivery.message.topic, "message larger than the client's Maximum Packet Size dropped");
            forget.extend(delivery.seq);
            return None;
        }
        if delivery.qos == QoS::AtMostOnce {
            forget.extend(delivery.seq);
        } else if let Some(id) = stored_id {
            let state = if delivery.qos == QoS::AtLeastOnce {
                OutgoingState::AwaitingPubAck
            } else {
                OutgoingState::AwaitingPubRec
            };
            if self
                .session
                .outgoing
                .restore(id, state, Some(delivery))
                .is_err()
            {
                return None;
            }
            publish.packet_id = Some(id);
        } else {
            match self.session.outgoing.start(delivery.qos, delivery) {
                Ok(id) => publish.packet_id = Some(id),
                Err(e) => {
                    tracing::error!(client_id = %self.session.client_id, error = %e, "no packet identifier available");
                    return None;
                }
            }
        }
        self.shared
            .stats
            .publish_sent
            .fetch_add(1, Ordering::Relaxed);
        self.send(&Packet::Publish(publish));
        None
    }

    /// The PUBLISH for a delivery: Message Expiry counts down ([MQTT-3.3.2-6]), every
    /// matching Subscription Identifier is attached ([MQTT-3.3.4-3]), and a topic alias
    /// replaces the name when the client allows them.
    fn build_publish(
        &mut self,
        delivery: &Delivery,
        now: Instant,
        dup: bool,
    ) -> (Publish, Option<TopicName>) {
        let message = &delivery.message;
        let mut new_alias = None;
        let mut topic = message.topic.clone();
        let mut properties = Properties::new();
        if self.n.version.is_v5() {
            // Mosquitto's order, which its clients' output (`mosquitto_sub -F %j`) reflects:
            // subscription identifiers, the publisher's properties, then the expiry left.
            properties = delivery
                .subscription_ids
                .iter()
                .map(|id| Property::SubscriptionIdentifier(*id))
                .chain(message.properties.iter().cloned())
                .collect();
            if let Some(left) = message.remaining_expiry(now) {
                properties.push(Property::MessageExpiryInterval(left));
            }
            if !dup && self.n.client_topic_alias_max > 0 {
                if let Some(alias) = self.outbound_aliases.get(&message.topic) {
                    properties.push(Property::TopicAlias(*alias));
                    topic = TopicName::empty_for_alias();
                } else if self.outbound_aliases.len() < usize::from(self.n.client_topic_alias_max) {
                    let alias = self.outbound_aliases.len() as u16 + 1;
                    self.outbound_aliases.insert(message.topic.clone(), alias);
                    properties.push(Property::TopicAlias(alias));
                    new_alias = Some(message.topic.clone());
                }
            }
        }
        let publish = Publish {
            dup,
            qos: delivery.qos,
            retain: delivery.retain,
            topic,
            packet_id: None,
            properties,
            payload: message.payload.clone(),
        };
        (publish, new_alias)
    }

    /// After a reconnect, resends unacknowledged PUBLISH packets with DUP set and PUBREL
    /// packets, in their original order ([MQTT-4.4.0-1], [MQTT-4.4.0-2]).
    pub(super) fn resend_inflight(&mut self) {
        let now = Instant::now();
        let resends: Vec<(PacketId, Option<Delivery>)> = self
            .session
            .outgoing
            .resend()
            .map(|(id, r)| match r {
                Resend::Publish { message, .. } => (id, Some(message.clone())),
                Resend::PubRel => (id, None),
            })
            .collect();
        for (id, delivery) in resends {
            match delivery {
                Some(d) => {
                    let (mut publish, _) = self.build_publish(&d, now, true);
                    publish.packet_id = Some(id);
                    self.send(&Packet::Publish(publish));
                }
                None => self.send(&Packet::PubRel(PublishAck::new(id))),
            }
        }
    }
}
