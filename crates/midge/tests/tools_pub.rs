//! What `midge pub` sends, as Debian's `mosquitto_sub` 2.0.11 sees it, against what
//! `mosquitto_pub` sends with the same arguments, on both brokers (a `midge serve` process and
//! Debian's `mosquitto`): every payload mode (`-m`, `-f`, `-s`, `-l`, `-n`), `-q 0/1/2`,
//! `--repeat`/`--repeat-delay`, `-D` properties (topic alias included), MQTT 3.1; retained
//! messages (`-r`, and `-r -n` clearing them); wills (`--will-*`, `-D will`).

mod tools_common;

use std::process::Stdio;

use tools_common::{Broker, Capture, Impl, WAIT, count_of, run_tool, strings, strip_debug};

const BINARY: &[u8] = b"a\x00b\xff\xfe\"\\\x01\x1f\x7f\n\t\x08\x0c\rz";

/// A publisher invocation: its arguments (after the broker's and `-t TOPIC`), its stdin, and
/// how many messages it sends.
struct PubCase {
    name: &'static str,
    args: Vec<String>,
    stdin: Option<&'static [u8]>,
    count: usize,
}

fn pub_case(name: &'static str, args: &[&str], count: usize) -> PubCase {
    PubCase {
        name,
        args: strings(args),
        stdin: None,
        count,
    }
}

fn pub_cases(payload_file: &str) -> Vec<PubCase> {
    let mut stdin_file = pub_case("stdin_file", &["-s", "-q", "1"], 1);
    stdin_file.stdin = Some(b"all\nof it\n\x00\xff");
    let mut stdin_lines = pub_case("stdin_lines", &["-l", "-q", "2"], 4);
    stdin_lines.stdin = Some(b"first\n\nthird \r\nlast without newline");
    let mut stdin_lines_v5 = pub_case(
        "stdin_lines_v5",
        &["-l", "-V", "5", "-D", "publish", "content-type", "line"],
        2,
    );
    stdin_lines_v5.stdin = Some(b"a\nb\n");
    vec![
        pub_case("message", &["-m", "hello"], 1),
        pub_case("message_qos1", &["-m", "hello", "-q", "1"], 1),
        pub_case("message_qos2", &["-m", "hello", "-q", "2"], 1),
        pub_case("null", &["-n", "-q", "1"], 1),
        pub_case("file", &["-f", payload_file, "-q", "2"], 1),
        stdin_file,
        stdin_lines,
        stdin_lines_v5,
        pub_case(
            "repeat",
            &["-m", "again", "--repeat", "3", "--repeat-delay", "0.05"],
            3,
        ),
        pub_case(
            "v5_properties",
            &[
                "-V",
                "5",
                "-q",
                "1",
                "-m",
                "props",
                "-D",
                "publish",
                "user-property",
                "k",
                "v",
                "-D",
                "publish",
                "user-property",
                "k",
                "v2",
                "-D",
                "publish",
                "content-type",
                "text/plain",
                "-D",
                "publish",
                "correlation-data",
                "cd",
                "-D",
                "publish",
                "response-topic",
                "r/t",
                "-D",
                "publish",
                "payload-format-indicator",
                "1",
            ],
            1,
        ),
        pub_case(
            "v5_topic_alias",
            &[
                "-V",
                "5",
                "-D",
                "publish",
                "topic-alias",
                "3",
                "-m",
                "aliased",
                "--repeat",
                "3",
            ],
            3,
        ),
        pub_case("v31", &["-V", "mqttv31", "-m", "three one", "-q", "1"], 1),
        pub_case(
            "v5_connect_props",
            &[
                "-V",
                "5",
                "-m",
                "c",
                "-D",
                "connect",
                "user-property",
                "a",
                "b",
                "-D",
                "connect",
                "session-expiry-interval",
                "0",
                "-k",
                "30",
            ],
            1,
        ),
    ]
}

/// What mosquitto_sub prints of everything published under `topic` by `which pub ARGS`.
fn received_from(which: Impl, broker: &Broker, topic: &str, c: &PubCase) -> (Vec<u8>, Vec<u8>) {
    let mut sub_args = broker.args();
    sub_args.extend(strings(&[
        "-d",
        "-V",
        "5",
        "-q",
        "2",
        "-W",
        "20",
        "-t",
        topic,
        "-C",
        &c.count.to_string(),
        "-F",
        "%t|q%q|r%r|%l|%x|%P|%C|%R|%D|%F",
    ]));
    let mut cmd = Impl::Mosquitto.command("sub");
    cmd.args(&sub_args);
    let sub = Capture::spawn(&mut cmd, "mosquitto_sub");
    sub.wait_for("Subscribed (mid: ", 1);
    let mut args = broker.args();
    args.extend(strings(&["-t", topic]));
    args.extend(c.args.iter().cloned());
    let out = run_tool(which, "pub", &args, c.stdin);
    let (status, stdout, _) = sub.finish(WAIT);
    assert!(status.success(), "mosquitto_sub for {} failed", c.name);
    (strip_debug(&stdout), out.stderr)
}

fn pub_modes_on(broker: &Broker) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, BINARY).expect("write");
    let file = file.display().to_string();
    for c in pub_cases(&file) {
        let topic = format!("pub/{}/{}", c.name, std::process::id());
        let (m_out, m_err) = received_from(Impl::Mosquitto, broker, &topic, &c);
        let (g_out, g_err) = received_from(Impl::Midge, broker, &topic, &c);
        assert_eq!(
            String::from_utf8_lossy(&g_out),
            String::from_utf8_lossy(&m_out),
            "pub case {} on {}",
            c.name,
            broker.name()
        );
        assert_eq!(g_out, m_out, "pub case {}: bytes", c.name);
        assert_eq!(g_err, m_err, "pub case {}: stderr", c.name);
        assert_eq!(
            count_of(&g_out, b"\n"),
            c.count,
            "pub case {}: {g_out:?}",
            c.name
        );
    }
}

#[test]
fn pub_payload_modes_match_mosquitto_pub_on_midge_serve() {
    pub_modes_on(&Broker::midge());
}

#[test]
fn pub_payload_modes_match_mosquitto_pub_on_mosquitto() {
    pub_modes_on(&Broker::mosquitto());
}

/// `-r` keeps the message for later subscribers; `-r -n` clears it.
#[test]
fn pub_retain_sets_and_clears() {
    for broker in [Broker::midge(), Broker::mosquitto()] {
        for which in [Impl::Mosquitto, Impl::Midge] {
            let topic = format!("keep/{}", which.name());
            let mut args = broker.args();
            args.extend(strings(&["-t", &topic, "-r", "-q", "1", "-m", "kept"]));
            assert!(run_tool(which, "pub", &args, None).status.success());
            let mut sub = broker.args();
            sub.extend(strings(&[
                "-t", &topic, "-C", "1", "-W", "5", "-F", "%r %p",
            ]));
            let out = run_tool(Impl::Mosquitto, "sub", &sub, None);
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "1 kept\n",
                "{}",
                broker.name()
            );
            let mut clear = broker.args();
            clear.extend(strings(&["-t", &topic, "-r", "-n"]));
            assert!(run_tool(which, "pub", &clear, None).status.success());
            let out = run_tool(Impl::Mosquitto, "sub", &sub, None);
            assert_eq!(out.status.code(), Some(27), "retained message not cleared");
        }
    }
}

/// `--will-*` (and `-D will …`): killed with SIGKILL, the publisher's will goes out.
#[test]
fn pub_will_is_published_when_killed() {
    for broker in [Broker::midge(), Broker::mosquitto()] {
        let mut received = Vec::new();
        for which in [Impl::Mosquitto, Impl::Midge] {
            let will = format!("will/{}", which.name());
            let mut sub_args = broker.args();
            sub_args.extend(strings(&[
                "-d",
                "-V",
                "5",
                "-q",
                "1",
                "-t",
                &will,
                "-C",
                "1",
                "-W",
                "20",
                "-F",
                "%t|%q|%r|%p|%C",
            ]));
            let mut cmd = Impl::Mosquitto.command("sub");
            cmd.args(&sub_args);
            let sub = Capture::spawn(&mut cmd, "mosquitto_sub (will)");
            sub.wait_for("Subscribed (mid: ", 1);
            let mut args = broker.args();
            args.extend(strings(&[
                "-d",
                "-V",
                "5",
                "-t",
                "will/other",
                "-l",
                "--will-topic",
                &will,
                "--will-payload",
                "gone",
                "--will-qos",
                "1",
                "--will-retain",
                "-D",
                "will",
                "content-type",
                "text/will",
            ]));
            let mut cmd = which.command("pub");
            cmd.args(&args).stdin(Stdio::piped());
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn pub");
            let stdin = child.stdin.take();
            let mut out = child.stdout.take().expect("stdout");
            // Wait for the CONNACK line, then kill.
            let mut seen = Vec::new();
            let mut buf = [0u8; 256];
            let deadline = std::time::Instant::now() + WAIT;
            while count_of(&seen, b"received CONNACK") == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no CONNACK from {} pub",
                    which.name()
                );
                let n = std::io::Read::read(&mut out, &mut buf).expect("read");
                assert!(n > 0, "pub ended early");
                seen.extend_from_slice(&buf[..n]);
            }
            child.kill().expect("kill");
            let _ = child.wait();
            drop(stdin);
            let (status, stdout, _) = sub.finish(WAIT);
            assert!(status.success());
            received
                .push(String::from_utf8_lossy(&strip_debug(&stdout)).replace(which.name(), "X"));
            // Clear the retained will.
            let mut clear = broker.args();
            clear.extend(strings(&["-t", &will, "-r", "-n"]));
            assert!(
                run_tool(Impl::Mosquitto, "pub", &clear, None)
                    .status
                    .success()
            );
        }
        assert_eq!(received[1], received[0], "{}", broker.name());
        assert_eq!(received[0], "will/X|1|0|gone|text/will\n");
    }
}
