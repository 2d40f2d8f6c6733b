//! libskynet: the node as a library, for a program with its own `main` (see `skynet_imp.h`
//! and `skynet_static.h`). It exports the whole C ABI of the executable plus the start entry
//! points.
//!
//! Unlike the executable it does not replace the process's malloc family: a library cannot
//! know what was allocated before it was loaded, and the program may bring its own allocator.
//! So there is no C memory accounting here: `skynet.memory` reports the Lua heaps of the VMs
//! and Lua's own `memory_limit` still applies.

mod abi;
mod cmodule;
mod codecache;
mod config;
mod node;
