//! Fuzz target `crl`: see [`frostamp_fuzz::crl`] (`fuzz/checks.rs`) for what it
//! feeds and checks; `tests/fuzz_corpora.rs` replays the committed corpus through the
//! same function.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = frostamp_fuzz::crl(data);
});
