//! Lua-level tests of `bson` and `skynet.mongo.driver`. `known_answers.lua` holds outputs
//! recorded once from upstream's C build (v1.8.0 on Lua 5.4, master on Lua 5.5) and checks
//! that ours match them: encodings byte for byte, decoded tables, `type` results, error
//! messages (positions normalised to "POS: "), in-place replacement and the driver's framing.

use super::luaopen_bson;
use crate::mongo_driver::luaopen_skynet_mongo_driver;
use crate::testlua::check;

const MODULES: &[(&std::ffi::CStr, crate::lua::CFunction)] = &[
    (c"bson", luaopen_bson),
    (c"driver", luaopen_skynet_mongo_driver),
];

fn run(code: &str) {
    check(MODULES, &[], code);
}

#[test]
fn known_answers_from_upstream() {
    run(include_str!("known_answers.lua"));
}
