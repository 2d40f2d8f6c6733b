//! Launch failures that must not leave a registered service behind. The node is process-wide,
//! so this file holds one test that walks through every case on one node.

use skynet_core::module::{CpathFirst, Instance, Module, Modules};
use skynet_core::server::{Context, Node, NodeConfig};
use std::sync::Arc;

struct PanicsInInit;
impl Instance for PanicsInInit {
    fn init(&self, _ctx: &Arc<Context>, parm: Option<&str>) -> bool {
        panic!("init of {parm:?} exploded")
    }
}

struct Fine;
impl Instance for Fine {
    fn init(&self, _ctx: &Arc<Context>, _parm: Option<&str>) -> bool {
        true
    }
}

struct Make(fn() -> Option<Box<dyn Instance>>);
impl Module for Make {
    fn create(&self) -> Option<Box<dyn Instance>> {
        (self.0)()
    }
}

#[test]
fn panics_in_create_or_init_fail_the_launch_and_leave_nothing_registered() {
    let mut modules = Modules::new("", CpathFirst::None);
    modules.add_builtin(
        "init_panics",
        Arc::new(Make(|| Some(Box::new(PanicsInInit)))),
    );
    modules.add_builtin(
        "create_panics",
        Arc::new(Make(|| panic!("create exploded"))),
    );
    modules.add_builtin("fine", Arc::new(Make(|| Some(Box::new(Fine)))));
    let node = Node::init(NodeConfig {
        harbor: 1,
        profile: false,
        modules,
        queue_limits: Default::default(),
    });

    assert_eq!(node.launch("init_panics", Some("x")), None);
    assert_eq!(
        node.total(),
        0,
        "a context whose init panicked is still counted"
    );
    assert!(
        node.handles.handles().is_empty(),
        "its handle is still registered"
    );

    assert_eq!(node.launch("create_panics", None), None);
    assert_eq!(node.total(), 0);
    assert!(node.handles.handles().is_empty());

    // The node is still usable afterwards.
    let h = node.launch("fine", None).expect("a fine module launches");
    assert!(node.grab(h).is_some());
    assert_eq!(node.total(), 1);

    pointer_carrying_types_are_refused_on_every_send_path(node, h);
    a_panicking_handler_is_caught_and_the_service_serves_on(node, h);
    a_handler_replaces_its_own_callback(node, h);
}

/// A handler may replace (or clear) its own service's callback while its dispatch turn holds
/// the callback: the next message goes to the new one, within the same turn.
fn a_handler_replaces_its_own_callback(node: &Node, h: u32) {
    use skynet_core::mq::Message;
    use skynet_core::payload::Payload;
    use skynet_core::ptype;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static FIRST: AtomicUsize = AtomicUsize::new(0);
    static SECOND: AtomicUsize = AtomicUsize::new(0);
    static THIRD: AtomicUsize = AtomicUsize::new(0);
    let ctx = node.grab(h).expect("live");
    ctx.set_callback(Some(Box::new(|c: &Context, _: Message| {
        FIRST.fetch_add(1, Ordering::Relaxed);
        c.set_callback(Some(Box::new(|c: &Context, m: Message| {
            SECOND.fetch_add(1, Ordering::Relaxed);
            if m.data.as_slice() == b"clear" {
                c.set_callback(None);
            }
        })));
    })));
    for text in ["a", "b", "clear", "dropped"] {
        let p = Payload::copy_from(text.as_bytes());
        assert_eq!(node.send(None, 7, h, ptype::TEXT, 0, p), 0);
    }
    ctx.dispatch_all();
    assert_eq!(FIRST.load(Ordering::Relaxed), 1);
    assert_eq!(SECOND.load(Ordering::Relaxed), 2, "b and clear");
    // Set from outside a turn (another thread, as a C module may): the next turn uses it.
    let setter = {
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            ctx.set_callback(Some(Box::new(|_: &Context, _: Message| {
                THIRD.fetch_add(1, Ordering::Relaxed);
            })))
        })
    };
    setter.join().expect("set_callback from another thread");
    let p = Payload::copy_from(b"third");
    assert_eq!(node.send(None, 7, h, ptype::TEXT, 0, p), 0);
    ctx.dispatch_all();
    assert_eq!(SECOND.load(Ordering::Relaxed), 2);
    assert_eq!(THIRD.load(Ordering::Relaxed), 1);
}

/// A handler that panics loses that message only: the panic is caught around the call, and
/// the next message reaches the same handler.
fn a_panicking_handler_is_caught_and_the_service_serves_on(node: &Node, h: u32) {
    use skynet_core::payload::Payload;
    use skynet_core::ptype;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let ctx = node.grab(h).expect("live");
    ctx.dispatch_all(); // whatever the previous checks queued
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    ctx.set_callback(Some(Box::new(
        |_: &Context, m: skynet_core::mq::Message| {
            SEEN.fetch_add(1, Ordering::Relaxed);
            if m.data.as_slice() == b"boom" {
                panic!("handler exploded");
            }
        },
    )));
    for text in [&b"boom"[..], b"after"] {
        let p = Payload::copy_from(text);
        assert_eq!(node.send(None, 7, h, ptype::TEXT, 0, p), 0);
    }
    ctx.dispatch_all();
    assert_eq!(
        SEEN.load(Ordering::Relaxed),
        2,
        "the message after the panic was not handled"
    );
}

/// PTYPE_SOCKET and PTYPE_SYSTEM carry pointers only the core may produce: a send of either, by
/// handle, `:hex` or a global name (a harbor peer's frames arrive through the same path), is
/// refused and nothing reaches the queue, while other types still get through.
fn pointer_carrying_types_are_refused_on_every_send_path(node: &Node, h: u32) {
    use skynet_core::payload::Payload;
    use skynet_core::ptype;
    // A fake socket message: type DATA, id 1, ud 8, then a pointer nobody owns.
    let mut forged = vec![0u8; 24];
    forged[0..4].copy_from_slice(&1i32.to_ne_bytes());
    forged[8..12].copy_from_slice(&8i32.to_ne_bytes());
    forged[16..24].copy_from_slice(&0xdead_beefusize.to_ne_bytes());
    let ctx = node.grab(h).expect("live");
    let queue = ctx.queue();
    let by_hex = format!(":{h:x}");
    for ty in [
        ptype::SOCKET,
        ptype::SYSTEM,
        ptype::SOCKET | 0x20000,
        ptype::SYSTEM | 0x10000,
    ] {
        let p = Payload::copy_from(&forged);
        assert_eq!(
            node.send(None, 7, h, ty, 1, p),
            -1,
            "type {ty:#x} by handle"
        );
        let p = Payload::copy_from(&forged);
        assert_eq!(
            node.send_name(None, 7, &by_hex, ty, 1, p),
            -1,
            "type {ty:#x} by :hex"
        );
        let p = Payload::copy_from(&forged);
        assert_eq!(
            node.send_name(None, 7, "remote", ty, 1, p),
            -1,
            "type {ty:#x} by name"
        );
    }
    assert_eq!(queue.len(), 0, "a forged message reached the queue");
    let p = Payload::copy_from(&forged);
    assert_eq!(node.send(None, 7, h, ptype::CLIENT, 3, p), 3);
    assert_eq!(queue.len(), 1);
}
