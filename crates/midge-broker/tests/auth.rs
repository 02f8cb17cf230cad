//! The pluggable authenticator and MQTT 5 enhanced authentication (MQTT 5.0 §4.12, §3.15):
//! refusals at CONNECT, a two-step challenge/response with AUTH packets, re-authentication,
//! and AUTH packets from clients that did not ask for enhanced authentication.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use midge_broker::auth::BoxFuture;
use midge_broker::{AuthDecision, AuthRequest, Authenticator, Config, Server};
use midge_proto::{
    Auth, ByteString, ConnAck, Connect, Packet, Properties, Property, ProtocolVersion, QoS,
    ReasonCode,
};
use midge_testkit::{RawClient, TestBroker};

const METHOD: &str = "test-challenge";

/// Denies user "bad" (0x86); for method "test-challenge" sends the challenge "challenge" and
/// accepts the response "response" with final data "ok"; refuses other methods (0x8C).
/// Initial Authentication Data "bad" is refused with 0x86 too (to exercise a denial whose code
/// exists in CONNACK but not in DISCONNECT).
#[derive(Debug)]
struct TestAuth;

impl Authenticator for TestAuth {
    fn authenticate<'a>(&'a self, request: AuthRequest<'a>) -> BoxFuture<'a, AuthDecision> {
        let decision = if request.username == Some("bad") || request.data == Some(b"bad") {
            AuthDecision::Deny(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        } else {
            match request.method {
                None => AuthDecision::Allow { data: None },
                Some(METHOD) => AuthDecision::Continue {
                    data: Bytes::from_static(b"challenge"),
                },
                Some(_) => AuthDecision::Deny(ReasonCode::BAD_AUTHENTICATION_METHOD),
            }
        };
        Box::pin(async move { decision })
    }

    fn continue_auth<'a>(
        &'a self,
        _client_id: &'a str,
        method: &'a str,
        data: Option<&'a [u8]>,
    ) -> BoxFuture<'a, AuthDecision> {
        let decision = if method == METHOD && data == Some(b"response") {
            AuthDecision::Allow {
                data: Some(Bytes::from_static(b"ok")),
            }
        } else {
            AuthDecision::Deny(ReasonCode::NOT_AUTHORIZED)
        };
        Box::pin(async move { decision })
    }
}

/// A broker on 127.0.0.1:0 using [`TestAuth`].
async fn start() -> TestBroker {
    let mut config = Config::default();
    config.listeners[0].bind = "127.0.0.1:0".parse().expect("address");
    config.store.durability = midge_broker::config::DurabilityMode::None;
    let server = Server::bind_with(config, Some(Arc::new(TestAuth)))
        .await
        .expect("bind");
    TestBroker::from_server(server)
}

/// Sends CONNECT and returns the CONNACK, whatever its reason code.
async fn connack(c: &mut RawClient, connect: Connect) -> ConnAck {
    c.send(&Packet::Connect(Box::new(connect))).await;
    match c.recv().await {
        Packet::ConnAck(ack) => ack,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// An MQTT 5 CONNECT naming `method` (and `data`, if any).
fn connect_with_method(id: &str, method: &str, data: Option<&'static [u8]>) -> Connect {
    let mut c = Connect::new(ProtocolVersion::V5, id);
    c.properties
        .push(Property::AuthenticationMethod(ByteString::from(method)));
    if let Some(d) = data {
        c.properties
            .push(Property::AuthenticationData(Bytes::from_static(d)));
    }
    c
}

/// An AUTH packet with `reason`, Authentication Method `method` and optional data.
fn auth(reason: ReasonCode, method: &str, data: Option<&'static [u8]>) -> Packet {
    let mut properties =
        Properties::new().with(Property::AuthenticationMethod(ByteString::from(method)));
    if let Some(d) = data {
        properties.push(Property::AuthenticationData(Bytes::from_static(d)));
    }
    Packet::Auth(Auth {
        reason_code: reason,
        properties,
    })
}

/// Receives the next packet and asserts it is AUTH with `reason`, the test method
/// ([MQTT-4.12.0-5]) and `data`.
async fn expect_auth(c: &mut RawClient, reason: ReasonCode, data: &[u8]) {
    match c.recv().await {
        Packet::Auth(a) => {
            assert_eq!(a.reason_code, reason);
            assert_eq!(
                a.properties.authentication_method().map(|m| &m[..]),
                Some(METHOD),
                "[MQTT-4.12.0-5]"
            );
            assert_eq!(
                a.properties.authentication_data().map(|d| &d[..]),
                Some(data)
            );
        }
        other => panic!("expected AUTH, got {other:?}"),
    }
}

/// Connects with the challenge/response exchange and returns the client.
async fn challenged_client(broker: &TestBroker, id: &str) -> RawClient {
    let mut c = broker.raw(ProtocolVersion::V5).await;
    c.send(&Packet::Connect(Box::new(connect_with_method(
        id, METHOD, None,
    ))))
    .await;
    expect_auth(&mut c, ReasonCode::CONTINUE_AUTHENTICATION, b"challenge").await;
    c.send(&auth(
        ReasonCode::CONTINUE_AUTHENTICATION,
        METHOD,
        Some(b"response"),
    ))
    .await;
    match c.recv().await {
        Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{ack:?}"),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    c
}

/// The authenticator's refusal reaches the client: MQTT 5 CONNACK 0x86 Bad User Name or
/// Password, MQTT 3.1.1 and 3.1 return code 4, then the connection is closed (MQTT 5.0
/// [MQTT-3.2.2-7]; MQTT 3.1.1 [MQTT-3.2.2-5]) and no session is created. Other users pass.
#[tokio::test]
async fn denied_user_gets_0x86_or_return_code_4() {
    let broker = start().await;
    let mut bad5 = broker.raw(ProtocolVersion::V5).await;
    let mut connect = Connect::new(ProtocolVersion::V5, "b5");
    connect.username = Some(ByteString::from("bad"));
    let ack = connack(&mut bad5, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    assert!(!ack.session_present);
    assert_eq!(bad5.expect_closed().await, vec![]);

    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V3_1] {
        let mut bad3 = broker.raw(version).await;
        let mut connect = Connect::new(version, "b3");
        connect.username = Some(ByteString::from("bad"));
        connect.password = Some(Bytes::from_static(b"pw"));
        bad3.send(&Packet::Connect(Box::new(connect))).await;
        bad3.expect_raw_bytes(&[0x20, 0x02, 0x00, 0x04]).await;
        assert_eq!(bad3.expect_closed().await, vec![], "{version}");
    }
    assert_eq!(broker.handle.session_count(), 0);

    let mut good = broker.raw(ProtocolVersion::V3_1_1).await;
    let mut connect = Connect::new(ProtocolVersion::V3_1_1, "g3");
    connect.username = Some(ByteString::from("good"));
    good.connect(connect).await;
    assert_eq!(broker.handle.session_count(), 1);
    broker.stop().await;
}

/// Enhanced authentication during CONNECT: the server sends AUTH 0x18 with the challenge
/// ([MQTT-4.12.0-2]), the client answers AUTH 0x18 ([MQTT-4.12.0-3]), and the server accepts
/// with a CONNACK that carries the same Authentication Method ([MQTT-4.12.0-5]) and the final
/// Authentication Data. The connection then works normally.
#[tokio::test]
async fn challenge_response_during_connect() {
    let broker = start().await;
    let mut c = broker.raw(ProtocolVersion::V5).await;
    c.send(&Packet::Connect(Box::new(connect_with_method(
        "chal", METHOD, None,
    ))))
    .await;
    expect_auth(&mut c, ReasonCode::CONTINUE_AUTHENTICATION, b"challenge").await;
    // No CONNACK before the exchange completes.
    c.expect_nothing(Duration::from_millis(100)).await;
    c.send(&auth(
        ReasonCode::CONTINUE_AUTHENTICATION,
        METHOD,
        Some(b"response"),
    ))
    .await;
    let ack = match c.recv().await {
        Packet::ConnAck(ack) => ack,
        other => panic!("expected CONNACK, got {other:?}"),
    };
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(
        ack.properties.authentication_method().map(|m| &m[..]),
        Some(METHOD),
        "[MQTT-4.12.0-5]"
    );
    assert_eq!(
        ack.properties.authentication_data().map(|d| &d[..]),
        Some(&b"ok"[..])
    );
    c.subscribe("auth/#", QoS::AtMostOnce).await;
    c.publish0("auth/x", b"in").await;
    assert_eq!(&c.recv_publish().await.payload[..], b"in");
    broker.stop().await;
}

/// The server may reject the authentication at any step: a wrong response gets a CONNACK with
/// a reason code of 0x80 or above and the connection is closed ([MQTT-4.12.0-4]); so does an
/// AUTH naming another method ([MQTT-4.12.0-5]) and a packet other than AUTH in the middle
/// of the exchange (MQTT 5.0 §3.1.4, §4.12).
#[tokio::test]
async fn failed_challenge_is_refused() {
    let broker = start().await;
    let cases: [(&str, Packet); 3] = [
        (
            "wrong response",
            auth(ReasonCode::CONTINUE_AUTHENTICATION, METHOD, Some(b"nope")),
        ),
        (
            "other method",
            auth(
                ReasonCode::CONTINUE_AUTHENTICATION,
                "other",
                Some(b"response"),
            ),
        ),
        ("PINGREQ instead of AUTH", Packet::PingReq),
    ];
    for (what, answer) in cases {
        let mut c = broker.raw(ProtocolVersion::V5).await;
        c.send(&Packet::Connect(Box::new(connect_with_method(
            "fail", METHOD, None,
        ))))
        .await;
        expect_auth(&mut c, ReasonCode::CONTINUE_AUTHENTICATION, b"challenge").await;
        c.send(&answer).await;
        let got = c.expect_closed().await;
        match got.as_slice() {
            [] => {}
            [Packet::ConnAck(ack)] => {
                assert!(ack.reason_code.is_error(), "{what}: {ack:?}");
            }
            other => panic!("{what}: unexpected {other:?}"),
        }
    }
    assert_eq!(broker.handle.session_count(), 0);
    broker.stop().await;
}

/// "The Client can close the connection at any point in this process. It MAY send a
/// DISCONNECT packet before doing so" (MQTT 5.0 §4.12): a DISCONNECT during the exchange is
/// not an error, so the server closes without a CONNACK.
#[tokio::test]
async fn client_may_abort_the_exchange_with_disconnect() {
    let broker = start().await;
    let mut c = broker.raw(ProtocolVersion::V5).await;
    c.send(&Packet::Connect(Box::new(connect_with_method(
        "abort", METHOD, None,
    ))))
    .await;
    expect_auth(&mut c, ReasonCode::CONTINUE_AUTHENTICATION, b"challenge").await;
    c.send(&Packet::Disconnect(Default::default())).await;
    assert_eq!(c.expect_closed().await, vec![]);
    assert_eq!(broker.handle.session_count(), 0);
    broker.stop().await;
}

/// A method the authenticator does not support is refused with 0x8C Bad authentication
/// method and the connection closed ([MQTT-4.12.0-1]); with the default authenticator every
/// method is unsupported. Without a method, the default authenticator accepts and the
/// CONNACK carries no Authentication Method ([MQTT-4.12.0-6]).
#[tokio::test]
async fn unsupported_method_gets_0x8c() {
    let default_broker = TestBroker::start().await;
    let custom_broker = start().await;
    for broker in [&default_broker, &custom_broker] {
        let mut c = broker.raw(ProtocolVersion::V5).await;
        let ack = connack(
            &mut c,
            connect_with_method("m", "SCRAM-SHA-256", Some(b"client-first")),
        )
        .await;
        assert_eq!(ack.reason_code, ReasonCode::BAD_AUTHENTICATION_METHOD);
        assert_eq!(c.expect_closed().await, vec![]);
        assert_eq!(broker.handle.session_count(), 0);
    }
    let mut plain = default_broker.raw(ProtocolVersion::V5).await;
    let ack = connack(&mut plain, Connect::new(ProtocolVersion::V5, "plain")).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(ack.properties.authentication_method(), None);
    assert_eq!(ack.properties.authentication_data(), None);
    plain.expect_nothing(Duration::from_millis(100)).await;
    default_broker.stop().await;
    custom_broker.stop().await;
}

/// Re-authentication ([MQTT-4.12.1-1]): a client that authenticated with a method sends AUTH
/// 0x19 with the same method; the server runs the exchange again (AUTH 0x18 challenge, client
/// AUTH 0x18 response) and ends it with AUTH 0x00 Success carrying the method
/// ([MQTT-4.12.0-5]) and the final data. The connection stays up throughout.
#[tokio::test]
async fn reauthentication_succeeds() {
    let broker = start().await;
    let mut c = challenged_client(&broker, "re").await;
    c.subscribe("re/#", QoS::AtMostOnce).await;
    for _ in 0..2 {
        c.send(&auth(ReasonCode::RE_AUTHENTICATE, METHOD, Some(b"again")))
            .await;
        expect_auth(&mut c, ReasonCode::CONTINUE_AUTHENTICATION, b"challenge").await;
        c.send(&auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            METHOD,
            Some(b"response"),
        ))
        .await;
        expect_auth(&mut c, ReasonCode::SUCCESS, b"ok").await;
    }
    c.publish0("re/x", b"still here").await;
    assert_eq!(&c.recv_publish().await.payload[..], b"still here");
    broker.stop().await;
}

/// A failed re-authentication ends the connection with a DISCONNECT whose reason code is
/// valid for DISCONNECT ([MQTT-4.12.1-2], [MQTT-3.14.2-1]): a wrong response (0x87), an
/// authenticator refusal with a CONNACK-only code such as 0x86, and an AUTH 0x19 with another
/// method ([MQTT-4.12.1-1], 0x82).
#[tokio::test]
async fn failed_reauthentication_disconnects() {
    let broker = start().await;

    let mut c = challenged_client(&broker, "f1").await;
    c.send(&auth(ReasonCode::RE_AUTHENTICATE, METHOD, None))
        .await;
    expect_auth(&mut c, ReasonCode::CONTINUE_AUTHENTICATION, b"challenge").await;
    c.send(&auth(
        ReasonCode::CONTINUE_AUTHENTICATION,
        METHOD,
        Some(b"wrong"),
    ))
    .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::NOT_AUTHORIZED),
        "{got:?}"
    );

    let mut c = challenged_client(&broker, "f2").await;
    c.send(&auth(ReasonCode::RE_AUTHENTICATE, METHOD, Some(b"bad")))
        .await;
    let got = c.expect_closed().await;
    let [Packet::Disconnect(d)] = got.as_slice() else {
        panic!("expected a decodable DISCONNECT, got {got:?}");
    };
    assert!(
        d.reason_code.is_error()
            && d.reason_code
                .is_valid_for(midge_proto::PacketType::Disconnect),
        "{d:?}"
    );

    let mut c = challenged_client(&broker, "f3").await;
    c.send(&auth(ReasonCode::RE_AUTHENTICATE, "other", None))
        .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::PROTOCOL_ERROR),
        "{got:?}"
    );
    broker.stop().await;
}

/// A client that did not give an Authentication Method in CONNECT must not send AUTH
/// ([MQTT-4.12.0-7]): the server treats it as a Protocol Error, DISCONNECT 0x82 and close.
#[tokio::test]
async fn auth_without_enhanced_authentication_is_a_protocol_error() {
    let broker = start().await;
    for reason in [
        ReasonCode::RE_AUTHENTICATE,
        ReasonCode::CONTINUE_AUTHENTICATION,
    ] {
        let mut c = broker.client(ProtocolVersion::V5, "noauth").await;
        c.send(&auth(reason, METHOD, Some(b"response"))).await;
        let got = c.expect_closed().await;
        assert!(
            matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::PROTOCOL_ERROR),
            "{reason:?}: {got:?}"
        );
    }
    broker.stop().await;
}

/// Authentication Data without an Authentication Method is a Protocol Error (MQTT 5.0
/// §3.1.2.11.10): the CONNECT is refused (closed, at most with an error CONNACK) and the
/// authenticator is not asked.
#[tokio::test]
async fn authentication_data_without_method_is_refused() {
    let broker = start().await;
    // CONNECT "MQTT" 5, Clean Start, Keep Alive 60, properties: Authentication Data "x",
    // client id "d".
    let bytes = [
        0x10, 0x12, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x04, 0x16, 0x00,
        0x01, b'x', 0x00, 0x01, b'd',
    ];
    let mut c = broker.raw(ProtocolVersion::V5).await;
    c.send_raw(&bytes).await;
    match c.expect_closed().await.as_slice() {
        [] => {}
        [Packet::ConnAck(ack)] => assert!(ack.reason_code.is_error(), "{ack:?}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(broker.handle.session_count(), 0);
    broker.stop().await;
}
