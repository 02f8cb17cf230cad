//! Local time and `strftime` as glibc computes them in the C locale: what `mosquitto_sub`
//! prints for `@` specifiers, `%I`, `%U` and the JSON `tst` field.
//!
//! Mosquitto calls `localtime()`, so the zone is resolved the way glibc's `tzset` does it:
//! `TZ` unset means `/etc/localtime`; `TZ=""` means `Universal`; a leading `:` is dropped; the
//! value is first tried as a TZif file (relative names under `$TZDIR`, default
//! `/usr/share/zoneinfo`), then parsed as a POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`).
//! Not reproduced: leap-second corrections of the `right/` zones and glibc's use of the
//! `posixrules` file for a rule string that names a DST zone but gives no rule (we use the
//! built-in US rule `M3.2.0,M11.1.0`, which is what that file holds on Debian today).

use std::sync::Arc;

const SECS_PER_DAY: i64 = 86_400;

/// A time zone, resolved once (mosquitto resolves it on every message, but `TZ` and the zone
/// files do not change while a subscriber runs). Shared, so cloning a format is cheap.
#[derive(Debug, Clone)]
pub(crate) struct TimeZone(Arc<Zone>);

#[derive(Debug, Clone)]
enum Zone {
    /// A POSIX TZ rule string (also the fallback when nothing else applies).
    Rule(PosixTz),
    /// A compiled TZif file.
    File(TzFile),
}

/// One local time type: offset east of UTC, DST flag and abbreviation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalType {
    utoff: i64,
    isdst: bool,
    abbr: String,
}

#[derive(Debug, Clone)]
struct TzFile {
    /// Transition instants, ascending.
    transitions: Vec<i64>,
    /// For each transition, the index into `types` that applies from it.
    type_of: Vec<usize>,
    types: Vec<LocalType>,
    /// The footer rule, used after the last transition.
    footer: Option<PosixTz>,
}

#[derive(Debug, Clone)]
struct PosixTz {
    std: LocalType,
    dst: Option<Dst>,
}

#[derive(Debug, Clone)]
struct Dst {
    zone: LocalType,
    /// When DST starts (given in standard local time).
    start: Rule,
    /// When DST ends (given in daylight local time).
    end: Rule,
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    date: RuleDate,
    /// Local time of day of the change, seconds (may be negative or past 24h).
    secs: i64,
}

#[derive(Debug, Clone, Copy)]
enum RuleDate {
    /// `Jn`: day 1..=365, February 29 never counted.
    Julian1(i64),
    /// `n`: zero-based day of the year, February 29 counted.
    Julian0(i64),
    /// `Mm.n.d`: day `d` (0 = Sunday) of week `n` (5 = last) of month `m`.
    Month { m: i64, n: i64, d: i64 },
}

/// A broken-down local time: glibc's `struct tm` with its zone fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tm {
    /// Seconds since the Unix epoch (what `%s` prints).
    pub(crate) epoch: i64,
    /// Full year, e.g. 2026.
    pub(crate) year: i64,
    /// Month, 1..=12.
    pub(crate) mon: i64,
    /// Day of the month, 1..=31.
    pub(crate) mday: i64,
    /// Hours, 0..=23.
    pub(crate) hour: i64,
    /// Minutes, 0..=59.
    pub(crate) min: i64,
    /// Seconds, 0..=59.
    pub(crate) sec: i64,
    /// Day of the week, 0 = Sunday.
    pub(crate) wday: i64,
    /// Day of the year, 0-based.
    pub(crate) yday: i64,
    /// Offset east of UTC, seconds.
    pub(crate) utoff: i64,
    /// Zone abbreviation (`%Z`).
    pub(crate) zone: String,
}

impl TimeZone {
    /// UTC, abbreviated "UTC".
    pub(crate) fn utc() -> TimeZone {
        TimeZone(Arc::new(Zone::Rule(PosixTz::fixed(0, "UTC"))))
    }

    /// The zone glibc's `localtime()` would use in this process (reads `TZ`).
    pub(crate) fn from_env() -> TimeZone {
        let tz = std::env::var_os("TZ").map(|v| v.to_string_lossy().into_owned());
        TimeZone::from_tz_value(tz.as_deref())
    }

    /// The zone for a given value of `TZ` (`None`: unset).
    pub(crate) fn from_tz_value(tz: Option<&str>) -> TimeZone {
        let name = match tz {
            None => "/etc/localtime",
            Some("") => "Universal",
            Some(v) => v.strip_prefix(':').unwrap_or(v),
        };
        if let Some(file) = read_tzfile(name) {
            return TimeZone(Arc::new(Zone::File(file)));
        }
        if tz.is_none() || tz == Some("") || name == "/etc/localtime" {
            return TimeZone::utc();
        }
        TimeZone(Arc::new(Zone::Rule(PosixTz::parse(name.as_bytes()))))
    }

    /// Converts seconds since the epoch to local time.
    pub(crate) fn local_time(&self, epoch: i64) -> Tm {
        let lt = match &*self.0 {
            Zone::Rule(rule) => rule.local_type(epoch),
            Zone::File(file) => file.local_type(epoch),
        };
        let local = epoch.saturating_add(lt.utoff);
        let days = local.div_euclid(SECS_PER_DAY);
        let secs = local.rem_euclid(SECS_PER_DAY);
        let (year, mon, mday) = civil_from_days(days);
        Tm {
            epoch,
            year,
            mon,
            mday,
            hour: secs / 3600,
            min: secs / 60 % 60,
            sec: secs % 60,
            wday: (days + 4).rem_euclid(7),
            yday: days - days_from_civil(year, 1, 1),
            utoff: lt.utoff,
            zone: lt.abbr,
        }
    }
}

/// Reads a TZif file the way glibc's `tzfile_read` finds it.
fn read_tzfile(name: &str) -> Option<TzFile> {
    let path = if name.starts_with('/') {
        std::path::PathBuf::from(name)
    } else {
        let dir = std::env::var_os("TZDIR")
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/usr/share/zoneinfo".into());
        std::path::Path::new(&dir).join(name)
    };
    TzFile::parse(&std::fs::read(path).ok()?)
}

impl TzFile {
    /// Parses TZif (RFC 8536); for version 2 and later the 64-bit block and the footer.
    fn parse(data: &[u8]) -> Option<TzFile> {
        let header = |at: usize| -> Option<[usize; 6]> {
            if data.get(at..at + 4)? != b"TZif" {
                return None;
            }
            let mut counts = [0usize; 6];
            for (i, c) in counts.iter_mut().enumerate() {
                let b = data.get(at + 20 + 4 * i..at + 24 + 4 * i)?;
                *c = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            }
            Some(counts)
        };
        let block_len = |c: [usize; 6], time_size: usize| {
            let [isut, isstd, leap, time, typ, chars] = c;
            time * time_size + time + typ * 6 + chars + leap * (time_size + 4) + isstd + isut
        };
        let v1 = header(0)?;
        let version = *data.get(4)?;
        let (counts, start, time_size) = if version >= b'2' {
            let at = 44 + block_len(v1, 4);
            (header(at)?, at + 44, 8)
        } else {
            (v1, 44, 4)
        };
        let [_, _, _, timecnt, typecnt, charcnt] = counts;
        let body = data.get(start..start + block_len(counts, time_size))?;
        if typecnt == 0 {
            return None;
        }
        let mut p = 0;
        let mut transitions = Vec::with_capacity(timecnt);
        for _ in 0..timecnt {
            let b = &body[p..p + time_size];
            transitions.push(if time_size == 8 {
                i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            } else {
                i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            });
            p += time_size;
        }
        let type_of: Vec<usize> = body[p..p + timecnt].iter().map(|&i| i as usize).collect();
        p += timecnt;
        let chars = &body[p + typecnt * 6..p + typecnt * 6 + charcnt];
        let mut types = Vec::with_capacity(typecnt);
        for t in body[p..p + typecnt * 6].chunks_exact(6) {
            let abbr = chars.get(t[5] as usize..).unwrap_or_default();
            let abbr = &abbr[..abbr.iter().position(|&b| b == 0).unwrap_or(abbr.len())];
            types.push(LocalType {
                utoff: i64::from(i32::from_be_bytes([t[0], t[1], t[2], t[3]])),
                isdst: t[4] != 0,
                abbr: String::from_utf8_lossy(abbr).into_owned(),
            });
        }
        if type_of.iter().any(|&i| i >= typecnt) {
            return None;
        }
        let mut footer = None;
        if version >= b'2' {
            let rest = &data[start + body.len()..];
            if let Some(rest) = rest.strip_prefix(b"\n") {
                let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                if end > 0 {
                    footer = Some(PosixTz::parse(&rest[..end]));
                }
            }
        }
        Some(TzFile {
            transitions,
            type_of,
            types,
            footer,
        })
    }

    fn local_type(&self, t: i64) -> LocalType {
        match (self.transitions.first(), self.transitions.last()) {
            (Some(&first), Some(&last)) if t >= first => {
                if t >= last
                    && let Some(footer) = &self.footer
                {
                    return footer.local_type(t);
                }
                let i = self.transitions.partition_point(|&x| x <= t) - 1;
                self.types[self.type_of[i]].clone()
            }
            // Before the first transition (or none at all): the first standard-time type.
            _ => self
                .types
                .iter()
                .find(|t| !t.isdst)
                .unwrap_or(&self.types[0])
                .clone(),
        }
    }
}

impl PosixTz {
    fn fixed(utoff: i64, abbr: &str) -> PosixTz {
        PosixTz {
            std: LocalType {
                utoff,
                isdst: false,
                abbr: abbr.to_owned(),
            },
            dst: None,
        }
    }

    /// Parses a POSIX TZ string with glibc's leniency: what cannot be parsed falls back to
    /// offset 0 and no DST, keeping whatever name was read.
    fn parse(s: &[u8]) -> PosixTz {
        let mut p = 0;
        let Some(std_name) = parse_tz_name(s, &mut p) else {
            return PosixTz::fixed(0, "");
        };
        let Some(std_off) = parse_tz_offset(s, &mut p) else {
            return PosixTz::fixed(0, &std_name);
        };
        let std = PosixTz::fixed(std_off, &std_name);
        if p == s.len() {
            return std;
        }
        let Some(dst_name) = parse_tz_name(s, &mut p) else {
            return std;
        };
        let dst_off = parse_tz_offset(s, &mut p).unwrap_or(std_off + 3600);
        let (start, end) = match &s[p..] {
            [] | [b','] => (
                Rule {
                    date: RuleDate::Month { m: 3, n: 2, d: 0 },
                    secs: 7200,
                },
                Rule {
                    date: RuleDate::Month { m: 11, n: 1, d: 0 },
                    secs: 7200,
                },
            ),
            _ => match parse_tz_rule(s, &mut p).zip(parse_tz_rule(s, &mut p)) {
                Some(rules) => rules,
                None => return std,
            },
        };
        PosixTz {
            dst: Some(Dst {
                zone: LocalType {
                    utoff: dst_off,
                    isdst: true,
                    abbr: dst_name,
                },
                start,
                end,
            }),
            ..std
        }
    }

    fn local_type(&self, t: i64) -> LocalType {
        let Some(dst) = &self.dst else {
            return self.std.clone();
        };
        // glibc evaluates both rules for the UTC year of `t`.
        let (year, _, _) = civil_from_days(t.div_euclid(SECS_PER_DAY));
        let start = dst.start.change(year, self.std.utoff);
        let end = dst.end.change(year, dst.zone.utoff);
        let in_dst = if start > end {
            t < end || t >= start
        } else {
            t >= start && t < end
        };
        if in_dst {
            dst.zone.clone()
        } else {
            self.std.clone()
        }
    }
}

impl Rule {
    /// The instant of this change in `year`, for a rule stated in local time at `utoff`.
    fn change(self, year: i64, utoff: i64) -> i64 {
        let jan1 = days_from_civil(year, 1, 1);
        let day = match self.date {
            RuleDate::Julian1(d) => jan1 + d - 1 + i64::from(d >= 60 && is_leap(year)),
            RuleDate::Julian0(d) => jan1 + d,
            RuleDate::Month { m, n, d } => {
                let first = days_from_civil(year, m, 1);
                let month_len = days_from_civil(year + m / 12, m % 12 + 1, 1) - first;
                let mut offset = (d - (first + 4).rem_euclid(7)).rem_euclid(7);
                for _ in 1..n {
                    if offset + 7 >= month_len {
                        break;
                    }
                    offset += 7;
                }
                first + offset
            }
        };
        day * SECS_PER_DAY - utoff + self.secs
    }
}

/// A zone name: `<...>` (alphanumerics, `+`, `-`) or letters, at least three characters.
fn parse_tz_name(s: &[u8], p: &mut usize) -> Option<String> {
    let rest = &s[*p..];
    let (name, used) = if let Some(quoted) = rest.strip_prefix(b"<") {
        let len = quoted
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'+' || **b == b'-')
            .count();
        if quoted.get(len) != Some(&b'>') {
            return None;
        }
        (&quoted[..len], len + 2)
    } else {
        let len = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        (&rest[..len], len)
    };
    if name.len() < 3 {
        return None;
    }
    *p += used;
    Some(String::from_utf8_lossy(name).into_owned())
}

/// `[+-]hh[:mm[:ss]]` as seconds east of UTC (POSIX counts west, hence the sign flip).
fn parse_tz_offset(s: &[u8], p: &mut usize) -> Option<i64> {
    let mut q = *p;
    let west = match s.get(q) {
        Some(b'-') => {
            q += 1;
            false
        }
        Some(b'+') => {
            q += 1;
            true
        }
        _ => true,
    };
    let secs = parse_hms(s, &mut q, [24, 59, 59])?;
    *p = q;
    Some(if west { -secs } else { secs })
}

/// `hh[:mm[:ss]]`, each part clamped to `max` like glibc does; `None` without digits.
fn parse_hms(s: &[u8], p: &mut usize, max: [i64; 3]) -> Option<i64> {
    let mut total = 0;
    for (i, (unit, max)) in [3600, 60, 1].into_iter().zip(max).enumerate() {
        let mut q = *p;
        if i > 0 {
            if s.get(q) != Some(&b':') {
                break;
            }
            q += 1;
        }
        let digits = s[q.min(s.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            if i == 0 {
                return None;
            }
            break;
        }
        let value = s[q..q + digits]
            .iter()
            .fold(0i64, |v, d| (v * 10 + i64::from(d - b'0')).min(65_535));
        total += value.min(max) * unit;
        *p = q + digits;
    }
    Some(total)
}

/// `,date[/time]` of a DST rule.
fn parse_tz_rule(s: &[u8], p: &mut usize) -> Option<Rule> {
    let mut q = *p + usize::from(s.get(*p) == Some(&b','));
    let number = |q: &mut usize| -> Option<i64> {
        let digits = s[*q..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let v = s[*q..*q + digits]
            .iter()
            .fold(0i64, |v, d| (v * 10 + i64::from(d - b'0')).min(1 << 20));
        *q += digits;
        Some(v)
    };
    let date = match s.get(q) {
        Some(b'J') => {
            q += 1;
            let d = number(&mut q)?;
            if !(1..=365).contains(&d) {
                return None;
            }
            RuleDate::Julian1(d)
        }
        Some(b'0'..=b'9') => {
            let d = number(&mut q)?;
            if d > 365 {
                return None;
            }
            RuleDate::Julian0(d)
        }
        Some(b'M') => {
            q += 1;
            let m = number(&mut q)?;
            let n = s.get(q).filter(|&&b| b == b'.').and_then(|_| {
                q += 1;
                number(&mut q)
            })?;
            let d = s.get(q).filter(|&&b| b == b'.').and_then(|_| {
                q += 1;
                number(&mut q)
            })?;
            if !(1..=12).contains(&m) || !(1..=5).contains(&n) || d > 6 {
                return None;
            }
            RuleDate::Month { m, n, d }
        }
        _ => return None,
    };
    let mut secs = 7200;
    match s.get(q) {
        None | Some(b',') => {}
        Some(b'/') => {
            q += 1;
            let negative = s.get(q) == Some(&b'-');
            q += usize::from(negative);
            if q >= s.len() && !negative {
                return None;
            }
            secs = parse_hms(s, &mut q, [i64::MAX; 3]).unwrap_or(7200);
            if negative {
                secs = -secs;
            }
        }
        Some(_) => return None,
    }
    *p = q;
    Some(Rule { date, secs })
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month 1..=12, day)` of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// glibc `strftime` in the C locale. Conversions glibc does not know (and a trailing `%`)
/// are copied through, as glibc does.
pub(crate) fn strftime(out: &mut Vec<u8>, fmt: &[u8], tm: &Tm) {
    let mut i = 0;
    while i < fmt.len() {
        if fmt[i] == b'%' && i + 1 < fmt.len() {
            conversion(out, fmt[i + 1], tm);
            i += 2;
        } else {
            out.push(fmt[i]);
            i += 1;
        }
    }
}

/// The ISO 8601 week-based year and week number (`%G`, `%V`).
fn iso_week(tm: &Tm) -> (i64, i64) {
    // Days since the Monday of ISO week 1 of the year `tm.yday` is counted in.
    let week_days = |yday: i64| yday - (yday - tm.wday + 382).rem_euclid(7) + 3;
    let mut year = tm.year;
    let mut days = week_days(tm.yday);
    if days < 0 {
        year -= 1;
        days = week_days(tm.yday + 365 + i64::from(is_leap(year)));
    } else {
        let next = week_days(tm.yday - 365 - i64::from(is_leap(year)));
        if next >= 0 {
            year += 1;
            days = next;
        }
    }
    (year, days / 7 + 1)
}

fn conversion(out: &mut Vec<u8>, c: u8, tm: &Tm) {
    let hour12 = if tm.hour % 12 == 0 { 12 } else { tm.hour % 12 };
    let text = match c {
        b'a' => DAYS[tm.wday as usize][..3].to_owned(),
        b'A' => DAYS[tm.wday as usize].to_owned(),
        b'b' | b'h' => MONTHS[(tm.mon - 1) as usize][..3].to_owned(),
        b'B' => MONTHS[(tm.mon - 1) as usize].to_owned(),
        b'c' => return strftime(out, b"%a %b %e %H:%M:%S %Y", tm),
        b'C' => format!("{:02}", tm.year.div_euclid(100)),
        b'd' => format!("{:02}", tm.mday),
        b'D' | b'x' => return strftime(out, b"%m/%d/%y", tm),
        b'e' => format!("{:2}", tm.mday),
        b'F' => return strftime(out, b"%Y-%m-%d", tm),
        b'g' => format!("{:02}", iso_week(tm).0.rem_euclid(100)),
        b'G' => iso_week(tm).0.to_string(),
        b'H' => format!("{:02}", tm.hour),
        b'I' => format!("{hour12:02}"),
        b'j' => format!("{:03}", tm.yday + 1),
        b'k' => format!("{:2}", tm.hour),
        b'l' => format!("{hour12:2}"),
        b'm' => format!("{:02}", tm.mon),
        b'M' => format!("{:02}", tm.min),
        b'n' => "\n".to_owned(),
        b'p' => (if tm.hour < 12 { "AM" } else { "PM" }).to_owned(),
        b'P' => (if tm.hour < 12 { "am" } else { "pm" }).to_owned(),
        b'r' => return strftime(out, b"%I:%M:%S %p", tm),
        b'R' => return strftime(out, b"%H:%M", tm),
        b's' => tm.epoch.to_string(),
        b'S' => format!("{:02}", tm.sec),
        b't' => "\t".to_owned(),
        b'T' | b'X' => return strftime(out, b"%H:%M:%S", tm),
        b'u' => (if tm.wday == 0 { 7 } else { tm.wday }).to_string(),
        b'U' => format!("{:02}", (tm.yday - tm.wday + 7) / 7),
        b'V' => format!("{:02}", iso_week(tm).1),
        b'w' => tm.wday.to_string(),
        b'W' => format!("{:02}", (tm.yday - (tm.wday + 6) % 7 + 7) / 7),
        b'y' => format!("{:02}", tm.year.rem_euclid(100)),
        b'Y' => tm.year.to_string(),
        b'z' => {
            // glibc writes "-0000" for a zero offset whose abbreviation starts with '-'.
            let negative = tm.utoff < 0 || (tm.utoff == 0 && tm.zone.starts_with('-'));
            let minutes = tm.utoff.abs() / 60;
            format!(
                "{}{:04}",
                if negative { '-' } else { '+' },
                minutes / 60 * 100 + minutes % 60
            )
        }
        b'Z' => tm.zone.clone(),
        b'%' => "%".to_owned(),
        other => {
            out.extend_from_slice(&[b'%', other]);
            return;
        }
    };
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(zone: &TimeZone, epoch: i64, f: &str) -> String {
        let mut out = Vec::new();
        strftime(&mut out, f.as_bytes(), &zone.local_time(epoch));
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 59, 60, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn utc_conversions() {
        let utc = TimeZone::utc();
        // 2026-11-22 01:11:51 UTC, a Sunday.
        let t = 1_795_309_911;
        assert_eq!(
            fmt(
                &utc,
                t,
                "%a %A %b %B %c|%C %d %D %e %F %g %G %h %H %I %j %k %l %m %M"
            ),
            "Sun Sunday Nov November Sun Nov 22 01:11:51 2026|20 22 11/22/26 22 2026-11-22 26 \
             2026 Nov 01 01 326  1  1 11 11"
        );
        assert_eq!(
            fmt(
                &utc,
                t,
                "%n%p %P %r %R %s %S%t%T %u %U %V %w %W %x %X %y %Y %z %Z %% %E %+"
            ),
            "\nAM am 01:11:51 AM 01:11 1795309911 51\t01:11:51 7 47 47 0 46 11/22/26 01:11:51 \
             26 2026 +0000 UTC % %E %+"
        );
    }

    #[test]
    fn posix_rules() {
        let berlin = TimeZone::from_tz_value(Some("CET-1CEST,M3.5.0,M10.5.0/3"));
        // 2026-03-29 00:59:59 UTC is the last second of CET; DST starts at 01:00 UTC.
        assert_eq!(
            fmt(&berlin, 1_774_745_999, "%T %Z %z"),
            "01:59:59 CET +0100"
        );
        assert_eq!(
            fmt(&berlin, 1_774_746_000, "%T %Z %z"),
            "03:00:00 CEST +0200"
        );
        // 2026-10-25 01:00:00 UTC: back to CET.
        assert_eq!(fmt(&berlin, 1_792_890_000, "%T %Z"), "02:00:00 CET");
        assert_eq!(fmt(&berlin, 1_792_889_999, "%T %Z"), "02:59:59 CEST");
        let south = TimeZone::from_tz_value(Some("AEST-10AEDT,M10.1.0,M4.1.0/3"));
        assert_eq!(
            fmt(&south, 1_767_225_600, "%F %T %Z"),
            "2026-01-01 11:00:00 AEDT"
        );
        assert_eq!(
            fmt(&south, 1_782_864_000, "%F %T %Z"),
            "2026-07-01 10:00:00 AEST"
        );
        let quoted = TimeZone::from_tz_value(Some("<+0330>-3:30"));
        assert_eq!(fmt(&quoted, 0, "%T %Z %z"), "03:30:00 +0330 +0330");
        assert_eq!(
            fmt(&TimeZone::from_tz_value(Some("AB")), 0, "%Z|%z"),
            "|+0000"
        );
        let odd = TimeZone::from_tz_value(Some("XYZ+1:30:15"));
        assert_eq!(fmt(&odd, 0, "%T %Z %z"), "22:29:45 XYZ -0130");
    }

    /// Compares with glibc through `date` (coreutils), which uses the same zone code.
    #[test]
    fn zones_match_date_command() {
        let zones = [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "America/St_Johns",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
            "Pacific/Chatham",
            "EST5EDT",
            "CET-1CEST,M3.5.0,M10.5.0/3",
            "garbage",
            "Nonexistent/Zone",
            "",
        ];
        let times = [
            0i64,
            951_782_400,
            1_774_745_999,
            1_774_746_000,
            1_795_309_911,
            2_147_483_647,
            4_102_444_800,
        ];
        let format = "%Y-%m-%d %H:%M:%S %Z %z %G %V %U %W %j %u";
        for zone in zones {
            let tz = TimeZone::from_tz_value(Some(zone));
            for t in times {
                let Ok(out) = std::process::Command::new("date")
                    .env("TZ", zone)
                    .arg("-d")
                    .arg(format!("@{t}"))
                    .arg(format!("+{format}"))
                    .output()
                else {
                    return; // no `date`: nothing to compare with
                };
                let expected = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
                assert_eq!(fmt(&tz, t, format), expected, "TZ={zone:?} t={t}");
            }
        }
    }
}
