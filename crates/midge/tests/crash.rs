//! Crash test (issue 5): `midge serve` (default `sync` durability) is killed with SIGKILL at
//! random moments under load and restarted on the same port and data directory, 20 times.
//!
//! The load is independent clients (Python paho-mqtt 2.x, `tests/python/crash_load.py`):
//! QoS 1 and QoS 2 publishers with unique payload ids, persistent subscribers that stay online
//! or go offline and come back, and QoS 1 retained updates. One more persistent subscriber
//! uses midge-client, which hands QoS 2 messages on at PUBLISH (paho waits for PUBREL), so a
//! QoS 2 message sent before it is on disk would show up twice. A rumqttc client reads the
//! retained topics after every restart. The checks:
//!
//! - every acknowledged QoS 1 message (PUBACK) reaches every persistent subscriber at least
//!   once; every acknowledged QoS 2 message (PUBREC) exactly once, and no QoS 2 message is
//!   ever delivered twice;
//! - after each restart every retained topic holds its last acknowledged value or a later one
//!   (an update may be committed before its PUBACK leaves), and at the end exactly the last;
//! - no persistent session is ever lost (Session Present 1 on every reconnect), and the broker
//!   never dies on its own, panics, or refuses to start.
//!
//! `MIDGE_CRASH_CYCLES` (default 20), `MIDGE_CRASH_RATE` (messages per second per publisher,
//! default 100) and `MIDGE_CRASH_SEED` (default: from the clock; printed) reproduce or extend a
//! run.

mod interop_common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use interop_common::{MIDGE, Proc, free_port};

/// Retained topics the load updates (`crashret/0` ..).
const RETAINED_TOPICS: usize = 4;
/// Persistent subscribers: the load's (paho) and the test's own midge-client one.
const SUBSCRIBERS: [&str; 5] = [
    "sub-on-3",
    "sub-on-5",
    "sub-flap-3",
    "sub-flap-5",
    "sub-midge",
];

/// A small deterministic generator (xorshift64*), so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

/// What the load reported so far.
#[derive(Default)]
struct Events {
    /// Acknowledged publishes (payload ids).
    acked: HashSet<String>,
    /// (subscriber, payload id) → times delivered.
    received: HashMap<(String, String), u32>,
    /// Retained topic → highest acknowledged value.
    retained_acked: HashMap<String, u64>,
    errors: Vec<String>,
    /// Every line, with the test's own KILL/START markers, for failure reports.
    log: Vec<String>,
    ready: bool,
    done: Option<String>,
    lines: u64,
}

/// The broker under test: same port, same data directory, a new log per start.
struct Broker {
    port: u16,
    dir: PathBuf,
    proc: Option<Proc>,
    starts: usize,
    recovery_ms: Vec<u64>,
}

impl Broker {
    fn new(dir: &Path) -> Broker {
        let config = dir.join("midge.toml");
        // Unbounded queues: a subscriber that is offline for a while must not lose
        // acknowledged messages to the default limit of 1000.
        std::fs::write(&config, "[limits]\nmax_queued_messages = 0\n").expect("config");
        Broker {
            port: free_port(),
            dir: dir.to_owned(),
            proc: None,
            starts: 0,
            recovery_ms: Vec::new(),
        }
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.dir.join(format!("midge-{n}.log"))
    }

    /// Starts `midge serve` and waits until it accepts connections; records the recovery time
    /// from its "store recovered" log line.
    fn start(&mut self) {
        self.starts += 1;
        let log_path = self.log_path(self.starts);
        let log = File::create(&log_path).expect("log file");
        let mut cmd = Command::new(MIDGE);
        cmd.arg("serve")
            .arg("-c")
            .arg(self.dir.join("midge.toml"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .env("RUST_LOG", "info,midge_broker=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let mut proc = Proc::spawn(&mut cmd, "midge serve");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = proc.child.try_wait().expect("try_wait") {
                panic!(
                    "midge serve (start {}) exited at start-up ({status}):\n{}",
                    self.starts,
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            // The listener is bound before the store is read; "listening" is logged once
            // recovery is over.
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if log.contains("listening for MQTT")
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "midge serve did not accept connections within 20 s:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(ms) = log
            .lines()
            .find(|l| l.contains("store recovered"))
            .and_then(|l| l.split("elapsed_ms=").nth(1))
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
        {
            self.recovery_ms.push(ms);
        }
        self.proc = Some(proc);
    }

    /// SIGKILL.
    fn kill(&mut self) {
        let mut proc = self.proc.take().expect("broker running");
        if let Some(status) = proc.child.try_wait().expect("try_wait") {
            panic!(
                "midge serve died on its own ({status}) before being killed:\n{}",
                self.logs()
            );
        }
        proc.kill();
    }

    /// Every log so far, for failure messages (last 200 lines of each).
    fn logs(&self) -> String {
        let mut out = String::new();
        for n in 1..=self.starts {
            let text = std::fs::read_to_string(self.log_path(n)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            out.push_str(&format!("--- start {n} ---\n{}\n", tail.join("\n")));
        }
        out
    }
}

/// Reads the retained values of `crashret/#` with a fresh rumqttc (MQTT 3.1.1, clean session)
/// client: topic → value. Waits until every topic was seen, at most 10 s.
fn read_retained(port: u16, n: usize) -> BTreeMap<String, u64> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut options = MqttOptions::new(format!("retained-check-{n}"), "127.0.0.1", port);
        options.set_clean_session(true);
        options.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        client
            .subscribe("crashret/#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let mut values = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while values.len() < RETAINED_TOPICS {
            let Ok(polled) = tokio::time::timeout_at(deadline, eventloop.poll()).await else {
                panic!("retained topics within 10 s: got {values:?}");
            };
            let event = polled.expect("retained-check connection");
            if let Event::Incoming(Packet::Publish(p)) = event
                && p.retain
            {
                let value = std::str::from_utf8(&p.payload)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .expect("numeric retained value");
                values.entry(p.topic.clone()).or_insert(value);
            }
        }
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_millis(500), eventloop.poll()).await;
        values
    })
}

/// A persistent subscriber (MQTT 5, `crash/#` at QoS 2) on midge-client, which hands a QoS 2
/// message to the application when the PUBLISH arrives ("method B", MQTT 5.0 §4.3.3), unlike
/// paho, which waits for PUBREL: a broker that sent a QoS 2 message before the commit holding
/// it would show duplicates here after a crash. It runs on its own thread until `stop`, and
/// reconnects by itself.
fn midge_client_subscriber(
    port: u16,
    events: Arc<Mutex<Events>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (std::thread::JoinHandle<()>, std::sync::mpsc::Receiver<()>) {
    use midge_client::{Client, ConnectOptions, Event, QoS, ReconnectOptions};
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let options = ConnectOptions::tcp("127.0.0.1", port)
                .client_id("sub-midge")
                .clean_start(false)
                .session_expiry_interval(3600)
                .keep_alive(Duration::from_secs(10))
                .reconnect(
                    ReconnectOptions::default()
                        .initial_backoff(Duration::from_millis(50))
                        .max_backoff(Duration::from_millis(300))
                        .jitter(false),
                );
            let (client, mut stream) = Client::connect(options).await.expect("midge-client");
            client
                .subscribe("crash/#", QoS::ExactlyOnce)
                .await
                .expect("midge-client subscribe");
            let _ = ready_tx.send(());
            let mut connected_once = false;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let Ok(event) =
                    tokio::time::timeout(Duration::from_millis(100), stream.recv()).await
                else {
                    continue;
                };
                let mut e = events.lock().unwrap_or_else(PoisonError::into_inner);
                match event {
                    Some(Event::Message(m)) => {
                        let id = String::from_utf8_lossy(&m.payload).into_owned();
                        e.log.push(format!(
                            "RECV sub-midge {id} {} {:?} {}",
                            m.qos,
                            m.packet_id.map(|p| p.get()),
                            u8::from(m.dup)
                        ));
                        *e.received.entry(("sub-midge".to_owned(), id)).or_default() += 1;
                    }
                    Some(Event::Connected(ack)) => {
                        e.log
                            .push(format!("CONNECT sub-midge {}", ack.session_present));
                        if connected_once && !ack.session_present {
                            e.errors.push("ERROR session-lost sub-midge".into());
                        }
                        connected_once = true;
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            let _ = client.disconnect().await;
        });
    });
    (thread, ready_rx)
}

fn require_paho() {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import paho.mqtt, sys; sys.exit(0 if paho.mqtt.__version__.startswith('2') else 1)",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "Python paho-mqtt 2.x is needed: `python3 -m pip install 'paho-mqtt==2.1.0'` (scripts/test does it)"
    );
}

#[test]
fn acknowledged_messages_survive_kill_9_under_load() {
    require_paho();
    let cycles: usize = std::env::var("MIDGE_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("MIDGE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    let rate: f64 = std::env::var("MIDGE_CRASH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100.0);
    eprintln!("crash test: {cycles} cycles, MIDGE_CRASH_SEED={seed}, {rate} msg/s per publisher");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::new(dir.path());
    broker.start();
    let events = Arc::new(Mutex::new(Events::default()));
    let stop_midge = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (midge_sub, ready) =
        midge_client_subscriber(broker.port, events.clone(), stop_midge.clone());
    ready
        .recv_timeout(Duration::from_secs(20))
        .expect("the midge-client subscriber subscribed");

    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "python",
        "crash_load.py",
    ]
    .iter()
    .collect();
    let load_err = dir.path().join("load.err");
    let mut load = Proc::spawn(
        Command::new("python3")
            .arg(&script)
            .args(["--port", &broker.port.to_string()])
            .args(["--seed", &(seed % 1_000_000).to_string()])
            .args(["--rate", &rate.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(&load_err).expect("load.err"))),
        "crash_load.py",
    );
    let stdout = load.child.stdout.take().expect("stdout");
    let reader = {
        let events = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut e = events.lock().unwrap_or_else(PoisonError::into_inner);
                e.lines += 1;
                e.log.push(line.clone());
                let mut words = line.split_whitespace();
                match words.next() {
                    Some("ACK") => {
                        e.acked.insert(words.next().unwrap_or_default().to_owned());
                    }
                    Some("RECV") => {
                        let sub = words.next().unwrap_or_default().to_owned();
                        let id = words.next().unwrap_or_default().to_owned();
                        *e.received.entry((sub, id)).or_default() += 1;
                    }
                    Some("RACK") => {
                        let topic = words.next().unwrap_or_default().to_owned();
                        let n: u64 = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                        let v = e.retained_acked.entry(topic).or_default();
                        *v = (*v).max(n);
                    }
                    Some("READY") => e.ready = true,
                    Some("PUB" | "COMP" | "CONNECT" | "DISCONNECT" | "SEND" | "SENDREL") => {}
                    Some("DONE") => e.done = Some(line["DONE ".len()..].to_owned()),
                    _ => e.errors.push(line),
                }
            }
        })
    };
    let load_failure = |what: &str, broker: &Broker| -> String {
        format!(
            "{what}\nload stderr:\n{}\nbroker logs:\n{}",
            std::fs::read_to_string(&load_err).unwrap_or_default(),
            broker.logs()
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !events.lock().unwrap_or_else(PoisonError::into_inner).ready {
        if Instant::now() > deadline || load.child.try_wait().ok().flatten().is_some() {
            panic!("{}", load_failure("the load did not start", &broker));
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let started = Instant::now();
    let mut before = 0;
    for cycle in 1..=cycles {
        // Load runs for a random while, then the broker is killed mid-flight.
        std::thread::sleep(rng.millis(300, 1500));
        broker.kill();
        events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .log
            .push(format!("--- KILL {cycle}"));
        // Acknowledgements the dead broker had already written are still read by the
        // clients: let them arrive before taking the retained bounds.
        std::thread::sleep(Duration::from_millis(150));
        let bounds = events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retained_acked
            .clone();
        std::thread::sleep(rng.millis(0, 300));
        broker.start();
        events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .log
            .push(format!("--- STARTED {}", cycle + 1));
        let retained = read_retained(broker.port, cycle);
        for (topic, acked) in &bounds {
            let value = retained.get(topic).copied().unwrap_or(0);
            assert!(
                value >= *acked,
                "{}",
                load_failure(
                    &format!(
                        "cycle {cycle}: retained {topic} = {value} after restart, \
                         but {acked} was acknowledged before the kill"
                    ),
                    &broker
                )
            );
        }
        let e = events.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(
            e.errors.is_empty(),
            "{}",
            load_failure(&format!("cycle {cycle}: {:?}", e.errors), &broker)
        );
        eprintln!(
            "cycle {cycle}: {} events since the last kill; {} acknowledged so far; \
             recovered in {:?} ms",
            e.lines - before,
            e.acked.len(),
            broker.recovery_ms.last()
        );
        before = e.lines;
    }
    eprintln!("{cycles} kill cycles in {:?}", started.elapsed());

    // Stop the load: everything published gets acknowledged, subscribers drain.
    {
        let stdin = load.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "finish").expect("write finish");
        stdin.flush().expect("flush");
    }
    let status = load.wait_timeout(Duration::from_secs(120));
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        load_failure(
            &format!("the load did not finish cleanly: {status:?}"),
            &broker
        )
    );
    reader.join().expect("reader");
    // The midge-client subscriber drains too.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let e = events.lock().unwrap_or_else(PoisonError::into_inner);
        let missing = e
            .acked
            .iter()
            .filter(|id| {
                !e.received
                    .contains_key(&("sub-midge".to_owned(), (*id).clone()))
            })
            .count();
        drop(e);
        if missing == 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop_midge.store(true, std::sync::atomic::Ordering::Release);
    midge_sub.join().expect("midge-client subscriber");
    let e = events.lock().unwrap_or_else(PoisonError::into_inner);
    assert!(
        e.errors.is_empty(),
        "{}",
        load_failure(&format!("{:?}", e.errors), &broker)
    );
    let done: serde_json::Value =
        serde_json::from_str(e.done.as_deref().expect("DONE line")).expect("DONE json");
    eprintln!("load: {done}");
    for (client, n) in done["unacked"].as_object().expect("unacked") {
        assert_eq!(
            n.as_u64(),
            Some(0),
            "{client} has unacknowledged publishes at the end"
        );
    }

    // Every acknowledged message: QoS 1 at least once, QoS 2 exactly once, to every
    // subscriber; and no QoS 2 message twice, acknowledged or not.
    let mut failures = Vec::new();
    let mut per_sub: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for id in &e.acked {
        let qos2 = id.starts_with("q2");
        for sub in SUBSCRIBERS {
            let n = e
                .received
                .get(&(sub.to_owned(), id.clone()))
                .copied()
                .unwrap_or(0);
            let entry = per_sub.entry(sub).or_default();
            entry.0 += u64::from(n);
            if n > 1 {
                entry.1 += u64::from(n - 1);
            }
            if n == 0 {
                failures.push(format!("{sub}: acknowledged {id} never delivered"));
            } else if qos2 && n > 1 {
                failures.push(format!("{sub}: QoS 2 {id} delivered {n} times"));
            }
        }
    }
    for ((sub, id), n) in &e.received {
        if id.starts_with("q2") && *n > 1 && !e.acked.contains(id) {
            failures.push(format!(
                "{sub}: QoS 2 {id} (not acknowledged) delivered {n} times"
            ));
        }
    }
    failures.sort();
    if !failures.is_empty() {
        // The history of the first few failing ids, with the kills and restarts.
        let ids: HashSet<&str> = failures
            .iter()
            .take(5)
            .filter_map(|f| {
                f.split_whitespace()
                    .find(|w| w.contains(':') && !w.ends_with(':'))
            })
            .collect();
        let history: Vec<&String> = e
            .log
            .iter()
            .filter(|l| {
                l.starts_with("---")
                    || l.starts_with("CONNECT")
                    || l.starts_with("DISCONNECT")
                    || l.split_whitespace().any(|w| ids.contains(w))
            })
            .collect();
        let history: Vec<String> = history.iter().map(|l| l.to_string()).collect();
        panic!(
            "{} failures (seed {seed}), first ones:\n{}\nhistory of {ids:?}:\n{}\n{}",
            failures.len(),
            failures
                .iter()
                .take(30)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            history.join("\n"),
            load_failure("", &broker)
        );
    }
    eprintln!(
        "{} acknowledged messages; per subscriber (deliveries, QoS 1 duplicates): {per_sub:?}",
        e.acked.len()
    );

    // Retained topics hold exactly their last acknowledged value.
    let retained = read_retained(broker.port, cycles + 1);
    let expected: BTreeMap<String, u64> = e
        .retained_acked
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(retained, expected, "retained values at the end");
    drop(e);

    let recovery = &broker.recovery_ms;
    eprintln!(
        "recovery times (ms): max {:?}, all {recovery:?}",
        recovery.iter().max()
    );
    // A clean stop at the end: SIGTERM, exit 0, and no panic in any log.
    let mut proc = broker.proc.take().expect("running");
    proc.signal("TERM");
    let status = proc.wait_timeout(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "midge serve after SIGTERM: {status:?}\n{}",
        broker.logs()
    );
    let logs = broker.logs();
    assert!(!logs.contains("panicked"), "a broker panicked:\n{logs}");
}
