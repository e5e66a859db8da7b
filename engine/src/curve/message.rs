//! An established CURVE session: every frame travels as a MESSAGE command,
//!
//! ```text
//! \x07MESSAGE  nonce (8, big-endian)  box[flags (1) + frame]   (33 bytes + the frame)
//! ```
//!
//! boxed with the session's shared key (`beforenm(S', c')` on both sides) under the nonce
//! `CurveZMQMESSAGEC` + counter (client to server) or `CurveZMQMESSAGES` + counter (server to
//! client). The flags byte inside the box carries MORE (bit 0) and COMMAND (bit 1): the
//! ZMTP frame that carries a MESSAGE is a data frame without MORE, so the multipart
//! structure and PING/PONG are only visible to the holder of the key.
//!
//! Nonces only go up. We send 1, 2, 3… after the handshake's own (the client's HELLO and
//! INITIATE used 1 and 2, the server's READY 1), and refuse to send once the counter would
//! wrap. We accept a nonce only if it is above the last one accepted (gaps allowed, as in
//! libzmq), so a replayed or reordered MESSAGE is an error; a MESSAGE that does not open
//! does not move the counter.
//!
//! Speed: sealing writes the body straight into the caller's buffer and encrypts it there
//! ([`Session::seal_frame_into`]: no allocation when the buffer has room), opening either
//! decrypts into one new buffer ([`Session::open`]) or in the received buffer itself
//! ([`Session::open_in_place`]: no allocation).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::crypto::{BoxKey, MAC_LEN};
use super::{proto, short_nonce, MESSAGE};
use crate::codec::encode_frame_header;
use crate::Error;

/// Nonce prefix of MESSAGEs from the client.
pub(crate) const CLIENT_PREFIX: &[u8; 16] = b"CurveZMQMESSAGEC";
/// Nonce prefix of MESSAGEs from the server.
pub(crate) const SERVER_PREFIX: &[u8; 16] = b"CurveZMQMESSAGES";

/// Bytes a MESSAGE adds to the frame it carries: name (8), nonce (8), MAC (16), flags (1).
pub const MESSAGE_OVERHEAD: usize = MESSAGE_HEADER_LEN + MAC_LEN + 1;
const MESSAGE_HEADER_LEN: usize = 16;

/// Inner flags: more frames follow.
pub const FLAG_MORE: u8 = 0x01;
/// Inner flags: the frame is a command (PING, PONG, …), not message data.
pub const FLAG_COMMAND: u8 = 0x02;

/// One unboxed MESSAGE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The inner flags byte as sent (see [`Opened::more`] and [`Opened::command`]; other
    /// bits are ignored, as libzmq ignores them).
    pub flags: u8,
    /// The frame (or command body, when [`Opened::command`]).
    pub data: Bytes,
}

impl Opened {
    pub fn more(&self) -> bool {
        self.flags & FLAG_MORE != 0
    }

    pub fn command(&self) -> bool {
        self.flags & FLAG_COMMAND != 0
    }
}

/// Both directions of an established session: the shared key, our send counter and the
/// last nonce accepted from the peer. Made by a completed handshake.
#[derive(Debug)]
pub struct Session {
    key: BoxKey,
    send_prefix: &'static [u8; 16],
    recv_prefix: &'static [u8; 16],
    /// The nonce of the next MESSAGE we send.
    next_send: u64,
    /// The highest nonce accepted from the peer (its last handshake command's).
    last_recv: u64,
}

impl Session {
    /// A client's session: we send with the client prefix from `next_send` on, and accept
    /// server nonces above `last_recv`.
    pub(crate) fn client(key: BoxKey, next_send: u64, last_recv: u64) -> Self {
        Session {
            key,
            send_prefix: CLIENT_PREFIX,
            recv_prefix: SERVER_PREFIX,
            next_send,
            last_recv,
        }
    }

    /// A server's session (prefixes the other way round).
    pub(crate) fn server(key: BoxKey, next_send: u64, last_recv: u64) -> Self {
        Session {
            key,
            send_prefix: SERVER_PREFIX,
            recv_prefix: CLIENT_PREFIX,
            next_send,
            last_recv,
        }
    }

    /// Two copies of the session, one for the connection's writer (which only seals) and
    /// one for its reader (which only opens), so that neither waits on the other. Each
    /// direction's counter lives in exactly one of them.
    pub fn split(self) -> (Session, Session) {
        let twin = Session {
            key: self.key.duplicate(),
            ..self
        };
        (self, twin)
    }

    /// The nonce the next sealed MESSAGE will carry.
    pub fn next_send_nonce(&self) -> u64 {
        self.next_send
    }

    /// The highest nonce accepted from the peer so far.
    pub fn last_received_nonce(&self) -> u64 {
        self.last_recv
    }

    /// Takes the next send nonce, or fails once the counter is spent: nonce 2^64 - 1 is
    /// never used, so that no nonce can ever repeat under this key. The connection must
    /// then close (the peer reconnects with new keys); at a million messages a second this
    /// takes 584,000 years.
    fn take_nonce(&mut self) -> Result<u64, Error> {
        let n = self.next_send;
        if n == u64::MAX {
            return Err(proto(
                "MESSAGE nonce counter exhausted: the session must end",
            ));
        }
        self.next_send = n + 1;
        Ok(n)
    }

    /// Appends to `out` one MESSAGE body carrying `frame` with the inner flags for `more`
    /// and `command`, encrypted in place. No allocation when `out` has room for
    /// `frame.len() + MESSAGE_OVERHEAD` more bytes.
    pub fn seal_into(
        &mut self,
        frame: &[u8],
        more: bool,
        command: bool,
        out: &mut BytesMut,
    ) -> Result<(), Error> {
        let n = self.take_nonce()?;
        out.reserve(frame.len() + MESSAGE_OVERHEAD);
        let start = out.len();
        out.put_slice(MESSAGE);
        out.put_u64(n);
        out.put_bytes(0, MAC_LEN);
        out.put_u8((u8::from(more) * FLAG_MORE) | (u8::from(command) * FLAG_COMMAND));
        out.put_slice(frame);
        let nonce = short_nonce(self.send_prefix, n);
        self.key
            .seal_in_place(&nonce, &mut out[start + MESSAGE_HEADER_LEN..]);
        Ok(())
    }

    /// [`Session::seal_into`] preceded by the ZMTP frame header that carries the MESSAGE
    /// (a data frame without MORE, short or long by size as libzmq sends it): what a writer
    /// puts on the wire for one frame, appended to its batch.
    pub fn seal_frame_into(
        &mut self,
        frame: &[u8],
        more: bool,
        command: bool,
        out: &mut BytesMut,
    ) -> Result<(), Error> {
        if self.next_send == u64::MAX {
            return self.take_nonce().map(|_| ());
        }
        encode_frame_header(false, frame.len() + MESSAGE_OVERHEAD, out);
        self.seal_into(frame, more, command, out)
    }

    /// A MESSAGE body carrying `frame`, in one new buffer.
    pub fn seal(&mut self, frame: &[u8], more: bool, command: bool) -> Result<Bytes, Error> {
        let mut out = BytesMut::with_capacity(frame.len() + MESSAGE_OVERHEAD);
        self.seal_into(frame, more, command, &mut out)?;
        Ok(out.freeze())
    }

    /// Checks a MESSAGE body's name, size and nonce; returns the nonce.
    fn check(&self, body: &[u8]) -> Result<u64, Error> {
        if body.len() < MESSAGE_OVERHEAD {
            return Err(proto(format!(
                "MESSAGE of {} bytes (at least {MESSAGE_OVERHEAD})",
                body.len()
            )));
        }
        if &body[..MESSAGE.len()] != MESSAGE {
            return Err(proto("expected a MESSAGE command"));
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&body[8..16]);
        let n = u64::from_be_bytes(n);
        if n <= self.last_recv {
            return Err(proto(format!(
                "MESSAGE nonce {n} is not above the last one received ({}): replayed or reordered",
                self.last_recv
            )));
        }
        Ok(n)
    }

    /// Opens a MESSAGE body into one new buffer. Errors (too short, not a MESSAGE, a nonce
    /// not above the last, a box that does not open) leave the session as it was; the
    /// connection must close.
    pub fn open(&mut self, body: &[u8]) -> Result<Opened, Error> {
        let n = self.check(body)?;
        let nonce = short_nonce(self.recv_prefix, n);
        let boxed = &body[MESSAGE_HEADER_LEN..];
        // The plaintext is decrypted next to its flags byte, then the flags are split off:
        // one allocation, no second copy.
        let mut plain = BytesMut::zeroed(boxed.len() - MAC_LEN);
        self.key
            .open_into(&nonce, boxed, &mut plain)
            .map_err(|_| proto("MESSAGE box does not open"))?;
        self.last_recv = n;
        let flags = plain[0];
        plain.advance(1);
        Ok(Opened {
            flags,
            data: plain.freeze(),
        })
    }

    /// Opens a MESSAGE body in its own buffer: no allocation, the plaintext is what is
    /// left of `body`. On error `body` is dropped.
    pub fn open_in_place(&mut self, mut body: BytesMut) -> Result<Opened, Error> {
        let n = self.check(&body)?;
        let nonce = short_nonce(self.recv_prefix, n);
        self.key
            .open_in_place(&nonce, &mut body[MESSAGE_HEADER_LEN..])
            .map_err(|_| proto("MESSAGE box does not open"))?;
        self.last_recv = n;
        body.advance(MESSAGE_HEADER_LEN + MAC_LEN);
        let flags = body[0];
        body.advance(1);
        Ok(Opened {
            flags,
            data: body.freeze(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    /// A client and a server session sharing a random key, as a handshake leaves them.
    fn pair() -> (Session, Session) {
        let key = BoxKey::random();
        let twin = BoxKey::from_test_bytes(key_bytes(&key));
        (Session::client(key, 3, 1), Session::server(twin, 2, 2))
    }

    fn key_bytes(key: &BoxKey) -> [u8; 32] {
        *key.as_bytes()
    }

    #[test]
    fn frames_round_trip_both_ways_with_flags() {
        let (mut client, mut server) = pair();
        for (frame, more, command) in [
            (&b"hello"[..], true, false),
            (b"", true, false),
            (b"world", false, false),
            (b"\x04PING\x00\x0a", false, true),
            (b"", false, false),
        ] {
            let body = client.seal(frame, more, command).unwrap();
            assert_eq!(body.len(), frame.len() + 33);
            assert_eq!(&body[..8], b"\x07MESSAGE");
            let opened = server.open(&body).unwrap();
            assert_eq!(
                (&opened.data[..], opened.more(), opened.command()),
                (frame, more, command)
            );
            let body = server.seal(frame, more, command).unwrap();
            let opened = client.open_in_place(BytesMut::from(&body[..])).unwrap();
            assert_eq!(
                (&opened.data[..], opened.more(), opened.command()),
                (frame, more, command)
            );
        }
        assert_eq!(client.next_send_nonce(), 8);
        assert_eq!(server.last_received_nonce(), 7);
        assert_eq!(server.next_send_nonce(), 7);
        assert_eq!(client.last_received_nonce(), 6);
    }

    #[test]
    fn nonces_are_consecutive_big_endian_from_the_start_value() {
        let (mut client, _) = pair();
        for n in 3u64..10 {
            let body = client.seal(b"x", false, false).unwrap();
            assert_eq!(&body[8..16], &n.to_be_bytes());
        }
    }

    #[test]
    fn a_message_from_our_own_direction_does_not_open() {
        // A MESSAGE echoed back: same key, but the other prefix.
        let (mut client, _) = pair();
        let body = client.seal(b"echo", false, false).unwrap();
        let mut client2 = Session::client(BoxKey::from_test_bytes(key_bytes(&client.key)), 3, 1);
        assert!(client2.open(&body).is_err());
        assert!(client.open(&body).is_err());
    }

    #[test]
    fn replayed_and_lower_nonces_are_refused_gaps_are_not() {
        let (mut client, mut server) = pair();
        let m3 = client.seal(b"a", false, false).unwrap();
        let m4 = client.seal(b"b", false, false).unwrap();
        let _m5 = client.seal(b"c", false, false).unwrap();
        let m6 = client.seal(b"d", false, false).unwrap();
        server.open(&m3).unwrap();
        let err = server.open(&m3).unwrap_err();
        assert_eq!(err.code, Code::Proto);
        assert!(err.message.contains("replayed"), "{}", err.message);
        // A gap (5 never arrives) is fine; going back is not.
        server.open(&m6).unwrap();
        assert!(server.open(&m4).is_err());
        assert_eq!(server.last_received_nonce(), 6);
    }

    #[test]
    fn a_forged_high_nonce_does_not_move_the_counter() {
        let (mut client, mut server) = pair();
        let mut forged = client.seal(b"x", false, false).unwrap().to_vec();
        forged[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(server.open(&forged).is_err());
        assert_eq!(server.last_received_nonce(), 2);
        let ok = client.seal(b"y", false, false).unwrap();
        assert_eq!(&server.open(&ok).unwrap().data[..], b"y");
    }

    #[test]
    fn every_flipped_bit_is_refused_and_changes_nothing() {
        let (mut client, mut server) = pair();
        let body = client.seal(b"0123456789", true, false).unwrap();
        for i in 0..body.len() * 8 {
            let mut bad = body.to_vec();
            bad[i / 8] ^= 1 << (i % 8);
            let r = server.open(&bad);
            assert!(r.is_err(), "bit {i} flipped was accepted");
            assert!(server.open_in_place(BytesMut::from(&bad[..])).is_err());
            assert_eq!(server.last_received_nonce(), 2);
        }
        assert_eq!(&server.open(&body).unwrap().data[..], b"0123456789");
    }

    #[test]
    fn short_and_misnamed_bodies_are_refused() {
        let (mut client, mut server) = pair();
        let body = client.seal(b"", false, false).unwrap();
        assert_eq!(body.len(), 33);
        for len in 0..33 {
            let err = server.open(&body[..len]).unwrap_err();
            assert_eq!(err.code, Code::Proto);
            assert!(server.open_in_place(BytesMut::from(&body[..len])).is_err());
        }
        let mut renamed = body.to_vec();
        renamed[1] = b'N';
        assert!(server
            .open(&renamed)
            .unwrap_err()
            .message
            .contains("MESSAGE"));
        server.open(&body).unwrap();
    }

    #[test]
    fn the_send_counter_stops_before_it_wraps() {
        let (_, mut server) = pair();
        server.next_send = u64::MAX - 2;
        let mut client = Session::client(BoxKey::from_test_bytes(key_bytes(&server.key)), 3, 1);
        let a = server.seal(b"a", false, false).unwrap();
        let b = server.seal(b"b", false, false).unwrap();
        assert_eq!(&client.open(&a).unwrap().data[..], b"a");
        assert_eq!(&client.open(&b).unwrap().data[..], b"b");
        assert_eq!(client.last_received_nonce(), u64::MAX - 1);
        for _ in 0..3 {
            let err = server.seal(b"c", false, false).unwrap_err();
            assert!(err.message.contains("exhausted"), "{}", err.message);
            let mut out = BytesMut::new();
            assert!(server
                .seal_frame_into(b"c", false, false, &mut out)
                .is_err());
            assert!(
                out.is_empty(),
                "nothing may be written once the counter is spent"
            );
        }
    }

    #[test]
    fn seal_frame_into_writes_a_data_frame_and_reuses_the_buffer() {
        let (mut client, mut server) = pair();
        let mut out = BytesMut::with_capacity(4096);
        let ptr = out.as_ptr();
        client
            .seal_frame_into(b"abc", true, false, &mut out)
            .unwrap();
        client
            .seal_frame_into(&[5u8; 300], false, false, &mut out)
            .unwrap();
        assert_eq!(out.as_ptr(), ptr, "no reallocation with room in the buffer");
        assert_eq!(&out[..2], &[0x00, 36]);
        let first = out.split_to(2 + 36);
        assert_eq!(&out[..9], &[0x02, 0, 0, 0, 0, 0, 0, 0x01, 0x4d]);
        let o = server.open(&first[2..]).unwrap();
        assert_eq!((&o.data[..], o.more()), (&b"abc"[..], true));
        let o = server.open(&out[9..]).unwrap();
        assert_eq!((&o.data[..], o.more()), (&[5u8; 300][..], false));
    }

    #[test]
    fn one_mebibyte_round_trips() {
        let (mut client, mut server) = pair();
        let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7) as u8).collect();
        let body = client.seal(&big, false, false).unwrap();
        assert_eq!(server.open(&body).unwrap().data, big);
        let body = server.seal(&big, true, false).unwrap();
        let o = client.open_in_place(BytesMut::from(&body[..])).unwrap();
        assert!(o.more());
        assert_eq!(o.data, big);
    }
}
