//! The configuration parser on any text: `Config::parse` returns a config or an error that
//! names a place, and neither the error's message nor `describe` panics.
#![no_main]

use bwacct::config::Config;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    match Config::parse(Path::new("fuzz.toml"), text) {
        Ok(cfg) => {
            let _ = cfg.describe();
        }
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.toml:"));
        }
    }
});
