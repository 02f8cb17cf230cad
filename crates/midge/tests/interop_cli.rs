//! Process tests: the real `midge serve` binary against Debian's `mosquitto_pub` and
//! `mosquitto_sub` (MQTT 3.1, 3.1.1 and 5), plus the command line of `midge serve` itself
//! (`--print-config`, configuration errors, SIGTERM).
//!
//! The Mosquitto clients run under `stdbuf -oL` so their `-d` debug lines (CONNACK, SUBACK,
//! the flags of each received PUBLISH) reach the test as they happen; the test waits for the
//! SUBACK before publishing. Every wait is bounded and every child is killed on drop.

mod interop_common;

use std::collections::VecDeque;
use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use interop_common::{LineProc, MIDGE, Midge, WAIT, mosquitto_tool, run_bounded};

/// The `-V` values of the Mosquitto clients.
const VERSIONS: [&str; 3] = ["mqttv31", "mqttv311", "mqttv5"];

fn stdbuf() -> &'static str {
    assert!(
        std::path::Path::new("/usr/bin/stdbuf").exists(),
        "/usr/bin/stdbuf (coreutils) is needed to read mosquitto_sub's output line by line"
    );
    "/usr/bin/stdbuf"
}

/// Runs `mosquitto_pub` to completion and asserts it succeeded.
fn mosquitto_pub(port: u16, version: &str, args: &[&str]) {
    let out = run_bounded(
        Command::new(mosquitto_tool("mosquitto_pub"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version])
            .args(args),
        WAIT,
    );
    assert!(
        out.status.success(),
        "mosquitto_pub {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One message printed by `mosquitto_sub`, with the flags of its PUBLISH from the debug log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Received {
    /// The line printed for the message (`-v`: "topic payload"; or the `-F` format).
    line: String,
    qos: u8,
    retain: bool,
}

/// A running `mosquitto_sub -d` that has received its SUBACK.
struct MosquittoSub {
    out: LineProc,
    /// Flags of PUBLISH packets received and not yet matched with their printed line.
    headers: VecDeque<(u8, bool)>,
    /// The SUBACK's return codes, as printed ("Subscribed (mid: 1): 1, 2").
    granted: Vec<u8>,
}

impl MosquittoSub {
    /// Starts `mosquitto_sub -d ARGS` and waits for its SUBACK.
    fn start(port: u16, version: &str, args: &[&str]) -> MosquittoSub {
        let mut cmd = Command::new(stdbuf());
        cmd.arg("-oL")
            .arg(mosquitto_tool("mosquitto_sub"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-V",
                version,
                "-d",
            ])
            .args(args)
            .stdin(Stdio::null());
        let mut out = LineProc::spawn(&mut cmd, &format!("mosquitto_sub {version} {args:?}"));
        let mut headers = VecDeque::new();
        let suback = out.wait_for("SUBACK", |l| l.starts_with("Subscribed (mid:"));
        // Retained messages may follow the SUBACK at once; nothing can precede it.
        for l in &out.seen {
            if let Some(h) = publish_header(l) {
                headers.push_back(h);
            }
        }
        let granted = suback
            .split_once("): ")
            .map(|(_, codes)| {
                codes
                    .split(", ")
                    .map(|c| c.trim().parse().expect("granted QoS"))
                    .collect()
            })
            .unwrap_or_default();
        MosquittoSub {
            out,
            headers,
            granted,
        }
    }

    /// The next message, failing the test after [`WAIT`].
    fn next(&mut self) -> Received {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = self.out.next_line(left) else {
                panic!(
                    "{}: no message within {WAIT:?}; output:\n{}",
                    self.out.proc.name,
                    self.out.seen.join("\n")
                );
            };
            if let Some(h) = publish_header(&line) {
                self.headers.push_back(h);
                continue;
            }
            if line.starts_with("Client ") || line.starts_with("Subscribed (mid:") {
                continue;
            }
            let (qos, retain) = self
                .headers
                .pop_front()
                .unwrap_or_else(|| panic!("message line {line:?} without a PUBLISH before it"));
            return Received { line, qos, retain };
        }
    }

    /// Waits for the process to exit (e.g. after `-C N` messages).
    fn finish(mut self) -> ExitStatus {
        match self.out.proc.wait_timeout(WAIT) {
            Some(status) => status,
            None => panic!(
                "{} did not exit; output:\n{}",
                self.out.proc.name,
                self.out.seen.join("\n")
            ),
        }
    }
}

/// `(qos, retain)` from a debug line "Client X received PUBLISH (d0, q1, r0, m1, 't', ...".
fn publish_header(line: &str) -> Option<(u8, bool)> {
    let rest = line.split_once("received PUBLISH (")?.1;
    let mut fields = rest.split(", ");
    let _dup = fields.next()?;
    let qos = fields.next()?.strip_prefix('q')?.parse().ok()?;
    let retain = fields.next()?.strip_prefix('r')? == "1";
    Some((qos, retain))
}

/// `+` and `#` filters at QoS 0, 1 and 2 for MQTT 3.1, 3.1.1 and 5: matching messages arrive
/// in order with QoS min(publish, granted) ([MQTT-3.8.4-6] / MQTT 5 §3.8.4), non-matching ones
/// do not ([MQTT-4.7.1-2], [MQTT-4.7.1-3]), the SUBACK grants the requested QoS
/// ([MQTT-3.9.3-1]), and `-C 4` ends with a clean exit after the fourth message.
#[test]
fn mosquitto_clients_wildcards_every_version_and_qos() {
    let midge = Midge::start();
    let port = midge.port;
    let mut subs = Vec::new();
    for v in VERSIONS {
        for q in 0u8..=2 {
            let hash = format!("w/{v}/{q}/hash/#");
            let plus = format!("w/{v}/{q}/plus/+/leaf");
            let sub = MosquittoSub::start(
                port,
                v,
                &[
                    "-q",
                    &q.to_string(),
                    "-t",
                    &hash,
                    "-t",
                    &plus,
                    "-v",
                    "-C",
                    "4",
                ],
            );
            assert_eq!(sub.granted, vec![q, q], "{v} QoS {q}: granted QoS");
            subs.push((v, q, sub));
        }
    }
    for v in VERSIONS {
        for q in 0u8..=2 {
            let t = |s: &str| format!("w/{v}/{q}/{s}");
            mosquitto_pub(port, v, &["-q", "0", "-t", &t("hash"), "-m", "m0"]);
            mosquitto_pub(port, v, &["-q", "1", "-t", &t("hash/a/b/c"), "-m", "m1"]);
            mosquitto_pub(port, v, &["-q", "2", "-t", &t("plus/x/leaf"), "-m", "m2"]);
            mosquitto_pub(port, v, &["-q", "2", "-t", &t("plus/x/y/leaf"), "-m", "no"]);
            mosquitto_pub(port, v, &["-q", "2", "-t", &t("other"), "-m", "no"]);
            mosquitto_pub(port, v, &["-q", "2", "-t", &t("hash/end"), "-m", "m3"]);
        }
    }
    for (v, q, mut sub) in subs {
        let expected = [
            ("hash", "m0", 0u8),
            ("hash/a/b/c", "m1", 1),
            ("plus/x/leaf", "m2", 2),
            ("hash/end", "m3", 2),
        ];
        for (suffix, payload, pub_qos) in expected {
            let got = sub.next();
            assert_eq!(
                got,
                Received {
                    line: format!("w/{v}/{q}/{suffix} {payload}"),
                    qos: pub_qos.min(q),
                    retain: false,
                },
                "{v} subscribed at QoS {q}"
            );
        }
        let status = sub.finish();
        assert!(
            status.success(),
            "{v} QoS {q}: mosquitto_sub exited {status}"
        );
    }
    drop(midge);
}

/// `mosquitto_pub -r` stores a retained message that a later `mosquitto_sub` receives with
/// RETAIN 1 ([MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-8]); `mosquitto_pub -n -r` removes it
/// ([MQTT-3.3.1-10], [MQTT-3.3.1-11]), so the next subscriber's first message is a live one
/// with RETAIN 0.
#[test]
fn mosquitto_clients_retained_set_and_cleared() {
    let midge = Midge::start();
    let port = midge.port;
    for v in VERSIONS {
        let state = format!("ret/{v}/state");
        let filter = format!("ret/{v}/#");
        mosquitto_pub(port, v, &["-q", "1", "-r", "-t", &state, "-m", "first"]);
        mosquitto_pub(
            port,
            v,
            &["-q", "1", "-r", "-t", &state, "-m", &format!("on-{v}")],
        );

        let mut late = MosquittoSub::start(port, v, &["-q", "1", "-t", &filter, "-v", "-C", "1"]);
        let got = late.next();
        assert_eq!(
            got,
            Received {
                line: format!("{state} on-{v}"),
                qos: 1,
                retain: true
            },
            "{v}: the newest retained message, flagged retained"
        );
        assert!(late.finish().success());

        mosquitto_pub(port, v, &["-n", "-r", "-t", &state]);
        let mut after = MosquittoSub::start(port, v, &["-q", "1", "-t", &filter, "-v", "-C", "1"]);
        let sentinel = format!("ret/{v}/live");
        mosquitto_pub(port, v, &["-q", "1", "-t", &sentinel, "-m", "live"]);
        let got = after.next();
        assert_eq!(
            got,
            Received {
                line: format!("{sentinel} live"),
                qos: 1,
                retain: false
            },
            "{v}: the cleared retained message must not be delivered"
        );
        assert!(after.finish().success());
    }
    drop(midge);
}

/// MQTT 5 properties set with `mosquitto_pub -D publish …` reach `mosquitto_sub -F`
/// unchanged: User Properties in order ([MQTT-3.3.2-17], [MQTT-3.3.2-18]), Content Type
/// ([MQTT-3.3.2-20]), Response Topic ([MQTT-3.3.2-15]), Correlation Data ([MQTT-3.3.2-16]),
/// Payload Format Indicator ([MQTT-3.3.2-4]), Message Expiry Interval counted down
/// ([MQTT-3.3.2-6]); the subscriber's Subscription Identifier comes back ([MQTT-3.3.4-3]).
#[test]
fn mosquitto_clients_v5_properties_forwarded() {
    let midge = Midge::start();
    let port = midge.port;
    let mut sub = MosquittoSub::start(
        port,
        "mqttv5",
        &[
            "-q",
            "2",
            "-t",
            "props/#",
            "-D",
            "subscribe",
            "subscription-identifier",
            "9",
            "-F",
            "%t|%p|%P|%C|%E|%R|%D|%F|%S|%q",
            "-C",
            "2",
        ],
    );
    #[rustfmt::skip]
    mosquitto_pub(port, "mqttv5", &[
        "-q", "1", "-t", "props/a", "-m", "hello",
        "-D", "publish", "user-property", "k", "v1",
        "-D", "publish", "user-property", "a", "b",
        "-D", "publish", "user-property", "k", "v2",
        "-D", "publish", "content-type", "text/plain",
        "-D", "publish", "message-expiry-interval", "60",
        "-D", "publish", "response-topic", "reply/here",
        "-D", "publish", "correlation-data", "corr-1",
        "-D", "publish", "payload-format-indicator", "1",
    ]);
    mosquitto_pub(port, "mqttv5", &["-q", "2", "-t", "props/b", "-m", "plain"]);

    let got = sub.next();
    let fields: Vec<&str> = got.line.split('|').collect();
    assert_eq!(fields.len(), 10, "{got:?}");
    assert_eq!(fields[0], "props/a");
    assert_eq!(fields[1], "hello");
    assert_eq!(fields[2], "k:v1 a:b k:v2", "user properties in order");
    assert_eq!(fields[3], "text/plain");
    let expiry: u32 = fields[4].parse().expect("message expiry forwarded");
    assert!((55..=60).contains(&expiry), "expiry {expiry}");
    assert_eq!(fields[5], "reply/here");
    assert_eq!(fields[6], "corr-1");
    assert_eq!(fields[7], "1");
    assert_eq!(fields[8], "9", "subscription identifier");
    assert_eq!(fields[9], "1");
    let got = sub.next();
    assert_eq!(got.line, "props/b|plain|||||||9|2");
    assert!(sub.finish().success());
    drop(midge);
}

/// A will is published when its client's connection drops without DISCONNECT
/// ([MQTT-3.1.2-8]; `mosquitto_pub -l` killed with SIGKILL), and not after a normal
/// DISCONNECT ([MQTT-3.1.2-10]; `mosquitto_pub -m` exiting normally), for every version.
#[test]
fn mosquitto_clients_will_on_sigkill() {
    let midge = Midge::start();
    let port = midge.port;
    for v in VERSIONS {
        let filter = format!("will/{v}/#");
        let mut watcher =
            MosquittoSub::start(port, v, &["-q", "1", "-t", &filter, "-v", "-C", "1"]);

        let clean = format!("will/{v}/clean");
        let other = format!("other/{v}");
        #[rustfmt::skip]
        mosquitto_pub(port, v, &[
            "-t", &other, "-m", "x",
            "--will-topic", &clean, "--will-payload", "must-not-appear", "--will-qos", "1",
        ]);

        let dead = format!("will/{v}/dead");
        let mut cmd = Command::new(stdbuf());
        #[rustfmt::skip]
        cmd.arg("-oL")
            .arg(mosquitto_tool("mosquitto_pub"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", v, "-d", "-l",
                "-t", &other, "--will-topic", &dead, "--will-payload", "gone",
                "--will-qos", "1"])
            .stdin(Stdio::piped());
        let mut lingering = LineProc::spawn(&mut cmd, &format!("mosquitto_pub -l {v}"));
        let mut stdin = lingering.proc.child.stdin.take().expect("stdin");
        lingering.wait_for("CONNACK", |l| l.contains("received CONNACK"));
        // One line through the open connection proves it is live.
        writeln!(stdin, "still here").expect("write to mosquitto_pub");
        stdin.flush().expect("flush");
        lingering.wait_for("PUBLISH sent", |l| l.contains("sending PUBLISH"));
        lingering.proc.kill();

        let got = watcher.next();
        assert_eq!(
            got,
            Received {
                line: format!("{dead} gone"),
                qos: 1,
                retain: false
            },
            "{v}: the killed client's will, and only it"
        );
        assert!(watcher.finish().success());
        drop(stdin);
    }
    drop(midge);
}

/// A persistent session (`mosquitto_sub -c -i ID -q 1`) keeps its subscription while the
/// client is away; QoS 1 messages published meanwhile are delivered in order when it
/// reconnects ([MQTT-3.1.2-4], [MQTT-3.1.2-5] (3.1.1) / [MQTT-3.1.2-23] (5), [MQTT-4.6.0-6]).
#[test]
fn mosquitto_clients_persistent_session_gets_missed_messages() {
    let midge = Midge::start();
    let port = midge.port;
    for v in VERSIONS {
        let id = format!("persist-{v}");
        let filter = format!("ps/{v}/#");
        let args = |count: &'static str| {
            vec![
                "-c".to_owned(),
                "-i".to_owned(),
                id.clone(),
                "-q".to_owned(),
                "1".to_owned(),
                "-t".to_owned(),
                filter.clone(),
                "-v".to_owned(),
                "-C".to_owned(),
                count.to_owned(),
            ]
        };
        let first_args = args("1");
        let first_args: Vec<&str> = first_args.iter().map(String::as_str).collect();
        let mut first = MosquittoSub::start(port, v, &first_args);
        let prime = format!("ps/{v}/prime");
        mosquitto_pub(port, v, &["-q", "1", "-t", &prime, "-m", "prime"]);
        assert_eq!(first.next().line, format!("{prime} prime"));
        assert!(first.finish().success(), "{v}: first mosquitto_sub");

        for i in 0..3 {
            let topic = format!("ps/{v}/n{i}");
            mosquitto_pub(
                port,
                v,
                &["-q", "1", "-t", &topic, "-m", &format!("missed-{i}")],
            );
        }

        let again_args = args("3");
        let again_args: Vec<&str> = again_args.iter().map(String::as_str).collect();
        let mut cmd = Command::new(stdbuf());
        cmd.arg("-oL")
            .arg(mosquitto_tool("mosquitto_sub"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", v, "-d"])
            .args(&again_args)
            .stdin(Stdio::null());
        // Queued messages may arrive before the SUBACK: read them without waiting for it.
        let mut again = MosquittoSub {
            out: LineProc::spawn(&mut cmd, &format!("mosquitto_sub -c {v}")),
            headers: VecDeque::new(),
            granted: Vec::new(),
        };
        for i in 0..3 {
            let got = again.next();
            assert_eq!(
                got,
                Received {
                    line: format!("ps/{v}/n{i} missed-{i}"),
                    qos: 1,
                    retain: false
                },
                "{v}: message {i} queued while offline\n{}",
                midge.log()
            );
        }
        assert!(again.finish().success());
    }
    drop(midge);
}

/// Wildcards do not match topics that start with `$` ([MQTT-4.7.2-1]): `#` and `+/x` miss
/// `$app/x` but get `app/x`.
#[test]
fn mosquitto_clients_wildcards_skip_dollar_topics() {
    let midge = Midge::start();
    for v in VERSIONS {
        let mut sub =
            MosquittoSub::start(midge.port, v, &["-t", "#", "-t", "+/x", "-v", "-C", "1"]);
        mosquitto_pub(midge.port, v, &["-q", "1", "-t", "$app/x", "-m", "hidden"]);
        mosquitto_pub(midge.port, v, &["-q", "1", "-t", "app/x", "-m", "seen"]);
        assert_eq!(sub.next().line, "app/x seen", "{v}");
        assert!(sub.finish().success());
    }
}

/// A large message (1 MB, under the 2,000,000-byte default Maximum Packet Size) read by
/// `mosquitto_pub -f` arrives intact at `mosquitto_sub` at QoS 1 and 2.
#[test]
fn mosquitto_clients_large_payload_intact() {
    let midge = Midge::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("payload.bin");
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &payload).expect("write payload");
    let expected_hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    let file = file.to_str().expect("UTF-8 path");
    for (v, q) in [("mqttv311", "1"), ("mqttv5", "2")] {
        let mut sub = MosquittoSub::start(
            midge.port,
            v,
            &["-q", q, "-t", "big", "-F", "%l|%x", "-C", "1"],
        );
        mosquitto_pub(midge.port, v, &["-q", q, "-t", "big", "-f", file]);
        let got = sub.next();
        let (len, hex) = got.line.split_once('|').expect("%l|%x");
        assert_eq!(len, "1000000", "{v}");
        assert!(hex == expected_hex, "{v}: payload changed in transit");
        assert!(sub.finish().success());
    }
}

/// `midge serve --print-config` prints the configuration in force as TOML that reads back
/// into the same configuration, with command-line overrides and file settings applied.
#[test]
fn serve_print_config_is_valid_toml() {
    let out = run_bounded(Command::new(MIDGE).args(["serve", "--print-config"]), WAIT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let config = midge_broker::Config::from_toml(&text).unwrap_or_else(|e| {
        panic!("--print-config output is not a valid configuration: {e}\n{text}")
    });
    assert_eq!(config, midge_broker::Config::default());

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("midge.toml");
    std::fs::write(&file, "[limits]\nmax_inflight_messages = 7\n").expect("write config");
    let out = run_bounded(
        Command::new(MIDGE)
            .args(["serve", "--print-config", "-p", "1999", "-c"])
            .arg(&file),
        WAIT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let config = midge_broker::Config::from_toml(&text).expect("valid configuration");
    assert_eq!(config.limits.max_inflight_messages, 7);
    assert_eq!(config.listeners[0].bind, "127.0.0.1:1999".parse().unwrap());
}

/// A configuration file with an unknown option is refused: `midge serve` exits non-zero and
/// names the option (unknown keys are errors, never ignored).
#[test]
fn serve_rejects_unknown_config_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[limits]\nmax_conections = 5\n").expect("write config");
    let port = interop_common::free_port();
    let out = run_bounded(
        Command::new(MIDGE)
            .args(["serve", "-p", &port.to_string(), "-c"])
            .arg(&file)
            .current_dir(dir.path()),
        WAIT,
    );
    assert!(!out.status.success(), "midge serve accepted an unknown key");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("max_conections"),
        "error must name the key: {stderr}"
    );
    assert!(
        stderr.contains("bad.toml"),
        "error must name the file: {stderr}"
    );
}

/// SIGTERM stops `midge serve` cleanly: exit status 0 within a few seconds, even with a client
/// connected; an MQTT 5 client is told why (DISCONNECT 0x8B Server shutting down).
#[test]
fn serve_exits_zero_on_sigterm() {
    let mut midge = Midge::start();
    let mut sub = MosquittoSub::start(midge.port, "mqttv5", &["-t", "x/#", "-v"]);
    midge.proc.signal("TERM");
    let status = midge
        .proc
        .wait_timeout(Duration::from_secs(5))
        .unwrap_or_else(|| {
            panic!(
                "midge serve still running 5 s after SIGTERM\n{}",
                midge.log()
            )
        });
    assert!(status.success(), "exit status {status}\n{}", midge.log());
    sub.out
        .wait_for("DISCONNECT 0x8B", |l| l.contains("DISCONNECT (139)"));
}
