#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relais_protocol_fuzz::check_measurement::<relais_protocol::glucose::GlucoseMeasurement>(data)
});
