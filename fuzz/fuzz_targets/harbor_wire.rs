//! The harbor link decoder never panics, whatever the peer sends, in whatever pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_cservice::harbor::wire::{encode, Decoder};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut out = Vec::new();
    let mut d = if split & 1 == 0 {
        Decoder::new()
    } else {
        Decoder::expecting_handshake(split >> 1)
    };
    // Feed in pieces whose sizes come from the input itself.
    let step = usize::from(split % 7) + 1;
    for piece in rest.chunks(step) {
        if d.push(piece, &mut out).is_err() {
            break;
        }
    }
    // Whatever decoded re-encodes to a frame that decodes to the same thing.
    for f in out {
        let bytes = encode(f.source, f.handle, f.ty, f.session, &f.payload).expect("fits");
        let mut again = Vec::new();
        Decoder::new().push(&bytes, &mut again).expect("valid");
        assert_eq!(again, vec![f]);
    }
});
