//! The client's error type.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use midge_proto::{
    ByteString, ConnAck, DecodeError, EncodeError, PacketType, Properties, QoS, ReasonCode,
    TopicError,
};

/// Why a client operation failed, or why a connection ended.
///
/// The type is `Clone` so that one failure (for example a lost connection with reconnection
/// off) can be handed to every operation waiting on it; I/O errors are shared through an
/// [`Arc`] for that reason.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[source] Arc<io::Error>),
    /// The server answered CONNECT with a failure Reason Code (MQTT 3.x return codes are
    /// mapped to their MQTT 5 equivalents: 1 → 0x84, 2 → 0x85, 3 → 0x88, 4 → 0x86, 5 → 0x87).
    #[error("connection refused: {reason_code}{}", reason_suffix(&.connack.properties))]
    Refused {
        /// The CONNACK Reason Code.
        reason_code: ReasonCode,
        /// The whole CONNACK, with its properties (Reason String, Server Reference, …).
        connack: Box<ConnAck>,
    },
    /// The server closed the connection with a DISCONNECT (MQTT 5).
    #[error("the server sent DISCONNECT {reason_code}{}", reason_suffix(.properties))]
    ServerDisconnect {
        /// The DISCONNECT Reason Code.
        reason_code: ReasonCode,
        /// Its properties (Reason String, Server Reference, …).
        properties: Properties,
    },
    /// The server closed the network connection without a DISCONNECT.
    #[error("the server closed the connection")]
    ConnectionClosed,
    /// The server broke the protocol; the client sent DISCONNECT with `reason_code` (MQTT 5)
    /// and closed the connection.
    #[error("protocol error by the server ({reason_code}): {message}")]
    Protocol {
        /// The Reason Code sent in our DISCONNECT.
        reason_code: ReasonCode,
        /// What went wrong.
        message: String,
    },
    /// Bytes from the server could not be decoded.
    #[error("malformed packet from the server: {0}")]
    Decode(#[from] DecodeError),
    /// A packet could not be encoded (for example a property that the packet may not carry).
    #[error("cannot encode packet: {0}")]
    Encode(#[from] EncodeError),
    /// A topic name or filter is not valid.
    #[error("invalid topic: {0}")]
    Topic(#[from] TopicError),
    /// No PINGRESP arrived in time: the connection is considered broken.
    #[error("no PINGRESP within {0:?} of PINGREQ")]
    KeepAliveTimeout(Duration),
    /// An operation did not complete in time (`what` names it: "connect", "request").
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// The operation.
        what: &'static str,
        /// How long was waited.
        after: Duration,
    },
    /// The packet would exceed the server's Maximum Packet Size (`[MQTT-3.1.2-24]`); it was
    /// not sent.
    #[error("packet of {size} bytes exceeds the server's Maximum Packet Size of {maximum} bytes")]
    PacketTooLarge {
        /// The encoded size.
        size: usize,
        /// The server's Maximum Packet Size.
        maximum: u32,
    },
    /// The server's Maximum QoS is lower than the QoS asked for (`[MQTT-3.2.2-11]`); nothing
    /// was sent.
    #[error("QoS {requested} exceeds the server's Maximum QoS {maximum}")]
    QosNotSupported {
        /// The QoS of the message.
        requested: QoS,
        /// The server's Maximum QoS.
        maximum: QoS,
    },
    /// The server does not support retained messages (`[MQTT-3.2.2-14]`); nothing was sent.
    #[error("the server does not support retained messages")]
    RetainNotSupported,
    /// The server answered with a failure Reason Code: a PUBACK or PUBREC for a publish, a
    /// SUBACK for a single-filter subscribe.
    #[error("{packet} refused: {reason_code}{}", .reason_string.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
    Rejected {
        /// The packet that carried the refusal.
        packet: PacketType,
        /// Its Reason Code.
        reason_code: ReasonCode,
        /// Its Reason String, if any.
        reason_string: Option<ByteString>,
    },
    /// The feature needs MQTT 5 (for example the request/response helper).
    #[error("{0} requires MQTT 5")]
    RequiresV5(&'static str),
    /// The server asked for something this client does not implement (for example extended
    /// authentication with AUTH packets).
    #[error("not supported by this client: {0}")]
    Unsupported(&'static str),
    /// All 65,535 Packet Identifiers are in use.
    #[error("all 65535 packet identifiers are in use")]
    PacketIdsExhausted,
    /// The connection was lost while the operation was in progress and will not be resumed
    /// (reconnection is off or gave up).
    #[error("connection lost: {0}")]
    ConnectionLost(Box<ClientError>),
    /// The client has shut down ([`Client::disconnect`](crate::Client::disconnect) was
    /// called, or reconnection gave up), so the operation cannot run.
    #[error("the client is disconnected")]
    Disconnected,
}

fn reason_suffix(properties: &Properties) -> String {
    properties
        .reason_string()
        .map(|s| format!(": {s}"))
        .unwrap_or_default()
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(Arc::new(e))
    }
}

impl ClientError {
    /// The MQTT Reason Code this error carries, if any: the CONNACK of a refusal, the
    /// DISCONNECT of the server or of a protocol error, the acknowledgement of a rejection.
    pub fn reason_code(&self) -> Option<ReasonCode> {
        match self {
            ClientError::Refused { reason_code, .. }
            | ClientError::ServerDisconnect { reason_code, .. }
            | ClientError::Protocol { reason_code, .. }
            | ClientError::Rejected { reason_code, .. } => Some(*reason_code),
            ClientError::Decode(e) => Some(e.reason_code()),
            ClientError::ConnectionLost(inner) => inner.reason_code(),
            _ => None,
        }
    }

    pub(crate) fn protocol(reason_code: ReasonCode, message: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            reason_code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_display_names_the_reason() {
        let mut connack = ConnAck::new(ReasonCode::NOT_AUTHORIZED, false);
        connack
            .properties
            .push(midge_proto::Property::ReasonString("no".into()));
        let e = ClientError::Refused {
            reason_code: ReasonCode::NOT_AUTHORIZED,
            connack: Box::new(connack),
        };
        assert_eq!(
            e.to_string(),
            "connection refused: 0x87 (Not authorized): no"
        );
        assert_eq!(e.reason_code(), Some(ReasonCode::NOT_AUTHORIZED));
    }
}
