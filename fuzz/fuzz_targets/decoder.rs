//! The frame decoder on arbitrary peer bytes, under a small, a large and no maxMessageSize.
//!
//! Asserts, for each limit:
//! - the same bytes decode to the same items and the same error (or none), and leave the
//!   decoder in the same state, whether they arrive in one piece, in the fuzzer's pieces or
//!   one byte at a time;
//! - no message costs more than the limit (bytes plus `FRAME_OVERHEAD` per extra frame), no
//!   message is empty, no command is over `MAX_COMMAND_SIZE`, no PING context over 16 bytes,
//!   and no more payload comes out than went in;
//! - `decode` never grows the caller's buffer, and the decoder's own allocations (frame
//!   lists, command fields, errors and the items it returns) stay within a constant factor
//!   of the bytes supplied: a declared size never becomes memory;
//! - everything decoded re-encodes to bytes that decode back to the same items;
//! - a data frame's body handed over whole (`supply_body`, as the connection does with a
//!   large body it reads into a buffer of its own) decodes as the same items and error.
//!
//! Input layout: see `zeropipe_fuzz::Input` (the control byte's high nibble is unused).
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zeropipe_engine::codec::{
    encode_command, encode_message, Command, Decoded, Decoder, FRAME_OVERHEAD, MAX_COMMAND_SIZE,
};
use zeropipe_engine::{Code, Error, Message};
use zeropipe_fuzz::{metered, peak, reset_meter, Input};

const LIMITS: [i64; 3] = [1024, 256 << 20, -1];

/// Bytes the decoder may hold per byte supplied. The worst legitimate case is a run of
/// empty MORE frames without a limit: 32 bytes of `Bytes` per 2 wire bytes, up to three
/// times over while the frame list reallocates; small commands returned as items cost a
/// little less (an empty READY's 4-property `Vec` is 224 bytes for 8 wire bytes).
const BYTES_PER_INPUT_BYTE: usize = 64;
/// Fixed costs: error messages, a first property `Vec`, the shared buffer header.
const SLACK: usize = 4096;

#[derive(Debug, PartialEq)]
struct Outcome {
    items: Vec<Decoded>,
    error: Option<Error>,
    /// (bytes left in the buffer, in_message, needed) once everything is fed; only
    /// meaningful without an error.
    end: Option<(usize, bool, usize)>,
}

fn cost(m: &Message) -> u64 {
    m.byte_len() as u64 + (m.len() as u64).saturating_sub(1) * FRAME_OVERHEAD
}

/// A lower bound on the wire bytes behind a command's fields. Names and reasons are lossily
/// decoded, so they are counted in chars: each stands for at least one wire byte, while a
/// U+FFFD standing for one invalid byte is three bytes long.
fn command_size(c: &Command) -> usize {
    let text = |s: &str| s.chars().count();
    match c {
        Command::Ready(props) => props.iter().map(|(n, v)| text(n) + v.len()).sum(),
        Command::Error(reason) => text(reason),
        Command::Ping { context, .. } | Command::Pong { context } => context.len(),
        Command::Unknown { name, data } => text(name) + data.len(),
    }
}

fn decode_in<'a>(limit: i64, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut dec = Decoder::new(limit);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut fed = 0usize;
    let mut out_bytes = 0usize;
    reset_meter();
    for piece in pieces {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            let capacity = buf.capacity();
            let r = metered(|| dec.decode(&mut buf));
            assert!(
                buf.capacity() <= capacity,
                "decode grew the read buffer from {capacity} to {}",
                buf.capacity()
            );
            let held = peak();
            assert!(
                held <= BYTES_PER_INPUT_BYTE * fed + SLACK,
                "the decoder holds {held} bytes after {fed} bytes supplied"
            );
            match r {
                Ok(Some(d)) => {
                    match &d {
                        Decoded::Message(m) => {
                            assert!(!m.is_empty(), "a message without frames");
                            if let Ok(limit) = u64::try_from(limit) {
                                assert!(
                                    cost(m) <= limit,
                                    "a message costing {} passed maxMessageSize {limit}",
                                    cost(m)
                                );
                            }
                            out_bytes += m.byte_len();
                        }
                        Decoded::Command(c) => {
                            assert!(command_size(c) as u64 <= MAX_COMMAND_SIZE, "{c:?}");
                            if let Command::Ping { context, .. } = c {
                                assert!(context.len() <= 16, "PING context of {}", context.len());
                            }
                            out_bytes += command_size(c);
                        }
                    }
                    assert!(out_bytes <= fed, "{out_bytes} bytes out of {fed} in");
                    items.push(d);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(e.code, Code::Proto, "{e}");
                    return Outcome {
                        items,
                        error: Some(e),
                        end: None,
                    };
                }
            }
        }
        assert!(buf.len() <= fed);
    }
    Outcome {
        items,
        error: None,
        end: Some((buf.len(), dec.in_message(), dec.needed())),
    }
}

/// True when re-encoding `d` must give it back exactly: names and reasons come from the
/// peer lossily decoded, and one whose U+FFFD replacements pushed it past 255 bytes is
/// legitimately truncated by the encoder.
fn round_trips(d: &Decoded) -> bool {
    match d {
        Decoded::Message(_) => true,
        Decoded::Command(Command::Ready(props)) => props.iter().all(|(n, _)| n.len() <= 255),
        Decoded::Command(Command::Error(reason)) => reason.len() <= 255,
        Decoded::Command(Command::Unknown { name, .. }) => name.len() <= 255,
        Decoded::Command(_) => true,
    }
}

fn check_reencoding(limit: i64, items: &[Decoded]) {
    let items: Vec<Decoded> = items.iter().filter(|d| round_trips(d)).cloned().collect();
    let mut bytes = BytesMut::new();
    for d in &items {
        match d {
            Decoded::Message(m) => encode_message(m, &mut bytes),
            Decoded::Command(c) => encode_command(c, &mut bytes),
        }
    }
    let again = decode_in(limit, [&bytes[..]]);
    assert_eq!(again.error, None, "re-encoded items fail to decode");
    assert_eq!(again.items, items, "re-encoded items decode differently");
    assert_eq!(
        again.end,
        Some((0, false, 2)),
        "re-encoded stream leaves a partial frame"
    );
}

/// Decodes `stream` as the connection reads it when bodies are large: headers as they come
/// (here a byte at a time), and each pending data frame's body gathered in a buffer of its
/// own — what the read buffer held of it, then the rest — and handed over whole.
fn decode_supplying_bodies(limit: i64, stream: &[u8]) -> (Vec<Decoded>, Option<Error>) {
    let mut dec = Decoder::new(limit);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut rest = stream;
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(d)) => {
                items.push(d);
                continue;
            }
            Ok(None) => {}
            Err(e) => return (items, Some(e)),
        }
        if let Some(len) = dec.pending_body() {
            let missing = len - buf.len();
            if rest.len() >= missing {
                let mut body = BytesMut::with_capacity(len);
                body.extend_from_slice(&buf.split());
                body.extend_from_slice(&rest[..missing]);
                rest = &rest[missing..];
                match dec.supply_body(Bytes::from(body)) {
                    Ok(Some(d)) => items.push(d),
                    Ok(None) => {}
                    Err(e) => return (items, Some(e)),
                }
                continue;
            }
        }
        let Some((first, tail)) = rest.split_first() else {
            return (items, None);
        };
        buf.extend_from_slice(&[*first]);
        rest = tail;
    }
}

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let stream = input.stream;
    for limit in LIMITS {
        let whole = decode_in(limit, [stream]);
        let chunked = decode_in(limit, input.pieces());
        assert_eq!(
            whole, chunked,
            "limit {limit}: one piece vs the fuzzer's pieces"
        );
        let bytewise = decode_in(limit, stream.chunks(1));
        assert_eq!(
            whole, bytewise,
            "limit {limit}: one piece vs byte at a time"
        );
        check_reencoding(limit, &whole.items);
        let (items, error) = decode_supplying_bodies(limit, stream);
        assert_eq!(
            (&whole.items, &whole.error),
            (&items, &error),
            "limit {limit}: one piece vs bodies supplied whole"
        );
    }
});
