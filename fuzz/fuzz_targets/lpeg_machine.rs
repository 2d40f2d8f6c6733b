//! lpeg: patterns built from the input compile, and the parsing machine never panics and agrees
//! with the direct PEG interpreter on the subject at every start position.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    skynet_lualib::lpeg::reference::differential(data);
});
