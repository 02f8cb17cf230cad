//! The table of every flag of `midge pub`, `midge sub` and `midge rr` ([`FLAGS`]): names,
//! the tools that take it, and what it does to the [`Config`], with Mosquitto's checks and
//! messages in Mosquitto's order.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use midge_client::ProtocolVersion;

use super::c_text::{atof, atoi, pub_topic_invalid, strtol_whole, sub_topic_invalid, valid_utf8};
use super::{ALL, Config, MQTT_MAX_PAYLOAD, MsgMode, PUB, RR, SUB, Tool, Transport};
use crate::tools::format::Format;

type Apply = fn(&mut Config, Option<&[u8]>) -> Result<(), String>;

/// One flag: its names, the tools that take it, and what it does. A handler that takes a
/// value gets `None` when the flag is the last argument, and says so in Mosquitto's words.
pub(super) struct Flag {
    pub(super) names: &'static [&'static str],
    pub(super) tools: u8,
    /// Whether the flag consumes the next argument.
    pub(super) value: bool,
    pub(super) apply: Apply,
}

/// The value, or Mosquitto's "argument given but no ... specified" message.
fn need<'a>(v: Option<&'a [u8]>, message: &str) -> Result<&'a [u8], String> {
    v.ok_or_else(|| format!("{message}\n\n"))
}

pub(super) fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

macro_rules! flag {
    ($names:expr, $tools:expr, value, $apply:expr) => {
        Flag {
            names: $names,
            tools: $tools,
            value: true,
            apply: $apply,
        }
    };
    ($names:expr, $tools:expr, switch, $apply:expr) => {
        Flag {
            names: $names,
            tools: $tools,
            value: false,
            apply: $apply,
        }
    };
}

/// A TLS option that takes a value: remembered so the tool can refuse it.
fn tls_value(
    c: &mut Config,
    v: Option<&[u8]>,
    name: &'static str,
    missing: &str,
) -> Result<(), String> {
    need(v, missing)?;
    if !c.tls_options.contains(&name) {
        c.tls_options.push(name);
    }
    Ok(())
}

fn tls_switch(c: &mut Config, name: &'static str) {
    if !c.tls_options.contains(&name) {
        c.tls_options.push(name);
    }
}

/// Mosquitto checks this before anything else about a payload flag.
fn only_one_payload(c: &Config) -> Result<(), String> {
    if c.pub_mode != MsgMode::None {
        return Err("Error: Only one type of message can be sent at once.\n\n".into());
    }
    Ok(())
}

fn payload_mode(c: &mut Config, mode: MsgMode) -> Result<(), String> {
    only_one_payload(c)?;
    c.pub_mode = mode;
    Ok(())
}

/// Every flag of the three tools (Mosquitto 2.0.11's, plus the 2.1 ones Midge can honour or
/// must refuse by name), in the order Mosquitto checks them.
pub(super) static FLAGS: &[Flag] = &[
    flag!(&["-A"], ALL, value, |c, v| {
        let v = need(v, "Error: -A argument given but no address specified.")?;
        c.bind_address = Some(text(v));
        Ok(())
    }),
    flag!(&["--cafile"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--cafile",
            "Error: --cafile argument given but no file specified.",
        )?;
        c.cafile = true;
        Ok(())
    }),
    flag!(&["--capath"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--capath",
            "Error: --capath argument given but no directory specified.",
        )?;
        c.capath = true;
        Ok(())
    }),
    flag!(&["--cert"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--cert",
            "Error: --cert argument given but no file specified.",
        )?;
        c.certfile = true;
        Ok(())
    }),
    flag!(&["--ciphers"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--ciphers",
            "Error: --ciphers argument given but no ciphers specified.",
        )
    }),
    flag!(&["-C"], SUB, value, |c, v| {
        let v = need(v, "Error: -C argument given but no count specified.")?;
        let n = atoi(v);
        if n < 1 {
            return Err(format!("Error: Invalid message count \"{n}\".\n\n"));
        }
        c.msg_count = n as u32;
        Ok(())
    }),
    flag!(&["-c", "--disable-clean-session"], ALL, switch, |c, _| {
        c.clean_session = false;
        Ok(())
    }),
    flag!(&["-d", "--debug"], ALL, switch, |c, _| {
        c.debug = true;
        Ok(())
    }),
    // `-D` reads a variable number of arguments: handled by the parser itself.
    flag!(&["-D", "--property"], ALL, switch, |_, _| Ok(())),
    flag!(&["-e"], RR, value, |c, v| {
        let v = need(
            v,
            "Error: -e argument given but no response topic specified.",
        )?;
        let topic = add_topic_check(v, "-e")?;
        if pub_topic_invalid(v) {
            return Err(format!(
                "Error: Invalid response topic '{}', does it contain '+' or '#'?\n",
                text(v)
            ));
        }
        c.response_topic = Some(topic);
        Ok(())
    }),
    flag!(&["-E"], SUB, switch, |c, _| {
        c.exit_after_sub = true;
        Ok(())
    }),
    flag!(&["-f", "--file"], PUB | RR, value, |c, v| {
        only_one_payload(c)?;
        let v = need(v, "Error: -f argument given but no file specified.")?;
        c.pub_mode = MsgMode::File;
        c.file_input = Some(OsString::from_vec(v.to_vec()));
        Ok(())
    }),
    flag!(&["-F"], SUB | RR, value, |c, v| {
        let v = need(v, "Error: -F argument given but no format specified.")?;
        c.format = Some(Format::parse_bytes(v).map_err(|e| format!("{e}\n"))?);
        Ok(())
    }),
    flag!(&["-h", "--host"], ALL, value, |c, v| {
        let v = need(v, "Error: -h argument given but no host specified.")?;
        c.host = Some(text(v));
        Ok(())
    }),
    flag!(&["--insecure"], ALL, switch, |c, _| {
        tls_switch(c, "--insecure");
        Ok(())
    }),
    flag!(&["-i", "--id"], ALL, value, |c, v| {
        if c.id_prefix.is_some() {
            return Err("Error: -i and -I argument cannot be used together.\n\n".into());
        }
        let v = need(v, "Error: -i argument given but no id specified.")?;
        c.id = Some(v.to_vec());
        Ok(())
    }),
    flag!(&["-I", "--id-prefix"], ALL, value, |c, v| {
        if c.id.is_some() {
            return Err("Error: -i and -I argument cannot be used together.\n\n".into());
        }
        let v = need(v, "Error: -I argument given but no id prefix specified.")?;
        c.id_prefix = Some(v.to_vec());
        Ok(())
    }),
    flag!(&["-k", "--keepalive"], ALL, value, |c, v| {
        let v = need(v, "Error: -k argument given but no keepalive specified.")?;
        let k = atoi(v);
        if !(5..=65535).contains(&k) {
            return Err(
                "Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.\n\n"
                    .into(),
            );
        }
        c.keepalive = k as u16;
        Ok(())
    }),
    flag!(&["--key"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--key",
            "Error: --key argument given but no file specified.",
        )?;
        c.keyfile = true;
        Ok(())
    }),
    flag!(&["--keyform"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--keyform",
            "Error: --keyform argument given but no keyform specified.",
        )?;
        c.keyform = true;
        Ok(())
    }),
    flag!(&["-L", "--url"], ALL, value, |c, v| {
        let v = need(v, "Error: -L argument given but no URL specified.")?;
        parse_url(c, v)
    }),
    flag!(&["--latency"], RR, switch, |c, _| {
        c.latency = true;
        c.nodelay = true;
        Ok(())
    }),
    flag!(&["-l", "--stdin-line"], PUB, switch, |c, _| payload_mode(
        c,
        MsgMode::StdinLine
    )),
    flag!(&["-m", "--message"], PUB | RR, value, |c, v| {
        only_one_payload(c)?;
        let v = need(v, "Error: -m argument given but no message specified.")?;
        if v.len() > MQTT_MAX_PAYLOAD {
            return Err(format!(
                "Error: Message length must be less than {MQTT_MAX_PAYLOAD} bytes.\n\n"
            ));
        }
        c.message = v.to_vec();
        c.pub_mode = MsgMode::Cmd;
        Ok(())
    }),
    flag!(&["--message-rate"], SUB, switch, |c, _| {
        c.message_rate = true;
        Ok(())
    }),
    flag!(&["-M"], ALL, value, |c, v| {
        let v = need(
            v,
            "Error: -M argument given but max_inflight not specified.",
        )?;
        let n = atoi(v);
        if n < 1 {
            return Err("Error: Maximum inflight messages must be greater than 0.\n\n".into());
        }
        c.max_inflight = u16::try_from(n).unwrap_or(u16::MAX);
        Ok(())
    }),
    flag!(&["--nodelay"], ALL, switch, |c, _| {
        c.nodelay = true;
        Ok(())
    }),
    flag!(&["--no-tls"], ALL, switch, |c, _| {
        c.no_tls = true;
        Ok(())
    }),
    flag!(&["-n", "--null-message"], PUB | RR, switch, |c, _| {
        payload_mode(c, MsgMode::Null)
    }),
    flag!(&["-N"], SUB | RR, switch, |c, _| {
        c.eol = false;
        Ok(())
    }),
    flag!(&["-o"], ALL, value, |_, v| {
        // Read before everything else (see `load`); here only its presence matters.
        need(v, "Error: -o argument given but no options file specified.")?;
        Ok(())
    }),
    flag!(&["-p", "--port"], ALL, value, |c, v| {
        let v = need(v, "Error: -p argument given but no port specified.")?;
        let p = atoi(v);
        if !(0..=65535).contains(&p) {
            return Err(format!("Error: Invalid port given: {p}\n"));
        }
        c.port = Some(p as u16);
        Ok(())
    }),
    flag!(&["--pretty"], SUB | RR, switch, |c, _| {
        c.pretty = true;
        Ok(())
    }),
    flag!(&["-P", "--pw"], ALL, value, |c, v| {
        let v = need(v, "Error: -P argument given but no password specified.")?;
        c.password = Some(v.to_vec());
        Ok(())
    }),
    flag!(&["--proxy"], ALL, value, |c, v| {
        let v = need(
            v,
            "Error: --proxy argument given but no proxy url specified.",
        )?;
        check_socks_url(v)?;
        c.proxy = Some(text(v));
        Ok(())
    }),
    flag!(&["--psk"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--psk",
            "Error: --psk argument given but no key specified.",
        )?;
        c.psk = true;
        Ok(())
    }),
    flag!(&["--psk-identity"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--psk-identity",
            "Error: --psk-identity argument given but no identity specified.",
        )?;
        c.psk_identity = true;
        Ok(())
    }),
    flag!(&["-q", "--qos"], ALL, value, |c, v| {
        let v = need(v, "Error: -q argument given but no QoS specified.")?;
        let q = atoi(v);
        if !(0..=2).contains(&q) {
            return Err(format!("Error: Invalid QoS given: {q}\n"));
        }
        c.qos = q as u8;
        Ok(())
    }),
    flag!(&["--quiet"], ALL, switch, |c, _| {
        c.quiet = true;
        Ok(())
    }),
    flag!(&["-r", "--retain"], PUB, switch, |c, _| {
        c.retain = true;
        Ok(())
    }),
    flag!(&["-R"], SUB | RR, switch, |c, _| {
        c.no_retain = true;
        c.retain_handling = 2;
        Ok(())
    }),
    flag!(&["--random-filter"], SUB, value, |c, v| {
        let v = need(
            v,
            "Error: --random-filter argument given but no chance specified.",
        )?;
        // Mosquitto 2.0.11 accepts what `10 × chance` puts in 1..=10000 and then prints
        // only a tenth of what it says (`--random-filter 100` prints 10%). The same values
        // are accepted here, with the documented meaning: a percentage, 100 or more is all.
        let chance = atof(v);
        if !(1..=10000).contains(&((10.0 * chance) as i32)) {
            return Err("Error: --random-filter chance must be between 0.1-100.0\n\n".into());
        }
        c.random_filter = ((100.0 * chance) as i32).min(10000);
        Ok(())
    }),
    flag!(&["--remove-retained"], SUB, switch, |c, _| {
        c.remove_retained = true;
        Ok(())
    }),
    flag!(&["--repeat"], PUB, value, |c, v| {
        let v = need(v, "Error: --repeat argument given but no count specified.")?;
        let n = atoi(v);
        if n < 1 {
            return Err("Error: --repeat argument must be >0.\n\n".into());
        }
        c.repeat_count = n as u32;
        Ok(())
    }),
    flag!(&["--repeat-delay"], PUB, value, |c, v| {
        let v = need(
            v,
            "Error: --repeat-delay argument given but no time specified.",
        )?;
        // Mosquitto reads a float and keeps whole microseconds.
        let f = atof(v) as f32;
        if f < 0.0 {
            return Err("Error: --repeat-delay argument must be >=0.0.\n\n".into());
        }
        let micros = (f * 1.0e6) as i32;
        c.repeat_delay = Duration::from_micros(micros.max(0) as u64);
        Ok(())
    }),
    flag!(&["--retain-as-published"], SUB | RR, switch, |c, _| {
        c.retain_as_published = true;
        Ok(())
    }),
    flag!(&["--retain-handling"], SUB | RR, value, |c, v| {
        let v = need(
            v,
            "Error: --retain-handling argument given but no option specified.",
        )?;
        c.retain_handling = match v.to_ascii_lowercase().as_slice() {
            b"always" => 0,
            b"new" => 1,
            b"never" => 2,
            _ => {
                return Err(format!(
                    "Error: Unknown --retain-handling option '{}'.\n\n",
                    text(v)
                ));
            }
        };
        Ok(())
    }),
    flag!(&["--retained-only"], SUB, switch, |c, _| {
        c.retained_only = true;
        Ok(())
    }),
    flag!(&["-s", "--stdin-file"], PUB | RR, switch, |c, _| {
        payload_mode(c, MsgMode::StdinFile)
    }),
    flag!(&["-S"], ALL, switch, |c, _| {
        c.use_srv = true;
        Ok(())
    }),
    flag!(&["-t", "--topic"], ALL, value, |c, v| {
        let v = need(v, "Error: -t argument given but no topic specified.")?;
        add_topic(c, v, "-t")
    }),
    flag!(&["-T", "--filter-out"], SUB, value, |c, v| {
        let v = need(v, "Error: -T argument given but no topic filter specified.")?;
        if !valid_utf8(v) {
            return Err("Error: Malformed UTF-8 in -T argument.\n\n".into());
        }
        if sub_topic_invalid(v) {
            return Err(format!(
                "Error: Invalid filter topic '{}', are all '+' and '#' wildcards correct?\n",
                text(v)
            ));
        }
        c.filter_outs.push(text(v));
        Ok(())
    }),
    flag!(&["--tls-alpn"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--tls-alpn",
            "Error: --tls-alpn argument given but no protocol specified.",
        )
    }),
    flag!(&["--tls-engine"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--tls-engine",
            "Error: --tls-engine argument given but no engine_id specified.",
        )?;
        c.tls_engine = true;
        Ok(())
    }),
    flag!(&["--tls-engine-kpass-sha1"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--tls-engine-kpass-sha1",
            "Error: --tls-engine-kpass-sha1 argument given but no kpass sha1 specified.",
        )?;
        c.tls_engine_kpass_sha1 = true;
        Ok(())
    }),
    flag!(&["--tls-keylog"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--tls-keylog",
            "Error: --tls-keylog argument given but no file specified.",
        )
    }),
    flag!(&["--tls-use-os-certs"], ALL, switch, |c, _| {
        tls_switch(c, "--tls-use-os-certs");
        Ok(())
    }),
    flag!(&["--tls-version"], ALL, value, |c, v| {
        tls_value(
            c,
            v,
            "--tls-version",
            "Error: --tls-version argument given but no version specified.",
        )
    }),
    flag!(&["-U", "--unsubscribe"], SUB, value, |c, v| {
        let v = need(
            v,
            "Error: -U argument given but no unsubscribe topic specified.",
        )?;
        if !valid_utf8(v) {
            return Err("Error: Malformed UTF-8 in -U argument.\n\n".into());
        }
        if sub_topic_invalid(v) {
            return Err(format!(
                "Error: Invalid unsubscribe topic '{}', are all '+' and '#' wildcards correct?\n",
                text(v)
            ));
        }
        c.unsub_topics.push(text(v));
        Ok(())
    }),
    flag!(&["-u", "--username"], ALL, value, |c, v| {
        let v = need(v, "Error: -u argument given but no username specified.")?;
        c.username = Some(v.to_vec());
        Ok(())
    }),
    flag!(&["--unix"], ALL, value, |c, v| {
        let v = need(
            v,
            "Error: --unix argument given but no socket path specified.",
        )?;
        c.host = Some(text(v));
        c.port = Some(0);
        Ok(())
    }),
    flag!(&["-V", "--protocol-version"], ALL, value, |c, v| {
        let v = need(
            v,
            "Error: --protocol-version argument given but no version specified.",
        )?;
        c.protocol = match v {
            b"mqttv31" | b"31" => ProtocolVersion::V3_1,
            b"mqttv311" | b"311" => ProtocolVersion::V3_1_1,
            b"mqttv5" | b"5" => ProtocolVersion::V5,
            _ => return Err("Error: Invalid protocol version argument given.\n\n".into()),
        };
        Ok(())
    }),
    flag!(&["-v", "--verbose"], SUB | RR, switch, |c, _| {
        c.verbose = true;
        Ok(())
    }),
    flag!(&["-W"], SUB | RR, value, |c, v| {
        let v = need(v, "Error: -W argument given but no timeout specified.")?;
        let t = atoi(v);
        if t < 1 {
            return Err(format!("Error: Invalid timeout \"{t}\".\n\n"));
        }
        c.timeout = t as u32;
        Ok(())
    }),
    flag!(&["-w", "--watch"], SUB, switch, |c, _| {
        c.watch = true;
        Ok(())
    }),
    flag!(&["--will-payload"], ALL, value, |c, v| {
        let v = need(
            v,
            "Error: --will-payload argument given but no will payload specified.",
        )?;
        c.will_payload = Some(v.to_vec());
        Ok(())
    }),
    flag!(&["--will-qos"], ALL, value, |c, v| {
        let v = need(
            v,
            "Error: --will-qos argument given but no will QoS specified.",
        )?;
        let q = atoi(v);
        if !(0..=2).contains(&q) {
            return Err(format!("Error: Invalid will QoS {q}.\n\n"));
        }
        c.will_qos = q as u8;
        Ok(())
    }),
    flag!(&["--will-retain"], ALL, switch, |c, _| {
        c.will_retain = true;
        Ok(())
    }),
    flag!(&["--will-topic"], ALL, value, |c, v| {
        let v = need(
            v,
            "Error: --will-topic argument given but no will topic specified.",
        )?;
        if !valid_utf8(v) {
            return Err("Error: Malformed UTF-8 in --will-topic argument.\n\n".into());
        }
        if pub_topic_invalid(v) {
            return Err(format!(
                "Error: Invalid will topic '{}', does it contain '+' or '#'?\n",
                text(v)
            ));
        }
        c.will_topic = Some(text(v));
        Ok(())
    }),
    flag!(&["--ws"], ALL, switch, |c, _| {
        c.transport = Transport::WebSocket;
        Ok(())
    }),
    flag!(&["-x"], ALL, value, |c, v| {
        let v = need(
            v,
            "Error: -x argument given but no session expiry interval specified.",
        )?;
        if v == "∞".as_bytes() {
            c.session_expiry_interval = i64::from(u32::MAX);
            return Ok(());
        }
        let n = strtol_whole(v)
            .ok_or_else(|| "Error: session-expiry-interval not a number.\n\n".to_owned())?;
        if n > i64::from(u32::MAX) || n < -1 {
            return Err("Error: session-expiry-interval out of range.\n\n".into());
        }
        c.session_expiry_interval = if n == -1 { i64::from(u32::MAX) } else { n };
        Ok(())
    }),
];

/// `-t` (and the `-L` topic): the publish topic of `pub`/`rr`, a subscription for `sub`.
fn add_topic(c: &mut Config, v: &[u8], arg: &str) -> Result<(), String> {
    let topic = add_topic_check(v, arg)?;
    if c.tool == Tool::Sub {
        if sub_topic_invalid(v) {
            return Err(format!(
                "Error: Invalid subscription topic '{}', are all '+' and '#' wildcards correct?\n",
                text(v)
            ));
        }
        c.topics.push(topic);
    } else {
        if pub_topic_invalid(v) {
            return Err(format!(
                "Error: Invalid publish topic '{}', does it contain '+' or '#'?\n",
                text(v)
            ));
        }
        c.topic = Some(topic);
    }
    Ok(())
}

fn add_topic_check(v: &[u8], arg: &str) -> Result<String, String> {
    if !valid_utf8(v) {
        return Err(format!("Error: Malformed UTF-8 in {arg} argument.\n\n"));
    }
    Ok(text(v))
}

/// `-L mqtt://[user[:password]@]host[:port]/topic` (also `mqtts://`, `ws://`, `wss://`).
fn parse_url(c: &mut Config, url: &[u8]) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let (rest, port, tls, ws) = if lower.starts_with(b"mqtt://") {
        (&url[7..], 1883, false, false)
    } else if lower.starts_with(b"mqtts://") {
        (&url[8..], 8883, true, false)
    } else if lower.starts_with(b"ws://") {
        (&url[5..], 1883, false, true)
    } else if lower.starts_with(b"wss://") {
        (&url[6..], 8883, true, true)
    } else {
        return Err("Error: unsupported URL scheme.\n\n".into());
    };
    c.port = Some(port);
    if tls {
        c.tls_scheme = true;
    }
    if ws {
        c.transport = Transport::WebSocket;
    }
    let Some(slash) = rest.iter().position(|&b| b == b'/') else {
        return Err("Error: Invalid URL for -L argument specified - topic missing.\n".into());
    };
    let (mut authority, topic) = (&rest[..slash], &rest[slash + 1..]);
    add_topic(c, topic, "-L topic")?;
    if let Some(at) = authority.iter().position(|&b| b == b'@') {
        let userinfo = &authority[..at];
        match userinfo.iter().position(|&b| b == b':') {
            Some(colon) => {
                c.password = Some(userinfo[colon + 1..].to_vec());
                c.username = Some(userinfo[..colon].to_vec());
            }
            None => c.username = Some(userinfo.to_vec()),
        }
        authority = &authority[at + 1..];
    }
    match authority.iter().position(|&b| b == b':') {
        Some(colon) => {
            c.host = Some(text(&authority[..colon]));
            // atoi, and no range check, as Mosquitto.
            c.port = Some(atoi(&authority[colon + 1..]) as u16);
        }
        None => c.host = Some(text(authority)),
    }
    Ok(())
}

/// Mosquitto's checks of a `--proxy` URL (`socks5h://[user[:password]@]host[:port]`).
fn check_socks_url(url: &[u8]) -> Result<(), String> {
    let Some(rest) = url.strip_prefix(b"socks5h://") else {
        return Err(format!(
            "Error: Unsupported proxy protocol: {}\n",
            text(url)
        ));
    };
    let host_part = match rest.iter().rposition(|&b| b == b'@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let (host, port) = match host_part.iter().position(|&b| b == b':') {
        Some(colon) => (&host_part[..colon], Some(&host_part[colon + 1..])),
        None => (host_part, None),
    };
    if host.is_empty() {
        return Err("Error: Invalid proxy.\n".into());
    }
    if let Some(port) = port {
        let p = atoi(port);
        if !(1..=65535).contains(&p) {
            return Err(format!("Error: Invalid proxy port {p}\n"));
        }
    }
    Ok(())
}
