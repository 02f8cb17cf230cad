//! # midge-broker
//!
//! The Midge MQTT broker: MQTT 3.1, 3.1.1 and 5.0 sessions, routing, retained messages,
//! wills, shared subscriptions and limits, on top of the [`midge_proto`] codec.
//!
//! ## Overview
//! - [`Server`] binds the configured listeners and runs one task per connection.
//! - A connection task owns its socket, codec and session while connected
//!   (`connection/`); a PUBLISH is routed on the publisher's own task against the shared,
//!   sharded subscription index (`index`) and lands in each subscriber's bounded mailbox
//!   (`mailbox`), sharing one `Arc` of the message, never copying the payload.
//! - Sessions outlive connections in the registry (`session`); retained messages live in
//!   a topic trie (`retain_tree`).
//! - [`Config`] is the whole configuration model (TOML).
//!
//! ## Example
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = midge_broker::Server::bind(midge_broker::Config::default()).await?;
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(()) }
//! ```

pub mod auth;
mod broker;
pub mod config;
mod connection;
pub mod index;
mod mailbox;
pub mod message;
pub mod password;
mod persist;
pub mod retain_tree;
mod server;
mod session;
mod small_map;
pub mod stats;

pub use auth::{AllowAnonymous, AuthDecision, AuthRequest, Authenticator};
pub use config::Config;
pub use server::{BrokerHandle, Server};
