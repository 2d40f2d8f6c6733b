//! skynet.netpack's framing never panics and never invents bytes: whatever a client sends, in
//! whatever pieces, the packets it yields are exactly the 2-byte-length frames of the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_lualib::netpack::{Queue, DEFAULT_LIMITS};

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(split % 13) + 1;
    let mut q = Queue::new(DEFAULT_LIMITS);
    let mut got = Vec::new();
    for piece in stream.chunks(step) {
        match q.feed(3, piece) {
            Ok(packets) => got.extend(packets),
            Err(_) => return,
        }
    }
    // The expected packets: parse the whole stream at once.
    let mut want = Vec::new();
    let mut rest = stream;
    while rest.len() >= 2 {
        let len = usize::from(rest[0]) << 8 | usize::from(rest[1]);
        if rest.len() - 2 < len {
            break;
        }
        want.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    assert_eq!(got, want);
});
