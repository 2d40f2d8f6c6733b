//! The gate's packet framer never panics, and the packets it finds do not depend on how the
//! stream was cut into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_cservice::gate::Framer;

fn run(stream: &[u8], header: usize, step: usize) -> (Vec<Vec<u8>>, bool) {
    let mut f = Framer::default();
    let mut out = Vec::new();
    let mut failed = false;
    for piece in stream.chunks(step) {
        if f.feed(piece, header, &mut out).is_err() {
            failed = true;
            break;
        }
    }
    (out.iter().map(|p| p.as_slice().to_vec()).collect(), failed)
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let header = if ctl & 1 == 0 { 2 } else { 4 };
    let step = usize::from(ctl >> 1) % 17 + 1;
    let whole = run(stream, header, stream.len().max(1));
    assert_eq!(run(stream, header, step), whole);
    assert_eq!(run(stream, header, 1), whole);
});
