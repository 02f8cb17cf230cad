//! The client against Midge's in-process broker: connect, publish/subscribe at each QoS,
//! properties, request/response, refusals, unsubscribe, limits, keep-alive, transports.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use midge_broker::Config;
use midge_client::{
    Client, ClientError, ConnectOptions, Event, Message, Properties, Property, ProtocolVersion,
    QoS, ReasonCode, ReconnectOptions, RetainHandling, SubscribeFilter, SubscriptionOptions,
    TopicFilter, TopicName, Will,
};
use midge_testkit::TestBroker;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

fn topic(s: &str) -> TopicName {
    TopicName::new(s).expect("valid topic")
}

#[tokio::test]
async fn connects_with_each_protocol_version() {
    let broker = TestBroker::start().await;
    for version in [ProtocolVersion::V3_1, V311, V5] {
        let (client, mut events) = ok(Client::connect(options(broker.addr, version, "c1")).await);
        let connack = client.connack();
        assert!(!connack.session_present);
        assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
        assert_eq!(client.protocol_version(), version);
        assert!(client.is_connected());
        assert!(matches!(
            wait_event(&mut events, |_| true).await,
            Event::Connected(_)
        ));
        if version.is_v5() {
            // The broker advertises its limits.
            assert_eq!(connack.properties.receive_maximum(), Some(256));
            assert!(connack.properties.maximum_packet_size().is_some());
        } else {
            assert!(connack.properties.is_empty());
        }
        ok(client.disconnect().await);
        assert!(events.recv().await.is_none(), "events end after disconnect");
        assert!(matches!(
            client.publish("a", QoS::AtMostOnce, false, "x").await,
            Err(ClientError::Disconnected)
        ));
    }
}

#[tokio::test]
async fn assigned_client_identifier_is_exposed() {
    let broker = TestBroker::start().await;
    let (client, _events) = ok(Client::connect(options(broker.addr, V5, "")).await);
    let assigned = client
        .connack()
        .properties
        .assigned_client_identifier()
        .cloned()
        .expect("assigned id");
    assert!(assigned.starts_with("auto-"), "{assigned}");
    assert_eq!(client.client_id(), assigned);
}

#[tokio::test]
async fn publish_and_subscribe_at_each_qos() {
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let (sub, mut sub_events) = ok(Client::connect(options(broker.addr, version, "sub")).await);
        let (publisher, _) = ok(Client::connect(options(broker.addr, version, "pub")).await);
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let filter = format!("qos/{}/+", qos.as_u8());
            assert_eq!(ok(sub.subscribe(&filter, qos).await), qos);
            let name = format!("qos/{}/x", qos.as_u8());
            let outcome = ok(publisher.publish(&name, qos, false, "hello").await);
            assert_eq!(outcome.qos, qos);
            assert_eq!(outcome.reason_code, ReasonCode::SUCCESS);
            assert_eq!(outcome.packet_id.is_some(), qos != QoS::AtMostOnce);
            let m = next_message(&mut sub_events).await;
            assert_eq!(m.topic, name.as_str());
            assert_eq!(m.payload, Bytes::from_static(b"hello"));
            assert_eq!(m.qos, qos);
            assert!(!m.retain && !m.dup);
        }
        ok(sub.disconnect().await);
        ok(publisher.disconnect().await);
    }
}

#[tokio::test]
async fn puback_reason_code_is_reported() {
    let broker = TestBroker::start().await;
    let (client, _events) = ok(Client::connect(options(broker.addr, V5, "p")).await);
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let outcome = ok(client.publish("nobody/listens", qos, false, "x").await);
        assert_eq!(outcome.reason_code, ReasonCode::NO_MATCHING_SUBSCRIBERS);
    }
}

#[tokio::test]
async fn properties_round_trip() {
    let broker = TestBroker::start().await;
    let (sub, mut events) = ok(Client::connect(options(broker.addr, V5, "sub")).await);
    let (publisher, _) = ok(Client::connect(options(broker.addr, V5, "pub")).await);
    let suback = ok(sub
        .subscribe_with(
            vec![SubscribeFilter {
                filter: TopicFilter::new("props/#").expect("filter"),
                options: SubscriptionOptions::qos(QoS::ExactlyOnce),
            }],
            Properties::new()
                .with(Property::SubscriptionIdentifier(42))
                .with(Property::UserProperty("sub".into(), "prop".into())),
        )
        .await);
    assert_eq!(suback.reason_codes, [ReasonCode::GRANTED_QOS_2]);

    let message = Message::new(topic("props/a"), "{\"t\":1}")
        .with_qos(QoS::AtLeastOnce)
        .with_property(Property::PayloadFormatIndicator(true))
        .with_property(Property::MessageExpiryInterval(3600))
        .with_property(Property::ContentType("application/json".into()))
        .with_property(Property::ResponseTopic(topic("reply/here")))
        .with_property(Property::CorrelationData(Bytes::from_static(b"\x01\x02")))
        .with_user_property("k1", "v1")
        .with_user_property("k1", "v2");
    ok(publisher.publish_message(message).await);

    let m = next_message(&mut events).await;
    let p = &m.properties;
    assert_eq!(p.payload_format_indicator(), Some(true));
    let expiry = p.message_expiry_interval().expect("expiry");
    assert!((3590..=3600).contains(&expiry));
    assert_eq!(p.content_type().map(|s| &**s), Some("application/json"));
    assert_eq!(
        m.response_topic().map(TopicName::as_str),
        Some("reply/here")
    );
    assert_eq!(m.correlation_data().map(|b| &b[..]), Some(&[1u8, 2][..]));
    let users: Vec<_> = m
        .user_properties()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(users, ["k1=v1", "k1=v2"]);
    assert_eq!(m.subscription_identifiers().collect::<Vec<_>>(), [42]);
}

#[tokio::test]
async fn subscription_options_are_sent() {
    let broker = TestBroker::start().await;
    let (client, mut events) = ok(Client::connect(options(broker.addr, V5, "c")).await);
    // No Local: our own publishes are not delivered back.
    let suback = ok(client
        .subscribe_with(
            vec![SubscribeFilter {
                filter: TopicFilter::new("nl/#").expect("filter"),
                options: SubscriptionOptions {
                    no_local: true,
                    ..SubscriptionOptions::qos(QoS::AtLeastOnce)
                },
            }],
            Properties::new(),
        )
        .await);
    assert_eq!(suback.reason_codes, [ReasonCode::GRANTED_QOS_1]);
    ok(client
        .publish("nl/x", QoS::AtLeastOnce, false, "mine")
        .await);
    no_message(&mut events, Duration::from_millis(300)).await;

    // Retain Handling 2 (do not send) and Retain As Published.
    ok(client
        .publish("ret/x", QoS::AtLeastOnce, true, "kept")
        .await);
    ok(client
        .subscribe_with(
            vec![SubscribeFilter {
                filter: TopicFilter::new("ret/#").expect("filter"),
                options: SubscriptionOptions {
                    retain_handling: RetainHandling::DoNotSend,
                    retain_as_published: true,
                    ..SubscriptionOptions::qos(QoS::AtLeastOnce)
                },
            }],
            Properties::new(),
        )
        .await);
    no_message(&mut events, Duration::from_millis(300)).await;
    ok(client
        .publish("ret/x", QoS::AtLeastOnce, true, "again")
        .await);
    let m = next_message(&mut events).await;
    assert!(m.retain, "Retain As Published keeps the flag");
    ok(client.publish("ret/x", QoS::AtLeastOnce, true, "").await);
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let (client, mut events) = ok(Client::connect(options(broker.addr, version, "u")).await);
        ok(client.subscribe("un/+", QoS::AtLeastOnce).await);
        ok(client.publish("un/1", QoS::AtLeastOnce, false, "a").await);
        assert_eq!(next_message(&mut events).await.payload, "a");
        let unsuback = ok(client.unsubscribe("un/+").await);
        if version.is_v5() {
            assert_eq!(unsuback.reason_codes, [ReasonCode::SUCCESS]);
        } else {
            assert!(unsuback.reason_codes.is_empty());
        }
        ok(client.publish("un/1", QoS::AtLeastOnce, false, "b").await);
        no_message(&mut events, Duration::from_millis(300)).await;
        if version.is_v5() {
            let again = ok(client.unsubscribe("un/+").await);
            assert_eq!(again.reason_codes, [ReasonCode::NO_SUBSCRIPTION_EXISTED]);
        }
        ok(client.disconnect().await);
    }
}

#[tokio::test]
async fn refusal_is_a_typed_error_with_the_reason_code() {
    let mut config = Config::default();
    config.session.allow_zero_length_clientid = false;
    let broker = TestBroker::start_with(config).await;
    for version in [V311, V5] {
        let err = Client::connect(options(broker.addr, version, ""))
            .await
            .expect_err("an empty client id is refused");
        match &err {
            ClientError::Refused {
                reason_code,
                connack,
            } => {
                assert_eq!(*reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
                assert_eq!(connack.reason_code, *reason_code);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(
            err.reason_code(),
            Some(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
        );
    }
}

#[tokio::test]
async fn connecting_to_nothing_fails_with_io_error() {
    let port = free_port();
    let opts = ConnectOptions::tcp("127.0.0.1", port).connect_timeout(Duration::from_secs(2));
    assert!(matches!(
        Client::connect(opts).await,
        Err(ClientError::Io(_))
    ));
}

#[tokio::test]
async fn request_response_helper() {
    let broker = TestBroker::start().await;
    let (responder, mut requests) = ok(Client::connect(options(broker.addr, V5, "srv")).await);
    ok(responder.subscribe("svc/upper", QoS::AtLeastOnce).await);
    let serving = tokio::spawn(async move {
        while let Some(request) = requests.next_message().await {
            let text = request.payload_str().unwrap_or_default().to_uppercase();
            if responder.respond(&request, text).await.is_err() {
                break;
            }
        }
    });

    let (client, mut events) = ok(Client::connect(options(broker.addr, V5, "cli")).await);
    let answer = ok(client
        .request("svc/upper", "hello", "resp/cli", Duration::from_secs(5))
        .await);
    assert_eq!(answer.payload, "HELLO");
    assert_eq!(answer.topic, "resp/cli");
    assert_eq!(answer.correlation_data().map(Bytes::len), Some(16));

    // Concurrent requests on one response topic each get their own answer.
    let a = client.request("svc/upper", "one", "resp/cli", Duration::from_secs(5));
    let b = client.request("svc/upper", "two", "resp/cli", Duration::from_secs(5));
    let (a, b) = tokio::join!(a, b);
    assert_eq!(ok(a).payload, "ONE");
    assert_eq!(ok(b).payload, "TWO");

    // Responses are routed to the request, not to the event stream.
    no_message(&mut events, Duration::from_millis(200)).await;

    // Nobody answers: a timeout.
    let err = client
        .request("svc/nobody", "x", "resp/cli", Duration::from_millis(300))
        .await
        .expect_err("no responder");
    assert!(matches!(
        err,
        ClientError::Timeout {
            what: "request",
            ..
        }
    ));

    let (v3, _) = ok(Client::connect(options(broker.addr, V311, "v3")).await);
    assert!(matches!(
        v3.request("svc/upper", "x", "resp/v3", Duration::from_secs(1))
            .await,
        Err(ClientError::RequiresV5(_))
    ));
    serving.abort();
}

#[tokio::test]
async fn too_large_publish_is_refused_before_sending() {
    let mut config = Config::default();
    config.limits.max_packet_size = 1000;
    let broker = TestBroker::start_with(config).await;
    let (client, _events) = ok(Client::connect(options(broker.addr, V5, "big")).await);
    assert_eq!(
        client.connack().properties.maximum_packet_size(),
        Some(1000)
    );
    let err = client
        .publish("big", QoS::AtLeastOnce, false, vec![0u8; 2000])
        .await
        .expect_err("too large");
    assert!(
        matches!(err, ClientError::PacketTooLarge { maximum: 1000, size } if size > 2000),
        "{err:?}"
    );
    // The connection is unharmed.
    ok(client
        .publish("big", QoS::AtLeastOnce, false, vec![0u8; 500])
        .await);
    assert!(client.is_connected());
}

#[tokio::test]
async fn maximum_qos_and_server_keep_alive_are_honoured() {
    let mut config = Config::default();
    config.mqtt.max_qos = 1;
    config.mqtt.server_keep_alive = 7;
    let broker = TestBroker::start_with(config).await;
    let (client, _events) = ok(Client::connect(options(broker.addr, V5, "q")).await);
    assert_eq!(client.keep_alive(), 7);
    let err = client
        .publish("q", QoS::ExactlyOnce, false, "x")
        .await
        .expect_err("QoS 2 is above the maximum");
    assert!(matches!(
        err,
        ClientError::QosNotSupported {
            requested: QoS::ExactlyOnce,
            maximum: QoS::AtLeastOnce
        }
    ));
    ok(client.publish("q", QoS::AtLeastOnce, false, "x").await);
}

#[tokio::test]
async fn will_with_properties_is_published() {
    let broker = TestBroker::start().await;
    let (watcher, mut events) = ok(Client::connect(options(broker.addr, V5, "w")).await);
    ok(watcher.subscribe("wills/#", QoS::AtLeastOnce).await);
    let mut will = Will::new(topic("wills/dying"), "gone");
    will.qos = QoS::AtLeastOnce;
    will.properties
        .push(Property::ContentType("text/plain".into()));
    will.properties
        .push(Property::UserProperty("why".into(), "test".into()));
    let (dying, _) = ok(Client::connect(options(broker.addr, V5, "dying").will(will)).await);
    ok(dying
        .disconnect_with(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE, Properties::new())
        .await);
    let m = next_message(&mut events).await;
    assert_eq!(m.topic, "wills/dying");
    assert_eq!(m.payload, "gone");
    assert_eq!(
        m.properties.content_type().map(|s| &**s),
        Some("text/plain")
    );
    assert_eq!(m.user_properties().count(), 1);
}

#[tokio::test]
async fn missing_pingresp_is_a_keep_alive_timeout() {
    // A "server" that accepts the connection and answers CONNECT, then goes silent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        socket
            .write_all(&[0x20, 0x02, 0x00, 0x00])
            .await
            .expect("CONNACK");
        while matches!(socket.read(&mut buf).await, Ok(1..)) {}
    });
    let opts = options(addr, V311, "ka")
        .keep_alive(Duration::from_secs(1))
        .reconnect(ReconnectOptions::disabled());
    let started = tokio::time::Instant::now();
    let (client, mut events) = ok(Client::connect(opts).await);
    let e = wait_event(&mut events, |e| matches!(e, Event::Disconnected(_))).await;
    assert!(
        matches!(e, Event::Disconnected(ClientError::KeepAliveTimeout(_))),
        "{e:?}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    // Reconnection is off: the client has stopped.
    assert!(
        tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("ends")
            .is_none()
    );
    assert!(!client.is_connected());
    server.abort();
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_transport() {
    // The broker listens on TCP only; a unix socket forwarder stands in front of it.
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mqtt.sock");
    let listener = tokio::net::UnixListener::bind(&path).expect("bind unix");
    let upstream = broker.addr;
    let forwarder = tokio::spawn(async move {
        while let Ok((mut unix, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut tcp) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut unix, &mut tcp).await;
                }
            });
        }
    });
    let (client, mut events) = ok(Client::connect(
        ConnectOptions::unix(&path)
            .client_id("unix")
            .reconnect(fast_reconnect()),
    )
    .await);
    ok(client.subscribe("ux", QoS::ExactlyOnce).await);
    ok(client
        .publish("ux", QoS::ExactlyOnce, false, "over a unix socket")
        .await);
    assert_eq!(
        next_message(&mut events).await.payload,
        "over a unix socket"
    );
    ok(client.disconnect().await);
    forwarder.abort();
}

#[tokio::test]
async fn dropping_every_handle_disconnects() {
    let broker = TestBroker::start().await;
    let (client, events) = ok(Client::connect(options(broker.addr, V5, "drop")).await);
    eventually("one session", || broker.handle.session_count() == 1).await;
    drop(events);
    // Still running: a Client handle exists.
    ok(client.publish("d", QoS::AtLeastOnce, false, "x").await);
    drop(client);
    // Clean Start with expiry 0: the session ends with the connection.
    eventually("the session to end", || broker.handle.session_count() == 0).await;
}

#[tokio::test]
async fn publish_nowait_keeps_many_in_flight() {
    // No queue limit at the broker: this test is about the client, not about drop policies.
    let mut config = Config::default();
    config.limits.max_queued_messages = 0;
    let broker = TestBroker::start_with(config).await;
    let (sub, mut events) = ok(Client::connect(options(broker.addr, V5, "s")).await);
    ok(sub.subscribe("many", QoS::AtLeastOnce).await);
    const N: u32 = 2000;
    let reader = tokio::spawn(async move {
        for i in 0..N {
            let m = next_message(&mut events).await;
            assert_eq!(m.payload, Bytes::from(i.to_be_bytes().to_vec()), "in order");
        }
    });
    let (publisher, _) = ok(Client::connect(options(broker.addr, V5, "p")).await);
    let mut handles = Vec::new();
    for i in 0..N {
        let m = Message::new(topic("many"), i.to_be_bytes().to_vec()).with_qos(QoS::AtLeastOnce);
        handles.push(ok(publisher.publish_nowait(m).await));
    }
    for h in handles {
        ok(tokio::time::timeout(WAIT, h).await.expect("acknowledged"));
    }
    tokio::time::timeout(WAIT, reader)
        .await
        .expect("all delivered")
        .expect("reader");
}

/// The packet observer sees every packet both ways, CONNECT and CONNACK included, in order;
/// received messages carry the Packet Identifier they were delivered with.
#[tokio::test]
async fn packet_observer_and_packet_ids() {
    use std::sync::{Arc, Mutex};

    use midge_client::{Packet, PacketDirection, PacketType};

    let broker = TestBroker::start().await;
    let seen: Arc<Mutex<Vec<(PacketDirection, PacketType)>>> = Arc::default();
    let log = seen.clone();
    let observed = options(broker.addr, V311, "observed").packet_observer(move |d, p: &Packet| {
        log.lock().expect("lock").push((d, p.packet_type()));
    });
    let (client, mut events) = ok(Client::connect(observed).await);
    assert_eq!(
        ok(client.subscribe("obs/#", QoS::AtLeastOnce).await),
        QoS::AtLeastOnce
    );
    ok(client.publish("obs/x", QoS::AtLeastOnce, false, "m").await);
    let m = next_message(&mut events).await;
    assert!(m.packet_id.is_some());
    ok(client.disconnect().await);
    use PacketDirection::{Received, Sent};
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        &seen[..4],
        &[
            (Sent, PacketType::Connect),
            (Received, PacketType::ConnAck),
            (Sent, PacketType::Subscribe),
            (Received, PacketType::SubAck),
        ]
    );
    for expected in [
        (Sent, PacketType::Publish),
        (Received, PacketType::Publish),
        (Sent, PacketType::PubAck),
        (Received, PacketType::PubAck),
    ] {
        assert!(seen.contains(&expected), "{expected:?} not in {seen:?}");
    }
    assert_eq!(seen.last(), Some(&(Sent, PacketType::Disconnect)));
}
