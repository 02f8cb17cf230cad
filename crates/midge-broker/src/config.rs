//! The configuration model. Every option has one home here, with its default and its meaning;
//! `midge.toml` maps onto these structs one to one (unknown keys are errors, never ignored).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use midge_proto::QoS;

/// The broker's whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where to accept MQTT connections. Default: one TCP listener on 127.0.0.1:1883
    /// (loopback only, as Mosquitto 2 with no configuration).
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Limits that protect the broker from heavy or hostile clients.
    pub limits: LimitsConfig,
    /// Session behaviour.
    pub session: SessionConfig,
    /// Retained messages.
    pub retain: RetainConfig,
    /// MQTT features the broker advertises and enforces.
    pub mqtt: MqttConfig,
    /// Durability: where and how persistent state is stored.
    pub store: StoreConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: vec![ListenerConfig::default()],
            limits: LimitsConfig::default(),
            session: SessionConfig::default(),
            retain: RetainConfig::default(),
            mqtt: MqttConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address and port to bind, e.g. `"127.0.0.1:1883"` or `"[::]:1883"`.
    pub bind: SocketAddr,
    /// Allow clients that send no user name. Transports and password files arrive with their
    /// own issue; until then every listener is anonymous.
    pub allow_anonymous: bool,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 1883)),
            allow_anonymous: true,
        }
    }
}

/// What happens when a session's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueFullPolicy {
    /// Drop the message that does not fit (Mosquitto's behaviour).
    DropNewest,
    /// Drop the oldest queued message to make room.
    DropOldest,
    /// Disconnect the client (its session keeps what was queued).
    Disconnect,
}

/// Limits. Each drop they cause is counted and logged, never silent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Maximum simultaneous client connections; 0 means no limit.
    pub max_connections: usize,
    /// Largest packet accepted from a client, in bytes, fixed header included (advertised as
    /// Maximum Packet Size). Default 2,000,000 as in Mosquitto 2.1.
    pub max_packet_size: u32,
    /// Largest number of QoS 1/2 messages in flight to one client at a time (Mosquitto's
    /// `max_inflight_messages`); the client's own Receive Maximum lowers it further.
    pub max_inflight_messages: u16,
    /// Receive Maximum advertised to MQTT 5 clients: how many QoS 1/2 PUBLISH packets a client
    /// may have unacknowledged towards the broker.
    pub receive_maximum: u16,
    /// Messages queued per session beyond the inflight window, online or offline
    /// (Mosquitto's `max_queued_messages`); 0 means no limit.
    pub max_queued_messages: usize,
    /// Payload bytes queued per session; 0 means no limit.
    pub max_queued_bytes: usize,
    /// What to do when a queue is full.
    pub queue_full_policy: QueueFullPolicy,
    /// Queue QoS 0 messages for offline persistent sessions (Mosquitto's `queue_qos0_messages`).
    pub queue_qos0_messages: bool,
    /// Seconds a new connection has to send CONNECT.
    pub connect_timeout_secs: u64,
    /// Bytes buffered for writing to one client before the broker stops reading from it.
    pub max_write_buffer: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 0,
            max_packet_size: 2_000_000,
            max_inflight_messages: 20,
            receive_maximum: 256,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            queue_full_policy: QueueFullPolicy::DropNewest,
            queue_qos0_messages: false,
            connect_timeout_secs: 10,
            max_write_buffer: 1 << 20,
        }
    }
}

impl LimitsConfig {
    /// The CONNECT timeout as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs.max(1))
    }
}

/// Sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Upper bound on the Session Expiry Interval a client may ask for, in seconds; larger
    /// requests are lowered and the value in force is returned in CONNACK.
    pub max_session_expiry_secs: u32,
    /// Expiry of MQTT 3.x persistent sessions (Clean Session 0), in seconds; 0 means they
    /// never expire (Mosquitto's `persistent_client_expiration` unset).
    pub persistent_client_expiration_secs: u32,
    /// Accept zero-length client identifiers and assign one (with Clean Start).
    pub allow_zero_length_clientid: bool,
    /// Prefix of server-assigned client identifiers.
    pub auto_id_prefix: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_session_expiry_secs: u32::MAX,
            persistent_client_expiration_secs: 0,
            allow_zero_length_clientid: true,
            auto_id_prefix: "auto-".to_owned(),
        }
    }
}

/// Retained messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetainConfig {
    /// Whether retained messages are supported (advertised as Retain Available).
    pub available: bool,
}

impl Default for RetainConfig {
    fn default() -> Self {
        RetainConfig { available: true }
    }
}

/// MQTT features.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Highest QoS accepted from clients (0, 1 or 2), advertised as Maximum QoS.
    pub max_qos: u8,
    /// Topic Alias Maximum advertised to MQTT 5 clients (aliases a client may set).
    pub topic_alias_maximum: u16,
    /// Keep Alive the server imposes on MQTT 5 clients (Server Keep Alive); 0 means the
    /// client's own value is used.
    pub server_keep_alive: u16,
    /// Largest Keep Alive accepted. MQTT 5 clients asking for more (or for 0) are told this
    /// value as Server Keep Alive; MQTT 3.x clients are refused (Mosquitto's behaviour).
    /// 0 means no limit.
    pub max_keepalive: u16,
    /// Whether wildcard subscriptions are allowed.
    pub wildcard_subscriptions: bool,
    /// Whether shared subscriptions are allowed.
    pub shared_subscriptions: bool,
    /// Whether subscription identifiers are supported.
    pub subscription_identifiers: bool,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            max_qos: 2,
            topic_alias_maximum: 64,
            server_keep_alive: 0,
            max_keepalive: 0,
            wildcard_subscriptions: true,
            shared_subscriptions: true,
            subscription_identifiers: true,
        }
    }
}

impl MqttConfig {
    /// `max_qos` as a [`QoS`].
    pub fn maximum_qos(&self) -> QoS {
        QoS::from_u8(self.max_qos.min(2)).unwrap_or(QoS::ExactlyOnce)
    }
}

/// When persistent state reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DurabilityMode {
    /// Every acknowledged QoS 1/2 message that must outlive its connection (retained, or
    /// queued for a persistent session) is synced to disk before its PUBACK/PUBREC.
    Sync,
    /// Commits are synced every `sync_interval_ms`; a crash may lose that interval.
    Periodic,
    /// Nothing is stored: state lives in memory only.
    None,
}

/// The embedded store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sync` (default), `periodic` or `none`.
    pub durability: DurabilityMode,
    /// Sync interval for `periodic`, in milliseconds.
    pub sync_interval_ms: u64,
    /// Directory of the store (`store.redb` inside it).
    pub data_dir: std::path::PathBuf,
    /// Page cache of the storage engine, in MiB.
    pub cache_mb: usize,
    /// Largest size of the stored messages and queue entries, in bytes; beyond it new
    /// persistent messages are refused with Quota exceeded (0x97) (MQTT 3.1.1 clients are
    /// disconnected) until consumed messages free room. The store file is larger than this
    /// (indexes, and space the engine keeps for reuse). 0 means no limit.
    pub max_store_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            durability: DurabilityMode::Sync,
            sync_interval_ms: 1000,
            data_dir: std::path::PathBuf::from("midge-data"),
            cache_mb: 64,
            max_store_bytes: 0,
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or names an unknown option.
    #[error("invalid configuration in {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text and validates it.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<text>".to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges the type system does not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listeners.is_empty() {
            return Err(ConfigError::Invalid(
                "at least one [[listener]] is required".into(),
            ));
        }
        if self.limits.max_packet_size < 20 {
            return Err(ConfigError::Invalid(
                "limits.max_packet_size must be at least 20".into(),
            ));
        }
        if self.limits.receive_maximum == 0 || self.limits.max_inflight_messages == 0 {
            return Err(ConfigError::Invalid(
                "limits.receive_maximum and limits.max_inflight_messages must be at least 1".into(),
            ));
        }
        if self.mqtt.max_qos > 2 {
            return Err(ConfigError::Invalid(
                "mqtt.max_qos must be 0, 1 or 2".into(),
            ));
        }
        Ok(())
    }

    /// The configuration as TOML (for `midge serve --print-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_only() {
        let c = Config::default();
        assert_eq!(c.listeners.len(), 1);
        assert!(c.listeners[0].bind.ip().is_loopback());
        assert_eq!(c.listeners[0].bind.port(), 1883);
    }

    #[test]
    fn unknown_options_are_errors() {
        let err = Config::from_toml("[limits]\nmax_conections = 5\n").unwrap_err();
        assert!(err.to_string().contains("max_conections"), "{err}");
    }

    #[test]
    fn toml_round_trips() {
        let mut c = Config::default();
        c.limits.queue_full_policy = QueueFullPolicy::DropOldest;
        c.listeners[0].bind = "127.0.0.1:1999".parse().unwrap();
        let back = Config::from_toml(&c.to_toml()).unwrap();
        assert_eq!(back, c);
    }
}
