//! The hub's Protobuf command decoder: see `duplex_fuzz::hub::command_protobuf`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| duplex_fuzz::hub::command_protobuf(data));
