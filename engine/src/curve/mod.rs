//! The CURVE security mechanism (rfc 25/ZMTP-CURVE, 26/CURVEZMQ) as libzmq 4.3 speaks it:
//! the handshake state machines and the MESSAGE boxes of an established session, as plain
//! functions over command bodies. Nothing here reads or writes a socket, so the connection
//! code decides how bytes move and everything here is testable (and fuzzable) in memory.
//!
//! The files:
//! - [`crypto`]: the only code that touches the crypto crate: key pairs, precomputed shared
//!   keys, boxes, random bytes.
//! - [`z85`]: Z85 text (rfc 32) and key parsing (32 raw bytes or 40 Z85 characters).
//! - [`mechanism`]: [`ClientHandshake`] and [`ServerHandshake`].
//! - [`message`]: [`Session`], sealing and opening MESSAGE commands with nonces that only go
//!   up.
//! - `driver`: runs the handshake over a connection's stream, with the server's verdict
//!   (allowlist, [`Authenticator`]).
//! - `traffic`: a connection's MESSAGEs after the handshake (the reader's [`Session`] use and
//!   multipart reassembly, the writer's sealing).
//!
//! # On a socket
//!
//! `Socket::set_curve(Some(CurveOptions { .. }))` makes every tcp/ipc connection made
//! afterwards speak CURVE (as a server or as a client of `server_key`); inproc stays
//! unencrypted, as in libzmq. A CURVE socket refuses NULL peers and pre-3.0 greetings, and a
//! NULL socket refuses CURVE peers: there is no fallback either way. A server decides on each
//! client with its `allow` list (not in it: 400), then its [`Authenticator`] if one is set
//! (`Socket::set_authenticator`; past its timeout: 300), else accepts any client whose
//! vouch checks out, as libzmq does without a ZAP handler. 200 completes the handshake (the
//! `handshake` event carries the client's key and the user id); 400 and 500 send ERROR with
//! that reason and close; 300 closes without a word. Refusals are reported as
//! `handshake:error:auth` with the status on the server, and on a client that received ERROR
//! "400" or "500". Every other failure closes silently (`handshake:error:protocol` locally).
//! A server runs at most `socket::MAX_PENDING_CURVE_HANDSHAKES` handshakes at once, each
//! bounded by `handshakeInterval`. Each connection makes fresh short-term keys, precomputes
//! its shared key once, and boxes every frame (PING and PONG included) with it.
//!
//! # Using the handshake machines directly
//!
//! "Body" below always means a whole command body as it travels in a ZMTP frame: the
//! name-length byte, the name, then the data (`\x05HELLO…`, 200 bytes for HELLO). The
//! caller frames what it sends (a command frame for handshake commands and ERROR, a data
//! frame without MORE for MESSAGE, as libzmq does) and hands over the bodies it receives;
//! [`command_name`] tells which command a body is.
//!
//! Client (the side configured with the server's public key):
//! ```text
//! let mut hs = ClientHandshake::new(server_public, client_keys, metadata)?;
//! send(hs.hello()?);                                  // HELLO
//! match hs.on_command(&body)? {                       // for each command received:
//!     ClientStep::Send(initiate) => send(initiate),   //   WELCOME -> INITIATE
//!     ClientStep::Established(peer) => ...,           //   READY: peer.properties, peer.session
//!     ClientStep::Refused(reason) => ...,             //   ERROR "400"/"500"/...: give up
//! }
//! ```
//!
//! Server (the side with `curveServer` and a secret key):
//! ```text
//! let mut hs = ServerHandshake::new(server_keys, metadata)?;
//! match hs.on_command(&body)? {                       // for each command received:
//!     ServerStep::Send(welcome) => send(welcome),     //   HELLO -> WELCOME
//!     ServerStep::Authenticate(client) => {           //   INITIATE checked: decide on
//!         // client.public_key (allowlist, ZAP, callback), then either
//!         let (ready, peer) = hs.accept()?;           //     READY and the session, or
//!         send(hs.deny(Status::Denied).unwrap());     //     ERROR "400", then close
//!     }
//! }
//! ```
//!
//! Then [`Session::seal`]/[`Session::seal_frame_into`] box each outgoing frame and
//! [`Session::open`]/[`Session::open_in_place`] unbox each incoming MESSAGE. PING and PONG
//! travel inside boxes too, with the command flag.
//!
//! # Failures
//!
//! Every `Err` from a handshake step or from opening a MESSAGE means: close the connection
//! without sending anything. The peer may be an attacker, and libzmq too closes silently on
//! a box that does not open, a malformed command or a replayed nonce (the client then
//! reconnects with new short-term keys). Peer faults are `EPROTO`; bad local arguments
//! (keys, oversized local metadata) are `EINVAL`. The only ERROR command sent is the
//! authentication verdict ([`ServerHandshake::deny`]), as in libzmq.

pub mod crypto;
pub(crate) mod driver;
pub mod mechanism;
pub mod message;
pub(crate) mod traffic;
pub mod z85;

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

pub use crypto::{KeyPair, PublicKey, SecretKey};
/// Takes the body of the command frame at the front of a buffer, as a CURVE handshake reads
/// them (data frames, bad flags and commands over 64 KiB refused); for the fuzz targets.
pub use driver::take_command as take_command_frame;
pub use mechanism::{
    ClientHandshake, ClientInfo, ClientStep, Established, ServerHandshake, ServerStep, Status,
};
pub use message::MESSAGE_OVERHEAD;
pub use message::{Opened, Session};

use crate::{Code, Error};

/// A long-term CURVE key pair as raw bytes: what [`key_pair`] makes and [`CurveOptions`]
/// takes. The secret half is the caller's to keep secret (it is not wiped: it is plain data).
#[derive(Clone)]
pub struct CurveKeys {
    pub public: [u8; 32],
    pub secret: [u8; 32],
}

impl fmt::Debug for CurveKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CurveKeys {{ public: {}, secret: .. }}",
            z85::encode_key(&self.public)
        )
    }
}

/// A fresh long-term key pair from the operating system's random number generator (what
/// libzmq's `zmq_curve_keypair` makes).
pub fn key_pair() -> CurveKeys {
    let pair = KeyPair::generate();
    CurveKeys {
        public: *pair.public().as_bytes(),
        secret: *pair.secret().as_bytes(),
    }
}

/// The public key of a secret key (libzmq's `zmq_curve_public`).
pub fn public_from_secret(secret: &[u8; 32]) -> [u8; 32] {
    *SecretKey::from_bytes(*secret).public_key().as_bytes()
}

/// A socket's CURVE settings (see `Socket::set_curve`). With `server`, the socket
/// authenticates clients and needs only its secret key; otherwise it is a client and must
/// know the server's public key. Either role may bind or connect.
#[derive(Clone)]
pub struct CurveOptions {
    /// Act as the CURVE server (libzmq's `ZMQ_CURVE_SERVER`).
    pub server: bool,
    /// Our long-term secret key.
    pub secret_key: [u8; 32],
    /// Our long-term public key. All zeros means "derive it from `secret_key`"; anything
    /// else must be `secret_key`'s public key (`EINVAL` otherwise: with a mismatched pair
    /// every handshake would fail without a word).
    pub public_key: [u8; 32],
    /// The server's long-term public key: required for a client (`EINVAL` otherwise),
    /// ignored for a server.
    pub server_key: Option<[u8; 32]>,
    /// The ZAP domain handed to the authenticator (`ZMQ_ZAP_DOMAIN`).
    pub zap_domain: String,
    /// A server's allowlist of client public keys, checked before the authenticator: a
    /// client not in it is refused with 400. `None` allows every key.
    pub allow: Option<HashSet<[u8; 32]>>,
}

impl fmt::Debug for CurveOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveOptions")
            .field("server", &self.server)
            .field("public_key", &z85::encode_key(&self.public_key))
            .field("server_key", &self.server_key.map(|k| z85::encode_key(&k)))
            .field("zap_domain", &self.zap_domain)
            .field("allow", &self.allow.as_ref().map(|a| a.len()))
            .finish_non_exhaustive()
    }
}

impl CurveOptions {
    /// Checks the options and turns them into what connections use. `EINVAL` for a client
    /// without a server key, a server key that is a low-order point, or a public key that
    /// does not belong to the secret key.
    pub(crate) fn prepare(&self) -> Result<Curve, Error> {
        let secret = SecretKey::from_bytes(self.secret_key);
        let keys = if self.public_key == [0u8; 32] {
            KeyPair::from_secret(secret)
        } else {
            KeyPair::new(PublicKey::from_bytes(self.public_key), secret)?
        };
        let server_key = if self.server {
            None
        } else {
            let key = self
                .server_key
                .ok_or_else(|| inval("a CURVE client needs the server's public key"))?;
            let key = PublicKey::from_bytes(key);
            // Refused now rather than at every connection attempt.
            crypto::BoxKey::precompute(&key, keys.secret())
                .map_err(|_| inval("the server public key is not a usable curve25519 key"))?;
            Some(key)
        };
        Ok(Curve {
            keys,
            server_key,
            zap_domain: self.zap_domain.clone(),
            allow: self.allow.clone(),
        })
    }
}

/// Validated CURVE settings, shared by a socket's connections.
#[derive(Debug)]
pub(crate) struct Curve {
    pub keys: KeyPair,
    /// `Some` for a client, `None` for a server.
    pub server_key: Option<PublicKey>,
    pub zap_domain: String,
    pub allow: Option<HashSet<[u8; 32]>>,
}

/// What a CURVE server asks its [`Authenticator`] about a client whose INITIATE checked
/// out (its vouch proves it holds the secret key of `public_key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRequest {
    /// The client's long-term public key.
    pub public_key: [u8; 32],
    /// The client's address as ZAP gives it: the IP for tcp (no port), the endpoint (`ipc://path`) for ipc.
    pub address: String,
    /// The socket's `zap_domain`.
    pub domain: String,
}

/// An [`Authenticator`]'s verdict, with ZAP's status codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthReply {
    /// 200: welcome. 300: temporary failure, the connection closes without an ERROR (the
    /// client retries). 400: denied, ERROR "400" then close. 500: the authenticator failed,
    /// ERROR "500" then close. Any other value counts as 500.
    pub status: u16,
    /// For 200: the user id reported with the `handshake` event.
    pub user_id: String,
}

/// Decides on CURVE clients (what a ZAP handler does in libzmq). Called once per handshake
/// that passed the cryptographic checks and the allowlist; its future is bounded by the
/// timeout given to `Socket::set_authenticator` (a timeout counts as 300).
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(&self, req: AuthRequest) -> Pin<Box<dyn Future<Output = AuthReply> + Send>>;
}

/// The mechanism name in the ZMTP greeting, NUL-padded to 20 bytes.
pub const MECHANISM: [u8; 20] = *b"CURVE\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// Metadata properties (READY/INITIATE): names and raw values, in wire order.
pub type Metadata = Vec<(String, Bytes)>;

/// The largest handshake command body accepted or produced (INITIATE and READY carry
/// metadata; the rest have fixed sizes). Matches the codec's command frame limit, and is
/// the pre-authentication cap the notes ask for (CVE-2019-13132 was a fixed buffer here).
pub const MAX_HANDSHAKE_COMMAND: usize = 65536;

/// The most metadata properties accepted from a peer. libzmq sends one (Socket-Type), two
/// with an identity; the cap keeps a 64 KiB INITIATE of empty properties from costing
/// a megabyte of property list.
pub const MAX_PROPERTIES: usize = 64;

pub(crate) const HELLO: &[u8] = b"\x05HELLO";
pub(crate) const WELCOME: &[u8] = b"\x07WELCOME";
pub(crate) const INITIATE: &[u8] = b"\x08INITIATE";
pub(crate) const READY: &[u8] = b"\x05READY";
pub(crate) const MESSAGE: &[u8] = b"\x07MESSAGE";
pub(crate) const ERROR: &[u8] = b"\x05ERROR";

pub(crate) fn proto(message: impl Into<String>) -> Error {
    Error::new(Code::Proto, format!("CURVE: {}", message.into()))
}

pub(crate) fn inval(message: impl Into<String>) -> Error {
    Error::new(Code::Inval, format!("CURVE: {}", message.into()))
}

/// The name of the command in `body` (`b"HELLO"`, `b"MESSAGE"`, …), or `None` if the body
/// is too short to hold the name its first byte announces, or announces an empty one.
pub fn command_name(body: &[u8]) -> Option<&[u8]> {
    let (&len, rest) = body.split_first()?;
    if len == 0 {
        return None;
    }
    rest.get(..usize::from(len))
}

/// An ERROR command body carrying `reason` (at most 255 bytes are sent: the wire format
/// has a 1-byte length). Sent in a command frame, unencrypted.
pub fn error_body(reason: &str) -> Vec<u8> {
    let reason = &reason.as_bytes()[..reason.len().min(255)];
    let mut body = Vec::with_capacity(ERROR.len() + 1 + reason.len());
    body.extend_from_slice(ERROR);
    body.push(reason.len() as u8);
    body.extend_from_slice(reason);
    body
}

/// The reason carried by an ERROR command body (lossily decoded: it comes from the peer and
/// is not authenticated, so anyone on the path can forge it).
pub fn parse_error(body: &[u8]) -> Result<String, Error> {
    let data = body
        .strip_prefix(ERROR)
        .ok_or_else(|| proto("not an ERROR command"))?;
    let (&len, rest) = data
        .split_first()
        .ok_or_else(|| proto("malformed ERROR command"))?;
    let reason = rest
        .get(..usize::from(len))
        .ok_or_else(|| proto("malformed ERROR command: reason overruns the command"))?;
    Ok(String::from_utf8_lossy(reason).into_owned())
}

/// A nonce of a 16-byte prefix and an 8-byte big-endian counter.
pub(crate) fn short_nonce(prefix: &[u8; 16], counter: u64) -> crypto::Nonce {
    let mut nonce = [0u8; crypto::NONCE_LEN];
    nonce[..16].copy_from_slice(prefix);
    nonce[16..].copy_from_slice(&counter.to_be_bytes());
    nonce
}

/// A nonce of an 8-byte prefix and 16 bytes (random, or taken from the peer's command).
pub(crate) fn long_nonce(prefix: &[u8; 8], tail: &[u8; 16]) -> crypto::Nonce {
    let mut nonce = [0u8; crypto::NONCE_LEN];
    nonce[..8].copy_from_slice(prefix);
    nonce[8..].copy_from_slice(tail);
    nonce
}

/// Encodes local metadata: per property, name length (1 byte), name, value length (4
/// bytes, big-endian), value. Names over 255 bytes and values over 4 GiB cannot be encoded
/// and are `EINVAL`.
pub(crate) fn encode_metadata(properties: &[(String, Bytes)]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for (name, value) in properties {
        let name_len = u8::try_from(name.len()).map_err(|_| {
            inval(format!(
                "metadata name of {} bytes (at most 255)",
                name.len()
            ))
        })?;
        let value_len = u32::try_from(value.len()).map_err(|_| {
            inval(format!(
                "metadata value of {} bytes is too long",
                value.len()
            ))
        })?;
        out.push(name_len);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&value_len.to_be_bytes());
        out.extend_from_slice(value);
    }
    Ok(out)
}

/// Parses peer metadata out of `data` (a decrypted box, shared so that values are slices
/// of it, not copies). Every length is checked against what is left, and more than
/// [`MAX_PROPERTIES`] properties are refused.
pub(crate) fn parse_metadata(data: &Bytes) -> Result<Metadata, Error> {
    let overrun = || proto("malformed metadata: a property overruns the command");
    let mut properties = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        if properties.len() == MAX_PROPERTIES {
            return Err(proto(format!(
                "metadata has more than {MAX_PROPERTIES} properties"
            )));
        }
        let name_len = usize::from(data[pos]);
        pos += 1;
        let name = data.get(pos..pos + name_len).ok_or_else(overrun)?;
        pos += name_len;
        let len = data.get(pos..pos + 4).ok_or_else(overrun)?;
        pos += 4;
        let value_len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        let value_len = usize::try_from(value_len).map_err(|_| overrun())?;
        let end = pos.checked_add(value_len).ok_or_else(overrun)?;
        if end > data.len() {
            return Err(overrun());
        }
        properties.push((
            String::from_utf8_lossy(name).into_owned(),
            data.slice(pos..end),
        ));
        pos = end;
    }
    Ok(properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names() {
        assert_eq!(command_name(b"\x05HELLO\x01\x00"), Some(&b"HELLO"[..]));
        assert_eq!(command_name(b"\x07MESSAGE"), Some(&b"MESSAGE"[..]));
        assert_eq!(command_name(b"\x07MESS"), None);
        assert_eq!(command_name(b"\x00abc"), None);
        assert_eq!(command_name(b""), None);
    }

    #[test]
    fn error_bodies_round_trip() {
        assert_eq!(error_body("400"), b"\x05ERROR\x03400");
        assert_eq!(parse_error(b"\x05ERROR\x03400").unwrap(), "400");
        assert_eq!(parse_error(b"\x05ERROR\x00").unwrap(), "");
        assert_eq!(error_body(&"x".repeat(300)).len(), 7 + 255);
        assert!(parse_error(b"\x05ERROR").is_err());
        assert!(parse_error(b"\x05ERROR\x04400").is_err());
        assert!(parse_error(b"\x05READY\x03400").is_err());
    }

    #[test]
    fn metadata_round_trips_and_bounds_are_checked() {
        let props: Metadata = vec![
            ("Socket-Type".into(), Bytes::from_static(b"PUSH")),
            ("Identity".into(), Bytes::new()),
            ("".into(), Bytes::from(vec![7u8; 300])),
        ];
        let wire = Bytes::from(encode_metadata(&props).unwrap());
        assert_eq!(&wire[..16], b"\x0bSocket-Type\x00\x00\x00\x04");
        assert_eq!(parse_metadata(&wire).unwrap(), props);
        assert_eq!(parse_metadata(&Bytes::new()).unwrap(), vec![]);
        // Every truncation is an overrun, never a panic.
        for cut in 1..wire.len() {
            let r = parse_metadata(&wire.slice(..cut));
            if let Ok(p) = r {
                // Cutting exactly between two properties is a valid, shorter list.
                assert!(p.len() < props.len());
            }
        }
        let huge = Bytes::from_static(b"\x01a\xff\xff\xff\xff");
        assert!(parse_metadata(&huge).is_err());
        let many = Bytes::from(b"\x00\x00\x00\x00\x00".repeat(MAX_PROPERTIES + 1));
        assert!(parse_metadata(&many)
            .unwrap_err()
            .message
            .contains("more than"));
        let exactly = Bytes::from(b"\x00\x00\x00\x00\x00".repeat(MAX_PROPERTIES));
        assert_eq!(parse_metadata(&exactly).unwrap().len(), MAX_PROPERTIES);
        let long_name = vec![("n".repeat(256), Bytes::new())];
        assert_eq!(encode_metadata(&long_name).unwrap_err().code, Code::Inval);
    }

    #[test]
    fn nonces_have_the_rfc_layout() {
        let n = short_nonce(b"CurveZMQMESSAGEC", 0x0102030405060708);
        assert_eq!(&n[..16], b"CurveZMQMESSAGEC");
        assert_eq!(&n[16..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let n = long_nonce(b"COOKIE--", &[9; 16]);
        assert_eq!(&n[..8], b"COOKIE--");
        assert_eq!(&n[8..], &[9; 16]);
    }
}
