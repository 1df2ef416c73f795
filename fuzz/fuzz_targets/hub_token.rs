//! Token verification: see `duplex_fuzz::hub::token`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| duplex_fuzz::hub::token(data));
