//! JSON as `mosquitto_sub` 2.0.11 produces it through cJSON 1.7.x: the parser that `%J` runs
//! on payloads and the printer behind `%j`/`%J` (compact, or `--pretty` with tabs).
//!
//! The quirks are cJSON's and are kept on purpose: every byte up to 0x20 counts as whitespace,
//! strings are C strings (a decoded `\u0000`, or an invalid `\uXXXX` which decodes to 0, ends
//! them when printed), bytes of 0x80 and above pass through unescaped, numbers are the `strtod`
//! prefix of the run of `0-9+-.eE` characters and are printed with `%1.15g` (or `%1.17g` when
//! 15 digits do not round-trip), so `1000000000000000` comes back as `1e+15`. Upstream cJSON
//! 1.7.15 only looks at the first 63 characters of a number; Debian's build carries the fix for
//! CVE-2023-26819, which lifts that limit, and that is what is reproduced here.

/// A parsed or constructed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number (an IEEE double, as in cJSON).
    Number(f64),
    /// A string: raw bytes, printed up to the first NUL.
    String(Vec<u8>),
    /// An array.
    Array(Vec<Json>),
    /// An object; duplicate keys are kept, in order.
    Object(Vec<(Vec<u8>, Json)>),
}

/// cJSON's `CJSON_NESTING_LIMIT`.
const NESTING_LIMIT: usize = 1000;

/// Parses a payload the way `%J` does: `cJSON_ParseWithOpts` on the NUL-terminated payload,
/// requiring the parse to end exactly at the end of the payload (so a payload containing a
/// NUL byte is never valid).
pub(crate) fn parse(payload: &[u8]) -> Option<Json> {
    if payload.contains(&0) {
        return None;
    }
    let mut buf = Vec::with_capacity(payload.len() + 1);
    buf.extend_from_slice(payload);
    buf.push(0);
    let mut p = Parser {
        buf: &buf,
        pos: 0,
        depth: 0,
    };
    if buf.len() > 4 && buf.starts_with(b"\xEF\xBB\xBF") {
        p.pos = 3;
    }
    p.skip_whitespace();
    let value = p.value()?;
    p.skip_whitespace();
    (p.pos == payload.len()).then_some(value)
}

struct Parser<'a> {
    /// The payload followed by its terminating NUL (which is part of cJSON's buffer).
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        self.buf.get(self.pos + i).copied()
    }

    fn skip_whitespace(&mut self) {
        if self.pos >= self.buf.len() {
            return;
        }
        while self.at(0).is_some_and(|b| b <= 32) {
            self.pos += 1;
        }
        // cJSON steps back onto the terminator when it skipped past it.
        if self.pos == self.buf.len() {
            self.pos -= 1;
        }
    }

    fn value(&mut self) -> Option<Json> {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        for (word, value) in [
            (&b"null"[..], Json::Null),
            (b"false", Json::Bool(false)),
            (b"true", Json::Bool(true)),
        ] {
            if rest.starts_with(word) {
                self.pos += word.len();
                return Some(value);
            }
        }
        match self.at(0)? {
            b'"' => self.string().map(Json::String),
            b'-' | b'0'..=b'9' => self.number(),
            b'[' => self.array(),
            b'{' => self.object(),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        let start = self.pos + 1;
        let mut end = start;
        while end < self.buf.len() && self.buf[end] != b'"' {
            if self.buf[end] == b'\\' {
                if end + 1 >= self.buf.len() {
                    return None;
                }
                end += 1;
            }
            end += 1;
        }
        if end >= self.buf.len() {
            return None;
        }
        let mut out = Vec::with_capacity(end - start);
        let mut p = start;
        while p < end {
            if self.buf[p] != b'\\' {
                out.push(self.buf[p]);
                p += 1;
                continue;
            }
            let simple = match self.buf[p + 1] {
                b'b' => 0x08,
                b'f' => 0x0C,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                c @ (b'"' | b'\\' | b'/') => c,
                b'u' => {
                    p += utf16_escape(&self.buf[p..end], &mut out)?;
                    continue;
                }
                _ => return None,
            };
            out.push(simple);
            p += 2;
        }
        self.pos = end + 1;
        Some(out)
    }

    fn number(&mut self) -> Option<Json> {
        let rest = &self.buf[self.pos..];
        let len = rest
            .iter()
            .take_while(|b| matches!(b, b'0'..=b'9' | b'+' | b'-' | b'e' | b'E' | b'.'))
            .count();
        let used = strtod_prefix(&rest[..len]);
        if used == 0 {
            return None;
        }
        let text = std::str::from_utf8(&rest[..used]).ok()?;
        let value = text.parse::<f64>().ok()?;
        self.pos += used;
        Some(Json::Number(value))
    }

    /// Enters a nested array or object; `None` past cJSON's nesting limit.
    fn enter(&mut self) -> Option<()> {
        if self.depth >= NESTING_LIMIT {
            return None;
        }
        self.depth += 1;
        Some(())
    }

    /// After the opening bracket: skips whitespace and reports whether `close` follows at once.
    fn open(&mut self, close: u8) -> Option<bool> {
        self.pos += 1;
        self.skip_whitespace();
        match self.at(0) {
            Some(c) if c == close => Some(true),
            Some(_) => Some(false),
            None => None,
        }
    }

    fn array(&mut self) -> Option<Json> {
        self.enter()?;
        let mut items = Vec::new();
        if !self.open(b']')? {
            loop {
                self.skip_whitespace();
                items.push(self.value()?);
                self.skip_whitespace();
                if self.at(0) != Some(b',') {
                    break;
                }
                self.pos += 1;
            }
            if self.at(0) != Some(b']') {
                return None;
            }
        }
        self.depth -= 1;
        self.pos += 1;
        Some(Json::Array(items))
    }

    fn object(&mut self) -> Option<Json> {
        self.enter()?;
        let mut members = Vec::new();
        if !self.open(b'}')? {
            loop {
                self.skip_whitespace();
                if self.at(0) != Some(b'"') {
                    return None;
                }
                let key = self.string()?;
                self.skip_whitespace();
                if self.at(0) != Some(b':') {
                    return None;
                }
                self.pos += 1;
                self.skip_whitespace();
                members.push((key, self.value()?));
                self.skip_whitespace();
                if self.at(0) != Some(b',') {
                    break;
                }
                self.pos += 1;
            }
            if self.at(0) != Some(b'}') {
                return None;
            }
        }
        self.depth -= 1;
        self.pos += 1;
        Some(Json::Object(members))
    }
}

/// Decodes `\uXXXX` (or a surrogate pair `\uXXXX\uXXXX`) at the start of `s`, which ends at
/// the string's closing quote; returns how many bytes it used. Like cJSON, an invalid hex
/// digit makes the code 0 rather than an error.
fn utf16_escape(s: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    if s.len() < 6 {
        return None;
    }
    let first = hex4(&s[2..6]);
    let (code, used) = match first {
        0xDC00..=0xDFFF => return None,
        0xD800..=0xDBFF => {
            let second = s.get(6..12)?;
            if !second.starts_with(b"\\u") {
                return None;
            }
            let low = hex4(&second[2..6]);
            if !(0xDC00..=0xDFFF).contains(&low) {
                return None;
            }
            (0x10000 + (((first & 0x3FF) << 10) | (low & 0x3FF)), 12)
        }
        _ => (first, 6),
    };
    // The code is at most 0x10FFFF here, so it is a char unless it is a lone surrogate, which
    // was rejected above.
    let ch = char::from_u32(code)?;
    let mut utf8 = [0; 4];
    out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
    Some(used)
}

fn hex4(digits: &[u8]) -> u32 {
    let mut value = 0;
    for &d in digits {
        let nibble = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return 0,
        };
        value = value << 4 | u32::from(nibble);
    }
    value
}

/// How many bytes of `s` C's `strtod` would consume as a decimal number (0: none).
fn strtod_prefix(s: &[u8]) -> usize {
    let digits = |from: usize| s[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = usize::from(matches!(s.first(), Some(b'+' | b'-')));
    let int_digits = digits(i);
    i += int_digits;
    let mut frac_digits = 0;
    if s.get(i) == Some(&b'.') {
        frac_digits = digits(i + 1);
        if int_digits + frac_digits > 0 {
            i += 1 + frac_digits;
        }
    }
    if int_digits + frac_digits == 0 {
        return 0;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_digits = digits(j.min(s.len()));
        if exp_digits > 0 {
            i = j + exp_digits;
        }
    }
    i
}

/// Prints `value` like `cJSON_PrintUnformatted` (or `cJSON_Print` when `pretty`).
pub(crate) fn print(out: &mut Vec<u8>, value: &Json, pretty: bool) {
    print_value(out, value, pretty, 0);
}

fn print_value(out: &mut Vec<u8>, value: &Json, pretty: bool, depth: usize) {
    match value {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(true) => out.extend_from_slice(b"true"),
        Json::Bool(false) => out.extend_from_slice(b"false"),
        Json::Number(n) => out.extend_from_slice(number(*n).as_bytes()),
        Json::String(s) => print_string(out, s),
        Json::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(if pretty { b", " } else { b"," });
                }
                print_value(out, item, pretty, depth + 1);
            }
            out.push(b']');
        }
        Json::Object(members) => {
            let inner = depth + 1;
            out.push(b'{');
            if pretty {
                out.push(b'\n');
            }
            for (i, (key, member)) in members.iter().enumerate() {
                if pretty {
                    out.resize(out.len() + inner, b'\t');
                }
                print_string(out, key);
                out.extend_from_slice(if pretty { b":\t" } else { b":" });
                print_value(out, member, pretty, inner);
                if i + 1 < members.len() {
                    out.push(b',');
                }
                if pretty {
                    out.push(b'\n');
                }
            }
            if pretty {
                out.resize(out.len() + depth, b'\t');
            }
            out.push(b'}');
        }
    }
}

/// A quoted string, escaped like cJSON: up to the first NUL, control characters as `\b \f \n
/// \r \t` or `\u00xx`, everything from 0x20 up (including 0x7F and non-UTF-8 bytes) verbatim.
pub(crate) fn print_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s.iter().take_while(|&&b| b != 0) {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=31 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// cJSON's `print_number`: `null` for NaN and infinities, else `%1.15g`, or `%1.17g` when the
/// 15-digit text does not read back as (nearly) the same double.
pub(crate) fn number(d: f64) -> String {
    if !d.is_finite() {
        return "null".to_owned();
    }
    let short = format_g(d, 15);
    let round_trips = short
        .parse::<f64>()
        .is_ok_and(|back| (back - d).abs() <= back.abs().max(d.abs()) * f64::EPSILON);
    if round_trips { short } else { format_g(d, 17) }
}

/// C's `%1.<precision>g` for a finite double.
fn format_g(d: f64, precision: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let sci = format!("{:.*e}", precision - 1, d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let sign = if d < 0.0 { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let with_point = |int: &str, frac: &str| {
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        }
    };
    if exp < -4 || exp >= precision as i64 {
        let m = with_point(&digits[..1], &digits[1..]);
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{esign}{:02}", exp.abs())
    } else if exp >= 0 {
        let split = exp as usize + 1;
        with_point(&digits[..split], &digits[split..])
    } else {
        let zeros = "0".repeat((-exp - 1) as usize);
        with_point("0", &format!("{zeros}{digits}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reprint(payload: &str, pretty: bool) -> Option<String> {
        let value = parse(payload.as_bytes())?;
        let mut out = Vec::new();
        print(&mut out, &value, pretty);
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn numbers_like_cjson() {
        let cases = [
            (1e15, "1e+15"),
            (123_456_789_012_345_680.0, "1.2345678901234568e+17"),
            (-0.0, "-0"),
            (0.1, "0.1"),
            (1.5e300, "1.5e+300"),
            (-0.5, "-0.5"),
            (2_147_483_648.0, "2147483648"),
            (4_294_967_295.0, "4294967295"),
            (123_456_789_012_345.0, "123456789012345"),
            (0.000_001, "1e-06"),
            (0.000_1, "0.0001"),
            (std::f64::consts::PI, "3.1415926535897931"),
            (5e-324, "4.94065645841247e-324"),
            (1e-310, "9.99999999999997e-311"),
            (2.225_073_858_507_201e-308, "2.2250738585072009e-308"),
            (f64::INFINITY, "null"),
            (f64::NAN, "null"),
        ];
        for (n, text) in cases {
            assert_eq!(number(n), text, "{n}");
        }
    }

    #[test]
    fn strtod_prefixes() {
        for (s, n) in [
            ("1", 1),
            ("-", 0),
            ("-.5", 3),
            ("1.", 2),
            ("1.e3", 4),
            ("1e", 1),
            ("1e+", 1),
            ("1e+5", 4),
            ("1-2", 1),
            ("--1", 0),
            (".", 0),
            ("1.5.3", 3),
        ] {
            assert_eq!(strtod_prefix(s.as_bytes()), n, "{s}");
        }
    }

    #[test]
    fn parse_and_print() {
        assert_eq!(
            reprint("[1000000000000000, -0.0, 1e400, 01, -.5, 1.e3]", false).as_deref(),
            Some("[1e+15,-0,null,1,-0.5,1000]")
        );
        assert_eq!(
            reprint(
                " \t{\"a\" : \"\\u0000x\", \"b\":\"\\uZZZZq\", \"\\ud83d\\ude00\":\"\\u00e9\\/\\\"\"} ",
                false
            )
            .as_deref(),
            Some("{\"a\":\"\",\"b\":\"\",\"\u{1F600}\":\"\u{e9}/\\\"\"}")
        );
        assert_eq!(
            reprint("{\"a\":[1,{\"b\":null}],\"e\":{},\"f\":[]}", true).as_deref(),
            Some(
                "{\n\t\"a\":\t[1, {\n\t\t\t\"b\":\tnull\n\t\t}],\n\t\"e\":\t{\n\t},\n\t\"f\":\t[]\n}"
            )
        );
        // Control characters count as whitespace; a BOM is skipped.
        assert_eq!(reprint("\x01[true]\x1f", false).as_deref(), Some("[true]"));
        assert_eq!(reprint("\u{feff}[1]", false).as_deref(), Some("[1]"));
        for bad in [
            "nul",
            "truex",
            "[1,]",
            "-",
            "{,}",
            "\"abc",
            "[1",
            "{\"a\"}",
            "",
            "  ",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "+1",
            ".5",
            "1e",
            "{\"a\":1,}",
        ] {
            assert_eq!(reprint(bad, false), None, "{bad:?}");
        }
        assert_eq!(parse(b"[1]\0"), None);
        assert_eq!(parse(b"\"\xff\xfe\""), Some(Json::String(vec![0xff, 0xfe])));
        let long = format!("[{}]", "1".repeat(200));
        assert_eq!(
            reprint(&long, false).as_deref(),
            Some("[1.1111111111111111e+199]")
        );
        assert_eq!(reprint(&"1".repeat(400), false).as_deref(), Some("null"));
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert!(parse(deep.as_bytes()).is_some());
        let too_deep = format!("{}{}", "[".repeat(1001), "]".repeat(1001));
        assert_eq!(parse(too_deep.as_bytes()), None);
    }

    #[test]
    fn strings_escape_like_cjson() {
        let mut out = Vec::new();
        print_string(&mut out, b"b\xff\xfe\"\\\x01\x1f\x7f\n\t\x08\x0c\rz/\0tail");
        assert_eq!(
            out,
            b"\"b\xff\xfe\\\"\\\\\\u0001\\u001f\x7f\\n\\t\\b\\f\\rz/\""
        );
    }
}
