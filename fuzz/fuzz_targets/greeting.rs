//! The greeting checks on arbitrary 0..=128-byte inputs.
//!
//! Asserts that nothing panics and that the three checks agree with each other and with the
//! wire layout:
//! - `check_signature_prefix` never accepts a longer prefix after refusing a shorter one (a
//!   reader may refuse after the first bad byte and never regret it);
//! - `check_signature_and_major` accepts exactly when there are 11 bytes, the prefix check
//!   passes and byte 10 is at least 3, and then returns byte 10;
//! - `parse_greeting` accepts exactly when that passes and the mechanism is NULL padded
//!   with NULs, and its fields are the bytes at their offsets;
//! - every refusal is EPROTO and its message holds no control characters (the peer chooses
//!   the mechanism name we quote);
//! - our own greeting parses back, and an accepted 3.1 greeting laid out as ours is
//!   byte-for-byte what `encode_greeting` writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zeropipe_engine::greeting::{
    check_signature_and_major, check_signature_prefix, encode_greeting, parse_greeting,
    GREETING_LEN, VERSION_PREFIX_LEN,
};
use zeropipe_engine::{Code, Error};

const NULL: [u8; 20] = *b"NULL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fn refused(e: &Error) {
    assert_eq!(e.code, Code::Proto, "{e}");
    assert!(
        !e.message.chars().any(char::is_control),
        "control character in {:?}",
        e.message
    );
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 128 {
        return;
    }

    let mut refused_at = None;
    for n in 0..=data.len() {
        match check_signature_prefix(&data[..n]) {
            Ok(()) => assert!(
                refused_at.is_none(),
                "refused {refused_at:?} bytes, accepted {n}"
            ),
            Err(e) => {
                refused(&e);
                refused_at.get_or_insert(n);
            }
        }
    }
    let prefix_ok = refused_at.is_none();
    // The refusal comes from byte 0 or byte 9 and from nothing else.
    if let Some(n) = refused_at {
        assert!(n == 1 || n == 10, "refused at {n} bytes");
    }

    let major = check_signature_and_major(data);
    match &major {
        Ok(major) => {
            assert!(prefix_ok && data.len() >= VERSION_PREFIX_LEN);
            assert_eq!(*major, data[10]);
            assert!(*major >= 3);
        }
        Err(e) => {
            refused(e);
            assert!(!prefix_ok || data.len() < VERSION_PREFIX_LEN || data[10] < 3);
        }
    }

    if let Some(raw) = data.first_chunk::<GREETING_LEN>() {
        match parse_greeting(raw) {
            Ok(g) => {
                assert_eq!(major.as_ref().ok(), Some(&g.major));
                assert_eq!(g.minor, raw[11]);
                assert_eq!(g.mechanism, NULL);
                assert_eq!(g.as_server, raw[32] != 0);
                let ours = encode_greeting(g.as_server);
                let laid_out_as_ours = g.major == 3
                    && g.minor == 1
                    && raw[1..9].iter().all(|&b| b == 0)
                    && raw[9] == 0x7F
                    && raw[32] <= 1
                    && raw[33..].iter().all(|&b| b == 0);
                assert_eq!(laid_out_as_ours, raw == &ours);
            }
            Err(e) => {
                refused(&e);
                assert!(major.is_err() || raw[12..32] != NULL);
            }
        }
    }

    for as_server in [false, true] {
        let g = parse_greeting(&encode_greeting(as_server)).expect("our own greeting");
        assert_eq!((g.major, g.minor, g.as_server), (3, 1, as_server));
    }
});
