//! # midge-client
//!
//! An async (tokio) MQTT client for MQTT 3.1, 3.1.1 and 5.0, built on Midge's sans-IO codec
//! [`midge_proto`]. Midge's command-line tools and `midge bench` use it.
//!
//! ## Overview
//! - [`Client::connect`] opens a connection from [`ConnectOptions`] (client identifier, Clean
//!   Start, Session Expiry, Keep Alive, credentials, a [`Will`] with properties, every CONNECT
//!   property) and returns once the CONNACK has arrived: a cloneable [`Client`] handle and
//!   the [`Events`] stream. A refusal is [`ClientError::Refused`] with its Reason Code.
//! - [`Client::publish`] completes when the QoS flow does (QoS 0 written, QoS 1 PUBACK, QoS 2
//!   PUBCOMP) and reports the acknowledgement's Reason Code; [`Client::publish_nowait`] only
//!   queues, so one task can keep a whole Receive Maximum window in flight. The server's
//!   Receive Maximum (messages beyond it wait their turn), Maximum Packet Size (a larger
//!   publish is an error), Maximum QoS, Retain Available and Server Keep Alive are honoured.
//! - [`Client::subscribe_with`] takes every subscription option and SUBSCRIBE property;
//!   [`Client::unsubscribe`]; [`Client::disconnect_with`] sends a Reason Code and properties.
//! - Received messages arrive on [`Events`] as [`Event::Message`] with their properties,
//!   along with connection changes ([`Event::Connected`], [`Event::Disconnected`],
//!   [`Event::Reconnecting`]).
//! - Lost connections are re-established with backoff ([`ReconnectOptions`]). If the server
//!   kept the session, unacknowledged PUBLISH (with DUP) and PUBREL are resent; if not, they
//!   are sent again as new messages and every subscription is made again.
//! - [`Client::request`] does MQTT 5 request/response: Response Topic plus Correlation Data,
//!   waiting for the matching answer; [`Client::respond`] answers one.
//! - Transports: TCP and unix sockets built in; anything else (TLS, WebSocket) plugs in as
//!   a [`Connector`] through [`TransportConfig::Custom`].
//!
//! ## Layout
//! | module | what |
//! |---|---|
//! | `client` | the [`Client`] handle and [`PublishHandle`] |
//! | `options` | [`ConnectOptions`], [`ReconnectOptions`], [`PacketDirection`] |
//! | `message` | [`Message`], [`PublishOutcome`] |
//! | `event` | [`Event`], [`Events`] |
//! | `transport` | [`TransportConfig`], [`Connector`], [`AsyncStream`] |
//! | `error` | [`ClientError`] |
//! | `connection` | the connection task: socket, decoder, write buffer, timers, reconnection |
//! | `connection::session` | session state: inflight windows, queues, subscriptions (no I/O) |
//! | `connection::out` | the write buffer, and when a QoS 0 publish counts as written |
//!
//! ## Example
//! ```
//! use midge_client::{Client, ConnectOptions, Event, QoS};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), midge_client::ClientError> {
//! # let broker = midge_testkit::TestBroker::start().await;
//! # let (host, port) = (broker.addr.ip().to_string(), broker.addr.port());
//! let (client, mut events) = Client::connect(ConnectOptions::tcp(host, port)).await?;
//! client.subscribe("sensors/+/temperature", QoS::AtLeastOnce).await?;
//! client
//!     .publish("sensors/t1/temperature", QoS::AtLeastOnce, false, "21.5")
//!     .await?;
//! while let Some(event) = events.recv().await {
//!     if let Event::Message(message) = event {
//!         assert_eq!(message.topic, "sensors/t1/temperature");
//!         assert_eq!(message.payload_str(), Some("21.5"));
//!         break;
//!     }
//! }
//! client.disconnect().await?;
//! # Ok(())
//! # }
//! ```

mod client;
mod connection;
mod error;
mod event;
mod message;
mod options;
mod transport;
mod util;

pub use client::{Client, PublishHandle};
pub use error::ClientError;
pub use event::{Event, Events};
pub use message::{Message, PublishOutcome};
pub use options::{ConnectOptions, PacketDirection, ReconnectOptions};
pub use transport::{AsyncStream, BoxStream, ConnectFuture, Connector, TransportConfig};

/// Re-exported from [`midge_proto`] so applications need not depend on it directly.
pub use midge_proto::{
    ByteString, ConnAck, Packet, PacketId, PacketType, Properties, Property, ProtocolVersion, QoS,
    ReasonCode, RetainHandling, SubAck, SubscribeFilter, SubscriptionOptions, TopicError,
    TopicFilter, TopicName, UnsubAck, Will,
};
