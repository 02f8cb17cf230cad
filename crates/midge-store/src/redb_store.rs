//! The redb implementation of [`Store`](crate::Store).

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use parking_lot_free::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::codec;
use crate::error::StoreError;
use crate::model::{LoadedSession, Op, Snapshot};

/// The on-disk format version. Bump it (and add a reader for the old one) whenever a table
/// or record layout changes incompatibly.
pub const FORMAT_VERSION: u64 = 1;

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const MESSAGES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("messages");
const REFS: TableDefinition<'_, u64, u32> = TableDefinition::new("message_refs");
const SESSIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sessions");
const DELIVERIES: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("deliveries");
const RETAINED: TableDefinition<'_, &str, u64> = TableDefinition::new("retained");
const PUBRELS: TableDefinition<'_, (&str, u16), ()> = TableDefinition::new("awaiting_pubrel");

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The database file.
    pub path: PathBuf,
    /// Memory redb may use for its page cache.
    pub cache_bytes: usize,
}

impl StoreOptions {
    /// Options for the file `store.redb` in `data_dir`, with a 64 MiB cache.
    pub fn in_dir(data_dir: &Path) -> StoreOptions {
        StoreOptions {
            path: data_dir.join("store.redb"),
            cache_bytes: 64 << 20,
        }
    }
}

/// A store in one redb file.
pub struct RedbStore {
    options: StoreOptions,
    db: Mutex<Option<Database>>,
    /// Bytes of the message and delivery records (keys and values), counted by `load` and
    /// kept up to date by `apply`: what the broker's `max_store_bytes` limits. The file is
    /// larger (indexes, free space redb keeps for reuse) and never shrinks by itself.
    live_bytes: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.options.path)
            .finish()
    }
}

mod parking_lot_free {
    //! A poison-free mutex over `std::sync::Mutex` (a panic in the writer thread must not
    //! make the store unusable for a retry).
    pub(crate) struct Mutex<T>(std::sync::Mutex<T>);
    impl<T> Mutex<T> {
        pub(crate) fn new(v: T) -> Self {
            Mutex(std::sync::Mutex::new(v))
        }
        pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> StoreError {
    match e.raw_os_error() {
        // ENOSPC, EDQUOT
        Some(28) | Some(122) => StoreError::DiskFull(format!("{}: {e}", path.display())),
        // redb reports a damaged or foreign header ("Not a redb database: magic number
        // mismatch") as InvalidData: the operator needs the repair advice, not "store failure".
        _ if e.kind() == std::io::ErrorKind::InvalidData => StoreError::Corrupt {
            path: path.to_owned(),
            detail: e.to_string(),
        },
        _ => StoreError::Io(format!("{}: {e}", path.display())),
    }
}

fn storage_error(path: &Path, e: redb::StorageError) -> StoreError {
    match e {
        redb::StorageError::Corrupted(detail) => StoreError::Corrupt {
            path: path.to_owned(),
            detail,
        },
        redb::StorageError::Io(io) => io_error(path, &io),
        other => StoreError::Io(format!("{}: {other}", path.display())),
    }
}

fn database_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.to_owned()),
        redb::DatabaseError::Storage(s) => storage_error(path, s),
        redb::DatabaseError::UpgradeRequired(v) => StoreError::Version {
            path: path.to_owned(),
            found: u64::from(v),
            expected: FORMAT_VERSION,
        },
        other => StoreError::Corrupt {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// Maps any redb error type to ours through the umbrella `redb::Error`.
fn any_error(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(detail) => StoreError::Corrupt {
            path: path.to_owned(),
            detail,
        },
        redb::Error::Io(io) => io_error(path, &io),
        redb::Error::DatabaseAlreadyOpen => StoreError::InUse(path.to_owned()),
        other => StoreError::Io(format!("{}: {other}", path.display())),
    }
}

impl RedbStore {
    /// Opens (or creates) the store, checking its integrity and format version.
    ///
    /// A damaged file is reported as [`StoreError::Corrupt`] naming the file and what to do;
    /// it is never silently replaced.
    pub fn open(options: StoreOptions) -> Result<RedbStore, StoreError> {
        if let Some(dir) = options.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
        }
        let db = open_database(&options)?;
        let store = RedbStore {
            options,
            db: Mutex::new(Some(db)),
            live_bytes: std::sync::atomic::AtomicU64::new(0),
        };
        store.init_meta()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.options.path
    }

    fn init_meta(&self) -> Result<(), StoreError> {
        let path = self.options.path.clone();
        self.with_db(|db| {
            let txn = db.begin_write().map_err(|e| any_error(&path, e))?;
            {
                let mut meta = txn.open_table(META).map_err(|e| any_error(&path, e))?;
                let found = meta
                    .get("format_version")
                    .map_err(|e| any_error(&path, e))?
                    .map(|v| v.value());
                match found {
                    Some(v) if v != FORMAT_VERSION => {
                        return Err(StoreError::Version {
                            path: path.clone(),
                            found: v,
                            expected: FORMAT_VERSION,
                        });
                    }
                    Some(_) => {}
                    None => {
                        meta.insert("format_version", FORMAT_VERSION)
                            .map_err(|e| any_error(&path, e))?;
                    }
                }
                // Create every table so a read-only load of a fresh store finds them.
                txn.open_table(MESSAGES).map_err(|e| any_error(&path, e))?;
                txn.open_table(REFS).map_err(|e| any_error(&path, e))?;
                txn.open_table(SESSIONS).map_err(|e| any_error(&path, e))?;
                txn.open_table(DELIVERIES)
                    .map_err(|e| any_error(&path, e))?;
                txn.open_table(RETAINED).map_err(|e| any_error(&path, e))?;
                txn.open_table(PUBRELS).map_err(|e| any_error(&path, e))?;
            }
            txn.commit().map_err(|e| any_error(&path, e))
        })
    }

    /// Runs `f` on the open database, reopening it first if a previous I/O error closed it
    /// (redb refuses further writes after a failed commit until reopened).
    fn with_db<R>(
        &self,
        f: impl FnOnce(&Database) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut guard = self.db.lock();
        if guard.is_none() {
            *guard = Some(open_database(&self.options)?);
        }
        let Some(db) = guard.as_ref() else {
            return Err(StoreError::Io("store is closed".into()));
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(db))).unwrap_or_else(|_| {
            Err(StoreError::Corrupt {
                path: self.options.path.clone(),
                detail: "the storage engine panicked while reading the file".into(),
            })
        });
        if let Err(e) = &result
            && matches!(e, StoreError::DiskFull(_) | StoreError::Io(_))
        {
            // Drop the handle; the next call reopens (and recovers) the file.
            *guard = None;
        }
        result
    }

    /// Copies a damaged store aside (`<file>.damaged-<unix seconds>`), salvages every record
    /// that can still be read into a fresh store at the original path, and returns how many
    /// messages, sessions and retained topics were kept.
    pub fn repair(options: &StoreOptions) -> Result<(PathBuf, usize, usize, usize), StoreError> {
        let path = &options.path;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let with_suffix = |suffix: &str| {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            PathBuf::from(p)
        };
        // Never overwrite an earlier damaged copy (two repairs within a second).
        let mut aside = with_suffix(&format!(".damaged-{stamp}"));
        let mut n = 1;
        while aside.exists() {
            aside = with_suffix(&format!(".damaged-{stamp}-{n}"));
            n += 1;
        }
        std::fs::rename(path, &aside).map_err(|e| io_error(path, &e))?;
        // Salvage from a scratch copy: opening a file makes redb recover it in place, and the
        // copy kept for the operator must stay exactly as it was found.
        let scratch = with_suffix(".salvage");
        let salvaged = match std::fs::copy(&aside, &scratch) {
            Ok(_) => {
                let s = catch_unwind(AssertUnwindSafe(|| salvage(&scratch))).unwrap_or_default();
                let _ = std::fs::remove_file(&scratch);
                s
            }
            Err(e) => {
                let _ = std::fs::remove_file(&scratch);
                tracing::warn!(error = %e, "no room for a scratch copy; salvaging from the damaged copy itself");
                catch_unwind(AssertUnwindSafe(|| salvage(&aside))).unwrap_or_default()
            }
        };
        let fresh = RedbStore::open(options.clone())?;
        let mut ops = Vec::new();
        let mut kept_messages = HashSet::new();
        for (id, m) in &salvaged.messages {
            ops.push(Op::PutMessage {
                id: *id,
                message: m.clone(),
            });
        }
        for s in &salvaged.sessions {
            ops.push(Op::PutSession {
                client_id: s.client_id.clone(),
                session: s.session.clone(),
            });
            for (seq, d) in &s.deliveries {
                if salvaged.messages.contains_key(&d.message_id) {
                    kept_messages.insert(d.message_id);
                    ops.push(Op::PutDelivery {
                        client_id: s.client_id.clone(),
                        seq: *seq,
                        delivery: d.clone(),
                    });
                }
            }
        }
        let mut retained = 0;
        for (topic, id) in &salvaged.retained {
            if salvaged.messages.contains_key(id) {
                retained += 1;
                kept_messages.insert(*id);
                ops.push(Op::PutRetained {
                    topic: topic.clone(),
                    message_id: *id,
                });
            }
        }
        crate::Store::apply(&fresh, &ops, true)?;
        Ok((
            aside,
            kept_messages.len(),
            salvaged.sessions.len(),
            retained,
        ))
    }
}

fn open_database(options: &StoreOptions) -> Result<Database, StoreError> {
    let path = &options.path;
    let opened = catch_unwind(AssertUnwindSafe(|| {
        let mut builder = Database::builder();
        builder
            .set_cache_size(options.cache_bytes)
            .set_check_integrity_on_open(true);
        builder.create(path)
    }));
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(database_error(path, e)),
        Err(_) => Err(StoreError::Corrupt {
            path: path.clone(),
            detail: "the storage engine could not read the file".into(),
        }),
    }
}

/// Reads whatever can be read from a (possibly damaged) store, skipping what cannot: each
/// table is read on its own, and where keys are numbers (message ids, queue positions, packet
/// ids) a damaged page costs only the keys it holds, as reading resumes past it.
fn salvage(path: &Path) -> Snapshot {
    // Read-only opens first: they change nothing and need no repair when the file was closed
    // cleanly (the second one does not even need the allocator state). Then a normal open,
    // which repairs a file that was not closed cleanly, if the damage allows.
    let read_only = |mode: redb::ConcurrencyMode| {
        catch_unwind(AssertUnwindSafe(|| {
            let db = Database::builder()
                .set_concurrency_mode(mode)
                .open_read_only(path)
                .ok()?;
            let txn = db.begin_read().ok()?;
            Some(salvage_tables(&txn))
        }))
        .ok()
        .flatten()
    };
    if let Some(snap) = read_only(redb::ConcurrencyMode::ExclusiveWriter) {
        return snap;
    }
    if let Some(snap) = read_only(redb::ConcurrencyMode::SingleWriter) {
        return snap;
    }
    catch_unwind(AssertUnwindSafe(|| {
        let db = Database::builder().create(path).ok()?;
        let txn = db.begin_read().ok()?;
        Some(salvage_tables(&txn))
    }))
    .ok()
    .flatten()
    .unwrap_or_default()
}

fn salvage_tables(txn: &redb::ReadTransaction) -> Snapshot {
    let mut snap = Snapshot::default();
    if let Ok(t) = txn.open_table(MESSAGES) {
        let found = read_around_damage(0, u64::MAX, |from, limit, out| {
            let Ok(range) = t.range(from..) else {
                return false;
            };
            for entry in range.take(limit) {
                let Ok((k, v)) = entry else { return false };
                if let Ok(m) = codec::decode_message(v.value()) {
                    out.push((k.value(), m));
                }
            }
            true
        });
        snap.messages.extend(found);
    }
    if let Ok(t) = txn.open_table(SESSIONS) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let Ok(iter) = t.iter() else { return };
            for entry in iter {
                let Ok((k, v)) = entry else { return };
                if let Ok(session) = codec::decode_session(v.value()) {
                    snap.sessions.push(LoadedSession {
                        client_id: k.value().to_owned(),
                        session,
                        deliveries: Vec::new(),
                    });
                }
            }
        }));
    }
    let deliveries = txn.open_table(DELIVERIES).ok();
    let pubrels = txn.open_table(PUBRELS).ok();
    for s in &mut snap.sessions {
        let c = s.client_id.as_str();
        if let Some(t) = &deliveries {
            s.deliveries = read_around_damage(0, u64::MAX, |from, limit, out| {
                let Ok(range) = t.range((c, from)..=(c, u64::MAX)) else {
                    return false;
                };
                for entry in range.take(limit) {
                    let Ok((k, v)) = entry else { return false };
                    if let Ok(d) = codec::decode_delivery(v.value()) {
                        out.push((k.value().1, d));
                    }
                }
                true
            });
        }
        if let Some(t) = &pubrels {
            s.session.awaiting_pubrel =
                read_around_damage(0, u64::from(u16::MAX), |from, limit, out| {
                    let Ok(range) = t.range((c, from as u16)..=(c, u16::MAX)) else {
                        return false;
                    };
                    for entry in range.take(limit) {
                        let Ok((k, _)) = entry else { return false };
                        let id = k.value().1;
                        out.push((u64::from(id), id));
                    }
                    true
                })
                .into_iter()
                .map(|(_, id)| id)
                .collect();
        }
    }
    if let Ok(t) = txn.open_table(RETAINED) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let Ok(iter) = t.iter() else { return };
            for entry in iter {
                let Ok((k, v)) = entry else { return };
                snap.retained.push((k.value().to_owned(), v.value()));
            }
        }));
    }
    snap
}

/// Collects, in key order, the entries with keys in `lo..=hi` that `read` can reach.
/// `read(from, limit, out)` appends up to `limit` entries from key `from` on and returns whether
/// it got them (or reached the end) without an error; it may also panic. After a failure,
/// reading resumes at the smallest key past it from which the first entry can be read, found
/// by doubling the distance and then bisecting.
fn read_around_damage<T>(
    lo: u64,
    hi: u64,
    read: impl Fn(u64, usize, &mut Vec<(u64, T)>) -> bool,
) -> Vec<(u64, T)> {
    let attempt = |from: u64, limit: usize, out: &mut Vec<(u64, T)>| {
        catch_unwind(AssertUnwindSafe(|| read(from, limit, out))).unwrap_or(false)
    };
    let probe = |from: u64| attempt(from, 1, &mut Vec::new());
    let mut out = Vec::new();
    let mut from = lo;
    loop {
        let before = out.len();
        if attempt(from, usize::MAX, &mut out) {
            return out;
        }
        // Unreadable from just past the last entry read (or from `from` itself).
        let bad = match out[before..].last() {
            Some((k, _)) => k.saturating_add(1),
            None => from,
        };
        if bad >= hi {
            return out;
        }
        let mut failed = bad;
        let mut good = None;
        let mut step = 1u64;
        loop {
            let next = bad.saturating_add(step).min(hi);
            if probe(next) {
                good = Some(next);
                break;
            }
            failed = next;
            if next == hi {
                break;
            }
            step = step.saturating_mul(2);
        }
        let Some(mut good) = good else {
            return out;
        };
        while good - failed > 1 {
            let mid = failed + (good - failed) / 2;
            if probe(mid) {
                good = mid;
            } else {
                failed = mid;
            }
        }
        from = good;
    }
}

impl crate::Store for RedbStore {
    fn apply(&self, ops: &[Op], sync: bool) -> Result<(), StoreError> {
        let path = self.options.path.clone();
        let e = |err: redb::Error| any_error(&path, err);
        // Change of the message and delivery records' size, applied once committed.
        let mut delta: i64 = 0;
        let len = |n: usize| n as i64;
        let committed = self.with_db(|db| {
            let mut txn = db.begin_write().map_err(|x| e(x.into()))?;
            txn.set_durability(if sync {
                redb::Durability::Immediate
            } else {
                redb::Durability::None
            })
            .map_err(|x| StoreError::Io(x.to_string()))?;
            {
                let mut messages = txn.open_table(MESSAGES).map_err(|x| e(x.into()))?;
                let mut refs = txn.open_table(REFS).map_err(|x| e(x.into()))?;
                let mut sessions = txn.open_table(SESSIONS).map_err(|x| e(x.into()))?;
                let mut deliveries = txn.open_table(DELIVERIES).map_err(|x| e(x.into()))?;
                let mut retained = txn.open_table(RETAINED).map_err(|x| e(x.into()))?;
                let mut pubrels = txn.open_table(PUBRELS).map_err(|x| e(x.into()))?;
                // Messages stored in this batch or whose last reference went in it: freed at
                // the end of the batch if still unreferenced, so a reference dropped and added
                // again within one batch (a delivery moved to another seq, a queue rewritten)
                // keeps its message.
                let mut unreferenced: Vec<u64> = Vec::new();
                let incref =
                    |refs: &mut redb::Table<'_, u64, u32>, id: u64| -> Result<(), StoreError> {
                        let n = refs
                            .get(id)
                            .map_err(|x| e(x.into()))?
                            .map_or(0, |v| v.value());
                        refs.insert(id, n + 1).map_err(|x| e(x.into()))?;
                        Ok(())
                    };
                let decref = |refs: &mut redb::Table<'_, u64, u32>,
                              unreferenced: &mut Vec<u64>,
                              id: u64|
                 -> Result<(), StoreError> {
                    let n = refs
                        .get(id)
                        .map_err(|x| e(x.into()))?
                        .map_or(0, |v| v.value());
                    if n <= 1 {
                        refs.remove(id).map_err(|x| e(x.into()))?;
                        unreferenced.push(id);
                    } else {
                        refs.insert(id, n - 1).map_err(|x| e(x.into()))?;
                    }
                    Ok(())
                };
                for op in ops {
                    match op {
                        Op::PutMessage { id, message } => {
                            let bytes = codec::encode_message(message)?;
                            let old = messages
                                .insert(*id, bytes.as_slice())
                                .map_err(|x| e(x.into()))?
                                .map_or(-8, |v| len(v.value().len()));
                            delta += len(bytes.len()) - old;
                            unreferenced.push(*id);
                        }
                        Op::PutSession { client_id, session } => {
                            let bytes = codec::encode_session(session)?;
                            sessions
                                .insert(client_id.as_str(), bytes.as_slice())
                                .map_err(|x| e(x.into()))?;
                            for id in &session.awaiting_pubrel {
                                pubrels
                                    .insert((client_id.as_str(), *id), ())
                                    .map_err(|x| e(x.into()))?;
                            }
                        }
                        Op::DeleteSession { client_id } => {
                            sessions
                                .remove(client_id.as_str())
                                .map_err(|x| e(x.into()))?;
                            let cid = client_id.as_str();
                            pubrels
                                .retain_in((cid, 0)..=(cid, u16::MAX), |_, _| false)
                                .map_err(|x| e(x.into()))?;
                            let mut gone = Vec::new();
                            for entry in deliveries
                                .range((client_id.as_str(), 0)..=(client_id.as_str(), u64::MAX))
                                .map_err(|x| e(x.into()))?
                            {
                                let (k, v) = entry.map_err(|x| e(x.into()))?;
                                let seq = k.value().1;
                                let d = codec::decode_delivery(v.value())?;
                                gone.push((seq, d.message_id));
                            }
                            for (seq, message_id) in gone {
                                if let Some(v) = deliveries
                                    .remove((client_id.as_str(), seq))
                                    .map_err(|x| e(x.into()))?
                                {
                                    delta -= len(client_id.len() + 8 + v.value().len());
                                }
                                decref(&mut refs, &mut unreferenced, message_id)?;
                            }
                        }
                        Op::PutDelivery {
                            client_id,
                            seq,
                            delivery,
                        } => {
                            let bytes = codec::encode_delivery(delivery);
                            delta += len(client_id.len() + 8 + bytes.len());
                            let old = deliveries
                                .insert((client_id.as_str(), *seq), bytes.as_slice())
                                .map_err(|x| e(x.into()))?
                                .map(|v| {
                                    delta -= len(client_id.len() + 8 + v.value().len());
                                    codec::decode_delivery(v.value())
                                });
                            match old {
                                Some(Ok(old)) if old.message_id == delivery.message_id => {}
                                Some(Ok(old)) => {
                                    incref(&mut refs, delivery.message_id)?;
                                    decref(&mut refs, &mut unreferenced, old.message_id)?;
                                }
                                _ => incref(&mut refs, delivery.message_id)?,
                            }
                        }
                        Op::DeleteDelivery { client_id, seq } => {
                            let old = deliveries
                                .remove((client_id.as_str(), *seq))
                                .map_err(|x| e(x.into()))?
                                .map(|v| {
                                    delta -= len(client_id.len() + 8 + v.value().len());
                                    codec::decode_delivery(v.value())
                                });
                            if let Some(old) = old {
                                decref(&mut refs, &mut unreferenced, old?.message_id)?;
                            }
                        }
                        Op::PutRetained { topic, message_id } => {
                            let old = retained
                                .insert(topic.as_str(), *message_id)
                                .map_err(|x| e(x.into()))?
                                .map(|v| v.value());
                            if old != Some(*message_id) {
                                incref(&mut refs, *message_id)?;
                                if let Some(old) = old {
                                    decref(&mut refs, &mut unreferenced, old)?;
                                }
                            }
                        }
                        Op::DeleteRetained { topic } => {
                            let old = retained
                                .remove(topic.as_str())
                                .map_err(|x| e(x.into()))?
                                .map(|v| v.value());
                            if let Some(old) = old {
                                decref(&mut refs, &mut unreferenced, old)?;
                            }
                        }
                        Op::PutPubRel {
                            client_id,
                            packet_id,
                        } => {
                            pubrels
                                .insert((client_id.as_str(), *packet_id), ())
                                .map_err(|x| e(x.into()))?;
                        }
                        Op::DeletePubRel {
                            client_id,
                            packet_id,
                        } => {
                            pubrels
                                .remove((client_id.as_str(), *packet_id))
                                .map_err(|x| e(x.into()))?;
                        }
                    }
                }
                // A message nobody ended up referencing (e.g. its only subscriber's session
                // ended in the same batch, or its last delivery was acknowledged) is not kept.
                for id in unreferenced {
                    if refs.get(id).map_err(|x| e(x.into()))?.is_none()
                        && let Some(v) = messages.remove(id).map_err(|x| e(x.into()))?
                    {
                        delta -= 8 + len(v.value().len());
                    }
                }
            }
            txn.commit().map_err(|x| e(x.into()))
        });
        if committed.is_ok() {
            let live = &self.live_bytes;
            let _ = live.fetch_update(
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
                |b| Some(b.saturating_add_signed(delta)),
            );
        }
        committed
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        let path = self.options.path.clone();
        let e = |err: redb::Error| any_error(&path, err);
        self.with_db(|db| {
            let txn = db.begin_read().map_err(|x| e(x.into()))?;
            let mut snap = Snapshot::default();
            let mut live = 0u64;
            let t = txn.open_table(MESSAGES).map_err(|x| e(x.into()))?;
            for entry in t.iter().map_err(|x| e(x.into()))? {
                let (k, v) = entry.map_err(|x| e(x.into()))?;
                live += 8 + v.value().len() as u64;
                snap.messages
                    .insert(k.value(), codec::decode_message(v.value())?);
            }
            let mut queues: HashMap<String, Vec<(u64, crate::StoredDelivery)>> = HashMap::new();
            let t = txn.open_table(DELIVERIES).map_err(|x| e(x.into()))?;
            for entry in t.iter().map_err(|x| e(x.into()))? {
                let (k, v) = entry.map_err(|x| e(x.into()))?;
                let (client, seq) = k.value();
                live += (client.len() + 8 + v.value().len()) as u64;
                queues
                    .entry(client.to_owned())
                    .or_default()
                    .push((seq, codec::decode_delivery(v.value())?));
            }
            let mut pubrel_ids: HashMap<String, Vec<u16>> = HashMap::new();
            let t = txn.open_table(PUBRELS).map_err(|x| e(x.into()))?;
            for entry in t.iter().map_err(|x| e(x.into()))? {
                let (k, _) = entry.map_err(|x| e(x.into()))?;
                let (client, id) = k.value();
                pubrel_ids.entry(client.to_owned()).or_default().push(id);
            }
            let t = txn.open_table(SESSIONS).map_err(|x| e(x.into()))?;
            for entry in t.iter().map_err(|x| e(x.into()))? {
                let (k, v) = entry.map_err(|x| e(x.into()))?;
                let client_id = k.value().to_owned();
                let mut session = codec::decode_session(v.value())?;
                // The table is authoritative (PutSession seeds it from the record): once every
                // id is released the record's stale list must not come back.
                session.awaiting_pubrel = pubrel_ids.remove(&client_id).unwrap_or_default();
                let deliveries = queues.remove(&client_id).unwrap_or_default();
                snap.sessions.push(LoadedSession {
                    client_id,
                    session,
                    deliveries,
                });
            }
            let t = txn.open_table(RETAINED).map_err(|x| e(x.into()))?;
            for entry in t.iter().map_err(|x| e(x.into()))? {
                let (k, v) = entry.map_err(|x| e(x.into()))?;
                snap.retained.push((k.value().to_owned(), v.value()));
            }
            self.live_bytes
                .store(live, std::sync::atomic::Ordering::Release);
            Ok(snap)
        })
    }

    fn size_bytes(&self) -> u64 {
        std::fs::metadata(&self.options.path)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    fn live_bytes(&self) -> u64 {
        self.live_bytes.load(std::sync::atomic::Ordering::Acquire)
    }
}
