//! Queue limits on a node without worker threads (nothing is dispatched, so queues only fill):
//! what a full queue refuses, answers, drops, holds and counts. The node is process-wide, so
//! this file holds one test.

use skynet_core::command::{command, CommandResult};
use skynet_core::module::{CpathFirst, Instance, Module, Modules};
use skynet_core::mq::{Message, QueueLimits};
use skynet_core::payload::Payload;
use skynet_core::ptype;
use skynet_core::server::{Admitted, Context, Node, NodeConfig, QueueCounters};
use std::sync::Arc;

struct Idle;
impl Instance for Idle {
    fn init(&self, _ctx: &Arc<Context>, _parm: Option<&str>) -> bool {
        true
    }
}

struct MakeIdle;
impl Module for MakeIdle {
    fn create(&self) -> Option<Box<dyn Instance>> {
        Some(Box::new(Idle))
    }
}

fn text(s: &str) -> Payload {
    Payload::copy_from(s.as_bytes())
}

#[test]
fn full_queue_refuses_requests_drops_one_way_and_never_refuses_replies() {
    let mut modules = Modules::new("", CpathFirst::None);
    modules.add_builtin("idle", Arc::new(MakeIdle));
    let node = Node::init(NodeConfig {
        harbor: 1,
        profile: false,
        modules,
        queue_limits: QueueLimits {
            messages: 3,
            bytes: 0,
        },
    });
    let a = node.grab(node.launch("idle", None).unwrap()).unwrap();
    let b = node.grab(node.launch("idle", None).unwrap()).unwrap();
    assert_eq!(b.queue().limits().messages, 3, "the node's limits apply");
    let hb = b.handle();

    for i in 0..3 {
        assert_eq!(a.send(hb, ptype::TEXT, 0, text(&format!("m{i}"))), 0);
    }
    assert_eq!(b.queue().len(), 3);
    // Full: a one-way message is dropped, a request answered with PTYPE_ERROR from b.
    assert_eq!(a.send(hb, ptype::TEXT, 0, text("dropped")), 0);
    assert_eq!(a.send(hb, ptype::TEXT, 42, text("refused")), 42);
    assert_eq!(b.queue().len(), 3);
    let reply = a
        .queue()
        .pop()
        .expect("an error reply for the refused request");
    assert_eq!(
        (reply.ty, reply.session, reply.source, reply.data.len()),
        (ptype::ERROR as u64, 42, hb, 0)
    );
    assert!(a.queue().pop().is_none(), "one reply only");
    // Replies, error replies and timer wake-ups (replies pushed by the core) are never refused.
    assert_eq!(a.send(hb, ptype::RESPONSE, 7, text("reply")), 7);
    assert_eq!(a.send(hb, ptype::ERROR, 8, Payload::empty()), 8);
    assert!(node.push(
        hb,
        Message::new(0, 9, ptype::RESPONSE as u8, Payload::empty())
    ));
    assert_eq!(b.queue().len(), 6);
    // Socket data is queued and its connection held; a UDP datagram is dropped; other socket
    // events are queued.
    let socket = |ty: i32, id: i32| {
        let mut head = Vec::new();
        for v in [ty, id, 0, 0, 0, 0] {
            head.extend_from_slice(&v.to_ne_bytes());
        }
        Message::new(0, 0, ptype::SOCKET as u8, Payload::copy_from(&head))
    };
    assert_eq!(
        node.push_socket(hb, socket(1, 5), Some(5), false),
        Some(Admitted::Hold)
    );
    assert_eq!(
        node.push_socket(hb, socket(6, 6), None, true),
        Some(Admitted::Refused)
    );
    assert_eq!(
        node.push_socket(hb, socket(3, 5), None, false),
        Some(Admitted::Queued)
    );
    assert_eq!(
        node.push_socket(0x0100_7777, socket(1, 5), Some(5), false),
        None
    );
    assert_eq!(b.queue().len(), 8);
    assert_eq!(b.queue().refused(), 3);
    assert_eq!(
        node.queue_counters(),
        QueueCounters {
            requests_refused: 1,
            oneway_dropped: 2,
            sockets_paused: 1,
        }
    );
    // QUEUELIMIT: b lifts its own limit; a's stays.
    let answer = command(node, &b, "QUEUELIMIT", Some("0"));
    assert_eq!(answer, Some(CommandResult::Text("0 0".to_owned())));
    assert_eq!(a.send(hb, ptype::TEXT, 0, text("now accepted")), 0);
    assert_eq!(b.queue().len(), 9);
    let answer = command(node, &a, "QUEUELIMIT", None);
    assert_eq!(answer, Some(CommandResult::Text("3 0".to_owned())));
    assert_eq!(command(node, &a, "QUEUELIMIT", Some("1 2 3")), None);
    assert_eq!(command(node, &a, "QUEUELIMIT", Some("-1")), None);
}
