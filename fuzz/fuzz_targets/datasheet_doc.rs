//! The datasheet document reader on arbitrary bytes: no panic, every offset checked, memory
//! proportional to the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_lualib::datasheet::doc;

fuzz_target!(|data: &[u8]| {
    let _ = doc::walk(data);
    // Direct lookups of arbitrary tables and strings, as proxies make them.
    if let Ok(n) = doc::count(data) {
        for i in 0..n.min(64) {
            if let Ok(t) = doc::table(data, i) {
                for k in 0..t.array.min(64) {
                    let _ = doc::array_item(data, &t, k);
                }
                for k in 0..t.dict.min(64) {
                    let _ = doc::dict_item(data, &t, k);
                }
            }
        }
    }
    let _ = doc::string(data, data.len() as u32 / 2);
});
