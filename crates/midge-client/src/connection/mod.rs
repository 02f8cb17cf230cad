//! The connection task: one tokio task per client owns the socket, the decoder, the session
//! state and the write buffer, and serves the [`Client`](crate::Client) handles through a
//! command channel.
//!
//! Each turn of its loop waits (`select!`) on whatever can happen in the current link state:
//! socket readable, write buffer drainable, keep-alive timer, commands, room in the events
//! channel; or, while disconnected, the backoff timer or the reconnection attempt. Reads
//! decode every complete packet; commands are drained in batches; all resulting packets are
//! appended to one buffer written with as few system calls as the socket allows.

mod handshake;
mod out;
mod session;

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use midge_proto::{ByteString, ConnAck, Decoder, Disconnect, Packet, ReasonCode};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};

use crate::client::{Command, Reply};
use crate::error::ClientError;
use crate::event::Event;
use crate::options::{ConnectOptions, PacketDirection};
use crate::transport::BoxStream;
use handshake::Established;
use out::Out;
use session::Session;

/// Read in chunks of at least this much free buffer space.
const READ_CHUNK: usize = 16 * 1024;
/// Drop an empty read buffer that grew beyond this (a burst of large messages).
const READ_BUFFER_KEEP: usize = 256 * 1024;
/// Commands handled per wake-up before the socket gets its turn again.
const COMMAND_BATCH: usize = 256;
/// How long a requested DISCONNECT may take to be written.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the handles can see of the connection.
#[derive(Debug)]
pub(crate) struct Status {
    pub(crate) connected: bool,
    pub(crate) connack: ConnAck,
    pub(crate) client_id: ByteString,
    pub(crate) keep_alive: u16,
}

/// The events channel plus an overflow queue, so that the task never blocks on a slow
/// reader: while the overflow is non-empty it stops reading from the socket instead.
#[derive(Debug)]
pub(crate) struct EventSink {
    tx: mpsc::Sender<Event>,
    overflow: VecDeque<Event>,
    /// The [`Events`](crate::Events) receiver is gone; events are discarded.
    closed: bool,
}

impl EventSink {
    pub(crate) fn new(tx: mpsc::Sender<Event>) -> EventSink {
        EventSink {
            tx,
            overflow: VecDeque::new(),
            closed: false,
        }
    }

    pub(crate) fn push(&mut self, event: Event) {
        if self.closed {
            return;
        }
        if !self.overflow.is_empty() {
            self.overflow.push_back(event);
            return;
        }
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => self.overflow.push_back(event),
            Err(TrySendError::Closed(_)) => self.closed = true,
        }
    }

    fn flush(&mut self) {
        while let Some(event) = self.overflow.pop_front() {
            match self.tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    self.overflow.push_front(event);
                    return;
                }
                Err(TrySendError::Closed(_)) => {
                    self.closed = true;
                    self.overflow.clear();
                    return;
                }
            }
        }
    }
}

/// Connects (first attempt, reported to the caller), then spawns the connection task.
pub(crate) async fn start(
    options: ConnectOptions,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
) -> Result<watch::Receiver<Arc<Status>>, ClientError> {
    let options = Arc::new(options);
    let established = handshake::establish(
        options.clone(),
        options.client_id.clone(),
        options.clean_start,
    )
    .await?;
    let (status, status_rx) = watch::channel(Arc::new(Status {
        connected: false,
        connack: established.connack.clone(),
        client_id: options.client_id.clone(),
        keep_alive: options.keep_alive,
    }));
    let mut task = Task {
        session: Session::new(&options),
        client_id: options.client_id.clone(),
        options,
        commands,
        commands_open: true,
        events: EventSink::new(events),
        status,
        link: Link::Stopped,
        closing: false,
        close_reply: None,
        input_pending: false,
    };
    task.established(established);
    tokio::spawn(task.run());
    Ok(status_rx)
}

type Attempt = Pin<Box<dyn Future<Output = Result<Established, ClientError>> + Send>>;

enum Link {
    Up(Box<Conn>),
    /// Waiting out the backoff before reconnection attempt `attempt`.
    Waiting {
        until: Instant,
        attempt: u32,
    },
    Connecting {
        attempt: u32,
        future: Attempt,
    },
    Stopped,
}

/// One network connection.
struct Conn {
    reader: ReadHalf<BoxStream>,
    writer: WriteHalf<BoxStream>,
    rbuf: BytesMut,
    out: Out,
    decoder: Decoder,
    /// The write buffer drained; flush the transport once (TLS streams buffer).
    needs_flush: bool,
    keep_alive: Option<Duration>,
    ping_timeout: Duration,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    /// When no timer is needed: far enough never to fire.
    far: Instant,
    /// Set once a requested DISCONNECT is queued: the connection closes when it is written.
    close_deadline: Option<Instant>,
}

impl Conn {
    fn arm_timer(&mut self) {
        let deadline = match (self.close_deadline, self.ping_sent, self.keep_alive) {
            (Some(close), _, _) => close,
            (None, Some(sent), _) => sent + self.ping_timeout,
            (None, None, Some(keep_alive)) => self.last_sent + keep_alive,
            (None, None, None) => self.far,
        };
        // A later deadline is left to the timer already set: it fires early, `on_timer` finds
        // nothing due and the next turn re-arms it. That spares a timer reset on every write.
        if deadline < self.timer.deadline() || self.timer.is_elapsed() {
            self.timer.as_mut().reset(deadline);
        }
    }
}

/// What woke the task.
enum Wake {
    Read(io::Result<usize>),
    /// `Some(n)`: bytes written; `None`: flushed.
    Wrote(io::Result<Option<usize>>),
    Timer,
    Command(Option<Command>),
    Retry,
    Attempt(Result<Established, ClientError>),
    EventsClosed,
    Nothing,
}

struct Task {
    options: Arc<ConnectOptions>,
    session: Session,
    commands: mpsc::Receiver<Command>,
    /// Some `Client` handle is alive.
    commands_open: bool,
    events: EventSink,
    status: watch::Sender<Arc<Status>>,
    link: Link,
    /// The configured or server-assigned Client Identifier, reused when reconnecting.
    client_id: ByteString,
    /// A DISCONNECT was requested (or every handle is gone).
    closing: bool,
    close_reply: Option<Reply<()>>,
    /// The read buffer may hold complete packets not yet decoded (bytes that followed
    /// CONNACK).
    input_pending: bool,
}

impl Task {
    async fn run(mut self) {
        loop {
            if std::mem::take(&mut self.input_pending)
                && let Err(e) = self.process_input()
            {
                if !self.lost(e).await {
                    break;
                }
                continue;
            }
            self.events.flush();
            let wake = self.wait().await;
            if !self.handle(wake).await {
                break;
            }
        }
        // Best effort: hand over events the application has not taken yet.
        if !self.events.closed && !self.events.overflow.is_empty() {
            let tx = &self.events.tx;
            let overflow = &mut self.events.overflow;
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(event) = overflow.pop_front() {
                    if tx.send(event).await.is_err() {
                        break;
                    }
                }
            })
            .await;
        }
    }

    async fn wait(&mut self) -> Wake {
        let accepting = self.commands_open && !self.closing && self.session.accepting();
        let overflow = !self.events.overflow.is_empty();
        let watch_events = !self.commands_open && !self.events.closed;
        let events = &mut self.events;
        let commands = &mut self.commands;
        macro_rules! select_with_common {
            ($($branch:tt)*) => {
                tokio::select! {
                    $($branch)*
                    c = commands.recv(), if accepting => Wake::Command(c),
                    r = events.tx.reserve(), if overflow => {
                        match r {
                            Ok(permit) => {
                                if let Some(event) = events.overflow.pop_front() {
                                    permit.send(event);
                                }
                            }
                            Err(_) => {
                                events.closed = true;
                                events.overflow.clear();
                            }
                        }
                        Wake::Nothing
                    }
                    () = events.tx.closed(), if watch_events => Wake::EventsClosed,
                }
            };
        }
        match &mut self.link {
            Link::Up(conn) => {
                conn.arm_timer();
                if conn.rbuf.capacity() - conn.rbuf.len() < READ_CHUNK / 4 {
                    conn.rbuf.reserve(READ_CHUNK);
                }
                let reading = !overflow && conn.close_deadline.is_none();
                let writing = !conn.out.wbuf.is_empty() || conn.needs_flush;
                let conn = &mut **conn;
                select_with_common! {
                    r = tokio::io::AsyncReadExt::read_buf(&mut conn.reader, &mut conn.rbuf),
                        if reading => Wake::Read(r),
                    r = write_some(&mut conn.writer, &conn.out.wbuf), if writing => Wake::Wrote(r),
                    () = &mut conn.timer => Wake::Timer,
                }
            }
            Link::Waiting { until, .. } => {
                let until = *until;
                select_with_common! {
                    () = tokio::time::sleep_until(until) => Wake::Retry,
                }
            }
            Link::Connecting { future, .. } => {
                select_with_common! {
                    r = future.as_mut() => Wake::Attempt(r),
                }
            }
            Link::Stopped => Wake::Nothing,
        }
    }

    /// Acts on a wake-up; returns false when the task is to end.
    async fn handle(&mut self, wake: Wake) -> bool {
        match wake {
            Wake::Nothing => !matches!(self.link, Link::Stopped),
            Wake::Read(Ok(0)) => self.lost(ClientError::ConnectionClosed).await,
            Wake::Read(Ok(_)) => match self.process_input() {
                Ok(()) => true,
                Err(e) => self.lost(e).await,
            },
            Wake::Read(Err(e)) | Wake::Wrote(Err(e)) => self.lost(e.into()).await,
            Wake::Wrote(Ok(Some(0))) => {
                self.lost(io::Error::from(io::ErrorKind::WriteZero).into())
                    .await
            }
            Wake::Wrote(Ok(Some(n))) => {
                if let Link::Up(conn) = &mut self.link {
                    conn.out.advance(n);
                    conn.last_sent = Instant::now();
                    conn.needs_flush = conn.out.wbuf.is_empty();
                    // Nothing may follow a DISCONNECT.
                    if conn.close_deadline.is_none() {
                        self.session.pump(&mut conn.out);
                    }
                }
                true
            }
            Wake::Wrote(Ok(None)) => {
                let Link::Up(conn) = &mut self.link else {
                    return true;
                };
                conn.needs_flush = false;
                if conn.close_deadline.is_some() && conn.out.wbuf.is_empty() {
                    self.finish_close().await;
                    return false;
                }
                true
            }
            Wake::Timer => self.on_timer().await,
            Wake::Command(None) => {
                self.commands_open = false;
                if self.events.closed || self.events.tx.is_closed() {
                    return self.begin_close(Disconnect::default(), None).await;
                }
                true
            }
            Wake::Command(Some(command)) => self.on_commands(command).await,
            Wake::EventsClosed => {
                self.events.closed = true;
                self.events.overflow.clear();
                self.begin_close(Disconnect::default(), None).await
            }
            Wake::Retry => {
                if let Link::Waiting { attempt, .. } = self.link {
                    // MQTT 5: resume the session (its expiry decides whether there is one);
                    // MQTT 3.x: keep Clean Session as configured.
                    let clean_start = !self.options.version.is_v5() && self.options.clean_start;
                    let future = handshake::establish(
                        self.options.clone(),
                        self.client_id.clone(),
                        clean_start,
                    );
                    self.link = Link::Connecting {
                        attempt,
                        future: Box::pin(future),
                    };
                }
                true
            }
            Wake::Attempt(Ok(established)) => {
                tracing::info!(transport = %self.options.transport, "reconnected");
                self.established(established);
                true
            }
            Wake::Attempt(Err(error)) => {
                let attempt = match self.link {
                    Link::Connecting { attempt, .. } => attempt,
                    _ => 1,
                };
                tracing::debug!(%error, attempt, "reconnection attempt failed");
                self.events.push(Event::Disconnected(error.clone()));
                let limit = self.options.reconnect.max_attempts;
                if limit.is_some_and(|max| attempt >= max) {
                    self.stop(&ClientError::ConnectionLost(Box::new(error)));
                    return false;
                }
                self.schedule(attempt.saturating_add(1));
                true
            }
        }
    }

    /// A connection is up: resume the session on it and tell everyone.
    fn established(&mut self, established: Established) {
        let Established {
            stream,
            leftover,
            connack,
        } = established;
        let options = &self.options;
        if let Some(id) = connack.properties.assigned_client_identifier() {
            self.client_id = id.clone();
        }
        let keep_alive = connack
            .properties
            .server_keep_alive()
            .unwrap_or(options.keep_alive);
        let keep_alive_duration = Duration::from_secs(u64::from(keep_alive));
        let (reader, writer) = tokio::io::split(stream);
        let now = Instant::now();
        let far = now + Duration::from_secs(365 * 24 * 3600);
        let mut conn = Conn {
            reader,
            writer,
            rbuf: leftover,
            out: Out::new(options.version),
            decoder: Decoder::with_version(
                options.version,
                handshake::our_max_packet_size(options),
            ),
            needs_flush: false,
            keep_alive: (keep_alive > 0).then_some(keep_alive_duration),
            ping_timeout: options.ping_timeout.unwrap_or(keep_alive_duration),
            last_sent: now,
            ping_sent: None,
            timer: Box::pin(tokio::time::sleep_until(far)),
            far,
            close_deadline: None,
        };
        conn.out.observer = options.observer.clone();
        self.input_pending = !conn.rbuf.is_empty();
        self.session.resume(&connack, &mut conn.out);
        self.status.send_replace(Arc::new(Status {
            connected: true,
            connack: connack.clone(),
            client_id: self.client_id.clone(),
            keep_alive,
        }));
        tracing::debug!(session_present = connack.session_present, "connected");
        self.events.push(Event::Connected(connack));
        self.link = Link::Up(Box::new(conn));
    }

    /// Decodes and handles every complete packet in the read buffer.
    fn process_input(&mut self) -> Result<(), ClientError> {
        let Link::Up(conn) = &mut self.link else {
            return Ok(());
        };
        while let Some(packet) = conn.decoder.decode(&mut conn.rbuf)? {
            if let Some(observer) = &self.options.observer {
                observer.observe(PacketDirection::Received, &packet);
            }
            match packet {
                Packet::PingResp => conn.ping_sent = None,
                Packet::Disconnect(d) => {
                    return Err(ClientError::ServerDisconnect {
                        reason_code: d.reason_code,
                        properties: d.properties,
                    });
                }
                Packet::Auth(_) => {
                    return Err(ClientError::Unsupported("re-authentication (AUTH)"));
                }
                Packet::ConnAck(_) => {
                    return Err(ClientError::protocol(
                        ReasonCode::PROTOCOL_ERROR,
                        "a second CONNACK",
                    ));
                }
                other => self
                    .session
                    .on_packet(other, &mut conn.out, &mut self.events)?,
            }
        }
        if conn.rbuf.is_empty() && conn.rbuf.capacity() > READ_BUFFER_KEEP {
            conn.rbuf = BytesMut::new();
        }
        Ok(())
    }

    async fn on_commands(&mut self, first: Command) -> bool {
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(command) = next.take() {
            if let Command::Disconnect { disconnect, reply } = command {
                return self.begin_close(disconnect, Some(reply)).await;
            }
            let out = match &mut self.link {
                Link::Up(conn) => Some(&mut conn.out),
                _ => None,
            };
            self.session.command(command, out);
            handled += 1;
            if handled < COMMAND_BATCH && self.session.accepting() {
                match self.commands.try_recv() {
                    Ok(command) => next = Some(command),
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => self.commands_open = false,
                }
            }
        }
        true
    }

    async fn on_timer(&mut self) -> bool {
        let reading_paused = !self.events.overflow.is_empty();
        let Link::Up(conn) = &mut self.link else {
            return true;
        };
        let now = Instant::now();
        if let Some(deadline) = conn.close_deadline {
            if now >= deadline {
                self.finish_close().await;
                return false;
            }
            return true;
        }
        if let Some(sent) = conn.ping_sent {
            if now >= sent + conn.ping_timeout {
                if reading_paused {
                    // The PINGRESP may be sitting unread behind messages the application has
                    // not taken yet: give it another period once reading resumes.
                    conn.ping_sent = Some(now);
                    return true;
                }
                let timeout = conn.ping_timeout;
                return self.lost(ClientError::KeepAliveTimeout(timeout)).await;
            }
            return true;
        }
        if let Some(keep_alive) = conn.keep_alive
            && now >= conn.last_sent + keep_alive
        {
            conn.out.encode_control(&Packet::PingReq);
            conn.ping_sent = Some(now);
        }
        true
    }

    /// Queues DISCONNECT and closes once it is written. Without a connection, stops at once.
    async fn begin_close(&mut self, disconnect: Disconnect, reply: Option<Reply<()>>) -> bool {
        self.closing = true;
        if let Some(reply) = reply {
            // A second disconnect while closing: both are answered when the close completes.
            if let Some(previous) = self.close_reply.replace(reply) {
                let _ = previous.send(Ok(()));
            }
        }
        let Link::Up(conn) = &mut self.link else {
            self.stop(&ClientError::Disconnected);
            return false;
        };
        if conn.close_deadline.is_none() {
            if let Err(e) = conn.out.encode(&Packet::Disconnect(disconnect)) {
                tracing::warn!(error = %e, "DISCONNECT as requested cannot be encoded; sending a plain one");
                conn.out
                    .encode_control(&Packet::Disconnect(Disconnect::default()));
            }
            conn.close_deadline = Some(Instant::now() + CLOSE_TIMEOUT);
        }
        true
    }

    async fn finish_close(&mut self) {
        if let Link::Up(conn) = &mut self.link {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.writer.shutdown()).await;
        }
        self.stop(&ClientError::Disconnected);
    }

    /// The connection failed with `error`. Returns whether the task goes on (reconnecting).
    async fn lost(&mut self, error: ClientError) -> bool {
        let Link::Up(mut conn) = std::mem::replace(&mut self.link, Link::Stopped) else {
            return true;
        };
        // MQTT 5: tell the server which of its packets broke the protocol, then close.
        let reason = match &error {
            ClientError::Protocol { reason_code, .. } => Some(*reason_code),
            ClientError::Decode(e) => Some(e.reason_code()),
            ClientError::Unsupported(_) => Some(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR),
            _ => None,
        };
        if let (Some(code), true) = (reason, self.options.version.is_v5()) {
            let code = if code.is_valid_for(midge_proto::PacketType::Disconnect) {
                code
            } else {
                ReasonCode::PROTOCOL_ERROR
            };
            conn.out
                .encode_control(&Packet::Disconnect(Disconnect::new(code)));
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                conn.writer.write_all(&conn.out.wbuf),
            )
            .await;
        }
        conn.out.fail_unwritten(&error);
        drop(conn);
        self.session.connection_lost();
        self.set_disconnected();
        if self.closing {
            self.stop(&ClientError::Disconnected);
            return false;
        }
        tracing::info!(%error, "connection lost");
        self.events.push(Event::Disconnected(error.clone()));
        let taken_over = matches!(
            &error,
            ClientError::ServerDisconnect { reason_code, .. }
                if *reason_code == ReasonCode::SESSION_TAKEN_OVER
        );
        if !self.options.reconnect.enabled || taken_over {
            self.stop(&ClientError::ConnectionLost(Box::new(error)));
            return false;
        }
        self.schedule(1);
        true
    }

    fn schedule(&mut self, attempt: u32) {
        let delay = self.options.reconnect.delay(attempt);
        self.events.push(Event::Reconnecting { attempt, delay });
        self.link = Link::Waiting {
            until: Instant::now() + delay,
            attempt,
        };
    }

    fn set_disconnected(&mut self) {
        let current = self.status.borrow().clone();
        if current.connected {
            self.status.send_replace(Arc::new(Status {
                connected: false,
                connack: current.connack.clone(),
                client_id: current.client_id.clone(),
                keep_alive: current.keep_alive,
            }));
        }
    }

    /// The client ends: every pending operation fails with `error`.
    fn stop(&mut self, error: &ClientError) {
        if let Link::Up(conn) = &mut self.link {
            conn.out.fail_unwritten(error);
        }
        self.link = Link::Stopped;
        self.session.fail_all(error);
        self.set_disconnected();
        if let Some(reply) = self.close_reply.take() {
            let _ = reply.send(Ok(()));
        }
    }
}

/// Writes what it can of `buf`, or flushes the transport once `buf` is empty.
async fn write_some(writer: &mut WriteHalf<BoxStream>, buf: &[u8]) -> io::Result<Option<usize>> {
    if buf.is_empty() {
        writer.flush().await.map(|()| None)
    } else {
        writer.write(buf).await.map(Some)
    }
}
