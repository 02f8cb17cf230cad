//! Topic Name / Topic Filter validation must not panic, and matching must agree with a
//! reference matcher; see `midge_proto_fuzz::check_topic`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midge_proto_fuzz::check_topic;

fuzz_target!(|data: &[u8]| {
    check_topic(data);
});
