//! skynet-rs runtime: the concepts of skynet's C core under the names a skynet reader knows.
//!
//! - [`handle`]: handle registry and local names
//! - [`mq`]: per-service queues, the global run queue, worker parking
//! - [`server`]: contexts, send, dispatch, launch (the node)
//! - [`command`]: the text command interface
//! - [`timer`]: time and the timing wheel
//! - [`module`]: built-in and loadable service modules
//! - [`harbor`]: the core side of remote messages
//! - [`env`], [`log`], [`monitor`], [`daemon`], [`start`]
//! - [`manifest`]: verified loading (`load_manifest`)
//! - [`memory`]: the executable's per-service C memory accounting
//! - [`metrics`]: the Prometheus metrics endpoint (config `metrics`)

pub mod command;
pub mod daemon;
pub mod env;
pub mod handle;
pub mod harbor;
pub mod localtime;
pub mod log;
pub mod manifest;
pub mod memory;
pub mod metrics;
pub mod module;
pub mod monitor;
pub mod mq;
pub mod payload;
pub mod poll;
pub mod server;
pub mod socket_server;
pub mod start;
pub mod timer;

pub use mq::Message;
pub use payload::Payload;
pub use server::{node, try_node, Context, Node};

/// Message types (upstream `PTYPE_*`).
pub mod ptype {
    pub const TEXT: i32 = 0;
    pub const RESPONSE: i32 = 1;
    pub const MULTICAST: i32 = 2;
    pub const CLIENT: i32 = 3;
    pub const SYSTEM: i32 = 4;
    pub const HARBOR: i32 = 5;
    pub const SOCKET: i32 = 6;
    pub const ERROR: i32 = 7;
    pub const RESERVED_QUEUE: i32 = 8;
    pub const RESERVED_DEBUG: i32 = 9;
    pub const RESERVED_LUA: i32 = 10;
    pub const RESERVED_SNAX: i32 = 11;
}
