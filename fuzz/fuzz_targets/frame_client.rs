//! The frame decoder as a client: see `duplex_fuzz::frames::run` for the input and invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| duplex_fuzz::frames::run(duplex_proto::Role::Client, data));
