//! The ZMTP 3.x NULL-mechanism handshake: exchange greetings, exchange READY commands, check
//! that the peer's socket type may talk to ours.
//!
//! It works on the connection's own read buffer and decoder, so whatever the peer sent right
//! behind its READY (data frames, even a partial message) stays there for the connection's
//! reader. It applies no timeout: the caller bounds it with `handshakeInterval`.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::codec::{encode_command, encode_ready, Command, Decoded, Decoder};
use crate::greeting::{
    check_signature_and_major, check_signature_prefix, encode_greeting_for, parse_greeting_for,
    Greeting, GREETING_LEN, MECHANISM_NULL, VERSION_PREFIX_LEN,
};
use crate::{Code, Error};

/// How much spare room each handshake read may use. Bounded so that a peer's declared sizes
/// never decide our allocations; commands are at most 64 KiB anyway.
const READ_CHUNK: usize = 8192;

/// The reason we send in an ERROR command when the peer's socket type is missing or wrong.
const INVALID_SOCKET_TYPE: &str = "Invalid socket type";

/// The socket types this engine speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketType {
    /// Sends messages, round-robin over PULL peers.
    Push,
    /// Receives messages, fair-queued from PUSH peers.
    Pull,
}

impl SocketType {
    /// The name sent as the READY `Socket-Type` property.
    pub fn as_str(&self) -> &'static str {
        match self {
            SocketType::Push => "PUSH",
            SocketType::Pull => "PULL",
        }
    }

    /// Whether a peer announcing `peer` as its `Socket-Type` may talk to us. Exact,
    /// case-sensitive comparison, as libzmq does.
    pub fn accepts(&self, peer: &str) -> bool {
        match self {
            SocketType::Push => peer == "PULL",
            SocketType::Pull => peer == "PUSH",
        }
    }

    fn counterpart(&self) -> SocketType {
        match self {
            SocketType::Push => SocketType::Pull,
            SocketType::Pull => SocketType::Push,
        }
    }
}

/// What the handshake learnt about the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's `Socket-Type` (already checked compatible with ours).
    pub socket_type: String,
    /// The peer's ZMTP minor version: 0 means ZMTP 3.0, which has no PING/PONG.
    pub minor: u8,
    /// All properties of the peer's READY, in wire order.
    pub properties: Vec<(String, bytes::Bytes)>,
}

fn closed_error() -> Error {
    Error::new(Code::Io, "peer closed the connection during the handshake")
}

/// Maps an I/O error; a peer that hung up shows up as EOF, EPIPE or a reset depending on
/// timing, and all of them are reported as the one clear "peer closed" error.
fn io_error(e: &std::io::Error, what: &str) -> Error {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof | BrokenPipe | ConnectionReset | ConnectionAborted => closed_error(),
        _ => Error::new(Code::Io, format!("handshake {what} failed: {e}")),
    }
}

/// Reads whatever is available into `buf` (at least one byte). EOF is an error: the handshake
/// never ends with the peer gone.
pub(crate) async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> Result<(), Error> {
    buf.reserve(READ_CHUNK);
    match stream.read_buf(buf).await {
        Ok(0) => Err(closed_error()),
        Ok(_) => Ok(()),
        Err(e) => Err(io_error(&e, "read")),
    }
}

/// Writes and flushes `bytes`; the flush matters for buffered streams, where the peer would
/// otherwise never see our half of the exchange.
pub(crate) async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Result<(), Error> {
    let result = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    }
    .await;
    result.map_err(|e| io_error(&e, "write"))
}

/// Sends an ERROR command before giving up; best-effort because the peer may be gone or not
/// reading, and the error we return matters more than this courtesy.
async fn send_error<S: AsyncWrite + Unpin>(stream: &mut S, reason: &str) {
    let mut out = BytesMut::new();
    encode_command(&Command::Error(reason.to_string()), &mut out);
    let _ = send(stream, &out).await;
}

/// Sends our greeting for `mechanism` and reads the peer's into `buf`, refusing a non-3.x
/// peer on its first 11 bytes and a peer offering another mechanism; what the peer sent
/// after its greeting stays in `buf`.
pub(crate) async fn exchange_greetings<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    mechanism: &[u8; 20],
    as_server: bool,
) -> Result<Greeting, Error> {
    send(stream, &encode_greeting_for(mechanism, as_server)).await?;

    // Refuse a non-3.x peer on the bytes we have, so it is never left to stall us while we
    // wait for a 64-byte greeting it will not send.
    check_signature_prefix(buf)?;
    while buf.len() < VERSION_PREFIX_LEN {
        read_some(stream, buf).await?;
        check_signature_prefix(buf)?;
    }
    check_signature_and_major(buf)?;
    while buf.len() < GREETING_LEN {
        read_some(stream, buf).await?;
    }
    let mut raw = [0u8; GREETING_LEN];
    raw.copy_from_slice(&buf[..GREETING_LEN]);
    buf.advance(GREETING_LEN);
    parse_greeting_for(&raw, mechanism)
}

/// Runs the NULL handshake on a fresh connection, as `local`. Reads go into `buf` and frames
/// are decoded by `decoder` (so its `maxMessageSize` applies); on success any bytes the peer
/// sent after its READY are left in `buf` and any partial frame state in `decoder`, ready for
/// the connection's reader. On a socket-type mismatch an ERROR command is sent before the
/// error is returned. Errors: [`Code::Proto`] for protocol violations and refusals,
/// [`Code::Io`] for I/O failures and the peer closing mid-handshake.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: SocketType,
    buf: &mut BytesMut,
    decoder: &mut Decoder,
) -> Result<PeerInfo, Error> {
    let greeting = exchange_greetings(stream, buf, &MECHANISM_NULL, false).await?;

    let mut ready = BytesMut::with_capacity(64);
    encode_ready(local.as_str(), &mut ready);
    send(stream, &ready).await?;

    let properties = loop {
        match decoder.decode(buf)? {
            // A data frame with MORE read in the same buffer as the READY after it leaves
            // the decoder mid-message without a `None` in between: still data before READY.
            Some(Decoded::Command(_)) if decoder.in_message() => return Err(data_before_ready()),
            Some(Decoded::Command(Command::Ready(properties))) => break properties,
            Some(Decoded::Command(Command::Error(reason))) => {
                return Err(Error::new(
                    Code::Proto,
                    format!("peer refused the handshake: {reason:?}"),
                ));
            }
            Some(Decoded::Command(other)) => {
                return Err(Error::new(
                    Code::Proto,
                    format!("expected READY from the peer, got {}", command_name(&other)),
                ));
            }
            Some(Decoded::Message(_)) => return Err(data_before_ready()),
            None => {
                // Refuse at the first data frame header rather than buffering a message
                // (unbounded when maxMessageSize is -1) that we would reject anyway.
                if decoder.in_message() {
                    return Err(data_before_ready());
                }
                read_some(stream, buf).await?;
            }
        }
    };

    let socket_type = match check_socket_type(local, &properties) {
        Ok(t) => t,
        Err(e) => {
            send_error(stream, INVALID_SOCKET_TYPE).await;
            return Err(e);
        }
    };
    Ok(PeerInfo {
        socket_type,
        minor: greeting.minor,
        properties,
    })
}

/// The peer's `Socket-Type` from its metadata, if it may talk to `local`; `EPROTO` if it is
/// missing or incompatible.
pub(crate) fn check_socket_type(
    local: SocketType,
    properties: &[(String, bytes::Bytes)],
) -> Result<String, Error> {
    let socket_type = properties
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("Socket-Type"))
        .map(|(_, value)| value.clone());
    let problem = match &socket_type {
        None => Some("peer's READY has no Socket-Type property".to_string()),
        Some(value) => match std::str::from_utf8(value) {
            Ok(s) if local.accepts(s) => None,
            _ => Some(format!(
                "incompatible peer socket type \"{}\": a {} socket only talks to {}",
                value.escape_ascii(),
                local.as_str(),
                local.counterpart().as_str()
            )),
        },
    };
    if let Some(message) = problem {
        return Err(Error::new(Code::Proto, message));
    }
    Ok(socket_type
        .and_then(|v| String::from_utf8(v.to_vec()).ok())
        .unwrap_or_default())
}

fn data_before_ready() -> Error {
    Error::new(Code::Proto, "peer sent a data message before READY")
}

fn command_name(cmd: &Command) -> String {
    match cmd {
        Command::Ready(_) => "READY".into(),
        Command::Error(_) => "ERROR".into(),
        Command::Ping { .. } => "PING".into(),
        Command::Pong { .. } => "PONG".into(),
        Command::Unknown { name, .. } => format!("{name:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use tokio::io::{duplex, DuplexStream};

    use super::*;
    use crate::codec::encode_message;
    use crate::greeting::encode_greeting;
    use crate::Message;

    const MIB: i64 = 1 << 20;

    /// Runs our side, owning the stream so that it is closed when the handshake returns
    /// (raw peers read until EOF).
    async fn ours(
        mut stream: DuplexStream,
        local: SocketType,
    ) -> (Result<PeerInfo, Error>, BytesMut, Decoder, DuplexStream) {
        let mut buf = BytesMut::new();
        let mut dec = Decoder::new(MIB);
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            handshake(&mut stream, local, &mut buf, &mut dec),
        )
        .await
        .expect("handshake hung");
        (r, buf, dec, stream)
    }

    /// Same, but drops the stream on return.
    async fn ours_closing(
        stream: DuplexStream,
        local: SocketType,
    ) -> (Result<PeerInfo, Error>, BytesMut, Decoder) {
        let (r, buf, dec, _stream) = ours(stream, local).await;
        (r, buf, dec)
    }

    /// A scripted peer: writes `script` (one byte per write if `bytewise`), then returns
    /// everything it receives until EOF. Write errors are ignored: we may have hung up.
    async fn raw_peer(mut stream: DuplexStream, script: Vec<u8>, bytewise: bool) -> Vec<u8> {
        let chunk = if bytewise { 1 } else { script.len().max(1) };
        for piece in script.chunks(chunk) {
            if stream.write_all(piece).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got).await;
        got
    }

    fn greeting(major: u8, minor: u8, mechanism: &[u8]) -> Vec<u8> {
        let mut g = encode_greeting(false);
        g[10] = major;
        g[11] = minor;
        g[12..32].fill(0);
        g[12..12 + mechanism.len()].copy_from_slice(mechanism);
        g.to_vec()
    }

    fn ready(socket_type: &str) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_ready(socket_type, &mut out);
        out.to_vec()
    }

    fn push_peer_script() -> Vec<u8> {
        [greeting(3, 1, b"NULL"), ready("PUSH")].concat()
    }

    /// Decodes what a raw peer received from us: our greeting, then commands/messages.
    fn decode_received(got: &[u8]) -> Vec<Decoded> {
        assert_eq!(got.get(..GREETING_LEN), Some(&encode_greeting(false)[..]));
        let mut buf = BytesMut::from(&got[GREETING_LEN..]);
        let mut dec = Decoder::new(-1);
        let mut out = Vec::new();
        while let Some(d) = dec.decode(&mut buf).unwrap() {
            out.push(d);
        }
        out
    }

    fn ready_cmd(socket_type: &'static str) -> Decoded {
        Decoded::Command(Command::Ready(vec![(
            "Socket-Type".into(),
            Bytes::from_static(socket_type.as_bytes()),
        )]))
    }

    fn assert_proto(r: Result<PeerInfo, Error>, needle: &str) {
        let err = r.expect_err("handshake should fail");
        assert_eq!(err.code, Code::Proto, "{}", err.message);
        assert!(
            err.message.contains(needle),
            "{:?} does not contain {needle:?}",
            err.message
        );
    }

    #[test]
    fn push_pairs_only_with_pull_and_back() {
        assert!(SocketType::Push.accepts("PULL"));
        assert!(SocketType::Pull.accepts("PUSH"));
        for other in ["PUSH", "pull", "PULL ", "REQ", ""] {
            assert!(!SocketType::Push.accepts(other), "{other}");
        }
        assert!(!SocketType::Pull.accepts("PULL"));
        assert_eq!(
            (SocketType::Push.as_str(), SocketType::Pull.as_str()),
            ("PUSH", "PULL")
        );
    }

    #[tokio::test]
    async fn push_and_pull_complete_the_handshake_and_exchange_a_message() {
        let (a, b) = duplex(1 << 16);
        let ((ra, _, _, mut a), (rb, mut buf_b, mut dec_b, mut b)) =
            tokio::join!(ours(a, SocketType::Push), ours(b, SocketType::Pull));
        let pa = ra.unwrap();
        let pb = rb.unwrap();
        assert_eq!((pa.socket_type.as_str(), pa.minor), ("PULL", 1));
        assert_eq!((pb.socket_type.as_str(), pb.minor), ("PUSH", 1));
        assert_eq!(
            pb.properties,
            vec![("Socket-Type".to_string(), Bytes::from_static(b"PUSH"))]
        );

        let msg = Message::from([&b"hello"[..], b""]);
        let mut out = BytesMut::new();
        encode_message(&msg, &mut out);
        a.write_all(&out).await.unwrap();
        drop(a);
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        buf_b.extend_from_slice(&rest);
        assert_eq!(
            dec_b.decode(&mut buf_b).unwrap(),
            Some(Decoded::Message(msg))
        );
    }

    #[tokio::test]
    async fn push_with_push_is_refused_on_both_sides_with_an_error_command() {
        let (a, b) = duplex(1 << 16);
        let ((ra, mut buf_a, mut dec_a, mut a), (rb, _, _, b)) =
            tokio::join!(ours(a, SocketType::Push), ours(b, SocketType::Push));
        assert_proto(ra, "incompatible peer socket type \"PUSH\"");
        assert_proto(rb, "incompatible peer socket type \"PUSH\"");
        drop(b);
        let mut rest = Vec::new();
        a.read_to_end(&mut rest).await.unwrap();
        buf_a.extend_from_slice(&rest);
        let got = dec_a.decode(&mut buf_a).unwrap();
        assert_eq!(
            got,
            Some(Decoded::Command(Command::Error(INVALID_SOCKET_TYPE.into())))
        );
    }

    #[tokio::test]
    async fn a_raw_push_peer_receives_our_greeting_ready_and_error() {
        let (a, b) = duplex(1 << 16);
        let ((r, _, _), got) = tokio::join!(
            ours_closing(a, SocketType::Push),
            raw_peer(b, push_peer_script(), false)
        );
        assert_proto(r, "incompatible");
        assert_eq!(
            decode_received(&got),
            vec![
                ready_cmd("PUSH"),
                Decoded::Command(Command::Error(INVALID_SOCKET_TYPE.into()))
            ]
        );
    }

    #[tokio::test]
    async fn missing_socket_type_is_refused_with_an_error_command() {
        let mut script = greeting(3, 1, b"NULL");
        let mut out = BytesMut::new();
        encode_command(
            &Command::Ready(vec![("Identity".into(), Bytes::new())]),
            &mut out,
        );
        script.extend_from_slice(&out);
        let (a, b) = duplex(1 << 16);
        let ((r, _, _), got) = tokio::join!(
            ours_closing(a, SocketType::Pull),
            raw_peer(b, script, false)
        );
        assert_proto(r, "no Socket-Type");
        assert_eq!(
            decode_received(&got).last(),
            Some(&Decoded::Command(Command::Error(
                INVALID_SOCKET_TYPE.into()
            )))
        );
    }

    #[tokio::test]
    async fn greeting_and_ready_arriving_one_byte_at_a_time_are_accepted() {
        let (a, b) = duplex(1 << 16);
        let ((r, buf, dec), got) = tokio::join!(
            ours_closing(a, SocketType::Pull),
            raw_peer(b, push_peer_script(), true)
        );
        assert_eq!(r.unwrap().socket_type, "PUSH");
        assert!(buf.is_empty());
        assert!(!dec.in_message());
        assert_eq!(decode_received(&got), vec![ready_cmd("PULL")]);
    }

    #[tokio::test]
    async fn data_sent_with_the_ready_stays_in_the_buffer_for_the_reader() {
        let first = Message::from([&b"first"[..], b"frame"]);
        let mut script = push_peer_script();
        let mut out = BytesMut::new();
        encode_message(&first, &mut out);
        // Plus the start of a second message: its header and part of its body.
        out.extend_from_slice(b"\x00\x0asec");
        script.extend_from_slice(&out);
        let (a, b) = duplex(1 << 16);
        let ((r, mut buf, mut dec), _) = tokio::join!(
            ours_closing(a, SocketType::Pull),
            raw_peer(b, script, false)
        );
        r.unwrap();
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(Decoded::Message(first)));
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert_eq!(dec.needed(), 7);
        buf.extend_from_slice(b"ond...!");
        assert_eq!(
            dec.decode(&mut buf).unwrap(),
            Some(Decoded::Message(Message::from([&b"second...!"[..]])))
        );
    }

    #[tokio::test]
    async fn garbage_is_refused_without_waiting_for_a_full_greeting() {
        // The peer sends at most 11 bytes and then waits: we must not wait with it.
        for script in [
            &b"G"[..],
            b"GET / HTTP",
            b"GET / HTTP/",
            b"\xff\0\0\0\0\0\0\0\0\x00",
        ] {
            let (a, b) = duplex(1 << 16);
            let ((r, _, _), _) = tokio::join!(
                ours_closing(a, SocketType::Pull),
                raw_peer(b, script.to_vec(), false)
            );
            assert_proto(r, "not a ZeroMQ 3.x peer");
        }
    }

    #[tokio::test]
    async fn a_full_http_request_is_refused() {
        let (a, b) = duplex(1 << 16);
        let script = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
        let ((r, _, _), _) = tokio::join!(
            ours_closing(a, SocketType::Push),
            raw_peer(b, script, false)
        );
        assert_proto(r, "first byte 0x47");
    }

    #[tokio::test]
    async fn major_version_2_is_refused_after_11_bytes() {
        let (a, b) = duplex(1 << 16);
        let script = greeting(2, 0, b"NULL")[..11].to_vec();
        let ((r, _, _), _) = tokio::join!(
            ours_closing(a, SocketType::Pull),
            raw_peer(b, script, false)
        );
        assert_proto(r, "unsupported ZMTP version 2");
    }

    #[tokio::test]
    async fn minor_versions_0_and_9_are_accepted() {
        for minor in [0u8, 9] {
            let script = [greeting(3, minor, b"NULL"), ready("PUSH")].concat();
            let (a, b) = duplex(1 << 16);
            let ((r, _, _), _) = tokio::join!(
                ours_closing(a, SocketType::Pull),
                raw_peer(b, script, false)
            );
            assert_eq!(r.unwrap().minor, minor);
        }
    }

    #[tokio::test]
    async fn mechanism_plain_is_refused() {
        let script = [greeting(3, 1, b"PLAIN"), ready("PUSH")].concat();
        let (a, b) = duplex(1 << 16);
        let ((r, _, _), _) = tokio::join!(
            ours_closing(a, SocketType::Pull),
            raw_peer(b, script, false)
        );
        assert_proto(r, "\"PLAIN\"");
    }

    #[tokio::test]
    async fn peer_closing_mid_greeting_is_an_error() {
        let (a, mut b) = duplex(1 << 16);
        let peer = async move {
            let mut ours = [0u8; GREETING_LEN];
            b.read_exact(&mut ours).await.unwrap();
            b.write_all(&greeting(3, 1, b"NULL")[..20]).await.unwrap();
        };
        let ((r, _, _), ()) = tokio::join!(ours_closing(a, SocketType::Pull), peer);
        let err = r.unwrap_err();
        assert_eq!(err.code, Code::Io);
        assert_eq!(
            err.message,
            "peer closed the connection during the handshake"
        );
    }

    #[tokio::test]
    async fn peer_closing_before_ready_is_an_error() {
        let (a, b) = duplex(1 << 16);
        let peer = async move {
            let mut b = b;
            b.write_all(&greeting(3, 1, b"NULL")).await.unwrap();
            let mut ours = [0u8; GREETING_LEN];
            b.read_exact(&mut ours).await.unwrap();
        };
        let ((r, _, _), ()) = tokio::join!(ours_closing(a, SocketType::Pull), peer);
        assert!(r.unwrap_err().message.contains("closed the connection"));
    }

    #[tokio::test]
    async fn an_error_command_instead_of_ready_carries_the_peer_reason() {
        let mut script = greeting(3, 1, b"NULL");
        let mut out = BytesMut::new();
        encode_command(&Command::Error("go away".into()), &mut out);
        script.extend_from_slice(&out);
        let (a, b) = duplex(1 << 16);
        let ((r, _, _), _) = tokio::join!(
            ours_closing(a, SocketType::Pull),
            raw_peer(b, script, false)
        );
        assert_proto(r, "peer refused the handshake: \"go away\"");
    }

    #[tokio::test]
    async fn a_data_frame_before_ready_is_refused_at_its_header() {
        // Only the header of a (huge, multipart) frame: refused without waiting for its body.
        let script = [greeting(3, 1, b"NULL"), b"\x03\0\0\0\0\0\x01\0\0".to_vec()].concat();
        let (a, b) = duplex(1 << 16);
        let ((r, _, _), _) = tokio::join!(
            ours_closing(a, SocketType::Pull),
            raw_peer(b, script, false)
        );
        assert_proto(r, "data message before READY");
    }

    #[tokio::test]
    async fn a_partial_message_sent_together_with_ready_is_refused() {
        // An empty frame with MORE, then READY, in one write (found by the handshake fuzz
        // target): the decoder takes both in one call, so the refusal cannot wait for a
        // `None` from it.
        let script = [greeting(3, 1, b"NULL"), b"\x01\x00".to_vec(), ready("PUSH")].concat();
        let (a, b) = duplex(1 << 16);
        let ((r, _, _), _) = tokio::join!(
            ours_closing(a, SocketType::Pull),
            raw_peer(b, script, false)
        );
        assert_proto(r, "data message before READY");
    }

    #[tokio::test]
    async fn a_ping_before_ready_is_refused() {
        let mut script = greeting(3, 1, b"NULL");
        let mut out = BytesMut::new();
        encode_command(
            &Command::Ping {
                ttl: 0,
                context: Bytes::new(),
            },
            &mut out,
        );
        script.extend_from_slice(&out);
        let (a, b) = duplex(1 << 16);
        let ((r, _, _), _) = tokio::join!(
            ours_closing(a, SocketType::Pull),
            raw_peer(b, script, false)
        );
        assert_proto(r, "expected READY from the peer, got PING");
    }
}
