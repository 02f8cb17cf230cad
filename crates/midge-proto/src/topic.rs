//! Topic Names and Topic Filters (MQTT 5.0 §4.7 and §4.8.2, MQTT 3.1.1 §4.7).
//!
//! [`TopicName`] is what a PUBLISH (or a Will) is sent to; [`TopicFilter`] is what a SUBSCRIBE
//! or UNSUBSCRIBE names, possibly a Shared Subscription `$share/{ShareName}/{filter}`. Both are
//! validated on construction and keep their text in a [`ByteString`], so a value decoded from a
//! packet buffer shares that buffer and clones cheaply.
//!
//! Normative ids are cited with MQTT 5.0 numbering; MQTT 3.1.1 states the same rules for names
//! and filters as `[MQTT-4.7.1-1]` (no wildcards in names), `[MQTT-4.7.1-2]` (`#`) and
//! `[MQTT-4.7.1-3]` (`+`).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use bytestring::ByteString;

/// The longest Topic Name or Topic Filter in bytes, 65,535 (`[MQTT-4.7.3-3]`).
pub const MAX_TOPIC_LEN: usize = u16::MAX as usize;

/// The prefix that marks a Shared Subscription's Topic Filter (`[MQTT-4.8.2-1]`).
pub const SHARED_PREFIX: &str = "$share/";

/// The topic level separator `/` (§4.7.1.1).
const SEPARATOR: u8 = b'/';
/// The multi-level wildcard `#` (§4.7.1.2).
const MULTI_LEVEL: u8 = b'#';
/// The single-level wildcard `+` (§4.7.1.3).
const SINGLE_LEVEL: u8 = b'+';

/// Why a string is not a valid Topic Name or Topic Filter.
///
/// Every message starts with the normative statement it enforces; [`TopicError::spec_id`]
/// returns that id alone. A server answers an invalid Topic Name with Reason Code 0x90 (Topic
/// Name invalid) and an invalid Topic Filter with 0x8F (Topic Filter invalid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The name or filter is the empty string (`[MQTT-4.7.3-1]`).
    #[error("[MQTT-4.7.3-1] topic names and topic filters must be at least one character long")]
    Empty,
    /// The name or filter is longer than 65,535 bytes (`[MQTT-4.7.3-3]`).
    #[error("[MQTT-4.7.3-3] topic names and topic filters must not exceed 65535 bytes, got {len}")]
    TooLong {
        /// The length in bytes.
        len: usize,
    },
    /// The name or filter contains U+0000 (`[MQTT-4.7.3-2]`, `[MQTT-1.5.4-2]`).
    #[error("[MQTT-4.7.3-2] topic names and topic filters must not contain the null character")]
    NullCharacter,
    /// A Topic Name contains `+` or `#` (`[MQTT-4.7.0-1]`, `[MQTT-3.3.2-2]`).
    #[error("[MQTT-4.7.0-1] a topic name must not contain the wildcard characters `+` or `#`")]
    WildcardInName,
    /// A `#` that is not a whole level, or not the last character, of a filter
    /// (`[MQTT-4.7.1-1]`).
    #[error(
        "[MQTT-4.7.1-1] the multi-level wildcard `#` must be a whole level and the last character \
         of a topic filter"
    )]
    MisplacedMultiLevelWildcard,
    /// A `+` that does not occupy a whole level of a filter (`[MQTT-4.7.1-2]`).
    #[error("[MQTT-4.7.1-2] the single-level wildcard `+` must occupy an entire level of a filter")]
    MisplacedSingleLevelWildcard,
    /// `$share/` is not followed by a ShareName of at least one character (`[MQTT-4.8.2-1]`).
    #[error("[MQTT-4.8.2-1] a shared subscription needs a ShareName of at least one character")]
    EmptyShareName,
    /// The ShareName contains `+` or `#` (`[MQTT-4.8.2-2]`).
    #[error("[MQTT-4.8.2-2] a ShareName must not contain `+` or `#`")]
    InvalidShareName,
    /// The ShareName is not followed by `/` and a non-empty Topic Filter (`[MQTT-4.8.2-2]`).
    #[error("[MQTT-4.8.2-2] a ShareName must be followed by `/` and a topic filter")]
    MissingSharedFilter,
}

impl TopicError {
    /// The normative statement this error violates, without brackets, e.g. `"MQTT-4.7.1-1"`
    /// (MQTT 5.0 numbering).
    pub fn spec_id(&self) -> &'static str {
        match self {
            TopicError::Empty => "MQTT-4.7.3-1",
            TopicError::TooLong { .. } => "MQTT-4.7.3-3",
            TopicError::NullCharacter => "MQTT-4.7.3-2",
            TopicError::WildcardInName => "MQTT-4.7.0-1",
            TopicError::MisplacedMultiLevelWildcard => "MQTT-4.7.1-1",
            TopicError::MisplacedSingleLevelWildcard => "MQTT-4.7.1-2",
            TopicError::EmptyShareName => "MQTT-4.8.2-1",
            TopicError::InvalidShareName | TopicError::MissingSharedFilter => "MQTT-4.8.2-2",
        }
    }
}

/// Checks the rules shared by names and filters: length (`[MQTT-4.7.3-3]`), non-empty
/// (`[MQTT-4.7.3-1]`) and no U+0000 (`[MQTT-4.7.3-2]`).
fn check_common(s: &str) -> Result<(), TopicError> {
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: s.len() });
    }
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.as_bytes().contains(&0) {
        return Err(TopicError::NullCharacter);
    }
    Ok(())
}

/// Checks the wildcard placement of a (non-shared) filter and reports whether it has any
/// wildcard. The caller has already run [`check_common`].
fn check_filter_wildcards(filter: &str) -> Result<bool, TopicError> {
    let bytes = filter.as_bytes();
    let mut has_wildcards = false;
    let mut prev: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate() {
        let starts_level = prev.is_none_or(|p| p == SEPARATOR);
        let next = bytes.get(i + 1).copied();
        match b {
            // [MQTT-4.7.1-1]: on its own or after a separator, and the last character.
            MULTI_LEVEL => {
                if !starts_level || next.is_some() {
                    return Err(TopicError::MisplacedMultiLevelWildcard);
                }
                has_wildcards = true;
            }
            // [MQTT-4.7.1-2]: occupies an entire level.
            SINGLE_LEVEL => {
                if !starts_level || next.is_some_and(|n| n != SEPARATOR) {
                    return Err(TopicError::MisplacedSingleLevelWildcard);
                }
                has_wildcards = true;
            }
            _ => {}
        }
        prev = Some(b);
    }
    Ok(has_wildcards)
}

/// A Topic Name as used in PUBLISH and in the Will: at least one character
/// (`[MQTT-4.7.3-1]`, except the [alias placeholder](TopicName::empty_for_alias)), at most
/// 65,535 bytes (`[MQTT-4.7.3-3]`), no `+` or `#` (`[MQTT-4.7.0-1]`, `[MQTT-3.3.2-2]`) and no
/// U+0000 (`[MQTT-4.7.3-2]`).
///
/// Equality, ordering and hashing are those of the text, so `Borrow<str>` lets a map keyed by
/// `TopicName` be queried with a `&str`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(ByteString);

impl TopicName {
    /// Validates `name` as a Topic Name.
    pub fn new(name: impl Into<ByteString>) -> Result<TopicName, TopicError> {
        let name = name.into();
        check_common(&name)?;
        // [MQTT-4.7.0-1], [MQTT-3.3.2-2]
        if name
            .as_bytes()
            .iter()
            .any(|&b| b == SINGLE_LEVEL || b == MULTI_LEVEL)
        {
            return Err(TopicError::WildcardInName);
        }
        Ok(TopicName(name))
    }

    /// The zero-length Topic Name that an MQTT 5 PUBLISH carrying a Topic Alias may use
    /// (§3.3.2.3.4; without a Topic Alias a zero-length Topic Name is a Protocol Error,
    /// §3.3.2.1). Only the codec and Topic Alias resolution should create it: it is not a valid
    /// topic and matches no filter.
    pub const fn empty_for_alias() -> TopicName {
        TopicName(ByteString::new())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The underlying string; cloning it shares the buffer instead of copying.
    pub fn as_bytestring(&self) -> &ByteString {
        &self.0
    }

    /// Unwraps the underlying string.
    pub fn into_bytestring(self) -> ByteString {
        self.0
    }

    /// Whether this is the [zero-length alias placeholder](TopicName::empty_for_alias).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the name starts with `$` (such as `$SYS/...`): a filter whose first character is
    /// a wildcard does not match it (`[MQTT-4.7.2-1]`).
    pub fn is_system(&self) -> bool {
        self.0.starts_with('$')
    }

    /// The topic levels, split at `/`; empty levels are kept (`/a/` has three levels).
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TopicName").field(&self.as_str()).finish()
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Correct because the derived `Eq`, `Ord` and `Hash` are those of the text: `ByteString`
/// compares its bytes and hashes as `str`.
impl Borrow<str> for TopicName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for TopicName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for TopicName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl TryFrom<&str> for TopicName {
    type Error = TopicError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        TopicName::new(value)
    }
}

impl TryFrom<String> for TopicName {
    type Error = TopicError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        TopicName::new(value)
    }
}

impl TryFrom<ByteString> for TopicName {
    type Error = TopicError;

    fn try_from(value: ByteString) -> Result<Self, Self::Error> {
        TopicName::new(value)
    }
}

impl FromStr for TopicName {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TopicName::new(s)
    }
}

impl From<TopicName> for ByteString {
    fn from(name: TopicName) -> ByteString {
        name.0
    }
}

/// A Topic Filter as used in SUBSCRIBE and UNSUBSCRIBE, possibly a Shared Subscription
/// `$share/{ShareName}/{filter}` (MQTT 5.0 §4.8.2).
///
/// Validation: at least one character (`[MQTT-4.7.3-1]`), at most 65,535 bytes
/// (`[MQTT-4.7.3-3]`), no U+0000 (`[MQTT-4.7.3-2]`), `#` only as the whole last level
/// (`[MQTT-4.7.1-1]`), `+` only as a whole level (`[MQTT-4.7.1-2]`). A filter starting with
/// `$share/` must go on with a ShareName of at least one character (`[MQTT-4.8.2-1]`) without
/// `/`, `+` or `#`, then `/` and a non-empty valid filter (`[MQTT-4.8.2-2]`). `$share` alone
/// and `$sharefoo/x` are ordinary filters. The `$share/` form is recognised whatever the
/// protocol version; whether MQTT 3.1.1 clients may share subscriptions is the broker's call.
///
/// Equality, ordering and hashing are those of the full text, so `Borrow<str>` lets a map
/// keyed by `TopicFilter` be queried with a `&str` (UNSUBSCRIBE compares filters character by
/// character, `[MQTT-3.10.4-1]`).
#[derive(Clone)]
pub struct TopicFilter {
    /// The filter as sent on the wire, including any `$share/{ShareName}/` prefix.
    full: ByteString,
    /// Byte offset in `full` where the matched filter starts: 0 unless shared. Fits in `u16`
    /// because `full` is at most 65,535 bytes.
    filter_start: u16,
    /// Whether the matched filter contains `+` or `#`.
    wildcards: bool,
}

impl TopicFilter {
    /// Validates `filter` as a Topic Filter, recognising the Shared Subscription form.
    pub fn new(filter: impl Into<ByteString>) -> Result<TopicFilter, TopicError> {
        let full = filter.into();
        check_common(&full)?;
        let filter_start = match full.strip_prefix(SHARED_PREFIX) {
            None => 0,
            Some(rest) => {
                let (share_name, inner) = match rest.split_once('/') {
                    Some(parts) => parts,
                    None => (rest, ""),
                };
                // [MQTT-4.8.2-1]
                if share_name.is_empty() {
                    return Err(TopicError::EmptyShareName);
                }
                // [MQTT-4.8.2-2]: no `/` (split above), `+` or `#` in the ShareName.
                if share_name.contains(['+', '#']) {
                    return Err(TopicError::InvalidShareName);
                }
                // [MQTT-4.8.2-2]: followed by `/` and a Topic Filter ([MQTT-4.7.3-1]).
                if inner.is_empty() {
                    return Err(TopicError::MissingSharedFilter);
                }
                SHARED_PREFIX.len() + share_name.len() + 1
            }
        };
        let inner = full.get(filter_start..).unwrap_or_default();
        let wildcards = check_filter_wildcards(inner)?;
        // `filter_start < full.len() <= MAX_TOPIC_LEN` after `check_common`, so this never
        // fails; the fallback keeps the code free of panics.
        let filter_start =
            u16::try_from(filter_start).map_err(|_| TopicError::TooLong { len: full.len() })?;
        Ok(TopicFilter {
            full,
            filter_start,
            wildcards,
        })
    }

    /// The full filter as sent on the wire, including any `$share/{ShareName}/` prefix.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The underlying string of the full filter; cloning it shares the buffer.
    pub fn as_bytestring(&self) -> &ByteString {
        &self.full
    }

    /// Unwraps the underlying string of the full filter.
    pub fn into_bytestring(self) -> ByteString {
        self.full
    }

    /// The ShareName of a Shared Subscription: `Some("group")` for `$share/group/a/b`.
    pub fn share_name(&self) -> Option<&str> {
        if self.filter_start == 0 {
            return None;
        }
        self.full
            .get(SHARED_PREFIX.len()..usize::from(self.filter_start) - 1)
    }

    /// Whether this is a Shared Subscription (`$share/{ShareName}/{filter}`).
    pub fn is_shared(&self) -> bool {
        self.filter_start != 0
    }

    /// The filter that topics are matched against: `a/b` for `$share/group/a/b`, otherwise
    /// the whole filter.
    pub fn filter(&self) -> &str {
        self.full
            .get(usize::from(self.filter_start)..)
            .unwrap_or_default()
    }

    /// Whether [`filter`](TopicFilter::filter) contains a `+` or `#` wildcard.
    pub fn has_wildcards(&self) -> bool {
        self.wildcards
    }

    /// Whether `topic` matches [`filter`](TopicFilter::filter) (§4.7, see [`matches()`]). The
    /// [alias placeholder](TopicName::empty_for_alias) matches nothing.
    pub fn matches(&self, topic: &TopicName) -> bool {
        if self.wildcards {
            matches(self.filter(), topic.as_str())
        } else {
            !topic.is_empty() && self.filter() == topic.as_str()
        }
    }
}

impl PartialEq for TopicFilter {
    fn eq(&self, other: &Self) -> bool {
        self.full == other.full
    }
}

impl Eq for TopicFilter {}

impl PartialOrd for TopicFilter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TopicFilter {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for TopicFilter {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Only the text, exactly as `str` hashes, so that `Borrow<str>` is sound.
        self.as_str().hash(state);
    }
}

/// Correct because `Eq`, `Ord` and `Hash` are implemented on the full text alone (the other
/// fields are derived from it).
impl Borrow<str> for TopicFilter {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TopicFilter").field(&self.as_str()).finish()
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for TopicFilter {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for TopicFilter {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for TopicFilter {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl TryFrom<&str> for TopicFilter {
    type Error = TopicError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        TopicFilter::new(value)
    }
}

impl TryFrom<String> for TopicFilter {
    type Error = TopicError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        TopicFilter::new(value)
    }
}

impl TryFrom<ByteString> for TopicFilter {
    type Error = TopicError;

    fn try_from(value: ByteString) -> Result<Self, Self::Error> {
        TopicFilter::new(value)
    }
}

impl FromStr for TopicFilter {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TopicFilter::new(s)
    }
}

impl From<TopicFilter> for ByteString {
    fn from(filter: TopicFilter) -> ByteString {
        filter.full
    }
}

/// Whether the Topic Name `topic` matches the Topic Filter `filter` (without any `$share/`
/// prefix), following MQTT 5.0 §4.7:
///
/// - levels are separated by `/` and compared exactly, case-sensitively and without
///   normalisation (`[MQTT-4.7.3-4]`); empty levels count (`/finance` has two levels);
/// - `+` matches exactly one level, including an empty one (`sport/+` matches `sport/` but not
///   `sport`);
/// - `#` matches the parent level and any number of child levels (`sport/#` matches `sport`);
/// - a filter starting with `+` or `#` does not match a topic starting with `$`
///   (`[MQTT-4.7.2-1]`): `#` does not match `$SYS/x`, but `$SYS/#` does.
///
/// An empty `filter` or `topic` matches nothing. For a `filter` that is not a valid Topic
/// Filter the result is unspecified (but the function does not panic).
pub fn matches(filter: &str, topic: &str) -> bool {
    if filter.is_empty() || topic.is_empty() {
        return false;
    }
    // [MQTT-4.7.2-1]
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            // `#` is the last level of a valid filter and matches what is left, even nothing.
            (Some("#"), _) => return true,
            (Some(f), Some(t)) if f == "+" || f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn name(s: &str) -> TopicName {
        TopicName::new(s).unwrap_or_else(|e| panic!("{s:?} should be a valid name: {e}"))
    }

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap_or_else(|e| panic!("{s:?} should be a valid filter: {e}"))
    }

    #[test]
    fn valid_names() {
        for s in [
            "a",
            "/",
            "//",
            "a/b/c",
            "/finance",
            "sport/tennis/player1/",
            "$SYS/broker/load",
            "$share/group/a",
            "with space",
            "ünïcødé/✓",
            "a$b",
        ] {
            let n = name(s);
            assert_eq!(n.as_str(), s);
            assert!(!n.is_empty());
        }
    }

    #[test]
    fn invalid_names() {
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        let cases: &[(&str, TopicError)] = &[
            ("", TopicError::Empty),
            (
                &long,
                TopicError::TooLong {
                    len: MAX_TOPIC_LEN + 1,
                },
            ),
            ("a\0b", TopicError::NullCharacter),
            ("\0", TopicError::NullCharacter),
            ("+", TopicError::WildcardInName),
            ("#", TopicError::WildcardInName),
            ("a/+/b", TopicError::WildcardInName),
            ("a/#", TopicError::WildcardInName),
            ("sport+", TopicError::WildcardInName),
            ("a#b", TopicError::WildcardInName),
        ];
        for (s, expected) in cases {
            assert_eq!(TopicName::new(*s).as_ref(), Err(expected), "name {s:?}");
        }
        assert!(TopicName::new("a".repeat(MAX_TOPIC_LEN)).is_ok());
    }

    #[test]
    fn valid_filters() {
        let cases: &[(&str, Option<&str>, &str, bool)] = &[
            // (full, share name, matched filter, has wildcards)
            ("a", None, "a", false),
            ("/", None, "/", false),
            ("#", None, "#", true),
            ("+", None, "+", true),
            ("+/+", None, "+/+", true),
            ("/+", None, "/+", true),
            ("+/", None, "+/", true),
            ("sport/#", None, "sport/#", true),
            ("sport/tennis/+", None, "sport/tennis/+", true),
            ("+/tennis/#", None, "+/tennis/#", true),
            ("sport/+/player1", None, "sport/+/player1", true),
            ("/#", None, "/#", true),
            ("//#", None, "//#", true),
            ("$SYS/#", None, "$SYS/#", true),
            ("$share", None, "$share", false),
            ("$sharefoo/x", None, "$sharefoo/x", false),
            ("$SHARE/g/x", None, "$SHARE/g/x", false),
            ("$share/group/a/b", Some("group"), "a/b", false),
            (
                "$share/consumer1/sport/tennis/+",
                Some("consumer1"),
                "sport/tennis/+",
                true,
            ),
            (
                "$share/consumer1//finance",
                Some("consumer1"),
                "/finance",
                false,
            ),
            ("$share/g/#", Some("g"), "#", true),
            ("$share/g/+", Some("g"), "+", true),
            ("$share/g/$share/h/x", Some("g"), "$share/h/x", false),
            ("$share/$g/x", Some("$g"), "x", false),
        ];
        for &(s, share, matched, wild) in cases {
            let f = filter(s);
            assert_eq!(f.as_str(), s);
            assert_eq!(f.share_name(), share, "share name of {s:?}");
            assert_eq!(f.is_shared(), share.is_some(), "is_shared of {s:?}");
            assert_eq!(f.filter(), matched, "filter of {s:?}");
            assert_eq!(f.has_wildcards(), wild, "has_wildcards of {s:?}");
        }
        assert!(TopicFilter::new("a".repeat(MAX_TOPIC_LEN)).is_ok());
    }

    #[test]
    fn invalid_filters() {
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        let cases: &[(&str, TopicError)] = &[
            ("", TopicError::Empty),
            (
                &long,
                TopicError::TooLong {
                    len: MAX_TOPIC_LEN + 1,
                },
            ),
            ("a/\0", TopicError::NullCharacter),
            ("$share/g/a\0", TopicError::NullCharacter),
            ("sport/tennis#", TopicError::MisplacedMultiLevelWildcard),
            (
                "sport/tennis/#/ranking",
                TopicError::MisplacedMultiLevelWildcard,
            ),
            ("#/", TopicError::MisplacedMultiLevelWildcard),
            ("##", TopicError::MisplacedMultiLevelWildcard),
            ("a#", TopicError::MisplacedMultiLevelWildcard),
            ("#a", TopicError::MisplacedMultiLevelWildcard),
            ("+#", TopicError::MisplacedSingleLevelWildcard),
            ("/+#", TopicError::MisplacedSingleLevelWildcard),
            ("sport+", TopicError::MisplacedSingleLevelWildcard),
            ("+sport", TopicError::MisplacedSingleLevelWildcard),
            ("a/b+/c", TopicError::MisplacedSingleLevelWildcard),
            ("++", TopicError::MisplacedSingleLevelWildcard),
            ("$share/", TopicError::EmptyShareName),
            ("$share//a", TopicError::EmptyShareName),
            ("$share/gr+up/a", TopicError::InvalidShareName),
            ("$share/+/a", TopicError::InvalidShareName),
            ("$share/#/a", TopicError::InvalidShareName),
            ("$share/group", TopicError::MissingSharedFilter),
            ("$share/group/", TopicError::MissingSharedFilter),
            ("$share/g/a#", TopicError::MisplacedMultiLevelWildcard),
            ("$share/g/a+", TopicError::MisplacedSingleLevelWildcard),
        ];
        for (s, expected) in cases {
            assert_eq!(TopicFilter::new(*s).as_ref(), Err(expected), "filter {s:?}");
        }
    }

    #[test]
    fn errors_name_their_normative_statement() {
        let all = [
            TopicError::Empty,
            TopicError::TooLong { len: 70_000 },
            TopicError::NullCharacter,
            TopicError::WildcardInName,
            TopicError::MisplacedMultiLevelWildcard,
            TopicError::MisplacedSingleLevelWildcard,
            TopicError::EmptyShareName,
            TopicError::InvalidShareName,
            TopicError::MissingSharedFilter,
        ];
        for e in all {
            let message = e.to_string();
            assert!(
                message.starts_with(&format!("[{}] ", e.spec_id())),
                "{message:?} should start with [{}]",
                e.spec_id()
            );
        }
    }

    /// Spec §4.7.1.2, §4.7.1.3 and §4.7.2 examples, plus a few edge cases.
    #[test]
    fn spec_matching_examples() {
        let cases: &[(&str, &str, bool)] = &[
            // §4.7.1.2 multi-level wildcard
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/ranking",
                true,
            ),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
                true,
            ),
            ("sport/tennis/player1/#", "sport/tennis/player1/", true),
            ("sport/tennis/player1/#", "sport/tennis/player2", false),
            ("sport/tennis/player1/#", "sport/tennis", false),
            ("sport/#", "sport", true),
            ("sport/#", "sport/", true),
            ("sport/#", "sports", false),
            ("#", "sport/tennis", true),
            ("#", "/", true),
            ("#", "a", true),
            // §4.7.1.3 single-level wildcard
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player2", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+", "finance", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("+/tennis/#", "sport/tennis/player1/ranking", true),
            ("+/tennis/#", "sport/tennis", true),
            ("sport/+/player1", "sport/tennis/player1", true),
            ("sport/+/player1", "sport/tennis/player2", false),
            ("+/+/+", "a/b", false),
            ("+/#", "a", true),
            ("+/#", "a/b/c", true),
            // §4.7.2 topics beginning with $
            ("#", "$SYS/x", false),
            ("#", "$SYS", false),
            ("+", "$SYS", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("$SYS/#", "$SYS", true),
            ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
            ("+/monitor/Clients", "$SYS/monitor/Clients", false),
            ("/+", "/$SYS", true),
            ("a/+", "a/$b", true),
            // exact matches and case sensitivity ([MQTT-4.7.3-4])
            ("a/b", "a/b", true),
            ("a/b", "a/b/", false),
            ("a/b", "A/b", false),
            ("/", "/", true),
            // the free function takes the filter without `$share/` handling
            ("$share/g/a", "$share/g/a", true),
            // empty strings match nothing
            ("", "", false),
            ("#", "", false),
            ("", "a", false),
        ];
        for &(f, t, expected) in cases {
            assert_eq!(matches(f, t), expected, "matches({f:?}, {t:?})");
            if let (Ok(tf), Ok(tn)) = (TopicFilter::new(f), TopicName::new(t))
                && !tf.is_shared()
            {
                assert_eq!(tf.matches(&tn), expected, "{tf:?}.matches({tn:?})");
            }
        }
    }

    #[test]
    fn shared_filters_match_with_their_inner_filter() {
        let f = filter("$share/group/sport/+");
        assert!(f.matches(&name("sport/tennis")));
        assert!(!f.matches(&name("$share/group/sport/tennis")));
        let all = filter("$share/group/#");
        assert!(all.matches(&name("anything/at/all")));
        assert!(
            !all.matches(&name("$SYS/x")),
            "[MQTT-4.7.2-1] applies to the inner filter"
        );
    }

    #[test]
    fn the_alias_placeholder_matches_nothing() {
        let empty = TopicName::empty_for_alias();
        assert!(empty.is_empty());
        assert_eq!(empty.as_str(), "");
        for f in ["#", "+", "a"] {
            assert!(!filter(f).matches(&empty), "{f:?}");
        }
    }

    #[test]
    fn name_accessors() {
        let n = name("$SYS/a//b");
        assert!(n.is_system());
        assert!(!name("a/$SYS").is_system());
        assert_eq!(n.levels().collect::<Vec<_>>(), ["$SYS", "a", "", "b"]);
        assert_eq!(name("/").levels().collect::<Vec<_>>(), ["", ""]);
        assert_eq!(format!("{n:?}"), r#"TopicName("$SYS/a//b")"#);
        assert_eq!(n.to_string(), "$SYS/a//b");
        assert_eq!(n.as_ref(), "$SYS/a//b");
        assert_eq!(n, "$SYS/a//b");
        assert_eq!(&**n.as_bytestring(), "$SYS/a//b");
        assert_eq!(TopicName::try_from("x"), Ok(name("x")));
        assert_eq!(TopicName::try_from(String::from("x")), Ok(name("x")));
        assert_eq!("x".parse::<TopicName>(), Ok(name("x")));
        assert_eq!(ByteString::from(name("x")), ByteString::from_static("x"));
    }

    #[test]
    fn filter_accessors() {
        let f = filter("$share/g/a/#");
        assert_eq!(format!("{f:?}"), r#"TopicFilter("$share/g/a/#")"#);
        assert_eq!(f.to_string(), "$share/g/a/#");
        assert_eq!(f.as_ref(), "$share/g/a/#");
        assert_eq!(f, "$share/g/a/#");
        assert_eq!(TopicFilter::try_from("a/+"), Ok(filter("a/+")));
        assert_eq!(
            TopicFilter::try_from(String::from("a/+")),
            Ok(filter("a/+"))
        );
        assert_eq!("a/+".parse::<TopicFilter>(), Ok(filter("a/+")));
        assert_eq!(
            f.clone().into_bytestring(),
            ByteString::from_static("$share/g/a/#")
        );
    }

    #[test]
    fn maps_can_be_queried_by_str() {
        let names: HashSet<TopicName> = [name("a/b"), name("c")].into_iter().collect();
        assert!(names.contains("a/b"));
        assert!(!names.contains("a"));
        let filters: HashSet<TopicFilter> =
            [filter("$share/g/a"), filter("a/#")].into_iter().collect();
        assert!(filters.contains("$share/g/a"));
        assert!(filters.contains("a/#"));
        assert!(!filters.contains("a"));
        let mut sorted = [filter("b"), filter("$share/g/a"), filter("a/#")];
        sorted.sort();
        let sorted: Vec<&str> = sorted.iter().map(TopicFilter::as_str).collect();
        assert_eq!(sorted, ["$share/g/a", "a/#", "b"]);
    }

    #[test]
    fn decoded_values_share_the_packet_buffer() {
        let buffer = ByteString::from_static("a/b");
        let n = TopicName::new(buffer.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.as_bytestring().as_ptr(), buffer.as_ptr());
    }

    /// A reference matcher written independently of [`matches`]: levels are matched
    /// recursively, and `#` is tried against every suffix of the remaining topic levels.
    fn naive_matches(filter: &str, topic: &str) -> bool {
        fn go(f: &[&str], t: &[&str]) -> bool {
            match f.split_first() {
                None => t.is_empty(),
                Some((&"#", rest)) => (0..=t.len()).any(|k| go(rest, &t[k..])),
                Some((&level, rest)) => match t.split_first() {
                    Some((&topic_level, t_rest)) => {
                        (level == "+" || level == topic_level) && go(rest, t_rest)
                    }
                    None => false,
                },
            }
        }
        if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
            return false;
        }
        let f: Vec<&str> = filter.split('/').collect();
        let t: Vec<&str> = topic.split('/').collect();
        go(&f, &t)
    }

    /// Builds a valid filter from levels, cutting it after the first `#`.
    fn filter_from_levels(levels: Vec<&'static str>) -> String {
        let mut out: Vec<&str> = Vec::new();
        for level in levels {
            out.push(level);
            if level == "#" {
                break;
            }
        }
        out.join("/")
    }

    proptest! {
        #[test]
        fn matches_agrees_with_naive_matcher_on_levels(
            f_levels in prop::collection::vec(
                prop::sample::select(vec!["", "a", "b", "$", "$a", "+", "#"]), 1..6),
            t_levels in prop::collection::vec(
                prop::sample::select(vec!["", "a", "b", "$", "$a"]), 1..6),
        ) {
            let f = filter_from_levels(f_levels);
            let t = t_levels.join("/");
            let tf = TopicFilter::new(f.as_str());
            let tn = TopicName::new(t.as_str());
            // Levels "" joined alone give "", which is not a valid name or filter.
            prop_assume!(tf.is_ok() && tn.is_ok());
            let expected = naive_matches(&f, &t);
            prop_assert_eq!(matches(&f, &t), expected, "filter {:?} topic {:?}", f, t);
            if let (Ok(tf), Ok(tn)) = (tf, tn) {
                prop_assert_eq!(tf.matches(&tn), expected);
                let shared = TopicFilter::new(format!("$share/g/{f}"));
                prop_assert!(shared.is_ok());
                if let Ok(shared) = shared {
                    prop_assert_eq!(shared.matches(&tn), expected);
                }
            }
        }

        #[test]
        fn matches_agrees_with_naive_matcher_on_strings(
            f in "[ab$+#/]{1,8}",
            t in "[ab$/]{1,8}",
        ) {
            // Invalid filters are skipped rather than rejected, to keep the run cheap.
            if TopicFilter::new(f.as_str()).is_ok() {
                let expected = naive_matches(&f, &t);
                prop_assert_eq!(matches(&f, &t), expected, "filter {:?} topic {:?}", f, t);
            }
        }

        #[test]
        fn validation_never_panics_and_is_consistent(s in "[ab$+#/\\x00]{0,10}") {
            let as_name = TopicName::new(s.as_str());
            let as_filter = TopicFilter::new(s.as_str());
            // Every valid name outside `$share/` is a valid filter that matches exactly itself.
            if let Ok(n) = &as_name
                && !s.starts_with(SHARED_PREFIX)
            {
                prop_assert!(as_filter.is_ok());
                if let Ok(f) = &as_filter {
                    prop_assert!(!f.has_wildcards());
                    prop_assert!(f.matches(n));
                }
            }
            if let Ok(f) = &as_filter {
                prop_assert_eq!(f.as_str(), s.as_str());
                prop_assert!(f.filter().len() <= s.len());
            }
        }
    }
}
