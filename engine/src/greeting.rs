//! The 64-byte ZMTP 3.x greeting (23/ZMTP, 37/ZMTP), for the NULL mechanism or CURVE.
//!
//! Validation is split in two steps so that a connection can be refused as soon as the
//! first 11 bytes (signature + major version) are in: a ZMTP 1.0/2.0 peer, or something that
//! is not ZeroMQ at all (an HTTP client on the wrong port), never makes us wait for 64 bytes
//! it will not send.

use crate::{Code, Error};

/// Length of a ZMTP 3.x greeting on the wire.
pub const GREETING_LEN: usize = 64;

/// Length of the signature that opens every greeting (`0xFF`, 8 padding bytes, `0x7F`).
pub const SIGNATURE_LEN: usize = 10;

/// Bytes needed before [`check_signature_and_major`] can decide: signature + major version.
pub const VERSION_PREFIX_LEN: usize = SIGNATURE_LEN + 1;

/// The version we announce: ZMTP 3.1 (adds PING/PONG to 3.0).
const VERSION_MAJOR: u8 = 3;
const VERSION_MINOR: u8 = 1;

const MECHANISM_OFFSET: usize = 12;
const MECHANISM_LEN: usize = 20;
const AS_SERVER_OFFSET: usize = 32;

/// The mechanism field for NULL: the name, NUL-padded to 20 bytes. libzmq compares all 20
/// bytes, so we do too.
pub const MECHANISM_NULL: [u8; MECHANISM_LEN] = *b"NULL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// Greeting validation errors are ordinary engine errors with [`Code::Proto`]; the alias
/// documents intent at the call sites.
pub type GreetingError = Error;

/// A parsed peer greeting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    /// ZMTP major version; always 3 or more once parsed.
    pub major: u8,
    /// ZMTP minor version: 0 for a 3.0 peer (no PING/PONG), 1 or more for 3.1+.
    pub minor: u8,
    /// The raw 20-byte, NUL-padded mechanism name.
    pub mechanism: [u8; 20],
    /// The peer's as-server flag (meaningless for NULL, kept for diagnostics).
    pub as_server: bool,
}

/// Builds our 64-byte greeting: ZMTP 3.1, mechanism NULL.
pub fn encode_greeting(as_server: bool) -> [u8; GREETING_LEN] {
    encode_greeting_for(&MECHANISM_NULL, as_server)
}

/// Builds our 64-byte greeting for `mechanism` (NUL-padded, e.g. [`MECHANISM_NULL`] or
/// `curve::MECHANISM`).
pub fn encode_greeting_for(mechanism: &[u8; MECHANISM_LEN], as_server: bool) -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[0] = 0xFF;
    g[SIGNATURE_LEN - 1] = 0x7F;
    g[SIGNATURE_LEN] = VERSION_MAJOR;
    g[SIGNATURE_LEN + 1] = VERSION_MINOR;
    g[MECHANISM_OFFSET..MECHANISM_OFFSET + MECHANISM_LEN].copy_from_slice(mechanism);
    g[AS_SERVER_OFFSET] = u8::from(as_server);
    g
}

fn proto(message: String) -> GreetingError {
    Error::new(Code::Proto, message)
}

/// Checks whatever part of the 10-byte signature `prefix` already holds (it may be shorter,
/// or longer: bytes past the signature are ignored). Lets a reader refuse a non-ZMTP peer
/// after its very first byte.
pub fn check_signature_prefix(prefix: &[u8]) -> Result<(), GreetingError> {
    if let Some(&first) = prefix.first() {
        if first != 0xFF {
            return Err(proto(format!(
                "invalid ZMTP greeting: first byte 0x{first:02x}, expected 0xff (not a ZeroMQ 3.x peer)"
            )));
        }
    }
    // libzmq only looks at bit 0 of the last signature byte: a ZMTP 1.0 peer whose identity
    // length happens to start with 0xFF has a flags byte with bit 0 clear there.
    if let Some(&last) = prefix.get(SIGNATURE_LEN - 1) {
        if last & 0x01 == 0 {
            return Err(proto(format!(
                "invalid ZMTP greeting signature (byte 9 is 0x{last:02x}): not a ZeroMQ 3.x peer"
            )));
        }
    }
    Ok(())
}

/// Validates the signature and the major version from the first 11 bytes of a greeting
/// (more are ignored) and returns the major version. Fewer than 11 bytes is an error, so
/// call it only once they are in (use [`check_signature_prefix`] before that).
pub fn check_signature_and_major(first11: &[u8]) -> Result<u8, GreetingError> {
    check_signature_prefix(first11)?;
    let Some(&major) = first11.get(SIGNATURE_LEN) else {
        return Err(proto(format!(
            "truncated ZMTP greeting: {} bytes, need {VERSION_PREFIX_LEN}",
            first11.len()
        )));
    };
    if major < VERSION_MAJOR {
        return Err(proto(format!(
            "unsupported ZMTP version {major} (zeropipe speaks ZMTP 3.x)"
        )));
    }
    Ok(major)
}

/// Parses and validates a whole greeting: ZMTP 3.x (any minor), mechanism NULL.
pub fn parse_greeting(buf: &[u8; GREETING_LEN]) -> Result<Greeting, GreetingError> {
    parse_greeting_for(buf, &MECHANISM_NULL)
}

/// Parses and validates a whole greeting: ZMTP 3.x (any minor), mechanism `expected`. A
/// peer offering another mechanism is refused: a CURVE socket never falls back to NULL, and
/// a NULL socket does not talk to a CURVE peer (both would be a downgrade).
pub fn parse_greeting_for(
    buf: &[u8; GREETING_LEN],
    expected: &[u8; MECHANISM_LEN],
) -> Result<Greeting, GreetingError> {
    let major = check_signature_and_major(&buf[..VERSION_PREFIX_LEN])?;
    let minor = buf[SIGNATURE_LEN + 1];
    let mut mechanism = [0u8; MECHANISM_LEN];
    mechanism.copy_from_slice(&buf[MECHANISM_OFFSET..MECHANISM_OFFSET + MECHANISM_LEN]);
    if mechanism != *expected {
        let name = mechanism_name(&mechanism);
        let ours = mechanism_name(expected);
        return Err(proto(format!(
            "unsupported security mechanism \"{name}\" (this socket speaks only {ours})"
        )));
    }
    Ok(Greeting {
        major,
        minor,
        mechanism,
        as_server: buf[AS_SERVER_OFFSET] != 0,
    })
}

/// The mechanism name for messages: NUL padding dropped, anything unprintable escaped so a
/// hostile peer cannot put control characters into our logs.
fn mechanism_name(mechanism: &[u8; MECHANISM_LEN]) -> String {
    let end = mechanism.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    mechanism[..end].escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeting_with(major: u8, minor: u8, mechanism: &[u8]) -> [u8; GREETING_LEN] {
        let mut g = encode_greeting(false);
        g[SIGNATURE_LEN] = major;
        g[SIGNATURE_LEN + 1] = minor;
        g[MECHANISM_OFFSET..MECHANISM_OFFSET + MECHANISM_LEN].fill(0);
        g[MECHANISM_OFFSET..MECHANISM_OFFSET + mechanism.len()].copy_from_slice(mechanism);
        g
    }

    #[test]
    fn our_greeting_has_the_zmtp31_null_layout() {
        let g = encode_greeting(false);
        assert_eq!(&g[..10], &[0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F]);
        assert_eq!(&g[10..12], &[3, 1]);
        assert_eq!(&g[12..16], b"NULL");
        assert!(g[16..].iter().all(|&b| b == 0));
        assert_eq!(encode_greeting(true)[32], 1);
    }

    #[test]
    fn our_greeting_parses_back() {
        let parsed = parse_greeting(&encode_greeting(true)).unwrap();
        assert_eq!((parsed.major, parsed.minor, parsed.as_server), (3, 1, true));
        assert_eq!(parsed.mechanism, MECHANISM_NULL);
    }

    #[test]
    fn minor_zero_and_higher_minors_are_accepted() {
        for minor in [0, 1, 9, 255] {
            assert_eq!(
                parse_greeting(&greeting_with(3, minor, b"NULL"))
                    .unwrap()
                    .minor,
                minor
            );
        }
    }

    #[test]
    fn higher_majors_are_accepted() {
        assert_eq!(
            parse_greeting(&greeting_with(4, 0, b"NULL")).unwrap().major,
            4
        );
    }

    #[test]
    fn majors_below_three_are_rejected() {
        for major in [0, 1, 2] {
            let err =
                check_signature_and_major(&greeting_with(major, 0, b"NULL")[..11]).unwrap_err();
            assert_eq!(err.code, Code::Proto);
            assert!(
                err.message.contains("unsupported ZMTP version"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn non_zmtp_bytes_are_rejected_from_the_first_byte() {
        let err = check_signature_prefix(b"G").unwrap_err();
        assert_eq!(err.code, Code::Proto);
        assert!(check_signature_and_major(b"GET / HTTP/1.1\r\n").is_err());
    }

    #[test]
    fn signature_byte9_needs_only_bit0() {
        let mut g = encode_greeting(false);
        g[9] = 0x01;
        assert_eq!(check_signature_and_major(&g[..11]).unwrap(), 3);
        g[9] = 0x7E;
        assert!(check_signature_and_major(&g[..11]).is_err());
    }

    #[test]
    fn a_partial_valid_signature_is_not_an_error() {
        let g = encode_greeting(false);
        for n in 0..=SIGNATURE_LEN {
            check_signature_prefix(&g[..n]).unwrap();
        }
    }

    #[test]
    fn fewer_than_eleven_bytes_is_an_error_not_a_panic() {
        let g = encode_greeting(false);
        assert!(check_signature_and_major(&g[..10]).is_err());
        assert!(check_signature_and_major(&[]).is_err());
    }

    #[test]
    fn other_mechanisms_are_rejected_by_name() {
        let err = parse_greeting(&greeting_with(3, 1, b"PLAIN")).unwrap_err();
        assert_eq!(err.code, Code::Proto);
        assert!(err.message.contains("\"PLAIN\""), "{}", err.message);
        let err = parse_greeting(&greeting_with(3, 1, b"CURVE")).unwrap_err();
        assert!(err.message.contains("\"CURVE\""), "{}", err.message);
    }

    #[test]
    fn unprintable_mechanism_names_are_escaped() {
        let err = parse_greeting(&greeting_with(3, 1, b"NU\x1b[2J\xff")).unwrap_err();
        assert!(!err.message.contains('\x1b'));
        assert!(err.message.contains("\\x1b[2J\\xff"), "{}", err.message);
    }

    #[test]
    fn null_followed_by_garbage_is_not_null() {
        assert!(parse_greeting(&greeting_with(3, 1, b"NULL\0X")).is_err());
    }
}
