#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| borex::fuzz::video_record(data));
