//! One client connection: a task that owns the socket, the codec, the session while
//! connected, and the write buffer.
//!
//! The task reads and decodes every complete packet in each read, handles it (routing a
//! PUBLISH on this task), drains its mailbox into the write buffer as the inflight window
//! allows, and writes many packets per syscall. It stops on DISCONNECT, on a protocol
//! violation (MQTT 5 clients first get a DISCONNECT with the reason code), on keep-alive
//! timeout, on session takeover, or on server shutdown.

mod acks;
mod handshake;
mod outbound;
mod publish;
mod subscribe;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use midge_proto::inflight::OutgoingState;
use midge_proto::{
    ByteString, DecodeError, Decoder, Disconnect, Packet, Properties, Property, ProtocolVersion,
    ReasonCode, TopicName,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, watch};

use crate::broker::Shared;
use crate::message::Message;
use crate::session::{Release, Session, Takeover};

/// Why a connection ended.
#[derive(Debug)]
enum End {
    /// DISCONNECT from the client; `will` is true for reason 0x04.
    ClientDisconnect { will: bool },
    /// The socket closed or failed without DISCONNECT.
    Closed,
    /// The client broke the protocol; MQTT 5 clients are told why.
    Violation(ReasonCode, String),
    /// No packet within 1.5 × Keep Alive.
    KeepAliveTimeout,
    /// Another connection took the session over.
    TakenOver(Takeover),
    /// The server is shutting down.
    Shutdown,
    /// The session's queue overflowed with the disconnect policy.
    QueueOverflow,
}

/// Per-connection settings negotiated at CONNECT.
#[derive(Debug)]
struct Negotiated {
    version: ProtocolVersion,
    keep_alive: Duration,
    /// Largest packet the client accepts.
    client_max_packet_size: u32,
    /// Topic aliases the client accepts from us.
    client_topic_alias_max: u16,
    /// Whether the client wants Reason Strings and User Properties on errors.
    request_problem_info: bool,
    /// The will set at CONNECT.
    will: Option<(Arc<Message>, u32)>,
    /// Session Expiry Interval from CONNECT (0 forbids a non-zero one at DISCONNECT).
    connect_expiry: u32,
    /// Method of an enhanced authentication, for re-authentication.
    auth_method: Option<ByteString>,
    /// A re-authentication challenge was sent and the client's answer is awaited.
    reauth_pending: bool,
}

/// The state of a live connection.
struct Connection {
    shared: Arc<Shared>,
    id: u64,
    peer: SocketAddr,
    session: Box<Session>,
    n: Negotiated,
    wbuf: BytesMut,
    /// Topic aliases the client set (index = alias − 1).
    inbound_aliases: Vec<Option<TopicName>>,
    /// Topic aliases we assigned towards the client.
    outbound_aliases: std::collections::HashMap<TopicName, u16>,
    /// Deliveries taken from the mailbox, reused between drains.
    scratch: Vec<crate::message::Delivery>,
    /// Acknowledgements waiting for store commits.
    acks: acks::Acks,
    /// The store's commit watermark, when there is a store.
    committed: Option<watch::Receiver<midge_store::Ticket>>,
    /// A QoS 2 delivery waits for the commit holding it (see `Delivery::commit`).
    held_for_commit: bool,
}

/// Serves one client on `stream` until it disconnects or the server shuts down.
pub(crate) async fn serve<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut rbuf = BytesMut::new();
    let mut decoder = Decoder::server(shared.config.limits.max_packet_size);
    let id = shared.next_id();
    let accepted = handshake::accept(
        &shared,
        id,
        peer,
        &mut reader,
        &mut writer,
        &mut rbuf,
        &mut decoder,
    )
    .await;
    let Some((session, negotiated, mut kick_rx, wbuf, _count)) = accepted else {
        return;
    };
    shared
        .stats
        .clients_connected
        .fetch_add(1, Ordering::Relaxed);
    let mut conn = Connection {
        shared: shared.clone(),
        id,
        peer,
        session,
        n: negotiated,
        wbuf,
        inbound_aliases: Vec::new(),
        outbound_aliases: std::collections::HashMap::new(),
        scratch: Vec::new(),
        acks: acks::Acks::default(),
        committed: shared.store.as_ref().map(|s| s.writer.committed()),
        held_for_commit: false,
    };
    let end = conn
        .run(
            &mut reader,
            &mut writer,
            &mut rbuf,
            &mut decoder,
            &mut kick_rx,
            shutdown,
        )
        .await;
    shared
        .stats
        .clients_connected
        .fetch_sub(1, Ordering::Relaxed);
    conn.finish(end, &mut writer, &mut kick_rx).await;
}

impl Connection {
    #[allow(clippy::too_many_arguments)]
    async fn run<R, W>(
        &mut self,
        reader: &mut R,
        writer: &mut W,
        rbuf: &mut BytesMut,
        decoder: &mut Decoder,
        kick_rx: &mut oneshot::Receiver<Takeover>,
        mut shutdown: watch::Receiver<bool>,
    ) -> End
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let limits = &self.shared.config.limits;
        let max_wbuf = limits.max_write_buffer.max(64 * 1024);
        let drain_below = max_wbuf / 2;
        let keep_alive = self.n.keep_alive;
        let mut deadline = keep_alive_deadline(keep_alive);
        let mut read_hint = MIN_READ;
        let mailbox = self.session.mailbox.clone();
        // Resend what the session had in flight, then what waited in its queue.
        self.resend_inflight();
        mailbox.set_online(true);
        loop {
            if mailbox.take_overflow() {
                return End::QueueOverflow;
            }
            if let Some(end) = self.flush_acks() {
                return end;
            }
            let draining = self.wbuf.len() < drain_below;
            if draining {
                self.drain_mailbox();
            }
            let waiting_on_store = self.acks.waiting() || (draining && self.held_for_commit);
            let sleep = tokio::time::sleep_until(deadline.into());
            tokio::select! {
                biased;
                _ = shutdown.changed() => return End::Shutdown,
                takeover = &mut *kick_rx => {
                    if let Ok(t) = takeover {
                        return End::TakenOver(t);
                    }
                    // The registry dropped our kick sender without using it: impossible
                    // while we own the slot; keep serving.
                    *kick_rx = oneshot::channel().1;
                }
                res = writer.write_buf(&mut self.wbuf), if !self.wbuf.is_empty() => {
                    match res {
                        Ok(0) | Err(_) => return End::Closed,
                        Ok(n) => {
                            self.shared.stats.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
                            if self.wbuf.is_empty() {
                                // Release the buffer of an idle connection.
                                if self.wbuf.capacity() > MIN_READ * 2 {
                                    self.wbuf = BytesMut::new();
                                }
                                let _ = writer.flush().await;
                            }
                        }
                    }
                }
                res = read_some(reader, rbuf, &mut read_hint), if self.wbuf.len() < max_wbuf => {
                    match res {
                        Ok(0) | Err(_) => return End::Closed,
                        Ok(n) => {
                            self.shared.stats.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                            deadline = keep_alive_deadline(keep_alive);
                            loop {
                                match decoder.decode(rbuf) {
                                    Ok(Some(packet)) => {
                                        if let Some(end) = self.handle(packet).await {
                                            return end;
                                        }
                                    }
                                    Ok(None) => break,
                                    Err(e) => return decode_failure(&e),
                                }
                            }
                            if rbuf.is_empty() && rbuf.capacity() > read_hint.max(MIN_READ) * 2 {
                                // Give back what a burst grew; the next read reserves anew.
                                *rbuf = BytesMut::new();
                            }
                        }
                    }
                }
                _ = mailbox.notified(), if self.wbuf.len() < drain_below => {}
                // A store commit may release waiting acknowledgements.
                _ = committed_changed(&mut self.committed), if waiting_on_store => {}
                // Checked at the top of the loop; listened to even while not draining.
                _ = mailbox.overflow_notified() => {}
                _ = sleep, if !keep_alive.is_zero() => return End::KeepAliveTimeout,
            }
        }
    }

    /// Handles one packet; `Some` ends the connection.
    async fn handle(&mut self, packet: Packet) -> Option<End> {
        match packet {
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(a) => {
                // An acknowledgement for an unknown identifier is ignored, as Mosquitto does.
                if let Ok(d) = self.session.outgoing.on_puback(a.packet_id) {
                    self.forget_stored(d.seq);
                }
                None
            }
            Packet::PubRec(a) => self.on_pubrec(a),
            Packet::PubRel(a) => self.on_pubrel(a),
            Packet::PubComp(a) => {
                if self.session.outgoing.on_pubcomp(a.packet_id).is_ok() {
                    let seq = self.session.pubcomp_seqs.remove(&a.packet_id.get());
                    self.forget_stored(seq);
                }
                None
            }
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(u),
            Packet::PingReq => {
                self.send(&Packet::PingResp);
                None
            }
            Packet::Disconnect(d) => self.on_disconnect(d),
            Packet::Auth(a) => self.on_auth(a).await,
            Packet::Connect(_) => Some(End::Violation(
                ReasonCode::PROTOCOL_ERROR,
                "[MQTT-3.1.0-2] second CONNECT".into(),
            )),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                Some(End::Violation(
                    ReasonCode::PROTOCOL_ERROR,
                    "a client sent a packet only a server may send".into(),
                ))
            }
        }
    }

    fn on_disconnect(&mut self, d: Disconnect) -> Option<End> {
        if let Some(expiry) = d.properties.session_expiry_interval() {
            // A session created with expiry 0 cannot be given one at DISCONNECT
            // ([MQTT-3.14.2-2]).
            if self.n.connect_expiry == 0 && expiry != 0 {
                return Some(End::Violation(
                    ReasonCode::PROTOCOL_ERROR,
                    "[MQTT-3.14.2-2] session expiry set at DISCONNECT after 0 at CONNECT".into(),
                ));
            }
            self.session.expiry_interval =
                expiry.min(self.shared.config.session.max_session_expiry_secs);
        }
        Some(End::ClientDisconnect {
            will: d.reason_code == ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
        })
    }

    async fn on_auth(&mut self, a: midge_proto::Auth) -> Option<End> {
        let Some(method) = self.n.auth_method.clone() else {
            return Some(End::Violation(
                ReasonCode::PROTOCOL_ERROR,
                "[MQTT-4.12.0-7] AUTH without enhanced authentication at CONNECT".into(),
            ));
        };
        if a.properties.authentication_method() != Some(&method) {
            return Some(End::Violation(
                ReasonCode::PROTOCOL_ERROR,
                "[MQTT-4.12.1-1] re-authentication must use the CONNECT method".into(),
            ));
        }
        let data = a.properties.authentication_data().map(|d| d.as_ref());
        let decision = if a.reason_code == ReasonCode::RE_AUTHENTICATE {
            self.shared
                .authenticator
                .authenticate(crate::auth::AuthRequest {
                    client_id: &self.session.client_id,
                    username: None,
                    password: None,
                    method: Some(&method),
                    data,
                    peer: self.peer,
                })
                .await
        } else if a.reason_code == ReasonCode::CONTINUE_AUTHENTICATION && self.n.reauth_pending {
            self.shared
                .authenticator
                .continue_auth(&self.session.client_id, &method, data)
                .await
        } else {
            return Some(End::Violation(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH from a client must be 0x18 or 0x19".into(),
            ));
        };
        match decision {
            crate::auth::AuthDecision::Allow { data } => {
                self.n.reauth_pending = false;
                let mut props =
                    Properties::new().with(Property::AuthenticationMethod(method.clone()));
                if let Some(d) = data {
                    props.push(Property::AuthenticationData(d));
                }
                self.send(&Packet::Auth(midge_proto::Auth {
                    reason_code: ReasonCode::SUCCESS,
                    properties: props,
                }));
                None
            }
            crate::auth::AuthDecision::Continue { data } => {
                self.n.reauth_pending = true;
                let props = Properties::new()
                    .with(Property::AuthenticationMethod(method.clone()))
                    .with(Property::AuthenticationData(data));
                self.send(&Packet::Auth(midge_proto::Auth {
                    reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
                    properties: props,
                }));
                None
            }
            crate::auth::AuthDecision::Deny(code) => {
                // DISCONNECT must carry a DISCONNECT reason code ([MQTT-3.14.2-1]): a
                // CONNACK-only refusal such as 0x86 becomes Not authorized.
                let code = if code.is_valid_for(midge_proto::PacketType::Disconnect) {
                    code
                } else {
                    ReasonCode::NOT_AUTHORIZED
                };
                Some(End::Violation(code, "re-authentication failed".into()))
            }
        }
    }

    /// Removes a delivery from the stored queue (acknowledged, expired or dropped).
    fn forget_stored(&self, seq: Option<u64>) {
        if let Some(seq) = seq {
            self.shared.store_ops(vec![midge_store::Op::DeleteDelivery {
                client_id: self.session.client_id.to_string(),
                seq,
            }]);
        }
    }

    /// The session's record in the store changed: write it (no wait).
    fn store_session(&self) -> Option<midge_store::Ticket> {
        if self.shared.store.is_none() || !self.session.mailbox.is_persistent() {
            return None;
        }
        self.shared.store_ops(vec![midge_store::Op::PutSession {
            client_id: self.session.client_id.to_string(),
            session: crate::persist::session_record(&self.session),
        }])
    }

    /// Encodes a packet into the write buffer.
    fn send(&mut self, packet: &Packet) {
        // Never exceed the client's Maximum Packet Size: a Reason String or User Property is
        // left out rather than sent too large ([MQTT-3.1.2-24], [MQTT-3.1.2-25],
        // [MQTT-3.14.2-3]). PUBLISH sizes are checked where messages are delivered.
        if self.n.version.is_v5()
            && !matches!(packet, Packet::Publish(_))
            && packet
                .encoded_len(self.n.version)
                .is_ok_and(|len| len > self.n.client_max_packet_size as usize)
        {
            let mut slim = packet.clone();
            if let Some(props) = packet_properties(&mut slim) {
                props.retain(|p| {
                    !matches!(
                        p,
                        midge_proto::Property::ReasonString(_)
                            | midge_proto::Property::UserProperty(..)
                    )
                });
            }
            if let Err(e) = slim.encode(self.n.version, &mut self.wbuf) {
                tracing::error!(client_id = %self.session.client_id, error = %e, "cannot encode packet");
            }
            return;
        }
        if let Err(e) = packet.encode(self.n.version, &mut self.wbuf) {
            tracing::error!(client_id = %self.session.client_id, error = %e, "cannot encode packet");
        }
    }

    /// Ends the connection: tells an MQTT 5 client why, decides about the will and the
    /// session, and hands the session to its next owner.
    async fn finish<W: AsyncWrite + Unpin>(
        mut self,
        end: End,
        writer: &mut W,
        kick_rx: &mut oneshot::Receiver<Takeover>,
    ) {
        let mailbox = self.session.mailbox.clone();
        mailbox.set_online(false);
        let reason = match &end {
            End::Violation(code, why) => {
                tracing::info!(client_id = %self.session.client_id, peer = %self.peer, reason = %code, "disconnecting client: {why}");
                Some(*code)
            }
            End::KeepAliveTimeout => Some(ReasonCode::KEEP_ALIVE_TIMEOUT),
            End::TakenOver(_) => Some(ReasonCode::SESSION_TAKEN_OVER),
            End::Shutdown => Some(ReasonCode::SERVER_SHUTTING_DOWN),
            End::QueueOverflow => Some(ReasonCode::QUOTA_EXCEEDED),
            End::ClientDisconnect { .. } | End::Closed => None,
        };
        if let (Some(code), true) = (reason, self.n.version.is_v5()) {
            let mut d = Disconnect::new(code);
            if let End::Violation(_, why) = &end
                && self.n.request_problem_info
            {
                d.properties
                    .push(Property::ReasonString(ByteString::from(why.as_str())));
            }
            self.send(&Packet::Disconnect(d));
        }
        if !self.wbuf.is_empty() {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = writer.write_all(&self.wbuf).await;
                let _ = writer.flush().await;
            })
            .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;

        // Unacknowledged shared-subscription messages go to another member now.
        self.redistribute_shared();
        self.session.incoming.clear_qos1();
        let shared = self.shared.clone();
        let client_id = self.session.client_id.clone();
        let will = self.n.will.take();
        let (will_now, session_continues) = match &end {
            End::ClientDisconnect { will: false } => (None, self.session.expiry_interval != 0),
            End::Shutdown => (None, self.session.expiry_interval != 0),
            End::TakenOver(t) => {
                // MQTT 5.0 §3.1.3.2.2: the old will is sent unless the new connection resumes
                // the session and the will is delayed.
                let send = will.filter(|(_, delay)| *delay == 0 || t.new_clean_start);
                (send.map(|(m, _)| m), true)
            }
            _ => {
                let continues = self.session.expiry_interval != 0;
                match will {
                    Some((m, delay)) if delay > 0 && continues => {
                        self.session.pending_will = Some(crate::session::PendingWill {
                            message: m,
                            at: Instant::now() + Duration::from_secs(u64::from(delay)),
                        });
                        (None, true)
                    }
                    Some((m, _)) => (Some(m), continues),
                    None => (None, continues),
                }
            }
        };
        if let Some(will) = will_now {
            shared.publish(will, Vec::new());
        }
        let session = self.session;
        if let End::TakenOver(t) = end {
            if let Err(session) = t.reply.send(session) {
                // The new connection gave up waiting: nobody owns the session any more.
                tracing::debug!(client_id = %client_id, "taking-over connection vanished");
                shared.end_session(session, None);
            }
            return;
        }
        if !session_continues {
            match shared.registry.release(&client_id, self.id, None) {
                Release::TakenOver(_) | Release::Removed | Release::Stored { .. } => {}
            }
            shared.end_session(session, None);
            return;
        }
        let mut session = session;
        session.offline_since_ms = Some(crate::persist::now_ms());
        if let Some(store) = &shared.store
            && session.mailbox.is_persistent()
        {
            let mut ops = vec![midge_store::Op::PutSession {
                client_id: client_id.to_string(),
                session: crate::persist::session_record(&session),
            }];
            // Record which stored deliveries were sent, so that after a restart they are
            // resent with DUP 1 ([MQTT-3.3.1-1]); their identifiers are already fixed by
            // their queue positions.
            for (id, state, delivery) in session.outgoing.iter() {
                let state = match state {
                    OutgoingState::AwaitingPubAck => {
                        midge_store::DeliveryState::AwaitingPubAck(id.get())
                    }
                    OutgoingState::AwaitingPubRec => {
                        midge_store::DeliveryState::AwaitingPubRec(id.get())
                    }
                    OutgoingState::AwaitingPubComp => continue,
                };
                if let Some(delivery) = delivery {
                    store.put_delivery(&client_id, delivery, state, &mut ops);
                }
            }
            shared.store_ops(ops);
        }
        let will_at = session.pending_will.as_ref().map(|w| w.at);
        let expiry = session.expiry_interval;
        match shared.registry.release(&client_id, self.id, Some(session)) {
            Release::Stored { generation } => {
                shared.watch_offline(
                    client_id,
                    generation,
                    will_at,
                    (expiry != u32::MAX)
                        .then(|| Instant::now() + Duration::from_secs(u64::from(expiry))),
                );
            }
            Release::Removed => {}
            Release::TakenOver(Some(session)) => {
                // A new connection claimed the id while we were closing: its takeover
                // request is waiting for this session.
                // The takeover request was queued before the slot changed hands.
                tracing::debug!(client_id = %client_id, "session handed over during close");
                let unclaimed = match kick_rx.try_recv() {
                    Ok(t) => t.reply.send(session).err(),
                    Err(_) => Some(session),
                };
                if let Some(session) = unclaimed {
                    shared.end_session(session, None);
                }
            }
            Release::TakenOver(None) => {}
        }
    }

    fn redistribute_shared(&mut self) {
        let key = self.session.key;
        let mut kept = Vec::new();
        let mut ops = Vec::new();
        for (id, state, delivery) in self.session.outgoing.drain() {
            match delivery {
                // QoS 2 deliveries in flight stay with this session: they complete when it
                // reconnects ([MQTT-4.8.2-4]) and go to nobody else ([MQTT-4.8.2-5]).
                Some(d) if d.shared.is_some() && d.qos == midge_proto::QoS::AtLeastOnce => {
                    if self.shared.redeliver_shared(key, d.clone(), &mut ops) {
                        if let Some(seq) = d.seq {
                            ops.push(midge_store::Op::DeleteDelivery {
                                client_id: self.session.client_id.to_string(),
                                seq,
                            });
                        }
                    } else {
                        kept.push((id, state, Some(d)));
                    }
                }
                other => kept.push((id, state, other)),
            }
        }
        for (id, state, d) in kept {
            let _ = self.session.outgoing.restore(id, state, d);
        }
        self.shared.store_ops(ops);
    }
}

/// The properties of a packet that has them.
fn packet_properties(packet: &mut Packet) -> Option<&mut Properties> {
    match packet {
        Packet::ConnAck(p) => Some(&mut p.properties),
        Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
            Some(&mut p.properties)
        }
        Packet::SubAck(p) => Some(&mut p.properties),
        Packet::UnsubAck(p) => Some(&mut p.properties),
        Packet::Disconnect(p) => Some(&mut p.properties),
        Packet::Auth(p) => Some(&mut p.properties),
        _ => None,
    }
}

async fn committed_changed(rx: &mut Option<watch::Receiver<midge_store::Ticket>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

fn keep_alive_deadline(keep_alive: Duration) -> Instant {
    if keep_alive.is_zero() {
        // Never: far in the future but within tokio's timer range.
        Instant::now() + Duration::from_secs(86_400 * 365)
    } else {
        Instant::now() + keep_alive + keep_alive / 2
    }
}

/// Smallest read buffer: what an idle connection holds while it waits for data.
const MIN_READ: usize = 512;
/// Largest read buffer reserved at once.
const MAX_READ: usize = 64 * 1024;

/// Reads whatever is available. `hint` adapts the buffer to the traffic: it doubles while
/// reads fill the space offered and shrinks when they do not, so a busy connection reads in
/// large chunks and an idle one holds only [`MIN_READ`] bytes.
async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut R,
    rbuf: &mut BytesMut,
    hint: &mut usize,
) -> std::io::Result<usize> {
    let want = (*hint).clamp(MIN_READ, MAX_READ);
    if rbuf.capacity() - rbuf.len() < want / 2 {
        rbuf.reserve(want);
    }
    let space = rbuf.capacity() - rbuf.len();
    let n = reader.read_buf(rbuf).await?;
    *hint = if n >= space {
        want * 2
    } else if n < want / 4 {
        want / 2
    } else {
        want
    };
    Ok(n)
}

fn decode_failure(e: &DecodeError) -> End {
    End::Violation(e.reason_code(), e.to_string())
}
