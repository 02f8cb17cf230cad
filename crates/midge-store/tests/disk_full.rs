//! A full disk, for real: the store lives on a 4 MiB tmpfs this test mounts. Filling it must
//! make `apply` return `StoreError::DiskFull` (never panic), and the store must take writes
//! again once space returns, both by removing a file beside it and by deleting queued data.
//!
//! Mounting needs root, or a private user + mount namespace (`unshare -rm`), into which the
//! test re-runs itself. If neither works the test fails: it never skips silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use midge_proto::{Publish, QoS, TopicName};
use midge_store::{
    DeliveryState, Op, RedbStore, Store, StoreError, StoreOptions, StoredDelivery, StoredMessage,
    StoredSession,
};

const CHILD_ENV: &str = "MIDGE_STORE_DISK_FULL_CHILD";
const TEST_NAME: &str = "a_full_disk_refuses_writes_and_recovers_when_space_returns";

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn a_full_disk_refuses_writes_and_recovers_when_space_returns() {
    if std::env::var_os(CHILD_ENV).is_some() || is_root() {
        match Tmpfs::mount("4m") {
            Ok(fs) => return disk_full_scenario(fs.path()),
            Err(e) if std::env::var_os(CHILD_ENV).is_some() => {
                panic!("cannot mount a tmpfs even in a private namespace: {e}")
            }
            Err(e) => eprintln!("as root but {e}; trying a private namespace"),
        }
    }
    // Not root (or mounting failed): re-run just this test in a private user and mount
    // namespace, where mounting a tmpfs is allowed.
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["-rm"])
        .arg(&exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output();
    match out {
        Err(e) => panic!(
            "this test needs a small filesystem to fill: run it as root (to mount a tmpfs) \
             or where `unshare -rm` works; `unshare` could not be run: {e}"
        ),
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            eprintln!("{stdout}{stderr}");
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "the disk-full test failed (or could not get a private mount namespace: \
                 run it as root or where `unshare -rm` works): {}\n{stderr}",
                out.status
            );
        }
    }
}

fn message(id: u64, len: usize) -> StoredMessage {
    let mut publish = Publish::new(
        TopicName::new(format!("fill/{id}")).unwrap(),
        Bytes::from(vec![(id % 256) as u8; len]),
    );
    publish.qos = QoS::AtLeastOnce;
    StoredMessage {
        publish,
        expires_at_ms: None,
        origin: None,
    }
}

fn enqueue(ops: &mut Vec<Op>, id: u64, len: usize) {
    ops.push(Op::PutMessage {
        id,
        message: message(id, len),
    });
    ops.push(Op::PutDelivery {
        client_id: "filler".into(),
        seq: id,
        delivery: StoredDelivery {
            message_id: id,
            qos: 1,
            retain: false,
            subscription_ids: Vec::new(),
            shared: None,
            state: DeliveryState::Queued,
        },
    });
}

fn free_bytes(dir: &Path) -> String {
    Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// Applies batches of 16 messages of `len` bytes from `*next_id` on until one fails; returns
/// the error and the ids that were committed.
fn fill(store: &RedbStore, next_id: &mut u64, len: usize) -> (StoreError, Vec<u64>) {
    let mut committed = Vec::new();
    for _ in 0..10_000 {
        let mut ops = Vec::new();
        let ids: Vec<u64> = (*next_id..*next_id + 16).collect();
        for id in &ids {
            enqueue(&mut ops, *id, len);
        }
        *next_id += 16;
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.apply(&ops, true)))
                .unwrap_or_else(|_| panic!("apply panicked on a full disk"));
        match result {
            Ok(()) => committed.extend(ids),
            Err(e) => return (e, committed),
        }
    }
    panic!("a 4 MiB filesystem never filled up");
}

fn disk_full_scenario(dir: &Path) {
    let options = StoreOptions {
        path: dir.join("store.redb"),
        cache_bytes: 1 << 20,
    };
    let store = RedbStore::open(options.clone()).expect("open on tmpfs");
    store
        .apply(
            &[Op::PutSession {
                client_id: "filler".into(),
                session: StoredSession {
                    expiry_interval: 600,
                    disconnected_at_ms: None,
                    subscriptions: Vec::new(),
                    awaiting_pubrel: Vec::new(),
                    will: None,
                },
            }],
            true,
        )
        .unwrap();
    // Files beside the store that the "operator" can delete to make room.
    let filler: PathBuf = dir.join("filler.bin");
    std::fs::write(&filler, vec![0u8; 1 << 20]).unwrap();
    let small_filler: PathBuf = dir.join("small-filler.bin");
    std::fs::write(&small_filler, vec![0u8; 64 << 10]).unwrap();

    // 1. Fill the disk.
    let mut next_id = 1;
    let (err, committed) = fill(&store, &mut next_id, 1024);
    eprintln!(
        "full after {} messages ({} bytes of store, {} bytes free): {err}",
        committed.len(),
        store.size_bytes(),
        free_bytes(dir)
    );
    assert!(
        matches!(err, StoreError::DiskFull(_)),
        "expected DiskFull, got {err:?}"
    );
    assert!(err.is_out_of_space());
    assert!(err.to_string().contains("store.redb"), "{err}");
    assert!(!committed.is_empty());

    // Still full: a further write is refused the same way (the store reopens the file first).
    let mut ops = Vec::new();
    enqueue(&mut ops, next_id, 1024);
    next_id += 1;
    match store.apply(&ops, true) {
        Err(e) => {
            eprintln!("second write on a full disk: {e}");
            assert!(e.is_out_of_space(), "{e:?}");
        }
        Ok(()) => eprintln!("second write on a full disk fitted in freed pages"),
    }
    // Reading may need the reopen to commit its recovery, which can fail for lack of space
    // too; it must not panic, and must not claim the store is damaged.
    match store.load() {
        Ok(snap) => eprintln!("load on a full disk: {} messages", snap.messages.len()),
        Err(e) => {
            eprintln!("load on a full disk: {e}");
            assert!(e.is_out_of_space(), "{e:?}");
        }
    }

    // 2. Space returns (the filler file is removed): writes succeed again.
    std::fs::remove_file(&filler).unwrap();
    let mut ops = Vec::new();
    let recovered_id = next_id;
    enqueue(&mut ops, recovered_id, 1024);
    next_id += 1;
    store
        .apply(&ops, true)
        .expect("write after space returned (file removed)");
    let snap = store.load().unwrap();
    for id in &committed {
        assert!(
            snap.messages.contains_key(id),
            "lost committed message {id}"
        );
    }
    assert!(snap.messages.contains_key(&recovered_id));
    let committed_before = committed.len();

    // 3. Fill it again, then make room by deleting queued data instead.
    let (err, more) = fill(&store, &mut next_id, 1024);
    eprintln!("full again after {} more messages: {err}", more.len());
    assert!(err.is_out_of_space(), "{err:?}");
    let snap = store.load();
    let mut all: Vec<u64> = committed.iter().chain(&more).copied().collect();
    all.push(recovered_id);
    let to_delete: Vec<Op> = all[..all.len() / 2]
        .iter()
        .map(|id| Op::DeleteDelivery {
            client_id: "filler".into(),
            seq: *id,
        })
        .collect();
    // Deleting needs pages too (redb copies on write): on a completely full disk it fails
    // like any write, cleanly.
    let delete = |ops: &[Op], deleted: &mut std::collections::HashSet<u64>| {
        let mut failures = 0;
        for chunk in ops.chunks(64) {
            match store.apply(chunk, true) {
                Ok(()) => deleted.extend(chunk.iter().map(|op| match op {
                    Op::DeleteDelivery { seq, .. } => *seq,
                    _ => unreachable!(),
                })),
                Err(e) => {
                    assert!(e.is_out_of_space(), "{e:?}");
                    failures += 1;
                }
            }
        }
        failures
    };
    let mut deleted_ids = std::collections::HashSet::new();
    let failures = delete(&to_delete, &mut deleted_ids);
    eprintln!(
        "on the full disk: deleted {} of {} deliveries, {failures} delete commits refused \
         (load there: {})",
        deleted_ids.len(),
        to_delete.len(),
        match &snap {
            Ok(s) => format!("{} messages", s.messages.len()),
            Err(e) => e.to_string(),
        }
    );
    // A little room (64 KiB) is enough for the deletes, whose freed pages then take new
    // messages.
    std::fs::remove_file(&small_filler).unwrap();
    let remaining: Vec<Op> = to_delete
        .iter()
        .filter(|op| match op {
            Op::DeleteDelivery { seq, .. } => !deleted_ids.contains(seq),
            _ => true,
        })
        .cloned()
        .collect();
    let failures = delete(&remaining, &mut deleted_ids);
    assert_eq!(failures, 0, "deletes refused with 64 KiB free");
    assert_eq!(deleted_ids.len(), to_delete.len());
    eprintln!(
        "with 64 KiB freed: all {} deletes committed",
        to_delete.len()
    );
    let (err, refilled) = fill(&store, &mut next_id, 1024);
    eprintln!(
        "after the deletes, {} new messages fit in the freed pages before: {err}",
        refilled.len()
    );
    assert!(err.is_out_of_space(), "{err:?}");
    assert!(
        refilled.len() >= 16,
        "pages freed by deleting {} messages took only {} new ones",
        to_delete.len(),
        refilled.len()
    );

    // Everything acknowledged is still there after a reopen, nothing more.
    drop(store);
    let snap = RedbStore::open(options).unwrap().load().unwrap();
    for id in all.iter().filter(|id| !deleted_ids.contains(id)) {
        assert!(
            snap.messages.contains_key(id),
            "lost committed message {id}"
        );
    }
    for id in &deleted_ids {
        assert!(
            !snap.messages.contains_key(id),
            "deleted message {id} still there"
        );
    }
    for id in &refilled {
        assert!(
            snap.messages.contains_key(id),
            "lost committed message {id}"
        );
    }
    assert_eq!(
        snap.messages.len(),
        all.len() - deleted_ids.len() + refilled.len(),
        "messages from refused commits must not appear"
    );
    eprintln!(
        "recovered: {} messages kept ({committed_before} before the first full disk)",
        snap.messages.len()
    );
}
