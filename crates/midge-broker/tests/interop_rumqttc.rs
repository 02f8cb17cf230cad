//! Interoperability with an MQTT client no one here wrote: `rumqttc` 0.25, its MQTT 3.1.1
//! client (`rumqttc::AsyncClient`) and its MQTT 5 client (`rumqttc::v5::AsyncClient`), against
//! an in-process broker.
//!
//! Each client's event loop runs in its own task and forwards every event to the test through
//! a channel; the test waits for what it expects with a bounded timeout. Aborting that task
//! drops the socket without DISCONNECT, which is how the will tests lose a client abruptly.
//! Normative statements are cited as `[MQTT-x.y.z-n]` of MQTT 3.1.1 for the 3.1.1 tests and of
//! MQTT 5.0 for the v5 tests.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use midge_testkit::TestBroker;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

/// How long a test waits for something it expects.
const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure something does not happen.
const QUIET: Duration = Duration::from_millis(300);

/// What an event-loop task reports: an event, or the error that ended it.
type Report<E> = Result<E, String>;

/// Waits until `cond` holds (polling), failing the test after [`WAIT`].
async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ------------------------------------------------------------------------------------------
// The MQTT 3.1.1 client.
// ------------------------------------------------------------------------------------------

mod v3 {
    use super::*;
    use rumqttc::{
        AsyncClient, ConnAck, ConnectReturnCode, Event, EventLoop, LastWill, MqttOptions, Outgoing,
        Packet, Publish, QoS,
    };

    /// A connected rumqttc 3.1.1 client whose events arrive through a channel.
    pub(super) struct Client {
        pub(super) client: AsyncClient,
        pub(super) connack: ConnAck,
        events: mpsc::UnboundedReceiver<Report<Event>>,
        /// PUBLISH packets that arrived while the test waited for something else.
        stash: VecDeque<Publish>,
        task: JoinHandle<()>,
    }

    /// Runs the event loop in a task that forwards every event, until an error or until the
    /// client's DISCONNECT has been written. Aborting the task drops the socket.
    fn spawn_loop(
        mut eventloop: EventLoop,
    ) -> (mpsc::UnboundedReceiver<Report<Event>>, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(event) => {
                        let stop = matches!(event, Event::Outgoing(Outgoing::Disconnect));
                        if tx.send(Ok(event)).is_err() || stop {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        break;
                    }
                }
            }
        });
        (rx, task)
    }

    pub(super) fn options(broker: &TestBroker, id: &str) -> MqttOptions {
        let mut o = MqttOptions::new(id, "127.0.0.1", broker.addr.port());
        o.set_keep_alive(Duration::from_secs(30));
        o
    }

    pub(super) async fn connect(broker: &TestBroker, id: &str) -> Client {
        connect_with(options(broker, id)).await
    }

    pub(super) async fn connect_with(options: MqttOptions) -> Client {
        let (client, eventloop) = AsyncClient::new(options, 64);
        let (events, task) = spawn_loop(eventloop);
        let mut c = Client {
            client,
            connack: ConnAck::new(ConnectReturnCode::Success, false),
            events,
            stash: VecDeque::new(),
            task,
        };
        c.connack = c
            .next("CONNACK", |e| match e {
                Event::Incoming(Packet::ConnAck(a)) => Some(a.clone()),
                _ => None,
            })
            .await;
        assert_eq!(c.connack.code, ConnectReturnCode::Success);
        c
    }

    /// A will for [`MqttOptions::set_last_will`].
    pub(super) fn will(topic: &str, payload: &'static [u8], qos: QoS, retain: bool) -> LastWill {
        LastWill::new(topic, payload, qos, retain)
    }

    impl Client {
        /// The next event `f` accepts; PUBLISH packets it skips are kept for `recv_publish`.
        pub(super) async fn next<T>(
            &mut self,
            what: &str,
            mut f: impl FnMut(&Event) -> Option<T>,
        ) -> T {
            let deadline = Instant::now() + WAIT;
            loop {
                match timeout_at(deadline, self.events.recv()).await {
                    Err(_) => panic!("no {what} within {WAIT:?}"),
                    Ok(None) => panic!("event loop ended while waiting for {what}"),
                    Ok(Some(Err(e))) => panic!("connection error while waiting for {what}: {e}"),
                    Ok(Some(Ok(event))) => {
                        if let Some(t) = f(&event) {
                            return t;
                        }
                        if let Event::Incoming(Packet::Publish(p)) = event {
                            self.stash.push_back(p);
                        }
                    }
                }
            }
        }

        /// The next PUBLISH received.
        pub(super) async fn recv_publish(&mut self) -> Publish {
            if let Some(p) = self.stash.pop_front() {
                return p;
            }
            self.next("PUBLISH", |e| match e {
                Event::Incoming(Packet::Publish(p)) => Some(p.clone()),
                _ => None,
            })
            .await
        }

        /// Asserts no PUBLISH arrives within [`QUIET`].
        pub(super) async fn expect_no_publish(&mut self) {
            assert!(self.stash.is_empty(), "unexpected PUBLISH {:?}", self.stash);
            let deadline = Instant::now() + QUIET;
            while let Ok(Some(ev)) = timeout_at(deadline, self.events.recv()).await {
                if let Ok(Event::Incoming(Packet::Publish(p))) = ev {
                    panic!("unexpected PUBLISH {p:?}");
                }
            }
        }

        /// Subscribes and checks the granted QoS ([MQTT-3.8.4-1], [MQTT-3.9.3-1]).
        pub(super) async fn subscribe(&mut self, filter: &str, qos: QoS) {
            self.client.subscribe(filter, qos).await.expect("subscribe");
            let codes = self
                .next("SUBACK", |e| match e {
                    Event::Incoming(Packet::SubAck(a)) => Some(a.return_codes.clone()),
                    _ => None,
                })
                .await;
            assert_eq!(codes, vec![rumqttc::SubscribeReasonCode::Success(qos)]);
        }

        /// Publishes and waits until the QoS flow completes (PUBACK, PUBCOMP, or written).
        pub(super) async fn publish(
            &mut self,
            topic: &str,
            qos: QoS,
            retain: bool,
            payload: &[u8],
        ) {
            self.client
                .publish(topic, qos, retain, payload.to_vec())
                .await
                .expect("publish");
            match qos {
                QoS::AtMostOnce => {
                    self.next("PUBLISH written", |e| {
                        matches!(e, Event::Outgoing(Outgoing::Publish(_))).then_some(())
                    })
                    .await;
                }
                QoS::AtLeastOnce => {
                    self.next("PUBACK", |e| {
                        matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
                    })
                    .await;
                }
                QoS::ExactlyOnce => {
                    self.next("PUBCOMP", |e| {
                        matches!(e, Event::Incoming(Packet::PubComp(_))).then_some(())
                    })
                    .await;
                }
            }
        }

        /// Sends DISCONNECT and waits until the event loop has written it and stopped.
        pub(super) async fn disconnect(mut self) {
            self.client.disconnect().await.expect("disconnect");
            self.next("DISCONNECT written", |e| {
                matches!(e, Event::Outgoing(Outgoing::Disconnect)).then_some(())
            })
            .await;
            let _ = tokio::time::timeout(WAIT, &mut self.task).await;
        }

        /// Drops the connection without DISCONNECT (the socket closes with the event loop).
        pub(super) async fn kill(self) {
            self.task.abort();
            let _ = self.task.await;
        }
    }
}

// ------------------------------------------------------------------------------------------
// The MQTT 5 client.
// ------------------------------------------------------------------------------------------

mod v5 {
    use super::*;
    use rumqttc::Outgoing;
    pub(super) use rumqttc::v5::mqttbytes::QoS;
    pub(super) use rumqttc::v5::mqttbytes::v5::{
        ConnAck, ConnectReturnCode, Filter, LastWill, LastWillProperties, Packet, Publish,
        PublishProperties, RetainForwardRule, SubscribeProperties, SubscribeReasonCode,
    };
    pub(super) use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};

    /// A connected rumqttc v5 client whose events arrive through a channel.
    pub(super) struct Client {
        pub(super) client: AsyncClient,
        pub(super) connack: ConnAck,
        events: mpsc::UnboundedReceiver<Report<Event>>,
        stash: VecDeque<Publish>,
        task: JoinHandle<()>,
    }

    /// Runs the event loop in a task that forwards every event, until an error or until the
    /// client's DISCONNECT has been written. Aborting the task drops the socket.
    fn spawn_loop(
        mut eventloop: EventLoop,
    ) -> (mpsc::UnboundedReceiver<Report<Event>>, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(event) => {
                        let stop = matches!(event, Event::Outgoing(Outgoing::Disconnect));
                        if tx.send(Ok(event)).is_err() || stop {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        break;
                    }
                }
            }
        });
        (rx, task)
    }

    pub(super) fn options(broker: &TestBroker, id: &str) -> MqttOptions {
        let mut o = MqttOptions::new(id, "127.0.0.1", broker.addr.port());
        o.set_keep_alive(Duration::from_secs(30));
        o
    }

    pub(super) async fn connect(broker: &TestBroker, id: &str) -> Client {
        connect_with(options(broker, id)).await
    }

    pub(super) async fn connect_with(options: MqttOptions) -> Client {
        let (client, eventloop) = AsyncClient::new(options, 64);
        let (events, task) = spawn_loop(eventloop);
        let mut c = Client {
            client,
            connack: ConnAck {
                session_present: false,
                code: ConnectReturnCode::Success,
                properties: None,
            },
            events,
            stash: VecDeque::new(),
            task,
        };
        c.connack = c
            .next("CONNACK", |e| match e {
                Event::Incoming(Packet::ConnAck(a)) => Some(a.clone()),
                _ => None,
            })
            .await;
        assert_eq!(c.connack.code, ConnectReturnCode::Success);
        c
    }

    impl Client {
        /// The next event `f` accepts; PUBLISH packets it skips are kept for `recv_publish`.
        pub(super) async fn next<T>(
            &mut self,
            what: &str,
            mut f: impl FnMut(&Event) -> Option<T>,
        ) -> T {
            let deadline = Instant::now() + WAIT;
            loop {
                match timeout_at(deadline, self.events.recv()).await {
                    Err(_) => panic!("no {what} within {WAIT:?}"),
                    Ok(None) => panic!("event loop ended while waiting for {what}"),
                    Ok(Some(Err(e))) => panic!("connection error while waiting for {what}: {e}"),
                    Ok(Some(Ok(event))) => {
                        if let Some(t) = f(&event) {
                            return t;
                        }
                        if let Event::Incoming(Packet::Publish(p)) = event {
                            self.stash.push_back(p);
                        }
                    }
                }
            }
        }

        /// The next PUBLISH received.
        pub(super) async fn recv_publish(&mut self) -> Publish {
            if let Some(p) = self.stash.pop_front() {
                return p;
            }
            self.next("PUBLISH", |e| match e {
                Event::Incoming(Packet::Publish(p)) => Some(p.clone()),
                _ => None,
            })
            .await
        }

        /// Asserts no PUBLISH arrives within [`QUIET`].
        pub(super) async fn expect_no_publish(&mut self) {
            assert!(self.stash.is_empty(), "unexpected PUBLISH {:?}", self.stash);
            let deadline = Instant::now() + QUIET;
            while let Ok(Some(ev)) = timeout_at(deadline, self.events.recv()).await {
                if let Ok(Event::Incoming(Packet::Publish(p))) = ev {
                    panic!("unexpected PUBLISH {p:?}");
                }
            }
        }

        async fn suback(&mut self) -> Vec<SubscribeReasonCode> {
            self.next("SUBACK", |e| match e {
                Event::Incoming(Packet::SubAck(a)) => Some(a.return_codes.clone()),
                _ => None,
            })
            .await
        }

        /// Subscribes to one filter and checks the granted QoS.
        pub(super) async fn subscribe(&mut self, filter: &str, qos: QoS) {
            self.client.subscribe(filter, qos).await.expect("subscribe");
            assert_eq!(self.suback().await, vec![SubscribeReasonCode::Success(qos)]);
        }

        /// Subscribes with a Subscription Identifier.
        pub(super) async fn subscribe_with_id(&mut self, filter: &str, qos: QoS, id: usize) {
            let props = SubscribeProperties {
                id: Some(id),
                user_properties: Vec::new(),
            };
            self.client
                .subscribe_with_properties(filter, qos, props)
                .await
                .expect("subscribe");
            assert_eq!(self.suback().await, vec![SubscribeReasonCode::Success(qos)]);
        }

        /// Subscribes with explicit subscription options.
        pub(super) async fn subscribe_filter(&mut self, filter: Filter) {
            let qos = filter.qos;
            self.client
                .subscribe_many(vec![filter])
                .await
                .expect("subscribe");
            assert_eq!(self.suback().await, vec![SubscribeReasonCode::Success(qos)]);
        }

        /// Publishes (with properties) and waits until the QoS flow completes.
        pub(super) async fn publish_props(
            &mut self,
            topic: &str,
            qos: QoS,
            retain: bool,
            payload: &[u8],
            props: PublishProperties,
        ) {
            self.client
                .publish_with_properties(topic, qos, retain, payload.to_vec(), props)
                .await
                .expect("publish");
            self.await_publish_flow(qos).await;
        }

        /// Publishes and waits until the QoS flow completes.
        pub(super) async fn publish(
            &mut self,
            topic: &str,
            qos: QoS,
            retain: bool,
            payload: &[u8],
        ) {
            self.client
                .publish(topic, qos, retain, payload.to_vec())
                .await
                .expect("publish");
            self.await_publish_flow(qos).await;
        }

        async fn await_publish_flow(&mut self, qos: QoS) {
            match qos {
                QoS::AtMostOnce => {
                    self.next("PUBLISH written", |e| {
                        matches!(e, Event::Outgoing(Outgoing::Publish(_))).then_some(())
                    })
                    .await;
                }
                QoS::AtLeastOnce => {
                    self.next("PUBACK", |e| {
                        matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
                    })
                    .await;
                }
                QoS::ExactlyOnce => {
                    self.next("PUBCOMP", |e| {
                        matches!(e, Event::Incoming(Packet::PubComp(_))).then_some(())
                    })
                    .await;
                }
            }
        }

        /// Sends DISCONNECT (reason 0) and waits until the event loop has written it.
        pub(super) async fn disconnect(mut self) {
            self.client.disconnect().await.expect("disconnect");
            self.next("DISCONNECT written", |e| {
                matches!(e, Event::Outgoing(Outgoing::Disconnect)).then_some(())
            })
            .await;
            let _ = tokio::time::timeout(WAIT, &mut self.task).await;
        }

        /// Waits for the broker to end the connection; returns the error that ended it.
        pub(super) async fn closed(&mut self) -> String {
            let deadline = Instant::now() + WAIT;
            loop {
                match timeout_at(deadline, self.events.recv()).await {
                    Err(_) => panic!("connection still open after {WAIT:?}"),
                    Ok(None) => return String::new(),
                    Ok(Some(Err(e))) => return e,
                    Ok(Some(Ok(Event::Incoming(Packet::Publish(p))))) => self.stash.push_back(p),
                    Ok(Some(Ok(_))) => {}
                }
            }
        }

        /// Acknowledges a PUBLISH received with manual acknowledgements.
        pub(super) async fn ack(&self, p: &Publish) {
            self.client.ack(p).await.expect("ack");
        }

        /// Drops the connection without DISCONNECT.
        pub(super) async fn kill(self) {
            self.task.abort();
            let _ = self.task.await;
        }
    }

    /// The topic of a received PUBLISH as text.
    pub(super) fn topic(p: &Publish) -> String {
        String::from_utf8(p.topic.to_vec()).expect("UTF-8 topic")
    }

    /// The properties of a received PUBLISH (none is the same as empty).
    pub(super) fn props(p: &Publish) -> PublishProperties {
        p.properties.clone().unwrap_or_default()
    }
}

// ------------------------------------------------------------------------------------------
// MQTT 3.1.1
// ------------------------------------------------------------------------------------------

/// `#` matches the parent level and any number of levels, `+` exactly one level
/// ([MQTT-4.7.1-2], [MQTT-4.7.1-3]); a message is delivered at the minimum of its QoS and the
/// granted QoS ([MQTT-3.8.4-6]); overlapping subscriptions give one delivery at the highest
/// matching QoS ([MQTT-3.3.5-1]).
#[tokio::test]
async fn v311_wildcard_subscriptions_and_qos_downgrade() {
    use rumqttc::QoS;
    let broker = TestBroker::start().await;
    let mut sub = v3::connect(&broker, "v3-wild-sub").await;
    sub.subscribe("home/+/temp", QoS::AtLeastOnce).await;
    sub.subscribe("alarm/#", QoS::AtMostOnce).await;
    sub.subscribe("both/#", QoS::AtMostOnce).await;
    sub.subscribe("both/+", QoS::ExactlyOnce).await;
    let mut publisher = v3::connect(&broker, "v3-wild-pub").await;

    // Not matched: two levels for `+`, a different root.
    publisher
        .publish("home/a/b/temp", QoS::AtMostOnce, false, b"x")
        .await;
    publisher
        .publish("house/a/temp", QoS::AtMostOnce, false, b"x")
        .await;
    // Matched.
    publisher
        .publish("home/kitchen/temp", QoS::ExactlyOnce, false, b"21")
        .await;
    publisher
        .publish("alarm", QoS::ExactlyOnce, false, b"parent")
        .await;
    publisher
        .publish("alarm/door/front", QoS::AtLeastOnce, false, b"open")
        .await;
    publisher
        .publish("both/x", QoS::ExactlyOnce, false, b"overlap")
        .await;

    let expect = [
        ("home/kitchen/temp", &b"21"[..], QoS::AtLeastOnce),
        ("alarm", &b"parent"[..], QoS::AtMostOnce),
        ("alarm/door/front", &b"open"[..], QoS::AtMostOnce),
        ("both/x", &b"overlap"[..], QoS::ExactlyOnce),
    ];
    for (topic, payload, qos) in expect {
        let p = sub.recv_publish().await;
        assert_eq!(
            (p.topic.as_str(), &p.payload[..], p.qos),
            (topic, payload, qos)
        );
        assert!(!p.retain && !p.dup);
    }
    sub.expect_no_publish().await;
    broker.stop().await;
}

/// QoS 0, 1 and 2 in both directions between two rumqttc clients: payloads arrive unchanged,
/// exactly once for QoS 2 (no duplicates, §4.3.3), at the publish QoS when the subscription
/// grants QoS 2 ([MQTT-3.8.4-6]), and in publish order ([MQTT-4.6.0-6]).
#[tokio::test]
async fn v311_qos_0_1_2_both_directions_in_order() {
    use rumqttc::QoS;
    let broker = TestBroker::start().await;
    let mut a = v3::connect(&broker, "v3-dir-a").await;
    let mut b = v3::connect(&broker, "v3-dir-b").await;
    a.subscribe("to/a/#", QoS::ExactlyOnce).await;
    b.subscribe("to/b/#", QoS::ExactlyOnce).await;

    let qos_levels = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    for round in 0..3 {
        for (i, qos) in qos_levels.iter().enumerate() {
            let payload = format!("a->b {round} {i}");
            a.publish("to/b/x", *qos, false, payload.as_bytes()).await;
            let payload = format!("b->a {round} {i}");
            b.publish("to/a/y", *qos, false, payload.as_bytes()).await;
        }
    }
    for round in 0..3 {
        for (i, qos) in qos_levels.iter().enumerate() {
            let p = b.recv_publish().await;
            assert_eq!(p.topic, "to/b/x");
            assert_eq!(p.payload, Bytes::from(format!("a->b {round} {i}")));
            assert_eq!(p.qos, *qos);
            let p = a.recv_publish().await;
            assert_eq!(p.topic, "to/a/y");
            assert_eq!(p.payload, Bytes::from(format!("b->a {round} {i}")));
            assert_eq!(p.qos, *qos);
        }
    }
    a.expect_no_publish().await;
    b.expect_no_publish().await;
    broker.stop().await;
}

/// A retained message is stored and sent to a new subscriber with RETAIN set ([MQTT-3.3.1-5],
/// [MQTT-3.3.1-6], [MQTT-3.3.1-8]); to an existing subscriber it is sent with RETAIN clear
/// ([MQTT-3.3.1-9]); a newer one replaces it; an empty retained message removes it and is not
/// stored ([MQTT-3.3.1-10], [MQTT-3.3.1-11]).
#[tokio::test]
async fn v311_retained_message_on_subscribe() {
    use rumqttc::QoS;
    let broker = TestBroker::start().await;
    let mut publisher = v3::connect(&broker, "v3-ret-pub").await;
    let mut live = v3::connect(&broker, "v3-ret-live").await;
    live.subscribe("status/#", QoS::AtLeastOnce).await;

    publisher
        .publish("status/dev1", QoS::AtLeastOnce, true, b"old")
        .await;
    publisher
        .publish("status/dev1", QoS::AtLeastOnce, true, b"online")
        .await;
    for payload in [&b"old"[..], b"online"] {
        let p = live.recv_publish().await;
        assert_eq!(&p.payload[..], payload);
        assert!(!p.retain, "RETAIN must be 0 on an established subscription");
    }
    wait_until("one retained message", || {
        broker.handle.retained_count() == 1
    })
    .await;

    let mut late = v3::connect(&broker, "v3-ret-late").await;
    late.subscribe("status/+", QoS::AtLeastOnce).await;
    let p = late.recv_publish().await;
    assert_eq!(p.topic, "status/dev1");
    assert_eq!(&p.payload[..], b"online");
    assert!(
        p.retain,
        "RETAIN must be 1 for a retained message sent at subscribe"
    );
    assert_eq!(p.qos, QoS::AtLeastOnce);
    late.expect_no_publish().await;

    // Clear it: the empty message is forwarded to live subscribers but not stored.
    publisher
        .publish("status/dev1", QoS::AtLeastOnce, true, b"")
        .await;
    let p = live.recv_publish().await;
    assert!(p.payload.is_empty());
    wait_until("no retained message", || {
        broker.handle.retained_count() == 0
    })
    .await;
    let mut later = v3::connect(&broker, "v3-ret-later").await;
    later.subscribe("status/#", QoS::AtLeastOnce).await;
    later.expect_no_publish().await;
    broker.stop().await;
}

/// A Clean Session 0 client that goes away keeps its session: QoS 1 messages published while
/// it is offline are delivered, in order, when it comes back with Session Present 1
/// ([MQTT-3.1.2-4], [MQTT-3.1.2-5], [MQTT-3.2.2-2], [MQTT-4.6.0-6]); reconnecting with Clean
/// Session 1 discards the session ([MQTT-3.1.2-6], [MQTT-3.2.2-1]).
#[tokio::test]
async fn v311_persistent_session_receives_qos1_queued_offline() {
    use rumqttc::QoS;
    let broker = TestBroker::start().await;
    let persistent = || {
        let mut o = v3::options(&broker, "v3-persist");
        o.set_clean_session(false);
        o
    };
    let mut c = v3::connect_with(persistent()).await;
    assert!(!c.connack.session_present);
    c.subscribe("jobs/#", QoS::AtLeastOnce).await;
    c.disconnect().await;
    wait_until("subscriber offline", || {
        broker
            .handle
            .stats()
            .clients_connected
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
    })
    .await;

    let mut publisher = v3::connect(&broker, "v3-persist-pub").await;
    for i in 0..5 {
        publisher
            .publish(
                &format!("jobs/{i}"),
                QoS::AtLeastOnce,
                false,
                format!("job {i}").as_bytes(),
            )
            .await;
    }
    publisher
        .publish("jobs/q0", QoS::AtMostOnce, false, b"qos0 offline")
        .await;

    let mut c = v3::connect_with(persistent()).await;
    assert!(
        c.connack.session_present,
        "[MQTT-3.2.2-2] Session Present must be 1"
    );
    for i in 0..5 {
        let p = c.recv_publish().await;
        assert_eq!(p.topic, format!("jobs/{i}"));
        assert_eq!(p.payload, Bytes::from(format!("job {i}")));
        assert_eq!(p.qos, QoS::AtLeastOnce);
    }
    // The subscription itself survived too.
    publisher
        .publish("jobs/live", QoS::AtLeastOnce, false, b"live")
        .await;
    let mut p = c.recv_publish().await;
    if p.topic == "jobs/q0" {
        // Queuing QoS 0 messages for an offline session is optional (MQTT 3.1.1 §3.1.2.4).
        p = c.recv_publish().await;
    }
    assert_eq!(&p.payload[..], b"live");
    c.disconnect().await;

    // Clean Session 1 discards it.
    let mut o = v3::options(&broker, "v3-persist");
    o.set_clean_session(true);
    let c = v3::connect_with(o).await;
    assert!(!c.connack.session_present, "[MQTT-3.2.2-1]");
    publisher
        .publish("jobs/after", QoS::AtLeastOnce, false, b"x")
        .await;
    let mut c = c;
    c.expect_no_publish().await;
    broker.stop().await;
}

/// The will is published when the network connection closes without DISCONNECT
/// ([MQTT-3.1.2-8]), retained when Will Retain is 1 ([MQTT-3.1.2-17]), and discarded after a
/// DISCONNECT ([MQTT-3.1.2-10]).
#[tokio::test]
async fn v311_will_on_abrupt_disconnect_only() {
    use rumqttc::QoS;
    let broker = TestBroker::start().await;
    let mut watcher = v3::connect(&broker, "v3-will-watch").await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;

    let mut o = v3::options(&broker, "v3-will-clean");
    o.set_last_will(v3::will(
        "wills/clean",
        b"must not appear",
        QoS::AtLeastOnce,
        false,
    ));
    v3::connect_with(o).await.disconnect().await;

    let mut o = v3::options(&broker, "v3-will-dies");
    o.set_last_will(v3::will("wills/dies", b"gone", QoS::AtLeastOnce, true));
    let dying = v3::connect_with(o).await;
    dying.kill().await;

    let p = watcher.recv_publish().await;
    assert_eq!(
        p.topic, "wills/dies",
        "only the abruptly closed client's will: {p:?}"
    );
    assert_eq!(&p.payload[..], b"gone");
    assert_eq!(p.qos, QoS::AtLeastOnce);
    watcher.expect_no_publish().await;

    // Will Retain 1: a later subscriber gets it as a retained message.
    let mut late = v3::connect(&broker, "v3-will-late").await;
    late.subscribe("wills/#", QoS::AtLeastOnce).await;
    let p = late.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.retain),
        ("wills/dies", &b"gone"[..], true)
    );
    late.expect_no_publish().await;
    broker.stop().await;
}

// ------------------------------------------------------------------------------------------
// MQTT 5
// ------------------------------------------------------------------------------------------

/// MQTT 5 QoS 0/1/2 in both directions with wildcard filters: payloads, QoS (minimum of
/// publish and granted QoS, [MQTT-3.8.4-8]), order ([MQTT-4.6.0-6]), `+` and `#`
/// ([MQTT-4.7.1-2], [MQTT-4.7.1-3]); No Local keeps a client's own messages from it
/// ([MQTT-3.8.3-3]).
#[tokio::test]
async fn v5_qos_0_1_2_both_directions_with_wildcards() {
    use v5::QoS;
    let broker = TestBroker::start().await;
    let mut a = v5::connect(&broker, "v5-dir-a").await;
    let mut b = v5::connect(&broker, "v5-dir-b").await;
    a.subscribe("chat/+/to-a", QoS::ExactlyOnce).await;
    b.subscribe("chat/#", QoS::AtLeastOnce).await;
    // a also listens to everything, but not to itself.
    let mut own = v5::Filter::new("chat/#", QoS::ExactlyOnce);
    own.nolocal = true;
    a.subscribe_filter(own).await;

    let levels = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    for (i, qos) in levels.iter().enumerate() {
        a.publish(
            "chat/room1/to-b",
            *qos,
            false,
            format!("from a {i}").as_bytes(),
        )
        .await;
    }
    for (i, qos) in levels.iter().enumerate() {
        b.publish(
            "chat/room1/to-a",
            *qos,
            false,
            format!("from b {i}").as_bytes(),
        )
        .await;
    }

    // b: its own "chat/#" subscription (QoS 1) sees a's three messages, then its own three.
    for (from, i, qos) in [
        ("a", 0, QoS::AtMostOnce),
        ("a", 1, QoS::AtLeastOnce),
        ("a", 2, QoS::AtLeastOnce),
        ("b", 0, QoS::AtMostOnce),
        ("b", 1, QoS::AtLeastOnce),
        ("b", 2, QoS::AtLeastOnce),
    ] {
        let p = b.recv_publish().await;
        assert_eq!(p.payload, Bytes::from(format!("from {from} {i}")));
        assert_eq!(p.qos, qos, "message from {from} {i}");
    }
    // a: only b's messages (No Local), once each, at the publish QoS (two overlapping
    // subscriptions, both granted QoS 2, give one delivery).
    for (i, qos) in levels.iter().enumerate() {
        let p = a.recv_publish().await;
        assert_eq!(v5::topic(&p), "chat/room1/to-a");
        assert_eq!(p.payload, Bytes::from(format!("from b {i}")));
        assert_eq!(p.qos, *qos);
    }
    a.expect_no_publish().await;
    b.expect_no_publish().await;
    broker.stop().await;
}

/// Application properties travel unchanged from a rumqttc publisher to a rumqttc subscriber:
/// Payload Format Indicator ([MQTT-3.3.2-4]), Response Topic ([MQTT-3.3.2-15]), Correlation
/// Data ([MQTT-3.3.2-16]), User Properties in order ([MQTT-3.3.2-17], [MQTT-3.3.2-18]),
/// Content Type ([MQTT-3.3.2-20]); the Message Expiry Interval is forwarded, counted down
/// ([MQTT-3.3.2-6]).
#[tokio::test]
async fn v5_publish_properties_are_forwarded() {
    use v5::QoS;
    let broker = TestBroker::start().await;
    let mut sub = v5::connect(&broker, "v5-props-sub").await;
    sub.subscribe("rpc/+", QoS::ExactlyOnce).await;
    let mut publisher = v5::connect(&broker, "v5-props-pub").await;

    let user = vec![
        ("k".to_owned(), "v1".to_owned()),
        ("a".to_owned(), "b".to_owned()),
        ("k".to_owned(), "v2".to_owned()),
    ];
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let props = v5::PublishProperties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(120),
            response_topic: Some("rpc/replies/42".into()),
            correlation_data: Some(Bytes::from_static(b"\x00corr\xff")),
            user_properties: user.clone(),
            content_type: Some("application/json".into()),
            ..Default::default()
        };
        publisher
            .publish_props("rpc/call", qos, false, br#"{"n":1}"#, props)
            .await;
        let p = sub.recv_publish().await;
        assert_eq!(p.qos, qos);
        assert_eq!(&p.payload[..], br#"{"n":1}"#);
        let got = v5::props(&p);
        assert_eq!(got.payload_format_indicator, Some(1));
        assert_eq!(got.response_topic.as_deref(), Some("rpc/replies/42"));
        assert_eq!(got.correlation_data.as_deref(), Some(&b"\x00corr\xff"[..]));
        assert_eq!(got.user_properties, user, "user properties in order");
        assert_eq!(got.content_type.as_deref(), Some("application/json"));
        let expiry = got
            .message_expiry_interval
            .expect("Message Expiry Interval forwarded");
        assert!((110..=120).contains(&expiry), "expiry {expiry}");
        assert_eq!(got.topic_alias, None, "no alias: the client allowed none");
        assert!(got.subscription_identifiers.is_empty());
    }

    // A message without properties arrives without them.
    publisher
        .publish("rpc/plain", QoS::AtLeastOnce, false, b"p")
        .await;
    let got = v5::props(&sub.recv_publish().await);
    assert_eq!(got, v5::PublishProperties::default());
    broker.stop().await;
}

/// Subscription Identifiers come back on matching messages: one copy for overlapping
/// subscriptions carries every matching identifier ([MQTT-3.3.4-3]) or each copy carries its
/// own ([MQTT-3.3.4-4]); a subscription without one adds none; a re-subscription replaces the
/// identifier ([MQTT-3.8.4-3]).
#[tokio::test]
async fn v5_subscription_identifiers_are_returned() {
    use v5::QoS;
    let broker = TestBroker::start().await;
    let mut sub = v5::connect(&broker, "v5-ids-sub").await;
    sub.subscribe_with_id("ids/+/x", QoS::AtLeastOnce, 7).await;
    sub.subscribe_with_id("ids/#", QoS::AtLeastOnce, 268_435_455)
        .await;
    sub.subscribe("plain/#", QoS::AtLeastOnce).await;
    let mut publisher = v5::connect(&broker, "v5-ids-pub").await;

    publisher
        .publish("ids/a/x", QoS::AtLeastOnce, false, b"both")
        .await;
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let p = sub.recv_publish().await;
        assert_eq!(&p.payload[..], b"both");
        let got = v5::props(&p).subscription_identifiers;
        assert!(
            !got.is_empty(),
            "a copy without its Subscription Identifier"
        );
        ids.extend(got);
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![7, 268_435_455]);

    publisher
        .publish("ids/b", QoS::AtLeastOnce, false, b"one")
        .await;
    let p = sub.recv_publish().await;
    assert_eq!(&p.payload[..], b"one");
    assert_eq!(v5::props(&p).subscription_identifiers, vec![268_435_455]);

    publisher
        .publish("plain/c", QoS::AtLeastOnce, false, b"none")
        .await;
    let p = sub.recv_publish().await;
    assert_eq!(&p.payload[..], b"none");
    assert!(v5::props(&p).subscription_identifiers.is_empty());

    sub.subscribe_with_id("plain/#", QoS::AtLeastOnce, 3).await;
    publisher
        .publish("plain/d", QoS::AtLeastOnce, false, b"now 3")
        .await;
    let p = sub.recv_publish().await;
    assert_eq!(&p.payload[..], b"now 3");
    assert_eq!(v5::props(&p).subscription_identifiers, vec![3]);
    sub.expect_no_publish().await;
    broker.stop().await;
}

/// Retained messages with MQTT 5 subscription options: Retain Handling 0 sends them at
/// subscribe with RETAIN 1 ([MQTT-3.3.1-9]), 1 only for a new subscription ([MQTT-3.3.1-10]),
/// 2 never ([MQTT-3.3.1-11]); Retain As Published keeps RETAIN on live messages
/// ([MQTT-3.3.1-12], [MQTT-3.3.1-13]); an empty retained message clears the topic
/// ([MQTT-3.3.1-6], [MQTT-3.3.1-7]).
#[tokio::test]
async fn v5_retained_messages_and_retain_handling() {
    use v5::{Filter, QoS, RetainForwardRule};
    let broker = TestBroker::start().await;
    let mut publisher = v5::connect(&broker, "v5-ret-pub").await;
    publisher
        .publish("cfg/a", QoS::AtLeastOnce, true, b"A")
        .await;
    publisher
        .publish("cfg/b", QoS::ExactlyOnce, true, b"B")
        .await;
    wait_until("two retained messages", || {
        broker.handle.retained_count() == 2
    })
    .await;

    // Retain Handling 0 (default).
    let mut s0 = v5::connect(&broker, "v5-ret-s0").await;
    s0.subscribe("cfg/+", QoS::ExactlyOnce).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let p = s0.recv_publish().await;
        assert!(p.retain);
        got.push((v5::topic(&p), p.payload.clone(), p.qos));
    }
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        got,
        vec![
            (
                "cfg/a".to_owned(),
                Bytes::from_static(b"A"),
                QoS::AtLeastOnce
            ),
            (
                "cfg/b".to_owned(),
                Bytes::from_static(b"B"),
                QoS::ExactlyOnce
            ),
        ]
    );
    s0.expect_no_publish().await;

    // Retain Handling 1: sent for the new subscription, not for the repeated one.
    let mut s1 = v5::connect(&broker, "v5-ret-s1").await;
    let mut f = Filter::new("cfg/a", QoS::AtLeastOnce);
    f.retain_forward_rule = RetainForwardRule::OnNewSubscribe;
    s1.subscribe_filter(f.clone()).await;
    let p = s1.recv_publish().await;
    assert_eq!((v5::topic(&p).as_str(), p.retain), ("cfg/a", true));
    s1.subscribe_filter(f).await;
    s1.expect_no_publish().await;

    // Retain Handling 2 with Retain As Published: nothing at subscribe, RETAIN kept live.
    let mut s2 = v5::connect(&broker, "v5-ret-s2").await;
    let mut f = Filter::new("cfg/#", QoS::AtLeastOnce);
    f.retain_forward_rule = RetainForwardRule::Never;
    f.preserve_retain = true;
    s2.subscribe_filter(f).await;
    s2.expect_no_publish().await;
    publisher
        .publish("cfg/a", QoS::AtLeastOnce, true, b"A2")
        .await;
    let p = s2.recv_publish().await;
    assert_eq!((&p.payload[..], p.retain), (&b"A2"[..], true));
    // Without Retain As Published the live copy has RETAIN 0.
    let p = s0.recv_publish().await;
    assert_eq!((&p.payload[..], p.retain), (&b"A2"[..], false));

    // Clearing.
    publisher
        .publish("cfg/a", QoS::AtLeastOnce, true, b"")
        .await;
    publisher
        .publish("cfg/b", QoS::AtLeastOnce, true, b"")
        .await;
    wait_until("retained store empty", || {
        broker.handle.retained_count() == 0
    })
    .await;
    let mut s3 = v5::connect(&broker, "v5-ret-s3").await;
    s3.subscribe("cfg/#", QoS::AtLeastOnce).await;
    s3.expect_no_publish().await;
    broker.stop().await;
}

/// Clean Start 0 with a Session Expiry Interval keeps the session across a DISCONNECT
/// ([MQTT-3.1.2-23]); reconnecting resumes it with Session Present 1 ([MQTT-3.1.2-5],
/// [MQTT-3.2.2-3]) and delivers the QoS 1 and QoS 2 messages queued meanwhile, in order, with
/// their properties.
#[tokio::test]
async fn v5_persistent_session_receives_messages_queued_offline() {
    use v5::QoS;
    let broker = TestBroker::start().await;
    let persistent = || {
        let mut o = v5::options(&broker, "v5-persist");
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(60));
        o
    };
    let mut c = v5::connect_with(persistent()).await;
    assert!(!c.connack.session_present);
    c.subscribe("queue/#", QoS::ExactlyOnce).await;
    c.disconnect().await;
    wait_until("subscriber offline", || {
        broker
            .handle
            .stats()
            .clients_connected
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
    })
    .await;

    let mut publisher = v5::connect(&broker, "v5-persist-pub").await;
    for i in 0..6 {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        let props = v5::PublishProperties {
            user_properties: vec![("seq".into(), i.to_string())],
            ..Default::default()
        };
        publisher
            .publish_props("queue/work", qos, false, format!("m{i}").as_bytes(), props)
            .await;
    }

    let mut c = v5::connect_with(persistent()).await;
    assert!(c.connack.session_present, "[MQTT-3.2.2-3]");
    for i in 0..6 {
        let p = c.recv_publish().await;
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        assert_eq!(p.payload, Bytes::from(format!("m{i}")));
        assert_eq!(p.qos, qos);
        assert_eq!(
            v5::props(&p).user_properties,
            vec![("seq".to_owned(), i.to_string())]
        );
    }
    c.expect_no_publish().await;
    c.disconnect().await;

    // Clean Start 1 discards the session ([MQTT-3.1.2-4]).
    let mut o = v5::options(&broker, "v5-persist");
    o.set_clean_start(true);
    let c = v5::connect_with(o).await;
    assert!(!c.connack.session_present, "[MQTT-3.2.2-2]");
    broker.stop().await;
}

/// An MQTT 5 will is published with its properties when the client's connection drops
/// ([MQTT-3.1.2-8]), not after a normal DISCONNECT ([MQTT-3.1.2-10]).
#[tokio::test]
async fn v5_will_with_properties_on_abrupt_disconnect() {
    use v5::QoS;
    let broker = TestBroker::start().await;
    let mut watcher = v5::connect(&broker, "v5-will-watch").await;
    watcher.subscribe("lwt/#", QoS::ExactlyOnce).await;

    let will_props = v5::LastWillProperties {
        delay_interval: None,
        payload_format_indicator: Some(1),
        message_expiry_interval: None,
        content_type: Some("text/plain".into()),
        response_topic: Some("lwt/ack".into()),
        correlation_data: Some(Bytes::from_static(b"cd")),
        user_properties: vec![("why".into(), "crash".into())],
    };
    let mut o = v5::options(&broker, "v5-will-clean");
    o.set_last_will(v5::LastWill::new(
        "lwt/clean",
        "no",
        QoS::AtLeastOnce,
        false,
        None,
    ));
    v5::connect_with(o).await.disconnect().await;

    let mut o = v5::options(&broker, "v5-will-dies");
    o.set_last_will(v5::LastWill::new(
        "lwt/dies",
        "offline",
        QoS::ExactlyOnce,
        false,
        Some(will_props),
    ));
    v5::connect_with(o).await.kill().await;

    let p = watcher.recv_publish().await;
    assert_eq!(v5::topic(&p), "lwt/dies");
    assert_eq!(&p.payload[..], b"offline");
    assert_eq!(p.qos, QoS::ExactlyOnce);
    let got = v5::props(&p);
    assert_eq!(got.payload_format_indicator, Some(1));
    assert_eq!(got.content_type.as_deref(), Some("text/plain"));
    assert_eq!(got.response_topic.as_deref(), Some("lwt/ack"));
    assert_eq!(got.correlation_data.as_deref(), Some(&b"cd"[..]));
    assert_eq!(
        got.user_properties,
        vec![("why".to_owned(), "crash".to_owned())]
    );
    watcher.expect_no_publish().await;
    broker.stop().await;
}

/// A shared subscription delivers each message to exactly one member of the group
/// (MQTT 5.0 §4.8.2, [MQTT-4.8.2-3] at the member's granted QoS); Midge takes turns
/// (round-robin), so two connected members of one group get half each.
#[tokio::test]
async fn v5_shared_subscription_round_robin() {
    use v5::QoS;
    let broker = TestBroker::start().await;
    let mut w1 = v5::connect(&broker, "v5-share-1").await;
    let mut w2 = v5::connect(&broker, "v5-share-2").await;
    w1.subscribe("$share/workers/tasks/+", QoS::AtLeastOnce)
        .await;
    w2.subscribe("$share/workers/tasks/+", QoS::AtLeastOnce)
        .await;
    let mut publisher = v5::connect(&broker, "v5-share-pub").await;
    const N: usize = 10;
    for i in 0..N {
        publisher
            .publish(
                "tasks/t",
                QoS::AtLeastOnce,
                false,
                format!("{i}").as_bytes(),
            )
            .await;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let (mut n1, mut n2) = (0, 0);
    let deadline = Instant::now() + WAIT;
    while n1 + n2 < N {
        assert!(
            Instant::now() < deadline,
            "only {} of {N} delivered",
            n1 + n2
        );
        tokio::select! {
            p = w1.recv_publish() => { n1 += 1; *seen.entry(String::from_utf8_lossy(&p.payload).into_owned()).or_default() += 1; }
            p = w2.recv_publish() => { n2 += 1; *seen.entry(String::from_utf8_lossy(&p.payload).into_owned()).or_default() += 1; }
        }
    }
    assert_eq!(seen.len(), N, "every message delivered: {seen:?}");
    assert!(
        seen.values().all(|&c| c == 1),
        "each message once: {seen:?}"
    );
    assert_eq!(
        (n1, n2),
        (N / 2, N / 2),
        "round-robin between the two members"
    );
    w1.expect_no_publish().await;
    w2.expect_no_publish().await;
    broker.stop().await;
}

/// Topic aliases set by a rumqttc v5 publisher are accepted up to the Topic Alias Maximum the
/// broker returned ([MQTT-3.3.2-12]), may be remapped, and are resolved before forwarding: a
/// subscriber that allows no aliases gets full topic names ([MQTT-3.3.2-11]); one that allows
/// four gets aliases within 1..=4 that resolve to the right topics ([MQTT-3.1.2-26]).
#[tokio::test]
async fn v5_topic_alias_from_rumqttc_publisher() {
    use v5::QoS;
    let broker = TestBroker::start().await;
    let mut plain = v5::connect(&broker, "v5-alias-plain").await;
    plain.subscribe("alias/#", QoS::AtLeastOnce).await;
    let mut o = v5::options(&broker, "v5-alias-aware");
    o.set_topic_alias_max(Some(4));
    let mut aware = v5::connect_with(o).await;
    aware.subscribe("alias/#", QoS::AtLeastOnce).await;

    let mut publisher = v5::connect(&broker, "v5-alias-pub").await;
    let max = publisher
        .connack
        .properties
        .as_ref()
        .and_then(|p| p.topic_alias_max)
        .unwrap_or(0);
    assert!(max >= 2, "broker offers topic aliases (got maximum {max})");
    let alias = |a: u16| v5::PublishProperties {
        topic_alias: Some(a),
        ..Default::default()
    };
    let sends = [
        ("alias/first", 1, "one"),
        ("", 1, "two"),
        ("alias/second", max, "three"),
        ("", max, "four"),
        ("alias/remapped", 1, "five"),
        ("", 1, "six"),
        ("", max, "seven"),
    ];
    for (topic, a, payload) in sends {
        publisher
            .publish_props(topic, QoS::AtLeastOnce, false, payload.as_bytes(), alias(a))
            .await;
    }
    let expected = [
        ("alias/first", "one"),
        ("alias/first", "two"),
        ("alias/second", "three"),
        ("alias/second", "four"),
        ("alias/remapped", "five"),
        ("alias/remapped", "six"),
        ("alias/second", "seven"),
    ];
    for (topic, payload) in expected {
        let p = plain.recv_publish().await;
        assert_eq!(
            (v5::topic(&p).as_str(), &p.payload[..]),
            (topic, payload.as_bytes())
        );
        assert_eq!(v5::props(&p).topic_alias, None);
    }
    let mut map: HashMap<u16, String> = HashMap::new();
    for (topic, payload) in expected {
        let p = aware.recv_publish().await;
        let name = v5::topic(&p);
        let resolved = match v5::props(&p).topic_alias {
            Some(a) => {
                assert!(
                    (1..=4).contains(&a),
                    "alias {a} outside the client's maximum"
                );
                if name.is_empty() {
                    map.get(&a).cloned().expect("alias used before it was set")
                } else {
                    map.insert(a, name.clone());
                    name
                }
            }
            None => name,
        };
        assert_eq!(
            (resolved.as_str(), &p.payload[..]),
            (topic, payload.as_bytes())
        );
    }
    plain.expect_no_publish().await;
    aware.expect_no_publish().await;
    broker.stop().await;
}

/// Unacknowledged QoS 1 and QoS 2 deliveries are resent with DUP 1 and their original Packet
/// Identifiers when a Clean Session 0 client reconnects ([MQTT-4.4.0-1], [MQTT-3.3.1-1]); once
/// acknowledged, they are not sent again (§4.3.2, §4.3.3: the flow ends with PUBACK/PUBCOMP).
#[tokio::test]
async fn v311_unacknowledged_messages_resent_with_dup_after_reconnect() {
    use rumqttc::QoS;
    let broker = TestBroker::start().await;
    let persistent = || {
        let mut o = v3::options(&broker, "v3-resend");
        o.set_clean_session(false);
        o.set_manual_acks(true);
        o
    };
    let mut c = v3::connect_with(persistent()).await;
    c.subscribe("resend/#", QoS::ExactlyOnce).await;
    let mut publisher = v3::connect(&broker, "v3-resend-pub").await;
    publisher
        .publish("resend/1", QoS::AtLeastOnce, false, b"one")
        .await;
    publisher
        .publish("resend/2", QoS::ExactlyOnce, false, b"two")
        .await;
    let first = c.recv_publish().await;
    let second = c.recv_publish().await;
    assert_eq!(
        (&first.payload[..], first.qos, first.dup),
        (&b"one"[..], QoS::AtLeastOnce, false)
    );
    assert_eq!(
        (&second.payload[..], second.qos, second.dup),
        (&b"two"[..], QoS::ExactlyOnce, false)
    );
    // Lost connection before acknowledging either.
    c.kill().await;

    let mut c = v3::connect_with(persistent()).await;
    assert!(c.connack.session_present);
    let again1 = c.recv_publish().await;
    let again2 = c.recv_publish().await;
    assert_eq!(
        (&again1.payload[..], again1.pkid, again1.dup),
        (&b"one"[..], first.pkid, true)
    );
    assert_eq!(
        (&again2.payload[..], again2.pkid, again2.dup),
        (&b"two"[..], second.pkid, true)
    );
    c.client.ack(&again1).await.expect("ack");
    c.client.ack(&again2).await.expect("ack");
    // The QoS 2 flow completes (PUBREL from the broker, answered by rumqttc).
    c.next("PUBREL", |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::PubRel(_))).then_some(())
    })
    .await;
    c.disconnect().await;

    let mut c = v3::connect_with(persistent()).await;
    assert!(c.connack.session_present);
    c.expect_no_publish().await;
    broker.stop().await;
}

/// UNSUBSCRIBE deletes the subscription and stops delivery for that filter only
/// ([MQTT-3.10.4-1], [MQTT-3.10.4-2]) and is answered with UNSUBACK ([MQTT-3.10.4-4]); the
/// client's other subscriptions keep working.
#[tokio::test]
async fn v311_unsubscribe_stops_delivery() {
    use rumqttc::QoS;
    let broker = TestBroker::start().await;
    let mut c = v3::connect(&broker, "v3-unsub").await;
    c.subscribe("u/a/#", QoS::AtLeastOnce).await;
    c.subscribe("u/b/#", QoS::AtLeastOnce).await;
    c.client.unsubscribe("u/a/#").await.expect("unsubscribe");
    c.next("UNSUBACK", |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::UnsubAck(_))).then_some(())
    })
    .await;
    let mut publisher = v3::connect(&broker, "v3-unsub-pub").await;
    publisher
        .publish("u/a/x", QoS::AtLeastOnce, false, b"gone")
        .await;
    publisher
        .publish("u/b/x", QoS::AtLeastOnce, false, b"kept")
        .await;
    let p = c.recv_publish().await;
    assert_eq!((p.topic.as_str(), &p.payload[..]), ("u/b/x", &b"kept"[..]));
    c.expect_no_publish().await;
    broker.stop().await;
}

/// The broker never has more unacknowledged QoS 1/2 PUBLISH packets towards a client than the
/// client's Receive Maximum ([MQTT-3.3.4-9]); each PUBACK lets the next one through.
#[tokio::test]
async fn v5_receive_maximum_of_rumqttc_client_is_respected() {
    use v5::QoS;
    let broker = TestBroker::start().await;
    let mut o = v5::options(&broker, "v5-recvmax");
    o.set_receive_maximum(Some(2));
    o.set_manual_acks(true);
    let mut c = v5::connect_with(o).await;
    c.subscribe("flow/#", QoS::AtLeastOnce).await;
    let mut publisher = v5::connect(&broker, "v5-recvmax-pub").await;
    for i in 0..5 {
        publisher
            .publish("flow/x", QoS::AtLeastOnce, false, format!("{i}").as_bytes())
            .await;
    }
    let p0 = c.recv_publish().await;
    let p1 = c.recv_publish().await;
    assert_eq!((&p0.payload[..], &p1.payload[..]), (&b"0"[..], &b"1"[..]));
    c.expect_no_publish().await;
    c.ack(&p0).await;
    let p2 = c.recv_publish().await;
    assert_eq!(&p2.payload[..], b"2");
    c.expect_no_publish().await;
    c.ack(&p1).await;
    c.ack(&p2).await;
    let p3 = c.recv_publish().await;
    let p4 = c.recv_publish().await;
    assert_eq!((&p3.payload[..], &p4.payload[..]), (&b"3"[..], &b"4"[..]));
    broker.stop().await;
}

/// A message larger than the client's Maximum Packet Size is not sent to it
/// ([MQTT-3.1.2-24]) and is treated as delivered ([MQTT-3.1.2-25]): later messages still
/// arrive and the connection stays up.
#[tokio::test]
async fn v5_maximum_packet_size_of_rumqttc_client_is_respected() {
    use v5::QoS;
    let broker = TestBroker::start().await;
    let mut o = v5::options(&broker, "v5-maxpkt");
    o.set_max_packet_size(Some(128));
    let mut c = v5::connect_with(o).await;
    c.subscribe("size/#", QoS::AtLeastOnce).await;
    let mut publisher = v5::connect(&broker, "v5-maxpkt-pub").await;
    publisher
        .publish("size/big", QoS::AtLeastOnce, false, &[b'x'; 200])
        .await;
    publisher
        .publish("size/small", QoS::AtLeastOnce, false, b"fits")
        .await;
    let p = c.recv_publish().await;
    assert_eq!(
        (v5::topic(&p).as_str(), &p.payload[..]),
        ("size/small", &b"fits"[..])
    );
    c.expect_no_publish().await;
    broker.stop().await;
}

/// A second connection with the same Client Identifier takes the session over: the first is
/// closed ([MQTT-3.1.4-3]), the second resumes the session (Clean Start 0, [MQTT-3.2.2-3]) and
/// gets its messages.
///
/// Midge sends the old connection DISCONNECT 0x8E with Remaining Length 1 (no Property Length,
/// allowed by MQTT 5.0 §3.14.2.2.1); rumqttc 0.25 cannot decode that short form and reports
/// the connection as closed abruptly, so the reason code is checked here only when rumqttc
/// decodes it (the raw-packet test `sessions.rs` checks the exact bytes).
#[tokio::test]
async fn v5_session_takeover_by_second_rumqttc_client() {
    use v5::QoS;
    let broker = TestBroker::start().await;
    let persistent = || {
        let mut o = v5::options(&broker, "v5-takeover");
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(30));
        o
    };
    let mut first = v5::connect_with(persistent()).await;
    first.subscribe("take/#", QoS::AtLeastOnce).await;
    let mut second = v5::connect_with(persistent()).await;
    assert!(
        second.connack.session_present,
        "[MQTT-3.2.2-3] the session is resumed"
    );
    let why = first.closed().await;
    assert!(
        why.contains("SessionTakenOver") || why.contains("closed by peer"),
        "first connection ended with: {why}"
    );

    let mut publisher = v5::connect(&broker, "v5-takeover-pub").await;
    publisher
        .publish("take/x", QoS::AtLeastOnce, false, b"to the new owner")
        .await;
    let p = second.recv_publish().await;
    assert_eq!(&p.payload[..], b"to the new owner");
    broker.stop().await;
}

/// Will Delay Interval (MQTT 5 §3.1.3.2.2): the will of a lost connection is published only
/// after the delay, and not at all if the client reconnects to its session within the delay
/// ([MQTT-3.1.3-9]).
#[tokio::test]
async fn v5_will_delay_interval() {
    use v5::QoS;
    let broker = TestBroker::start().await;
    let mut watcher = v5::connect(&broker, "v5-wdelay-watch").await;
    watcher.subscribe("delayed/#", QoS::AtLeastOnce).await;
    let with_will = |id: &str, topic: &str, delay: u32| {
        let mut o = v5::options(&broker, id);
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(30));
        let props = v5::LastWillProperties {
            delay_interval: Some(delay),
            payload_format_indicator: None,
            message_expiry_interval: None,
            content_type: None,
            response_topic: None,
            correlation_data: None,
            user_properties: Vec::new(),
        };
        o.set_last_will(v5::LastWill::new(
            topic,
            "late",
            QoS::AtLeastOnce,
            false,
            Some(props),
        ));
        o
    };

    // Comes back within its delay: no will.
    let back = v5::connect_with(with_will("v5-wdelay-back", "delayed/back", 2)).await;
    back.kill().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _back = v5::connect_with(with_will("v5-wdelay-back", "delayed/back", 2)).await;

    // Stays away: the will comes after about one second, not at once.
    let lost = v5::connect_with(with_will("v5-wdelay-lost", "delayed/lost", 1)).await;
    let killed_at = Instant::now();
    lost.kill().await;
    let p = watcher.recv_publish().await;
    let waited = killed_at.elapsed();
    assert_eq!(
        (v5::topic(&p).as_str(), &p.payload[..]),
        ("delayed/lost", &b"late"[..])
    );
    assert!(
        waited >= Duration::from_millis(900),
        "will published after {waited:?}, before its 1 s delay"
    );
    // By now the first client's 2 s delay would also have ended had the will not been
    // cancelled by the reconnection.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    watcher.expect_no_publish().await;
    broker.stop().await;
}

/// A burst of 300 QoS 1 messages (3.1.1) and 300 QoS 2 messages (5), published without waiting
/// for each acknowledgement, reaches a subscriber complete, once each and in order
/// ([MQTT-4.6.0-6]), through the broker's inflight window and queue (§4.9 flow control).
#[tokio::test]
async fn burst_of_qos1_and_qos2_messages_arrives_complete_and_in_order() {
    const N: usize = 300;
    let broker = TestBroker::start().await;

    let mut sub = v3::connect(&broker, "v3-burst-sub").await;
    sub.subscribe("burst/v3", rumqttc::QoS::AtLeastOnce).await;
    let publisher = v3::connect(&broker, "v3-burst-pub").await;
    for i in 0..N {
        publisher
            .client
            .publish("burst/v3", rumqttc::QoS::AtLeastOnce, false, i.to_string())
            .await
            .expect("publish");
    }
    for i in 0..N {
        let p = sub.recv_publish().await;
        assert_eq!(p.payload, Bytes::from(i.to_string()), "3.1.1 message {i}");
        assert_eq!(p.qos, rumqttc::QoS::AtLeastOnce);
    }
    sub.expect_no_publish().await;

    let mut sub = v5::connect(&broker, "v5-burst-sub").await;
    sub.subscribe("burst/v5", v5::QoS::ExactlyOnce).await;
    let publisher = v5::connect(&broker, "v5-burst-pub").await;
    for i in 0..N {
        publisher
            .client
            .publish("burst/v5", v5::QoS::ExactlyOnce, false, i.to_string())
            .await
            .expect("publish");
    }
    for i in 0..N {
        let p = sub.recv_publish().await;
        assert_eq!(p.payload, Bytes::from(i.to_string()), "MQTT 5 message {i}");
        assert_eq!(p.qos, v5::QoS::ExactlyOnce);
        assert!(!p.dup);
    }
    sub.expect_no_publish().await;
    broker.stop().await;
}
