//! `midge pub/sub/rr` against `mosquitto_pub/sub/rr` 2.0.11 where scripts look: exit codes
//! and error messages for refused connections (closed port, CONNACK refusals from both
//! brokers), timeouts (`-W`: 27), argument errors and invalid topics; and `midge rr` beside
//! `mosquitto_rr` answering the same requests.
//!
//! Error messages are compared with the tool name swapped ("Use 'midge sub --help'" for
//! "Use 'mosquitto_sub --help'").

mod tools_common;

use std::time::Duration;

use midge_client::{Client, ConnectOptions, Event, Message, Property, QoS, TopicName};
use tools_common::{Broker, Impl, Midge, Mosquitto, run_tool, strings};

/// Runs `tool ARGS` with both implementations; returns (status, stdout, stderr) of each,
/// stderr with Midge's tool name replaced by Mosquitto's.
fn both(tool: &str, args: &[String]) -> [(Option<i32>, Vec<u8>, String); 2] {
    [Impl::Mosquitto, Impl::Midge].map(|which| {
        let out = run_tool(which, tool, args, Some(b""));
        let err = String::from_utf8_lossy(&out.stderr)
            .replace(&format!("midge {tool}"), &format!("mosquitto_{tool}"));
        (out.status.code(), out.stdout, err)
    })
}

/// Asserts both implementations end with the same status and stderr; returns the status.
fn same(tool: &str, args: &[String]) -> Option<i32> {
    let [m, g] = both(tool, args);
    assert_eq!(g.2, m.2, "{tool} {args:?}: stderr");
    assert_eq!(g.0, m.0, "{tool} {args:?}: exit status");
    m.0
}

/// Argument errors: the same message, the usage hint, status 1.
#[test]
fn argument_errors_match() {
    let bad: &[(&str, &[&str])] = &[
        ("sub", &[]),
        ("sub", &["-t"]),
        ("sub", &["-t", "a/#/b"]),
        ("sub", &["-t", "a+"]),
        ("sub", &["-t", "a", "-C", "0"]),
        ("sub", &["-t", "a", "-W", "0"]),
        ("sub", &["-t", "a", "-q", "3"]),
        ("sub", &["-t", "a", "-V", "4"]),
        ("sub", &["-t", "a", "-k", "2"]),
        ("sub", &["-t", "a", "--foo"]),
        ("sub", &["-t", "a", "-m", "x"]),
        ("sub", &["-t", "a", "-r"]),
        ("sub", &["-t", "a", "-p", "70000"]),
        ("sub", &["-t", "a", "-R", "--retained-only"]),
        ("sub", &["-t", "a", "-c"]),
        ("sub", &["-t", "a", "-c", "-V", "5"]),
        ("sub", &["-t", "a", "-x"]),
        ("sub", &["-t", "a", "-x", "1x", "-V", "5"]),
        ("sub", &["-t", "a", "-x", "-2"]),
        ("sub", &["-t", "a", "-x", "4294967296"]),
        ("sub", &["-t", "a", "-T", "a/#/"]),
        ("sub", &["-t", "a", "-U", "+x"]),
        ("sub", &["-t", "a", "--random-filter", "0"]),
        ("sub", &["-t", "a", "-F", "%z"]),
        ("sub", &["-t", "a", "-F", "%"]),
        ("sub", &["-t", "a", "-F", "\\q"]),
        ("sub", &["-t", "a", "-L", "http://x/y"]),
        ("sub", &["-L", "mqtt://host"]),
        ("sub", &["-t", "a", "--proxy", "http://x"]),
        ("sub", &["-t", "a", "--cert", "x"]),
        ("sub", &["-t", "a", "--psk", "00"]),
        ("sub", &["-t", "a", "-i", "x", "-I", "y"]),
        ("sub", &["-t", "a", "-D", "subscribe", "user-property", "k"]),
        (
            "sub",
            &["-t", "a", "-D", "connack", "session-expiry-interval", "5"],
        ),
        (
            "sub",
            &[
                "-t",
                "a",
                "-x",
                "60",
                "-D",
                "connect",
                "session-expiry-interval",
                "5",
            ],
        ),
        (
            "sub",
            &[
                "-t",
                "a",
                "-D",
                "will",
                "will-delay-interval",
                "5",
                "-D",
                "will",
                "will-delay-interval",
                "6",
            ],
        ),
        ("pub", &[]),
        ("pub", &["-t", "a"]),
        ("pub", &["-m", "x"]),
        ("pub", &["-t", "a/+", "-m", "x"]),
        ("pub", &["-t", "a", "-m", "x", "-l"]),
        ("pub", &["-t", "a", "-n", "-s"]),
        ("pub", &["-t", "a", "-f", "/nonexistent/file"]),
        ("pub", &["-t", "a", "-s"]),
        ("pub", &["-t", "a", "-m", "x", "-C", "1"]),
        ("pub", &["-t", "a", "-m", "x", "--will-payload", "p"]),
        ("pub", &["-t", "a", "-m", "x", "--will-retain"]),
        ("pub", &["-t", "a", "-m", "x", "--will-topic", "w/#"]),
        (
            "pub",
            &["-t", "a", "-m", "x", "--will-topic", "w", "--will-qos", "3"],
        ),
        ("pub", &["-t", "a", "-m", "x", "-M", "0"]),
        ("pub", &["-t", "a", "-m", "x", "--repeat", "0"]),
        ("pub", &["-t", "a", "-m", "x", "--repeat-delay", "-1"]),
        ("pub", &["-t", "a", "-m", "x", "-D", "publish"]),
        ("pub", &["-t", "a", "-m", "x", "-D", "foo", "bar", "1"]),
        ("pub", &["-t", "a", "-m", "x", "-D", "publish", "foo", "1"]),
        (
            "pub",
            &["-t", "a", "-m", "x", "-D", "connect", "topic-alias", "1"],
        ),
        (
            "pub",
            &[
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "publish",
                "subscription-identifier",
                "1",
            ],
        ),
        (
            "pub",
            &[
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "puback",
                "user-property",
                "a",
                "b",
            ],
        ),
        (
            "pub",
            &[
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "auth",
                "authentication-data",
                "a",
            ],
        ),
        (
            "pub",
            &[
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "publish",
                "payload-format-indicator",
                "300",
            ],
        ),
        (
            "pub",
            &[
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "publish",
                "message-expiry-interval",
                "-1",
            ],
        ),
        (
            "pub",
            &[
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "publish",
                "message-expiry-interval",
                "99999999999",
            ],
        ),
        (
            "pub",
            &[
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "connect",
                "receive-maximum",
                "0",
            ],
        ),
        (
            "pub",
            &["-t", "a", "-m", "x", "-D", "publish", "topic-alias", "0"],
        ),
        (
            "pub",
            &[
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "PUBLISH",
                "Content-Type",
                "x",
                "-D",
                "publish",
                "content-type",
                "y",
            ],
        ),
        ("rr", &["-t", "a", "-m", "x"]),
        ("rr", &["-e", "b", "-m", "x"]),
        ("rr", &["-t", "a", "-e", "b"]),
        ("rr", &["-t", "a", "-e", "b/#", "-m", "x"]),
        ("rr", &["-t", "a", "-e", "b", "-m", "x", "-C", "1"]),
        ("rr", &["-t", "a", "-e", "b", "-l"]),
    ];
    for (tool, args) in bad {
        let args = strings(args);
        let [m, g] = both(tool, &args);
        assert_eq!(g.2, m.2, "{tool} {args:?}: stderr");
        assert_eq!(g.0, m.0, "{tool} {args:?}: exit status");
        assert_eq!(m.0, Some(1), "{tool} {args:?}");
        // "Both topic and message" prints the usage on stdout: only its presence is compared.
        assert_eq!(g.1.is_empty(), m.1.is_empty(), "{tool} {args:?}: stdout");
    }
}

/// A closed port, an unknown host, a missing unix socket: the errno text, status 1.
#[test]
fn connection_failures_match() {
    let port = tools_common::free_port().to_string();
    for tool in ["sub", "pub", "rr"] {
        let mut args = strings(&["-h", "127.0.0.1", "-p", &port, "-t", "a"]);
        if tool != "sub" {
            args.extend(strings(&["-m", "x"]));
        }
        if tool == "rr" {
            args.extend(strings(&["-e", "b"]));
        }
        assert_eq!(same(tool, &args), Some(1), "{tool}");
        let mut unknown = args.clone();
        unknown[1] = "nonexistent.invalid".into();
        assert_eq!(same(tool, &unknown), Some(1), "{tool}");
        let mut unix = args[4..].to_vec();
        unix.extend(strings(&["--unix", "/nonexistent/mosquitto.sock"]));
        assert_eq!(same(tool, &unix), Some(1), "{tool}");
    }
}

/// CONNACK refusals: "Connection error: …" and the return code (MQTT 3) or reason code
/// (MQTT 5) as the exit status. Mosquitto with a password file refuses anonymous clients
/// (not authorised: 5 / 135); both brokers refuse an empty client id when told to
/// (identifier rejected: 2; MQTT 5: Midge 0x85 = 133, Mosquitto 0x80 = 128).
#[test]
fn connack_refusals_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let passwords = dir.path().join("passwd");
    std::fs::write(&passwords, "").expect("write");
    let auth = Mosquitto::start(&format!(
        "allow_anonymous false\npassword_file {}\n",
        passwords.display()
    ));
    let no_empty_id = Mosquitto::start("allow_zero_length_clientid false\n");
    let conf = dir.path().join("midge.toml");
    std::fs::write(&conf, "[session]\nallow_zero_length_clientid = false\n").expect("write");
    let midge = Midge::start_with(&["-c", &conf.display().to_string()]);
    let cases: [(u16, &[&str], &[i32]); 3] = [
        (auth.port, &["-u", "nobody", "-P", "wrong"], &[5, 135]),
        // Mosquitto's broker answers MQTT 5 with 0x80 Unspecified error here.
        (no_empty_id.port, &[], &[2, 128]),
        (midge.port, &[], &[2, 133]),
    ];
    for (port, extra, codes) in cases {
        for (version, code) in ["311", "5"].iter().zip(codes) {
            for tool in ["sub", "pub", "rr"] {
                let mut args = strings(&[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-t",
                    "a",
                    "-V",
                    version,
                ]);
                args.extend(strings(extra));
                if tool != "sub" {
                    args.extend(strings(&["-m", "x"]));
                }
                if tool == "rr" {
                    args.extend(strings(&["-e", "b"]));
                }
                assert_eq!(
                    same(tool, &args),
                    Some(*code),
                    "{tool} v{version} on port {port}"
                );
                let mut quiet = args.clone();
                quiet.push("--quiet".into());
                assert_eq!(same(tool, &quiet), Some(*code), "{tool} --quiet");
            }
        }
    }
}

/// `-W`: "Timed out" and status 27, for `sub` (nothing arrives) and `rr` (no responder).
#[test]
fn timeouts_exit_27() {
    for broker in [Broker::midge(), Broker::mosquitto()] {
        for version in ["311", "5"] {
            let mut sub = broker.args();
            sub.extend(strings(&["-t", "silence", "-W", "1", "-V", version]));
            assert_eq!(same("sub", &sub), Some(27), "sub on {}", broker.name());
            let mut rr = broker.args();
            rr.extend(strings(&[
                "-t",
                "nobody",
                "-e",
                "nobody/answer",
                "-m",
                "x",
                "-W",
                "1",
                "-V",
                version,
            ]));
            assert_eq!(same("rr", &rr), Some(27), "rr on {}", broker.name());
        }
        // -C reached, -E: 0.
        let mut e = broker.args();
        e.extend(strings(&["-t", "x", "-E"]));
        assert_eq!(same("sub", &e), Some(0));
    }
}

/// An empty topic is accepted by the argument checks and refused by the client library:
/// mosquitto_pub prints "Invalid input" and ends with 0.
#[test]
fn empty_publish_topic() {
    let broker = Broker::mosquitto();
    let mut args = broker.args();
    args.extend(strings(&["-t", "", "-m", "x"]));
    assert_eq!(same("pub", &args), Some(0));
}

// ---------------------------------------------------------------------------------------------
// rr
// ---------------------------------------------------------------------------------------------

/// Answers every request on `rq/#`: to its Response Topic (MQTT 5) or to `rs/v3` (MQTT 3),
/// with "re:" and the request's payload, its Correlation Data, a Content Type and a User
/// Property.
fn responder(port: u16) -> std::thread::JoinHandle<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let options = ConnectOptions::tcp("127.0.0.1", port).client_id("responder");
            let (client, mut events) = Client::connect(options).await.expect("connect");
            client
                .subscribe("rq/#", QoS::ExactlyOnce)
                .await
                .expect("subscribe");
            ready_tx.send(()).expect("ready");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let event = tokio::time::timeout_at(deadline, events.recv()).await;
                let Ok(Some(event)) = event else { break };
                let Event::Message(m) = event else { continue };
                if m.payload.as_ref() == b"stop" {
                    break;
                }
                let to = m
                    .response_topic()
                    .cloned()
                    .unwrap_or_else(|| TopicName::new("rs/v3").expect("topic"));
                let mut payload = b"re:".to_vec();
                payload.extend_from_slice(&m.payload);
                let mut answer = Message::new(to, payload)
                    .with_qos(m.qos)
                    .with_property(Property::ContentType("text/answer".into()))
                    .with_user_property("answered", "yes");
                if let Some(cd) = m.correlation_data() {
                    answer = answer.with_property(Property::CorrelationData(cd.clone()));
                }
                let _ = client.publish_message(answer).await;
            }
            let _ = client.disconnect().await;
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("responder ready");
    handle
}

fn rr_on(broker: &Broker) {
    let responder = responder(broker.port());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("request");
    std::fs::write(&file, "from a file").expect("write");
    let file = file.display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["-m", "ping"],
        vec!["-m", "ping", "-v"],
        vec!["-m", "ping", "-N"],
        vec!["-m", "ping", "-q", "1", "-F", "%t|%q|%p|%C|%P|%R"],
        vec!["-m", "ping", "-q", "2", "-F", "%t|%q|%p"],
        vec!["-n", "-F", "%t|%l|%p"],
        vec![
            "-m",
            "cd",
            "-D",
            "publish",
            "correlation-data",
            "abc",
            "-F",
            "%D|%p",
        ],
        vec!["-m", "json", "-F", "%j"],
        vec![
            "-m",
            "x",
            "-D",
            "publish",
            "user-property",
            "a",
            "b",
            "-F",
            "%p %P",
        ],
        vec!["-V", "311", "-m", "three", "-v"],
    ];
    for (n, extra) in cases.iter().enumerate() {
        let mut outputs = Vec::new();
        for which in [Impl::Mosquitto, Impl::Midge] {
            let v3 = extra.contains(&"311");
            let (t, e) = if v3 {
                ("rq/v3".to_owned(), "rs/v3".to_owned())
            } else {
                (format!("rq/{n}"), format!("rs/{n}/{}", which.name()))
            };
            let mut args = broker.args();
            args.extend(strings(&["-t", &t, "-e", &e, "-W", "10"]));
            args.extend(strings(extra));
            let out = run_tool(which, "rr", &args, None);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{} rr {args:?}: {}",
                which.name(),
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout).replace(which.name(), "X");
            outputs.push((text, out.stderr));
        }
        let text = outputs[0].0.as_str();
        let text = if text.contains("\"tst\"") {
            String::from_utf8_lossy(&tools_common::normalise_digits(text.as_bytes())).into_owned()
        } else {
            text.to_owned()
        };
        let ours = if outputs[1].0.contains("\"tst\"") {
            String::from_utf8_lossy(&tools_common::normalise_digits(outputs[1].0.as_bytes()))
                .into_owned()
        } else {
            outputs[1].0.clone()
        };
        assert_eq!(ours, text, "rr {extra:?} on {}", broker.name());
        assert_eq!(outputs[1].1, outputs[0].1, "rr {extra:?}: stderr");
        assert!(!text.is_empty() || extra.contains(&"-n"));
    }
    // -f: Mosquitto 2.0.11 sends an empty request (a bug fixed in 2.1); Midge sends the file.
    let mut args = broker.args();
    args.extend(strings(&[
        "-t", "rq/file", "-e", "rs/file", "-W", "10", "-f", &file,
    ]));
    let out = run_tool(Impl::Midge, "rr", &args, None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "re:from a file\n");
    // --latency prints one more line.
    let mut args = broker.args();
    args.extend(strings(&[
        "-t",
        "rq/lat",
        "-e",
        "rs/lat",
        "-W",
        "10",
        "-m",
        "x",
        "--latency",
    ]));
    let out = run_tool(Impl::Midge, "rr", &args, None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("re:x\nLatency: "), "{text}");
    // Stop the responder.
    let mut stop = broker.args();
    stop.extend(strings(&["-t", "rq/stop", "-m", "stop"]));
    assert!(
        run_tool(Impl::Mosquitto, "pub", &stop, None)
            .status
            .success()
    );
    responder.join().expect("responder");
}

#[test]
fn rr_matches_mosquitto_rr_on_midge_serve() {
    rr_on(&Broker::midge());
}

#[test]
fn rr_matches_mosquitto_rr_on_mosquitto() {
    rr_on(&Broker::mosquitto());
}

/// `-R` in `rr`: a retained message on the response topic is not taken for the response
/// (Mosquitto 2.0.11 ignores `-R` here, fixed in 2.0.18).
#[test]
fn rr_no_retain_skips_retained_response() {
    let broker = Broker::midge();
    let mut keep = broker.args();
    keep.extend(strings(&["-t", "rs/stale", "-r", "-m", "stale"]));
    assert!(run_tool(Impl::Midge, "pub", &keep, None).status.success());
    let mut args = broker.args();
    args.extend(strings(&[
        "-t", "rq/none", "-e", "rs/stale", "-m", "x", "-W", "1", "-R",
    ]));
    let out = run_tool(Impl::Midge, "rr", &args, None);
    assert_eq!(out.status.code(), Some(27));
    assert!(out.stdout.is_empty());
    args.pop();
    let out = run_tool(Impl::Midge, "rr", &args, None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "stale\n");
}

/// Options Midge cannot honour yet are refused, never ignored.
#[test]
fn unsupported_options_are_refused() {
    let broker = Broker::midge();
    let refusals: &[&[&str]] = &[
        &["--cafile", "/etc/ssl/certs/ca-certificates.crt"],
        &["--tls-use-os-certs"],
        &["--insecure"],
        &["-p", "8883"],
        &["-L", "mqtts://127.0.0.1/a"],
        &["-L", "ws://127.0.0.1/a"],
        &["--ws"],
        &["--proxy", "socks5h://127.0.0.1:1080"],
        &["--psk", "00", "--psk-identity", "me"],
    ];
    for extra in refusals {
        let mut args = strings(&[
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port().to_string(),
            "-t",
            "a",
            "-m",
            "x",
        ]);
        args.extend(strings(extra));
        let out = run_tool(Impl::Midge, "pub", &args, None);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not available yet") || err.contains("not supported"),
            "{extra:?}: {err}"
        );
    }
    // --no-tls makes port 8883 plain again (Mosquitto 2.1): no refusal, a plain connection
    // attempt (nothing listens there).
    let args = strings(&[
        "-h",
        "127.0.0.1",
        "-p",
        "8883",
        "--no-tls",
        "-t",
        "a",
        "-m",
        "x",
    ]);
    let out = run_tool(Impl::Midge, "pub", &args, None);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: Connection refused\n"
    );
}

/// The connection options that work: credentials (`-u`/`-P`, and in a `-L` URL) against a
/// broker that requires them, `--unix`, `-A`, `--nodelay`, `-I`, `-k`, `-x`: each tool
/// connects and does its job, as Mosquitto's does with the same options.
#[test]
fn connection_options_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let passwords = dir.path().join("passwd");
    let made = std::process::Command::new(tools_common::mosquitto_tool("mosquitto_passwd"))
        .args(["-b", "-c"])
        .arg(&passwords)
        .args(["alice", "s3cret"])
        .status()
        .expect("mosquitto_passwd");
    assert!(made.success());
    let broker = Mosquitto::start(&format!(
        "allow_anonymous false\npassword_file {}\n",
        passwords.display()
    ));
    let port = broker.port.to_string();
    let socket = broker.socket.display().to_string();
    let variants: Vec<Vec<String>> = vec![
        strings(&[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-u",
            "alice",
            "-P",
            "s3cret",
        ]),
        strings(&[
            "-L",
            &format!("mqtt://alice:s3cret@127.0.0.1:{port}/opt/topic"),
        ]),
        strings(&["--unix", &socket, "-u", "alice", "-P", "s3cret"]),
        strings(&[
            "-p",
            &port,
            "-A",
            "127.0.0.1",
            "--nodelay",
            "-I",
            "pfx-",
            "-k",
            "10",
            "-u",
            "alice",
            "-P",
            "s3cret",
        ]),
        strings(&[
            "-p", &port, "-V", "5", "-x", "30", "-u", "alice", "-P", "s3cret",
        ]),
    ];
    for connection in variants {
        let has_topic = connection.iter().any(|a| a == "-L");
        let topic = if has_topic {
            vec![]
        } else {
            strings(&["-t", "opt/topic"])
        };
        for which in [Impl::Mosquitto, Impl::Midge] {
            let mut sub = connection.clone();
            sub.extend(topic.clone());
            sub.extend(strings(&["-C", "1", "-W", "10", "-v"]));
            let mut cmd = which.command("sub");
            cmd.args(&sub);
            let capture = tools_common::Capture::spawn(&mut cmd, "sub");
            // Publish until the subscriber has it (it may not be subscribed yet).
            let deadline = std::time::Instant::now() + tools_common::WAIT;
            let mut publish = connection.clone();
            publish.extend(topic.clone());
            publish.extend(strings(&["-m", "via options", "-d"]));
            let mut debug = Vec::new();
            while capture.stdout().is_empty() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{connection:?}: nothing received"
                );
                let out = run_tool(which, "pub", &publish, None);
                assert!(
                    out.status.success(),
                    "{} pub {publish:?}: {}",
                    which.name(),
                    String::from_utf8_lossy(&out.stderr)
                );
                debug = out.stdout;
                std::thread::sleep(Duration::from_millis(100));
            }
            let (status, out, _) = capture.finish(tools_common::WAIT);
            assert!(status.success(), "{} sub {sub:?}", which.name());
            assert_eq!(String::from_utf8_lossy(&out), "opt/topic via options\n");
            if connection.iter().any(|a| a == "-I") {
                let text = String::from_utf8_lossy(&debug);
                let id = "Client pfx-";
                assert!(text.starts_with(id), "{}: {text}", which.name());
            }
        }
    }
}

/// `--retain-handling` (Mosquitto 2.1; MQTT 5): `never` gets no retained message on
/// subscribing, `always` and `new` do (for a new subscription).
#[test]
fn retain_handling() {
    for broker in [Broker::midge(), Broker::mosquitto()] {
        let mut keep = broker.args();
        keep.extend(strings(&["-t", "rh/x", "-r", "-m", "kept"]));
        assert!(run_tool(Impl::Midge, "pub", &keep, None).status.success());
        for (mode, expected) in [("never", ""), ("always", "1 kept\n"), ("new", "1 kept\n")] {
            let mut args = broker.args();
            args.extend(strings(&[
                "-V",
                "5",
                "-t",
                "rh/#",
                "--retain-handling",
                mode,
                "-C",
                "1",
                "-W",
                "1",
                "-F",
                "%r %p",
            ]));
            let out = run_tool(Impl::Midge, "sub", &args, None);
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                expected,
                "{mode} on {}",
                broker.name()
            );
            let code = if expected.is_empty() { 27 } else { 0 };
            assert_eq!(out.status.code(), Some(code), "{mode}");
        }
    }
}

/// A broker that accepts, answers CONNACK, then closes the connection at the next packet:
/// `pub` and `rr` end with "Error: The connection was lost." and status 7.
#[test]
fn lost_connection_exits_7() {
    use std::io::{Read, Write};
    for (tool, v5) in [("pub", false), ("rr", true)] {
        for which in [Impl::Mosquitto, Impl::Midge] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = listener.local_addr().expect("addr").port().to_string();
            let server = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().expect("accept");
                s.set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let connack: &[u8] = if v5 {
                    &[0x20, 3, 0, 0, 0]
                } else {
                    &[0x20, 2, 0, 0]
                };
                s.write_all(connack).expect("CONNACK");
                let _ = s.read(&mut buf);
            });
            let mut args = strings(&[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "a",
                "-m",
                "x",
                "-q",
                "1",
            ]);
            if tool == "rr" {
                args.extend(strings(&["-e", "b"]));
            }
            let out = run_tool(which, tool, &args, None);
            server.join().expect("server");
            assert_eq!(out.status.code(), Some(7), "{} {tool}", which.name());
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                "Error: The connection was lost.\n",
                "{} {tool}",
                which.name()
            );
        }
    }
}
