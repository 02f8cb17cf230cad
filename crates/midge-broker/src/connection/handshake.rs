//! CONNECT → CONNACK: validation, authentication (with MQTT 5 AUTH exchanges), session
//! claim or takeover, and the CONNACK properties that advertise what the broker supports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use midge_proto::{
    Auth, ByteString, ConnAck, Connect, DecodeError, Decoder, Packet, Properties, Property,
    ProtocolVersion, QoS, ReasonCode,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use super::{Negotiated, read_some};
use crate::auth::{AuthDecision, AuthRequest};
use crate::broker::Shared;
use crate::session::{Claim, Session, Takeover};

/// A connection that completed CONNECT: its session, settings, takeover channel and a write
/// buffer holding the CONNACK.
pub(super) type Accepted = (
    Box<Session>,
    Negotiated,
    oneshot::Receiver<Takeover>,
    BytesMut,
    ConnectionCount,
);

/// Reads the next packet within the CONNECT timeout.
async fn next_packet<R: AsyncRead + Unpin>(
    reader: &mut R,
    rbuf: &mut BytesMut,
    decoder: &mut Decoder,
    deadline: tokio::time::Instant,
) -> Result<Packet, Option<DecodeError>> {
    loop {
        match decoder.decode(rbuf) {
            Ok(Some(p)) => return Ok(p),
            Ok(None) => {}
            Err(e) => return Err(Some(e)),
        }
        let mut hint = super::MIN_READ;
        match tokio::time::timeout_at(deadline, read_some(reader, rbuf, &mut hint)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Err(None),
        }
    }
}

async fn refuse<W: AsyncWrite + Unpin>(
    writer: &mut W,
    client_max: u32,
    version: ProtocolVersion,
    code: ReasonCode,
    reason: Option<&str>,
) {
    let mut ack = ConnAck::new(code, false);
    if let (Some(r), true) = (reason, version.is_v5()) {
        ack.properties
            .push(Property::ReasonString(ByteString::from(r)));
        // The Reason String is left out if it would exceed the client's Maximum Packet Size
        // ([MQTT-3.2.2-19]).
        let fits = Packet::ConnAck(ack.clone())
            .encoded_len(version)
            .is_ok_and(|len| len <= client_max as usize);
        if !fits {
            ack.properties = Default::default();
        }
    }
    // MQTT 3 has no CONNACK for some reasons: then the connection is just closed.
    if (version.is_v5() || code.to_v3_connack().is_some())
        && let Ok(bytes) = Packet::ConnAck(ack).to_bytes(version)
    {
        let _ = tokio::time::timeout(Duration::from_secs(2), writer.write_all(&bytes)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;
}

/// Runs the CONNECT handshake. Returns `None` when the client was refused or went away (the
/// refusal has been written).
#[allow(clippy::too_many_lines)]
pub(super) async fn accept<R, W>(
    shared: &Arc<Shared>,
    connection: u64,
    peer: SocketAddr,
    reader: &mut R,
    writer: &mut W,
    rbuf: &mut BytesMut,
    decoder: &mut Decoder,
) -> Option<Accepted>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let config = &shared.config;
    // Until CONNECT is read, the client's Maximum Packet Size is unknown.
    let client_max = u32::MAX;
    let deadline = tokio::time::Instant::now() + config.limits.connect_timeout();
    let connect: Box<Connect> = match next_packet(reader, rbuf, decoder, deadline).await {
        Ok(Packet::Connect(c)) => c,
        Ok(_) => return None,
        Err(Some(e)) => {
            tracing::debug!(%peer, error = %e, "bad CONNECT");
            match e {
                // [MQTT-3.1.2-2]: answer an unsupported level with return code 0x01.
                DecodeError::UnsupportedProtocolLevel(_)
                | DecodeError::InvalidProtocolName { .. } => {
                    refuse(
                        writer,
                        client_max,
                        ProtocolVersion::V3_1_1,
                        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                        None,
                    )
                    .await;
                }
                _ => {
                    let _ = writer.shutdown().await;
                }
            }
            return None;
        }
        Err(None) => return None,
    };
    let version = connect.protocol_version;
    let client_max = connect.properties.maximum_packet_size().unwrap_or(u32::MAX);
    let v5 = version.is_v5();

    // Connection limit.
    let max = config.limits.max_connections;
    let current = shared.connections.fetch_add(1, Ordering::AcqRel) + 1;
    let guard = ConnectionCount(shared.clone());
    if max != 0 && current > max {
        tracing::warn!(%peer, max, "connection refused: max_connections reached");
        refuse(
            writer,
            client_max,
            version,
            ReasonCode::QUOTA_EXCEEDED,
            Some("too many connections"),
        )
        .await;
        return None;
    }

    // Client identifier ([MQTT-3.1.3-7], [MQTT-3.1.3-8]; MQTT 5 [MQTT-3.1.3-6]).
    let mut assigned = false;
    let client_id = if connect.client_id.is_empty() {
        let allowed = config.session.allow_zero_length_clientid
            && match version {
                ProtocolVersion::V3_1 => false,
                ProtocolVersion::V3_1_1 => connect.clean_start,
                ProtocolVersion::V5 => true,
            };
        if !allowed {
            refuse(
                writer,
                client_max,
                version,
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                None,
            )
            .await;
            return None;
        }
        assigned = true;
        ByteString::from(format!(
            "{}{:016x}",
            config.session.auto_id_prefix,
            shared.next_id() ^ 0x9e37_79b9_7f4a_7c15
        ))
    } else {
        connect.client_id.clone()
    };

    // Keep Alive ([MQTT-3.1.2-22], Server Keep Alive [MQTT-3.2.2-21]).
    let mut keep_alive = connect.keep_alive;
    let mut server_keep_alive = None;
    let max_ka = config.mqtt.max_keepalive;
    if v5 {
        if config.mqtt.server_keep_alive != 0 {
            keep_alive = config.mqtt.server_keep_alive;
            server_keep_alive = Some(keep_alive);
        } else if max_ka != 0 && (keep_alive == 0 || keep_alive > max_ka) {
            keep_alive = max_ka;
            server_keep_alive = Some(keep_alive);
        }
    } else if max_ka != 0 && (keep_alive == 0 || keep_alive > max_ka) {
        refuse(
            writer,
            client_max,
            version,
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            None,
        )
        .await;
        return None;
    }

    // Will ([MQTT-3.2.2-12], [MQTT-3.2.2-13]).
    if let Some(will) = &connect.will {
        if will.qos > config.mqtt.maximum_qos() {
            refuse(
                writer,
                client_max,
                version,
                ReasonCode::QOS_NOT_SUPPORTED,
                Some("will QoS not supported"),
            )
            .await;
            return None;
        }
        if will.retain && !config.retain.available {
            refuse(
                writer,
                client_max,
                version,
                ReasonCode::RETAIN_NOT_SUPPORTED,
                Some("retain not supported"),
            )
            .await;
            return None;
        }
    }

    // Authentication, with the MQTT 5 AUTH exchange when a method is given (§4.12).
    let method = connect.properties.authentication_method().cloned();
    let mut decision = shared
        .authenticator
        .authenticate(AuthRequest {
            client_id: &client_id,
            username: connect.username.as_deref(),
            password: connect.password.as_deref(),
            method: method.as_deref(),
            data: connect.properties.authentication_data().map(|d| d.as_ref()),
            peer,
        })
        .await;
    let final_auth_data = loop {
        match decision {
            AuthDecision::Allow { data } => break data,
            AuthDecision::Deny(code) => {
                tracing::info!(%peer, client_id = %client_id, reason = %code, "authentication failed");
                refuse(writer, client_max, version, code, None).await;
                return None;
            }
            AuthDecision::Continue { data } => {
                let Some(m) = method.clone().filter(|_| v5) else {
                    refuse(
                        writer,
                        client_max,
                        version,
                        ReasonCode::NOT_AUTHORIZED,
                        None,
                    )
                    .await;
                    return None;
                };
                let auth = Packet::Auth(Auth {
                    reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
                    properties: Properties::new()
                        .with(Property::AuthenticationMethod(m.clone()))
                        .with(Property::AuthenticationData(data)),
                });
                let Ok(bytes) = auth.to_bytes(version) else {
                    return None;
                };
                if writer.write_all(&bytes).await.is_err() {
                    return None;
                }
                match next_packet(reader, rbuf, decoder, deadline).await {
                    Ok(Packet::Auth(a))
                        if a.reason_code == ReasonCode::CONTINUE_AUTHENTICATION
                            && a.properties.authentication_method() == Some(&m) =>
                    {
                        decision = shared
                            .authenticator
                            .continue_auth(
                                &client_id,
                                &m,
                                a.properties.authentication_data().map(|d| d.as_ref()),
                            )
                            .await;
                    }
                    // "The Client can close the connection at any point in this process. It
                    // MAY send a DISCONNECT packet before doing so" (§4.12): not an error, so
                    // no CONNACK.
                    Ok(Packet::Disconnect(_)) | Err(None) => {
                        let _ = writer.shutdown().await;
                        return None;
                    }
                    _ => {
                        refuse(
                            writer,
                            client_max,
                            version,
                            ReasonCode::PROTOCOL_ERROR,
                            Some("expected AUTH"),
                        )
                        .await;
                        return None;
                    }
                }
            }
        }
    };

    // Session expiry: MQTT 5 property (default 0); MQTT 3 Clean Session 0 keeps the session.
    let max_expiry = config.session.max_session_expiry_secs;
    let requested_expiry = if v5 {
        connect.properties.session_expiry_interval().unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        match config.session.persistent_client_expiration_secs {
            0 => u32::MAX,
            secs => secs,
        }
    };
    let expiry = requested_expiry.min(max_expiry);

    // Claim the session: resume, take over, or start afresh.
    let (kick_tx, kick_rx) = oneshot::channel();
    let claim = shared
        .registry
        .claim(&client_id, connection, kick_tx, connect.clean_start);
    let previous = match claim {
        Claim::Vacant => None,
        Claim::Resumed(s) => Some(s),
        Claim::TakingOver(rx) => tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .ok()
            .and_then(Result::ok),
    };
    let (mut session, session_present) = match previous {
        Some(mut s) if !connect.clean_start => {
            // Reconnecting in time cancels a delayed will ([MQTT-3.1.3-9]).
            s.pending_will = None;
            (s, true)
        }
        Some(old) => {
            shared.end_session(old, None);
            (shared.new_session(client_id.clone()), false)
        }
        None => (shared.new_session(client_id.clone()), false),
    };
    session.expiry_interval = expiry;
    session.offline_since_ms = None;
    // A persistent session (expiry > 0) is mirrored in the store from now on; one resumed
    // with expiry 0 stops being stored and is deleted from the store.
    if shared.store.is_some() {
        let was_persistent = session.mailbox.is_persistent();
        let persistent = expiry != 0;
        session.mailbox.set_persistent(persistent);
        if persistent {
            shared.store_ops(vec![midge_store::Op::PutSession {
                client_id: client_id.to_string(),
                session: crate::persist::session_record(&session),
            }]);
        } else if was_persistent {
            shared.store_ops(vec![midge_store::Op::DeleteSession {
                client_id: client_id.to_string(),
            }]);
        }
    }
    let receive_maximum = connect.properties.receive_maximum().unwrap_or(u16::MAX);
    session
        .outgoing
        .set_receive_maximum(receive_maximum.min(config.limits.max_inflight_messages));
    session.incoming.set_receive_maximum(if v5 {
        config.limits.receive_maximum
    } else {
        u16::MAX
    });

    // CONNACK, advertising what the broker supports (MQTT 5.0 §3.2.2.3).
    let mut ack = ConnAck::new(ReasonCode::SUCCESS, session_present);
    if v5 {
        let p = &mut ack.properties;
        if requested_expiry != expiry {
            p.push(Property::SessionExpiryInterval(expiry));
        }
        p.push(Property::ReceiveMaximum(config.limits.receive_maximum));
        if config.mqtt.maximum_qos() != QoS::ExactlyOnce {
            p.push(Property::MaximumQoS(config.mqtt.maximum_qos()));
        }
        if !config.retain.available {
            p.push(Property::RetainAvailable(false));
        }
        p.push(Property::MaximumPacketSize(config.limits.max_packet_size));
        if assigned {
            p.push(Property::AssignedClientIdentifier(client_id.clone()));
        }
        p.push(Property::TopicAliasMaximum(config.mqtt.topic_alias_maximum));
        if !config.mqtt.wildcard_subscriptions {
            p.push(Property::WildcardSubscriptionAvailable(false));
        }
        if !config.mqtt.subscription_identifiers {
            p.push(Property::SubscriptionIdentifierAvailable(false));
        }
        if !config.mqtt.shared_subscriptions {
            p.push(Property::SharedSubscriptionAvailable(false));
        }
        if let Some(ka) = server_keep_alive {
            p.push(Property::ServerKeepAlive(ka));
        }
        if let Some(m) = &method {
            p.push(Property::AuthenticationMethod(m.clone()));
            if let Some(d) = final_auth_data {
                p.push(Property::AuthenticationData(d));
            }
        }
    }
    let mut wbuf = BytesMut::new();
    if Packet::ConnAck(ack).encode(version, &mut wbuf).is_err() {
        return None;
    }
    tracing::debug!(%peer, client_id = %client_id, %version, session_present, "client connected");

    let will = connect.will.as_ref().map(|w| {
        (
            Shared::will_message(w, &client_id),
            w.properties.will_delay_interval().unwrap_or(0),
        )
    });
    let negotiated = Negotiated {
        version,
        keep_alive: Duration::from_secs(u64::from(keep_alive)),
        client_max_packet_size: connect.properties.maximum_packet_size().unwrap_or(u32::MAX),
        client_topic_alias_max: connect.properties.topic_alias_maximum().unwrap_or(0),
        request_problem_info: connect
            .properties
            .request_problem_information()
            .unwrap_or(true),
        will,
        connect_expiry: if v5 { requested_expiry } else { 1 },
        auth_method: method,
        reauth_pending: false,
    };
    // `guard` releases the connection count when the connection task ends.
    Some((session, negotiated, kick_rx, wbuf, guard))
}

/// Decrements the live connection count when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionCount(Arc<Shared>);

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}
