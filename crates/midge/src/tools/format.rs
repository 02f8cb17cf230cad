//! How `midge sub` and `midge rr` print a received message: byte for byte what Debian's
//! `mosquitto_sub`/`mosquitto_rr` 2.0.11 print for the same message and flags (default, `-v`,
//! `-N`, `-F FORMAT`, `--pretty`), so scripts written against mosquitto keep working.
//!
//! Overview:
//! - [`Format::parse`] validates a `-F` string with mosquitto's rules and error messages and
//!   turns it into items once; [`write_message`] renders one message.
//! - `%j`/`%J` JSON goes through [`json`], a re-implementation of the cJSON behaviour mosquitto
//!   links against; `@` time conversions, `%I`, `%U` and the JSON `tst` go through [`clock`]
//!   (glibc's `localtime` + `strftime`, C locale).
//!
//! Deliberate differences from mosquitto: every time specifier of one message uses the same
//! instant, [`OutputMessage::received`] (mosquitto reads the clock again for each `%I`, `%j`,
//! `%J` and `%U`, and once for all `@` conversions); padding longer than [`MAX_PAD`] bytes is
//! cut to that length (mosquitto would print gigabytes for `%99999999999p`).

#[path = "format/clock.rs"]
mod clock;
#[path = "format/json.rs"]
mod json;

use std::time::{SystemTime, UNIX_EPOCH};

use midge_proto::{Properties, Property};

pub(crate) use clock::TimeZone;
use json::Json;

/// The longest padding written for one field width.
pub(crate) const MAX_PAD: usize = 1 << 20;

/// What a received message looks like to the formatter (independent of the client library).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputMessage<'a> {
    /// The topic the message was published to.
    pub(crate) topic: &'a str,
    /// The payload; empty for a zero-length message.
    pub(crate) payload: &'a [u8],
    /// The QoS the message was delivered with.
    pub(crate) qos: u8,
    /// The RETAIN flag as delivered.
    pub(crate) retain: bool,
    /// The packet identifier; 0 for QoS 0.
    pub(crate) mid: u16,
    /// The MQTT v5 properties as received, in order (empty for MQTT 3.x).
    pub(crate) properties: &'a Properties,
    /// When the message arrived: the time `@`, `%I`, `%U` and the JSON `tst` print.
    pub(crate) received: SystemTime,
}

/// How messages are printed: mosquitto's default output or a `-F` format.
#[derive(Debug, Clone)]
pub(crate) enum Output {
    /// No `-F`: the payload (with `verbose`, `-v`: the topic, a space, the payload), then a
    /// newline unless `eol` is false (`-N`).
    Default {
        /// `-v`.
        verbose: bool,
        /// False with `-N`.
        eol: bool,
    },
    /// `-F FORMAT`.
    Format(Format),
}

impl Output {
    /// The output that mosquitto's `-F`, `-v`, `-N` and `--pretty` flags select (`-F` wins
    /// over `-v`; `--pretty` only matters for `%j`/`%J`).
    pub(crate) fn from_flags(
        format: Option<Format>,
        verbose: bool,
        eol: bool,
        pretty: bool,
    ) -> Output {
        match format {
            Some(f) => Output::Format(f.with_eol(eol).with_pretty(pretty)),
            None => Output::Default { verbose, eol },
        }
    }
}

/// A parsed `-F` format.
#[derive(Debug, Clone)]
pub(crate) struct Format {
    items: Vec<Item>,
    /// Print a newline after each message (false with `-N`).
    eol: bool,
    /// `--pretty`: indented JSON for `%j`/`%J`.
    pretty: bool,
    /// The zone for `@` conversions, `%I` and the JSON `tst`.
    zone: TimeZone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Text printed as is (plain characters, `\` escapes, `@@`).
    Literal(Vec<u8>),
    /// A `%` specifier.
    Field(Field),
    /// `@X`: `strftime("%X")`, or nanoseconds for `@N`.
    Time(u8),
}

/// A `%` specifier with its flags. Widths and precisions are C `int`s in mosquitto, and wrap
/// around like them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    conversion: u8,
    /// `-`: pad on the right.
    left: bool,
    /// `0`: pad numbers (and absent v5 numbers) with zeros.
    zero: bool,
    width: i32,
    /// -1 when not given.
    precision: i32,
}

/// The characters allowed after `%` (mosquitto 2.0.11's `check_format`).
const CONVERSIONS: &[u8] = b"%ACDEFIjJlmPpqRSrtUxX";

impl Format {
    /// Parses a `-F` string. Errors are mosquitto's messages (without the trailing newline);
    /// mosquitto prints the message, then "\nUse 'mosquitto_sub --help' to see usage.\n", and
    /// exits with status 1.
    #[allow(dead_code)] // the binary parses bytes; tests/format_vs_mosquitto.rs uses this
    pub(crate) fn parse(s: &str) -> Result<Format, String> {
        Format::parse_bytes(s.as_bytes())
    }

    /// [`Format::parse`] for a command-line argument that need not be UTF-8 (the bytes of its
    /// literal parts are printed as given).
    pub(crate) fn parse_bytes(s: &[u8]) -> Result<Format, String> {
        // mosquitto sees a C string: anything after a NUL does not exist.
        let s = &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())];
        check(s)?;
        Ok(Format {
            items: items(s),
            eol: true,
            pretty: false,
            zone: TimeZone::from_env(),
        })
    }

    /// Sets whether a newline follows each message (`-N` clears it).
    pub(crate) fn with_eol(mut self, eol: bool) -> Format {
        self.eol = eol;
        self
    }

    /// Sets `--pretty`.
    pub(crate) fn with_pretty(mut self, pretty: bool) -> Format {
        self.pretty = pretty;
        self
    }

    /// Replaces the time zone (by default the one `TZ` selects, as for `localtime()`).
    #[allow(dead_code)] // tests/format_vs_mosquitto.rs renders with a given zone
    pub(crate) fn with_time_zone(mut self, zone: TimeZone) -> Format {
        self.zone = zone;
        self
    }
}

/// Validates like mosquitto's `check_format`, which runs when `-F` is parsed.
fn check(s: &[u8]) -> Result<(), String> {
    const INCOMPLETE: &str = "Error: Incomplete format specifier.";
    let last = s.len().saturating_sub(1);
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                if i == last {
                    return Err(INCOMPLETE.into());
                }
                if matches!(s[i + 1], b'0' | b'-') {
                    i += 1;
                    if i == last {
                        return Err(INCOMPLETE.into());
                    }
                }
                while s[i + 1].is_ascii_digit() {
                    i += 1;
                    if i == last {
                        return Err(INCOMPLETE.into());
                    }
                }
                if s[i + 1] == b'.' {
                    i += 1;
                    if i == last {
                        return Err(INCOMPLETE.into());
                    }
                    while s[i + 1].is_ascii_digit() {
                        i += 1;
                        if i == last {
                            return Err(INCOMPLETE.into());
                        }
                    }
                }
                if !CONVERSIONS.contains(&s[i + 1]) {
                    return Err(format!(
                        "Error: Invalid format specifier '{}'.",
                        shown(s[i + 1])
                    ));
                }
                i += 1;
            }
            b'@' => {
                if i == last {
                    return Err(INCOMPLETE.into());
                }
                i += 1;
            }
            b'\\' => {
                if i == last {
                    return Err("Error: Incomplete escape specifier.".into());
                }
                if !b"\\0aenrtv".contains(&s[i + 1]) {
                    return Err(format!(
                        "Error: Invalid escape specifier '{}'.",
                        shown(s[i + 1])
                    ));
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// A byte as mosquitto's `'%c'` shows it. A lone byte of a multi-byte character cannot be put
/// in a `String`, so it becomes U+FFFD (mosquitto writes the raw byte).
fn shown(b: u8) -> char {
    if b.is_ascii() {
        char::from(b)
    } else {
        '\u{FFFD}'
    }
}

/// Splits a validated format into items, reading flags like mosquitto's `formatted_print`.
fn items(s: &[u8]) -> Vec<Item> {
    let mut items = Vec::new();
    let mut literal = Vec::new();
    let len = s.len();
    let mut i = 0;
    while i < len {
        match s[i] {
            b'%' if i + 1 < len => {
                i += 1;
                let mut field = Field {
                    conversion: 0,
                    left: false,
                    zero: false,
                    width: 0,
                    precision: -1,
                };
                if s[i] == b'-' {
                    field.left = true;
                    i += usize::from(i + 1 < len);
                }
                if s[i] == b'0' {
                    field.zero = true;
                    i += usize::from(i + 1 < len);
                }
                while i + 1 < len && s[i].is_ascii_digit() {
                    field.width = field
                        .width
                        .wrapping_mul(10)
                        .wrapping_add(i32::from(s[i] - b'0'));
                    i += 1;
                }
                if s[i] == b'.' && i + 1 < len {
                    i += 1;
                    field.precision = 0;
                    while i + 1 < len && s[i].is_ascii_digit() {
                        field.precision = field
                            .precision
                            .wrapping_mul(10)
                            .wrapping_add(i32::from(s[i] - b'0'));
                        i += 1;
                    }
                }
                field.conversion = s[i];
                flush(&mut items, &mut literal);
                items.push(Item::Field(field));
            }
            b'@' if i + 1 < len => {
                i += 1;
                if s[i] == b'@' {
                    literal.push(b'@');
                } else {
                    flush(&mut items, &mut literal);
                    items.push(Item::Time(s[i]));
                }
            }
            b'\\' if i + 1 < len => {
                i += 1;
                literal.push(match s[i] {
                    b'0' => 0,
                    b'a' => 0x07,
                    b'e' => 0x1B,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'v' => 0x0B,
                    other => other,
                });
            }
            // `check` rejects a trailing '%', '@' or '\'.
            b'%' | b'@' | b'\\' => {}
            other => literal.push(other),
        }
        i += 1;
    }
    flush(&mut items, &mut literal);
    items
}

fn flush(items: &mut Vec<Item>, literal: &mut Vec<u8>) {
    if !literal.is_empty() {
        items.push(Item::Literal(std::mem::take(literal)));
    }
}

/// Appends `msg` as mosquitto prints it to `out`. Returns the error lines mosquitto would
/// print on stderr (unless `--quiet`), without their newlines: "Error: Message payload is not
/// valid JSON on topic T." for a `%J` whose payload is not JSON (the rest of the format, and
/// the newline, are still printed).
#[must_use]
pub(crate) fn write_message(
    out: &mut Vec<u8>,
    output: &Output,
    msg: &OutputMessage<'_>,
) -> Vec<String> {
    match output {
        Output::Default { verbose, eol } => {
            write_default(out, *verbose, *eol, msg);
            Vec::new()
        }
        Output::Format(format) => write_formatted(out, format, msg),
    }
}

fn write_default(out: &mut Vec<u8>, verbose: bool, eol: bool, msg: &OutputMessage<'_>) {
    if msg.payload.is_empty() {
        // An empty message prints nothing at all, except "topic (null)" with -v (and not even
        // that with -v -N).
        if verbose && eol {
            out.extend_from_slice(c_str(msg.topic.as_bytes()));
            out.extend_from_slice(b" (null)\n");
        }
        return;
    }
    if verbose {
        out.extend_from_slice(c_str(msg.topic.as_bytes()));
        out.push(b' ');
    }
    out.extend_from_slice(msg.payload);
    if eol {
        out.push(b'\n');
    }
}

/// The clock reading of one message, converted on first use.
struct Clock<'z> {
    zone: &'z TimeZone,
    secs: i64,
    nanos: u32,
    tm: Option<clock::Tm>,
}

impl Clock<'_> {
    fn tm(&mut self) -> &clock::Tm {
        let (zone, secs) = (self.zone, self.secs);
        self.tm.get_or_insert_with(|| zone.local_time(secs))
    }
}

fn write_formatted(out: &mut Vec<u8>, format: &Format, msg: &OutputMessage<'_>) -> Vec<String> {
    let (secs, nanos) = match msg.received.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (-(d.as_secs() as i64), d.subsec_nanos());
            if n == 0 {
                (s, 0)
            } else {
                (s - 1, 1_000_000_000 - n)
            }
        }
    };
    let mut now = Clock {
        zone: &format.zone,
        secs,
        nanos,
        tm: None,
    };
    let mut errors = Vec::new();
    for item in &format.items {
        match item {
            Item::Literal(bytes) => out.extend_from_slice(bytes),
            Item::Time(b'N') => out.extend_from_slice(format!("{:09}", now.nanos).as_bytes()),
            Item::Time(c) => clock::strftime(out, &[b'%', *c], now.tm()),
            Item::Field(field) => {
                if let Err(e) = write_field(out, field, msg, format.pretty, &mut now) {
                    errors.push(e);
                }
            }
        }
    }
    if format.eol {
        out.push(b'\n');
    }
    errors
}

fn write_field(
    out: &mut Vec<u8>,
    f: &Field,
    msg: &OutputMessage<'_>,
    pretty: bool,
    now: &mut Clock<'_>,
) -> Result<(), String> {
    let props = msg.properties;
    match f.conversion {
        b'%' => out.push(b'%'),
        b'A' => int_or_blank(out, f, props.topic_alias().map(i64::from)),
        b'C' => match props.content_type() {
            Some(ct) => string(out, f, ct.as_bytes()),
            None => blank(out, b' ', f.width),
        },
        b'D' => {
            if let Some(data) = props.correlation_data() {
                out.extend_from_slice(data);
            }
        }
        // mosquitto casts the unsigned 32-bit value to int.
        b'E' => int_or_blank(
            out,
            f,
            props.message_expiry_interval().map(|v| i64::from(v as i32)),
        ),
        b'F' => int_or_blank(out, f, props.payload_format_indicator().map(i64::from)),
        b'I' => {
            let mut text = Vec::new();
            clock::strftime(&mut text, b"%FT%T%z", now.tm());
            string(out, f, &text);
        }
        b'j' => json::print(out, &json_message(msg, now, Payload::Escaped), pretty),
        b'J' => {
            let value = if msg.payload.is_empty() {
                Json::Null
            } else {
                json::parse(msg.payload).ok_or_else(|| {
                    format!(
                        "Error: Message payload is not valid JSON on topic {}.",
                        String::from_utf8_lossy(c_str(msg.topic.as_bytes()))
                    )
                })?
            };
            json::print(out, &json_message(msg, now, Payload::Parsed(value)), pretty);
        }
        b'l' => int(out, f, msg.payload.len() as i64),
        b'm' => int(out, f, i64::from(msg.mid)),
        b'P' => {
            for (i, (name, value)) in props.user_properties().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(c_str(name.as_bytes()));
                out.push(b':');
                out.extend_from_slice(c_str(value.as_bytes()));
            }
        }
        b'p' => payload(out, f, msg.payload, None),
        b'q' => out.push(msg.qos.wrapping_add(b'0')),
        b'R' => {
            if let Some(topic) = props.response_topic() {
                string(out, f, topic.as_str().as_bytes());
            }
        }
        b'r' => out.push(if msg.retain { b'1' } else { b'0' }),
        b'S' => int_or_blank(
            out,
            f,
            props
                .subscription_identifiers()
                .next()
                .map(|v| i64::from(v as i32)),
        ),
        b't' => string(out, f, msg.topic.as_bytes()),
        b'U' => out.extend_from_slice(format!("{}.{:09}", now.secs, now.nanos).as_bytes()),
        b'x' => payload(out, f, msg.payload, Some(false)),
        b'X' => payload(out, f, msg.payload, Some(true)),
        _ => {}
    }
    Ok(())
}

/// Up to the first NUL: what C's `%s` prints of a string.
fn c_str(s: &[u8]) -> &[u8] {
    &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]
}

/// A C `int` width as (columns, pad on the right): a negative width means `-` in `printf`.
fn columns(width: i32, left: bool) -> (usize, bool) {
    (
        (width.unsigned_abs() as usize).min(MAX_PAD),
        left || width < 0,
    )
}

/// `count` copies of `pad`, capped at [`MAX_PAD`].
fn pad(out: &mut Vec<u8>, pad: u8, count: usize) {
    out.resize(out.len() + count.min(MAX_PAD), pad);
}

/// mosquitto's `formatted_print_blank`: an absent v5 value still takes its width.
fn blank(out: &mut Vec<u8>, fill: u8, width: i32) {
    if width > 0 {
        pad(out, fill, width as usize);
    }
}

fn int_or_blank(out: &mut Vec<u8>, f: &Field, value: Option<i64>) {
    match value {
        Some(v) => int(out, f, v),
        None => blank(out, if f.zero { b'0' } else { b' ' }, f.width),
    }
}

/// `printf` of an `int` with `%d`, `%-*d`, `%0*d` or `%*d`, as mosquitto chooses.
fn int(out: &mut Vec<u8>, f: &Field, value: i64) {
    let digits = value.unsigned_abs().to_string();
    let (width, left) = columns(f.width, f.left);
    let len = digits.len() + usize::from(value < 0);
    let fill = width.saturating_sub(len);
    if f.width != 0 && !left && !f.zero {
        pad(out, b' ', fill);
    }
    if value < 0 {
        out.push(b'-');
    }
    if f.width != 0 && !left && f.zero {
        pad(out, b'0', fill);
    }
    out.extend_from_slice(digits.as_bytes());
    if f.width != 0 && left {
        pad(out, b' ', fill);
    }
}

/// `printf("%*.*s")` as mosquitto's `formatted_print_str` uses it.
fn string(out: &mut Vec<u8>, f: &Field, value: &[u8]) {
    let mut value = c_str(value);
    if let Ok(precision) = usize::try_from(f.precision) {
        value = &value[..value.len().min(precision)];
    }
    let (width, left) = columns(f.width, f.left);
    let fill = width.saturating_sub(value.len());
    if !left {
        pad(out, b' ', fill);
    }
    out.extend_from_slice(value);
    if left {
        pad(out, b' ', fill);
    }
}

/// mosquitto's `write_payload` for `%p` (`hex` None), `%x` and `%X`. A positive width also
/// truncates: the payload to `width` bytes, and in hex to half of that (so `%20x` of "hello"
/// prints 16 pad characters and "6865"). With `-`, the right padding is `printf("%*s", n, "")`
/// where n may be negative, so `%-p` pads with as many spaces as the payload is long.
fn payload(out: &mut Vec<u8>, f: &Field, payload: &[u8], hex: Option<bool>) {
    let width = i64::from(f.width);
    let mut len = payload.len() as i64;
    let padlen = if width > 0 {
        len = len.min(width);
        if hex.is_some() {
            len /= 2;
            width - len * 2
        } else {
            width - len
        }
    } else {
        width - len
    };
    if !f.left && padlen > 0 {
        pad(out, if f.zero { b'0' } else { b' ' }, padlen as usize);
    }
    let shown = &payload[..len as usize];
    match hex {
        None => out.extend_from_slice(shown),
        Some(upper) => {
            for b in shown {
                let text = if upper {
                    format!("{b:02X}")
                } else {
                    format!("{b:02x}")
                };
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    if f.left {
        pad(out, b' ', padlen.unsigned_abs() as usize);
    }
}

/// The `payload` member of the JSON object.
enum Payload {
    /// `%j`: the payload as a string (up to its first NUL), `null` when empty.
    Escaped,
    /// `%J`: the payload parsed as JSON, `null` when empty.
    Parsed(Json),
}

/// The object `%j`/`%J` print: tst, topic, qos, retain, payloadlen, mid (QoS > 0),
/// properties (v5, when there are any), payload.
fn json_message(msg: &OutputMessage<'_>, now: &mut Clock<'_>, payload: Payload) -> Json {
    // mosquitto 2.0.11 formats "%Y-%m-%dT%H:%M:%S.000000Z%z", then writes the microseconds
    // over the zeros and a 'Z' over the terminator that leaves: "...:00.123456Z+0100".
    let micros = now.nanos / 1000;
    let mut tst = Vec::new();
    clock::strftime(&mut tst, b"%Y-%m-%dT%H:%M:%S.000000Z%z", now.tm());
    if tst.len() > 26 {
        tst[20..26].copy_from_slice(format!("{micros:06}").as_bytes());
        tst[26] = b'Z';
    }
    let mut members = vec![
        (b"tst".to_vec(), Json::String(tst)),
        (
            b"topic".to_vec(),
            Json::String(msg.topic.as_bytes().to_vec()),
        ),
        (b"qos".to_vec(), Json::Number(f64::from(msg.qos))),
        (
            b"retain".to_vec(),
            Json::Number(f64::from(u8::from(msg.retain))),
        ),
        (
            b"payloadlen".to_vec(),
            Json::Number(msg.payload.len() as f64),
        ),
    ];
    if msg.qos > 0 {
        members.push((b"mid".to_vec(), Json::Number(f64::from(msg.mid))));
    }
    if !msg.properties.is_empty() {
        members.push((b"properties".to_vec(), json_properties(msg.properties)));
    }
    let payload = match payload {
        Payload::Escaped if msg.payload.is_empty() => Json::Null,
        Payload::Escaped => Json::String(c_str(msg.payload).to_vec()),
        Payload::Parsed(value) => value,
    };
    members.push((b"payload".to_vec(), payload));
    Json::Object(members)
}

/// The `properties` object, in the order the properties arrived; User Properties are gathered
/// into one `user-properties` object placed where the first one was.
fn json_properties(props: &Properties) -> Json {
    let mut members: Vec<(Vec<u8>, Json)> = Vec::new();
    let mut user: Option<usize> = None;
    // mosquitto 2.0.11 reads the Topic Alias with the wrong identifier, so the read fails and
    // it prints whatever its 16-bit scratch variable last held: the length of the latest
    // Correlation Data before it, else 0. Reproduced, since scripts see that value.
    let mut scratch16 = 0u16;
    for p in props.iter() {
        let (name, value) = match p {
            Property::PayloadFormatIndicator(v) => (
                "payload-format-indicator",
                Json::Number(f64::from(u8::from(*v))),
            ),
            Property::MessageExpiryInterval(v) => {
                ("message-expiry-interval", Json::Number(f64::from(*v)))
            }
            Property::ContentType(v) => ("content-type", Json::String(v.as_bytes().to_vec())),
            Property::ResponseTopic(v) => (
                "response-topic",
                Json::String(v.as_str().as_bytes().to_vec()),
            ),
            Property::CorrelationData(v) => {
                scratch16 = v.len() as u16;
                ("correlation-data", Json::String(v.to_vec()))
            }
            Property::SubscriptionIdentifier(v) => {
                ("subscription-identifier", Json::Number(f64::from(*v)))
            }
            Property::TopicAlias(_) => ("topic-alias", Json::Number(f64::from(scratch16))),
            Property::UserProperty(k, v) => {
                let i = *user.get_or_insert_with(|| {
                    members.push((b"user-properties".to_vec(), Json::Object(Vec::new())));
                    members.len() - 1
                });
                if let (_, Json::Object(pairs)) = &mut members[i] {
                    pairs.push((k.as_bytes().to_vec(), Json::String(v.as_bytes().to_vec())));
                }
                continue;
            }
            _ => continue,
        };
        members.push((name.as_bytes().to_vec(), value));
    }
    Json::Object(members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use midge_proto::{ByteString, TopicName};
    use std::time::Duration;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    fn render(format: &str, msg: &OutputMessage<'_>) -> Vec<u8> {
        let f = Format::parse(format)
            .expect("valid format")
            .with_time_zone(TimeZone::utc());
        let mut out = Vec::new();
        let errors = write_message(&mut out, &Output::Format(f), msg);
        assert!(errors.is_empty(), "{errors:?}");
        out
    }

    fn message<'a>(payload: &'a [u8], props: &'a Properties) -> OutputMessage<'a> {
        OutputMessage {
            topic: "x/abc",
            payload,
            qos: 1,
            retain: false,
            mid: 1,
            properties: props,
            received: at(1_795_309_911, 763_984_123),
        }
    }

    #[test]
    fn format_errors_match_mosquitto() {
        let incomplete = "Error: Incomplete format specifier.";
        for (f, e) in [
            ("%", incomplete),
            ("%-", incomplete),
            ("%0", incomplete),
            ("%5", incomplete),
            ("%.", incomplete),
            ("%.3", incomplete),
            ("%-5", incomplete),
            ("@", incomplete),
            ("a@", incomplete),
            ("%z", "Error: Invalid format specifier 'z'."),
            ("%0-p", "Error: Invalid format specifier '-'."),
            ("%--p", "Error: Invalid format specifier '-'."),
            ("%-0-p", "Error: Invalid format specifier '-'."),
            ("%d", "Error: Invalid format specifier 'd'."),
            ("%.2:x", "Error: Invalid format specifier ':'."),
            ("%5.5.5p", "Error: Invalid format specifier '.'."),
            ("%5@", "Error: Invalid format specifier '@'."),
            ("\\", "Error: Incomplete escape specifier."),
            ("%p\\", "Error: Incomplete escape specifier."),
            ("\\q", "Error: Invalid escape specifier 'q'."),
            ("\\@", "Error: Invalid escape specifier '@'."),
        ] {
            assert_eq!(Format::parse(f).err().as_deref(), Some(e), "{f:?}");
        }
        for ok in [
            "", "%-0p", "%-05p", "%00p", "%5.p", "\\0", "@\\", "%0.p", "%-.3t", "%%",
        ] {
            assert!(Format::parse(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn default_and_verbose() {
        let none = Properties::new();
        let mut msg = message(b"hello", &none);
        let cases = [
            (false, true, &b"hello\n"[..]),
            (true, true, b"x/abc hello\n"),
            (false, false, b"hello"),
            (true, false, b"x/abc hello"),
        ];
        for (verbose, eol, expected) in cases {
            let mut out = Vec::new();
            let _ = write_message(&mut out, &Output::Default { verbose, eol }, &msg);
            assert_eq!(out, expected);
        }
        msg.payload = b"";
        for (verbose, eol, expected) in [
            (false, true, &b""[..]),
            (true, true, b"x/abc (null)\n"),
            (false, false, b""),
            (true, false, b""),
        ] {
            let mut out = Vec::new();
            let _ = write_message(&mut out, &Output::Default { verbose, eol }, &msg);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn widths_and_payloads() {
        let none = Properties::new();
        let msg = message(b"hello", &none);
        assert_eq!(
            render("%-10t|%5l|%.3p|%08x|%-8X|%10p|%3p", &msg),
            b"x/abc     |    5|hello|00006865|6865    |     hello|hel\n"
        );
        assert_eq!(
            render("[%-0p][%00p][%5.p][%5%][%-5l][%05l][%-05l][%5m][%05m][%-3q][%3r][%05t][%-7.2t|]", &msg),
            b"[hello     ][hello][hello][%][5    ][00005][5    ][    1][00001][1][0][x/abc][x/     |]\n"
        );
        assert_eq!(
            render("[%-p][%-x][%20x][%-20X][%-3p][%-l][%-0l][%-05E][%-3q]", &msg),
            b"[hello     ][68656c6c6f     ][                6865][6865                ][hel][5][5][00000][1]\n"
        );
        assert_eq!(
            render("\\a\\e\\r\\v\\0\\\\\\n\\t|%t@@", &msg),
            b"\x07\x1b\r\x0b\0\\\n\t|x/abc@\n"
        );
    }

    #[test]
    fn time_specifiers() {
        let none = Properties::new();
        let msg = message(b"hello", &none);
        assert_eq!(
            render("@@|@N|@s|@E|@O|@J|@%|@z|@Z|@+|@k|@P|@1|@ |%I|%25I|%.10I|%-30I|%U", &msg),
            b"@|763984123|1795309911|%E|%O|%J|%|+0000|UTC|%+| 1|am|%1|% |2026-11-22T01:11:51+0000| \
              2026-11-22T01:11:51+0000|2026-11-22|2026-11-22T01:11:51+0000      |1795309911.763984123\n"
        );
        let berlin = TimeZone::from_tz_value(Some("CET-1CEST,M3.5.0,M10.5.0/3"));
        let f = Format::parse("%I|%j|@c @z @Z")
            .expect("valid")
            .with_time_zone(berlin);
        let mut out = Vec::new();
        let _ = write_message(
            &mut out,
            &Output::Format(f.with_eol(false)),
            &message(b"hi", &none),
        );
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "2026-11-22T02:11:51+0100|{\"tst\":\"2026-11-22T02:11:51.763984Z+0100\",\
             \"topic\":\"x/abc\",\"qos\":1,\"retain\":0,\"payloadlen\":2,\"mid\":1,\
             \"payload\":\"hi\"}|Sun Nov 22 02:11:51 2026 +0100 CET"
        );
    }

    #[test]
    fn json_with_properties() {
        let props: Properties = [
            Property::UserProperty(ByteString::from("k"), ByteString::from("v")),
            Property::ContentType(ByteString::from("text/plain")),
            Property::CorrelationData(b"12\x0034"[..].into()),
            Property::ResponseTopic(TopicName::new("r/t").expect("topic")),
            Property::PayloadFormatIndicator(true),
            Property::UserProperty(ByteString::from("k2"), ByteString::from("v2")),
            Property::TopicAlias(9),
            Property::MessageExpiryInterval(4_294_967_295),
        ]
        .into_iter()
        .collect();
        let msg = message(b"a\0b", &props);
        assert_eq!(
            String::from_utf8_lossy(&render("%j", &msg)),
            "{\"tst\":\"2026-11-22T01:11:51.763984Z+0000\",\"topic\":\"x/abc\",\"qos\":1,\
             \"retain\":0,\"payloadlen\":3,\"mid\":1,\"properties\":{\"user-properties\":\
             {\"k\":\"v\",\"k2\":\"v2\"},\"content-type\":\"text/plain\",\
             \"correlation-data\":\"12\",\"response-topic\":\"r/t\",\
             \"payload-format-indicator\":1,\"topic-alias\":5,\
             \"message-expiry-interval\":4294967295},\"payload\":\"a\"}\n"
        );
        assert_eq!(
            render("%P|%C|%D|%E|%F|%R|%S|%A|%8C|%.2C|%05S", &msg),
            b"k:v k2:v2|text/plain|12\x0034|-1|1|r/t||9|text/plain|te|00000\n"
        );
        let none = Properties::new();
        assert_eq!(
            render(
                "%P|%C|%D|%E|%F|%R|%S|%A|%5E|%05F|%-5S|%3A|%8C|",
                &message(b"x", &none)
            ),
            b"||||||||     |00000|     |   |        |\n"
        );
    }

    #[test]
    fn json_payloads() {
        let none = Properties::new();
        let f = Format::parse("%J")
            .expect("valid")
            .with_time_zone(TimeZone::utc());
        let mut out = Vec::new();
        let errors = write_message(&mut out, &Output::Format(f), &message(b"notjson", &none));
        assert_eq!(out, b"\n");
        assert_eq!(
            errors,
            ["Error: Message payload is not valid JSON on topic x/abc."]
        );
        let pretty = Format::parse("%J")
            .expect("valid")
            .with_time_zone(TimeZone::utc())
            .with_pretty(true);
        let mut out = Vec::new();
        let msg = OutputMessage {
            qos: 0,
            ..message(b"{\"a\":[1,{}]}", &none)
        };
        let _ = write_message(&mut out, &Output::Format(pretty), &msg);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "{\n\t\"tst\":\t\"2026-11-22T01:11:51.763984Z+0000\",\n\t\"topic\":\t\"x/abc\",\n\t\
             \"qos\":\t0,\n\t\"retain\":\t0,\n\t\"payloadlen\":\t12,\n\t\"payload\":\t{\n\t\t\
             \"a\":\t[1, {\n\t\t\t}]\n\t}\n}\n"
        );
        let empty = message(b"", &none);
        assert!(render("%J", &empty).ends_with(b"\"mid\":1,\"payload\":null}\n"));
        assert!(render("%j", &empty).ends_with(b"\"mid\":1,\"payload\":null}\n"));
    }
}
