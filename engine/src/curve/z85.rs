//! Z85 (rfc 32), the text form of CURVE keys: every 4 bytes, read as a big-endian 32-bit
//! number, become 5 characters of an 85-character alphabet. Input lengths must be multiples
//! of 4 (encoding) and 5 (decoding); a character outside the alphabet, or a group of 5
//! characters worth more than 2^32 - 1, is refused. Every refusal is `EINVAL`: the input is
//! always a user's argument (a key option), never peer data.
//!
//! Keys ([`parse_key`]) are accepted as libzmq's `zmq_setsockopt` accepts them: 32 raw
//! bytes, 40 Z85 characters, or 41 bytes of Z85 text ending in a NUL.

use crate::{Code, Error};

const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Character → value, 0xFF for characters outside the alphabet.
const DECODE: [u8; 256] = {
    let mut table = [0xFFu8; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// The length of a key's Z85 text.
pub const KEY_TEXT_LEN: usize = 40;

fn inval(message: impl Into<String>) -> Error {
    Error::new(Code::Inval, message)
}

/// Encodes `data`, whose length must be a multiple of 4.
pub fn encode(data: &[u8]) -> Result<String, Error> {
    if !data.len().is_multiple_of(4) {
        return Err(inval(format!(
            "Z85 encoding needs a multiple of 4 bytes, got {}",
            data.len()
        )));
    }
    let mut out = String::with_capacity(data.len() / 4 * 5);
    for group in data.chunks_exact(4) {
        let mut value = u32::from_be_bytes([group[0], group[1], group[2], group[3]]);
        let mut chars = [0u8; 5];
        for c in chars.iter_mut().rev() {
            *c = ALPHABET[(value % 85) as usize];
            value /= 85;
        }
        // The alphabet is ASCII.
        out.extend(chars.iter().map(|&c| char::from(c)));
    }
    Ok(out)
}

/// Decodes Z85 `text`, whose length must be a multiple of 5.
pub fn decode(text: &str) -> Result<Vec<u8>, Error> {
    decode_bytes(text.as_bytes())
}

fn decode_bytes(text: &[u8]) -> Result<Vec<u8>, Error> {
    if !text.len().is_multiple_of(5) {
        return Err(inval(format!(
            "Z85 text must be a multiple of 5 characters long, got {}",
            text.len()
        )));
    }
    let mut out = Vec::with_capacity(text.len() / 5 * 4);
    for (g, group) in text.chunks_exact(5).enumerate() {
        let mut value: u64 = 0;
        for (i, &c) in group.iter().enumerate() {
            let digit = DECODE[usize::from(c)];
            if digit == 0xFF {
                return Err(inval(format!(
                    "invalid Z85 character {:?} at position {}",
                    char::from(c).escape_default().to_string(),
                    g * 5 + i
                )));
            }
            value = value * 85 + u64::from(digit);
        }
        let value = u32::try_from(value).map_err(|_| {
            inval(format!(
                "invalid Z85 group at position {}: its value exceeds 2^32 - 1",
                g * 5
            ))
        })?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(out)
}

/// The Z85 text of a 32-byte key.
pub fn encode_key(key: &[u8; 32]) -> String {
    // 32 is a multiple of 4.
    encode(key).unwrap_or_default()
}

/// Decodes a key from exactly 40 Z85 characters.
pub fn key_from_z85(text: &str) -> Result<[u8; 32], Error> {
    if text.len() != KEY_TEXT_LEN {
        return Err(inval(format!(
            "a CURVE key in Z85 is {KEY_TEXT_LEN} characters, got {}",
            text.len()
        )));
    }
    let bytes = decode(text)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Reads a key as libzmq's `zmq_setsockopt` does: 32 bytes are the raw key, 40 bytes are
/// its Z85 text, 41 bytes are Z85 text and a terminating NUL. Anything else is `EINVAL`.
pub fn parse_key(input: &[u8]) -> Result<[u8; 32], Error> {
    let text = match input.len() {
        32 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(input);
            return Ok(key);
        }
        KEY_TEXT_LEN => input,
        41 if input[KEY_TEXT_LEN] == 0 => &input[..KEY_TEXT_LEN],
        n => {
            return Err(inval(format!(
                "a CURVE key is 32 bytes or 40 Z85 characters, got {n} bytes"
            )))
        }
    };
    let bytes = decode_bytes(text)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc32_test_vector() {
        let data = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(encode(&data).unwrap(), "HelloWorld");
        assert_eq!(decode("HelloWorld").unwrap(), data);
    }

    #[test]
    fn zmq_curve_man_page_keys_round_trip() {
        // The test keys of libzmq's zmq_curve(7).
        for text in [
            "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID",
            "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs",
            "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
            "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6",
        ] {
            let key = key_from_z85(text).unwrap();
            assert_eq!(encode_key(&key), text);
            assert_eq!(parse_key(text.as_bytes()).unwrap(), key);
            let mut with_nul = text.as_bytes().to_vec();
            with_nul.push(0);
            assert_eq!(parse_key(&with_nul).unwrap(), key);
            assert_eq!(parse_key(&key).unwrap(), key);
        }
    }

    #[test]
    fn extremes_round_trip() {
        assert_eq!(encode(&[0; 4]).unwrap(), "00000");
        assert_eq!(encode(&[0xFF; 4]).unwrap(), "%nSc0");
        assert_eq!(decode("%nSc0").unwrap(), [0xFF; 4]);
        assert_eq!(encode(&[]).unwrap(), "");
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn every_value_of_a_sample_round_trips() {
        let mut x: u32 = 1;
        for _ in 0..10_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let bytes = x.to_be_bytes();
            let text = encode(&bytes).unwrap();
            assert_eq!(text.len(), 5);
            assert_eq!(decode(&text).unwrap(), bytes);
        }
        let long: Vec<u8> = (0..=255u8).collect();
        assert_eq!(decode(&encode(&long).unwrap()).unwrap(), long);
    }

    #[test]
    fn bad_lengths_are_einval() {
        for n in [1, 2, 3, 5, 31, 33] {
            assert_eq!(encode(&vec![0; n]).unwrap_err().code, Code::Inval, "{n}");
        }
        for s in ["1", "1234", "123456", "HelloWorl"] {
            assert_eq!(decode(s).unwrap_err().code, Code::Inval, "{s}");
        }
        for n in [0usize, 31, 33, 39, 42] {
            assert_eq!(
                parse_key(&vec![b'0'; n]).unwrap_err().code,
                Code::Inval,
                "{n}"
            );
        }
        // 41 bytes without the NUL.
        assert_eq!(parse_key(&[b'0'; 41]).unwrap_err().code, Code::Inval);
        assert_eq!(key_from_z85("HelloWorld").unwrap_err().code, Code::Inval);
    }

    #[test]
    fn characters_outside_the_alphabet_are_einval() {
        for s in [
            "Hello World",
            "Hell\"World",
            "Hello,orld",
            "HelloWorl~",
            "\u{e9}elloWorl",
        ] {
            // Some of these are 11 bytes: pad or cut to a multiple of 5 so that the
            // character check, not the length check, is what refuses them.
            let mut bytes = s.as_bytes().to_vec();
            bytes.truncate(10);
            let err = decode_bytes(&bytes).unwrap_err();
            assert_eq!(err.code, Code::Inval, "{s}");
            assert!(err.message.contains("character"), "{}", err.message);
        }
        let err = decode("abc\0d").unwrap_err();
        assert!(err.message.contains("\\u{0}"), "{}", err.message);
    }

    #[test]
    fn groups_above_u32_max_are_einval() {
        // "%nSc0" is 2^32 - 1; the next values up to "#####" overflow.
        assert!(decode("%nSc1").is_err());
        assert!(decode("#####").is_err());
        let err = decode("00000%nSc1").unwrap_err();
        assert_eq!(err.code, Code::Inval);
        assert!(err.message.contains("position 5"), "{}", err.message);
    }
}
