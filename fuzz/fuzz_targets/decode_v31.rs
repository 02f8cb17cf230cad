//! A decoder fixed to MQTT 3.1 (`Decoder::with_version`). Every decoded packet must re-encode
//! and decode to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midge_proto::ProtocolVersion;
use midge_proto_fuzz::{DecoderKind, check_decode};

fuzz_target!(|data: &[u8]| {
    check_decode(data, DecoderKind::Version(ProtocolVersion::V3_1));
});
