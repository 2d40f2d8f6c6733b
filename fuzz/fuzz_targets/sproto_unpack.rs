//! sproto 0-unpacking of arbitrary bytes never panics, its output is at most 8 bytes per input
//! byte (a multiple of 8), and packing it again unpacks to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_lualib::sproto::codec;

fuzz_target!(|data: &[u8]| {
    let Ok(out) = codec::unpack_vec(data, codec::MAX_SIZE) else {
        return;
    };
    assert!(out.len() <= data.len() * 8 && out.len() % 8 == 0);
    let packed = codec::pack_vec(&out);
    assert!(packed.len() <= codec::pack_bound(out.len()));
    assert_eq!(codec::unpack_vec(&packed, codec::MAX_SIZE).unwrap(), out);
});
