//! Fuzz target: `Decoder::decode` on a radius record built from the fuzz input. Any panic is a bug;
//! the invariants of [`lux_decode_fuzz::check`] must hold for every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lux_decode_fuzz::Target;

fuzz_target!(|data: &[u8]| Target::Radius.run(data));
