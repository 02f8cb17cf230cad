//! The output formatter of `midge sub`/`midge rr` (`src/tools/format.rs`) against Debian's
//! `mosquitto_sub` 2.0.11: for each case of the table, mosquitto_sub receives real messages
//! from Debian's broker and our formatter gets the same messages; the bytes must be equal.
//!
//! Values that only the live run knows are read back from mosquitto_sub's output before
//! rendering: the time (from the `%U`/`@s.@N`, `%I` or JSON `tst` text of each message) and the
//! remaining message expiry (tried at the published value and a few seconds less). Packet
//! identifiers are predicted: the broker numbers QoS > 0 deliveries 1, 2, 3… per client.
//!
//! A second table drives mosquitto_sub from a scripted fake broker, to cover what Debian's
//! broker never sends (Topic Alias, several Subscription Identifiers, a retained live message,
//! property orders and values mosquitto_pub cannot produce).
//!
//! The case tables are data so that the `midge sub` process tests can reuse them.

#[path = "../src/tools/format.rs"]
mod format;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use format::{Format, Output, OutputMessage, TimeZone, write_message};
use midge_proto::{ByteString, Properties, Property, TopicName};

/// How long anything in a case may take.
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// The case table
// ---------------------------------------------------------------------------------------------

/// A v5 property as mosquitto_pub's `-D publish ...` sets it.
#[derive(Debug, Clone)]
enum PubProp {
    User(&'static str, &'static str),
    ContentType(&'static str),
    CorrelationData(&'static str),
    ResponseTopic(&'static str),
    MessageExpiry(u32),
    PayloadFormat(u8),
}

/// One message published with mosquitto_pub.
#[derive(Debug, Clone)]
struct Msg {
    /// Appended to the case's topic prefix.
    topic: &'static str,
    payload: Vec<u8>,
    qos: u8,
    /// Published with `-r` before the subscriber starts, so it arrives with RETAIN set.
    retained: bool,
    /// Publish properties (sent with `-V mqttv5`).
    props: Vec<PubProp>,
}

fn msg(topic: &'static str, payload: &[u8]) -> Msg {
    Msg {
        topic,
        payload: payload.to_vec(),
        qos: 0,
        retained: false,
        props: Vec::new(),
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

    fn prop(mut self, p: PubProp) -> Msg {
        self.props.push(p);
        self
    }
}

/// Where the time of each message can be read back from mosquitto_sub's output.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Probe {
    /// The format prints no time.
    None,
    /// `%U` or `@s.@N`: `SSSSSSSSSS.NNNNNNNNN`.
    Unix,
    /// `%I`: `YYYY-MM-DDTHH:MM:SS+hhmm` (whole seconds).
    Iso,
    /// `%j`/`%J`: the `tst` member, `YYYY-MM-DDTHH:MM:SS.uuuuuuZ+hhmm`.
    Tst,
}

/// One mosquitto_sub invocation and the messages it receives.
#[derive(Debug, Clone)]
struct Case {
    name: &'static str,
    /// mosquitto_sub's output flags (and `-q`, `-V`, `-D subscribe ...`).
    args: Vec<&'static str>,
    /// `TZ` for both formatters.
    tz: &'static str,
    probe: Probe,
    messages: Vec<Msg>,
}

fn case(name: &'static str, args: &[&'static str], probe: Probe, messages: Vec<Msg>) -> Case {
    Case {
        name,
        args: args.to_vec(),
        tz: "UTC",
        probe,
        messages,
    }
}

const BINARY: &[u8] = b"a\x00b\xff\xfe\"\\\x01\x1f\x7f\n\t\x08\x0c\rz";

/// Plain payloads: text, binary (NUL, invalid UTF-8, control bytes), empty, multi-line,
/// a topic that needs JSON escaping, a retained message.
fn plain() -> Vec<Msg> {
    vec![
        msg("r", b"retained one").qos(1).retained(),
        msg("a", b"hello"),
        msg("b/c", BINARY).qos(1),
        msg("a", b"").qos(2),
        msg("d", b"line1\nline2"),
        msg("sp ace/\"q\"\\/\u{e9}", b"caf\xc3\xa9"),
        msg("long", &[b'x'; 300]).qos(1),
    ]
}

/// Payloads for `%J`: valid JSON (with cJSON's reformatting), invalid JSON, empty.
fn json_payloads() -> Vec<Msg> {
    vec![
        msg(
            "v",
            br#"{"a": [1, 2.50, {"b":null}], "c":"\u00e9", "e":{}, "f":[], "g":true}"#,
        ),
        msg(
            "n",
            b"[1000000000000000,123456789012345678,-0.0,1e400,0.1,-.5,01,1.e3,1e-7]",
        ),
        msg("s", br#" "\u0000x\t\"\\\/" "#),
        msg("bad", b"notjson").qos(1),
        msg("e", b""),
        msg("w", b"\x01[true,false,null]\x1f"),
    ]
}

/// Every property mosquitto_pub can set on PUBLISH, twice a User Property.
fn v5_messages() -> Vec<Msg> {
    let full = |m: Msg| {
        m.prop(PubProp::User("k", "v"))
            .prop(PubProp::ContentType("text/plain"))
            .prop(PubProp::CorrelationData("1234"))
            .prop(PubProp::ResponseTopic("r/t"))
            .prop(PubProp::MessageExpiry(60))
            .prop(PubProp::PayloadFormat(1))
            .prop(PubProp::User("k2", "v 2"))
    };
    vec![
        full(msg("ret", b"kept").qos(1).retained()),
        full(msg("p", b"hi").qos(1)),
        msg("none", b"no properties"),
        msg("some", b"")
            .prop(PubProp::PayloadFormat(0))
            .prop(PubProp::CorrelationData(""))
            .prop(PubProp::ContentType("")),
    ]
}

fn cases() -> Vec<Case> {
    use Probe::{Iso, None, Tst, Unix};
    let mut berlin = case("berlin", &["-F", "@c @z @Z|@s.@N"], Unix, plain());
    berlin.tz = "Europe/Berlin";
    let mut berlin_iso = case("berlin_iso", &["-F", "%I|%t"], Iso, plain());
    berlin_iso.tz = "Europe/Berlin";
    let mut johns = case("st_johns", &["-F", "%j"], Tst, plain());
    johns.tz = "America/St_Johns";
    let mut rule = case("posix_rule", &["-F", "@T @Z @z|%U"], Unix, plain());
    rule.tz = "CET-1CEST,M3.5.0,M10.5.0/3";
    vec![
        case("default", &[], None, plain()),
        case("verbose", &["-v"], None, plain()),
        case("no_eol", &["-N"], None, plain()),
        case("verbose_no_eol", &["-v", "-N"], None, plain()),
        case("topic_payload", &["-F", "%t %p"], None, plain()),
        case("format_wins_over_v", &["-v", "-F", "[%t]"], None, plain()),
        case("format_no_eol", &["-N", "-F", "%t:%p;"], None, plain()),
        case("empty_format", &["-F", ""], None, plain()),
        case("json", &["-q", "2", "-F", "%j"], Tst, plain()),
        case(
            "json_pretty",
            &["-q", "1", "--pretty", "-F", "%j"],
            Tst,
            plain(),
        ),
        case("json_raw", &["-q", "1", "-F", "%J"], Tst, json_payloads()),
        case(
            "json_raw_pretty",
            &["--pretty", "-F", "%J|"],
            Tst,
            json_payloads(),
        ),
        case("hex", &["-F", "%x"], None, plain()),
        case("hex_upper", &["-F", "%X"], None, plain()),
        case("numbers", &["-q", "2", "-F", "%l %m %q %r"], None, plain()),
        case("iso", &["-F", "%I"], Iso, plain()),
        case("unix", &["-F", "%U"], Unix, plain()),
        case(
            "widths",
            &[
                "-q",
                "1",
                "-F",
                "%-10t|%5l|%.3p|%08x|%-8X|%10p|%3p|%.2t|%-7.3t|%5%",
            ],
            None,
            plain(),
        ),
        case(
            "odd_widths",
            &[
                "-q",
                "1",
                "-F",
                "[%-p][%-x][%20x][%-20X][%-05l][%5m][%05m][%-0p][%00p][%05t]",
            ],
            None,
            plain(),
        ),
        case(
            "width_on_time",
            &["-F", "%30I|%-30I|%.10I|%U"],
            Unix,
            vec![msg("t", b"x")],
        ),
        case("escapes", &["-F", r"\a\e\r\v\0\\\n\t|%t"], None, plain()),
        case("date", &["-F", "@Y-@m-@d @H:@M:@S @s.@N"], Unix, plain()),
        case(
            "strftime_all",
            &[
                "-F",
                "@a @A @b @B @c @C @d @D @e @F @g @G @h @H @I @j @k @l @m @M @n @p @P @r @R \
                 @S @t @T @u @U @V @w @W @x @X @y @Y @z @Z @% @E @O @+ @1 @@|@s.@N",
            ],
            Unix,
            vec![msg("t", b"x")],
        ),
        berlin,
        berlin_iso,
        johns,
        rule,
        case(
            "v3_props",
            &["-F", "%P|%C|%D|%E|%F|%R|%S|%A|%5E|%05F|%-5S|%3A|%8C|%-05E|"],
            None,
            v5_messages(),
        ),
        case(
            "v5_props",
            &[
                "-V",
                "mqttv5",
                "-q",
                "1",
                "-F",
                "%P|%C|%D|%E|%F|%R|%S|%A|%5E|%05F|%-5S|%3A|%12C|%.4C|%-6R|",
            ],
            None,
            v5_messages(),
        ),
        case(
            "v5_subscription_id",
            &[
                "-V",
                "mqttv5",
                "-D",
                "subscribe",
                "subscription-identifier",
                "42",
                "-F",
                "%S|%-4S|%04S|%j",
            ],
            Tst,
            v5_messages(),
        ),
        case(
            "v5_json",
            &["-V", "mqttv5", "-q", "2", "-F", "%j"],
            Tst,
            v5_messages(),
        ),
        case(
            "v5_json_pretty",
            &["-V", "mqttv5", "--pretty", "-F", "%J"],
            Tst,
            vec![
                msg("j", br#"{"x":[1,"two",{"three":3}]}"#)
                    .prop(PubProp::User("a", "b"))
                    .prop(PubProp::MessageExpiry(100)),
                msg("k", b"[]"),
            ],
        ),
        case("v5_verbose", &["-V", "mqttv5", "-v"], None, v5_messages()),
    ]
}

// ---------------------------------------------------------------------------------------------
// Running mosquitto
// ---------------------------------------------------------------------------------------------

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: install Debian's mosquitto and mosquitto-clients");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Debian's broker on a loopback port, logging to a file; killed (by its PID) when dropped.
struct Broker {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = dir.path().join("broker.log");
        let conf = dir.path().join("mosquitto.conf");
        let mut text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest file {}\nlog_type all\n",
            log.display()
        );
        if is_root() {
            // Otherwise mosquitto drops to the `mosquitto` user, who cannot write the log.
            text.push_str("user root\n");
        }
        std::fs::write(&conf, text).expect("write config");
        let child = Command::new(tool("mosquitto"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let broker = Broker {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    /// Waits until the broker has acknowledged `client`'s subscription.
    fn wait_subscribed(&self, client: &str) {
        self.wait_log(&format!("Sending SUBACK to {client}\n"), 1);
    }

    /// Waits until the broker log holds `line` at least `count` times.
    fn wait_log(&self, line: &str, count: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.matches(line).count() >= count {
                return;
            }
            assert!(Instant::now() < deadline, "broker never logged {line:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn publish(port: u16, topic: &str, m: &Msg, dir: &Path) {
    let file = dir.join("payload");
    std::fs::write(&file, &m.payload).expect("write payload");
    let mut cmd = Command::new(tool("mosquitto_pub"));
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic])
        .args(["-q", &m.qos.to_string()])
        .arg("-f")
        .arg(&file);
    if m.retained {
        cmd.arg("-r");
    }
    if !m.props.is_empty() {
        cmd.args(["-V", "mqttv5"]);
    }
    for p in &m.props {
        let (name, value): (&str, String) = match p {
            PubProp::User(k, v) => {
                cmd.args(["-D", "publish", "user-property", k, v]);
                continue;
            }
            PubProp::ContentType(v) => ("content-type", (*v).to_owned()),
            PubProp::CorrelationData(v) => ("correlation-data", (*v).to_owned()),
            PubProp::ResponseTopic(v) => ("response-topic", (*v).to_owned()),
            PubProp::MessageExpiry(v) => ("message-expiry-interval", v.to_string()),
            PubProp::PayloadFormat(v) => ("payload-format-indicator", v.to_string()),
        };
        cmd.args(["-D", "publish", name, &value]);
    }
    let status = cmd
        .stderr(Stdio::inherit())
        .status()
        .expect("run mosquitto_pub");
    assert!(status.success(), "mosquitto_pub failed for {topic}");
}

/// Waits for a child and returns (stdout, stderr); kills it after [`WAIT`].
fn collect(mut child: Child) -> (Vec<u8>, Vec<u8>) {
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mosquitto_sub did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (out.join().expect("stdout"), err.join().expect("stderr"))
}

fn mosquitto_sub(port: u16, client: &str, filter: &str, count: usize, c: &Case) -> Child {
    Command::new(tool("mosquitto_sub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-i",
            client,
            "-t",
            filter,
        ])
        .args(["-C", &count.to_string(), "-W", "15"])
        .args(&c.args)
        .env("TZ", c.tz)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mosquitto_sub")
}

// ---------------------------------------------------------------------------------------------
// What our formatter makes of the same messages
// ---------------------------------------------------------------------------------------------

/// The output selected by mosquitto_sub flags, as `midge sub` will build it.
fn output_for(args: &[&str], tz: &str) -> Output {
    let mut format = None;
    let (mut verbose, mut eol, mut pretty) = (false, true, false);
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "-F" => {
                i += 1;
                format = Some(Format::parse(args[i]).expect("format accepted by mosquitto"));
            }
            "-v" => verbose = true,
            "-N" => eol = false,
            "--pretty" => pretty = true,
            _ => {}
        }
        i += 1;
    }
    let format = format.map(|f| f.with_time_zone(TimeZone::from_tz_value(Some(tz))));
    Output::from_flags(format, verbose, eol, pretty)
}

fn flag_value<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1).copied())
}

/// A message as the subscriber receives it.
struct Received {
    topic: String,
    payload: Vec<u8>,
    qos: u8,
    retain: bool,
    mid: u16,
    properties: Properties,
}

/// The deliveries a case expects, in order: retained messages at subscription time, then the
/// live ones. For v5, the broker sends the Subscription Identifier first, then the publisher's
/// properties in their order, then the (remaining) Message Expiry Interval.
fn expected_deliveries(c: &Case, prefix: &str) -> Vec<Received> {
    let sub_qos: u8 = flag_value(&c.args, "-q").map_or(0, |q| q.parse().expect("qos"));
    let v5 = matches!(flag_value(&c.args, "-V"), Some("mqttv5" | "5"));
    let sub_id = c
        .args
        .windows(3)
        .find(|w| w[0] == "subscribe" && w[1] == "subscription-identifier")
        .map(|w| w[2].parse::<u32>().expect("id"));
    let mut next_mid = 0u16;
    let ordered = c
        .messages
        .iter()
        .filter(|m| m.retained)
        .chain(c.messages.iter().filter(|m| !m.retained));
    ordered
        .map(|m| {
            let qos = m.qos.min(sub_qos);
            let mid = if qos > 0 {
                next_mid += 1;
                next_mid
            } else {
                0
            };
            let mut properties = Properties::new();
            if v5 {
                if let Some(id) = sub_id {
                    properties.push(Property::SubscriptionIdentifier(id));
                }
                let mut expiry = None;
                for p in &m.props {
                    properties.push(match p {
                        PubProp::User(k, v) => {
                            Property::UserProperty(ByteString::from(*k), ByteString::from(*v))
                        }
                        PubProp::ContentType(v) => Property::ContentType(ByteString::from(*v)),
                        PubProp::CorrelationData(v) => {
                            Property::CorrelationData(Bytes::from(v.as_bytes().to_vec()))
                        }
                        PubProp::ResponseTopic(v) => {
                            Property::ResponseTopic(TopicName::new(*v).expect("topic"))
                        }
                        PubProp::PayloadFormat(v) => Property::PayloadFormatIndicator(*v != 0),
                        PubProp::MessageExpiry(v) => {
                            expiry = Some(*v);
                            continue;
                        }
                    });
                }
                if let Some(v) = expiry {
                    properties.push(Property::MessageExpiryInterval(v));
                }
            }
            Received {
                topic: format!("{prefix}/{}", m.topic),
                payload: m.payload.clone(),
                qos,
                retain: m.retained,
                mid,
                properties,
            }
        })
        .collect()
}

/// Days since 1970-01-01 (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// `YYYY-MM-DDTHH:MM:SS` at the start of `s`, as local seconds since the epoch.
fn local_seconds(s: &[u8]) -> Option<i64> {
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || s[10] != b'T' || s[13] != b':' {
        return None;
    }
    let days = days_from_civil(digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    Some(
        days * 86_400 + digits(&s[11..13])? * 3600 + digits(&s[14..16])? * 60 + digits(&s[17..19])?,
    )
}

/// `+hhmm`/`-hhmm` as seconds east of UTC.
fn offset(s: &[u8]) -> Option<i64> {
    let sign = match s.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hhmm = digits(s.get(1..5)?)?;
    Some(sign * (hhmm / 100 * 3600 + hhmm % 100 * 60))
}

/// The first time printed in `s` (where the next message's output starts).
fn probe_time(probe: Probe, s: &[u8]) -> Option<SystemTime> {
    let at = |secs: i64, nanos: i64| {
        Some(UNIX_EPOCH + Duration::new(secs.try_into().ok()?, nanos.try_into().ok()?))
    };
    match probe {
        Probe::None => None,
        Probe::Unix => (0..s.len().saturating_sub(19)).find_map(|i| {
            let w = &s[i..i + 20];
            (w[10] == b'.').then_some(())?;
            at(digits(&w[..10])?, digits(&w[11..20])?)
        }),
        Probe::Iso => (0..s.len().saturating_sub(23)).find_map(|i| {
            let local = local_seconds(&s[i..])?;
            at(local - offset(&s[i + 19..])?, 0)
        }),
        Probe::Tst => {
            let i = s
                .windows(7)
                .position(|w| w == b"\"tst\":\"" || w == b"\"tst\":\t")?;
            let t = &s[i + 7 + usize::from(s[i + 6] == b'\t')..];
            let micros = digits(t.get(20..26)?)?;
            at(local_seconds(t)? - offset(t.get(27..)?)?, micros * 1000)
        }
    }
}

/// Checks mosquitto_sub's stdout against our rendering of `deliveries`, message by message.
/// Returns the error lines our formatter reported.
fn compare(c: &Case, actual: &[u8], deliveries: &[Received]) -> Vec<String> {
    let output = output_for(&c.args, c.tz);
    let mut errors = Vec::new();
    let mut pos = 0;
    for (n, d) in deliveries.iter().enumerate() {
        let rest = &actual[pos..];
        let received = probe_time(c.probe, rest).unwrap_or(UNIX_EPOCH);
        // The broker counts the expiry down in whole seconds: try the published value first.
        let expiry = d.properties.message_expiry_interval();
        let tries: Vec<Option<u32>> = match expiry {
            Some(v) => (0..4).map(|less| Some(v.saturating_sub(less))).collect(),
            None => vec![None],
        };
        let mut first_attempt = None;
        let mut matched = false;
        for e in tries {
            let mut properties = d.properties.clone();
            if let Some(e) = e {
                properties.set(Property::MessageExpiryInterval(e));
            }
            let m = OutputMessage {
                topic: &d.topic,
                payload: &d.payload,
                qos: d.qos,
                retain: d.retain,
                mid: d.mid,
                properties: &properties,
                received,
            };
            let mut ours = Vec::new();
            let errs = write_message(&mut ours, &output, &m);
            if rest.starts_with(&ours) {
                pos += ours.len();
                errors.extend(errs);
                matched = true;
                break;
            }
            first_attempt.get_or_insert(ours);
        }
        assert!(
            matched,
            "case {} ({:?}), message {n} on {}:\n mosquitto: {:?}\n midge:     {:?}",
            c.name,
            c.args,
            d.topic,
            String::from_utf8_lossy(rest),
            String::from_utf8_lossy(&first_attempt.unwrap_or_default()),
        );
    }
    assert_eq!(
        pos,
        actual.len(),
        "case {}: mosquitto printed more: {:?}",
        c.name,
        String::from_utf8_lossy(&actual[pos..])
    );
    errors
}

fn run_case(broker: &Broker, c: &Case) {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("fmt/{}", c.name);
    let client = format!("fmt-{}-{}", c.name, std::process::id());
    for m in c.messages.iter().filter(|m| m.retained) {
        publish(broker.port, &format!("{prefix}/{}", m.topic), m, dir.path());
    }
    let sub = mosquitto_sub(
        broker.port,
        &client,
        &format!("{prefix}/#"),
        c.messages.len(),
        c,
    );
    broker.wait_subscribed(&client);
    let sub_qos: u8 = flag_value(&c.args, "-q").map_or(0, |q| q.parse().expect("qos"));
    let mut exactly_once = 0;
    for m in c.messages.iter().filter(|m| !m.retained) {
        publish(broker.port, &format!("{prefix}/{}", m.topic), m, dir.path());
        if m.qos.min(sub_qos) == 2 {
            // libmosquitto hands a QoS 2 message to mosquitto_sub only when PUBREL arrives,
            // so a later message could overtake it: wait for the end of the exchange.
            exactly_once += 1;
            broker.wait_log(&format!("Received PUBCOMP from {client} "), exactly_once);
        }
    }
    let (stdout, stderr) = collect(sub);
    let errors = compare(c, &stdout, &expected_deliveries(c, &prefix));
    let ours: String = errors.iter().map(|e| format!("{e}\n")).collect();
    assert_eq!(
        String::from_utf8_lossy(&stderr),
        ours,
        "case {}: stderr differs",
        c.name
    );
}

/// The test function that runs a case; every case falls in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Plain,
    Json,
    Time,
    Properties,
}

fn group(c: &Case) -> Group {
    if c.name.starts_with("v5") || c.name.starts_with("v3") {
        Group::Properties
    } else if matches!(c.probe, Probe::Unix | Probe::Iso) || c.tz != "UTC" {
        Group::Time
    } else if c.probe == Probe::Tst {
        Group::Json
    } else {
        Group::Plain
    }
}

/// Runs the cases of `g` one after the other against one broker.
fn run_group(g: Group) {
    let broker = Broker::start();
    let selected: Vec<Case> = cases().into_iter().filter(|c| group(c) == g).collect();
    assert!(!selected.is_empty());
    for c in &selected {
        run_case(&broker, c);
    }
}

#[test]
fn default_verbose_and_plain_formats() {
    run_group(Group::Plain);
}

#[test]
fn json_formats() {
    run_group(Group::Json);
}

#[test]
fn time_formats() {
    run_group(Group::Time);
}

#[test]
fn v5_properties() {
    run_group(Group::Properties);
}

// ---------------------------------------------------------------------------------------------
// A scripted broker for what Debian's broker never sends
// ---------------------------------------------------------------------------------------------

/// One PUBLISH the fake broker sends to mosquitto_sub (MQTT v5).
struct Scripted {
    topic: &'static str,
    payload: &'static [u8],
    qos: u8,
    retain: bool,
    mid: u16,
    properties: Vec<Property>,
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return;
        }
    }
}

fn mqtt_str(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn encode_properties(props: &[Property]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in props {
        out.push(p.id());
        match p {
            Property::PayloadFormatIndicator(v) => out.push(u8::from(*v)),
            Property::MessageExpiryInterval(v) => out.extend_from_slice(&v.to_be_bytes()),
            Property::ContentType(v) => mqtt_str(v.as_bytes(), &mut out),
            Property::ResponseTopic(v) => mqtt_str(v.as_str().as_bytes(), &mut out),
            Property::CorrelationData(v) => mqtt_str(v, &mut out),
            Property::SubscriptionIdentifier(v) => varint(*v as usize, &mut out),
            Property::TopicAlias(v) => out.extend_from_slice(&v.to_be_bytes()),
            Property::UserProperty(k, v) => {
                mqtt_str(k.as_bytes(), &mut out);
                mqtt_str(v.as_bytes(), &mut out);
            }
            other => panic!("not a PUBLISH property: {other:?}"),
        }
    }
    out
}

fn encode_publish(s: &Scripted) -> Vec<u8> {
    let mut body = Vec::new();
    mqtt_str(s.topic.as_bytes(), &mut body);
    if s.qos > 0 {
        body.extend_from_slice(&s.mid.to_be_bytes());
    }
    let props = encode_properties(&s.properties);
    varint(props.len(), &mut body);
    body.extend_from_slice(&props);
    body.extend_from_slice(s.payload);
    let mut packet = vec![0x30 | (s.qos << 1) | u8::from(s.retain)];
    varint(body.len(), &mut packet);
    packet.extend_from_slice(&body);
    packet
}

fn read_packet(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).expect("packet type");
    let kind = byte[0];
    let (mut len, mut shift) = (0usize, 0);
    loop {
        stream.read_exact(&mut byte).expect("length");
        len |= usize::from(byte[0] & 0x7F) << shift;
        shift += 7;
        if byte[0] < 0x80 {
            break;
        }
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).expect("body");
    (kind, body)
}

/// Runs mosquitto_sub (`-V 5`, QoS 1 subscription) against a broker that sends `script`.
fn scripted_sub(format: &str, script: &[Scripted]) -> (Vec<u8>, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let child = Command::new(tool("mosquitto_sub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "x/#",
            "-q",
            "1",
        ])
        .args(["-V", "mqttv5", "-W", "15", "-C", &script.len().to_string()])
        .args(["-F", format])
        .env("TZ", "UTC")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mosquitto_sub");
    let (mut stream, _) = listener.accept().expect("accept");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let (kind, _) = read_packet(&mut stream);
    assert_eq!(kind, 0x10, "CONNECT");
    stream.write_all(&[0x20, 3, 0, 0, 0]).expect("CONNACK");
    let (kind, body) = read_packet(&mut stream);
    assert_eq!(kind, 0x82, "SUBSCRIBE");
    stream
        .write_all(&[0x90, 4, body[0], body[1], 0, 1])
        .expect("SUBACK");
    for s in script {
        stream.write_all(&encode_publish(s)).expect("PUBLISH");
    }
    let out = collect(child);
    drop(stream);
    out
}

fn scripted_cases() -> Vec<(&'static str, Vec<Scripted>)> {
    let s = |topic, payload, properties| Scripted {
        topic,
        payload,
        qos: 0,
        retain: false,
        mid: 0,
        properties,
    };
    let user = |k: &str, v: &str| Property::UserProperty(ByteString::from(k), ByteString::from(v));
    vec![
        (
            "%A|%5A|%-4A|%04A|%E|%j",
            vec![
                s(
                    "x/alias",
                    b"hi",
                    vec![
                        Property::CorrelationData(Bytes::from_static(b"abcd")),
                        Property::TopicAlias(7),
                        Property::MessageExpiryInterval(500),
                    ],
                ),
                s("x/alias", b"hi", vec![Property::TopicAlias(3)]),
                s(
                    "x/alias",
                    b"",
                    vec![
                        Property::CorrelationData(Bytes::from_static(b"xy")),
                        Property::TopicAlias(65_535),
                    ],
                ),
            ],
        ),
        // libmosquitto 2.0.11 rejects a PUBLISH with two Subscription Identifiers (a protocol
        // error to it, though MQTT 5 allows one per matching subscription), so only one here.
        (
            "%S|%12S|%-12S|%j",
            vec![s(
                "x/ids",
                b"largest id",
                vec![
                    user("before", "id"),
                    Property::SubscriptionIdentifier(268_435_455),
                ],
            )],
        ),
        (
            "%P|%j",
            vec![s(
                "x/users",
                b"users",
                vec![
                    user("", ""),
                    user("k", "v with space"),
                    user("k", "dup"),
                    user("\u{e9}", "\"\\"),
                ],
            )],
        ),
        (
            "%D|%C|%R|%F|%E|%05E|%j",
            vec![s(
                "x/odd",
                b"\xff",
                vec![
                    Property::CorrelationData(Bytes::from_static(b"a\0b\xff")),
                    Property::ContentType(ByteString::from("t\u{eb}xt")),
                    Property::ResponseTopic(TopicName::new("r/\"q\"").expect("topic")),
                    Property::PayloadFormatIndicator(false),
                    Property::MessageExpiryInterval(u32::MAX),
                ],
            )],
        ),
        (
            "%r %q %m %05m|%j",
            vec![
                Scripted {
                    topic: "x/flags",
                    payload: b"retained live",
                    qos: 1,
                    retain: true,
                    mid: 65_535,
                    properties: Vec::new(),
                },
                Scripted {
                    topic: "x/flags",
                    payload: b"second",
                    qos: 1,
                    retain: false,
                    mid: 1,
                    properties: vec![Property::PayloadFormatIndicator(true)],
                },
            ],
        ),
    ]
}

#[test]
fn scripted_broker_properties() {
    for (fmt, script) in scripted_cases() {
        let (stdout, stderr) = scripted_sub(fmt, &script);
        assert!(
            stderr.is_empty(),
            "{fmt}: {}",
            String::from_utf8_lossy(&stderr)
        );
        let c = case("scripted", &["-F", fmt], Probe::Tst, Vec::new());
        let deliveries: Vec<Received> = script
            .iter()
            .map(|s| Received {
                topic: s.topic.to_owned(),
                payload: s.payload.to_vec(),
                qos: s.qos,
                retain: s.retain,
                mid: s.mid,
                properties: s.properties.iter().cloned().collect(),
            })
            .collect();
        let errors = compare(&c, &stdout, &deliveries);
        assert!(errors.is_empty(), "{fmt}: {errors:?}");
    }
}

/// `-F` strings mosquitto_sub refuses: same message, and mosquitto exits with status 1.
#[test]
fn format_errors() {
    let bad = [
        "%", "%-", "%0", "%5", "%.", "%.3", "%-5", "%z", "%0-p", "%--p", "%-0-p", "%d", "%f",
        "%.2:x", "%5.5.5p", "%5@", "%5\\n", "@", "a@", "\\", "%p\\", "\\q", "\\@", "%.-3p",
    ];
    for f in bad {
        let out = Command::new(tool("mosquitto_sub"))
            .args(["-p", "1", "-t", "t", "-F", f])
            .stdin(Stdio::null())
            .output()
            .expect("run mosquitto_sub");
        assert_eq!(out.status.code(), Some(1), "{f:?}");
        let ours = Format::parse(f).expect_err(f);
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("{ours}\n\nUse 'mosquitto_sub --help' to see usage.\n"),
            "{f:?}"
        );
    }
}
