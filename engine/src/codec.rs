//! ZMTP 3.x framing: an incremental, allocation-bounded frame decoder and the encoders for
//! messages, frame headers and commands.
//!
//! Wire layout of a frame: one flags byte (bit 0 MORE, bit 1 LONG, bit 2 COMMAND, the rest
//! reserved and zero), the size (1 byte, or 8 bytes big-endian when LONG), then the body.
//!
//! The decoder never trusts a declared size: a frame's body is taken out of the read buffer
//! only once all of it is there, so memory follows the bytes actually received, and sizes
//! over `maxMessageSize` (or over [`MAX_COMMAND_SIZE`] for commands) are refused at the
//! header, before any of the body is read.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{Code, Error, Message};

const FLAG_MORE: u8 = 0x01;
const FLAG_LONG: u8 = 0x02;
const FLAG_COMMAND: u8 = 0x04;
const FLAGS_RESERVED: u8 = !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND);

const SHORT_HEADER_LEN: usize = 2;
const LONG_HEADER_LEN: usize = 9;
/// The longest frame header (flags and an 8-byte size), for readers sizing their buffer.
pub const MAX_HEADER_LEN: usize = LONG_HEADER_LEN;
/// The largest body a short (1-byte size) header can describe; libzmq switches to LONG above it.
const SHORT_MAX: usize = u8::MAX as usize;

/// What each frame after the first of a message costs against `maxMessageSize` on top of its
/// body, so that an endless stream of empty MORE frames (which would otherwise cost nothing
/// while growing the frame list) hits the limit too. The first frame is not charged, so a
/// single-frame message of exactly `maxMessageSize` bytes is accepted, as in libzmq.
///
/// The figure is what a frame really costs in memory, not its 2 wire bytes: 32 bytes of
/// `Bytes` here (twice that while the frame list grows) and a few hundred bytes once it is a
/// Buffer in JS. At 16, a peer could make a 256 MiB-limit socket hold ~600 MB with an
/// unfinished message of empty frames, and a finished one of 4 M empty frames (8 MB on the
/// wire) cost Node 1.5 GB.
pub const FRAME_OVERHEAD: u64 = 512;

/// The largest command frame body we accept. Commands (READY, PING, …) are tiny; the bound
/// keeps a handshake from buffering unbounded data even when `maxMessageSize` is -1.
pub const MAX_COMMAND_SIZE: u64 = 65536;

/// Longest PING context the spec allows; longer ones are truncated (as libzmq does).
const MAX_PING_CONTEXT: usize = 16;

/// A ZMTP command, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `READY` with its metadata properties, in wire order (names as sent; values raw).
    Ready(Vec<(String, Bytes)>),
    /// `ERROR` with the peer's reason.
    Error(String),
    /// `PING` (37/ZMTP).
    Ping {
        /// How long the peer may stay silent before we drop it, in tenths of a second.
        ttl: u16,
        /// Opaque bytes to echo in the PONG; at most 16.
        context: Bytes,
    },
    /// `PONG` answering a PING.
    Pong {
        /// The PING's context, echoed.
        context: Bytes,
    },
    /// Any other command: ignored after the handshake, never fatal.
    Unknown {
        /// The command name (lossily decoded: it comes from the peer).
        name: String,
        /// Everything after the name.
        data: Bytes,
    },
}

/// One unit out of the decoder: a complete message or a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A complete (all frames) data message.
    Message(Message),
    /// A command frame.
    Command(Command),
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Waiting for a frame header at the front of the buffer.
    Header,
    /// The header was consumed; waiting for `len` body bytes.
    Body {
        len: usize,
        more: bool,
        command: bool,
    },
}

/// Incremental ZMTP frame decoder. Feed it the connection's read buffer with
/// [`Decoder::decode`]; partial multipart messages are kept across calls. After an error the
/// connection must be dropped: the decoder's state is then meaningless.
#[derive(Debug)]
pub struct Decoder {
    /// `None` = unlimited.
    limit: Option<u64>,
    state: State,
    /// Frames of the multipart message being received (empty between messages).
    frames: Vec<Bytes>,
    /// What the partial message has cost against `limit` so far.
    cost: u64,
    need: usize,
}

fn proto(message: impl Into<String>) -> Error {
    Error::new(Code::Proto, message)
}

impl Decoder {
    /// A decoder bounding whole messages to `max_message_size` bytes (see
    /// [`FRAME_OVERHEAD`]); any negative value means unlimited (libzmq uses -1).
    pub fn new(max_message_size: i64) -> Self {
        Decoder {
            limit: u64::try_from(max_message_size).ok(),
            state: State::Header,
            frames: Vec::new(),
            cost: 0,
            need: SHORT_HEADER_LEN,
        }
    }

    /// How many more bytes (beyond what the buffer held at the last [`Decoder::decode`] that
    /// returned `Ok(None)`) are needed to make progress: the rest of a header or of a frame
    /// body. 0 after a call that returned something: call `decode` again first.
    ///
    /// This is a hint for sizing reads and it comes from the peer: a header may declare
    /// 2^63 bytes. Callers MUST clamp it (e.g. to a read chunk size) and never preallocate it.
    pub fn needed(&self) -> usize {
        self.need
    }

    /// The length of the data frame body being waited for, once its header is in.
    pub fn pending_body(&self) -> Option<usize> {
        match self.state {
            State::Body {
                len,
                command: false,
                ..
            } => Some(len),
            _ => None,
        }
    }

    /// True while a multipart message is partially received.
    pub fn in_message(&self) -> bool {
        !self.frames.is_empty() || matches!(self.state, State::Body { command: false, .. })
    }

    /// Consumes complete frames from the front of `buf`. Returns a message once its last
    /// frame is in, a command as soon as its frame is in, or `Ok(None)` when more bytes are
    /// needed (everything usable has been consumed; see [`Decoder::needed`]). Bodies are
    /// split off `buf` without copying.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, Error> {
        loop {
            match self.state {
                State::Header => {
                    if !self.parse_header(buf)? {
                        return Ok(None);
                    }
                }
                State::Body { len, more, command } => {
                    if buf.len() < len {
                        self.need = len - buf.len();
                        return Ok(None);
                    }
                    // An empty frame needs no share of the buffer's refcount.
                    let body = if len == 0 {
                        Bytes::new()
                    } else {
                        buf.split_to(len).freeze()
                    };
                    if let Some(done) = self.finish_body(body, more, command)? {
                        return Ok(Some(done));
                    }
                }
            }
        }
    }

    /// Completes the data frame whose header was consumed with `body`, read by the caller
    /// into a buffer of its own (see [`Decoder::pending_body`]); then returns what
    /// [`Decoder::decode`] would. `EINVAL` if no data frame of that length is pending.
    pub fn supply_body(&mut self, body: Bytes) -> Result<Option<Decoded>, Error> {
        match self.state {
            State::Body {
                len,
                more,
                command: false,
            } if body.len() == len => self.finish_body(body, more, false),
            _ => Err(Error::new(
                Code::Inval,
                "no data frame of that length is pending",
            )),
        }
    }

    /// A frame's body is in: a command or a whole message comes out, or `None` while more
    /// frames of the message are to come.
    fn finish_body(
        &mut self,
        body: Bytes,
        more: bool,
        command: bool,
    ) -> Result<Option<Decoded>, Error> {
        self.state = State::Header;
        if command {
            self.need = 0;
            return parse_command(body).map(|c| Some(Decoded::Command(c)));
        }
        if more {
            self.frames.push(body);
            return Ok(None);
        }
        let msg = if self.frames.is_empty() {
            let mut m = Message::with_capacity(1);
            m.push(body);
            m
        } else {
            let mut frames = std::mem::take(&mut self.frames);
            frames.push(body);
            Message::from(frames)
        };
        self.cost = 0;
        self.need = 0;
        Ok(Some(Decoded::Message(msg)))
    }

    /// Validates and consumes one header. `Ok(false)`: not all of it is in yet (nothing is
    /// consumed, so the partial header stays in `buf`).
    fn parse_header(&mut self, buf: &mut BytesMut) -> Result<bool, Error> {
        let Some(&flags) = buf.first() else {
            self.need = SHORT_HEADER_LEN;
            return Ok(false);
        };
        // Checked before the size is in so that garbage is refused at its first byte.
        if flags & FLAGS_RESERVED != 0 {
            return Err(proto(format!(
                "invalid frame flags 0x{flags:02x} (reserved bits set)"
            )));
        }
        let long = flags & FLAG_LONG != 0;
        let (size, header_len) = if long {
            let Some(bytes) = buf.get(1..LONG_HEADER_LEN) else {
                self.need = LONG_HEADER_LEN - buf.len();
                return Ok(false);
            };
            let mut be = [0u8; 8];
            be.copy_from_slice(bytes);
            let size = u64::from_be_bytes(be);
            if size > i64::MAX as u64 {
                return Err(proto(format!("invalid frame size {size} (top bit set)")));
            }
            (size, LONG_HEADER_LEN)
        } else {
            let Some(&size) = buf.get(1) else {
                self.need = SHORT_HEADER_LEN - buf.len();
                return Ok(false);
            };
            (u64::from(size), SHORT_HEADER_LEN)
        };
        let more = flags & FLAG_MORE != 0;
        let command = flags & FLAG_COMMAND != 0;
        if command {
            if more {
                return Err(proto("command frame with the MORE flag set"));
            }
            // Allowed between the frames of a message, which it leaves alone: libzmq sends
            // its heartbeat PING as the next frame, whatever message is in progress.
            if size > MAX_COMMAND_SIZE {
                return Err(proto(format!(
                    "command frame of {size} bytes exceeds the {MAX_COMMAND_SIZE}-byte limit"
                )));
            }
        } else {
            let overhead = if self.frames.is_empty() {
                0
            } else {
                FRAME_OVERHEAD
            };
            let cost = self.cost.saturating_add(size).saturating_add(overhead);
            if let Some(limit) = self.limit {
                if cost > limit {
                    return Err(proto(format!(
                        "message exceeds maxMessageSize ({limit} bytes)"
                    )));
                }
            }
            self.cost = cost;
        }
        // Only reachable on 32-bit targets with an unlimited maxMessageSize.
        let len = usize::try_from(size).map_err(|_| {
            proto(format!(
                "frame of {size} bytes is too large for this platform"
            ))
        })?;
        buf.advance(header_len);
        self.state = State::Body { len, more, command };
        Ok(true)
    }
}

/// Splits `len` bytes at `pos` off `data`, or `None` if they are not all there.
fn take(data: &Bytes, pos: usize, len: usize) -> Option<Bytes> {
    let end = pos.checked_add(len)?;
    if end > data.len() {
        return None;
    }
    Some(data.slice(pos..end))
}

pub(crate) fn parse_command(body: Bytes) -> Result<Command, Error> {
    let Some(&name_len) = body.first() else {
        return Err(proto("empty command frame"));
    };
    if name_len == 0 {
        return Err(proto("command with an empty name"));
    }
    let name_end = 1 + usize::from(name_len);
    let Some(name) = body.get(1..name_end) else {
        return Err(proto("command name overruns the command frame"));
    };
    let data = body.slice(name_end..);
    match name {
        b"READY" => parse_ready(&data).map(Command::Ready),
        b"ERROR" => {
            let reason = data
                .first()
                .and_then(|&n| data.get(1..1 + usize::from(n)))
                .ok_or_else(|| proto("malformed ERROR command"))?;
            Ok(Command::Error(String::from_utf8_lossy(reason).into_owned()))
        }
        b"PING" => {
            let Some(ttl) = data.get(..2) else {
                return Err(proto("malformed PING command (no TTL)"));
            };
            let ttl = u16::from_be_bytes([ttl[0], ttl[1]]);
            let end = data.len().min(2 + MAX_PING_CONTEXT);
            Ok(Command::Ping {
                ttl,
                context: data.slice(2..end),
            })
        }
        b"PONG" => Ok(Command::Pong { context: data }),
        _ => Ok(Command::Unknown {
            name: String::from_utf8_lossy(name).into_owned(),
            data,
        }),
    }
}

fn parse_ready(data: &Bytes) -> Result<Vec<(String, Bytes)>, Error> {
    let overrun = || proto("malformed READY command: property overruns the command");
    // Peers send one to three properties; 4 avoids regrowth in practice.
    let mut props = Vec::with_capacity(4);
    let mut pos = 0;
    while let Some(&name_len) = data.get(pos) {
        let name_len = usize::from(name_len);
        pos += 1;
        let name = take(data, pos, name_len).ok_or_else(overrun)?;
        pos += name_len;
        let len = take(data, pos, 4).ok_or_else(overrun)?;
        pos += 4;
        let value_len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        let value_len = usize::try_from(value_len).map_err(|_| overrun())?;
        let value = take(data, pos, value_len).ok_or_else(overrun)?;
        pos += value_len;
        props.push((String::from_utf8_lossy(&name).into_owned(), value));
    }
    Ok(props)
}

/// Writes a data frame header for a `len`-byte body: 1-byte size up to 255, LONG above (as
/// libzmq does). Lets the writer send large bodies straight from their `Bytes`.
pub fn encode_frame_header(more: bool, len: usize, out: &mut BytesMut) {
    let more = if more { FLAG_MORE } else { 0 };
    put_header(more, len, out);
}

fn put_header(flags: u8, len: usize, out: &mut BytesMut) {
    if len <= SHORT_MAX {
        out.reserve(SHORT_HEADER_LEN);
        out.put_u8(flags);
        out.put_u8(len as u8);
    } else {
        out.reserve(LONG_HEADER_LEN);
        out.put_u8(flags | FLAG_LONG);
        out.put_u64(len as u64);
    }
}

fn header_len(len: usize) -> usize {
    if len <= SHORT_MAX {
        SHORT_HEADER_LEN
    } else {
        LONG_HEADER_LEN
    }
}

/// Appends a whole message (headers and copied bodies), MORE on every frame but the last.
/// An empty message writes nothing (messages are checked non-empty before they are queued).
pub fn encode_message(msg: &Message, out: &mut BytesMut) {
    let frames = msg.frames();
    let total: usize = frames.iter().map(|f| header_len(f.len()) + f.len()).sum();
    out.reserve(total);
    let last = frames.len().saturating_sub(1);
    for (i, frame) in frames.iter().enumerate() {
        encode_frame_header(i != last, frame.len(), out);
        out.extend_from_slice(frame);
    }
}

/// Clamps a locally supplied short string to what a 1-byte length can describe.
fn short_str(s: &[u8]) -> &[u8] {
    &s[..s.len().min(SHORT_MAX)]
}

/// Clamps a locally supplied value to what a 4-byte length can describe.
fn long_value(v: &[u8]) -> &[u8] {
    &v[..v.len().min(u32::MAX as usize)]
}

/// Appends a command frame. Names and reasons longer than 255 bytes and PING contexts longer
/// than 16 bytes are truncated: the wire format cannot carry more.
pub fn encode_command(cmd: &Command, out: &mut BytesMut) {
    let (name, data_len): (&[u8], usize) = match cmd {
        Command::Ready(props) => (
            b"READY",
            props
                .iter()
                .map(|(n, v)| 1 + short_str(n.as_bytes()).len() + 4 + long_value(v).len())
                .sum(),
        ),
        Command::Error(reason) => (b"ERROR", 1 + short_str(reason.as_bytes()).len()),
        Command::Ping { context, .. } => (b"PING", 2 + context.len().min(MAX_PING_CONTEXT)),
        Command::Pong { context } => (b"PONG", context.len()),
        Command::Unknown { name, data } => (short_str(name.as_bytes()), data.len()),
    };
    let body_len = 1 + name.len() + data_len;
    out.reserve(header_len(body_len) + body_len);
    put_header(FLAG_COMMAND, body_len, out);
    out.put_u8(name.len() as u8);
    out.extend_from_slice(name);
    match cmd {
        Command::Ready(props) => {
            for (n, v) in props {
                put_property(n.as_bytes(), v, out);
            }
        }
        Command::Error(reason) => {
            let reason = short_str(reason.as_bytes());
            out.put_u8(reason.len() as u8);
            out.extend_from_slice(reason);
        }
        Command::Ping { ttl, context } => {
            out.put_u16(*ttl);
            out.extend_from_slice(&context[..context.len().min(MAX_PING_CONTEXT)]);
        }
        Command::Pong { context } => out.extend_from_slice(context),
        Command::Unknown { data, .. } => out.extend_from_slice(data),
    }
}

fn put_property(name: &[u8], value: &[u8], out: &mut BytesMut) {
    let name = short_str(name);
    let value = long_value(value);
    out.put_u8(name.len() as u8);
    out.extend_from_slice(name);
    out.put_u32(value.len() as u32);
    out.extend_from_slice(value);
}

/// Appends a READY command carrying `Socket-Type` = `socket_type` (e.g. "PUSH").
pub fn encode_ready(socket_type: &str, out: &mut BytesMut) {
    const PROPERTY: &[u8] = b"Socket-Type";
    let value = long_value(socket_type.as_bytes());
    let body_len = 1 + 5 + 1 + PROPERTY.len() + 4 + value.len();
    out.reserve(header_len(body_len) + body_len);
    put_header(FLAG_COMMAND, body_len, out);
    out.put_u8(5);
    out.extend_from_slice(b"READY");
    put_property(PROPERTY, value, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = 1 << 20;

    fn msg(frames: &[&[u8]]) -> Message {
        Message::from(
            frames
                .iter()
                .map(|f| Bytes::copy_from_slice(f))
                .collect::<Vec<_>>(),
        )
    }

    fn encoded(m: &Message) -> BytesMut {
        let mut out = BytesMut::new();
        encode_message(m, &mut out);
        out
    }

    /// Decodes everything in `bytes` at once.
    fn decode_all(dec: &mut Decoder, bytes: &[u8]) -> Result<Vec<Decoded>, Error> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(d) = dec.decode(&mut buf)? {
            out.push(d);
        }
        assert!(buf.is_empty(), "complete input must be fully consumed");
        Ok(out)
    }

    /// Decodes `bytes` fed one byte per call.
    fn decode_bytewise(dec: &mut Decoder, bytes: &[u8]) -> Result<Vec<Decoded>, Error> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in bytes {
            buf.put_u8(b);
            while let Some(d) = dec.decode(&mut buf)? {
                out.push(d);
            }
        }
        Ok(out)
    }

    fn expect_proto(r: Result<Option<Decoded>, Error>, needle: &str) {
        let err = r.expect_err("expected a protocol error");
        assert_eq!(err.code, Code::Proto);
        assert!(
            err.message.contains(needle),
            "{:?} does not contain {needle:?}",
            err.message
        );
    }

    #[test]
    fn single_frame_message_round_trips() {
        let m = msg(&[b"hello"]);
        let bytes = encoded(&m);
        assert_eq!(&bytes[..], b"\x00\x05hello");
        assert_eq!(
            decode_all(&mut Decoder::new(-1), &bytes).unwrap(),
            vec![Decoded::Message(m)]
        );
    }

    #[test]
    fn multipart_with_empty_frames_round_trips() {
        let m = msg(&[b"", b"a", b"", b"", b"bc", b""]);
        let bytes = encoded(&m);
        assert_eq!(&bytes[..4], b"\x01\x00\x01\x01");
        let got = decode_all(&mut Decoder::new(MIB), &bytes).unwrap();
        assert_eq!(got, vec![Decoded::Message(m)]);
    }

    #[test]
    fn frame_of_255_bytes_uses_a_short_header_and_256_a_long_one() {
        let short = encoded(&msg(&[&[7u8; 255]]));
        assert_eq!(&short[..2], &[0x00, 255]);
        assert_eq!(short.len(), 2 + 255);
        let long = encoded(&msg(&[&[7u8; 256], b"x"]));
        assert_eq!(&long[..9], &[0x03, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(&long[9 + 256..], b"\x00\x01x");
        let got = decode_all(&mut Decoder::new(-1), &long).unwrap();
        assert_eq!(got, vec![Decoded::Message(msg(&[&[7u8; 256], b"x"]))]);
    }

    #[test]
    fn long_header_with_a_small_size_is_accepted() {
        let bytes = b"\x02\x00\x00\x00\x00\x00\x00\x00\x03abc";
        let got = decode_all(&mut Decoder::new(-1), bytes).unwrap();
        assert_eq!(got, vec![Decoded::Message(msg(&[b"abc"]))]);
    }

    #[test]
    fn frame_header_alone_matches_encode_message() {
        let mut out = BytesMut::new();
        encode_frame_header(true, 3, &mut out);
        out.extend_from_slice(b"abc");
        encode_frame_header(false, 300, &mut out);
        out.extend_from_slice(&[1u8; 300]);
        assert_eq!(out, encoded(&msg(&[b"abc", &[1u8; 300]])));
    }

    #[test]
    fn huge_declared_frame_is_rejected_at_the_header_under_a_limit() {
        let mut buf = BytesMut::from(&b"\x02\x00\x00\x01\x00\x00\x00\x00\x00"[..]);
        expect_proto(
            Decoder::new(256 * MIB).decode(&mut buf),
            "message exceeds maxMessageSize (268435456 bytes)",
        );
    }

    #[test]
    fn huge_declared_frame_without_a_limit_allocates_nothing() {
        let mut dec = Decoder::new(-1);
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b"\x02\x00\x00\x01\x00\x00\x00\x00\x00");
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= 64, "capacity grew to {}", buf.capacity());
        assert_eq!(dec.needed(), 1 << 40);
        buf.extend_from_slice(&[0u8; 32]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert_eq!(dec.needed(), (1 << 40) - 32);
        assert!(buf.capacity() <= 64, "capacity grew to {}", buf.capacity());
    }

    #[test]
    fn size_with_the_top_bit_set_is_rejected() {
        let mut buf = BytesMut::from(&b"\x02\x80\x00\x00\x00\x00\x00\x00\x00"[..]);
        expect_proto(Decoder::new(-1).decode(&mut buf), "top bit");
    }

    #[test]
    fn endless_empty_more_frames_hit_the_limit() {
        let mut dec = Decoder::new(1024);
        let mut buf = BytesMut::new();
        let mut frames = 0;
        let err = loop {
            buf.extend_from_slice(b"\x01\x00");
            match dec.decode(&mut buf) {
                Ok(None) => frames += 1,
                Ok(Some(d)) => panic!("unexpected {d:?}"),
                Err(e) => break e,
            }
            assert!(frames < 1000, "limit never hit");
        };
        assert_eq!(err.code, Code::Proto);
        assert!(err.message.contains("maxMessageSize"));
        assert_eq!(frames as u64, 1024 / FRAME_OVERHEAD + 1);
    }

    #[test]
    fn single_frame_of_exactly_the_limit_is_accepted_and_one_more_byte_is_not() {
        let got = decode_all(&mut Decoder::new(100), &encoded(&msg(&[&[0u8; 100]]))).unwrap();
        assert_eq!(got.len(), 1);
        let mut buf = encoded(&msg(&[&[0u8; 101]]));
        expect_proto(
            Decoder::new(100).decode(&mut buf),
            "maxMessageSize (100 bytes)",
        );
    }

    #[test]
    fn the_limit_applies_to_the_whole_message_not_each_frame() {
        let mut buf = encoded(&msg(&[&[0u8; 60], &[0u8; 60]]));
        expect_proto(Decoder::new(100).decode(&mut buf), "maxMessageSize");
    }

    #[test]
    fn the_limit_resets_between_messages() {
        let mut bytes = encoded(&msg(&[&[0u8; 40], &[0u8; 40]]));
        bytes.extend_from_slice(&encoded(&msg(&[&[0u8; 40], &[0u8; 40]])));
        let limit = 100 + FRAME_OVERHEAD as i64;
        assert_eq!(
            decode_all(&mut Decoder::new(limit), &bytes).unwrap().len(),
            2
        );
    }

    #[test]
    fn reserved_flag_bits_are_rejected_at_the_first_byte() {
        for flags in [0x08u8, 0x10, 0x20, 0x40, 0x80, 0xFF] {
            let mut buf = BytesMut::from(&[flags][..]);
            expect_proto(Decoder::new(-1).decode(&mut buf), "reserved bits");
        }
    }

    #[test]
    fn command_with_more_is_rejected() {
        let mut buf = BytesMut::from(&b"\x05\x05\x04PING"[..]);
        expect_proto(Decoder::new(-1).decode(&mut buf), "MORE");
    }

    #[test]
    fn a_command_between_the_frames_of_a_message_leaves_the_message_intact() {
        let mut dec = Decoder::new(-1);
        let mut buf = BytesMut::from(&b"\x01\x01a"[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert!(dec.in_message());
        let ping = Command::Ping {
            ttl: 0,
            context: Bytes::new(),
        };
        encode_command(&ping, &mut buf);
        buf.extend_from_slice(b"\x00\x01b");
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(Decoded::Command(ping)));
        assert!(dec.in_message());
        assert_eq!(
            dec.decode(&mut buf).unwrap(),
            Some(Decoded::Message(msg(&[b"a", b"b"])))
        );
    }

    #[test]
    fn oversized_command_is_rejected_at_the_header() {
        let mut buf = BytesMut::new();
        buf.put_u8(FLAG_COMMAND | FLAG_LONG);
        buf.put_u64(MAX_COMMAND_SIZE + 1);
        expect_proto(Decoder::new(-1).decode(&mut buf), "command frame");
    }

    #[test]
    fn ready_round_trips_with_properties() {
        let props = vec![
            ("Socket-Type".to_string(), Bytes::from_static(b"PULL")),
            ("Identity".to_string(), Bytes::new()),
            ("X-Big".to_string(), Bytes::from(vec![9u8; 300])),
        ];
        let mut buf = BytesMut::new();
        encode_command(&Command::Ready(props.clone()), &mut buf);
        assert_eq!(buf[0], FLAG_COMMAND | FLAG_LONG);
        let got = decode_all(&mut Decoder::new(-1), &buf).unwrap();
        assert_eq!(got, vec![Decoded::Command(Command::Ready(props))]);
    }

    #[test]
    fn encode_ready_matches_the_libzmq_bytes() {
        let mut buf = BytesMut::new();
        encode_ready("PUSH", &mut buf);
        assert_eq!(
            &buf[..],
            b"\x04\x1a\x05READY\x0bSocket-Type\x00\x00\x00\x04PUSH"
        );
        let got = decode_all(&mut Decoder::new(-1), &buf).unwrap();
        let want = vec![("Socket-Type".to_string(), Bytes::from_static(b"PUSH"))];
        assert_eq!(got, vec![Decoded::Command(Command::Ready(want))]);
    }

    #[test]
    fn ready_property_overrunning_the_command_is_rejected() {
        // Value length 5 but only 4 bytes follow.
        let mut buf = BytesMut::from(&b"\x04\x1a\x05READY\x0bSocket-Type\x00\x00\x00\x05PUSH"[..]);
        expect_proto(Decoder::new(-1).decode(&mut buf), "overruns");
        // Name length runs past the end.
        let mut buf = BytesMut::from(&b"\x04\x08\x05READY\x09ab"[..]);
        expect_proto(Decoder::new(-1).decode(&mut buf), "overruns");
        // Value length field itself cut short.
        let mut buf = BytesMut::from(&b"\x04\x0a\x05READY\x01a\x00\x00"[..]);
        expect_proto(Decoder::new(-1).decode(&mut buf), "overruns");
        // Huge value length.
        let mut buf = BytesMut::from(&b"\x04\x0d\x05READY\x01a\xff\xff\xff\xff\x00"[..]);
        expect_proto(Decoder::new(-1).decode(&mut buf), "overruns");
    }

    #[test]
    fn malformed_command_names_are_rejected() {
        expect_proto(
            Decoder::new(-1).decode(&mut BytesMut::from(&b"\x04\x00"[..])),
            "empty command",
        );
        expect_proto(
            Decoder::new(-1).decode(&mut BytesMut::from(&b"\x04\x01\x00"[..])),
            "empty name",
        );
        expect_proto(
            Decoder::new(-1).decode(&mut BytesMut::from(&b"\x04\x02\x05R"[..])),
            "overruns",
        );
    }

    #[test]
    fn error_command_round_trips_and_malformed_is_rejected() {
        let mut buf = BytesMut::new();
        encode_command(&Command::Error("Invalid socket type".into()), &mut buf);
        assert_eq!(&buf[..], b"\x04\x1a\x05ERROR\x13Invalid socket type");
        let got = decode_all(&mut Decoder::new(-1), &buf).unwrap();
        assert_eq!(
            got,
            vec![Decoded::Command(Command::Error(
                "Invalid socket type".into()
            ))]
        );
        let mut buf = BytesMut::from(&b"\x04\x08\x05ERROR\x05a"[..]);
        expect_proto(Decoder::new(-1).decode(&mut buf), "malformed ERROR");
    }

    #[test]
    fn ping_and_pong_round_trip() {
        let ping = Command::Ping {
            ttl: 300,
            context: Bytes::from_static(b"ctx"),
        };
        let pong = Command::Pong {
            context: Bytes::from_static(b"ctx"),
        };
        let mut buf = BytesMut::new();
        encode_command(&ping, &mut buf);
        assert_eq!(&buf[..], b"\x04\x0a\x04PING\x01\x2cctx");
        encode_command(&pong, &mut buf);
        let got = decode_all(&mut Decoder::new(-1), &buf).unwrap();
        assert_eq!(got, vec![Decoded::Command(ping), Decoded::Command(pong)]);
    }

    #[test]
    fn ping_context_is_kept_to_16_bytes() {
        let long = Bytes::from(vec![b'c'; 40]);
        let mut buf = BytesMut::new();
        buf.put_u8(FLAG_COMMAND);
        buf.put_u8(1 + 4 + 2 + 40);
        buf.put_u8(4);
        buf.extend_from_slice(b"PING\x00\x0a");
        buf.extend_from_slice(&long);
        let got = decode_all(&mut Decoder::new(-1), &buf).unwrap();
        assert_eq!(
            got,
            vec![Decoded::Command(Command::Ping {
                ttl: 10,
                context: long.slice(..16)
            })]
        );
        let mut out = BytesMut::new();
        encode_command(
            &Command::Ping {
                ttl: 10,
                context: long.clone(),
            },
            &mut out,
        );
        assert_eq!(out.len(), 2 + 1 + 4 + 2 + 16);
    }

    #[test]
    fn ping_without_ttl_is_rejected() {
        let mut buf = BytesMut::from(&b"\x04\x06\x04PING\x00"[..]);
        expect_proto(Decoder::new(-1).decode(&mut buf), "PING");
    }

    #[test]
    fn unknown_command_decodes_as_unknown() {
        let cmd = Command::Unknown {
            name: "SUBSCRIBE".into(),
            data: Bytes::from_static(b"topic"),
        };
        let mut buf = BytesMut::new();
        encode_command(&cmd, &mut buf);
        assert_eq!(&buf[..], b"\x04\x0f\x09SUBSCRIBEtopic");
        assert_eq!(
            decode_all(&mut Decoder::new(-1), &buf).unwrap(),
            vec![Decoded::Command(cmd)]
        );
    }

    fn mixed_stream() -> Vec<u8> {
        let mut buf = BytesMut::new();
        encode_ready("PUSH", &mut buf);
        encode_message(&msg(&[b"one"]), &mut buf);
        encode_message(&msg(&[b"", b"two", &[5u8; 1000], b""]), &mut buf);
        encode_command(
            &Command::Ping {
                ttl: 1,
                context: Bytes::from_static(b"p"),
            },
            &mut buf,
        );
        encode_message(&msg(&[&[6u8; 256]]), &mut buf);
        encode_message(&msg(&[b""]), &mut buf);
        buf.to_vec()
    }

    #[test]
    fn bytes_fed_one_at_a_time_decode_identically_to_all_at_once() {
        let stream = mixed_stream();
        let all = decode_all(&mut Decoder::new(MIB), &stream).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(
            decode_bytewise(&mut Decoder::new(MIB), &stream).unwrap(),
            all
        );
    }

    #[test]
    fn a_message_split_across_many_decode_calls_keeps_its_frames() {
        let m = msg(&[b"head", &[1u8; 700], b"", b"tail"]);
        let bytes = encoded(&m);
        for chunk in [3, 7, 64, 255, 256, 701] {
            let mut dec = Decoder::new(MIB);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in bytes.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(d) = dec.decode(&mut buf).unwrap() {
                    got.push(d);
                }
            }
            assert_eq!(got, vec![Decoded::Message(m.clone())], "chunk size {chunk}");
            assert!(!dec.in_message());
        }
    }

    #[test]
    fn needed_reports_the_missing_header_and_body_bytes() {
        let mut dec = Decoder::new(-1);
        let mut buf = BytesMut::new();
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert_eq!(dec.needed(), 2);
        buf.put_u8(FLAG_LONG);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert_eq!(dec.needed(), 8);
        buf.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert_eq!(dec.needed(), 256);
        buf.extend_from_slice(&[0u8; 200]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert_eq!(dec.needed(), 56);
    }

    #[test]
    fn decoded_frames_share_the_read_buffer() {
        let mut buf = encoded(&msg(&[&[3u8; 100]]));
        let start = buf.as_ptr() as usize;
        let Some(Decoded::Message(m)) = Decoder::new(-1).decode(&mut buf).unwrap() else {
            panic!("expected a message");
        };
        assert_eq!(m.frames()[0].as_ptr() as usize, start + 2);
    }
}
