//! Property tests: every valid packet of every type and version survives encode → decode
//! unchanged, `encoded_len` predicts the encoding, and the streaming decoder gives the same
//! packet whatever way the bytes are split.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use bytes::BytesMut;
use common::{AckKind, any_packet, version};
use midge_proto::{Decoder, PROTOCOL_MAX_PACKET_SIZE, Packet, ProtocolVersion};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

/// Checks one packet: encoding length, `decode(encode(p)) == p`, and decoding the encoding fed
/// to one [`Decoder`] in two parts split at `split`.
fn check(version: ProtocolVersion, packet: &Packet, split: Index) -> Result<(), TestCaseError> {
    let bytes = packet.to_bytes(version).map_err(|e| {
        TestCaseError::fail(format!("{packet:?} did not encode for {version}: {e}"))
    })?;
    prop_assert_eq!(packet.encoded_len(version), Ok(bytes.len()));
    prop_assert_eq!(
        &Packet::decode(&bytes, version),
        &Ok(packet.clone()),
        "bytes: {}",
        common::hex(&bytes)
    );

    let at = split.index(bytes.len() + 1);
    let mut decoder = Decoder::with_version(version, PROTOCOL_MAX_PACKET_SIZE);
    let mut buf = BytesMut::from(&bytes[..at]);
    let first = decoder.decode(&mut buf);
    if at == bytes.len() {
        prop_assert_eq!(first, Ok(Some(packet.clone())));
    } else {
        prop_assert_eq!(first, Ok(None), "split at {} of {}", at, bytes.len());
        buf.extend_from_slice(&bytes[at..]);
        prop_assert_eq!(decoder.decode(&mut buf), Ok(Some(packet.clone())));
    }
    prop_assert!(buf.is_empty(), "{} bytes left over", buf.len());
    prop_assert_eq!(decoder.decode(&mut buf), Ok(None));
    Ok(())
}

/// Feeds `bytes` to `decoder` in chunks of the given sizes (cycled), decoding after each feed.
fn decode_in_chunks(
    decoder: &mut Decoder,
    bytes: &[u8],
    chunks: &[usize],
) -> Result<Vec<Packet>, TestCaseError> {
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    let mut rest = bytes;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(p) = decoder
            .decode(&mut buf)
            .map_err(|e| TestCaseError::fail(format!("decode failed: {e}")))?
        {
            out.push(p);
        }
    }
    prop_assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(out)
}

fn with_version(
    f: fn(ProtocolVersion) -> BoxedStrategy<Packet>,
) -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    version().prop_flat_map(move |v| (Just(v), f(v)))
}

fn ack(kind: AckKind) -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    version().prop_flat_map(move |v| (Just(v), common::publish_ack(v, kind)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn connect_round_trips((v, p) in with_version(common::connect), split in any::<Index>()) {
        check(v, &p, split)?;
        // A server learns the version from the CONNECT itself.
        let mut decoder = Decoder::server(PROTOCOL_MAX_PACKET_SIZE);
        let mut buf = BytesMut::from(&p.to_bytes(v).unwrap()[..]);
        prop_assert_eq!(decoder.decode(&mut buf), Ok(Some(p.clone())));
        prop_assert_eq!(decoder.version(), Some(v));
        // CONNECT carries its own version, whatever the decoder was told.
        for other in common::VERSIONS {
            prop_assert_eq!(Packet::decode(&p.to_bytes(other).unwrap(), other), Ok(p.clone()));
        }
    }

    #[test]
    fn connack_round_trips((v, p) in with_version(common::connack), split in any::<Index>()) {
        check(v, &p, split)?;
    }

    #[test]
    fn publish_round_trips((v, p) in with_version(common::publish), split in any::<Index>()) {
        check(v, &p, split)?;
    }

    #[test]
    fn puback_round_trips((v, p) in ack(AckKind::PubAck), split in any::<Index>()) {
        check(v, &p, split)?;
    }

    #[test]
    fn pubrec_round_trips((v, p) in ack(AckKind::PubRec), split in any::<Index>()) {
        check(v, &p, split)?;
    }

    #[test]
    fn pubrel_round_trips((v, p) in ack(AckKind::PubRel), split in any::<Index>()) {
        check(v, &p, split)?;
    }

    #[test]
    fn pubcomp_round_trips((v, p) in ack(AckKind::PubComp), split in any::<Index>()) {
        check(v, &p, split)?;
    }

    #[test]
    fn subscribe_round_trips((v, p) in with_version(common::subscribe), split in any::<Index>()) {
        check(v, &p, split)?;
    }

    #[test]
    fn suback_round_trips((v, p) in with_version(common::suback), split in any::<Index>()) {
        check(v, &p, split)?;
    }

    #[test]
    fn unsubscribe_round_trips((v, p) in with_version(common::unsubscribe), split in any::<Index>()) {
        check(v, &p, split)?;
    }

    #[test]
    fn unsuback_round_trips((v, p) in with_version(common::unsuback), split in any::<Index>()) {
        check(v, &p, split)?;
    }

    #[test]
    fn disconnect_round_trips((v, p) in with_version(common::disconnect), split in any::<Index>()) {
        check(v, &p, split)?;
    }

    #[test]
    fn auth_round_trips(p in common::auth(), split in any::<Index>()) {
        check(ProtocolVersion::V5, &p, split)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pings_round_trip(v in version(), split in any::<Index>()) {
        check(v, &Packet::PingReq, split)?;
        check(v, &Packet::PingResp, split)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Several packets written back to back into one buffer come out in order, however the
    /// stream is chunked.
    #[test]
    fn concatenated_packets_decode_in_order(
        (v, packets) in version().prop_flat_map(|v| (Just(v), prop::collection::vec(any_packet(v), 1..8))),
        chunks in prop::collection::vec(1usize..48, 1..16),
    ) {
        let mut wire = BytesMut::new();
        for p in &packets {
            let before = wire.len();
            p.encode(v, &mut wire).unwrap();
            prop_assert_eq!(p.encoded_len(v), Ok(wire.len() - before));
        }
        let mut decoder = Decoder::with_version(v, PROTOCOL_MAX_PACKET_SIZE);
        prop_assert_eq!(decode_in_chunks(&mut decoder, &wire, &chunks)?, packets);
    }

    /// A server-side decoder: CONNECT first fixes the version, then the rest of the stream.
    #[test]
    fn server_stream_decodes_after_connect(
        (v, connect, packets) in version().prop_flat_map(|v| {
            (Just(v), common::connect(v), prop::collection::vec(any_packet(v), 0..6))
        }),
        chunks in prop::collection::vec(1usize..48, 1..16),
    ) {
        let mut wire = BytesMut::new();
        connect.encode(v, &mut wire).unwrap();
        for p in &packets {
            p.encode(v, &mut wire).unwrap();
        }
        let mut decoder = Decoder::server(PROTOCOL_MAX_PACKET_SIZE);
        let decoded = decode_in_chunks(&mut decoder, &wire, &chunks)?;
        prop_assert_eq!(decoder.version(), Some(v));
        let mut expected = vec![connect];
        expected.extend(packets);
        prop_assert_eq!(decoded, expected);
    }
}
