//! The command line of `midge pub`, `midge sub` and `midge rr`: one table of flags shared by
//! the three tools (`flags::FLAGS`), read the way `mosquitto_pub`/`mosquitto_sub`/`mosquitto_rr`
//! 2.0.11 read theirs (`client/client_shared.c`), with the same checks, in the same order, and
//! the same error messages, so a script that worked with Mosquitto's tools works here and
//! one that failed fails the same way.
//!
//! Overview:
//! - Every flag is one `Flag` row of `flags::FLAGS`: its names, which tools take it and what it does to the
//!   [`Config`]. A flag another tool owns is "Unknown option" here, as in Mosquitto.
//! - Arguments are bytes (`-m` payloads and `-P` passwords need not be UTF-8); numbers are
//!   read with C's `atoi`/`atol`/`atof`/`strtol` rules, as Mosquitto does.
//! - Defaults come first from an options file, as Mosquitto's `~/.config/mosquitto_sub`:
//!   `-o FILE` (Mosquitto 2.1), else `$XDG_CONFIG_HOME/midge_sub` or `~/.config/midge_sub`
//!   (`midge_pub`, `midge_rr`), else Mosquitto's own file in the same directory.
//! - [`load`] returns a validated [`Config`]; what each tool checks on top (a message for
//!   `pub`, a response topic for `rr`) is in its own module.
//! - Options Midge cannot honour yet (TLS, WebSocket, SOCKS proxies, DNS SRV, `--watch`,
//!   `--message-rate`) are accepted here and refused by [`Config::unsupported`] with a clear
//!   message before anything is sent: never silently ignored.

mod c_text;
mod flags;
mod property;

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::time::Duration;

use midge_client::{Properties, Property, ProtocolVersion};

use super::format::Format;
pub(crate) use c_text::valid_utf8;
use flags::{FLAGS, text};
use property::parse_property;

/// The three tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    /// `midge pub`.
    Pub,
    /// `midge sub`.
    Sub,
    /// `midge rr`.
    Rr,
}

impl Tool {
    /// "midge sub", as the tool names itself in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Pub => "midge pub",
            Tool::Sub => "midge sub",
            Tool::Rr => "midge rr",
        }
    }

    /// The options file name: `midge_sub`; and Mosquitto's, read when ours does not exist.
    fn options_files(self) -> [&'static str; 2] {
        match self {
            Tool::Pub => ["midge_pub", "mosquitto_pub"],
            Tool::Sub => ["midge_sub", "mosquitto_sub"],
            Tool::Rr => ["midge_rr", "mosquitto_rr"],
        }
    }

    fn bit(self) -> u8 {
        match self {
            Tool::Pub => PUB,
            Tool::Sub => SUB,
            Tool::Rr => RR,
        }
    }
}

const PUB: u8 = 1;
const SUB: u8 = 2;
const RR: u8 = 4;
const ALL: u8 = PUB | SUB | RR;

/// Where the payload of `pub` and `rr` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MsgMode {
    /// Not chosen yet.
    None,
    /// `-m`.
    Cmd,
    /// `-f`.
    File,
    /// `-s`: all of stdin, one message.
    StdinFile,
    /// `-l`: one message per line of stdin.
    StdinLine,
    /// `-n`: an empty message.
    Null,
}

/// The transport the options ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transport {
    /// TCP to `host:port`, or a unix socket at `host` when the port is 0 (`--unix`).
    Plain,
    /// `--ws`, `ws://` or `wss://`.
    WebSocket,
}

/// Everything the command line (and options file) says.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) tool: Tool,
    /// `-h`, the `-L` host, or the `--unix` path (with `port` 0).
    pub(crate) host: Option<String>,
    /// `-p`, or the `-L` port; `None` until given (then 1883, or 8883 with TLS options).
    pub(crate) port: Option<u16>,
    pub(crate) bind_address: Option<String>,
    pub(crate) id: Option<Vec<u8>>,
    pub(crate) id_prefix: Option<Vec<u8>>,
    pub(crate) username: Option<Vec<u8>>,
    pub(crate) password: Option<Vec<u8>>,
    pub(crate) keepalive: u16,
    pub(crate) clean_session: bool,
    /// `-x`; -1 until given. `u32::MAX` is "never expires".
    pub(crate) session_expiry_interval: i64,
    pub(crate) protocol: ProtocolVersion,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    pub(crate) debug: bool,
    pub(crate) quiet: bool,
    pub(crate) will_topic: Option<String>,
    pub(crate) will_payload: Option<Vec<u8>>,
    pub(crate) will_qos: u8,
    pub(crate) will_retain: bool,
    pub(crate) pub_mode: MsgMode,
    /// The `-m` payload, or the `-f`/`-s` contents once loaded.
    pub(crate) message: Vec<u8>,
    pub(crate) file_input: Option<OsString>,
    /// The publish topic (`pub`, `rr`): the last `-t` or `-L` topic.
    pub(crate) topic: Option<String>,
    /// Subscriptions (`sub`), in order.
    pub(crate) topics: Vec<String>,
    pub(crate) filter_outs: Vec<String>,
    pub(crate) unsub_topics: Vec<String>,
    /// `-e` (`rr`).
    pub(crate) response_topic: Option<String>,
    /// `-C`; `rr` waits for one response.
    pub(crate) msg_count: u32,
    /// `-W`, seconds; 0 for none.
    pub(crate) timeout: u32,
    pub(crate) exit_after_sub: bool,
    /// `-R`.
    pub(crate) no_retain: bool,
    pub(crate) retained_only: bool,
    pub(crate) remove_retained: bool,
    pub(crate) retain_as_published: bool,
    /// Retain Handling (`-R` or `--retain-handling`): 0, 1 or 2.
    pub(crate) retain_handling: u8,
    /// `--random-filter` in hundredths of a percent (10000: print everything).
    pub(crate) random_filter: i32,
    pub(crate) verbose: bool,
    pub(crate) eol: bool,
    pub(crate) pretty: bool,
    pub(crate) format: Option<Format>,
    pub(crate) repeat_count: u32,
    pub(crate) repeat_delay: Duration,
    pub(crate) max_inflight: u16,
    pub(crate) nodelay: bool,
    pub(crate) latency: bool,
    pub(crate) connect_props: Properties,
    pub(crate) publish_props: Properties,
    pub(crate) subscribe_props: Properties,
    pub(crate) unsubscribe_props: Properties,
    pub(crate) disconnect_props: Properties,
    pub(crate) will_props: Properties,
    /// `-D publish topic-alias N`: later messages go with an empty topic and the alias.
    pub(crate) have_topic_alias: bool,
    pub(crate) transport: Transport,
    /// The TLS options given (for the refusal message and the default port).
    pub(crate) tls_options: Vec<&'static str>,
    /// `mqtts://` or `wss://`.
    pub(crate) tls_scheme: bool,
    /// `--no-tls` (Mosquitto 2.1): never TLS, even on port 8883.
    pub(crate) no_tls: bool,
    pub(crate) cafile: bool,
    pub(crate) capath: bool,
    pub(crate) certfile: bool,
    pub(crate) keyfile: bool,
    pub(crate) keyform: bool,
    pub(crate) tls_engine: bool,
    pub(crate) tls_engine_kpass_sha1: bool,
    pub(crate) psk: bool,
    pub(crate) psk_identity: bool,
    pub(crate) proxy: Option<String>,
    pub(crate) use_srv: bool,
    pub(crate) watch: bool,
    pub(crate) message_rate: bool,
    options_file: Option<OsString>,
}

impl Config {
    fn new(tool: Tool) -> Config {
        Config {
            tool,
            host: None,
            port: None,
            bind_address: None,
            id: None,
            id_prefix: None,
            username: None,
            password: None,
            keepalive: 60,
            clean_session: true,
            session_expiry_interval: -1,
            protocol: if tool == Tool::Rr {
                ProtocolVersion::V5
            } else {
                ProtocolVersion::V3_1_1
            },
            qos: 0,
            retain: false,
            debug: false,
            quiet: false,
            will_topic: None,
            will_payload: None,
            will_qos: 0,
            will_retain: false,
            pub_mode: MsgMode::None,
            message: Vec::new(),
            file_input: None,
            topic: None,
            topics: Vec::new(),
            filter_outs: Vec::new(),
            unsub_topics: Vec::new(),
            response_topic: None,
            msg_count: if tool == Tool::Rr { 1 } else { 0 },
            timeout: 0,
            exit_after_sub: false,
            no_retain: false,
            retained_only: false,
            remove_retained: false,
            retain_as_published: false,
            retain_handling: 0,
            random_filter: 10000,
            verbose: false,
            eol: true,
            pretty: false,
            format: None,
            repeat_count: 1,
            repeat_delay: Duration::ZERO,
            max_inflight: 20,
            nodelay: false,
            latency: false,
            connect_props: Properties::new(),
            publish_props: Properties::new(),
            subscribe_props: Properties::new(),
            unsubscribe_props: Properties::new(),
            disconnect_props: Properties::new(),
            will_props: Properties::new(),
            have_topic_alias: false,
            transport: Transport::Plain,
            tls_options: Vec::new(),
            tls_scheme: false,
            no_tls: false,
            cafile: false,
            capath: false,
            certfile: false,
            keyfile: false,
            keyform: false,
            tls_engine: false,
            tls_engine_kpass_sha1: false,
            psk: false,
            psk_identity: false,
            proxy: None,
            use_srv: false,
            watch: false,
            message_rate: false,
            options_file: None,
        }
    }

    /// The port to connect to: as given, else 8883 with a CA or PSK (TLS), else 1883.
    pub(crate) fn effective_port(&self) -> u16 {
        match self.port {
            Some(p) => p,
            None if self.cafile || self.capath || self.psk => 8883,
            None => 1883,
        }
    }

    /// Whether the options ask for a unix domain socket (`--unix`, or port 0 as in
    /// libmosquitto).
    pub(crate) fn is_unix(&self) -> bool {
        self.port == Some(0)
    }

    /// Why the options cannot be honoured yet, if they cannot: the message to print (with
    /// its newline). Checked before connecting; the tool then exits with status 1.
    pub(crate) fn unsupported(&self) -> Option<String> {
        // `--no-tls` (Mosquitto 2.1) turns every TLS option off, port 8883 included.
        let tls_port = !self.is_unix() && self.effective_port() == 8883;
        let tls = !self.tls_options.is_empty() || self.tls_scheme || tls_port;
        if tls && !self.no_tls {
            let what = if let Some(first) = self.tls_options.first() {
                format!("'{first}' needs TLS")
            } else if self.tls_scheme {
                "the URL scheme needs TLS".to_owned()
            } else {
                "port 8883 means MQTT over TLS (as for mosquitto_pub/sub; --no-tls turns that off)"
                    .to_owned()
            };
            return Some(format!(
                "Error: TLS is not available yet in Midge (issue 7): {what}.\n"
            ));
        }
        if self.transport == Transport::WebSocket {
            return Some(
                "Error: MQTT over WebSockets is not available yet in Midge's clients (issue 7).\n"
                    .to_owned(),
            );
        }
        if self.proxy.is_some() {
            return Some(
                "Error: SOCKS5 proxies (--proxy) are not supported by Midge.\n".to_owned(),
            );
        }
        if self.use_srv {
            return Some("Error: DNS SRV lookups (-S) are not supported by Midge.\n".to_owned());
        }
        if self.watch {
            return Some("Error: --watch is not supported by Midge.\n".to_owned());
        }
        if self.message_rate {
            return Some("Error: --message-rate is not supported by Midge.\n".to_owned());
        }
        None
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Run with this configuration.
    Run(Box<Config>),
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

/// A refusal while reading the options: the message to print on stderr (with its newlines),
/// after which the tool prints "\nUse 'midge sub --help' to see usage.\n" and exits with 1.
/// An empty message is possible (libmosquitto refuses some `-D` commands without one).
#[derive(Debug)]
pub(crate) struct ArgError(pub(crate) String);

/// The largest payload MQTT can carry.
pub(crate) const MQTT_MAX_PAYLOAD: usize = 268_435_455;

/// Reads the options file, then `args` (the arguments after `midge sub`), then checks them
/// together, as Mosquitto's `client_config_load`.
pub(crate) fn load(tool: Tool, args: &[OsString]) -> Result<Parsed, ArgError> {
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    let mut c = Config::new(tool);
    // `-o` is found first, wherever it is.
    let mut i = 0;
    while i < args.len() {
        if args[i] == b"-o" {
            if c.options_file.is_some() {
                return Err(ArgError("Error: Duplicate -o argument given.\n\n".into()));
            }
            match args.get(i + 1) {
                Some(f) => c.options_file = Some(OsString::from_vec(f.clone())),
                None => {
                    return Err(ArgError(
                        "Error: -o argument given but no options file specified.\n\n".into(),
                    ));
                }
            }
        }
        i += 1;
    }
    if let Some(text) = read_options_file(&c) {
        for line in text.split(|&b| b == b'\n') {
            let line = trim_line_end(line);
            if line.first() == Some(&b'#') {
                continue;
            }
            // As Mosquitto: the first word is the option, the rest of the line one argument.
            let start = line.iter().position(|&b| b != b' ').unwrap_or(line.len());
            let line = &line[start..];
            if line.is_empty() {
                continue;
            }
            let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
            let mut words = vec![line[..end].to_vec()];
            if end + 1 < line.len() {
                words.push(line[end + 1..].to_vec());
            }
            if let Some(stop) = parse_args(&mut c, &words)? {
                return Ok(stop);
            }
        }
    }
    if let Some(stop) = parse_args(&mut c, &args)? {
        return Ok(stop);
    }
    check(&mut c)?;
    Ok(Parsed::Run(Box::new(c)))
}

fn trim_line_end(mut line: &[u8]) -> &[u8] {
    while let Some((&last, rest)) = line.split_last() {
        if last == b'\n' || last == b'\r' {
            line = rest;
        } else {
            break;
        }
    }
    line
}

/// The options file's contents: `-o FILE`, else ours, else Mosquitto's; `None` if there is
/// none (a file that cannot be read is skipped, as Mosquitto does).
fn read_options_file(c: &Config) -> Option<Vec<u8>> {
    if let Some(f) = &c.options_file {
        return std::fs::read(f).ok();
    }
    let dir = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    c.tool
        .options_files()
        .iter()
        .find_map(|name| std::fs::read(dir.join(name)).ok())
}

/// Applies `args` in order. `Some` stops everything (`--help`, `--version`).
fn parse_args(c: &mut Config, args: &[Vec<u8>]) -> Result<Option<Parsed>, ArgError> {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_slice();
        if arg == b"--help" {
            return Ok(Some(Parsed::Help));
        }
        if arg == b"--version" {
            return Ok(Some(Parsed::Version));
        }
        let flag = FLAGS
            .iter()
            .find(|f| f.names.iter().any(|n| n.as_bytes() == arg));
        let Some(flag) = flag.filter(|f| f.tools & c.tool.bit() != 0) else {
            return Err(ArgError(format!(
                "Error: Unknown option '{}'.\n",
                text(arg)
            )));
        };
        if flag.names[0] == "-D" {
            i = parse_property(c, args, i + 1).map_err(ArgError)?;
            c.protocol = ProtocolVersion::V5;
            i += 1;
            continue;
        }
        let value = if flag.value {
            args.get(i + 1).map(Vec::as_slice)
        } else {
            None
        };
        (flag.apply)(c, value).map_err(ArgError)?;
        i += if flag.value { 2 } else { 1 };
    }
    Ok(None)
}

/// The checks Mosquitto makes once every option is read.
fn check(c: &mut Config) -> Result<(), ArgError> {
    let fail = |s: &str| Err(ArgError(s.to_owned()));
    if c.will_payload.is_some() && c.will_topic.is_none() {
        return fail("Error: Will payload given, but no will topic given.\n");
    }
    if c.will_retain && c.will_topic.is_none() {
        return fail("Error: Will retain given, but no will topic given.\n");
    }
    if c.certfile != c.keyfile {
        return fail("Error: Both certfile and keyfile must be provided if one of them is set.\n");
    }
    if c.keyform && !c.keyfile {
        return fail("Error: If keyform is set, keyfile must be also specified.\n");
    }
    if c.tls_engine_kpass_sha1 && (!c.keyform || !c.tls_engine) {
        return fail(
            "Error: when using tls-engine-kpass-sha1, both tls-engine and keyform must also be provided.\n",
        );
    }
    if (c.cafile || c.capath) && c.psk {
        return fail("Error: Only one of --psk or --cafile/--capath may be used at once.\n");
    }
    if c.psk && !c.psk_identity {
        return fail("Error: --psk-identity required if --psk used.\n");
    }
    let no_id = c.id_prefix.is_some() || c.id.is_none();
    if c.protocol.is_v5() {
        if !c.clean_session && c.session_expiry_interval == -1 {
            // -c alone: a session that never expires.
            c.session_expiry_interval = i64::from(u32::MAX);
        }
        if c.session_expiry_interval > 0 {
            if c.session_expiry_interval == i64::from(u32::MAX) && no_id {
                return fail(
                    "Error: You must provide a client id if you are using an infinite session expiry interval.\n",
                );
            }
            c.connect_props.push(Property::SessionExpiryInterval(
                c.session_expiry_interval as u32,
            ));
        }
    } else if !c.clean_session && no_id {
        return fail("Error: You must provide a client id if you are using the -c option.\n");
    }
    if c.tool == Tool::Sub && c.topics.is_empty() {
        return fail("Error: You must specify a topic to subscribe to.\n");
    }
    if c.host.is_none() {
        c.host = Some("localhost".into());
    }
    for (name, list) in [
        ("CONNECT", &c.connect_props),
        ("PUBLISH", &c.publish_props),
        ("SUBSCRIBE", &c.subscribe_props),
        ("UNSUBSCRIBE", &c.unsubscribe_props),
        ("DISCONNECT", &c.disconnect_props),
        ("Will", &c.will_props),
    ] {
        if let Some(problem) = check_all(list) {
            return Err(ArgError(format!("Error in {name} properties: {problem}\n")));
        }
    }
    Ok(())
}

/// libmosquitto's `mosquitto_property_check_all`: value rules and duplicates, as the
/// `mosquitto_strerror` text of the first problem.
fn check_all(list: &Properties) -> Option<&'static str> {
    const PROTOCOL: &str = "A network protocol error occurred when communicating with the broker.";
    let props: Vec<&Property> = list.iter().collect();
    for (n, p) in props.iter().enumerate() {
        match p {
            Property::MaximumPacketSize(0)
            | Property::ReceiveMaximum(0)
            | Property::TopicAlias(0) => {
                return Some(PROTOCOL);
            }
            _ => {}
        }
        if p.id() != 0x26 && props[n + 1..].iter().any(|q| q.id() == p.id()) {
            return Some("Duplicate property in property list");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn err(tool: Tool, a: &[&str]) -> String {
        match load(tool, &args(a)) {
            Err(ArgError(e)) => e,
            Ok(p) => panic!("{a:?} accepted: {p:?}"),
        }
    }

    #[test]
    fn errors_match_mosquitto() {
        assert_eq!(
            err(Tool::Sub, &["-t"]),
            "Error: -t argument given but no topic specified.\n\n"
        );
        assert_eq!(
            err(Tool::Sub, &["-t", "a", "-m", "x"]),
            "Error: Unknown option '-m'.\n"
        );
        assert_eq!(
            err(Tool::Pub, &["-q", "3"]),
            "Error: Invalid QoS given: 3\n"
        );
        assert_eq!(
            err(
                Tool::Pub,
                &["-t", "a", "-m", "x", "-D", "connect", "topic-alias", "1"]
            ),
            "Error: topic-alias property not allowed for connect in --property argument.\n\n"
        );
        assert_eq!(
            err(
                Tool::Sub,
                &[
                    "-t",
                    "a",
                    "-x",
                    "60",
                    "-D",
                    "connect",
                    "session-expiry-interval",
                    "5"
                ]
            ),
            "Error in CONNECT properties: Duplicate property in property list\n"
        );
        assert_eq!(
            err(Tool::Sub, &["-c", "-t", "a"]),
            "Error: You must provide a client id if you are using the -c option.\n"
        );
    }

    #[test]
    fn url_sets_everything() {
        let Ok(Parsed::Run(c)) = load(
            Tool::Pub,
            &args(&["-L", "mqtt://u:p@h:1234/a/b", "-m", "x"]),
        ) else {
            panic!("refused");
        };
        assert_eq!(c.host.as_deref(), Some("h"));
        assert_eq!(c.port, Some(1234));
        assert_eq!(c.username.as_deref(), Some(&b"u"[..]));
        assert_eq!(c.password.as_deref(), Some(&b"p"[..]));
        assert_eq!(c.topic.as_deref(), Some("a/b"));
    }
}
