//! Runs a CURVE handshake over a connection's stream: the greetings, then the commands of
//! [`super::mechanism`] in command frames, then — on a server — the verdict on the client
//! (allowlist, then authenticator) and — on both sides — the socket-type check. The
//! cryptography is all in `mechanism.rs`; this file moves bytes and decides.
//!
//! Before READY only command frames of at most [`MAX_HANDSHAKE_COMMAND`] bytes are read, and
//! only as many bytes as the current command needs, so what a peer sends during the
//! handshake costs at most one command's worth of buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use super::mechanism::{ClientStep, ServerStep, Status};
use super::{
    proto, AuthReply, AuthRequest, ClientHandshake, Curve, Established, ServerHandshake,
    MAX_HANDSHAKE_COMMAND, MECHANISM,
};
use crate::handshake::{check_socket_type, exchange_greetings, read_some, send, PeerInfo};
use crate::socket::AuthConfig;
use crate::{Code, Error, SocketType};

/// A completed CURVE handshake.
pub(crate) struct Secured {
    pub peer: PeerInfo,
    /// Both directions' boxes from now on.
    pub session: super::Session,
    /// The peer's long-term public key (a client's proven by its vouch; a server's the one
    /// we were configured with, proven by its WELCOME opening).
    pub public_key: [u8; 32],
    /// A server's authenticator's user id for the client.
    pub user_id: Option<String>,
}

/// A failed CURVE handshake: why, and for an authentication verdict its ZAP status.
pub(crate) struct Failure {
    pub error: Error,
    pub status: Option<u16>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            status: None,
        }
    }
}

/// The metadata both sides send: our socket type, as libzmq does.
fn metadata(local: SocketType) -> Vec<(String, Bytes)> {
    vec![(
        "Socket-Type".to_string(),
        Bytes::from_static(local.as_str().as_bytes()),
    )]
}

/// Runs the handshake as `curve` says (client or server). `address` is what the
/// authenticator is told about the peer. Bytes the peer sent after its last handshake
/// command are left in `buf` for the connection's reader.
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: SocketType,
    curve: &Curve,
    auth: Option<AuthConfig>,
    address: String,
    buf: &mut BytesMut,
) -> Result<Secured, Failure> {
    let server = curve.server_key.is_none();
    // libzmq always sends as-server 0 and ignores the peer's; we send the truth and ignore
    // the peer's too: roles come from local options.
    let greeting = exchange_greetings(stream, buf, &MECHANISM, server).await?;
    let (properties, session, public_key, user_id) = match curve.server_key {
        Some(server_key) => {
            let mut hs = ClientHandshake::new(server_key, curve.keys.clone(), &metadata(local))?;
            send_command(stream, &hs.hello()?).await?;
            let done = loop {
                let body = read_command(stream, buf).await?;
                match hs.on_command(&body)? {
                    ClientStep::Send(initiate) => send_command(stream, &initiate).await?,
                    ClientStep::Established(done) => break done,
                    ClientStep::Refused(reason) => return Err(refused(&reason)),
                }
            };
            let Established {
                properties,
                session,
            } = done;
            (properties, session, *server_key.as_bytes(), None)
        }
        None => {
            let mut hs = ServerHandshake::new(curve.keys.clone(), &metadata(local))?;
            let client = loop {
                let body = read_command(stream, buf).await?;
                match hs.on_command(&body)? {
                    ServerStep::Send(welcome) => send_command(stream, &welcome).await?,
                    ServerStep::Authenticate(client) => break client,
                }
            };
            // A client of the wrong type is not worth asking the authenticator about.
            check_socket_type(local, &client.properties)?;
            let key = *client.public_key.as_bytes();
            let reply = verdict(curve, auth, key, address).await;
            let status = match reply.status {
                200 => None,
                300 => Some(Status::Temporary),
                400 => Some(Status::Denied),
                _ => Some(Status::Internal),
            };
            if let Some(status) = status {
                if let Some(error) = hs.deny(status) {
                    // Best effort: the client may already be gone.
                    let _ = send_command(stream, &error).await;
                }
                return Err(Failure {
                    error: Error::new(
                        Code::Proto,
                        format!(
                            "CURVE client {} refused with status {}",
                            super::z85::encode_key(&key),
                            status.code()
                        ),
                    ),
                    status: Some(status.code()),
                });
            }
            let (ready, done) = hs.accept()?;
            send_command(stream, &ready).await?;
            (done.properties, done.session, key, Some(reply.user_id))
        }
    };
    let socket_type = check_socket_type(local, &properties)?;
    Ok(Secured {
        peer: PeerInfo {
            socket_type,
            minor: greeting.minor,
            properties,
        },
        session,
        public_key,
        user_id,
    })
}

/// The server's decision on a client whose INITIATE checked out: the allowlist first (not
/// in it: 400), then the authenticator (its status; past its timeout: 300), else welcome.
async fn verdict(
    curve: &Curve,
    auth: Option<AuthConfig>,
    key: [u8; 32],
    address: String,
) -> AuthReply {
    if let Some(allow) = &curve.allow {
        if !allow.contains(&key) {
            return AuthReply {
                status: 400,
                user_id: String::new(),
            };
        }
    }
    let Some((auth, timeout)) = auth else {
        return AuthReply {
            status: 200,
            user_id: String::new(),
        };
    };
    let req = AuthRequest {
        public_key: key,
        address,
        domain: curve.zap_domain.clone(),
    };
    match tokio::time::timeout(timeout, auth.authenticate(req)).await {
        Ok(reply) => reply,
        Err(_) => AuthReply {
            status: 300,
            user_id: String::new(),
        },
    }
}

/// The client's view of an ERROR: "400"/"500" are authentication verdicts (reported as
/// such), anything else a protocol failure.
fn refused(reason: &str) -> Failure {
    let status = match reason {
        "400" => Some(400),
        "500" => Some(500),
        _ => None,
    };
    Failure {
        error: Error::new(
            Code::Proto,
            format!("CURVE server refused the handshake: {:?}", reason),
        ),
        status,
    }
}

/// Reads the next command frame's body. Data frames (nothing is a message before READY),
/// reserved flag bits and commands over [`MAX_HANDSHAKE_COMMAND`] are refused at the header.
async fn read_command<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> Result<Bytes, Error> {
    loop {
        if let Some(body) = take_command(buf)? {
            return Ok(body);
        }
        read_some(stream, buf).await?;
    }
}

/// The body of the command frame at the front of `buf`, if all of it is there.
pub fn take_command(buf: &mut BytesMut) -> Result<Option<Bytes>, Error> {
    let Some(&flags) = buf.first() else {
        return Ok(None);
    };
    let long = match flags {
        0x04 => false,
        0x06 => true,
        0x00..=0x03 => return Err(proto("a data frame before the handshake completed")),
        _ => {
            return Err(proto(format!(
                "invalid frame flags 0x{flags:02x} during the handshake"
            )))
        }
    };
    let (len, header) = if long {
        let Some(size) = buf.get(1..9) else {
            return Ok(None);
        };
        let mut be = [0u8; 8];
        be.copy_from_slice(size);
        (u64::from_be_bytes(be), 9)
    } else {
        let Some(&size) = buf.get(1) else {
            return Ok(None);
        };
        (u64::from(size), 2)
    };
    if len > MAX_HANDSHAKE_COMMAND as u64 {
        return Err(proto(format!(
            "handshake command of {len} bytes (at most {MAX_HANDSHAKE_COMMAND})"
        )));
    }
    // Bounded by MAX_HANDSHAKE_COMMAND just above.
    let len = len as usize;
    if buf.len() < header + len {
        return Ok(None);
    }
    buf.advance(header);
    Ok(Some(buf.split_to(len).freeze()))
}

/// Appends a command frame carrying `body` (short or long header by size, as libzmq).
pub(crate) fn put_command_frame(body: &[u8], out: &mut BytesMut) {
    if body.len() <= 255 {
        out.put_u8(0x04);
        out.put_u8(body.len() as u8);
    } else {
        out.put_u8(0x06);
        out.put_u64(body.len() as u64);
    }
    out.extend_from_slice(body);
}

async fn send_command<S: AsyncWrite + Unpin>(stream: &mut S, body: &[u8]) -> Result<(), Error> {
    let mut out = BytesMut::with_capacity(body.len() + 9);
    put_command_frame(body, &mut out);
    send(stream, &out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_frames_are_taken_whole_and_bounded() {
        let mut buf = BytesMut::new();
        put_command_frame(b"\x05HELLO", &mut buf);
        let long = vec![7u8; 300];
        put_command_frame(&long, &mut buf);
        buf.extend_from_slice(b"\x00\x01x");
        assert_eq!(&take_command(&mut buf).unwrap().unwrap()[..], b"\x05HELLO");
        assert_eq!(take_command(&mut buf).unwrap().unwrap(), long);
        assert!(take_command(&mut buf).is_err(), "a data frame");
        for partial in [&b"\x06\0\0"[..], b"\x04", b"\x04\x05HEL"] {
            let mut b = BytesMut::from(partial);
            assert_eq!(take_command(&mut b).unwrap(), None);
        }
        let mut huge = BytesMut::from(&b"\x06\0\0\0\0\0\x01\0\x01"[..]);
        assert!(take_command(&mut huge).is_err());
        let mut bad = BytesMut::from(&b"\x05\x01x"[..]);
        assert!(take_command(&mut bad).is_err());
    }
}
