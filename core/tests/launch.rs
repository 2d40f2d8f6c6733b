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
}
