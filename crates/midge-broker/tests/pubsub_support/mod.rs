//! Helpers shared by the PUBLISH / retain / subscribe / shared / v5 / malformed-input tests.
//!
//! Each test file includes this module with `mod pubsub_support;`; not every file uses every
//! helper, hence the `dead_code` allowance (and `pub` items are reachable only from the file
//! that includes them).
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use bytes::Bytes;
use midge_proto::{
    ConnAck, Connect, Packet, PacketId, Properties, Property, ProtocolVersion, Publish, PublishAck,
    QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscribeFilter, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, Unsubscribe,
};
use midge_testkit::{RawClient, TestBroker};

pub const V5: ProtocolVersion = ProtocolVersion::V5;
pub const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
pub const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

/// How long "nothing arrives" is watched for. Deliveries on loopback take well under a
/// millisecond, so a few hundred milliseconds is a generous margin.
pub const QUIET: Duration = Duration::from_millis(300);

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero packet id")
}

pub fn name(s: &str) -> TopicName {
    TopicName::new(s).expect("valid topic name")
}

/// A PUBLISH; `id` is used only for QoS 1 and 2.
pub fn publish(topic: &str, qos: QoS, id: u16, payload: impl Into<Bytes>) -> Publish {
    let mut p = Publish::new(name(topic), payload.into());
    p.qos = qos;
    if qos != QoS::AtMostOnce {
        p.packet_id = Some(pid(id));
    }
    p
}

pub fn opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions::qos(qos)
}

pub fn opts_rh(qos: QoS, retain_handling: RetainHandling) -> SubscriptionOptions {
    SubscriptionOptions {
        retain_handling,
        ..SubscriptionOptions::qos(qos)
    }
}

/// Connects with a CONNECT that `edit` may change (properties, clean start, …).
pub async fn connect_with(
    broker: &TestBroker,
    version: ProtocolVersion,
    client_id: &str,
    edit: impl FnOnce(&mut Connect),
) -> (RawClient, ConnAck) {
    let mut c = broker.raw(version).await;
    let mut connect = Connect::new(version, client_id);
    edit(&mut connect);
    let ack = c.connect(connect).await;
    (c, ack)
}

/// An MQTT 5 client with the given CONNECT properties.
pub async fn v5_with(broker: &TestBroker, client_id: &str, props: Vec<Property>) -> RawClient {
    connect_with(broker, V5, client_id, |c| {
        for p in props {
            c.properties.push(p);
        }
    })
    .await
    .0
}

/// Sends a SUBSCRIBE and returns its SUBACK (checking the packet identifier,
/// [MQTT-3.8.4-2]).
pub async fn subscribe_with(
    c: &mut RawClient,
    id: u16,
    filters: &[(&str, SubscriptionOptions)],
    properties: Properties,
) -> SubAck {
    c.send(&Packet::Subscribe(Subscribe {
        packet_id: pid(id),
        properties,
        filters: filters
            .iter()
            .map(|(f, o)| SubscribeFilter {
                filter: TopicFilter::new(*f).expect("valid filter"),
                options: *o,
            })
            .collect(),
    }))
    .await;
    match c.recv().await {
        Packet::SubAck(ack) => {
            assert_eq!(ack.packet_id, pid(id), "[MQTT-3.8.4-2] SUBACK packet id");
            ack
        }
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// Subscribes to one filter and asserts the granted QoS.
pub async fn sub(c: &mut RawClient, filter: &str, options: SubscriptionOptions) {
    let ack = subscribe_with(c, 1, &[(filter, options)], Properties::new()).await;
    assert_eq!(ack.reason_codes, vec![ReasonCode(options.qos.as_u8())]);
}

/// Subscribes to one filter with a Subscription Identifier.
pub async fn sub_id(c: &mut RawClient, filter: &str, options: SubscriptionOptions, id: u32) {
    let props = Properties::new().with(Property::SubscriptionIdentifier(id));
    let ack = subscribe_with(c, 1, &[(filter, options)], props).await;
    assert_eq!(ack.reason_codes, vec![ReasonCode(options.qos.as_u8())]);
}

/// Sends an UNSUBSCRIBE and returns its UNSUBACK.
pub async fn unsubscribe(c: &mut RawClient, id: u16, filters: &[&str]) -> UnsubAck {
    c.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(id),
        properties: Properties::new(),
        filters: filters
            .iter()
            .map(|f| TopicFilter::new(*f).expect("valid filter"))
            .collect(),
    }))
    .await;
    match c.recv().await {
        Packet::UnsubAck(ack) => {
            assert_eq!(ack.packet_id, pid(id), "UNSUBACK packet id");
            ack
        }
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}

/// Publishes and completes the publisher's side of the QoS flow. Returns the PUBACK (QoS 1)
/// or PUBREC (QoS 2), `None` for QoS 0. The next packets from the broker must be the
/// acknowledgements (use a publisher without matching subscriptions).
pub async fn send_publish(c: &mut RawClient, p: Publish) -> Option<PublishAck> {
    let qos = p.qos;
    let id = p.packet_id;
    c.send(&Packet::Publish(p)).await;
    match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce => match c.recv().await {
            Packet::PubAck(a) => {
                assert_eq!(Some(a.packet_id), id, "[MQTT-4.3.2-4] PUBACK packet id");
                Some(a)
            }
            other => panic!("expected PUBACK, got {other:?}"),
        },
        QoS::ExactlyOnce => {
            let rec = match c.recv().await {
                Packet::PubRec(a) => {
                    assert_eq!(Some(a.packet_id), id, "[MQTT-4.3.3-8] PUBREC packet id");
                    a
                }
                other => panic!("expected PUBREC, got {other:?}"),
            };
            c.send(&Packet::PubRel(PublishAck::new(rec.packet_id)))
                .await;
            match c.recv().await {
                Packet::PubComp(a) => {
                    assert_eq!(a.packet_id, rec.packet_id, "[MQTT-4.3.3-11] PUBCOMP id");
                    assert_eq!(a.reason_code, ReasonCode::SUCCESS);
                }
                other => panic!("expected PUBCOMP, got {other:?}"),
            }
            Some(rec)
        }
    }
}

/// Publishes a plain message at `qos` and completes the flow.
pub async fn pub_msg(c: &mut RawClient, topic: &str, qos: QoS, payload: &'static [u8]) {
    send_publish(c, publish(topic, qos, 1, payload)).await;
}

/// Acknowledges a PUBLISH received from the broker, completing QoS 2 (PUBREC → PUBREL →
/// PUBCOMP). Nothing else may arrive in between.
pub async fn ack(c: &mut RawClient, p: &Publish) {
    match (p.qos, p.packet_id) {
        (QoS::AtMostOnce, None) => {}
        (QoS::AtLeastOnce, Some(id)) => c.send(&Packet::PubAck(PublishAck::new(id))).await,
        (QoS::ExactlyOnce, Some(id)) => {
            c.send(&Packet::PubRec(PublishAck::new(id))).await;
            match c.recv().await {
                Packet::PubRel(r) => assert_eq!(r.packet_id, id, "[MQTT-4.3.3-4] PUBREL id"),
                other => panic!("expected PUBREL, got {other:?}"),
            }
            c.send(&Packet::PubComp(PublishAck::new(id))).await;
        }
        (qos, id) => panic!("PUBLISH with QoS {qos} and packet id {id:?}"),
    }
}

/// Receives `n` PUBLISH packets, acknowledging each at once (PUBACK, or PUBREC and later
/// PUBCOMP for each PUBREL, which may arrive interleaved with further PUBLISH packets), and
/// returns them in arrival order once every QoS 2 flow is complete.
pub async fn collect(c: &mut RawClient, n: usize) -> Vec<Publish> {
    let mut got = Vec::with_capacity(n);
    let mut awaiting_pubrel = std::collections::HashSet::new();
    while got.len() < n || !awaiting_pubrel.is_empty() {
        match c.recv().await {
            Packet::Publish(p) => {
                match (p.qos, p.packet_id) {
                    (QoS::AtMostOnce, None) => {}
                    (QoS::AtLeastOnce, Some(id)) => {
                        c.send(&Packet::PubAck(PublishAck::new(id))).await;
                    }
                    (QoS::ExactlyOnce, Some(id)) => {
                        assert!(
                            awaiting_pubrel.insert(id),
                            "packet id {id} reused in flight"
                        );
                        c.send(&Packet::PubRec(PublishAck::new(id))).await;
                    }
                    (qos, id) => panic!("PUBLISH with QoS {qos} and packet id {id:?}"),
                }
                got.push(p);
                assert!(got.len() <= n, "more than {n} PUBLISH packets");
            }
            Packet::PubRel(r) => {
                assert!(
                    awaiting_pubrel.remove(&r.packet_id),
                    "[MQTT-4.3.3-4] PUBREL for {} which awaits no PUBREL",
                    r.packet_id
                );
                c.send(&Packet::PubComp(PublishAck::new(r.packet_id))).await;
            }
            other => panic!("expected PUBLISH or PUBREL, got {other:?}"),
        }
    }
    got
}

/// Receives a PUBLISH and acknowledges it.
pub async fn recv_acked(c: &mut RawClient) -> Publish {
    let p = c.recv_publish().await;
    ack(c, &p).await;
    p
}

/// Waits for the broker to close the connection. An MQTT 5 client must first get exactly one
/// DISCONNECT with `code`; an MQTT 3.1.1 client gets nothing (the connection just closes).
pub async fn expect_disconnect(c: &mut RawClient, code: ReasonCode) {
    let got = c.expect_closed().await;
    if c.version.is_v5() {
        match got.as_slice() {
            [Packet::Disconnect(d)] => assert_eq!(
                d.reason_code, code,
                "DISCONNECT reason: expected {code}, got {}",
                d.reason_code
            ),
            other => panic!("expected one DISCONNECT {code} before close, got {other:?}"),
        }
    } else {
        assert!(
            got.is_empty(),
            "an MQTT 3.1.1 client gets no packet before close, got {got:?}"
        );
    }
}

/// Asserts the connection is still usable: PINGREQ gets PINGRESP.
pub async fn assert_alive(c: &mut RawClient) {
    c.send(&Packet::PingReq).await;
    match c.recv().await {
        Packet::PingResp => {}
        other => panic!("expected PINGRESP, got {other:?}"),
    }
}

/// Polls `cond` until it holds (at most five seconds).
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A packet from its first byte and body, with the Remaining Length encoded minimally.
pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A length-prefixed string field made of arbitrary bytes.
pub fn field(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A PUBLISH body: topic field, packet id (if `id` is given), MQTT 5 property block (if
/// `props` is given), payload.
pub fn publish_body(
    topic: &[u8],
    id: Option<u16>,
    props: Option<&[u8]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = field(topic);
    if let Some(id) = id {
        body.extend_from_slice(&id.to_be_bytes());
    }
    if let Some(props) = props {
        body.push(props.len() as u8);
        body.extend_from_slice(props);
    }
    body.extend_from_slice(payload);
    body
}

/// A client that subscribes to `probe/<id>` and publishes to it, to check that the broker
/// still serves well-behaved clients.
#[derive(Debug)]
pub struct Witness {
    pub client: RawClient,
    topic: String,
    n: u32,
}

impl Witness {
    pub async fn new(broker: &TestBroker, id: &str) -> Witness {
        let mut client = broker.client(V5, id).await;
        let topic = format!("probe/{id}");
        sub(&mut client, &topic, opts(QoS::AtLeastOnce)).await;
        Witness {
            client,
            topic,
            n: 0,
        }
    }

    /// Publishes a QoS 1 message to itself and checks PUBACK and delivery.
    pub async fn check(&mut self, context: &str) {
        self.n += 1;
        let payload = Bytes::from(format!("probe {}", self.n));
        let id = (self.n % 60_000 + 1) as u16;
        self.client
            .send(&Packet::Publish(publish(
                &self.topic,
                QoS::AtLeastOnce,
                id,
                payload.clone(),
            )))
            .await;
        let mut got_ack = false;
        let mut got_msg = false;
        while !(got_ack && got_msg) {
            match self.client.try_recv(midge_testkit::TIMEOUT).await {
                Ok(Some(Packet::PubAck(a))) if a.packet_id == pid(id) => got_ack = true,
                Ok(Some(Packet::Publish(p))) => {
                    assert_eq!(
                        p.payload, payload,
                        "witness got a wrong message ({context})"
                    );
                    ack(&mut self.client, &p).await;
                    got_msg = true;
                }
                other => panic!("witness stopped working after {context}: {other:?}"),
            }
        }
    }
}
