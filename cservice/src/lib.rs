//! skynet's built-in services, written in Rust: found by LAUNCH under the names upstream's
//! `cservice/*.so` have (see `skynet_core::module` for the lookup order).

pub mod gate;
pub mod harbor;
pub mod logger;
pub mod snlua;
pub mod socket_msg;

use skynet_core::module::Modules;
use std::sync::Arc;

/// Registers every built-in service module.
pub fn register(modules: &mut Modules) {
    modules.add_builtin("gate", Arc::new(gate::GateModule));
    modules.add_builtin("harbor", Arc::new(harbor::HarborModule));
    modules.add_builtin("logger", Arc::new(logger::LoggerModule));
    modules.add_builtin("snlua", Arc::new(snlua::SnluaModule));
}
