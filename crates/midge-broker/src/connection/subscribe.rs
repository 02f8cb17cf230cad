//! SUBSCRIBE and UNSUBSCRIBE (MQTT 5.0 §3.8–3.11), with retained-message delivery.

use std::sync::Arc;

use midge_proto::{
    Packet, Properties, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, UnsubAck, Unsubscribe,
};

use super::acks::OnFailure;
use super::{Connection, End};
use crate::broker::Subscriber;
use crate::message::{Delivery, SharedOrigin, SubscriptionIds};
use crate::session::SubscriptionEntry;

impl Connection {
    pub(super) fn on_subscribe(&mut self, subscribe: Subscribe) -> Option<End> {
        let config = &self.shared.config.mqtt;
        let identifier = subscribe.properties.subscription_identifiers().next();
        if identifier.is_some() && !config.subscription_identifiers {
            return Some(End::Violation(
                ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                "subscription identifiers are not supported".into(),
            ));
        }
        let max_qos = config.maximum_qos();
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        let mut retained = Vec::new();
        for entry in &subscribe.filters {
            let filter = &entry.filter;
            if filter.is_shared() && !config.shared_subscriptions {
                codes.push(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
                continue;
            }
            if filter.has_wildcards() && !config.wildcard_subscriptions {
                codes.push(ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED);
                continue;
            }
            let mut options = entry.options;
            options.qos = options.qos.min(max_qos);
            let shared = filter.share_name().map(|group| SharedOrigin {
                group: Arc::from(group),
                filter: Arc::from(filter.filter()),
            });
            let subscriber = Subscriber {
                mailbox: self.session.mailbox.clone(),
                options,
                identifier,
                shared: shared.clone(),
            };
            // A repeated subscription replaces the old one ([MQTT-3.8.4-3]).
            let existed = self
                .shared
                .index
                .insert(filter, self.session.key, subscriber)
                .is_some();
            self.session.subscriptions.insert(
                filter.clone(),
                SubscriptionEntry {
                    options,
                    identifier,
                },
            );
            codes.push(ReasonCode(options.qos.as_u8()));
            // Retained messages: never for shared subscriptions (§4.8.2); otherwise as
            // Retain Handling says ([MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11]).
            let send_retained = shared.is_none()
                && match options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendAtSubscribeIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
            if send_retained {
                for message in self.shared.retained_for(filter) {
                    let mut ids = SubscriptionIds::new();
                    if let Some(id) = identifier {
                        ids.push(id);
                    }
                    retained.push(Delivery {
                        qos: message.qos.min(options.qos),
                        message,
                        retain: true,
                        subscription_ids: ids,
                        shared: None,
                        seq: None,
                        commit: None,
                    });
                }
            }
        }
        // A persistent session's subscriptions are on disk before the SUBACK; the retained
        // messages it receives join its stored queue in the same commit.
        let now = std::time::Instant::now();
        retained.retain(|d| !d.message.is_expired(now));
        let mut ops = Vec::new();
        if let Some(store) = &self.shared.store
            && self.session.mailbox.is_persistent()
        {
            ops.push(midge_store::Op::PutSession {
                client_id: self.session.client_id.to_string(),
                session: crate::persist::session_record(&self.session),
            });
            for d in &mut retained {
                if d.qos != QoS::AtMostOnce {
                    d.seq = Some(self.session.mailbox.next_seq());
                    store.put_delivery(
                        &self.session.client_id,
                        d,
                        midge_store::DeliveryState::Queued,
                        &mut ops,
                    );
                }
            }
        }
        let ticket = self.shared.store_ops(ops);
        self.ack(
            Packet::SubAck(SubAck {
                packet_id: subscribe.packet_id,
                properties: Properties::new(),
                reason_codes: codes,
            }),
            ticket,
            OnFailure::Send,
        );
        // The SUBACK is queued first; retained messages follow through the mailbox, paced by
        // flow control like any other delivery and never cut short.
        for mut d in retained {
            if d.seq.is_some() && d.qos == QoS::ExactlyOnce {
                d.commit = ticket;
            }
            self.session.mailbox.push_unbounded(d);
        }
        None
    }

    pub(super) fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) -> Option<End> {
        let mut codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            let removed = self
                .shared
                .index
                .remove(filter, &self.session.key)
                .is_some();
            self.session.subscriptions.remove(filter);
            codes.push(if removed {
                ReasonCode::SUCCESS
            } else {
                ReasonCode::NO_SUBSCRIPTION_EXISTED
            });
        }
        let ticket = self.store_session();
        self.ack(
            Packet::UnsubAck(UnsubAck {
                packet_id: unsubscribe.packet_id,
                properties: Properties::new(),
                reason_codes: codes,
            }),
            ticket,
            OnFailure::Send,
        );
        None
    }
}
