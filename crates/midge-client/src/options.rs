//! Connection options: what goes into CONNECT, and how the client behaves around it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use midge_proto::{ByteString, Packet, Properties, Property, ProtocolVersion, Will};

use crate::transport::TransportConfig;

/// Everything [`Client::connect`](crate::Client::connect) needs: the transport, the CONNECT
/// packet's fields and properties, and the client's own behaviour (reconnection, timeouts,
/// queue sizes).
///
/// Built with chained setters:
///
/// ```
/// use std::time::Duration;
/// use midge_client::{ConnectOptions, ProtocolVersion, ReconnectOptions};
///
/// let options = ConnectOptions::tcp("127.0.0.1", 1883)
///     .protocol_version(ProtocolVersion::V5)
///     .client_id("sensor-7")
///     .clean_start(false)
///     .session_expiry_interval(3600)
///     .keep_alive(Duration::from_secs(30))
///     .credentials("alice", "secret")
///     .reconnect(ReconnectOptions::default().max_backoff(Duration::from_secs(10)));
/// assert_eq!(options.get_client_id(), "sensor-7");
/// ```
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub(crate) transport: TransportConfig,
    pub(crate) version: ProtocolVersion,
    pub(crate) client_id: ByteString,
    pub(crate) clean_start: bool,
    pub(crate) keep_alive: u16,
    pub(crate) properties: Properties,
    pub(crate) username: Option<ByteString>,
    pub(crate) password: Option<Bytes>,
    pub(crate) will: Option<Will>,
    pub(crate) reconnect: ReconnectOptions,
    pub(crate) connect_timeout: Duration,
    pub(crate) ping_timeout: Option<Duration>,
    pub(crate) max_inflight: u16,
    pub(crate) max_queued: usize,
    pub(crate) event_capacity: usize,
    pub(crate) observer: Option<PacketObserver>,
}

/// Which way a packet went, as told to a [`ConnectOptions::packet_observer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketDirection {
    /// Written to the server (appended to the write buffer).
    Sent,
    /// Decoded from the server's bytes, before the client acts on it.
    Received,
}

/// The function behind [`ConnectOptions::packet_observer`].
type ObserverFn = dyn Fn(PacketDirection, &Packet) + Send + Sync;

/// A shared [`ObserverFn`].
#[derive(Clone)]
pub(crate) struct PacketObserver(Arc<ObserverFn>);

impl PacketObserver {
    pub(crate) fn observe(&self, direction: PacketDirection, packet: &Packet) {
        (self.0)(direction, packet);
    }
}

impl fmt::Debug for PacketObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PacketObserver")
    }
}

impl ConnectOptions {
    /// Options for `transport` with the defaults: MQTT 5, an empty client identifier (the
    /// server assigns one), Clean Start, Keep Alive 60 s, no credentials, no will,
    /// reconnection on with [`ReconnectOptions::default`], a 10 s connect timeout.
    pub fn new(transport: TransportConfig) -> ConnectOptions {
        ConnectOptions {
            transport,
            version: ProtocolVersion::V5,
            client_id: ByteString::new(),
            clean_start: true,
            keep_alive: 60,
            properties: Properties::new(),
            username: None,
            password: None,
            will: None,
            reconnect: ReconnectOptions::default(),
            connect_timeout: Duration::from_secs(10),
            ping_timeout: None,
            max_inflight: u16::MAX,
            max_queued: 1000,
            event_capacity: 1000,
            observer: None,
        }
    }

    /// Options for TCP to `host:port` (see [`TransportConfig::tcp`]).
    pub fn tcp(host: impl Into<String>, port: u16) -> ConnectOptions {
        ConnectOptions::new(TransportConfig::tcp(host, port))
    }

    /// Options for a unix domain socket at `path`.
    #[cfg(unix)]
    pub fn unix(path: impl Into<std::path::PathBuf>) -> ConnectOptions {
        ConnectOptions::new(TransportConfig::Unix(path.into()))
    }

    /// The protocol version: MQTT 3.1, 3.1.1 or 5.0 (the default). What a version cannot
    /// carry (properties, for MQTT 3.x) is left out of the packets.
    pub fn protocol_version(mut self, version: ProtocolVersion) -> Self {
        self.version = version;
        self
    }

    /// The Client Identifier. Empty (the default) asks the server to assign one; MQTT 5
    /// servers return it in CONNACK, and the client then reuses it when it reconnects.
    pub fn client_id(mut self, client_id: impl Into<ByteString>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Clean Start (MQTT 5) or Clean Session (MQTT 3.x) for the first connection.
    ///
    /// MQTT 5 reconnections always ask to resume the session (Clean Start 0): the Session
    /// Expiry Interval decides whether there is one to resume. MQTT 3.x reconnections keep
    /// this flag, because there Clean Session 0 would make the session persistent.
    pub fn clean_start(mut self, clean_start: bool) -> Self {
        self.clean_start = clean_start;
        self
    }

    /// Keep Alive, in whole seconds up to 65,535; zero turns keep-alive off. A Server Keep
    /// Alive in CONNACK overrides it.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = u16::try_from(keep_alive.as_secs()).unwrap_or(u16::MAX);
        self
    }

    /// How long to wait for PINGRESP before the connection is considered broken. Default:
    /// the Keep Alive interval in force.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = Some(timeout);
        self
    }

    /// User Name and Password.
    pub fn credentials(self, username: impl Into<ByteString>, password: impl Into<Bytes>) -> Self {
        self.username(username).password(password)
    }

    /// User Name.
    pub fn username(mut self, username: impl Into<ByteString>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Password (MQTT 5 allows one without a User Name; MQTT 3.1.1 does not).
    pub fn password(mut self, password: impl Into<Bytes>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The Will Message, with its QoS, retain flag and (MQTT 5) Will Properties such as
    /// Will Delay Interval, Message Expiry Interval or Content Type.
    pub fn will(mut self, will: Will) -> Self {
        self.will = Some(will);
        self
    }

    /// Replaces every CONNECT property (MQTT 5). The setters below set one each.
    pub fn properties(mut self, properties: Properties) -> Self {
        self.properties = properties;
        self
    }

    /// Session Expiry Interval in seconds (MQTT 5): how long the server keeps the session
    /// after the connection closes. 0 (the default) ends it with the connection;
    /// `u32::MAX` never expires.
    pub fn session_expiry_interval(self, seconds: u32) -> Self {
        self.set(Property::SessionExpiryInterval(seconds))
    }

    /// Receive Maximum (MQTT 5): how many QoS 1/2 messages the server may have
    /// unacknowledged towards this client. 0 is not allowed by the protocol and is ignored.
    pub fn receive_maximum(self, receive_maximum: u16) -> Self {
        if receive_maximum == 0 {
            return self;
        }
        self.set(Property::ReceiveMaximum(receive_maximum))
    }

    /// Maximum Packet Size (MQTT 5) this client accepts; larger packets from the server are a
    /// protocol error. 0 is not allowed by the protocol and is ignored.
    pub fn maximum_packet_size(self, bytes: u32) -> Self {
        if bytes == 0 {
            return self;
        }
        self.set(Property::MaximumPacketSize(bytes))
    }

    /// Topic Alias Maximum (MQTT 5): how many topic aliases the server may use towards this
    /// client. The client resolves them; messages always carry their full topic.
    pub fn topic_alias_maximum(self, maximum: u16) -> Self {
        self.set(Property::TopicAliasMaximum(maximum))
    }

    /// Request Response Information (MQTT 5): ask the server for a Response Information
    /// string in CONNACK.
    pub fn request_response_information(self, request: bool) -> Self {
        self.set(Property::RequestResponseInformation(request))
    }

    /// Request Problem Information (MQTT 5): whether the server may send Reason Strings and
    /// User Properties on failures.
    pub fn request_problem_information(self, request: bool) -> Self {
        self.set(Property::RequestProblemInformation(request))
    }

    /// Adds a User Property to CONNECT (MQTT 5).
    pub fn user_property(
        mut self,
        name: impl Into<ByteString>,
        value: impl Into<ByteString>,
    ) -> Self {
        self.properties
            .push(Property::UserProperty(name.into(), value.into()));
        self
    }

    /// Authentication Method (MQTT 5). The client sends it in CONNECT; a server that answers
    /// with AUTH (a multi-step exchange) is refused with
    /// [`ClientError::Unsupported`](crate::ClientError::Unsupported).
    pub fn authentication_method(self, method: impl Into<ByteString>) -> Self {
        self.set(Property::AuthenticationMethod(method.into()))
    }

    /// Authentication Data (MQTT 5), sent with the Authentication Method.
    pub fn authentication_data(self, data: impl Into<Bytes>) -> Self {
        self.set(Property::AuthenticationData(data.into()))
    }

    /// Automatic reconnection.
    pub fn reconnect(mut self, reconnect: ReconnectOptions) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// How long opening the transport plus the CONNECT/CONNACK exchange may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A cap on the QoS 1/2 messages this client keeps in flight, below the server's Receive
    /// Maximum (which MQTT 3.x servers do not send). Default 65,535; 0 is treated as 1.
    pub fn max_inflight(mut self, max_inflight: u16) -> Self {
        self.max_inflight = max_inflight.max(1);
        self
    }

    /// How many publishes may wait for a free slot in the Receive Maximum window or for a
    /// connection. Beyond it the client stops taking commands, so `publish` calls wait:
    /// back-pressure instead of unbounded memory. Default 1000.
    pub fn max_queued(mut self, max_queued: usize) -> Self {
        self.max_queued = max_queued.max(1);
        self
    }

    /// Capacity of the [`Events`](crate::Events) channel. When it is full the client stops
    /// reading from the network (the server then holds further messages back) until the
    /// application catches up. Default 1000.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Calls `observer` with every packet the client sends or receives, on every connection,
    /// CONNECT and CONNACK included: for debugging output such as `midge sub -d`, which prints
    /// one line per packet as `mosquitto_sub -d` does. It runs on the connection task, so it
    /// must be quick.
    pub fn packet_observer(
        mut self,
        observer: impl Fn(PacketDirection, &Packet) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(PacketObserver(Arc::new(observer)));
        self
    }

    /// The transport.
    pub fn get_transport(&self) -> &TransportConfig {
        &self.transport
    }

    /// The protocol version.
    pub fn get_protocol_version(&self) -> ProtocolVersion {
        self.version
    }

    /// The configured Client Identifier (empty if the server is to assign one).
    pub fn get_client_id(&self) -> &str {
        &self.client_id
    }

    /// The CONNECT properties.
    pub fn get_properties(&self) -> &Properties {
        &self.properties
    }

    fn set(mut self, property: Property) -> Self {
        self.properties.set(property);
        self
    }
}

/// Automatic reconnection after a lost connection.
///
/// The first connection is made once by [`Client::connect`](crate::Client::connect), which
/// reports its failure. After a connection that was established is lost, the client waits
/// `initial_backoff`, then doubles the wait after each failed attempt up to `max_backoff`
/// (with `jitter`, each wait is scaled by a random factor between 0.5 and 1, so that many
/// clients of a restarted server do not reconnect in lockstep).
///
/// On reconnection, unacknowledged QoS 1/2 messages are resent, with DUP, if the server still
/// has the session (Session Present); otherwise they are sent again as new messages and
/// every subscription is made again. A server DISCONNECT with Reason Code 0x8E (Session taken
/// over) is final: another client with the same identifier connected, and reconnecting would
/// only take the session back and forth.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectOptions {
    pub(crate) enabled: bool,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) jitter: bool,
    pub(crate) max_attempts: Option<u32>,
}

impl Default for ReconnectOptions {
    /// On; 500 ms doubling up to 30 s, with jitter; no limit on attempts.
    fn default() -> Self {
        ReconnectOptions {
            enabled: true,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            jitter: true,
            max_attempts: None,
        }
    }
}

impl ReconnectOptions {
    /// No reconnection: a lost connection ends the client and fails every pending operation.
    pub fn disabled() -> ReconnectOptions {
        ReconnectOptions {
            enabled: false,
            ..ReconnectOptions::default()
        }
    }

    /// Turns reconnection on or off.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The wait before the first attempt.
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The longest wait between attempts.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Whether to randomise each wait (between half and all of it).
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Give up after this many failed attempts in a row; `None` (the default) never gives up.
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Whether reconnection is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The wait before attempt `attempt` (1 for the first), before jitter:
    /// `initial_backoff × 2^(attempt − 1)`, at most `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// The wait before attempt `attempt`, with jitter applied if it is on.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let base = self.backoff(attempt);
        if !self.jitter {
            return base;
        }
        // A factor in [0.5, 1.0], from a cheap non-cryptographic random source.
        let r = crate::util::random_u64() % 1001;
        base.mul_f64(0.5 + r as f64 / 2000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let r = ReconnectOptions::default()
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_secs(1))
            .jitter(false);
        let waits: Vec<_> = (1..=6).map(|a| r.delay(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(r.backoff(u32::MAX), Duration::from_secs(1));
        let j = r.jitter(true);
        for a in 1..10 {
            let d = j.delay(a);
            assert!(d <= j.backoff(a) && d >= j.backoff(a) / 2, "{d:?}");
        }
    }

    #[test]
    fn property_setters_replace() {
        let o = ConnectOptions::tcp("localhost", 1883)
            .session_expiry_interval(5)
            .session_expiry_interval(10)
            .receive_maximum(0)
            .user_property("a", "b")
            .authentication_method("SCRAM")
            .authentication_data("x");
        assert_eq!(o.properties.session_expiry_interval(), Some(10));
        assert_eq!(o.properties.receive_maximum(), None);
        assert_eq!(o.properties.user_properties().count(), 1);
        assert_eq!(o.properties.authentication_data().map(|d| d.len()), Some(1));
    }
}
