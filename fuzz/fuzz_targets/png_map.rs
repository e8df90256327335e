#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| borex::fuzz::png_map(data));
