//! bson's decoder on arbitrary bytes: no panic, no allocation beyond the input's own size,
//! and a document that decodes is decoded the same when followed by garbage. The makeindex
//! walk and the mongo reply check run on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_lualib::bson::wire::{decode_tree, index_fields};
use skynet_lualib::mongo_driver::{parse_reply, REPLY_DOC};

fuzz_target!(|data: &[u8]| {
    let tree = decode_tree(data);
    if let Ok(t) = &tree {
        // The declared length bounds what was read: trailing bytes change nothing.
        let mut longer = data.to_vec();
        longer.extend_from_slice(b"\xff\x00garbage");
        // (Compared through Debug: a NaN is not equal to itself.)
        let again = decode_tree(&longer).map(|n| format!("{n:?}"));
        assert_eq!(again, Ok(format!("{t:?}")));
    }
    let mut fields = 0usize;
    let _ = index_fields(data, |key, _, at| {
        assert!(at <= data.len() && key.len() < data.len());
        fields += 1;
    });
    if let Ok(Some(_)) = parse_reply(data) {
        let _ = decode_tree(&data[REPLY_DOC..]);
    }
});
