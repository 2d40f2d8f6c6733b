//! skynet's Lua C modules, built into the executable (no `luaclib/*.so` needed), and the glue
//! the `snlua` service needs. Everything here talks to Lua through its C API (`mlua::ffi`):
//! this crate is the Lua-glue edge where `unsafe` lives.

pub mod seri;
