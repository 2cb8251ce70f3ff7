//! Fuzz target `tls_upload`: see [`frostamp_fuzz::tls_upload`] (`fuzz/checks.rs`) for what it
//! feeds and checks; `tests/fuzz_corpora.rs` replays the committed corpus through the
//! same function.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = frostamp_fuzz::tls_upload(data);
});
