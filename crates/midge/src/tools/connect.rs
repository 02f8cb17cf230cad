//! What the three tools share at run time: the client options the flags select, the first
//! connection and how its failures are reported (Mosquitto's lines and exit codes), stdout
//! and stderr, and the runtime.

use std::future::Future;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use midge_client::{
    ByteString, Client, ClientError, ConnectOptions, Events, Property, ReconnectOptions, TopicName,
    TransportConfig, Will,
};

use super::client_args::{Config, Tool, valid_utf8};
use super::debug::DebugLog;
use super::mosq;

/// Why a tool stops: the line(s) to print on stderr (unless `--quiet`, if `quiet_aware`) and
/// the exit status.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) code: u8,
    /// Printed even with `--quiet` (Mosquitto's argument errors are).
    pub(crate) always: bool,
}

impl Failure {
    /// A failure printed unless `--quiet`.
    pub(crate) fn new(message: impl Into<String>, code: u8) -> Failure {
        Failure {
            message: message.into(),
            code,
            always: false,
        }
    }

    /// A failure printed even with `--quiet`.
    pub(crate) fn always(message: impl Into<String>, code: u8) -> Failure {
        Failure {
            message: message.into(),
            code,
            always: true,
        }
    }

    /// Prints the message and returns the exit status.
    pub(crate) fn report(self, quiet: bool) -> u8 {
        if self.always || !quiet {
            eprint_bytes(self.message.as_bytes());
        }
        self.code
    }
}

/// Writes to stderr, ignoring failures (there is nowhere left to report them).
pub(crate) fn eprint_bytes(b: &[u8]) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(b);
    let _ = err.flush();
}

/// Prints a runtime message on stderr unless `--quiet` (Mosquitto's `err_printf`).
pub(crate) fn err_printf(c: &Config, message: &str) {
    if !c.quiet {
        eprint_bytes(message.as_bytes());
    }
}

/// Writes `bytes` to stdout and flushes, as `mosquitto_sub` does after every message.
pub(crate) fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Runs `future` on a single-threaded runtime (the tools are one connection each).
pub(crate) fn block_on<F: Future<Output = u8>>(future: F) -> u8 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(future),
        Err(e) => {
            eprint_bytes(format!("Error: cannot start the runtime: {e}\n").as_bytes());
            1
        }
    }
}

/// A cheap pseudo-random number (client identifiers, `--random-filter`); not for secrets.
pub(crate) fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32);
    let mut x = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(seed);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The client identifier to connect with, as libmosquitto chooses it: `-i`, or `-I` plus the
/// process id, or none (the server assigns one), except that MQTT 3.1 needs one, so a random
/// `mosq-…` is made.
fn client_id(c: &Config) -> Result<String, Failure> {
    let invalid = || {
        Failure::new(
            if c.tool == Tool::Pub {
                "Error: Invalid id.\n"
            } else {
                "Error: Invalid id and/or clean_session.\n"
            },
            1,
        )
    };
    let id = match (&c.id, &c.id_prefix) {
        (_, Some(prefix)) => {
            let mut id = prefix.clone();
            id.extend_from_slice(std::process::id().to_string().as_bytes());
            Some(id)
        }
        (Some(id), None) => Some(id.clone()),
        (None, None) => None,
    };
    match id {
        Some(id) if id.is_empty() => Err(invalid()),
        // libmosquitto fails with MOSQ_ERR_MALFORMED_UTF8 here, and the tools print nothing.
        Some(id) if !valid_utf8(&id) => Err(Failure::new("", 1)),
        Some(id) => Ok(String::from_utf8_lossy(&id).into_owned()),
        None if c.protocol == midge_client::ProtocolVersion::V3_1 => {
            const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            let mut id = String::from("mosq-");
            for _ in 0..20 {
                id.push(char::from(
                    CHARS[(random_u64() % CHARS.len() as u64) as usize],
                ));
            }
            Ok(id)
        }
        None => Ok(String::new()),
    }
}

/// How the tool behaves when the connection drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnLoss {
    /// Reconnect every second, as `mosquitto_loop_forever` (`sub`, `pub -l`).
    Reconnect,
    /// Stop (`pub`, `rr`).
    Stop,
}

/// A connected client and its events.
#[derive(Debug)]
pub(crate) struct Connected {
    pub(crate) client: Client,
    pub(crate) events: Events,
}

/// The client options the flags select.
pub(crate) async fn options(c: &Config, on_loss: OnLoss) -> Result<ConnectOptions, Failure> {
    let id = client_id(c)?;
    let port = c.effective_port();
    let host = c.host.clone().unwrap_or_else(|| "localhost".to_owned());
    let transport = if c.is_unix() {
        TransportConfig::Unix(host.into())
    } else {
        let lookup = || Failure::new("Unable to connect (Lookup error.).\n", 1);
        if tokio::net::lookup_host((host.as_str(), port))
            .await
            .is_err()
        {
            return Err(lookup());
        }
        let bind_address = match &c.bind_address {
            None => None,
            Some(a) => match a.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => Some(
                    tokio::net::lookup_host((a.as_str(), 0))
                        .await
                        .ok()
                        .and_then(|mut it| it.next())
                        .ok_or_else(lookup)?
                        .ip(),
                ),
            },
        };
        TransportConfig::Tcp {
            host,
            port,
            bind_address,
            nodelay: c.nodelay,
        }
    };
    let mut o = ConnectOptions::new(transport)
        .protocol_version(c.protocol)
        .client_id(ByteString::from(id.clone()))
        .clean_start(c.clean_session)
        .keep_alive(Duration::from_secs(u64::from(c.keepalive)))
        .max_inflight(c.max_inflight)
        // libmosquitto has no handshake timeout; keep-alive is what would end a silent one.
        .connect_timeout(Duration::from_secs(u64::from(c.keepalive).max(10)))
        .reconnect(match on_loss {
            OnLoss::Reconnect => ReconnectOptions::default()
                .initial_backoff(Duration::from_secs(1))
                .max_backoff(Duration::from_secs(1))
                .jitter(false),
            OnLoss::Stop => ReconnectOptions::disabled(),
        });
    let problem_with_credentials =
        || Failure::new("Error: Problem setting username and/or password.\n", 1);
    if let Some(u) = &c.username {
        if !valid_utf8(u) {
            return Err(problem_with_credentials());
        }
        o = o.username(ByteString::from(String::from_utf8_lossy(u).into_owned()));
    }
    if let Some(p) = &c.password {
        if c.username.is_none() && !c.protocol.is_v5() {
            return Err(problem_with_credentials());
        }
        o = o.password(Bytes::from(p.clone()));
    }
    if let Some(topic) = &c.will_topic {
        let topic = TopicName::new(topic.as_str())
            .map_err(|_| Failure::new("Error: Problem setting will.\n", 1))?;
        let mut will = Will::new(
            topic,
            Bytes::from(c.will_payload.clone().unwrap_or_default()),
        );
        will.qos = midge_client::QoS::from_u8(c.will_qos).unwrap_or_default();
        will.retain = c.will_retain;
        if c.protocol.is_v5() {
            will.properties = c.will_props.clone();
        }
        o = o.will(will);
    }
    if c.protocol.is_v5() {
        let mut props = c.connect_props.clone();
        if props.receive_maximum().is_none() {
            // libmosquitto always states its Receive Maximum: 20, or fewer with -C.
            let max = if (1..20).contains(&c.msg_count) {
                c.msg_count as u16
            } else {
                20
            };
            props.push(Property::ReceiveMaximum(max));
        }
        o = o.properties(props);
    }
    let subscribed_lines = c.tool == Tool::Sub && !c.quiet;
    if c.debug {
        let log = Arc::new(DebugLog::new(c.protocol, &id, subscribed_lines));
        o = o.packet_observer(move |direction, packet| log.observe(direction, packet));
    }
    Ok(o)
}

/// Connects once: the transport, CONNECT and CONNACK.
pub(crate) async fn connect(c: &Config, options: ConnectOptions) -> Result<Connected, Failure> {
    match Client::connect(options).await {
        Ok((client, events)) => Ok(Connected { client, events }),
        Err(e) => Err(connect_failure(c, &e)),
    }
}

/// Whether a failed first connection is one `mosquitto_loop_forever` would retry (the
/// transport opened, then the connection dropped).
pub(crate) fn is_loss(e: &ClientError) -> bool {
    match e {
        ClientError::ConnectionClosed | ClientError::KeepAliveTimeout(_) => true,
        ClientError::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
        ),
        ClientError::ConnectionLost(_) | ClientError::ServerDisconnect { .. } => true,
        _ => false,
    }
}

/// The refusal line of each tool: "Connection error: …".
pub(crate) fn refusal_line(c: &Config, code: midge_client::ReasonCode) -> (String, u8) {
    if c.protocol.is_v5() {
        let text = mosq::reason_string(code.0);
        let line = if code.0 == 0x84 && c.tool != Tool::Rr {
            format!(
                "Connection error: {text}. Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.\n"
            )
        } else {
            format!("Connection error: {text}\n")
        };
        (line, code.0)
    } else {
        let v3 = code.to_v3_connack().unwrap_or(code.0);
        // mosquitto_rr words MQTT 3 return codes with the MQTT 5 table.
        let text = if c.tool == Tool::Rr {
            mosq::reason_string(v3)
        } else {
            mosq::connack_string(v3)
        };
        (format!("Connection error: {text}\n"), v3)
    }
}

/// What the tools print, and exit with, when the first connection fails.
pub(crate) fn connect_failure(c: &Config, e: &ClientError) -> Failure {
    match e {
        ClientError::Refused { reason_code, .. } => {
            let (mut line, code) = refusal_line(c, *reason_code);
            if c.tool == Tool::Pub {
                // mosquitto_pub also reports how its loop ended.
                let rc = if c.protocol.is_v5() {
                    mosq::ERR_PROTOCOL
                } else {
                    5
                };
                line.push_str(&format!("Error: {}\n", mosq::strerror(rc)));
            }
            Failure::new(line, code)
        }
        ClientError::Io(io) => Failure::new(format!("Error: {}\n", mosq::os_error_text(io)), 1),
        ClientError::Timeout { .. } => Failure::new("Error: Connection timed out\n", 1),
        e if is_loss(e) => Failure::new(
            format!("Error: {}\n", mosq::strerror(mosq::ERR_CONN_LOST)),
            mosq::ERR_CONN_LOST,
        ),
        _ => Failure::new(
            format!("Error: {}\n", mosq::strerror(mosq::ERR_PROTOCOL)),
            mosq::ERR_PROTOCOL,
        ),
    }
}

/// The usage hint that follows an argument error.
pub(crate) fn usage_hint(tool: Tool) -> String {
    format!("\nUse '{} --help' to see usage.\n", tool.name())
}

/// The exit status of a failed write to stdout: a closed pipe (`midge sub | head`) is a
/// normal end, so 0; anything else is reported.
pub(crate) fn stdout_failure(c: &Config, e: &std::io::Error) -> u8 {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return 0;
    }
    err_printf(c, &format!("Error: {}\n", mosq::os_error_text(e)));
    1
}
