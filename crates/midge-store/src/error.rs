//! Store errors, worded for the operator who has to act on them.

use std::path::PathBuf;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store file is damaged.
    #[error(
        "the store file {path} is damaged ({detail}). Start with `midge serve --repair` to \
         recover what can be read, or move the file aside (keep a copy) to start empty"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the engine reported.
        detail: String,
    },
    /// Another process has the store open.
    #[error("the store file {0} is in use by another process (is another midge running?)")]
    InUse(PathBuf),
    /// The file was written by an incompatible version of Midge.
    #[error(
        "the store file {path} has format version {found}; this Midge reads version {expected}. \
         Use the Midge version that wrote it, or move the file aside to start empty"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// Version found.
        found: u64,
        /// Version expected.
        expected: u64,
    },
    /// The disk is full or over quota.
    #[error("the disk holding the store is full: {0}")]
    DiskFull(String),
    /// The store reached its configured size limit.
    #[error("the store has reached its size limit of {limit} bytes")]
    SizeLimit {
        /// The limit.
        limit: u64,
    },
    /// Any other I/O or engine failure.
    #[error("store failure: {0}")]
    Io(String),
    /// A record could not be decoded.
    #[error("undecodable {what} record: {detail}")]
    Decode {
        /// Which table.
        what: &'static str,
        /// Why.
        detail: String,
    },
}

impl StoreError {
    /// Whether this failure is a lack of space (disk full, quota, size limit): the broker
    /// answers new persistent messages with Quota exceeded (0x97) and recovers when space
    /// returns.
    pub fn is_out_of_space(&self) -> bool {
        matches!(self, StoreError::DiskFull(_) | StoreError::SizeLimit { .. })
    }
}
