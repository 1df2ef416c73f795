//! The HTTP API bodies: see `duplex_fuzz::hub::api`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| duplex_fuzz::hub::api(data));
