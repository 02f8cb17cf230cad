//! Input split in two and fed to one decoder must decode exactly as the whole input at once.
//! Byte 0 selects the decoder (and its Maximum Packet Size), bytes 1-2 the split point; see
//! `midge_proto_fuzz::check_split`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midge_proto_fuzz::check_split;

fuzz_target!(|data: &[u8]| {
    check_split(data);
});
