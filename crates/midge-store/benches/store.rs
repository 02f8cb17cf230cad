//! Durable (synced) group-commit throughput of `RedbStore` for the broker's QoS 1 pattern, and
//! the store's size per queued message.
//!
//! `cargo bench -p midge-store --bench store`
//!
//! - `qos1_sync/{64B,1KiB}/batch-{1,16,256}`: one iteration is one synced commit holding, for
//!   each of `batch` new messages, `PutMessage` + `PutDelivery` (the message queued for one
//!   persistent session), plus the `DeleteDelivery` of every message of the previous commit (its
//!   PUBACK arrived), so the queue stays short and each message costs one insert of each record,
//!   one delete of each and its share of one fsync. Throughput is in messages (elements) per
//!   second.
//! - Before the timed groups, the footprint: 100,000 queued messages (64 B and 1 KiB payloads)
//!   written in synced batches of 256, and the file size divided by 100,000, printed to stderr.
//!
//! The store is created under the system temporary directory; what the figures mean depends on
//! that filesystem's fsync (see `docs/performance.md`).

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use midge_proto::{Property, Publish, QoS, TopicName};
use midge_store::{
    DeliveryState, Op, RedbStore, Store, StoreOptions, StoredDelivery, StoredMessage, StoredSession,
};

/// A message as the broker stores it: QoS 1, a realistic topic, one User Property.
fn message(id: u64, payload: &Bytes) -> StoredMessage {
    let mut publish = Publish::new(
        TopicName::new(format!("site/7/device/{}/telemetry", id % 1000)).unwrap(),
        payload.clone(),
    );
    publish.qos = QoS::AtLeastOnce;
    publish
        .properties
        .push(Property::UserProperty("src".into(), "bench".into()));
    StoredMessage {
        publish,
        expires_at_ms: None,
        origin: Some("publisher-1".into()),
    }
}

fn delivery(id: u64) -> StoredDelivery {
    StoredDelivery {
        message_id: id,
        qos: 1,
        retain: false,
        subscription_ids: vec![1],
        shared: None,
        state: DeliveryState::Queued,
    }
}

fn open(dir: &Path) -> RedbStore {
    let store = RedbStore::open(StoreOptions::in_dir(dir)).unwrap();
    let session = StoredSession {
        expiry_interval: 3600,
        disconnected_at_ms: None,
        subscriptions: Vec::new(),
        awaiting_pubrel: Vec::new(),
        will: None,
    };
    let ops: Vec<Op> = (0..1000)
        .map(|c| Op::PutSession {
            client_id: format!("client-{c}"),
            session: session.clone(),
        })
        .collect();
    store.apply(&ops, true).unwrap();
    store
}

fn client(id: u64) -> String {
    format!("client-{}", id % 1000)
}

/// Appends the ops that queue message `id` for one session.
fn enqueue(ops: &mut Vec<Op>, id: u64, payload: &Bytes) {
    ops.push(Op::PutMessage {
        id,
        message: message(id, payload),
    });
    ops.push(Op::PutDelivery {
        client_id: client(id),
        seq: id,
        delivery: delivery(id),
    });
}

fn qos1_sync(c: &mut Criterion) {
    let mut group = c.benchmark_group("qos1_sync");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    for (label, len) in [("64B", 64usize), ("1KiB", 1024)] {
        let payload = Bytes::from(vec![0x42u8; len]);
        for batch in [1u64, 16, 256] {
            let dir = tempfile::tempdir().unwrap();
            let store = open(dir.path());
            let mut next = 1u64;
            group.throughput(Throughput::Elements(batch));
            group.bench_with_input(
                BenchmarkId::new(label, format!("batch-{batch}")),
                &batch,
                |b, &batch| {
                    b.iter(|| {
                        let mut ops = Vec::with_capacity(batch as usize * 3);
                        // The previous commit's messages are acknowledged...
                        for id in next.saturating_sub(batch).max(1)..next {
                            ops.push(Op::DeleteDelivery {
                                client_id: client(id),
                                seq: id,
                            });
                        }
                        // ...and this commit's are stored and queued.
                        for id in next..next + batch {
                            enqueue(&mut ops, id, &payload);
                        }
                        next += batch;
                        store.apply(black_box(&ops), true).unwrap();
                    });
                },
            );
            let snap = store.load().unwrap();
            let queued: usize = snap.sessions.iter().map(|s| s.deliveries.len()).sum();
            assert_eq!(
                queued as u64, batch,
                "only the last commit's messages are queued"
            );
            assert_eq!(snap.messages.len() as u64, batch);
        }
    }
    group.finish();
}

/// Writes 100,000 queued messages and reports the file size per message.
fn footprint() {
    const N: u64 = 100_000;
    for (label, len) in [("64 B", 64usize), ("1 KiB", 1024)] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let empty = store.size_bytes();
        let payload = Bytes::from(vec![0x42u8; len]);
        let start = std::time::Instant::now();
        let mut id = 1;
        while id <= N {
            let mut ops = Vec::with_capacity(512);
            for i in id..(id + 256).min(N + 1) {
                enqueue(&mut ops, i, &payload);
            }
            id += 256;
            store.apply(&ops, true).unwrap();
        }
        let elapsed = start.elapsed();
        let bytes = store.size_bytes();
        let allocated = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(StoreOptions::in_dir(dir.path()).path)
                .map(|m| m.blocks() * 512)
                .unwrap_or(0)
        };
        let mut publish = message(1, &payload).publish;
        publish.packet_id = midge_proto::PacketId::new(1);
        let record = midge_proto::Packet::Publish(publish);
        let mut wire = bytes::BytesMut::new();
        record
            .encode(midge_proto::ProtocolVersion::V5, &mut wire)
            .unwrap();
        eprintln!(
            "footprint {label}: {N} queued messages ({} B PUBLISH each) in {bytes} bytes \
             ({allocated} allocated, {empty} when empty): {:.0} bytes per queued message; \
             written in {:.2} s ({:.0} messages/s in synced batches of 256)",
            wire.len(),
            (bytes - empty) as f64 / N as f64,
            elapsed.as_secs_f64(),
            N as f64 / elapsed.as_secs_f64()
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    // `cargo bench` passes --bench; skip the (slow) footprint when only listing or testing.
    let args: Vec<String> = std::env::args().collect();
    let filtered = args
        .iter()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"footprint".contains(a.as_str()));
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") && !filtered {
        footprint();
    }
    qos1_sync(&mut criterion);
    criterion.final_summary();
}
