//! C's number parsing (`atoi`, `atol`, `atof`, `strtol`) and libmosquitto's UTF-8 and topic
//! checks, which decide what the tools accept, exactly as Mosquitto's do.

/// libmosquitto's `mosquitto_validate_utf8`: UTF-8 without non-characters or control
/// characters, at most 65,536 bytes.
pub(crate) fn valid_utf8(v: &[u8]) -> bool {
    if v.len() > 65536 {
        return false;
    }
    let Ok(s) = std::str::from_utf8(v) else {
        return false;
    };
    s.chars().all(|ch| {
        let cp = ch as u32;
        !((0xFDD0..=0xFDEF).contains(&cp)
            || (cp & 0xFFFF) >= 0xFFFE
            || cp <= 0x1F
            || (0x7F..=0x9F).contains(&cp))
    })
}

/// libmosquitto's `mosquitto_pub_topic_check` fails.
pub(crate) fn pub_topic_invalid(v: &[u8]) -> bool {
    v.len() > 65535 || v.iter().any(|&b| b == b'+' || b == b'#')
}

/// libmosquitto's `mosquitto_sub_topic_check` fails: `+` and `#` must fill a level, `#`
/// must be last.
pub(crate) fn sub_topic_invalid(v: &[u8]) -> bool {
    if v.len() > 65535 {
        return true;
    }
    let mut prev = b'/';
    for (i, &b) in v.iter().enumerate() {
        let next = v.get(i + 1).copied();
        match b {
            b'+' if prev != b'/' || !matches!(next, None | Some(b'/')) => return true,
            b'#' if prev != b'/' || next.is_some() => return true,
            _ => {}
        }
        prev = b;
    }
    false
}

/// C's `strtol(s, NULL, 10)` (leading blanks, a sign, digits; saturating).
pub(crate) fn atol(s: &[u8]) -> i64 {
    let s = skip_blanks(s);
    let (negative, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &b in s.iter().take_while(|b| b.is_ascii_digit()) {
        let d = i64::from(b - b'0');
        n = match n.checked_mul(10).and_then(|n| n.checked_add(d)) {
            Some(n) => n,
            None => return if negative { i64::MIN } else { i64::MAX },
        };
    }
    if negative { -n } else { n }
}

/// C's `atoi`: `strtol` truncated to an `int`.
pub(crate) fn atoi(s: &[u8]) -> i32 {
    atol(s) as i32
}

fn skip_blanks(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r'))
        .unwrap_or(s.len());
    &s[start..]
}

/// C's `atof` for decimal numbers: the longest prefix that reads as one, else 0.
pub(crate) fn atof(s: &[u8]) -> f64 {
    let s = skip_blanks(s);
    let mut end = 0;
    let mut best = 0.0;
    // Try every prefix made of number characters; keep the longest that parses.
    while end < s.len() && matches!(s[end], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
        end += 1;
        if let Ok(t) = std::str::from_utf8(&s[..end])
            && let Ok(v) = t.parse::<f64>()
        {
            best = v;
        }
    }
    best
}

/// C's `strtol(s, &end, 0)` where the whole argument must be the number: decimal, `0x` hex
/// or `0` octal, with a sign and leading blanks. `None` if anything is left over.
pub(crate) fn strtol_whole(s: &[u8]) -> Option<i64> {
    let t = skip_blanks(s);
    let (negative, t) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if (t.starts_with(b"0x") || t.starts_with(b"0X"))
        && t.get(2).is_some_and(u8::is_ascii_hexdigit)
    {
        (16, &t[2..])
    } else if t.starts_with(b"0") {
        (8, t)
    } else {
        (10, t)
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &b in digits {
        let d = char::from(b).to_digit(radix)?;
        n = n
            .saturating_mul(i64::from(radix))
            .saturating_add(i64::from(d));
    }
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_numbers() {
        assert_eq!(atoi(b" 42x"), 42);
        assert_eq!(atoi(b"-7"), -7);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b"4294967297"), 1);
        assert_eq!(atol(b"99999999999"), 99_999_999_999);
        assert_eq!(atof(b"0.25s"), 0.25);
        assert_eq!(atof(b"x"), 0.0);
        assert_eq!(strtol_whole(b"0x10"), Some(16));
        assert_eq!(strtol_whole(b"010"), Some(8));
        assert_eq!(strtol_whole(b"1x"), None);
        assert_eq!(strtol_whole(b""), None);
        assert_eq!(strtol_whole(b"-1"), Some(-1));
    }

    #[test]
    fn topic_checks_are_mosquittos() {
        assert!(!sub_topic_invalid(b"a/+/b/#"));
        assert!(!sub_topic_invalid(b"+"));
        assert!(!sub_topic_invalid(b""));
        assert!(sub_topic_invalid(b"a+"));
        assert!(sub_topic_invalid(b"a/#/b"));
        assert!(sub_topic_invalid(b"#a"));
        assert!(pub_topic_invalid(b"a/+"));
        assert!(!valid_utf8(b"a\tb"));
        assert!(!valid_utf8("a\u{FFFF}".as_bytes()));
        assert!(valid_utf8("caf\u{e9}".as_bytes()));
    }
}
