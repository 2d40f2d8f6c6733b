//! skynet.cluster.core's decoders never panic on whatever a peer sends, and what they accept
//! re-encodes to the same bytes; a stream of requests reassembles within a fixed memory bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_lualib::cluster::codec::{self, Addr, Assembler, Request, Response, TEMP_LENGTH};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let mut buf = vec![0u8; TEMP_LENGTH];
    // The whole input as one packet of each kind.
    if let Ok(req) = codec::decode_request(data) {
        let n = match req {
            Request::Single { addr, session, msg } if msg.len() < codec::MULTI_PART => match addr {
                Addr::Name(nm) if nm.is_empty() => None,
                _ => Some(codec::request_head(
                    &mut buf,
                    addr,
                    session,
                    msg,
                    session == 0,
                )),
            },
            Request::Trace(tag) => codec::trace(&mut buf, tag).ok(),
            Request::Part {
                session,
                data: d,
                more,
            } if d.len() <= codec::MULTI_PART => {
                Some(codec::request_part(&mut buf, session, d, !more))
            }
            _ => None,
        };
        if let Some(n) = n {
            assert_eq!(&buf[2..n], data);
        }
    }
    if let Some(Response::Data {
        session,
        ok,
        data: d,
        more: false,
    }) = codec::decode_response(data)
    {
        if d.len() <= codec::MULTI_PART && data[4] <= 1 {
            let n = codec::response(&mut buf, session, ok, d);
            assert_eq!(&buf[2..n], data);
        }
    }
    // The input as a stream of length-prefixed request packets, reassembled with a bound.
    let mut asm = Assembler::default();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(rest[0]) << 8 | usize::from(rest[1]);
        let Some(packet) = rest.get(2..2 + len) else {
            break;
        };
        if let Ok(req) = codec::decode_request(packet) {
            if let Ok(Some((_, msg))) = asm.feed(&req, LIMIT) {
                assert!(msg.len() <= LIMIT.max(packet.len()));
            }
        }
        rest = &rest[2 + len..];
    }
});
