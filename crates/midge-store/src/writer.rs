//! The group-commit writer: one thread owns the store's write side, drains every batch
//! submitted since its last commit, commits them in one transaction, and then announces the
//! highest ticket whose batch (and every earlier one) is committed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::Store;
use crate::model::Op;

/// When data reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is synced before its tickets complete: an acknowledged message survives
    /// `kill -9` and power loss.
    Sync,
    /// Commits complete without syncing; a sync runs at this interval. A crash may lose the
    /// last interval.
    Periodic(Duration),
}

/// Identifies one submitted batch.
pub type Ticket = u64;

/// What the writer has done so far.
#[derive(Debug, Clone, Default)]
pub struct WriterStatus {
    /// Commits made.
    pub commits: u64,
    /// Operations committed.
    pub ops: u64,
    /// The last commit failed for lack of space; new persistent messages should be refused
    /// (reason code 0x97) until a commit succeeds again.
    pub out_of_space: bool,
    /// The last error, if the last commit failed.
    pub last_error: Option<String>,
    /// Size of the store file in bytes after the last commit.
    pub store_bytes: u64,
    /// Bytes of the stored messages and queue entries after the last commit
    /// ([`Store::live_bytes`](crate::Store::live_bytes)).
    pub live_bytes: u64,
    /// Time spent committing (and syncing), in microseconds, over all commits.
    pub commit_micros: u64,
}

enum Request {
    Batch {
        ticket: Ticket,
        ops: Vec<Op>,
    },
    /// Commit what is queued, sync, and stop.
    Stop,
}

struct Shared {
    status: Mutex<WriterStatus>,
    /// Tickets whose batch failed to commit.
    failed: Mutex<BTreeSet<Ticket>>,
    /// The writer thread, until [`Writer::shutdown`] joins it.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Handle to the writer thread. Cheap to clone; the thread stops when every handle is gone
/// and the queue is drained, or when [`Writer::shutdown`] is called.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
    next: Arc<AtomicU64>,
    committed: watch::Receiver<Ticket>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("committed", &*self.committed.borrow())
            .finish()
    }
}

/// Largest number of operations committed in one transaction.
const MAX_BATCH_OPS: usize = 20_000;

impl Writer {
    /// Starts the writer thread over `store`.
    pub fn spawn(store: Arc<dyn Store>, durability: Durability) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Request>();
        let (committed_tx, committed) = watch::channel(0);
        // Sizes are known before the first commit (a full store is full from the start).
        let status = WriterStatus {
            store_bytes: store.size_bytes(),
            live_bytes: store.live_bytes(),
            ..WriterStatus::default()
        };
        let shared = Arc::new(Shared {
            status: Mutex::new(status),
            failed: Mutex::new(BTreeSet::new()),
            thread: Mutex::new(None),
        });
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("midge-store-writer".into())
            .spawn(move || {
                run(
                    store.as_ref(),
                    &rx,
                    &committed_tx,
                    &thread_shared,
                    durability,
                );
            })?;
        *lock(&shared.thread) = Some(handle);
        Ok(Writer {
            tx,
            next: Arc::new(AtomicU64::new(0)),
            committed,
            shared,
        })
    }

    /// Queues a batch for the next commit and returns its ticket. Never blocks.
    pub fn submit(&self, ops: Vec<Op>) -> Ticket {
        let ticket = self.next.fetch_add(1, Ordering::AcqRel) + 1;
        if self.tx.send(Request::Batch { ticket, ops }).is_err() {
            // The writer thread is gone (it only stops on shutdown): the batch is lost.
            lock(&self.shared.failed).insert(ticket);
        }
        ticket
    }

    /// A receiver of the highest ticket such that it and every earlier ticket are done
    /// (committed or failed).
    pub fn committed(&self) -> watch::Receiver<Ticket> {
        self.committed.clone()
    }

    /// Whether `ticket` is done.
    pub fn is_done(&self, ticket: Ticket) -> bool {
        *self.committed.borrow() >= ticket
    }

    /// Whether `ticket`'s batch failed to commit (meaningful once it is done).
    pub fn failed(&self, ticket: Ticket) -> bool {
        lock(&self.shared.failed).contains(&ticket)
    }

    /// Waits until `ticket` is done; `Ok` if it was committed, `Err` if it failed or the
    /// writer stopped before committing it.
    pub async fn wait(&self, ticket: Ticket) -> Result<(), String> {
        let mut rx = self.committed.clone();
        if rx.wait_for(|c| *c >= ticket).await.is_err() {
            return Err("the store writer has stopped".into());
        }
        if self.failed(ticket) {
            Err(self
                .status()
                .last_error
                .unwrap_or_else(|| "store failure".into()))
        } else {
            Ok(())
        }
    }

    /// The writer's status.
    pub fn status(&self) -> WriterStatus {
        lock(&self.shared.status).clone()
    }

    /// Stops the writer: every batch submitted before this call is committed (and synced,
    /// in [`Durability::Periodic`] mode), then the thread exits, dropping its reference to the
    /// store, and this returns. Batches submitted afterwards through other handles fail. A
    /// second call (from a clone) returns at once.
    pub fn shutdown(self) {
        let _ = self.tx.send(Request::Stop);
        let handle = lock(&self.shared.thread).take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("the store writer thread panicked");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn run(
    store: &dyn Store,
    rx: &mpsc::Receiver<Request>,
    committed: &watch::Sender<Ticket>,
    shared: &Shared,
    durability: Durability,
) {
    let mut watermark: Ticket = 0;
    let mut done: BTreeSet<Ticket> = BTreeSet::new();
    let mut last_sync = Instant::now();
    let mut unsynced = false;
    let sync_every = match durability {
        Durability::Sync => None,
        Durability::Periodic(d) => Some(d.max(Duration::from_millis(1))),
    };
    let mut stopping = false;
    loop {
        let first = if stopping {
            // Stop was received: commit whatever is still queued, then finish.
            match rx.try_recv() {
                Ok(r) => r,
                Err(_) => {
                    if unsynced {
                        let _ = store.apply(&[], true);
                    }
                    return;
                }
            }
        } else {
            match sync_every {
                None => match rx.recv() {
                    Ok(r) => r,
                    Err(_) => return,
                },
                Some(interval) => {
                    let wait = interval.saturating_sub(last_sync.elapsed());
                    match rx.recv_timeout(wait) {
                        Ok(r) => r,
                        Err(RecvTimeoutError::Timeout) => {
                            if unsynced && store.apply(&[], true).is_ok() {
                                unsynced = false;
                            }
                            last_sync = Instant::now();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            if unsynced {
                                let _ = store.apply(&[], true);
                            }
                            return;
                        }
                    }
                }
            }
        };
        let (mut tickets, mut ops) = match first {
            Request::Batch { ticket, ops } => (vec![ticket], ops),
            Request::Stop => {
                stopping = true;
                continue;
            }
        };
        while ops.len() < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(Request::Batch { ticket, ops: more }) => {
                    tickets.push(ticket);
                    ops.extend(more);
                }
                Ok(Request::Stop) => stopping = true,
                Err(_) => break,
            }
        }
        let sync = match sync_every {
            None => true,
            Some(interval) => stopping || last_sync.elapsed() >= interval,
        };
        let started = Instant::now();
        let result = store.apply(&ops, sync);
        let took = started.elapsed();
        {
            let mut status = lock(&shared.status);
            status.commit_micros += took.as_micros() as u64;
            match &result {
                Ok(()) => {
                    status.commits += 1;
                    status.ops += ops.len() as u64;
                    status.out_of_space = false;
                    status.last_error = None;
                }
                Err(e) => {
                    tracing::error!(error = %e, ops = ops.len(), "store commit failed");
                    status.out_of_space = e.is_out_of_space();
                    status.last_error = Some(e.to_string());
                }
            }
            status.store_bytes = store.size_bytes();
            status.live_bytes = store.live_bytes();
        }
        if result.is_err() {
            lock(&shared.failed).extend(tickets.iter().copied());
        } else if sync {
            unsynced = false;
            last_sync = Instant::now();
        } else {
            unsynced = true;
        }
        done.extend(tickets);
        while done.remove(&(watermark + 1)) {
            watermark += 1;
        }
        committed.send_replace(watermark);
    }
}
