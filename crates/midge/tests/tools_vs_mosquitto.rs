//! `midge sub` and `midge pub` beside Debian's `mosquitto_sub` and `mosquitto_pub` 2.0.11,
//! against both brokers (a `midge serve` process and Debian's `mosquitto`).
//!
//! For each case of [`cases`] (output flags and `-F` formats, MQTT 5 properties, `-R`,
//! `--retained-only`, `-T`, …), `mosquitto_sub` and `midge sub` subscribe side by side with the
//! same flags and `-C N`; the case's messages are published once with `mosquitto_pub` and once
//! with `midge pub` (same arguments); both subscribers' stdout must be equal byte for byte
//! (after removing `-d` lines, used to know when they are subscribed; outputs that print the
//! time have their digits normalised), as must stderr and the exit status.
//!
//! Then: persistent sessions (`-c`, `-E`), the `-d` lines, options files, and
//! `midge sub … | head -n 1` exiting 0. What `midge pub` sends is in `tools_pub.rs`.

mod tools_common;

use std::io::Write;
use std::time::Duration;

use tools_common::{
    Broker, Capture, Impl, MIDGE, WAIT, count_of, debug_lines, normalise_digits, run_tool, strings,
    strip_debug,
};

// ---------------------------------------------------------------------------------------------
// The case table
// ---------------------------------------------------------------------------------------------

/// One message, published with `-f FILE` (so binary payloads pass) and these arguments.
#[derive(Debug, Clone)]
struct Msg {
    /// Appended to the case's topic prefix.
    topic: &'static str,
    payload: Vec<u8>,
    qos: u8,
    /// Published with `-r` before the subscribers start.
    retained: bool,
    /// Published with `-r` once the subscribers are in place.
    retain_live: bool,
    /// More `pub` arguments (`-V 5 -D publish …`).
    extra: Vec<&'static str>,
}

fn msg(topic: &'static str, payload: &[u8]) -> Msg {
    Msg {
        topic,
        payload: payload.to_vec(),
        qos: 0,
        retained: false,
        retain_live: false,
        extra: Vec::new(),
    }
}

impl Msg {
    fn qos(mut self, qos: u8) -> Msg {
        self.qos = qos;
        self
    }

    fn retained(mut self) -> Msg {
        self.retained = true;
        self
    }

    fn retain_live(mut self) -> Msg {
        self.retain_live = true;
        self
    }

    fn with(mut self, extra: &[&'static str]) -> Msg {
        self.extra.extend_from_slice(extra);
        self
    }
}

#[derive(Debug, Clone)]
struct Case {
    name: &'static str,
    /// The subscribers' flags.
    args: Vec<&'static str>,
    messages: Vec<Msg>,
    /// `-C`: how many messages the subscribers print; `None` when the case ends otherwise.
    count: Option<usize>,
    /// The output prints times: compare with digits normalised.
    time: bool,
}

fn case(name: &'static str, args: &[&'static str], messages: Vec<Msg>) -> Case {
    let count = messages.len();
    Case {
        name,
        args: args.to_vec(),
        messages,
        count: Some(count),
        time: false,
    }
}

const BINARY: &[u8] = b"a\x00b\xff\xfe\"\\\x01\x1f\x7f\n\t\x08\x0c\rz";

/// Text, binary, empty, multi-line and non-ASCII payloads; one retained message.
fn plain() -> Vec<Msg> {
    vec![
        msg("r", b"retained one").qos(1).retained(),
        msg("a", b"hello"),
        msg("b/c", BINARY).qos(1),
        msg("a", b"").qos(2),
        msg("d", b"line1\nline2"),
        msg("sp ace/\"q\"", b"caf\xc3\xa9"),
        msg("long", &[b'x'; 300]).qos(1),
    ]
}

fn json_payloads() -> Vec<Msg> {
    vec![
        msg(
            "v",
            br#"{"a": [1, 2.50, {"b":null}], "c":"\u00e9", "e":{}, "g":true}"#,
        ),
        msg("n", b"[1000000000000000,-0.0,0.1,1e-7]"),
        msg("bad", b"notjson").qos(1),
        msg("e", b""),
    ]
}

/// Every PUBLISH property `pub -D` sets (MQTT 5), and messages without.
fn v5_messages() -> Vec<Msg> {
    const FULL: &[&str] = &[
        "-V",
        "5",
        "-D",
        "publish",
        "user-property",
        "k",
        "v",
        "-D",
        "publish",
        "content-type",
        "text/plain",
        "-D",
        "publish",
        "correlation-data",
        "1234",
        "-D",
        "publish",
        "response-topic",
        "r/t",
        "-D",
        "publish",
        "message-expiry-interval",
        "60",
        "-D",
        "publish",
        "payload-format-indicator",
        "1",
        "-D",
        "publish",
        "user-property",
        "k2",
        "v 2",
    ];
    vec![
        msg("ret", b"kept").qos(1).retained().with(&[
            "-V",
            "5",
            "-D",
            "publish",
            "user-property",
            "rk",
            "rv",
            "-D",
            "publish",
            "content-type",
            "ct",
        ]),
        msg("p", b"hi").qos(1).with(FULL),
        msg("none", b"no properties"),
        msg("some", b"").with(&[
            "-V",
            "5",
            "-D",
            "publish",
            "payload-format-indicator",
            "0",
            "-D",
            "publish",
            "correlation-data",
            "",
        ]),
    ]
}

fn cases() -> Vec<Case> {
    let mut time = vec![
        case(
            "v5_expiry",
            &["-V", "5", "-F", "%E|%5E|%-05E|%t"],
            vec![msg("e", b"x").with(&[
                "-V",
                "5",
                "-D",
                "publish",
                "message-expiry-interval",
                "3600",
            ])],
        ),
        case("json", &["-q", "2", "-F", "%j"], plain()),
        case("json_raw", &["-q", "1", "-F", "%J|"], json_payloads()),
        case("json_pretty", &["-q", "1", "--pretty", "-F", "%j"], plain()),
        case("iso_unix", &["-F", "%I|%U|%t"], plain()),
        case(
            "strftime",
            &["-F", "@Y-@m-@d @H:@M:@S @z @s.@N|%p"],
            plain(),
        ),
        case(
            "v5_json",
            &["-V", "mqttv5", "-q", "2", "-F", "%j"],
            v5_messages(),
        ),
    ];
    for c in &mut time {
        c.time = true;
    }
    let mut retained_only = case(
        "retained_only",
        &["--retained-only", "-v"],
        vec![msg("r1", b"old").qos(1).retained(), msg("live", b"ends it")],
    );
    retained_only.count = None;
    let mut filtered = case(
        "filter_out",
        &["-v", "-T", "{p}/skip/#", "-T", "{p}/+/skip"],
        vec![
            msg("a", b"shown"),
            msg("skip/x", b"hidden"),
            msg("b/skip", b"hidden"),
            msg("c", b"shown too"),
        ],
    );
    filtered.count = Some(2);
    let mut no_stale = case(
        "no_stale_retained",
        &["-R", "-v", "-q", "1"],
        vec![msg("old", b"stale").retained(), msg("new", b"fresh").qos(1)],
    );
    no_stale.count = Some(1);
    let mut messages = vec![
        case("default", &[], plain()),
        case("verbose", &["-v"], plain()),
        case("no_eol", &["-N"], plain()),
        case("verbose_no_eol", &["-v", "-N"], plain()),
        case("topic_payload", &["-F", "%t %p"], plain()),
        case("format_wins_over_v", &["-v", "-F", "[%t]"], plain()),
        case("format_no_eol", &["-N", "-F", "%t:%p;"], plain()),
        case("hex", &["-F", "%x|%X"], plain()),
        case("numbers", &["-q", "2", "-F", "%l %m %q %r"], plain()),
        case(
            "widths",
            &[
                "-q",
                "1",
                "-F",
                "%-10t|%5l|%.3p|%08x|%-8X|%10p|%.2t|%-7.3t|%5%",
            ],
            plain(),
        ),
        case("escapes", &["-F", r"\a\e\r\v\0\\\n\t|%t"], plain()),
        case(
            "v5_props",
            &[
                "-V",
                "mqttv5",
                "-q",
                "1",
                "-F",
                "%P|%C|%D|%F|%R|%S|%A|%05F|%-5S|%12C|%.4C|%-6R|%l",
            ],
            v5_messages(),
        ),
        case(
            "v5_subscription_id",
            &[
                "-V",
                "5",
                "-D",
                "subscribe",
                "subscription-identifier",
                "42",
                "-F",
                "%S|%-4S|%04S|%p",
            ],
            v5_messages(),
        ),
        case("v5_verbose", &["-V", "mqttv5", "-v"], v5_messages()),
        case(
            "retain_as_published",
            &[
                "-V",
                "5",
                "-q",
                "1",
                "--retain-as-published",
                "-F",
                "%r %t %p",
            ],
            vec![
                msg("x", b"kept").retained(),
                msg("y", b"live retained").retain_live(),
            ],
        ),
        case("mqttv31", &["-V", "mqttv31", "-v", "-q", "2"], plain()),
        retained_only,
        filtered,
        no_stale,
    ];
    messages.extend(time);
    messages
}

// ---------------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------------

fn publish(
    which: Impl,
    broker: &Broker,
    topic: &str,
    m: &Msg,
    retain: bool,
    dir: &std::path::Path,
) {
    let file = dir.join("payload");
    std::fs::write(&file, &m.payload).expect("write payload");
    let mut args = broker.args();
    args.extend(strings(&["-t", topic, "-q", &m.qos.to_string(), "-f"]));
    args.push(file.display().to_string());
    if retain {
        args.push("-r".into());
    }
    args.extend(m.extra.iter().map(|s| (*s).to_owned()));
    let out = run_tool(which, "pub", &args, None);
    assert!(
        out.status.success(),
        "{} pub {args:?} failed: {}",
        which.name(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sub_qos(c: &Case) -> u8 {
    c.args
        .iter()
        .position(|a| *a == "-q")
        .map_or(0, |i| c.args[i + 1].parse().expect("qos"))
}

/// Runs one case on `broker`, publishing with `publisher`; compares the two subscribers.
fn run_case(broker: &Broker, publisher: Impl, c: &Case, n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("c{n}/{}/{}", c.name, publisher.name());
    for m in c.messages.iter().filter(|m| m.retained) {
        publish(
            publisher,
            broker,
            &format!("{prefix}/{}", m.topic),
            m,
            true,
            dir.path(),
        );
    }
    let subscriber = |which: Impl| {
        let mut args = broker.args();
        args.extend(strings(&["-d", "-W", "20", "-t", &format!("{prefix}/#")]));
        args.push("-i".into());
        args.push(format!(
            "{}-{}-{n}-{}",
            which.name(),
            std::process::id(),
            publisher.name()
        ));
        if let Some(count) = c.count {
            args.push("-C".into());
            args.push(count.to_string());
        }
        args.extend(c.args.iter().map(|s| s.replace("{p}", &prefix)));
        let mut cmd = which.command("sub");
        cmd.args(&args).env("TZ", "UTC");
        Capture::spawn(&mut cmd, &format!("{} sub {args:?}", which.name()))
    };
    let subs = [subscriber(Impl::Mosquitto), subscriber(Impl::Midge)];
    for s in &subs {
        s.wait_for("Subscribed (mid: ", 1);
    }
    let mut exactly_once = 0;
    for m in c.messages.iter().filter(|m| !m.retained) {
        publish(
            publisher,
            broker,
            &format!("{prefix}/{}", m.topic),
            m,
            m.retain_live,
            dir.path(),
        );
        if m.qos.min(sub_qos(c)) == 2 {
            exactly_once += 1;
            for s in &subs {
                s.wait_for("sending PUBCOMP", exactly_once);
            }
        }
    }
    let [mosquitto, midge] = subs;
    let (m_status, m_out, m_err) = mosquitto.finish(WAIT);
    let (g_status, g_out, g_err) = midge.finish(WAIT);
    let (mut m_out, mut g_out) = (strip_debug(&m_out), strip_debug(&g_out));
    if c.time {
        m_out = normalise_digits(&m_out);
        g_out = normalise_digits(&g_out);
    }
    let what = format!(
        "case {} on {}, published by {} pub",
        c.name,
        broker.name(),
        publisher.name()
    );
    assert_eq!(
        String::from_utf8_lossy(&g_out),
        String::from_utf8_lossy(&m_out),
        "{what}: stdout differs"
    );
    assert_eq!(g_out, m_out, "{what}: stdout bytes differ");
    assert_eq!(
        String::from_utf8_lossy(&g_err),
        String::from_utf8_lossy(&m_err),
        "{what}: stderr differs"
    );
    assert_eq!(
        g_status.code(),
        m_status.code(),
        "{what}: exit status differs"
    );
    assert!(
        !m_out.is_empty() || c.count == Some(0),
        "{what}: nothing printed"
    );
}

fn run_all(broker: &Broker) {
    for (n, c) in cases().iter().enumerate() {
        for publisher in [Impl::Mosquitto, Impl::Midge] {
            run_case(broker, publisher, c, n);
        }
    }
}

#[test]
fn sub_output_matches_mosquitto_sub_on_midge_serve() {
    run_all(&Broker::midge());
}

#[test]
fn sub_output_matches_mosquitto_sub_on_mosquitto() {
    run_all(&Broker::mosquitto());
}

// ---------------------------------------------------------------------------------------------
// Sessions, -E, -U and the -d lines
// ---------------------------------------------------------------------------------------------

/// `sub -c -i ID -E` creates a persistent session; messages published while it is away are
/// delivered to the next `sub -c -i ID`.
#[test]
fn persistent_session_with_c_and_e() {
    for broker in [Broker::midge(), Broker::mosquitto()] {
        for version in ["311", "5"] {
            let mut outputs = Vec::new();
            for which in [Impl::Mosquitto, Impl::Midge] {
                let id = format!("persist-{}-{version}-{}", which.name(), std::process::id());
                let topic = format!("persist/{}/{version}", which.name());
                let mut sub = broker.args();
                sub.extend(strings(&[
                    "-V", version, "-c", "-i", &id, "-q", "1", "-t", &topic,
                ]));
                let mut first = sub.clone();
                first.push("-E".into());
                let out = run_tool(which, "sub", &first, None);
                assert!(
                    out.status.success(),
                    "{}: {}",
                    which.name(),
                    String::from_utf8_lossy(&out.stderr)
                );
                let mut p = broker.args();
                p.extend(strings(&["-t", &topic, "-q", "1", "-m", "while away"]));
                assert!(run_tool(Impl::Mosquitto, "pub", &p, None).status.success());
                let mut second = sub.clone();
                second.extend(strings(&["-C", "1", "-W", "10", "-F", "%q %p"]));
                let out = run_tool(which, "sub", &second, None);
                assert!(
                    out.status.success(),
                    "{} {version} on {}",
                    which.name(),
                    broker.name()
                );
                outputs.push(out.stdout);
                // End the session.
                let mut end = broker.args();
                end.extend(strings(&["-V", version, "-i", &id, "-t", &topic, "-E"]));
                if version == "5" {
                    end.extend(strings(&["-x", "0"]));
                }
                assert!(run_tool(which, "sub", &end, None).status.success());
            }
            assert_eq!(outputs[0], b"1 while away\n");
            assert_eq!(outputs[1], outputs[0], "{} v{version}", broker.name());
        }
    }
}

/// The `-d` lines of `sub` and `pub` are libmosquitto's (MQTT 3.1.1, fixed client ids).
#[test]
fn debug_lines_match_mosquitto() {
    let broker = Broker::mosquitto();
    let mut subs = Vec::new();
    for which in [Impl::Mosquitto, Impl::Midge] {
        let mut args = broker.args();
        args.extend(strings(&[
            "-d",
            "-q",
            "2",
            "-C",
            "3",
            "-W",
            "20",
            "-i",
            "dbg-sub",
            "-t",
            &format!("dbg/{}/#", which.name()),
            "-t",
            "dbg/none",
            "-U",
            "dbg/u",
        ]));
        let mut cmd = which.command("sub");
        cmd.args(&args);
        let sub = Capture::spawn(&mut cmd, which.name());
        sub.wait_for("Subscribed (mid: ", 1);
        let mut pub_lines = Vec::new();
        for (qos, payload) in [("1", "one"), ("2", "two"), ("0", "zero")] {
            let mut p = broker.args();
            p.extend(strings(&[
                "-d",
                "-i",
                "dbg-pub",
                "-q",
                qos,
                "-t",
                &format!("dbg/{}/x", which.name()),
                "-m",
                payload,
            ]));
            let out = run_tool(which, "pub", &p, None);
            assert!(out.status.success());
            pub_lines.push(
                debug_lines(&out.stdout)
                    .into_iter()
                    .map(|l| l.replace(which.name(), "X"))
                    .collect::<Vec<_>>(),
            );
            if qos == "2" {
                sub.wait_for("sending PUBCOMP", 1);
            }
        }
        let (status, out, _) = sub.finish(WAIT);
        assert!(status.success());
        let lines: Vec<String> = debug_lines(&out)
            .into_iter()
            .filter(|l| !l.ends_with("received UNSUBACK"))
            .map(|l| l.replace(which.name(), "X"))
            .collect();
        subs.push((lines, pub_lines, strip_debug(&out)));
    }
    assert_eq!(subs[1].0, subs[0].0, "sub -d lines");
    assert_eq!(subs[1].1, subs[0].1, "pub -d lines");
    assert_eq!(subs[1].2, subs[0].2, "messages");
    assert_eq!(subs[0].2, b"one\ntwo\nzero\n");
}

// ---------------------------------------------------------------------------------------------
// Pipes
// ---------------------------------------------------------------------------------------------

/// `midge sub -t '#' | head -n 1` ends with status 0 once head has gone (Mosquitto's dies of
/// SIGPIPE instead).
#[test]
fn sub_into_head_exits_zero() {
    for broker in [Broker::midge(), Broker::mosquitto()] {
        let script = format!(
            "{MIDGE} sub -p {} -t 'head/#' -v | head -n 1; echo \"status ${{PIPESTATUS[0]}} ${{PIPESTATUS[1]}}\"",
            broker.port()
        );
        let mut cmd = std::process::Command::new("bash");
        cmd.arg("-c").arg(&script);
        let shell = Capture::spawn(&mut cmd, "bash pipeline");
        // Keep publishing until the pipeline is done: the first message makes head exit, a
        // later one makes `midge sub` notice.
        let deadline = std::time::Instant::now() + WAIT;
        while count_of(&shell.stdout(), b"status ") == 0 {
            assert!(std::time::Instant::now() < deadline, "pipeline did not end");
            let mut p = broker.args();
            p.extend(strings(&["-t", "head/x", "-m", "line"]));
            let _ = run_tool(Impl::Mosquitto, "pub", &p, None);
            std::thread::sleep(Duration::from_millis(50));
        }
        let (_, out, err) = shell.finish(WAIT);
        let out = String::from_utf8_lossy(&out).into_owned();
        assert_eq!(
            out,
            "head/x line\nstatus 0 0\n",
            "{}: {}",
            broker.name(),
            String::from_utf8_lossy(&err)
        );
    }
}

/// The options file: `-o FILE` and `$XDG_CONFIG_HOME/midge_pub` give defaults, one option per
/// line, as Mosquitto's `~/.config/mosquitto_pub`.
#[test]
fn options_file_gives_defaults() {
    let broker = Broker::midge();
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("midge_pub");
    let mut f = std::fs::File::create(&conf).expect("create");
    writeln!(f, "# defaults\n-p {}\n-h 127.0.0.1\n-q 1", broker.port()).expect("write");
    drop(f);
    let mut sub = broker.args();
    sub.extend(strings(&[
        "-d", "-t", "opt/#", "-C", "2", "-W", "10", "-F", "%t %q %p",
    ]));
    let mut cmd = Impl::Midge.command("sub");
    cmd.args(&sub);
    let capture = Capture::spawn(&mut cmd, "midge sub");
    capture.wait_for("Subscribed (mid: ", 1);
    let ok = std::process::Command::new(MIDGE)
        .args(["pub", "-t", "opt/xdg", "-m", "from xdg"])
        .env("XDG_CONFIG_HOME", dir.path())
        .status()
        .expect("run");
    assert!(ok.success());
    let other = dir.path().join("other");
    std::fs::write(&other, format!("-p {}\n-q 0\n", broker.port())).expect("write");
    let ok = std::process::Command::new(MIDGE)
        .args([
            "pub",
            "-o",
            &other.display().to_string(),
            "-t",
            "opt/o",
            "-m",
            "from -o",
        ])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .status()
        .expect("run");
    assert!(ok.success());
    let (status, out, _) = capture.finish(WAIT);
    assert!(status.success());
    assert_eq!(
        String::from_utf8_lossy(&strip_debug(&out)),
        "opt/xdg 0 from xdg\nopt/o 0 from -o\n"
    );
}

/// `--random-filter PERCENT` prints about that share of the messages (Mosquitto 2.0.11 prints
/// a tenth of it); `-C` counts the messages received, printed or not, as Mosquitto's.
#[test]
fn random_filter_prints_a_share() {
    let broker = Broker::midge();
    for (percent, low, high) in [("100", 200, 200), ("50", 60, 140), ("0.1", 0, 10)] {
        let mut args = broker.args();
        args.extend(strings(&[
            "-d",
            "-t",
            "rf/#",
            "-C",
            "200",
            "-W",
            "20",
            "--random-filter",
            percent,
        ]));
        let mut cmd = Impl::Midge.command("sub");
        cmd.args(&args);
        let sub = Capture::spawn(&mut cmd, "midge sub --random-filter");
        sub.wait_for("Subscribed (mid: ", 1);
        let lines: String = (0..200).map(|i| format!("m{i}\n")).collect();
        let mut p = broker.args();
        p.extend(strings(&["-t", "rf/x", "-l", "-q", "1"]));
        assert!(
            run_tool(Impl::Midge, "pub", &p, Some(lines.as_bytes()))
                .status
                .success()
        );
        let (status, out, _) = sub.finish(WAIT);
        assert!(status.success());
        let printed = count_of(&strip_debug(&out), b"\n");
        assert!(
            (low..=high).contains(&printed),
            "{percent}%: {printed} of 200"
        );
    }
}

/// `--remove-retained --retained-only`: print the retained messages, clear each (an empty
/// retained message), and exit at the first live message. Later subscribers get nothing.
/// `mosquitto_sub` 2.0.11 clears them too but never exits (it waits for acknowledgements it
/// no longer listens to), so it ends with `-W` (27); `midge sub` exits 0 once they are cleared.
#[test]
fn remove_retained_wipes_them() {
    for broker in [Broker::midge(), Broker::mosquitto()] {
        let mut outputs = Vec::new();
        for which in [Impl::Mosquitto, Impl::Midge] {
            let prefix = format!("wipe/{}", which.name());
            for t in ["a", "b/c"] {
                let mut p = broker.args();
                p.extend(strings(&["-t", &format!("{prefix}/{t}"), "-r", "-m", t]));
                assert!(run_tool(Impl::Mosquitto, "pub", &p, None).status.success());
            }
            let mut args = broker.args();
            args.extend(strings(&[
                "-d",
                "-t",
                &format!("{prefix}/#"),
                "--remove-retained",
                "--retained-only",
                "-W",
                "3",
                "-F",
                "%r %p",
            ]));
            let mut cmd = which.command("sub");
            cmd.args(&args);
            let sub = Capture::spawn(&mut cmd, "sub --remove-retained");
            sub.wait_for("Subscribed (mid: ", 1);
            sub.wait_for("\n1 ", 2);
            let mut live = broker.args();
            live.extend(strings(&["-t", &format!("{prefix}/live"), "-m", "live"]));
            assert!(
                run_tool(Impl::Mosquitto, "pub", &live, None)
                    .status
                    .success()
            );
            let (status, out, _) = sub.finish(WAIT);
            let expected = if which == Impl::Midge { 0 } else { 27 };
            assert_eq!(
                status.code(),
                Some(expected),
                "{} on {}",
                which.name(),
                broker.name()
            );
            let mut lines: Vec<String> = String::from_utf8_lossy(&strip_debug(&out))
                .lines()
                .map(str::to_owned)
                .collect();
            lines.sort();
            outputs.push(lines);
            let mut check = broker.args();
            check.extend(strings(&["-t", &format!("{prefix}/#"), "-W", "1"]));
            let out = run_tool(Impl::Mosquitto, "sub", &check, None);
            assert_eq!(out.status.code(), Some(27), "retained messages left behind");
            assert!(out.stdout.is_empty());
        }
        assert_eq!(outputs[0], ["1 a", "1 b/c"]);
        assert_eq!(outputs[1], outputs[0], "{}", broker.name());
    }
}
