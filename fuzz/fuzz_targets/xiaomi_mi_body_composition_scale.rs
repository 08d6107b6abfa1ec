#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| relais_protocol_fuzz::mi_body_composition_scale(data));
