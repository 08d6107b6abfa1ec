#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relais_protocol_fuzz::check::<relais_protocol::cgm::CgmSocpRequest>(data)
});
