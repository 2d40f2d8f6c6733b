//! The node-to-node wire format of the harbor.
//!
//! After a one-byte handshake (each side's harbor id), a link carries frames: a 4-byte
//! big-endian length `L` whose first byte must be 0 (so `L` < 16 MiB), then `L` bytes: the
//! payload followed by a 12-byte trailer of big-endian u32s: source, destination (the message
//! type in the top 8 bits, the local handle below), session.
//!
//! The decoder is incremental (bytes arrive in arbitrary pieces) and rejects malformed input
//! with an error instead of trusting it: a frame shorter than its trailer or longer than the
//! limit closes that link only.

use std::fmt;

/// Bytes of the trailer after each payload.
pub const TRAILER: usize = 12;
/// Largest frame body (`L`): the first length byte must be 0.
pub const MAX_FRAME: usize = 0x00ff_ffff;

/// One decoded message.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub source: u32,
    /// The local handle (low 24 bits) at the receiving node.
    pub handle: u32,
    pub ty: u8,
    pub session: i32,
    pub payload: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum WireError {
    /// The first length byte was not 0.
    TooLong(u8),
    /// A frame body shorter than its trailer.
    TooShort(usize),
    /// The peer's handshake byte is not the harbor id we expect.
    Handshake { expected: u8, got: u8 },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooLong(b) => write!(f, "message is too long (length byte 0x{b:02x})"),
            WireError::TooShort(n) => write!(
                f,
                "frame of {n} bytes is shorter than its {TRAILER}-byte trailer"
            ),
            WireError::Handshake { expected, got } => {
                write!(f, "invalid handshake id {got} (expected {expected})")
            }
        }
    }
}

enum State {
    /// Waiting for the peer's id byte (the side that connected).
    Handshake(u8),
    Header {
        got: usize,
        len: [u8; 4],
    },
    Content {
        len: usize,
        body: Vec<u8>,
    },
}

/// Incremental frame decoder for one link.
pub struct Decoder {
    state: State,
}

impl Decoder {
    /// A decoder that first expects the peer's handshake byte `expected`.
    pub fn expecting_handshake(expected: u8) -> Decoder {
        Decoder {
            state: State::Handshake(expected),
        }
    }

    /// A decoder already past the handshake (the accepting side).
    pub fn new() -> Decoder {
        Decoder {
            state: State::Header {
                got: 0,
                len: [0; 4],
            },
        }
    }

    pub fn in_handshake(&self) -> bool {
        matches!(self.state, State::Handshake(_))
    }

    /// Feeds bytes; complete frames go to `out`. After an error the link must be closed.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), WireError> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Handshake(expected) => {
                    let got = bytes[0];
                    if got != *expected {
                        return Err(WireError::Handshake {
                            expected: *expected,
                            got,
                        });
                    }
                    bytes = &bytes[1..];
                    self.state = State::Header {
                        got: 0,
                        len: [0; 4],
                    };
                }
                State::Header { got, len } => {
                    let take = (4 - *got).min(bytes.len());
                    len[*got..*got + take].copy_from_slice(&bytes[..take]);
                    *got += take;
                    bytes = &bytes[take..];
                    if *got == 4 {
                        if len[0] != 0 {
                            return Err(WireError::TooLong(len[0]));
                        }
                        let n = u32::from_be_bytes(*len) as usize;
                        if n < TRAILER {
                            return Err(WireError::TooShort(n));
                        }
                        self.state = State::Content {
                            len: n,
                            body: Vec::with_capacity(n.min(64 * 1024)),
                        };
                    }
                }
                State::Content { len, body } => {
                    let take = (*len - body.len()).min(bytes.len());
                    body.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if body.len() == *len {
                        let mut body = std::mem::take(body);
                        self.state = State::Header {
                            got: 0,
                            len: [0; 4],
                        };
                        out.push(split_frame(&mut body));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

fn split_frame(body: &mut Vec<u8>) -> Frame {
    let at = body.len() - TRAILER;
    let word = |i: usize| {
        u32::from_be_bytes([
            body[at + i],
            body[at + i + 1],
            body[at + i + 2],
            body[at + i + 3],
        ])
    };
    let (source, destination, session) = (word(0), word(4), word(8));
    body.truncate(at);
    Frame {
        source,
        handle: destination & 0x00ff_ffff,
        ty: (destination >> 24) as u8,
        session: session as i32,
        payload: std::mem::take(body),
    }
}

/// Encodes one frame; `None` if the payload is too large for the format.
pub fn encode(source: u32, handle: u32, ty: u8, session: i32, payload: &[u8]) -> Option<Vec<u8>> {
    let body = payload.len() + TRAILER;
    if body > MAX_FRAME {
        return None;
    }
    let mut out = Vec::with_capacity(4 + body);
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&source.to_be_bytes());
    out.extend_from_slice(&((u32::from(ty) << 24) | (handle & 0x00ff_ffff)).to_be_bytes());
    out.extend_from_slice(&(session as u32).to_be_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_one_byte_pieces() {
        let a = encode(0x0100_0002, 0x0200_0005, 10, 7, b"hello").unwrap();
        let b = encode(3, 4, 1, -1, b"").unwrap();
        let stream: Vec<u8> = std::iter::once(2u8).chain(a).chain(b).collect();
        let mut d = Decoder::expecting_handshake(2);
        let mut out = Vec::new();
        for byte in &stream {
            d.push(std::slice::from_ref(byte), &mut out).unwrap();
        }
        assert_eq!(
            out,
            vec![
                Frame {
                    source: 0x0100_0002,
                    handle: 5,
                    ty: 10,
                    session: 7,
                    payload: b"hello".to_vec()
                },
                Frame {
                    source: 3,
                    handle: 4,
                    ty: 1,
                    session: -1,
                    payload: vec![]
                },
            ]
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_crash() {
        let mut out = Vec::new();
        assert_eq!(
            Decoder::expecting_handshake(3).push(&[4], &mut out),
            Err(WireError::Handshake {
                expected: 3,
                got: 4
            })
        );
        assert_eq!(
            Decoder::new().push(&[1, 0, 0, 0], &mut out),
            Err(WireError::TooLong(1))
        );
        assert_eq!(
            Decoder::new().push(&[0, 0, 0, 5, 1, 2], &mut out),
            Err(WireError::TooShort(5))
        );
        assert!(encode(0, 0, 0, 0, &vec![0u8; MAX_FRAME]).is_none());
        // Pseudo-random bytes never panic.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let mut d = Decoder::new();
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x & 0x0f) as u8
                })
                .collect();
            let _ = d.push(&bytes, &mut out);
        }
    }
}
