//! skynet.crypt's decoders of untrusted text (base64decode, hexdecode, desdecode, and md5.core's
//! decrypt) never panic, stay within their output bounds, and what they accept re-encodes
//! consistently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_lualib::crypt::{codec, des};
use skynet_lualib::md5core;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    match sel % 4 {
        0 => {
            if let Ok(out) = codec::base64_decode(input) {
                assert!(out.len() <= codec::base64_decoded_max(input.len()));
                // Decoding is a function of the alphabet symbols alone: the canonical encoding
                // of the result decodes back to it.
                assert_eq!(codec::base64_decode(&codec::base64_encode(&out)).unwrap(), out);
            }
        }
        1 => {
            if let Ok(out) = codec::hex_decode(input) {
                assert_eq!(out.len() * 2, input.len());
                assert_eq!(codec::hex_decode(&codec::hex_encode(&out)).unwrap(), out);
            }
        }
        2 => {
            if input.len() < 8 {
                return;
            }
            let (key, cipher) = input.split_at(8);
            let key: [u8; 8] = key.try_into().unwrap();
            let mode = if sel & 4 == 0 {
                des::Padding::Iso7816_4
            } else {
                des::Padding::Pkcs7
            };
            if let Ok(plain) = des::decrypt(&key, cipher, mode) {
                // A valid padding is the one encryption adds back.
                assert_eq!(des::encrypt(&key, &plain, mode), cipher);
            }
        }
        _ => {
            if let Some((seed, cipher)) = md5core::split_cipher(input) {
                let mut plain = vec![0; cipher.len()];
                md5core::cfb_decrypt(seed, b"key", cipher, &mut plain);
                let mut again = vec![0; plain.len()];
                md5core::cfb_encrypt(seed, b"key", &plain, &mut again);
                assert_eq!(again, cipher);
            }
        }
    }
});
