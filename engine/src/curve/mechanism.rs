//! The CURVE handshake (rfc 26/CURVEZMQ in ZMTP, rfc 25), as two state machines over
//! command bodies:
//!
//! ```text
//! client                                             server
//! HELLO     version 1.0, 72 zero bytes, C', n=1,
//!           Box[64 zeros](C'->S)          ------->
//!                                         <-------   WELCOME  16 random,
//!                                                             Box[S' + cookie](S->C')
//!           cookie = 16 random + SecretBox[C' + s'](K), K random per connection
//! INITIATE  cookie, n=2, Box[C + vouch + metadata](C'->S'),
//!           vouch = 16 random + Box[C' + S](C->S')
//!                                         ------->   (opens the cookie, checks the vouch,
//!                                                     asks for a verdict on C)
//!                                         <-------   READY  n=1, Box[metadata](S'->C')
//!                                                    or ERROR "400"/"500"
//! ```
//!
//! Sizes are exact where the spec fixes them (HELLO 200 bytes, WELCOME 168) and bounded
//! where it does not (INITIATE 257 bytes to 64 KiB, READY 30 bytes to 64 KiB), so no
//! peer-declared size decides an allocation. Unlike libzmq, the server checks that the
//! vouch names both the client's short-term key C' and our own long-term key S (the spec's
//! intent: a vouch made for another server cannot be replayed to us). Each handshake
//! makes fresh short-term keys; the cookie key is dropped (wiped) as soon as an INITIATE
//! is tried, so a replayed INITIATE, or a cookie from another connection, never opens.
//!
//! Every error is final: the machine refuses any further step, and the connection must
//! close without sending anything (see the module header of [`crate::curve`]).

use bytes::Bytes;
use zeroize::Zeroizing;

use super::crypto::{ct_eq, random_bytes, BoxKey, KeyPair, PublicKey, KEY_LEN, MAC_LEN};
use super::message::Session;
use super::{
    command_name, encode_metadata, error_body, inval, long_nonce, parse_error, parse_metadata,
    proto, short_nonce, Metadata, INITIATE, MAX_HANDSHAKE_COMMAND, READY, WELCOME,
};
use crate::Error;

/// HELLO body size: name (6), version (2), padding (72), C' (32), nonce (8), box (80).
pub const HELLO_LEN: usize = 200;
/// WELCOME body size: name (8), nonce (16), box of S' and the cookie (144).
pub const WELCOME_LEN: usize = 168;
/// Cookie size: nonce (16), secret box of C' and s' (80).
pub const COOKIE_LEN: usize = 96;
/// INITIATE body size without metadata: name (9), cookie (96), nonce (8), box of C, the
/// vouch's nonce and box (16 + 32 + 16 + 80).
pub const INITIATE_MIN_LEN: usize = 257;
/// READY body size without metadata: name (6), nonce (8), MAC (16).
pub const READY_MIN_LEN: usize = 30;

const HELLO_PREFIX: &[u8; 16] = b"CurveZMQHELLO---";
const WELCOME_PREFIX: &[u8; 8] = b"WELCOME-";
const COOKIE_PREFIX: &[u8; 8] = b"COOKIE--";
const INITIATE_PREFIX: &[u8; 16] = b"CurveZMQINITIATE";
const VOUCH_PREFIX: &[u8; 8] = b"VOUCH---";
const READY_PREFIX: &[u8; 16] = b"CurveZMQREADY---";

/// The HELLO's CurveZMQ version.
const VERSION: [u8; 2] = [1, 0];
/// HELLO's anti-amplification padding, so that a HELLO is bigger than the WELCOME it earns.
const HELLO_PADDING: usize = 72;
/// The plaintext of HELLO's signature box.
const HELLO_SIGNATURE: [u8; 64] = [0; 64];
/// Plaintext in INITIATE's box before the metadata: C (32), vouch nonce (16), vouch (80).
const INITIATE_FIXED: usize = KEY_LEN + 16 + 80;

/// The verdict of an authenticator that refuses a client, with ZAP's status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 300, a temporary failure: close without an ERROR (the client retries).
    Temporary,
    /// 400, denied: ERROR "400" (a libzmq client reports an authentication failure and
    /// stops reconnecting).
    Denied,
    /// 500, an internal error of the authenticator: ERROR "500".
    Internal,
}

impl Status {
    /// The ZAP status code.
    pub fn code(self) -> u16 {
        match self {
            Status::Temporary => 300,
            Status::Denied => 400,
            Status::Internal => 500,
        }
    }
}

/// What the server learnt from a valid INITIATE, for the authenticator to judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's long-term public key C, proven by its vouch.
    pub public_key: PublicKey,
    /// The client's metadata (Socket-Type, Identity, …), not yet checked by anyone.
    pub properties: Metadata,
}

/// The outcome of a completed handshake: the peer's metadata and the session.
#[derive(Debug)]
pub struct Established {
    /// The peer's metadata (from READY on a client, INITIATE on a server).
    pub properties: Metadata,
    pub session: Session,
}

/// What a client does with the command it just received.
#[derive(Debug)]
pub enum ClientStep {
    /// Send this body (INITIATE, answering WELCOME) in a command frame.
    Send(Vec<u8>),
    /// READY opened: the handshake is done.
    Established(Established),
    /// The server sent ERROR with this reason ("400", "500", …): give up. Unauthenticated,
    /// as in libzmq: anyone on the path can forge it.
    Refused(String),
}

/// What a server does with the command it just received.
#[derive(Debug)]
pub enum ServerStep {
    /// Send this body (WELCOME, answering HELLO) in a command frame.
    Send(Vec<u8>),
    /// INITIATE checked out: decide on the client, then call
    /// [`ServerHandshake::accept`] or [`ServerHandshake::deny`].
    Authenticate(ClientInfo),
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(array(&bytes[at..at + 8]))
}

fn name_of(body: &[u8]) -> String {
    match command_name(body) {
        Some(name) => format!("{:?}", name.escape_ascii().to_string()),
        None => "a malformed command".to_string(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    Start,
    SentHello,
    SentInitiate,
    Done,
    Failed,
}

/// The client side of a CURVE handshake: knows the server's long-term public key S, has
/// its own long-term pair (C, c) and makes a fresh short-term pair (C', c') per handshake.
#[derive(Debug)]
pub struct ClientHandshake {
    state: ClientState,
    server_public: PublicKey,
    keys: KeyPair,
    /// C', c': this handshake's short-term pair. Dropped once INITIATE is made.
    short: Option<KeyPair>,
    /// beforenm(S, c'): HELLO's and WELCOME's boxes.
    hello_key: Option<BoxKey>,
    /// beforenm(S', c'): INITIATE, READY, then every MESSAGE.
    session_key: Option<BoxKey>,
    metadata: Vec<u8>,
}

impl ClientHandshake {
    /// A handshake with the server whose long-term public key is `server_public`, as the
    /// client `keys`, sending `metadata` (Socket-Type, …) in INITIATE. `EINVAL` if the server
    /// key is a low-order point (no secret could come of it) or the metadata would make
    /// INITIATE larger than 64 KiB.
    pub fn new(
        server_public: PublicKey,
        keys: KeyPair,
        metadata: &[(String, Bytes)],
    ) -> Result<Self, Error> {
        let metadata = encode_metadata(metadata)?;
        if INITIATE_MIN_LEN + metadata.len() > MAX_HANDSHAKE_COMMAND {
            return Err(inval(format!(
                "{} bytes of metadata make INITIATE larger than {MAX_HANDSHAKE_COMMAND} bytes",
                metadata.len()
            )));
        }
        let short = KeyPair::generate();
        let hello_key = BoxKey::precompute(&server_public, short.secret())
            .map_err(|_| inval("the server public key is not a usable curve25519 key"))?;
        Ok(ClientHandshake {
            state: ClientState::Start,
            server_public,
            keys,
            short: Some(short),
            hello_key: Some(hello_key),
            session_key: None,
            metadata,
        })
    }

    /// This handshake's short-term public key C' (fresh for every handshake).
    pub fn short_term_public(&self) -> Option<PublicKey> {
        self.short.as_ref().map(|k| *k.public())
    }

    /// The HELLO body to send first.
    pub fn hello(&mut self) -> Result<Vec<u8>, Error> {
        if self.state != ClientState::Start {
            return Err(inval("HELLO was already produced"));
        }
        let (Some(short), Some(hello_key)) = (&self.short, &self.hello_key) else {
            return Err(inval("handshake in an inconsistent state"));
        };
        let mut body = Vec::with_capacity(HELLO_LEN);
        body.extend_from_slice(super::HELLO);
        body.extend_from_slice(&VERSION);
        body.resize(body.len() + HELLO_PADDING, 0);
        body.extend_from_slice(short.public().as_bytes());
        body.extend_from_slice(&1u64.to_be_bytes());
        body.resize(HELLO_LEN, 0);
        hello_key.seal_into(
            &short_nonce(HELLO_PREFIX, 1),
            &HELLO_SIGNATURE,
            &mut body[120..],
        );
        self.state = ClientState::SentHello;
        Ok(body)
    }

    /// Takes the next command from the server: WELCOME (answered with INITIATE), READY
    /// (the end), or ERROR. Anything else, out of order, or malformed is an error, after
    /// which the handshake is over.
    pub fn on_command(&mut self, body: &[u8]) -> Result<ClientStep, Error> {
        let result = match (self.state, command_name(body)) {
            (ClientState::SentHello, Some(b"WELCOME")) => self.on_welcome(body),
            (ClientState::SentInitiate, Some(b"READY")) => self.on_ready(body),
            (ClientState::SentHello | ClientState::SentInitiate, Some(b"ERROR")) => {
                parse_error(body).map(ClientStep::Refused)
            }
            (ClientState::Failed | ClientState::Done, _) => {
                Err(proto("the handshake is already over"))
            }
            (state, _) => Err(proto(format!(
                "unexpected {} from the server ({state:?})",
                name_of(body)
            ))),
        };
        match &result {
            Ok(ClientStep::Send(_)) => self.state = ClientState::SentInitiate,
            Ok(ClientStep::Established(_)) => self.finish(ClientState::Done),
            Ok(ClientStep::Refused(_)) | Err(_) => self.finish(ClientState::Failed),
        }
        result
    }

    fn finish(&mut self, state: ClientState) {
        self.state = state;
        self.short = None;
        self.hello_key = None;
        self.session_key = None;
    }

    fn on_welcome(&mut self, body: &[u8]) -> Result<ClientStep, Error> {
        if body.len() != WELCOME_LEN || !body.starts_with(WELCOME) {
            return Err(proto(format!(
                "WELCOME of {} bytes (must be {WELCOME_LEN})",
                body.len()
            )));
        }
        let (Some(short), Some(hello_key)) = (self.short.take(), self.hello_key.take()) else {
            return Err(proto("handshake in an inconsistent state"));
        };
        let nonce = long_nonce(WELCOME_PREFIX, &array(&body[8..24]));
        let mut plain = [0u8; KEY_LEN + COOKIE_LEN];
        hello_key
            .open_into(&nonce, &body[24..], &mut plain)
            .map_err(|_| proto("WELCOME box does not open"))?;
        let server_short = PublicKey::from_bytes(array(&plain[..KEY_LEN]));
        let cookie = &plain[KEY_LEN..];
        let session_key = BoxKey::precompute(&server_short, short.secret())
            .map_err(|_| proto("the server's short-term key is a low-order point"))?;
        let vouch_key = BoxKey::precompute(&server_short, self.keys.secret())
            .map_err(|_| proto("the server's short-term key is a low-order point"))?;

        // The vouch: C' and S, boxed from our long-term key to the server's short-term one.
        let mut vouch_nonce = [0u8; 16];
        random_bytes(&mut vouch_nonce);
        let mut vouched = [0u8; 2 * KEY_LEN];
        vouched[..KEY_LEN].copy_from_slice(short.public().as_bytes());
        vouched[KEY_LEN..].copy_from_slice(self.server_public.as_bytes());

        let len = INITIATE_MIN_LEN + self.metadata.len();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(INITIATE);
        out.extend_from_slice(cookie);
        out.extend_from_slice(&2u64.to_be_bytes());
        let boxed_at = out.len();
        out.resize(boxed_at + MAC_LEN, 0);
        out.extend_from_slice(self.keys.public().as_bytes());
        out.extend_from_slice(&vouch_nonce);
        let vouch_at = out.len();
        out.resize(vouch_at + MAC_LEN + vouched.len(), 0);
        vouch_key.seal_into(
            &long_nonce(VOUCH_PREFIX, &vouch_nonce),
            &vouched,
            &mut out[vouch_at..],
        );
        out.extend_from_slice(&self.metadata);
        debug_assert_eq!(out.len(), len);
        session_key.seal_in_place(&short_nonce(INITIATE_PREFIX, 2), &mut out[boxed_at..]);
        self.session_key = Some(session_key);
        Ok(ClientStep::Send(out))
    }

    fn on_ready(&mut self, body: &[u8]) -> Result<ClientStep, Error> {
        if body.len() < READY_MIN_LEN || body.len() > MAX_HANDSHAKE_COMMAND {
            return Err(proto(format!(
                "READY of {} bytes (must be {READY_MIN_LEN} to {MAX_HANDSHAKE_COMMAND})",
                body.len()
            )));
        }
        let Some(session_key) = self.session_key.take() else {
            return Err(proto("handshake in an inconsistent state"));
        };
        let n = u64_at(body, 6);
        let plain = session_key
            .open(&short_nonce(READY_PREFIX, n), &body[14..])
            .map_err(|_| proto("READY box does not open"))?;
        let properties = parse_metadata(&Bytes::from(plain))?;
        // We sent HELLO with 1 and INITIATE with 2; the server's MESSAGEs must go above
        // its READY's nonce.
        Ok(ClientStep::Established(Established {
            properties,
            session: Session::client(session_key, 3, n),
        }))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerState {
    AwaitHello,
    AwaitInitiate,
    AwaitVerdict,
    Done,
    Failed,
}

/// The server side of a CURVE handshake: has the long-term pair (S, s), makes a fresh
/// short-term pair (S', s') and cookie key per handshake. Costs nothing until a HELLO of
/// the right size arrives.
#[derive(Debug)]
pub struct ServerHandshake {
    state: ServerState,
    keys: KeyPair,
    /// C', from HELLO.
    client_short: Option<PublicKey>,
    /// S', s'.
    short: Option<KeyPair>,
    /// K, the cookie key: lives from WELCOME to the first INITIATE, no longer.
    cookie_key: Option<BoxKey>,
    /// beforenm(C', s'): INITIATE, READY, then every MESSAGE.
    session_key: Option<BoxKey>,
    /// The nonce of the client's INITIATE: its MESSAGEs must go above it.
    client_nonce: u64,
    /// C, once INITIATE checked out.
    client_public: Option<PublicKey>,
    /// The client's metadata, from INITIATE until accept().
    client_properties: Metadata,
    metadata: Vec<u8>,
}

impl ServerHandshake {
    /// A handshake as the server `keys`, sending `metadata` (Socket-Type, …) in READY.
    /// `EINVAL` if the metadata would make READY larger than 64 KiB.
    pub fn new(keys: KeyPair, metadata: &[(String, Bytes)]) -> Result<Self, Error> {
        let metadata = encode_metadata(metadata)?;
        if READY_MIN_LEN + metadata.len() > MAX_HANDSHAKE_COMMAND {
            return Err(inval(format!(
                "{} bytes of metadata make READY larger than {MAX_HANDSHAKE_COMMAND} bytes",
                metadata.len()
            )));
        }
        Ok(ServerHandshake {
            state: ServerState::AwaitHello,
            keys,
            client_short: None,
            short: None,
            cookie_key: None,
            session_key: None,
            client_nonce: 0,
            client_public: None,
            client_properties: Vec::new(),
            metadata,
        })
    }

    /// The client's long-term public key, once its INITIATE checked out.
    pub fn client_public_key(&self) -> Option<PublicKey> {
        self.client_public
    }

    /// Takes the next command from the client: HELLO (answered with WELCOME), then
    /// INITIATE (checked, then handed to the authenticator). Anything else, out of order,
    /// or malformed is an error, after which the handshake is over.
    pub fn on_command(&mut self, body: &[u8]) -> Result<ServerStep, Error> {
        let result = match (self.state, command_name(body)) {
            (ServerState::AwaitHello, Some(b"HELLO")) => self.on_hello(body),
            (ServerState::AwaitInitiate, Some(b"INITIATE")) => self.on_initiate(body),
            (ServerState::Failed | ServerState::Done, _) => {
                Err(proto("the handshake is already over"))
            }
            (state, _) => Err(proto(format!(
                "unexpected {} from the client ({state:?})",
                name_of(body)
            ))),
        };
        match &result {
            Ok(ServerStep::Send(_)) => self.state = ServerState::AwaitInitiate,
            Ok(ServerStep::Authenticate(_)) => self.state = ServerState::AwaitVerdict,
            Err(_) => self.fail(),
        }
        result
    }

    fn fail(&mut self) {
        self.state = ServerState::Failed;
        self.short = None;
        self.cookie_key = None;
        self.session_key = None;
    }

    fn on_hello(&mut self, body: &[u8]) -> Result<ServerStep, Error> {
        if body.len() != HELLO_LEN {
            return Err(proto(format!(
                "HELLO of {} bytes (must be {HELLO_LEN})",
                body.len()
            )));
        }
        if body[6..8] != VERSION {
            return Err(proto(format!(
                "unsupported CurveZMQ version {}.{} (only 1.0)",
                body[6], body[7]
            )));
        }
        // The padding is not checked, as libzmq does not: it carries nothing.
        let client_short = PublicKey::from_bytes(array(&body[80..112]));
        let n = u64_at(body, 112);
        let hello_key = BoxKey::precompute(&client_short, self.keys.secret())
            .map_err(|_| proto("the client's short-term key is a low-order point"))?;
        let mut signature = [0u8; 64];
        hello_key
            .open_into(&short_nonce(HELLO_PREFIX, n), &body[120..], &mut signature)
            .map_err(|_| proto("HELLO signature box does not open"))?;

        let short = KeyPair::generate();
        let cookie_key = BoxKey::random();
        // WELCOME's plaintext: S', then the cookie (its nonce, then [C' + s'](K)).
        let mut plain = Zeroizing::new([0u8; KEY_LEN + COOKIE_LEN]);
        plain[..KEY_LEN].copy_from_slice(short.public().as_bytes());
        let mut cookie_nonce = [0u8; 16];
        random_bytes(&mut cookie_nonce);
        plain[KEY_LEN..KEY_LEN + 16].copy_from_slice(&cookie_nonce);
        {
            let sealed = &mut plain[KEY_LEN + 16..];
            sealed[MAC_LEN..MAC_LEN + KEY_LEN].copy_from_slice(client_short.as_bytes());
            sealed[MAC_LEN + KEY_LEN..].copy_from_slice(short.secret().as_bytes());
            cookie_key.seal_in_place(&long_nonce(COOKIE_PREFIX, &cookie_nonce), sealed);
        }
        let mut welcome_nonce = [0u8; 16];
        random_bytes(&mut welcome_nonce);
        let mut out = Vec::with_capacity(WELCOME_LEN);
        out.extend_from_slice(WELCOME);
        out.extend_from_slice(&welcome_nonce);
        out.resize(WELCOME_LEN, 0);
        hello_key.seal_into(
            &long_nonce(WELCOME_PREFIX, &welcome_nonce),
            &plain[..],
            &mut out[24..],
        );
        self.client_short = Some(client_short);
        self.short = Some(short);
        self.cookie_key = Some(cookie_key);
        Ok(ServerStep::Send(out))
    }

    fn on_initiate(&mut self, body: &[u8]) -> Result<ServerStep, Error> {
        if body.len() < INITIATE_MIN_LEN || body.len() > MAX_HANDSHAKE_COMMAND {
            return Err(proto(format!(
                "INITIATE of {} bytes (must be {INITIATE_MIN_LEN} to {MAX_HANDSHAKE_COMMAND})",
                body.len()
            )));
        }
        // Whatever happens next, the cookie key is gone: one INITIATE per cookie.
        let (Some(cookie_key), Some(short), Some(client_short)) =
            (self.cookie_key.take(), self.short.take(), self.client_short)
        else {
            return Err(proto("handshake in an inconsistent state"));
        };
        let cookie = &body[9..9 + COOKIE_LEN];
        let mut cookie_plain = Zeroizing::new([0u8; 2 * KEY_LEN]);
        cookie_key
            .open_into(
                &long_nonce(COOKIE_PREFIX, &array(&cookie[..16])),
                &cookie[16..],
                &mut cookie_plain[..],
            )
            .map_err(|_| proto("INITIATE cookie does not open"))?;
        // A cookie we made is for this connection's keys; compare anyway, cheaply.
        if !ct_eq(&cookie_plain[..KEY_LEN], client_short.as_bytes())
            || !ct_eq(&cookie_plain[KEY_LEN..], short.secret().as_bytes())
        {
            return Err(proto("INITIATE cookie is not this connection's"));
        }

        let n = u64_at(body, 9 + COOKIE_LEN);
        let session_key = BoxKey::precompute(&client_short, short.secret())
            .map_err(|_| proto("the client's short-term key is a low-order point"))?;
        let plain = session_key
            .open(
                &short_nonce(INITIATE_PREFIX, n),
                &body[9 + COOKIE_LEN + 8..],
            )
            .map_err(|_| proto("INITIATE box does not open"))?;
        // The box held at least INITIATE_FIXED bytes: the body's minimum size says so.
        let client_long = PublicKey::from_bytes(array(&plain[..KEY_LEN]));
        let vouch_key = BoxKey::precompute(&client_long, short.secret())
            .map_err(|_| proto("the client's long-term key is a low-order point"))?;
        let mut vouched = [0u8; 2 * KEY_LEN];
        vouch_key
            .open_into(
                &long_nonce(VOUCH_PREFIX, &array(&plain[KEY_LEN..KEY_LEN + 16])),
                &plain[KEY_LEN + 16..INITIATE_FIXED],
                &mut vouched,
            )
            .map_err(|_| proto("INITIATE vouch does not open"))?;
        if !ct_eq(&vouched[..KEY_LEN], client_short.as_bytes()) {
            return Err(proto("INITIATE vouch is for another short-term key"));
        }
        if !ct_eq(&vouched[KEY_LEN..], self.keys.public().as_bytes()) {
            return Err(proto("INITIATE vouch is for another server"));
        }
        let properties = parse_metadata(&Bytes::from(plain).slice(INITIATE_FIXED..))?;
        self.session_key = Some(session_key);
        self.client_nonce = n;
        self.client_public = Some(client_long);
        self.client_properties = properties.clone();
        Ok(ServerStep::Authenticate(ClientInfo {
            public_key: client_long,
            properties,
        }))
    }

    /// The client is welcome: the READY body to send, and the session (with the client's
    /// metadata). Only after [`ServerStep::Authenticate`].
    pub fn accept(&mut self) -> Result<(Vec<u8>, Established), Error> {
        if self.state != ServerState::AwaitVerdict {
            return Err(inval("accept() before INITIATE was checked"));
        }
        let Some(session_key) = self.session_key.take() else {
            self.fail();
            return Err(inval("handshake in an inconsistent state"));
        };
        let mut out = Vec::with_capacity(READY_MIN_LEN + self.metadata.len());
        out.extend_from_slice(READY);
        out.extend_from_slice(&1u64.to_be_bytes());
        out.resize(out.len() + MAC_LEN, 0);
        out.extend_from_slice(&self.metadata);
        session_key.seal_in_place(&short_nonce(READY_PREFIX, 1), &mut out[14..]);
        self.state = ServerState::Done;
        Ok((
            out,
            Established {
                properties: std::mem::take(&mut self.client_properties),
                session: Session::server(session_key, 2, self.client_nonce),
            },
        ))
    }

    /// The client is refused: the ERROR body to send before closing (`"400"` or `"500"`),
    /// or `None` for [`Status::Temporary`], which closes without a word. The handshake is
    /// over either way.
    pub fn deny(&mut self, status: Status) -> Option<Vec<u8>> {
        self.fail();
        match status {
            Status::Temporary => None,
            Status::Denied | Status::Internal => Some(error_body(&status.code().to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::crypto::{SecretKey, NONCE_LEN};
    use crate::Code;

    fn meta(socket_type: &'static str) -> Metadata {
        vec![(
            "Socket-Type".to_string(),
            Bytes::from_static(socket_type.as_bytes()),
        )]
    }

    struct Run {
        server_keys: KeyPair,
        client_keys: KeyPair,
        client: ClientHandshake,
        server: ServerHandshake,
    }

    fn start() -> Run {
        let server_keys = KeyPair::generate();
        let client_keys = KeyPair::generate();
        let client =
            ClientHandshake::new(*server_keys.public(), client_keys.clone(), &meta("PUSH"))
                .unwrap();
        let server = ServerHandshake::new(server_keys.clone(), &meta("PULL")).unwrap();
        Run {
            server_keys,
            client_keys,
            client,
            server,
        }
    }

    fn sent(step: Result<ServerStep, Error>) -> Vec<u8> {
        match step {
            Ok(ServerStep::Send(body)) => body,
            other => panic!("expected a body to send, got {other:?}"),
        }
    }

    fn sent_by_client(step: Result<ClientStep, Error>) -> Vec<u8> {
        match step {
            Ok(ClientStep::Send(body)) => body,
            other => panic!("expected a body to send, got {other:?}"),
        }
    }

    fn authenticated(step: Result<ServerStep, Error>) -> ClientInfo {
        match step {
            Ok(ServerStep::Authenticate(info)) => info,
            other => panic!("expected Authenticate, got {other:?}"),
        }
    }

    fn expect_proto<T: std::fmt::Debug>(r: Result<T, Error>, needle: &str) {
        let err = r.expect_err("expected a refusal");
        assert_eq!(err.code, Code::Proto, "{}", err.message);
        assert!(
            err.message.contains(needle),
            "{:?} does not contain {needle:?}",
            err.message
        );
    }

    /// Runs a whole handshake; returns (client's, server's) Established.
    fn complete(run: &mut Run) -> (Established, Established, Vec<Vec<u8>>) {
        let hello = run.client.hello().unwrap();
        let welcome = sent(run.server.on_command(&hello));
        let initiate = sent_by_client(run.client.on_command(&welcome));
        let info = authenticated(run.server.on_command(&initiate));
        assert_eq!(info.public_key, *run.client_keys.public());
        let (ready, server_side) = run.server.accept().unwrap();
        let Ok(ClientStep::Established(client_side)) = run.client.on_command(&ready) else {
            panic!("READY was not accepted");
        };
        (
            client_side,
            server_side,
            vec![hello, welcome, initiate, ready],
        )
    }

    #[test]
    fn a_handshake_completes_and_both_sessions_talk() {
        let mut run = start();
        let (mut c, mut s, bodies) = complete(&mut run);
        assert_eq!(c.properties, meta("PULL"));
        assert_eq!(s.properties, meta("PUSH"));
        assert_eq!(
            run.server.client_public_key(),
            Some(*run.client_keys.public())
        );
        let lens: Vec<usize> = bodies.iter().map(Vec::len).collect();
        let md = 1 + 11 + 4 + 4;
        assert_eq!(lens, [200, 168, 257 + md, 30 + md]);

        let m = c.session.seal(b"to the server", true, false).unwrap();
        let o = s.session.open(&m).unwrap();
        assert_eq!((&o.data[..], o.more()), (&b"to the server"[..], true));
        let m = s.session.seal(b"to the client", false, true).unwrap();
        let o = c.session.open(&m).unwrap();
        assert_eq!((&o.data[..], o.command()), (&b"to the client"[..], true));
        // Client MESSAGEs start at 3 (HELLO 1, INITIATE 2), server ones at 2 (READY 1).
        assert_eq!(c.session.next_send_nonce(), 4);
        assert_eq!(s.session.next_send_nonce(), 3);
    }

    #[test]
    fn commands_have_the_wire_layout() {
        let mut run = start();
        let (_, _, bodies) = complete(&mut run);
        let [hello, welcome, initiate, ready] = &bodies[..] else {
            unreachable!()
        };
        assert_eq!(&hello[..8], b"\x05HELLO\x01\x00");
        assert!(hello[8..80].iter().all(|&b| b == 0), "padding");
        assert_eq!(&hello[112..120], &1u64.to_be_bytes());
        assert_eq!(&welcome[..8], b"\x07WELCOME");
        assert_eq!(&initiate[..9], b"\x08INITIATE");
        assert_eq!(&initiate[105..113], &2u64.to_be_bytes());
        assert_eq!(&ready[..6], b"\x05READY");
        assert_eq!(&ready[6..14], &1u64.to_be_bytes());
        assert_eq!(command_name(initiate), Some(&b"INITIATE"[..]));
    }

    #[test]
    fn every_handshake_uses_fresh_short_term_keys() {
        let server_keys = KeyPair::generate();
        let client_keys = KeyPair::generate();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5 {
            let mut c =
                ClientHandshake::new(*server_keys.public(), client_keys.clone(), &[]).unwrap();
            let hello = c.hello().unwrap();
            assert!(seen.insert(hello[80..112].to_vec()), "C' repeated");
            assert_eq!(
                c.short_term_public().unwrap().as_bytes()[..],
                hello[80..112]
            );
        }
    }

    #[test]
    fn metadata_of_many_properties_travels_both_ways() {
        let props: Metadata = vec![
            ("Socket-Type".into(), Bytes::from_static(b"PUSH")),
            ("Identity".into(), Bytes::new()),
            ("X-Big".into(), Bytes::from(vec![7u8; 60_000])),
        ];
        let server_keys = KeyPair::generate();
        let client_keys = KeyPair::generate();
        let mut run = Run {
            client: ClientHandshake::new(*server_keys.public(), client_keys.clone(), &props)
                .unwrap(),
            server: ServerHandshake::new(server_keys.clone(), &props).unwrap(),
            server_keys,
            client_keys,
        };
        let (c, s, _) = complete(&mut run);
        assert_eq!(c.properties, props);
        assert_eq!(s.properties, props);
    }

    #[test]
    fn local_arguments_are_einval() {
        let keys = KeyPair::generate();
        for point in crate::curve::crypto::LOW_ORDER_POINTS {
            let err =
                ClientHandshake::new(PublicKey::from_bytes(point), keys.clone(), &[]).unwrap_err();
            assert_eq!(err.code, Code::Inval);
        }
        let big = vec![("X".to_string(), Bytes::from(vec![0u8; 65_536]))];
        let err = ClientHandshake::new(*keys.public(), keys.clone(), &big).unwrap_err();
        assert_eq!(err.code, Code::Inval);
        let err = ServerHandshake::new(keys.clone(), &big).unwrap_err();
        assert_eq!(err.code, Code::Inval);
        let mut c = ClientHandshake::new(*keys.public(), keys.clone(), &[]).unwrap();
        c.hello().unwrap();
        assert_eq!(c.hello().unwrap_err().code, Code::Inval);
        let mut s = ServerHandshake::new(keys, &[]).unwrap();
        assert_eq!(s.accept().unwrap_err().code, Code::Inval);
    }

    #[test]
    fn denial_sends_error_400_or_500_and_the_client_reports_it() {
        for (status, reason) in [(Status::Denied, "400"), (Status::Internal, "500")] {
            let mut run = start();
            let hello = run.client.hello().unwrap();
            let welcome = sent(run.server.on_command(&hello));
            let initiate = sent_by_client(run.client.on_command(&welcome));
            authenticated(run.server.on_command(&initiate));
            let error = run.server.deny(status).unwrap();
            assert_eq!(error, [b"\x05ERROR\x03", reason.as_bytes()].concat());
            assert_eq!(run.server.accept().unwrap_err().code, Code::Inval);
            match run.client.on_command(&error) {
                Ok(ClientStep::Refused(r)) => assert_eq!(r, reason),
                other => panic!("{other:?}"),
            }
            expect_proto(run.client.on_command(&error), "already over");
        }
        let mut run = start();
        assert_eq!(run.server.deny(Status::Temporary), None);
        // An ERROR right after HELLO is a refusal too.
        run.client.hello().unwrap();
        assert!(matches!(
            run.client.on_command(b"\x05ERROR\x03500"),
            Ok(ClientStep::Refused(r)) if r == "500"
        ));
    }

    #[test]
    fn commands_out_of_order_are_refused() {
        let mut run = start();
        let hello = run.client.hello().unwrap();
        // INITIATE or MESSAGE before HELLO; HELLO twice.
        let mut s = ServerHandshake::new(run.server_keys.clone(), &[]).unwrap();
        expect_proto(
            s.on_command(&[INITIATE, &[0u8; 300][..]].concat()),
            "unexpected",
        );
        let mut s = ServerHandshake::new(run.server_keys.clone(), &[]).unwrap();
        expect_proto(s.on_command(b"\x07MESSAGE"), "unexpected \"MESSAGE\"");
        let mut s = ServerHandshake::new(run.server_keys.clone(), &[]).unwrap();
        expect_proto(s.on_command(b""), "malformed");
        let welcome = sent(run.server.on_command(&hello));
        expect_proto(run.server.on_command(&hello), "unexpected \"HELLO\"");
        expect_proto(run.server.on_command(&hello), "already over");
        // READY before WELCOME; WELCOME twice.
        let mut c =
            ClientHandshake::new(*run.server_keys.public(), run.client_keys.clone(), &[]).unwrap();
        expect_proto(c.on_command(&welcome), "unexpected");
        let mut c =
            ClientHandshake::new(*run.server_keys.public(), run.client_keys.clone(), &[]).unwrap();
        c.hello().unwrap();
        expect_proto(c.on_command(b"\x05READY"), "unexpected \"READY\"");
        sent_by_client(run.client.on_command(&welcome));
        expect_proto(run.client.on_command(&welcome), "unexpected \"WELCOME\"");
    }

    #[test]
    fn hellos_of_the_wrong_size_or_version_are_refused() {
        let mut run = start();
        let hello = run.client.hello().unwrap();
        for len in [6usize, 8, 199, 201, 400] {
            let mut body = hello.clone();
            body.resize(len, 0);
            let mut s = ServerHandshake::new(run.server_keys.clone(), &[]).unwrap();
            expect_proto(s.on_command(&body), "HELLO of");
        }
        for version in [[0u8, 0], [1, 1], [2, 0], [0, 1], [0xff, 0xff]] {
            let mut body = hello.clone();
            body[6..8].copy_from_slice(&version);
            let mut s = ServerHandshake::new(run.server_keys.clone(), &[]).unwrap();
            expect_proto(s.on_command(&body), "version");
        }
        // A HELLO made for another server's key does not open.
        let other = KeyPair::generate();
        let mut s = ServerHandshake::new(other, &[]).unwrap();
        expect_proto(s.on_command(&hello), "does not open");
        // The real one still works.
        sent(run.server.on_command(&hello));
    }

    #[test]
    fn a_low_order_client_short_term_key_is_refused() {
        let mut run = start();
        let hello = run.client.hello().unwrap();
        for point in crate::curve::crypto::LOW_ORDER_POINTS {
            let mut body = hello.clone();
            body[80..112].copy_from_slice(&point);
            let mut s = ServerHandshake::new(run.server_keys.clone(), &[]).unwrap();
            expect_proto(s.on_command(&body), "low-order");
        }
    }

    /// Flips one bit in every byte of `command` (the bit cycles with the position) in
    /// fresh handshakes and checks that none of them completes. HELLO's padding carries
    /// nothing and is not checked (as in libzmq), so flips there are skipped.
    #[test]
    fn a_flipped_bit_anywhere_stops_the_handshake() {
        for command in 0..4 {
            let mut template = start();
            let (_, _, bodies) = complete(&mut template);
            let len = bodies[command].len();
            for at in 0..len {
                if command == 0 && (8..80).contains(&at) {
                    continue;
                }
                let flip = |body: &mut Vec<u8>| body[at] ^= 1 << (at % 8);
                assert!(
                    !handshake_with(command, flip),
                    "command {command}: a flip at byte {at} of {len} went unnoticed"
                );
            }
        }
    }

    /// Runs a fresh handshake, passing command number `tamper` (0 HELLO, 1 WELCOME,
    /// 2 INITIATE, 3 READY) through `f`; true if the handshake still completed.
    fn handshake_with(tamper: usize, f: impl Fn(&mut Vec<u8>)) -> bool {
        let mut run = start();
        let mut hello = run.client.hello().unwrap();
        if tamper == 0 {
            f(&mut hello);
        }
        let Ok(ServerStep::Send(mut welcome)) = run.server.on_command(&hello) else {
            return false;
        };
        if tamper == 1 {
            f(&mut welcome);
        }
        let Ok(ClientStep::Send(mut initiate)) = run.client.on_command(&welcome) else {
            return false;
        };
        if tamper == 2 {
            f(&mut initiate);
        }
        let Ok(ServerStep::Authenticate(_)) = run.server.on_command(&initiate) else {
            return false;
        };
        let (mut ready, _) = run.server.accept().unwrap();
        if tamper == 3 {
            f(&mut ready);
        }
        matches!(
            run.client.on_command(&ready),
            Ok(ClientStep::Established(_))
        )
    }

    #[test]
    fn a_cookie_from_another_connection_does_not_open() {
        // Two connections from the same client to the same server; INITIATE of one is sent
        // on the other.
        let mut a = start();
        let mut b = Run {
            client: ClientHandshake::new(*a.server_keys.public(), a.client_keys.clone(), &[])
                .unwrap(),
            server: ServerHandshake::new(a.server_keys.clone(), &[]).unwrap(),
            server_keys: a.server_keys.clone(),
            client_keys: a.client_keys.clone(),
        };
        let hello_a = a.client.hello().unwrap();
        let hello_b = b.client.hello().unwrap();
        let welcome_a = sent(a.server.on_command(&hello_a));
        let _welcome_b = sent(b.server.on_command(&hello_b));
        let initiate_a = sent_by_client(a.client.on_command(&welcome_a));
        expect_proto(b.server.on_command(&initiate_a), "cookie does not open");
        // And a's own server still takes it.
        authenticated(a.server.on_command(&initiate_a));
    }

    #[test]
    fn an_initiate_is_good_once() {
        let mut run = start();
        let hello = run.client.hello().unwrap();
        let welcome = sent(run.server.on_command(&hello));
        let initiate = sent_by_client(run.client.on_command(&welcome));
        authenticated(run.server.on_command(&initiate));
        expect_proto(run.server.on_command(&initiate), "unexpected \"INITIATE\"");
        // A failed INITIATE burns the cookie key too: the genuine one is refused after it.
        let mut run = start();
        let hello = run.client.hello().unwrap();
        let welcome = sent(run.server.on_command(&hello));
        let initiate = sent_by_client(run.client.on_command(&welcome));
        let mut bad = initiate.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        expect_proto(run.server.on_command(&bad), "INITIATE box does not open");
        expect_proto(run.server.on_command(&initiate), "already over");
        assert!(run.server.cookie_key.is_none() && run.server.short.is_none());
    }

    #[test]
    fn initiates_of_the_wrong_size_are_refused() {
        let mut run = start();
        let hello = run.client.hello().unwrap();
        let welcome = sent(run.server.on_command(&hello));
        let initiate = sent_by_client(run.client.on_command(&welcome));
        for len in [9usize, 100, 256] {
            let mut s = ServerHandshake::new(run.server_keys.clone(), &[]).unwrap();
            sent(s.on_command(&hello));
            expect_proto(s.on_command(&initiate[..len]), "INITIATE of");
        }
        let mut s = ServerHandshake::new(run.server_keys.clone(), &[]).unwrap();
        sent(s.on_command(&hello));
        let mut huge = initiate.clone();
        huge.resize(MAX_HANDSHAKE_COMMAND + 1, 0);
        expect_proto(s.on_command(&huge), "INITIATE of 65537 bytes");
    }

    /// What a client knows after WELCOME, to forge INITIATEs with.
    struct Forge {
        server: ServerHandshake,
        server_long: PublicKey,
        client_short: KeyPair,
        server_short: PublicKey,
        cookie: Vec<u8>,
    }

    fn forge() -> Forge {
        let server_keys = KeyPair::generate();
        let mut server = ServerHandshake::new(server_keys.clone(), &[]).unwrap();
        let client_short = KeyPair::generate();
        let hello_key = BoxKey::precompute(server_keys.public(), client_short.secret()).unwrap();
        let mut hello = Vec::new();
        hello.extend_from_slice(b"\x05HELLO\x01\x00");
        hello.resize(80, 0);
        hello.extend_from_slice(client_short.public().as_bytes());
        hello.extend_from_slice(&1u64.to_be_bytes());
        hello.extend_from_slice(&hello_key.seal(&short_nonce(HELLO_PREFIX, 1), &[0u8; 64]));
        let welcome = sent(server.on_command(&hello));
        let plain = hello_key
            .open(
                &long_nonce(WELCOME_PREFIX, &array(&welcome[8..24])),
                &welcome[24..],
            )
            .unwrap();
        Forge {
            server,
            server_long: *server_keys.public(),
            client_short,
            server_short: PublicKey::from_bytes(array(&plain[..32])),
            cookie: plain[32..].to_vec(),
        }
    }

    impl Forge {
        /// An INITIATE from `client_long` (its secret), vouching for `vouch_short` and
        /// `vouch_server`, with raw `metadata`, nonce `n`.
        fn initiate(
            &self,
            client_long: &PublicKey,
            client_secret: &SecretKey,
            vouch_short: &PublicKey,
            vouch_server: &PublicKey,
            metadata: &[u8],
        ) -> Vec<u8> {
            let vouch_key = BoxKey::precompute(&self.server_short, client_secret).unwrap();
            let vouch_nonce = [3u8; 16];
            let vouched = [vouch_short.as_bytes().as_slice(), vouch_server.as_bytes()].concat();
            let vouch = vouch_key.seal(&long_nonce(VOUCH_PREFIX, &vouch_nonce), &vouched);
            let plain = [
                client_long.as_bytes().as_slice(),
                &vouch_nonce,
                &vouch,
                metadata,
            ]
            .concat();
            let session_key =
                BoxKey::precompute(&self.server_short, self.client_short.secret()).unwrap();
            let boxed = session_key.seal(&short_nonce(INITIATE_PREFIX, 2), &plain);
            [INITIATE, &self.cookie, &2u64.to_be_bytes(), &boxed].concat()
        }
    }

    #[test]
    fn a_forged_initiate_is_what_the_real_client_sends() {
        // The forging helper itself is right: an honest forged INITIATE is accepted.
        let mut f = forge();
        let c = KeyPair::generate();
        let md = encode_metadata(&meta("PUSH")).unwrap();
        let body = f.initiate(
            c.public(),
            c.secret(),
            f.client_short.public(),
            &f.server_long,
            &md,
        );
        let info = authenticated(f.server.on_command(&body));
        assert_eq!(info.public_key, *c.public());
        assert_eq!(info.properties, meta("PUSH"));
    }

    #[test]
    fn a_vouch_for_another_short_term_key_or_server_is_refused() {
        let c = KeyPair::generate();
        let mut f = forge();
        let other = KeyPair::generate();
        let body = f.initiate(c.public(), c.secret(), other.public(), &f.server_long, &[]);
        expect_proto(f.server.on_command(&body), "another short-term key");
        // libzmq would accept this one: the vouch names another server.
        let mut f = forge();
        let body = f.initiate(
            c.public(),
            c.secret(),
            f.client_short.public(),
            other.public(),
            &[],
        );
        expect_proto(f.server.on_command(&body), "another server");
        // A vouch boxed by another long-term key than the one claimed.
        let mut f = forge();
        let body = f.initiate(
            other.public(),
            c.secret(),
            f.client_short.public(),
            &f.server_long,
            &[],
        );
        expect_proto(f.server.on_command(&body), "vouch does not open");
    }

    #[test]
    fn a_low_order_client_long_term_key_is_refused() {
        for point in crate::curve::crypto::LOW_ORDER_POINTS {
            let mut f = forge();
            let c = KeyPair::generate();
            let body = f.initiate(
                &PublicKey::from_bytes(point),
                c.secret(),
                f.client_short.public(),
                &f.server_long,
                &[],
            );
            expect_proto(
                f.server.on_command(&body),
                "long-term key is a low-order point",
            );
        }
    }

    #[test]
    fn malformed_or_oversized_metadata_is_refused() {
        let c = KeyPair::generate();
        for (md, needle) in [
            (b"\x0bSocket-Type\x00\x00\x00\x05PUSH".to_vec(), "overruns"),
            (b"\x05".to_vec(), "overruns"),
            (b"\x01a\xff\xff\xff\xff".to_vec(), "overruns"),
            (b"\x00\x00\x00\x00\x00".repeat(65), "more than 64"),
        ] {
            let mut f = forge();
            let body = f.initiate(
                c.public(),
                c.secret(),
                f.client_short.public(),
                &f.server_long,
                &md,
            );
            expect_proto(f.server.on_command(&body), needle);
        }
        // And a READY with bad metadata, made with the server's session key.
        let mut run = start();
        let hello = run.client.hello().unwrap();
        let welcome = sent(run.server.on_command(&hello));
        let initiate = sent_by_client(run.client.on_command(&welcome));
        authenticated(run.server.on_command(&initiate));
        let key = run.server.session_key.as_ref().unwrap();
        let boxed = key.seal(&short_nonce(READY_PREFIX, 1), b"\x03abc\x00\x00");
        let ready = [READY, &1u64.to_be_bytes(), &boxed].concat();
        expect_proto(run.client.on_command(&ready), "overruns");
    }

    #[test]
    fn readys_of_the_wrong_size_are_refused() {
        for len in [6usize, 14, 29] {
            let mut run = start();
            let hello = run.client.hello().unwrap();
            let welcome = sent(run.server.on_command(&hello));
            let initiate = sent_by_client(run.client.on_command(&welcome));
            authenticated(run.server.on_command(&initiate));
            let (ready, _) = run.server.accept().unwrap();
            expect_proto(run.client.on_command(&ready[..len]), "READY of");
        }
        let mut run = start();
        let hello = run.client.hello().unwrap();
        let welcome = sent(run.server.on_command(&hello));
        sent_by_client(run.client.on_command(&welcome));
        let mut huge = READY.to_vec();
        huge.resize(MAX_HANDSHAKE_COMMAND + 1, 0);
        expect_proto(run.client.on_command(&huge), "READY of 65537");
    }

    #[test]
    fn welcome_of_the_wrong_size_is_refused() {
        let mut run = start();
        let hello = run.client.hello().unwrap();
        let welcome = sent(run.server.on_command(&hello));
        let mut long = welcome.clone();
        long.push(0);
        expect_proto(run.client.on_command(&long), "WELCOME of 169");
        let mut run = start();
        run.client.hello().unwrap();
        expect_proto(run.client.on_command(&welcome[..167]), "WELCOME of 167");
    }

    #[test]
    fn a_welcome_with_a_low_order_server_short_term_key_is_refused() {
        // Forge a WELCOME as the server would, but with a low-order S'.
        let server_keys = KeyPair::generate();
        for point in crate::curve::crypto::LOW_ORDER_POINTS {
            let mut c =
                ClientHandshake::new(*server_keys.public(), KeyPair::generate(), &[]).unwrap();
            let hello = c.hello().unwrap();
            let hello_key = BoxKey::precompute(
                &PublicKey::from_bytes(array(&hello[80..112])),
                server_keys.secret(),
            )
            .unwrap();
            let plain = [&point[..], &[0u8; COOKIE_LEN]].concat();
            let boxed = hello_key.seal(&long_nonce(WELCOME_PREFIX, &[1; 16]), &plain);
            let welcome = [WELCOME, &[1u8; 16], &boxed].concat();
            expect_proto(c.on_command(&welcome), "low-order");
        }
        let _ = NONCE_LEN;
    }
}
