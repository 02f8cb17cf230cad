//! Start-up recovery time: builds a store holding `messages` queued 64-byte QoS 1 messages
//! spread over `sessions` persistent sessions, closes it, then times `RedbStore::open` (which
//! verifies every page's checksum) and `load()`.
//!
//! `cargo run --release -p midge-store --example recovery -- [messages] [sessions] [dir]`
//!
//! Defaults: 1,000,000 messages, 1,000 sessions, a temporary directory (removed afterwards).
//! With `dir`, an existing store there is reused as it is (delete it to rebuild).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use midge_proto::{Publish, QoS, TopicName};
use midge_store::{
    DeliveryState, Op, RedbStore, Store, StoreOptions, StoredDelivery, StoredMessage, StoredSession,
};

fn build(dir: &Path, messages: u64, sessions: u64) {
    let t = Instant::now();
    let store = RedbStore::open(StoreOptions::in_dir(dir)).unwrap();
    let session = StoredSession {
        expiry_interval: 3600,
        disconnected_at_ms: Some(1_700_000_000_000),
        subscriptions: Vec::new(),
        awaiting_pubrel: Vec::new(),
        will: None,
    };
    let ops: Vec<Op> = (0..sessions)
        .map(|c| Op::PutSession {
            client_id: format!("client-{c:05}"),
            session: session.clone(),
        })
        .collect();
    store.apply(&ops, true).unwrap();
    let payload = Bytes::from(vec![0x42u8; 64]);
    let mut id = 1;
    while id <= messages {
        let end = (id + 20_000).min(messages + 1);
        let mut ops = Vec::with_capacity(2 * (end - id) as usize);
        for i in id..end {
            let mut publish = Publish::new(
                TopicName::new(format!("site/7/device/{}/telemetry", i % 1000)).unwrap(),
                payload.clone(),
            );
            publish.qos = QoS::AtLeastOnce;
            ops.push(Op::PutMessage {
                id: i,
                message: StoredMessage {
                    publish,
                    expires_at_ms: None,
                    origin: Some("publisher-1".into()),
                },
            });
            ops.push(Op::PutDelivery {
                client_id: format!("client-{:05}", i % sessions),
                seq: i,
                delivery: StoredDelivery {
                    message_id: i,
                    qos: 1,
                    retain: false,
                    subscription_ids: Vec::new(),
                    shared: None,
                    state: DeliveryState::Queued,
                },
            });
        }
        store.apply(&ops, end > messages).unwrap();
        id = end;
    }
    println!(
        "built {messages} queued messages for {sessions} sessions in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let messages: u64 = args.get(1).map_or(1_000_000, |a| a.parse().unwrap());
    let sessions: u64 = args.get(2).map_or(1_000, |a| a.parse().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let dir = args
        .get(3)
        .map_or(tmp.path().to_path_buf(), std::path::PathBuf::from);
    if !StoreOptions::in_dir(&dir).path.exists() {
        build(&dir, messages, sessions);
    }
    let path = StoreOptions::in_dir(&dir).path;
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "store {}: {size} bytes ({:.0} bytes per queued message)",
        path.display(),
        size as f64 / messages as f64
    );
    for round in 1..=3 {
        let t = Instant::now();
        let store = RedbStore::open(StoreOptions::in_dir(&dir)).unwrap();
        let opened = t.elapsed();
        let snap = store.load().unwrap();
        let total = t.elapsed();
        let queued: usize = snap.sessions.iter().map(|s| s.deliveries.len()).sum();
        println!(
            "round {round}: open {:.2} s + load {:.2} s = {:.2} s; {} messages, {} sessions, \
             {queued} queued",
            opened.as_secs_f64(),
            (total - opened).as_secs_f64(),
            total.as_secs_f64(),
            snap.messages.len(),
            snap.sessions.len()
        );
        drop(snap);
        drop(store);
    }
}
