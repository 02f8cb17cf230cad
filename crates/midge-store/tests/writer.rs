//! The group-commit `Writer`: tickets complete in order and the committed watermark never
//! passes a batch that is not in the store, even with many submitting threads; `wait` returns
//! once the data is loadable, also from a fresh handle after `shutdown`; failed commits mark
//! their tickets failed and report lack of space until a commit succeeds; `Periodic`
//! durability completes tickets without syncing and syncs at its interval.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use midge_proto::{Publish, QoS, TopicName};
use midge_store::{
    DeliveryState, Durability, Op, RedbStore, Snapshot, Store, StoreError, StoreOptions,
    StoredDelivery, StoredMessage, StoredSession, Ticket, Writer,
};

fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        path: dir.join("store.redb"),
        cache_bytes: 8 << 20,
    }
}

fn msg(id: u64) -> StoredMessage {
    let mut publish = Publish::new(
        TopicName::new(format!("t/{id}")).unwrap(),
        Bytes::from(id.to_be_bytes().to_vec()),
    );
    publish.qos = QoS::AtLeastOnce;
    StoredMessage {
        publish,
        expires_at_ms: None,
        origin: None,
    }
}

fn session() -> StoredSession {
    StoredSession {
        expiry_interval: 600,
        disconnected_at_ms: None,
        subscriptions: Vec::new(),
        awaiting_pubrel: Vec::new(),
        will: None,
    }
}

/// The broker's QoS 1 pattern for one message queued for `client`.
fn enqueue(client: &str, id: u64) -> Vec<Op> {
    vec![
        Op::PutMessage {
            id,
            message: msg(id),
        },
        Op::PutDelivery {
            client_id: client.into(),
            seq: id,
            delivery: StoredDelivery {
                message_id: id,
                qos: 1,
                retain: false,
                subscription_ids: Vec::new(),
                shared: None,
                state: DeliveryState::Queued,
            },
        },
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A test store: wraps another, records every apply, and fails the first `fail` applies with
/// the error `make_err` returns.
struct Recording {
    inner: Arc<dyn Store>,
    /// (number of ops, sync flag, message ids put) for each successful apply.
    log: Mutex<Vec<(usize, bool, Vec<u64>)>>,
    /// Message ids committed so far.
    applied: Mutex<HashSet<u64>>,
    fail: AtomicUsize,
    make_err: fn() -> StoreError,
    /// Slows each apply down, to make batches pile up.
    delay: Duration,
    failures: AtomicUsize,
}

impl Recording {
    fn new(inner: Arc<dyn Store>) -> Recording {
        Recording {
            inner,
            log: Mutex::new(Vec::new()),
            applied: Mutex::new(HashSet::new()),
            fail: AtomicUsize::new(0),
            make_err: || StoreError::DiskFull("test: no space left on device".into()),
            delay: Duration::ZERO,
            failures: AtomicUsize::new(0),
        }
    }

    fn syncs(&self) -> Vec<(usize, bool)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(n, s, _)| (*n, *s))
            .collect()
    }
}

impl Store for Recording {
    fn apply(&self, ops: &[Op], sync: bool) -> Result<(), StoreError> {
        std::thread::sleep(self.delay);
        if self
            .fail
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            self.failures.fetch_add(1, Ordering::AcqRel);
            return Err((self.make_err)());
        }
        self.inner.apply(ops, sync)?;
        let ids: Vec<u64> = ops
            .iter()
            .filter_map(|op| match op {
                Op::PutMessage { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        self.applied.lock().unwrap().extend(ids.iter().copied());
        self.log.lock().unwrap().push((ops.len(), sync, ids));
        Ok(())
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        self.inner.load()
    }

    fn size_bytes(&self) -> u64 {
        self.inner.size_bytes()
    }
}

/// An in-memory store that keeps nothing (for tests that only look at the recording).
struct Null;

impl Store for Null {
    fn apply(&self, _: &[Op], _: bool) -> Result<(), StoreError> {
        Ok(())
    }
    fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot::default())
    }
    fn size_bytes(&self) -> u64 {
        0
    }
}

fn redb(dir: &Path) -> Arc<RedbStore> {
    Arc::new(RedbStore::open(options(dir)).unwrap())
}

#[test]
fn tickets_complete_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = redb(dir.path());
    let mut rec = Recording::new(store.clone());
    rec.delay = Duration::from_millis(2);
    let rec = Arc::new(rec);
    let writer = Writer::spawn(rec.clone(), Durability::Sync).unwrap();
    let mut watch = writer.committed();
    let seen = std::thread::spawn(move || {
        let mut seen = vec![*watch.borrow_and_update()];
        let rt = runtime();
        while rt.block_on(watch.changed()).is_ok() {
            let w = *watch.borrow_and_update();
            seen.push(w);
            if w == 200 {
                break;
            }
        }
        seen
    });
    session_setup(&writer);
    let mut tickets = Vec::new();
    for id in 1..=199u64 {
        tickets.push(writer.submit(enqueue("c", id)));
    }
    assert_eq!(
        tickets,
        (2..=200).collect::<Vec<Ticket>>(),
        "tickets are sequential"
    );
    runtime().block_on(writer.wait(200)).unwrap();
    assert!(
        tickets
            .iter()
            .all(|t| writer.is_done(*t) && !writer.failed(*t))
    );
    let seen = seen.join().unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "watermark went back: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&200));

    // The store saw the batches in ticket order, grouped into fewer commits than batches.
    let log = rec.log.lock().unwrap().clone();
    let order: Vec<u64> = log.iter().flat_map(|(_, _, ids)| ids.clone()).collect();
    assert_eq!(order, (1..=199).collect::<Vec<u64>>());
    assert!(
        log.iter().all(|(_, sync, _)| *sync),
        "Sync mode syncs every commit"
    );
    assert!(
        log.len() < 200,
        "no group commit: {} commits for 200 batches",
        log.len()
    );
    let status = writer.status();
    assert_eq!(status.commits as usize, log.len());
    assert_eq!(status.ops, 1 + 199 * 2);
    assert!(!status.out_of_space && status.last_error.is_none());
    assert!(status.store_bytes > 0);
    assert_eq!(store.load().unwrap().messages.len(), 199);
}

fn session_setup(writer: &Writer) {
    let t = writer.submit(vec![Op::PutSession {
        client_id: "c".into(),
        session: session(),
    }]);
    assert_eq!(t, 1);
}

#[test]
fn the_watermark_never_passes_an_uncommitted_ticket_under_concurrent_submits() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let store = redb(dir.path());
    let rec = Arc::new(Recording::new(store.clone()));
    let writer = Writer::spawn(rec.clone(), Durability::Sync).unwrap();
    session_setup(&writer);

    // Ticket → message id, filled in by the submitters after each submit returns.
    let submitted: Arc<Mutex<BTreeMap<Ticket, u64>>> = Arc::default();
    let finished = Arc::new(AtomicBool::new(false));
    let checker = {
        let rec = rec.clone();
        let submitted = submitted.clone();
        let finished = finished.clone();
        let mut watch = writer.committed();
        std::thread::spawn(move || {
            let mut checks = 0u64;
            let mut observed = Vec::new();
            loop {
                let done = finished.load(Ordering::Acquire);
                let w = *watch.borrow_and_update();
                observed.push(w);
                // Every ticket at or below the watermark must be committed.
                let known: Vec<(Ticket, u64)> = submitted
                    .lock()
                    .unwrap()
                    .range(..=w)
                    .map(|(t, id)| (*t, *id))
                    .collect();
                let applied = rec.applied.lock().unwrap().clone();
                for (t, id) in known {
                    assert!(
                        applied.contains(&id),
                        "watermark {w} passed ticket {t} (message {id}) before its commit"
                    );
                    checks += 1;
                }
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(observed.windows(2).all(|p| p[0] <= p[1]));
            checks
        })
    };
    let submitters: Vec<_> = (0..THREADS)
        .map(|t| {
            let writer = writer.clone();
            let submitted = submitted.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..PER_THREAD {
                    let id = 1 + t * PER_THREAD + i;
                    let ticket = writer.submit(enqueue("c", id));
                    submitted.lock().unwrap().insert(ticket, id);
                    mine.push(ticket);
                }
                mine
            })
        })
        .collect();
    let mut tickets: Vec<Ticket> = submitters
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    tickets.sort_unstable();
    let total = THREADS * PER_THREAD;
    assert_eq!(tickets, (2..=total + 1).collect::<Vec<Ticket>>());
    runtime().block_on(writer.wait(total + 1)).unwrap();
    finished.store(true, Ordering::Release);
    let checks = checker.join().unwrap();
    assert!(checks > 0);

    assert!(
        tickets
            .iter()
            .all(|t| writer.is_done(*t) && !writer.failed(*t))
    );
    let snap = store.load().unwrap();
    assert_eq!(snap.messages.len() as u64, total);
    assert_eq!(snap.sessions[0].deliveries.len() as u64, total);
    let commits = rec.log.lock().unwrap().len();
    eprintln!("{total} concurrent batches committed in {commits} commits");
}

#[tokio::test]
async fn wait_returns_once_the_data_is_loadable_even_from_a_fresh_handle() {
    let dir = tempfile::tempdir().unwrap();
    let store = redb(dir.path());
    let writer = Writer::spawn(store.clone(), Durability::Sync).unwrap();
    session_setup(&writer);
    let t = writer.submit(enqueue("c", 42));
    writer.wait(t).await.unwrap();
    // Loadable through the writer's own store at once...
    assert!(store.load().unwrap().messages.contains_key(&42));
    // ...and from a fresh handle once the writer has stopped and released the store.
    let other = writer.clone();
    let t2 = writer.submit(enqueue("c", 43));
    writer.shutdown();
    assert!(
        other.is_done(t2) && !other.failed(t2),
        "shutdown commits what was queued"
    );
    drop(store);
    let fresh = RedbStore::open(options(dir.path())).expect("released after shutdown");
    let snap = fresh.load().unwrap();
    assert!(snap.messages.contains_key(&42) && snap.messages.contains_key(&43));
    assert_eq!(snap.sessions[0].deliveries.len(), 2);

    // A handle that outlived the shutdown cannot commit anything, and says so.
    let late = other.submit(enqueue("c", 44));
    assert!(other.failed(late));
    assert!(other.wait(late).await.is_err());
    other.shutdown(); // already stopped: returns at once
}

#[test]
fn the_writer_stops_when_every_handle_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = redb(dir.path());
    let writer = Writer::spawn(store.clone(), Durability::Sync).unwrap();
    session_setup(&writer);
    writer.submit(enqueue("c", 1));
    drop(writer);
    // The thread drains the queue and drops its store reference.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Arc::strong_count(&store) > 1 {
        assert!(
            Instant::now() < deadline,
            "writer thread still holds the store"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(store);
    let fresh = RedbStore::open(options(dir.path())).unwrap();
    assert!(fresh.load().unwrap().messages.contains_key(&1));
}

#[tokio::test]
async fn failed_commits_mark_tickets_and_report_lack_of_space_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let store = redb(dir.path());
    let rec = Arc::new(Recording::new(store.clone()));
    rec.fail.store(2, Ordering::Release);
    let writer = Writer::spawn(rec.clone(), Durability::Sync).unwrap();

    let t1 = writer.submit(enqueue("c", 1));
    let err = writer.wait(t1).await.unwrap_err();
    assert!(err.contains("full"), "{err}");
    assert!(writer.is_done(t1) && writer.failed(t1));
    let status = writer.status();
    assert!(status.out_of_space);
    assert!(status.last_error.is_some());
    assert_eq!(status.commits, 0);

    let t2 = writer.submit(enqueue("c", 2));
    assert!(writer.wait(t2).await.is_err());
    assert!(writer.status().out_of_space);

    // Space is back: the next commit succeeds and clears the condition.
    let t3 = writer.submit(enqueue("c", 3));
    writer.wait(t3).await.unwrap();
    assert!(!writer.failed(t3));
    let status = writer.status();
    assert!(!status.out_of_space && status.last_error.is_none());
    assert_eq!(status.commits, 1);
    assert_eq!(rec.failures.load(Ordering::Acquire), 2);
    let snap = store.load().unwrap();
    // Deliveries for "c" without a session record are not loaded; the messages are.
    assert_eq!(snap.messages.keys().copied().collect::<Vec<_>>(), vec![3]);
    // The failed tickets stay failed.
    assert!(writer.failed(t1) && writer.failed(t2));
}

#[tokio::test]
async fn other_failures_fail_tickets_without_claiming_lack_of_space() {
    let mut rec = Recording::new(Arc::new(Null));
    rec.make_err = || StoreError::Io("test: EIO".into());
    rec.fail.store(1, Ordering::Release);
    let writer = Writer::spawn(Arc::new(rec), Durability::Sync).unwrap();
    let t = writer.submit(enqueue("c", 1));
    assert!(writer.wait(t).await.unwrap_err().contains("EIO"));
    assert!(!writer.status().out_of_space);
    let t = writer.submit(enqueue("c", 2));
    writer.wait(t).await.unwrap();
    assert!(writer.status().last_error.is_none());
}

#[tokio::test]
async fn periodic_durability_completes_without_sync_and_syncs_at_the_interval() {
    let interval = Duration::from_millis(800);
    let rec = Arc::new(Recording::new(Arc::new(Null)));
    let writer = Writer::spawn(rec.clone(), Durability::Periodic(interval)).unwrap();
    let start = Instant::now();
    for id in 1..=3 {
        let t = writer.submit(enqueue("c", id));
        writer.wait(t).await.unwrap();
    }
    let elapsed = start.elapsed();
    let log = rec.syncs();
    assert!(log.iter().all(|(n, _)| *n == 2), "{log:?}");
    let first_unsynced = log.iter().all(|(_, sync)| !sync);
    if elapsed < interval / 2 {
        // On a machine this slow the first interval may be over; otherwise nothing synced.
        assert!(
            first_unsynced,
            "commits inside the first interval must not sync: {log:?}"
        );
    }

    // Within about one interval, an empty synced commit makes them durable.
    tokio::time::sleep(interval * 2).await;
    let log = rec.syncs();
    if first_unsynced {
        assert!(
            log.iter().any(|(n, sync)| *n == 0 && *sync),
            "no sync after the interval: {log:?}"
        );
    }
    let syncs = log.iter().filter(|(_, s)| *s).count();
    // With nothing new to sync the writer stays quiet.
    tokio::time::sleep(interval * 2).await;
    assert_eq!(rec.syncs().iter().filter(|(_, s)| *s).count(), syncs);

    // Another commit is followed by a sync within about one interval.
    let t = writer.submit(enqueue("c", 4));
    writer.wait(t).await.unwrap();
    tokio::time::sleep(interval * 2).await;
    let log = rec.syncs();
    let pos = log.iter().rposition(|(n, _)| *n == 2).unwrap();
    assert!(
        log[pos..].iter().any(|(_, s)| *s),
        "commit 4 never synced: {log:?}"
    );

    // Shutdown syncs what is unsynced.
    let t = writer.submit(enqueue("c", 5));
    writer.wait(t).await.unwrap();
    let before = rec.syncs();
    writer.shutdown();
    let after = rec.syncs();
    if before.last().is_some_and(|(_, s)| !s) {
        assert_eq!(after.last(), Some(&(0, true)), "{after:?}");
    }
}

#[tokio::test]
async fn sync_durability_syncs_every_commit() {
    let rec = Arc::new(Recording::new(Arc::new(Null)));
    let writer = Writer::spawn(rec.clone(), Durability::Sync).unwrap();
    for id in 1..=5 {
        let t = writer.submit(enqueue("c", id));
        writer.wait(t).await.unwrap();
    }
    let log = rec.syncs();
    assert_eq!(log.len(), 5);
    assert!(log.iter().all(|(_, s)| *s));
}
