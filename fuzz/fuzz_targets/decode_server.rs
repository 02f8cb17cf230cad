//! A server-side decoder (`Decoder::server`): the first packet must be CONNECT and fixes the
//! version. Every decoded packet must re-encode and decode to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midge_proto_fuzz::{DecoderKind, check_decode};

fuzz_target!(|data: &[u8]| {
    check_decode(data, DecoderKind::Server);
});
