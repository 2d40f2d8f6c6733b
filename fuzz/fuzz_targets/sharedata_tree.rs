//! skynet.sharedata's frozen tables never panic, whatever nested data they are built from
//! (arbitrary keys, duplicates, holes, deep nesting), and every key `nextkey` yields is found
//! again by `index`, each once.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    skynet_lualib::sharedata::fuzzing::run(data);
});
