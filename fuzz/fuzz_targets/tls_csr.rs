//! Fuzz target `tls_csr`: see [`frostamp_fuzz::tls_csr`] (`fuzz/checks.rs`) for what it
//! feeds and checks; `tests/fuzz_corpora.rs` replays the committed corpus through the
//! same function.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = frostamp_fuzz::tls_csr(data);
});
