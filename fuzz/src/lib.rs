//! The properties the `midge-proto` fuzz targets check, in one place.
//!
//! The cargo-fuzz targets in `fuzz_targets/` call these functions, and so does the corpus
//! replay test of `midge-proto` (`crates/midge-proto/tests/fuzz_corpus.rs`), which includes
//! this file with `#[path]`. It must therefore compile as a module of either crate: it uses
//! only `std`, `bytes` and `midge_proto`, nothing from `libfuzzer-sys`.
//!
//! Every check panics (through `assert!`) when a property is violated; the fuzzer reports the
//! panic as a crash and the replay test as a failure. The messages carry the input in hex.

use std::fmt::Write as _;

use bytes::BytesMut;
use midge_proto::{DecodeError, Decoder, Packet, ProtocolVersion, TopicFilter, TopicName};

/// The Maximum Packet Size of the decode targets: 1 MiB.
pub const MAX_PACKET_SIZE: u32 = 1 << 20;

/// The Maximum Packet Sizes `decode_split` chooses from (bits 2-3 of its first byte), so that
/// `PacketTooLarge` is reached by short inputs as well.
pub const SPLIT_MAX_PACKET_SIZES: [u32; 4] = [MAX_PACKET_SIZE, 1024, 64, 8];

/// Which decoder a check drives: a fuzz target per decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderKind {
    /// `Decoder::server`: CONNECT first, whose protocol level fixes the version.
    Server,
    /// `Decoder::with_version`.
    Version(ProtocolVersion),
}

impl DecoderKind {
    /// Every decoder, in the order `decode_split` numbers them (first byte & 3).
    pub const ALL: [DecoderKind; 4] = [
        DecoderKind::Server,
        DecoderKind::Version(ProtocolVersion::V3_1),
        DecoderKind::Version(ProtocolVersion::V3_1_1),
        DecoderKind::Version(ProtocolVersion::V5),
    ];

    /// A fresh decoder of this kind.
    pub fn decoder(self, max_packet_size: u32) -> Decoder {
        match self {
            DecoderKind::Server => Decoder::server(max_packet_size),
            DecoderKind::Version(v) => Decoder::with_version(v, max_packet_size),
        }
    }

    /// The name of the fuzz target that drives this decoder (and of its corpus directory).
    pub fn target(self) -> &'static str {
        match self {
            DecoderKind::Server => "decode_server",
            DecoderKind::Version(ProtocolVersion::V3_1) => "decode_v31",
            DecoderKind::Version(ProtocolVersion::V3_1_1) => "decode_v3",
            DecoderKind::Version(ProtocolVersion::V5) => "decode_v5",
        }
    }
}

/// Lower-case hex of `data`, for panic messages.
pub fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Decodes `data` with a decoder of `kind` (Maximum Packet Size 1 MiB) until it returns
/// `Ok(None)` or an error, and checks every packet decoded with [`check_round_trip`]: for the
/// decoder's version, or for its own protocol version if it is a CONNECT.
///
/// Never panics for any input unless the codec is wrong.
pub fn check_decode(data: &[u8], kind: DecoderKind) {
    let mut decoder = kind.decoder(MAX_PACKET_SIZE);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = decoder.decode(&mut buf) {
        let version = match &packet {
            Packet::Connect(c) => c.protocol_version,
            // After any packet the version is known: a server decoder only accepts CONNECT
            // first, and that sets it.
            _ => match decoder.version() {
                Some(v) => v,
                None => panic!(
                    "{kind:?} decoded {packet:?} without a version; input {}",
                    hex(data)
                ),
            },
        };
        check_round_trip(&packet, version, data);
    }
}

/// `packet` was decoded for `version` (`input` is only for messages). Checks that:
///
/// - it encodes for `version`, to exactly `encoded_len` bytes;
/// - those bytes decode (as one packet, `Packet::decode`) to an equal packet, which encodes
///   to the same bytes again;
/// - for every other version, encoding does not panic, and when it succeeds the bytes decode
///   for that version and re-encode unchanged (encoding for a version is a projection: what
///   the version cannot carry is dropped once, and nothing else changes).
pub fn check_round_trip(packet: &Packet, version: ProtocolVersion, input: &[u8]) {
    let bytes = match packet.to_bytes(version) {
        Ok(b) => b,
        Err(e) => panic!(
            "decoded {packet:?} does not encode for {version}: {e}; input {}",
            hex(input)
        ),
    };
    assert_eq!(
        packet.encoded_len(version),
        Ok(bytes.len()),
        "encoded_len disagrees with encode for {packet:?} ({version}); input {}",
        hex(input)
    );
    let again = Packet::decode(&bytes, version);
    assert_eq!(
        again.as_ref(),
        Ok(packet),
        "round trip changed the packet ({version}); encoded {}; input {}",
        hex(&bytes),
        hex(input)
    );
    let bytes_again = packet.to_bytes(version);
    assert_eq!(
        bytes_again.as_ref(),
        Ok(&bytes),
        "encoding is not deterministic ({version}); input {}",
        hex(input)
    );

    if matches!(packet, Packet::Connect(_)) {
        // CONNECT always carries its own version.
        return;
    }
    for other in [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ] {
        if other == version {
            continue;
        }
        let Ok(projected) = packet.to_bytes(other) else {
            continue;
        };
        let decoded = match Packet::decode(&projected, other) {
            Ok(p) => p,
            Err(e) => panic!(
                "{packet:?} decoded for {version} encodes for {other} to {}, which does not \
                 decode for {other}: {e}; input {}",
                hex(&projected),
                hex(input)
            ),
        };
        assert_eq!(
            decoded.to_bytes(other).as_ref(),
            Ok(&projected),
            "{packet:?} decoded for {version}: encoding for {other} is not stable; input {}",
            hex(input)
        );
    }
}

/// What feeding bytes to a decoder produced: the packets, then either the error that ended
/// decoding or the bytes left in the buffer; and the decoder's version at the end.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Every packet returned, in order.
    pub packets: Vec<Packet>,
    /// The error that stopped decoding, or the unconsumed bytes.
    pub end: Result<Vec<u8>, DecodeError>,
    /// `Decoder::version` after the last call.
    pub version: Option<ProtocolVersion>,
}

/// Feeds `chunks` one after another into one decoder of `kind`, calling `decode` after each
/// chunk until it returns `Ok(None)`, and stopping at the first error.
pub fn decode_chunks<'a>(
    kind: DecoderKind,
    max_packet_size: u32,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Outcome {
    let mut decoder = kind.decoder(max_packet_size);
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(packet)) => packets.push(packet),
                Ok(None) => break,
                Err(e) => {
                    return Outcome {
                        packets,
                        end: Err(e),
                        version: decoder.version(),
                    };
                }
            }
        }
    }
    Outcome {
        packets,
        end: Ok(buf.to_vec()),
        version: decoder.version(),
    }
}

/// `decode_split`: byte 0 selects the decoder (`& 3`, see [`DecoderKind::ALL`]) and the
/// Maximum Packet Size (`>> 2 & 3`, see [`SPLIT_MAX_PACKET_SIZES`]); bytes 1-2 (little
/// endian, modulo the rest's length + 1) the split point; the rest is the stream.
///
/// Decoding the stream in two parts, and one byte at a time, must give the same
/// [`Outcome`] (packets, final error or leftover bytes, version) as decoding it at once.
pub fn check_split(data: &[u8]) {
    let Some((&[selector, lo, hi], stream)) = data.split_first_chunk::<3>() else {
        return;
    };
    let kind = DecoderKind::ALL[usize::from(selector & 3)];
    let max = SPLIT_MAX_PACKET_SIZES[usize::from((selector >> 2) & 3)];
    let split = usize::from(u16::from_le_bytes([lo, hi])) % (stream.len() + 1);
    let (head, tail) = stream.split_at(split);

    let whole = decode_chunks(kind, max, [stream]);
    let parts = decode_chunks(kind, max, [head, tail]);
    assert_eq!(
        parts,
        whole,
        "{kind:?} (max {max}) split at {split} differs from the whole input; input {}",
        hex(data)
    );
    let bytewise = decode_chunks(kind, max, stream.chunks(1));
    assert_eq!(
        bytewise,
        whole,
        "{kind:?} (max {max}) fed one byte at a time differs from the whole input; input {}",
        hex(data)
    );
}

/// The `$share/` prefix of a Shared Subscription.
const SHARED_PREFIX: &str = "$share/";

/// A reference Topic Name validator written from MQTT 5.0 §4.7.3 and §4.7.0: 1 to 65,535
/// bytes, no U+0000, no `+` or `#`.
pub fn reference_name_valid(name: &str) -> bool {
    !name.is_empty() && name.len() <= 65_535 && !name.contains(['\0', '+', '#'])
}

/// A reference Topic Filter validator written from MQTT 5.0 §4.7.1, §4.7.3 and §4.8.2: 1 to
/// 65,535 bytes, no U+0000, every level either `+`, `#` (last level only) or free of both
/// wildcards; `$share/{ShareName}/{filter}` needs a ShareName without `+` or `#` and a
/// non-empty filter, valid by the same rules.
pub fn reference_filter_valid(full: &str) -> bool {
    if full.is_empty() || full.len() > 65_535 || full.contains('\0') {
        return false;
    }
    let filter = match full.strip_prefix(SHARED_PREFIX) {
        None => full,
        Some(rest) => match rest.split_once('/') {
            Some((share, inner)) if !share.is_empty() && !share.contains(['+', '#']) => {
                if inner.is_empty() {
                    return false;
                }
                inner
            }
            _ => return false,
        },
    };
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| match *level {
        "+" => true,
        "#" => i + 1 == levels.len(),
        other => !other.contains(['+', '#']),
    })
}

/// A reference matcher written from MQTT 5.0 §4.7.1-4.7.2 for a valid filter (with or
/// without a `$share/{ShareName}/` prefix) and a valid name: a filter ending in `#` matches
/// a name whose levels start with the filter's other levels, any other filter a name with
/// as many levels; `+` matches any one level; a filter starting with a wildcard does not
/// match a name starting with `$`.
pub fn reference_matches(full_filter: &str, name: &str) -> bool {
    let filter = match full_filter.strip_prefix(SHARED_PREFIX) {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, inner)| inner),
        None => full_filter,
    };
    if name.is_empty() || filter.is_empty() {
        return false;
    }
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = name.split('/').collect();
    let level_matches = |(fl, tl): (&&str, &&str)| *fl == "+" || fl == tl;
    match f.split_last() {
        Some((&"#", parents)) => {
            t.len() >= parents.len() && parents.iter().zip(&t).all(level_matches)
        }
        _ => f.len() == t.len() && f.iter().zip(&t).all(level_matches),
    }
}

/// `topic`: the input, up to its first 0xFF byte, is a Topic Filter candidate and the rest a
/// Topic Name candidate (without 0xFF, the whole input is both), each read as lossy UTF-8.
///
/// Checks that validation agrees with [`reference_filter_valid`] and
/// [`reference_name_valid`], that a valid filter or name keeps its text, and that when both
/// are valid `TopicFilter::matches` agrees with [`reference_matches`], also behind a
/// `$share/g/` prefix.
pub fn check_topic(data: &[u8]) {
    let (filter_bytes, name_bytes) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let filter_text = String::from_utf8_lossy(filter_bytes);
    let name_text = String::from_utf8_lossy(name_bytes);
    let filter_text: &str = &filter_text;
    let name_text: &str = &name_text;

    let filter = TopicFilter::new(filter_text);
    let name = TopicName::new(name_text);
    assert_eq!(
        filter.is_ok(),
        reference_filter_valid(filter_text),
        "TopicFilter::new({filter_text:?}) = {filter:?}; input {}",
        hex(data)
    );
    assert_eq!(
        name.is_ok(),
        reference_name_valid(name_text),
        "TopicName::new({name_text:?}) = {name:?}; input {}",
        hex(data)
    );
    // The same string as the other kind, for more validation coverage.
    assert_eq!(
        TopicName::new(filter_text).is_ok(),
        reference_name_valid(filter_text),
        "TopicName::new({filter_text:?}); input {}",
        hex(data)
    );
    assert_eq!(
        TopicFilter::new(name_text).is_ok(),
        reference_filter_valid(name_text),
        "TopicFilter::new({name_text:?}); input {}",
        hex(data)
    );

    if let Ok(f) = &filter {
        assert_eq!(f.as_str(), filter_text);
        assert_eq!(f.is_shared(), f.share_name().is_some());
        assert_eq!(f.has_wildcards(), f.filter().contains(['+', '#']));
        assert!(filter_text.ends_with(f.filter()));
    }
    if let Ok(n) = &name {
        assert_eq!(n.as_str(), name_text);
        assert!(!n.is_empty());
        // A name is a filter without wildcards that matches exactly itself (unless its
        // text starts a Shared Subscription).
        if !name_text.starts_with(SHARED_PREFIX) {
            match TopicFilter::new(name_text) {
                Ok(as_filter) => assert!(
                    as_filter.matches(n),
                    "{as_filter:?} does not match {n:?}; input {}",
                    hex(data)
                ),
                Err(e) => panic!(
                    "valid name {name_text:?} is not a valid filter: {e}; input {}",
                    hex(data)
                ),
            }
        }
    }
    if let (Ok(f), Ok(n)) = (&filter, &name) {
        let expected = reference_matches(filter_text, name_text);
        assert_eq!(
            f.matches(n),
            expected,
            "{f:?}.matches({n:?}); input {}",
            hex(data)
        );
        assert_eq!(
            midge_proto::topic::matches(f.filter(), name_text),
            expected,
            "topic::matches({:?}, {name_text:?}); input {}",
            f.filter(),
            hex(data)
        );
        let shared_text = format!("{SHARED_PREFIX}g/{filter_text}");
        if shared_text.len() <= 65_535 {
            match TopicFilter::new(shared_text.as_str()) {
                Ok(shared) => assert_eq!(
                    shared.matches(n),
                    // Not `expected`: if `filter_text` is itself shared, its prefix is now
                    // part of the inner filter.
                    reference_matches(&shared_text, name_text),
                    "{shared:?}.matches({n:?}); input {}",
                    hex(data)
                ),
                Err(e) => panic!(
                    "{shared_text:?} is not a valid filter: {e}; input {}",
                    hex(data)
                ),
            }
        }
    }
}
