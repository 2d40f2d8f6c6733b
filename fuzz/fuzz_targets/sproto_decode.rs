//! sproto decoding of arbitrary bytes against a fixed schema never panics, never recurses past
//! the depth limit, and never claims more bytes than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_lualib::sproto::build::{schema, Response};
use skynet_lualib::sproto::codec::{self, Sproto};
use std::sync::OnceLock;

fn proto() -> &'static Sproto {
    static SP: OnceLock<Sproto> = OnceLock::new();
    SP.get_or_init(|| {
        let bin = schema(
            &[
                ("Pair", &[("k", 0, "string"), ("v", 1, "integer")]),
                ("Item", &[("id", 0, "integer"), ("name", 1, "string")]),
                (
                    "All",
                    &[
                        ("i", 0, "integer"),
                        ("dec", 3, "integer(2)"),
                        ("b", 4, "boolean"),
                        ("s", 5, "string"),
                        ("d", 7, "double"),
                        ("st", 8, "Item"),
                        ("ia", 9, "*integer"),
                        ("ba", 11, "*boolean"),
                        ("sa", 12, "*string"),
                        ("da", 13, "*double"),
                        ("sta", 14, "*Item"),
                        ("idx", 15, "*Item(id)"),
                        ("map", 16, "*Pair()"),
                        ("far", 30, "integer"),
                        ("nested", 31, "All"),
                    ],
                ),
            ],
            &[("foo", 1, Some("All"), Response::Type("Item"))],
        );
        Sproto::new(&bin).expect("schema")
    })
}

fuzz_target!(|data: &[u8]| {
    let sp = proto();
    let all = &sp.types[sp.type_by_name(b"All").unwrap()];
    if let Ok((used, _)) = codec::walk(sp, all, data) {
        assert!(used <= data.len());
    }
    // the schema importer faces the same bytes
    let _ = Sproto::new(data);
});
