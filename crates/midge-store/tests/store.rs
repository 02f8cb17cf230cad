//! `RedbStore` against its contract: every record type round-trips through `apply`/`load` and
//! a reopen; a message shared by many queues is stored once and freed with its last reference;
//! a store written by another format version, a damaged file and a file in use are refused
//! with an error naming the file; `repair` keeps a copy and salvages what it can; and a
//! property test checks random op sequences against an in-memory model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use midge_proto::{
    ByteString, Properties, Property, Publish, QoS, RetainHandling, SubscriptionOptions, TopicName,
};
use midge_store::{
    DeliveryState, FORMAT_VERSION, LoadedSession, Op, RedbStore, Snapshot, Store, StoreError,
    StoreOptions, StoredDelivery, StoredMessage, StoredSession, StoredSubscription, StoredWill,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Helpers

fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        path: dir.join("store.redb"),
        cache_bytes: 4 << 20,
    }
}

fn open(dir: &Path) -> RedbStore {
    RedbStore::open(options(dir)).expect("open store")
}

/// A plain QoS 1 message.
fn msg(topic: &str, payload: &[u8]) -> StoredMessage {
    let mut publish = Publish::new(
        TopicName::new(topic).unwrap(),
        Bytes::copy_from_slice(payload),
    );
    publish.qos = QoS::AtLeastOnce;
    StoredMessage {
        publish,
        expires_at_ms: None,
        origin: None,
    }
}

/// A QoS 2 retained message carrying every PUBLISH property, with an expiry and an origin.
fn full_msg() -> StoredMessage {
    let mut publish = Publish::new(
        TopicName::new("sensors/é/temp").unwrap(),
        Bytes::from_static("21.5 °C".as_bytes()),
    );
    publish.qos = QoS::ExactlyOnce;
    publish.retain = true;
    let props: Vec<Property> = vec![
        Property::PayloadFormatIndicator(true),
        Property::MessageExpiryInterval(3600),
        Property::ContentType(ByteString::from("text/plain; charset=utf-8")),
        Property::ResponseTopic(TopicName::new("replies/abc").unwrap()),
        Property::CorrelationData(Bytes::from_static(&[0, 1, 2, 255, 0])),
        Property::UserProperty(ByteString::from("k"), ByteString::from("v1")),
        Property::UserProperty(ByteString::from("k"), ByteString::from("v2")),
        Property::UserProperty(ByteString::from(""), ByteString::from("")),
        Property::SubscriptionIdentifier(268_435_455),
    ];
    publish.properties = Properties::from(props);
    StoredMessage {
        publish,
        expires_at_ms: Some(1_900_000_000_123),
        origin: Some("publisher-7".into()),
    }
}

fn delivery(message_id: u64, state: DeliveryState) -> StoredDelivery {
    StoredDelivery {
        message_id,
        qos: 1,
        retain: false,
        subscription_ids: Vec::new(),
        shared: None,
        state,
    }
}

fn plain_session() -> StoredSession {
    StoredSession {
        expiry_interval: 60,
        disconnected_at_ms: None,
        subscriptions: Vec::new(),
        awaiting_pubrel: Vec::new(),
        will: None,
    }
}

fn full_session() -> StoredSession {
    let mut will = full_msg();
    will.publish.retain = false;
    will.origin = Some("client-1".into());
    StoredSession {
        expiry_interval: u32::MAX,
        disconnected_at_ms: Some(1_700_000_000_000),
        subscriptions: vec![
            StoredSubscription {
                filter: "a/+/c".into(),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
                identifier: Some(268_435_455),
            },
            StoredSubscription {
                filter: "$share/g1/x/#".into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendAtSubscribeIfNew,
                },
                identifier: Some(1),
            },
            StoredSubscription {
                filter: "#".into(),
                options: SubscriptionOptions::default(),
                identifier: None,
            },
        ],
        awaiting_pubrel: vec![1, 2, 65535],
        will: Some(StoredWill {
            message: will,
            publish_at_ms: 1_700_000_030_000,
        }),
    }
}

fn put_msg(id: u64, m: StoredMessage) -> Op {
    Op::PutMessage { id, message: m }
}

fn put_session(client: &str, s: StoredSession) -> Op {
    Op::PutSession {
        client_id: client.into(),
        session: s,
    }
}

fn put_delivery(client: &str, seq: u64, d: StoredDelivery) -> Op {
    Op::PutDelivery {
        client_id: client.into(),
        seq,
        delivery: d,
    }
}

fn del_delivery(client: &str, seq: u64) -> Op {
    Op::DeleteDelivery {
        client_id: client.into(),
        seq,
    }
}

fn put_retained(topic: &str, message_id: u64) -> Op {
    Op::PutRetained {
        topic: topic.into(),
        message_id,
    }
}

fn session<'a>(snap: &'a Snapshot, client: &str) -> &'a LoadedSession {
    snap.sessions
        .iter()
        .find(|s| s.client_id == client)
        .unwrap_or_else(|| panic!("no session {client} in {snap:?}"))
}

/// Writes a store holding enough data to span many pages, returning its snapshot.
fn populated_store(dir: &Path) -> Snapshot {
    let store = open(dir);
    for batch in 0..20u64 {
        let mut ops = Vec::new();
        for i in 0..50u64 {
            let id = batch * 50 + i + 1;
            let payload = vec![(id % 251) as u8; 700];
            ops.push(put_msg(id, msg(&format!("t/{id}"), &payload)));
            ops.push(put_session(&format!("c{}", id % 10), plain_session()));
            ops.push(put_delivery(
                &format!("c{}", id % 10),
                id,
                delivery(id, DeliveryState::Queued),
            ));
            if id % 7 == 0 {
                ops.push(put_retained(&format!("t/{id}"), id));
            }
        }
        store.apply(&ops, true).unwrap();
    }
    let snap = store.load().unwrap();
    assert_eq!(snap.messages.len(), 1000);
    snap
}

fn assert_names_file(err: &StoreError, path: &Path) {
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "error does not name {}: {text}",
        path.display()
    );
}

/// Opens a damaged store and checks the refusal: `Corrupt`, naming the file and `--repair`.
/// Whatever happens, it must not panic out of `open`/`load` nor come back silently empty.
fn expect_corrupt(dir: &Path, what: &str) -> StoreError {
    let path = options(dir).path;
    let result = std::panic::catch_unwind(|| match RedbStore::open(options(dir)) {
        Err(e) => Err(e),
        Ok(store) => store
            .load()
            .map(|snap| (snap.messages.len(), snap.sessions.len())),
    });
    let err = match result {
        Err(_) => panic!("{what}: a panic escaped RedbStore::open/load"),
        Ok(Ok(counts)) => panic!("{what}: the damaged store opened and loaded {counts:?}"),
        Ok(Err(e)) => e,
    };
    assert!(
        matches!(err, StoreError::Corrupt { .. }),
        "{what}: expected Corrupt, got {err:?}"
    );
    assert_names_file(&err, &path);
    assert!(
        err.to_string().contains("--repair"),
        "{what}: no --repair in {err}"
    );
    err
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn every_record_type_round_trips_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.load().unwrap(), Snapshot::default());

    let mut m2 = msg("plain/qos1", b"");
    m2.publish.qos = QoS::AtLeastOnce;
    let mut m3 = msg("plain/qos0", &[0xff; 300]);
    m3.publish.qos = QoS::AtMostOnce;
    m3.origin = Some(String::new());
    m3.expires_at_ms = Some(0);

    let states = [
        DeliveryState::Queued,
        DeliveryState::AwaitingPubAck(1),
        DeliveryState::AwaitingPubRec(65535),
        DeliveryState::AwaitingPubComp(300),
    ];
    let mut ops = vec![
        put_msg(1, full_msg()),
        put_msg(2, m2.clone()),
        put_msg(u64::MAX, m3.clone()),
        put_session("client-1", full_session()),
        put_session("", plain_session()),
        put_session("ü/ß", plain_session()),
    ];
    let mut expected_queue = Vec::new();
    for (i, state) in states.iter().enumerate() {
        let d = StoredDelivery {
            message_id: 1,
            qos: (i % 3) as u8,
            retain: i % 2 == 0,
            subscription_ids: (0..i as u32).map(|x| x * 1000 + 1).collect(),
            shared: None,
            state: *state,
        };
        let seq = (i as u64) * 10;
        ops.push(put_delivery("client-1", seq, d.clone()));
        expected_queue.push((seq, d));
    }
    // Shared-subscription deliveries, in each state too.
    for (i, state) in states.iter().enumerate() {
        let d = StoredDelivery {
            message_id: 2,
            qos: 2,
            retain: true,
            subscription_ids: vec![7],
            shared: Some(("group-é".into(), format!("a/{i}/#"))),
            state: *state,
        };
        let seq = u64::MAX - 3 + i as u64;
        ops.push(put_delivery("client-1", seq, d.clone()));
        expected_queue.push((seq, d));
    }
    ops.push(put_delivery(
        "",
        0,
        delivery(u64::MAX, DeliveryState::Queued),
    ));
    ops.push(put_retained("sensors/é/temp", 1));
    ops.push(put_retained("plain/qos0", u64::MAX));
    store.apply(&ops, true).unwrap();

    let snap = store.load().unwrap();
    let mut expected_messages = HashMap::new();
    expected_messages.insert(1, full_msg());
    expected_messages.insert(2, m2);
    expected_messages.insert(u64::MAX, m3);
    assert_eq!(snap.messages, expected_messages);
    assert_eq!(snap.max_message_id(), u64::MAX);
    let c1 = session(&snap, "client-1");
    assert_eq!(c1.session, full_session());
    assert_eq!(c1.deliveries, expected_queue, "queue in seq order");
    assert_eq!(session(&snap, "").session, plain_session());
    assert_eq!(
        session(&snap, "").deliveries,
        vec![(0, delivery(u64::MAX, DeliveryState::Queued))]
    );
    assert!(session(&snap, "ü/ß").deliveries.is_empty());
    let mut retained = snap.retained.clone();
    retained.sort();
    assert_eq!(
        retained,
        vec![
            ("plain/qos0".to_string(), u64::MAX),
            ("sensors/é/temp".to_string(), 1)
        ]
    );

    // The same snapshot after closing and reopening the file.
    drop(store);
    let reopened = open(dir.path());
    assert_eq!(reopened.load().unwrap(), snap);
    assert!(reopened.size_bytes() > 0);
}

#[test]
fn delivery_state_progress_replaces_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .apply(
            &[
                put_msg(5, msg("t", b"x")),
                put_session("c", plain_session()),
                put_delivery("c", 1, delivery(5, DeliveryState::Queued)),
            ],
            true,
        )
        .unwrap();
    for state in [
        DeliveryState::AwaitingPubRec(9),
        DeliveryState::AwaitingPubComp(9),
    ] {
        store
            .apply(&[put_delivery("c", 1, delivery(5, state))], true)
            .unwrap();
        let snap = store.load().unwrap();
        assert_eq!(
            session(&snap, "c").deliveries,
            vec![(1, delivery(5, state))]
        );
        assert_eq!(snap.messages.len(), 1);
    }
}

#[test]
fn qos2_packet_ids_awaiting_pubrel_are_kept_apart_from_the_session_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let pubrel = |id: u16, put: bool| {
        if put {
            Op::PutPubRel {
                client_id: "c".into(),
                packet_id: id,
            }
        } else {
            Op::DeletePubRel {
                client_id: "c".into(),
                packet_id: id,
            }
        }
    };
    let with_ids = StoredSession {
        awaiting_pubrel: vec![9, 3],
        ..plain_session()
    };
    store.apply(&[put_session("c", with_ids)], true).unwrap();
    let ids = |store: &RedbStore| {
        session(&store.load().unwrap(), "c")
            .session
            .awaiting_pubrel
            .clone()
    };
    assert_eq!(ids(&store), vec![3, 9]);
    store
        .apply(&[pubrel(7, true), pubrel(3, false)], true)
        .unwrap();
    assert_eq!(ids(&store), vec![7, 9]);
    // Every id released: none left, whatever the session record was written with.
    store
        .apply(&[pubrel(7, false), pubrel(9, false)], true)
        .unwrap();
    assert_eq!(ids(&store), Vec::<u16>::new());
    // Re-writing the session record (e.g. a new expiry at DISCONNECT) keeps the ids recorded
    // since.
    store.apply(&[pubrel(11, true)], true).unwrap();
    store
        .apply(&[put_session("c", plain_session())], true)
        .unwrap();
    assert_eq!(ids(&store), vec![11]);
    drop(store);
    let store = open(dir.path());
    assert_eq!(ids(&store), vec![11]);
    // Ending the session forgets them.
    store
        .apply(
            &[
                Op::DeleteSession {
                    client_id: "c".into(),
                },
                put_session("c", plain_session()),
            ],
            true,
        )
        .unwrap();
    assert_eq!(ids(&store), Vec::<u16>::new());
}

// ---------------------------------------------------------------------------------------------
// Reference counting

#[test]
fn a_message_queued_for_three_sessions_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut ops = vec![put_msg(1, msg("news", &[7; 1024]))];
    for c in ["a", "b", "c"] {
        ops.push(put_session(c, plain_session()));
        ops.push(put_delivery(c, 1, delivery(1, DeliveryState::Queued)));
    }
    ops.push(put_retained("news", 1));
    store.apply(&ops, true).unwrap();
    let snap = store.load().unwrap();
    assert_eq!(snap.messages.len(), 1, "stored once");
    assert!(snap.sessions.iter().all(|s| s.deliveries.len() == 1));

    // Each reference goes in turn; the message stays until the last one is gone.
    let steps: Vec<Op> = vec![
        del_delivery("a", 1),
        del_delivery("b", 1),
        Op::DeleteRetained {
            topic: "news".into(),
        },
        del_delivery("c", 1),
    ];
    for (i, op) in steps.iter().enumerate() {
        store.apply(std::slice::from_ref(op), true).unwrap();
        let snap = store.load().unwrap();
        let last = i == steps.len() - 1;
        assert_eq!(
            snap.messages.len(),
            usize::from(!last),
            "after step {i} ({op:?})"
        );
    }
    // Deleting what is already gone is harmless.
    store
        .apply(
            &[
                del_delivery("c", 1),
                Op::DeleteRetained {
                    topic: "news".into(),
                },
            ],
            true,
        )
        .unwrap();
    assert!(store.load().unwrap().messages.is_empty());
}

#[test]
fn delete_session_removes_its_queue_and_frees_unreferenced_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .apply(
            &[
                put_msg(1, msg("only-a", b"1")),
                put_msg(2, msg("shared", b"2")),
                put_session("a", plain_session()),
                put_session("ab", plain_session()),
                put_delivery("a", 1, delivery(1, DeliveryState::AwaitingPubAck(3))),
                put_delivery("a", 2, delivery(2, DeliveryState::Queued)),
                put_delivery("a", 3, delivery(1, DeliveryState::Queued)),
                // "ab" sorts right after "a": its queue must not be touched.
                put_delivery("ab", 1, delivery(2, DeliveryState::Queued)),
            ],
            true,
        )
        .unwrap();
    store
        .apply(
            &[Op::DeleteSession {
                client_id: "a".into(),
            }],
            true,
        )
        .unwrap();
    let snap = store.load().unwrap();
    assert_eq!(snap.sessions.len(), 1);
    assert_eq!(
        session(&snap, "ab").deliveries,
        vec![(1, delivery(2, DeliveryState::Queued))]
    );
    assert_eq!(snap.messages.keys().copied().collect::<Vec<_>>(), vec![2]);

    // A later session of the same name starts with an empty queue.
    store
        .apply(&[put_session("a", plain_session())], true)
        .unwrap();
    assert!(session(&store.load().unwrap(), "a").deliveries.is_empty());
}

#[test]
fn replacing_a_delivery_keeps_the_refcount() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .apply(
            &[
                put_msg(1, msg("t", b"1")),
                put_session("a", plain_session()),
                put_session("b", plain_session()),
                put_delivery("a", 1, delivery(1, DeliveryState::Queued)),
                put_delivery("b", 1, delivery(1, DeliveryState::Queued)),
            ],
            true,
        )
        .unwrap();
    // Progress a's delivery many times: the count must stay at 2 references, not grow.
    for pid in 1..=5 {
        store
            .apply(
                &[put_delivery(
                    "a",
                    1,
                    delivery(1, DeliveryState::AwaitingPubAck(pid)),
                )],
                true,
            )
            .unwrap();
    }
    store.apply(&[del_delivery("b", 1)], true).unwrap();
    assert_eq!(store.load().unwrap().messages.len(), 1, "a still holds it");
    store.apply(&[del_delivery("a", 1)], true).unwrap();
    assert!(
        store.load().unwrap().messages.is_empty(),
        "freed with the last reference (a refcount inflated by replacements would keep it)"
    );

    // Re-pointing a delivery at another message moves the reference.
    store
        .apply(
            &[
                put_msg(2, msg("t", b"2")),
                put_delivery("a", 7, delivery(2, DeliveryState::Queued)),
            ],
            true,
        )
        .unwrap();
    store
        .apply(
            &[
                put_msg(3, msg("t", b"3")),
                put_delivery("a", 7, delivery(3, DeliveryState::Queued)),
            ],
            true,
        )
        .unwrap();
    let snap = store.load().unwrap();
    assert_eq!(snap.messages.keys().copied().collect::<Vec<_>>(), vec![3]);
}

#[test]
fn retained_replace_and_delete_free_the_old_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .apply(&[put_msg(1, msg("r", b"old")), put_retained("r", 1)], true)
        .unwrap();
    // Same message again: no double count.
    store.apply(&[put_retained("r", 1)], true).unwrap();
    store
        .apply(&[put_msg(2, msg("r", b"new")), put_retained("r", 2)], true)
        .unwrap();
    let snap = store.load().unwrap();
    assert_eq!(snap.messages.keys().copied().collect::<Vec<_>>(), vec![2]);
    assert_eq!(snap.retained, vec![("r".to_string(), 2)]);
    store
        .apply(&[Op::DeleteRetained { topic: "r".into() }], true)
        .unwrap();
    let snap = store.load().unwrap();
    assert!(snap.messages.is_empty() && snap.retained.is_empty());
}

#[test]
fn a_reference_deleted_in_the_same_batch_leaves_no_orphan() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Stored, queued and acknowledged in one batch.
    store
        .apply(
            &[
                put_session("a", plain_session()),
                put_msg(1, msg("t", b"1")),
                put_delivery("a", 1, delivery(1, DeliveryState::Queued)),
                del_delivery("a", 1),
            ],
            true,
        )
        .unwrap();
    // Stored, queued for a session that ends in the same batch.
    store
        .apply(
            &[
                put_session("b", plain_session()),
                put_msg(2, msg("t", b"2")),
                put_delivery("b", 1, delivery(2, DeliveryState::Queued)),
                Op::DeleteSession {
                    client_id: "b".into(),
                },
            ],
            true,
        )
        .unwrap();
    // Retained and cleared in one batch; and stored with no reference at all.
    store
        .apply(
            &[
                put_msg(3, msg("r", b"3")),
                put_retained("r", 3),
                Op::DeleteRetained { topic: "r".into() },
                put_msg(4, msg("nobody", b"4")),
            ],
            true,
        )
        .unwrap();
    let snap = store.load().unwrap();
    assert!(snap.messages.is_empty(), "orphans: {:?}", snap.messages);
    assert_eq!(snap.sessions.len(), 1);
    assert!(snap.sessions[0].deliveries.is_empty());
}

#[test]
fn a_reference_moved_within_a_batch_keeps_its_message() {
    // Dropping the only reference and adding another in the same batch (a delivery moved to a
    // new seq, a queue rewritten by DeleteSession + PutSession + PutDelivery) must not free the
    // message in between.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .apply(
            &[
                put_msg(1, msg("t", b"1")),
                put_msg(2, msg("t", b"2")),
                put_session("a", plain_session()),
                put_delivery("a", 1, delivery(1, DeliveryState::AwaitingPubAck(1))),
                put_delivery("a", 2, delivery(2, DeliveryState::Queued)),
            ],
            true,
        )
        .unwrap();
    store
        .apply(
            &[
                del_delivery("a", 1),
                put_delivery("a", 10, delivery(1, DeliveryState::Queued)),
            ],
            true,
        )
        .unwrap();
    store
        .apply(
            &[
                Op::DeleteSession {
                    client_id: "a".into(),
                },
                put_session("a", plain_session()),
                put_delivery("a", 20, delivery(2, DeliveryState::Queued)),
            ],
            true,
        )
        .unwrap();
    let snap = store.load().unwrap();
    assert_eq!(
        session(&snap, "a").deliveries,
        vec![(20, delivery(2, DeliveryState::Queued))]
    );
    assert_eq!(
        snap.messages.keys().copied().collect::<Vec<_>>(),
        vec![2],
        "message 2 kept, message 1 freed with the session"
    );
}

#[test]
fn unsynced_commits_are_visible_and_made_durable_by_a_later_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .apply(&[put_msg(1, msg("r", b"1")), put_retained("r", 1)], false)
        .unwrap();
    assert_eq!(store.load().unwrap().retained.len(), 1);
    store.apply(&[], true).unwrap();
    drop(store);
    assert_eq!(open(dir.path()).load().unwrap().retained.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Refusals: version, damage, in use

#[test]
fn another_format_version_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let path = options(dir.path()).path;
    {
        use redb::ReadableTable;
        const META: redb::TableDefinition<'_, &str, u64> = redb::TableDefinition::new("meta");
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            assert_eq!(
                meta.get("format_version").unwrap().map(|v| v.value()),
                Some(FORMAT_VERSION)
            );
            meta.insert("format_version", FORMAT_VERSION + 41).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = RedbStore::open(options(dir.path())).unwrap_err();
    match &err {
        StoreError::Version {
            path: p,
            found,
            expected,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*found, FORMAT_VERSION + 41);
            assert_eq!(*expected, FORMAT_VERSION);
        }
        other => panic!("expected Version, got {other:?}"),
    }
    assert_names_file(&err, &path);
    let text = err.to_string();
    assert!(text.contains(&(FORMAT_VERSION + 41).to_string()), "{text}");
    // The refused file is left as it was.
    let db = redb::Database::create(&path).unwrap();
    drop(db);
    assert!(matches!(
        RedbStore::open(options(dir.path())),
        Err(StoreError::Version { .. })
    ));
}

#[test]
fn a_store_open_elsewhere_in_the_process_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let err = RedbStore::open(options(dir.path())).unwrap_err();
    assert!(matches!(err, StoreError::InUse(_)), "{err:?}");
    assert_names_file(&err, &options(dir.path()).path);
    // The first handle is unaffected; once it is gone the file opens again.
    first.apply(&[put_msg(1, msg("t", b"1"))], true).unwrap();
    drop(first);
    open(dir.path());
}

#[test]
fn garbage_in_the_middle_of_the_file_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    populated_store(dir.path());
    let path = options(dir.path()).path;
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(
        len > 256 << 10,
        "store too small to damage meaningfully: {len}"
    );
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(len / 2 - 32 * 1024)).unwrap();
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    f.write_all(&garbage).unwrap();
    f.sync_all().unwrap();
    drop(f);
    expect_corrupt(dir.path(), "garbage in the middle");
}

#[test]
fn a_file_truncated_to_half_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    populated_store(dir.path());
    let path = options(dir.path()).path;
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    expect_corrupt(dir.path(), "truncated to half");
}

#[test]
fn a_damaged_header_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    populated_store(dir.path());
    let path = options(dir.path()).path;
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(&[0x5a; 512]).unwrap();
    drop(f);
    expect_corrupt(dir.path(), "damaged header");
}

fn damaged_copies(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".damaged-"))
        .collect()
}

/// Damages a populated store with `damage`, repairs it, and checks the outcome.
fn repair_after(damage: impl FnOnce(&Path), what: &str) -> (Snapshot, usize) {
    let dir = tempfile::tempdir().unwrap();
    let before = populated_store(dir.path());
    let path = options(dir.path()).path;
    damage(&path);
    let damaged_bytes = std::fs::read(&path).unwrap();
    expect_corrupt(dir.path(), what);

    let (aside, kept_messages, kept_sessions, kept_retained) =
        RedbStore::repair(&options(dir.path())).expect("repair");
    assert_eq!(damaged_copies(dir.path()), vec![aside.clone()]);
    assert_eq!(
        std::fs::read(&aside).unwrap(),
        damaged_bytes,
        "{what}: the copy set aside is the damaged file, unchanged"
    );

    // A working store at the original path, holding what was salvaged, consistent with
    // the counts repair reported and with the original contents.
    let store = open(dir.path());
    let snap = store.load().unwrap();
    assert_eq!(snap.messages.len(), kept_messages, "{what}");
    assert_eq!(snap.sessions.len(), kept_sessions, "{what}");
    assert_eq!(snap.retained.len(), kept_retained, "{what}");
    for (id, m) in &snap.messages {
        assert_eq!(before.messages.get(id), Some(m), "{what}: message {id}");
    }
    for s in &snap.sessions {
        let orig = session(&before, &s.client_id);
        for d in &s.deliveries {
            assert!(
                orig.deliveries.contains(d),
                "{what}: invented delivery {d:?}"
            );
            assert!(snap.messages.contains_key(&d.1.message_id));
        }
    }
    for r in &snap.retained {
        assert!(
            before.retained.contains(r),
            "{what}: invented retained {r:?}"
        );
    }
    // And it takes writes.
    store
        .apply(
            &[
                put_msg(1_000_000, msg("after", b"repair")),
                put_retained("after", 1_000_000),
            ],
            true,
        )
        .unwrap();
    drop(store);
    assert!(
        open(dir.path())
            .load()
            .unwrap()
            .messages
            .contains_key(&1_000_000)
    );
    eprintln!(
        "{what}: repair kept {kept_messages}/{} messages, {kept_sessions}/{} sessions, \
         {kept_retained}/{} retained",
        before.messages.len(),
        before.sessions.len(),
        before.retained.len()
    );
    (snap, kept_messages)
}

#[test]
fn repair_sets_the_damaged_file_aside_and_salvages_after_garbage() {
    let (snap, kept_messages) = repair_after(
        |path| {
            let len = std::fs::metadata(path).unwrap().len();
            let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            // Damage a little: one 4 KiB page two thirds into the file.
            f.seek(SeekFrom::Start((len * 2 / 3) & !4095)).unwrap();
            f.write_all(&[0xa5; 4096]).unwrap();
        },
        "one garbage page",
    );
    // One bad page costs the records on it, not the whole store: reading resumes past it.
    assert!(
        kept_messages >= 500,
        "salvaged only {kept_messages}/1000 messages"
    );
    assert_eq!(snap.sessions.len(), 10);
}

#[test]
fn repair_sets_the_damaged_file_aside_after_truncation() {
    repair_after(
        |path| {
            let len = std::fs::metadata(path).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(len / 2).unwrap();
        },
        "truncated to half",
    );
}

#[test]
fn repair_of_a_healthy_store_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let before = populated_store(dir.path());
    let (aside, m, s, r) = RedbStore::repair(&options(dir.path())).unwrap();
    assert!(aside.exists());
    assert_eq!(
        (m, s, r),
        (
            before.messages.len(),
            before.sessions.len(),
            before.retained.len()
        )
    );
    let mut after = open(dir.path()).load().unwrap();
    let mut before = before;
    for snap in [&mut after, &mut before] {
        snap.retained.sort();
    }
    assert_eq!(after, before);
}

// ---------------------------------------------------------------------------------------------
// Model-based property test

/// What the store should hold, computed without reference counts: a message is present iff
/// it was stored (and not freed since) and something references it at the end of a batch.
#[derive(Default)]
struct Model {
    messages: HashMap<u64, StoredMessage>,
    sessions: BTreeMap<String, StoredSession>,
    /// QoS 2 packet ids awaiting PUBREL, by client (kept apart from the session record).
    pubrels: BTreeMap<String, std::collections::BTreeSet<u16>>,
    /// Deliveries by (client, seq), including those of clients without a session record.
    deliveries: BTreeMap<(String, u64), StoredDelivery>,
    retained: BTreeMap<String, u64>,
}

impl Model {
    fn apply(&mut self, ops: &[Op]) {
        for op in ops {
            match op.clone() {
                Op::PutMessage { id, message } => {
                    self.messages.insert(id, message);
                }
                Op::PutSession { client_id, session } => {
                    self.pubrels
                        .entry(client_id.clone())
                        .or_default()
                        .extend(session.awaiting_pubrel.iter().copied());
                    self.sessions.insert(client_id, session);
                }
                Op::DeleteSession { client_id } => {
                    self.sessions.remove(&client_id);
                    self.pubrels.remove(&client_id);
                    self.deliveries.retain(|(c, _), _| *c != client_id);
                }
                Op::PutDelivery {
                    client_id,
                    seq,
                    delivery,
                } => {
                    self.deliveries.insert((client_id, seq), delivery);
                }
                Op::DeleteDelivery { client_id, seq } => {
                    self.deliveries.remove(&(client_id, seq));
                }
                Op::PutRetained { topic, message_id } => {
                    self.retained.insert(topic, message_id);
                }
                Op::DeleteRetained { topic } => {
                    self.retained.remove(&topic);
                }
                Op::PutPubRel {
                    client_id,
                    packet_id,
                } => {
                    self.pubrels.entry(client_id).or_default().insert(packet_id);
                }
                Op::DeletePubRel {
                    client_id,
                    packet_id,
                } => {
                    if let Some(set) = self.pubrels.get_mut(&client_id) {
                        set.remove(&packet_id);
                    }
                }
            }
        }
        let referenced: std::collections::HashSet<u64> = self
            .deliveries
            .values()
            .map(|d| d.message_id)
            .chain(self.retained.values().copied())
            .collect();
        self.messages.retain(|id, _| referenced.contains(id));
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            messages: self.messages.clone(),
            sessions: self
                .sessions
                .iter()
                .map(|(client_id, session)| LoadedSession {
                    client_id: client_id.clone(),
                    session: StoredSession {
                        awaiting_pubrel: self
                            .pubrels
                            .get(client_id)
                            .map(|set| set.iter().copied().collect())
                            .unwrap_or_default(),
                        ..session.clone()
                    },
                    deliveries: self
                        .deliveries
                        .iter()
                        .filter(|((c, _), _)| c == client_id)
                        .map(|((_, seq), d)| (*seq, d.clone()))
                        .collect(),
                })
                .collect(),
            retained: self
                .retained
                .iter()
                .map(|(t, id)| (t.clone(), *id))
                .collect(),
        }
    }
}

fn normalized(mut snap: Snapshot) -> Snapshot {
    snap.sessions.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    snap.retained.sort();
    snap
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let client = prop::sample::select(vec!["a", "b", "ab", ""]).prop_map(String::from);
    let seq = 0u64..4;
    let mid = 1u64..7;
    let topic = prop::sample::select(vec!["t/1", "t/2"]).prop_map(String::from);
    let state = prop_oneof![
        Just(DeliveryState::Queued),
        (1u16..4).prop_map(DeliveryState::AwaitingPubAck),
        (1u16..4).prop_map(DeliveryState::AwaitingPubRec),
        (1u16..4).prop_map(DeliveryState::AwaitingPubComp),
    ];
    prop_oneof![
        3 => (mid.clone(), any::<u8>()).prop_map(|(id, b)| Op::PutMessage {
            id,
            message: msg("t/m", &[b; 3]),
        }),
        2 => (client.clone(), 0u32..3, prop::collection::vec(1u16..5, 0..3)).prop_map(
            |(client_id, e, awaiting_pubrel)| Op::PutSession {
                client_id,
                session: StoredSession { expiry_interval: e, awaiting_pubrel, ..plain_session() },
            }
        ),
        1 => (client.clone(), 1u16..5).prop_map(|(client_id, packet_id)| Op::PutPubRel {
            client_id,
            packet_id,
        }),
        1 => (client.clone(), 1u16..5).prop_map(|(client_id, packet_id)| Op::DeletePubRel {
            client_id,
            packet_id,
        }),
        1 => client.clone().prop_map(|client_id| Op::DeleteSession { client_id }),
        5 => (client.clone(), seq.clone(), mid.clone(), state, any::<bool>()).prop_map(
            |(client_id, seq, message_id, state, shared)| Op::PutDelivery {
                client_id,
                seq,
                delivery: StoredDelivery {
                    shared: shared.then(|| ("g".to_string(), "t/#".to_string())),
                    ..delivery(message_id, state)
                },
            }
        ),
        3 => (client, seq).prop_map(|(client_id, seq)| Op::DeleteDelivery { client_id, seq }),
        2 => (topic.clone(), mid).prop_map(|(topic, message_id)| Op::PutRetained {
            topic,
            message_id,
        }),
        1 => topic.prop_map(|topic| Op::DeleteRetained { topic }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_op_sequences_match_the_model(
        batches in prop::collection::vec(prop::collection::vec(op_strategy(), 1..10), 1..12)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let mut model = Model::default();
        for (i, batch) in batches.iter().enumerate() {
            store.apply(batch, i % 3 == 0).unwrap();
            model.apply(batch);
            prop_assert_eq!(
                normalized(store.load().unwrap()),
                model.snapshot(),
                "after batch {}", i
            );
        }
        store.apply(&[], true).unwrap();
        drop(store);
        prop_assert_eq!(normalized(open(dir.path()).load().unwrap()), model.snapshot());
    }
}
