//! `midge bench` against real brokers on loopback: `midge serve` and Debian's Mosquitto.
//!
//! Each run is short (about a second) with a handful of connections; the tests check that
//! the report is sane and the counting is right (nothing lost, duplicated or reordered at
//! QoS 1/2 where the broker keeps every message; losses seen where it is configured to drop
//! them; latency percentiles in order). They never assert a speed: benchmarks are not
//! pass/fail tests.

mod interop_common;

use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interop_common::{MIDGE, Midge, Proc, WAIT, free_port, run_bounded};
use serde_json::Value;

/// A bench run must finish well within this (runs are ~1 s plus a drain).
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// Runs `midge bench ARGS -p PORT --json --quiet` and returns its report.
fn bench(port: u16, args: &[&str]) -> Value {
    let out = run_bounded(
        Command::new(MIDGE).arg("bench").args(args).args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--json",
            "--quiet",
        ]),
        RUN_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "midge bench {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("midge bench {args:?}: not JSON ({e}):\n{stdout}"))
}

fn n(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing or not a count in {report:#}"))
}

fn f(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {report:#}"))
}

/// What every report must satisfy, whatever the broker did.
fn check_consistent(r: &Value) {
    assert!(r["errors"].as_array().is_some_and(Vec::is_empty), "{r:#}");
    assert!(n(r, "connections") > 0, "{r:#}");
    assert!(n(r, "published") > 0, "{r:#}");
    assert!(n(r, "received") > 0, "{r:#}");
    assert!(f(r, "seconds") > 0.0, "{r:#}");
    // A rate needs a measurement window: `conns` and small `-n` runs publish in a few
    // milliseconds, possibly before the first delivery is counted.
    if f(r, "seconds") >= 0.5 {
        assert!(f(r, "receive_rate") > 0.0, "{r:#}");
    }
    // Each delivery is either received once, received again (duplicate), or lost.
    assert!(
        n(r, "received") - n(r, "duplicates") - n(r, "unexpected") + n(r, "lost")
            == n(r, "expected"),
        "deliveries do not add up: {r:#}"
    );
    let l = &r["latency_us"];
    let (p50, p99, p999, max) = (
        l["p50"].as_f64().expect("p50"),
        l["p99"].as_f64().expect("p99"),
        l["p999"].as_f64().expect("p999"),
        l["max"].as_f64().expect("max"),
    );
    assert!(
        0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
        "latency percentiles out of order: {l}"
    );
}

/// A run at QoS 1/2 against a broker that keeps every message: all delivered exactly once,
/// in order, every publish acknowledged.
fn check_lossless(r: &Value) {
    check_consistent(r);
    for key in [
        "lost",
        "duplicates",
        "out_of_order",
        "unexpected",
        "rejected",
        "unacked",
    ] {
        assert_eq!(n(r, key), 0, "{key} in {r:#}");
    }
    assert_eq!(n(r, "received"), n(r, "expected"), "{r:#}");
    if n(r, "qos") > 0 {
        assert_eq!(n(r, "acked"), n(r, "published"), "{r:#}");
    }
}

/// `midge serve` without durability and with queues large enough for the window, so that
/// nothing is dropped by configuration.
fn midge_roomy() -> Midge {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("midge.toml");
    fs::write(
        &config,
        "[limits]\nmax_inflight_messages = 1000\nmax_queued_messages = 0\n\
         [store]\ndurability = \"none\"\n",
    )
    .expect("config");
    let midge = Midge::start_with(&["-c", config.to_str().expect("utf-8 path")]);
    // The config was read at start-up.
    drop(dir);
    midge
}

#[test]
fn pairs_at_qos_1_and_2_lose_nothing_on_midge() {
    let midge = midge_roomy();
    for qos in ["1", "2"] {
        let r = bench(midge.port, &["pairs", "-c", "4", "-q", qos, "-d", "1"]);
        check_lossless(&r);
        assert_eq!(n(&r, "publishers"), 4);
        assert_eq!(n(&r, "connections"), 8);
    }
    // MQTT 5 and 3.1 too, with 1 KB payloads.
    for version in ["5", "31"] {
        let r = bench(
            midge.port,
            &[
                "pairs", "-c", "2", "-q", "1", "-d", "1", "-V", version, "-s", "1024",
            ],
        );
        check_lossless(&r);
        assert_eq!(n(&r, "payload_size"), 1024);
    }
}

#[test]
fn durable_midge_loses_nothing_either() {
    // Default durability (sync): acknowledgements wait for the store's commit.
    let midge = Midge::start();
    let r = bench(
        midge.port,
        &["fanin", "-c", "2", "-q", "1", "-d", "1", "--window", "500"],
    );
    check_lossless(&r);
}

#[test]
fn every_scenario_runs_against_midge() {
    let midge = midge_roomy();
    let pid = midge.proc.pid().to_string();
    let fanin = bench(midge.port, &["fanin", "-c", "3", "-q", "1", "-d", "1"]);
    check_lossless(&fanin);
    assert_eq!(n(&fanin, "subscribers"), 1);

    let fanout = bench(midge.port, &["fanout", "-S", "5", "-q", "1", "-d", "1"]);
    check_lossless(&fanout);
    // Every message reaches all five subscribers.
    assert_eq!(n(&fanout, "expected"), 5 * n(&fanout, "published"));

    let wildcard = bench(
        midge.port,
        &[
            "wildcard", "-c", "2", "-S", "20", "--depth", "3", "--width", "3", "-q", "1", "-d", "1",
        ],
    );
    check_lossless(&wildcard);

    let latency = bench(
        midge.port,
        &[
            "latency", "-c", "4", "-r", "400", "-d", "2", "-q", "1", "--pid", &pid,
        ],
    );
    check_lossless(&latency);
    // The rate limiter keeps to its schedule (an upper bound, not a speed).
    assert!(n(&latency, "published") <= 400 * 2 + 8, "{latency:#}");
    assert!(f(&latency, "warmup_seconds") > 0.0);
    assert!(latency["latency_us"]["samples"].as_u64().expect("samples") > 0);
    assert!(
        latency["broker_process"]["cpu_pct"].is_number(),
        "{latency:#}"
    );

    let conns = bench(
        midge.port,
        &[
            "conns",
            "-c",
            "40",
            "-d",
            "0.5",
            "-q",
            "1",
            "--sources",
            "4",
            "--pid",
            &pid,
        ],
    );
    check_lossless(&conns);
    assert_eq!(n(&conns, "connections"), 40);
    assert_eq!(n(&conns, "published"), 40);
    assert!(f(&conns, "connect_rate") > 0.0);
    assert!(
        conns["broker_process"]["bytes_per_connection"].is_number(),
        "{conns:#}"
    );

    // A message count instead of a duration.
    let counted = bench(midge.port, &["pairs", "-c", "3", "-q", "1", "-n", "1000"]);
    check_lossless(&counted);
    assert_eq!(n(&counted, "published"), 1000);
    assert_eq!(n(&counted, "received"), 1000);
}

#[test]
fn qos_0_runs_count_consistently() {
    // QoS 0 may legitimately drop under load; the counts must still add up.
    let midge = midge_roomy();
    for scenario in [
        &["fanin", "-c", "2"][..],
        &["fanout", "-S", "3"],
        &["pairs", "-c", "3"],
    ] {
        let mut args = scenario.to_vec();
        args.extend(["-q", "0", "-d", "1"]);
        check_consistent(&bench(midge.port, &args));
    }
    // Large messages fill the publishers' write buffers: publishing must go on to the end
    // (a count-limited run that stalled would only stop at the one-hour cap).
    for size in ["1024", "65536"] {
        let r = bench(
            midge.port,
            &["fanin", "-c", "2", "-q", "0", "-s", size, "-n", "20000"],
        );
        check_consistent(&r);
        assert_eq!(n(&r, "published"), 20000);
    }
}

#[test]
fn losses_are_counted() {
    // A broker told to keep at most 10 queued messages per subscriber drops the rest of a
    // 4-publisher burst, after acknowledging them to the publishers: the bench must see it.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("midge.toml");
    fs::write(
        &config,
        "[limits]\nmax_inflight_messages = 10\nmax_queued_messages = 10\n\
         [store]\ndurability = \"none\"\n",
    )
    .expect("config");
    let midge = Midge::start_with(&["-c", config.to_str().expect("utf-8 path")]);
    let r = bench(midge.port, &["fanin", "-c", "4", "-q", "1", "-d", "1"]);
    check_consistent(&r);
    assert!(n(&r, "lost") > 0, "no loss seen: {r:#}\n{}", midge.log());
    assert_eq!(n(&r, "acked"), n(&r, "published"), "{r:#}");
}

/// Debian's Mosquitto on a free loopback port, killed by PID when dropped.
struct Mosquitto {
    port: u16,
    proc: Proc,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    fn start() -> Mosquitto {
        let binary = Path::new("/usr/sbin/mosquitto");
        assert!(
            binary.exists(),
            "/usr/sbin/mosquitto not found: install Debian's mosquitto (scripts/test does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_inflight_messages 1000\nmax_queued_messages 0\nset_tcp_nodelay true\n\
             log_dest stderr\nlog_type error\nlog_type warning\n"
        );
        // Mosquitto drops privileges to the `mosquitto` user when started as root.
        if is_root() {
            config.push_str("user root\n");
        }
        let path = dir.path().join("mosquitto.conf");
        fs::write(&path, config).expect("config");
        let mut cmd = Command::new(binary);
        cmd.arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut proc = Proc::spawn(&mut cmd, "mosquitto");
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = proc.child.try_wait().expect("try_wait") {
                panic!("mosquitto exited early ({status})");
            }
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Mosquitto {
            port,
            proc,
            _dir: dir,
        }
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn scenarios_run_against_mosquitto() {
    let mosquitto = Mosquitto::start();
    let pid = mosquitto.proc.pid().to_string();
    for qos in ["1", "2"] {
        let r = bench(mosquitto.port, &["pairs", "-c", "4", "-q", qos, "-d", "1"]);
        check_lossless(&r);
    }
    let r = bench(
        mosquitto.port,
        &[
            "fanin", "-c", "3", "-q", "1", "-d", "1", "-V", "5", "--pid", &pid,
        ],
    );
    check_lossless(&r);
    assert!(r["broker_process"]["rss_peak"].is_number(), "{r:#}");
    let r = bench(
        mosquitto.port,
        &[
            "wildcard", "-c", "2", "-S", "10", "--depth", "3", "--width", "3", "-q", "1", "-d", "1",
        ],
    );
    check_lossless(&r);
    let r = bench(
        mosquitto.port,
        &["latency", "-c", "3", "-r", "300", "-d", "1.5", "-q", "1"],
    );
    check_lossless(&r);
    let r = bench(
        mosquitto.port,
        &["conns", "-c", "30", "-d", "0.3", "-q", "1", "--pid", &pid],
    );
    check_lossless(&r);
    assert_eq!(n(&r, "connections"), 30);
}

#[test]
fn command_line() {
    // `--help` describes the scenarios; `-h` is the host, as in the other tools.
    let out = run_bounded(Command::new(MIDGE).args(["bench", "--help"]), WAIT);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "fanin", "fanout", "pairs", "latency", "conns", "wildcard", "--pid", "--json",
    ] {
        assert!(
            help.contains(word),
            "--help does not mention {word}:\n{help}"
        );
    }
    // Bad options fail before connecting anywhere.
    for (args, message) in [
        (&["pairs", "-s", "10"][..], "at least 24"),
        (&["pairs", "-q", "3"], "3"),
        (&["pairs", "-V", "4"], "31, 311 or 5"),
        (&["pairs", "-d", "5000"], "between 0 and 3600"),
        (&["latency", "-d", "2", "--warmup", "3"], "shorter"),
        (&["conns", "-n", "5"], "-n does not apply"),
    ] {
        let out = run_bounded(
            Command::new(MIDGE)
                .arg("bench")
                .args(args)
                .args(["-h", "127.0.0.1", "-p", "1"]),
            WAIT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    // Nothing listening: a clear error, quickly.
    let port = free_port();
    let out = run_bounded(
        Command::new(MIDGE).args([
            "bench",
            "pairs",
            "-c",
            "1",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--quiet",
        ]),
        WAIT,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}
