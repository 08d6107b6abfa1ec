#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| relais_protocol_fuzz::local_time_information(data));
