//! # midge-store
//!
//! Durable state for the Midge broker: persistent sessions (subscriptions, QoS 2 state,
//! delayed wills), their queued and in-flight QoS 1/2 messages, and retained messages.
//!
//! ## Overview
//! - [`Store`] is the narrow interface an engine implements: apply a batch of [`Op`]s
//!   atomically, load a [`Snapshot`] at start-up. [`RedbStore`] is the implementation
//!   (`docs/decisions/0006-durable-store.md`).
//! - [`Writer`] runs one thread that drains submitted batches and group-commits them; a
//!   submitter gets a [`Ticket`] and learns from [`Writer::committed`] when its batch is on
//!   disk, so the broker sends PUBACK/PUBREC only after the commit that holds the message.
//! - A message queued for many sessions is stored once; the writer counts references and
//!   deletes a message when no queue entry and no retained topic uses it.
//! - The on-disk format carries a version (`FORMAT_VERSION`); a store written by another
//!   version is refused with a clear error.

mod codec;
mod error;
mod model;
mod redb_store;
mod writer;

pub use error::StoreError;
pub use model::{
    DeliveryState, LoadedSession, Op, Snapshot, StoredDelivery, StoredMessage, StoredSession,
    StoredSubscription, StoredWill,
};
pub use redb_store::{FORMAT_VERSION, RedbStore, StoreOptions};
pub use writer::{Durability, Ticket, Writer, WriterStatus};

/// A storage engine: everything the broker needs, and nothing more.
pub trait Store: Send + Sync + 'static {
    /// Applies `ops` in order, atomically. With `sync` the data is on stable storage when this
    /// returns; without it, it may be lost by a crash until the next synced commit.
    fn apply(&self, ops: &[Op], sync: bool) -> Result<(), StoreError>;

    /// Reads everything (start-up recovery).
    fn load(&self) -> Result<Snapshot, StoreError>;

    /// Bytes used on disk.
    fn size_bytes(&self) -> u64;

    /// Bytes of the stored messages and queue entries (what a size limit counts; the file
    /// is larger). Defaults to [`Store::size_bytes`].
    fn live_bytes(&self) -> u64 {
        self.size_bytes()
    }
}
