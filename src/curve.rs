//! CURVE for JS: key helpers (`curveKeyPair`, `z85Encode`, `z85Decode`), the settings
//! `NativeSocket.setCurve` takes, and the authenticator that asks JS about each client.
//!
//! The authenticator needs no threadsafe function of its own: a request is queued here and
//! the socket's waker is called with [`AUTH`], a readiness bit this binding adds next to
//! the engine's. JS then takes the requests (`takeAuthRequests`), runs the user's callback
//! and answers each (`authReply`). The engine bounds the wait (`authTimeout`): a request it
//! gave up on is dropped here too, and a late answer finds nothing to answer.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tokio::sync::oneshot;
use zeropipe_engine as engine;
use zeropipe_engine::curve::{z85, AuthReply, AuthRequest, Authenticator};

use crate::errors::OrJs;

/// Readiness bit (binding only): CURVE clients wait for the `authenticate` callback.
#[napi]
pub const AUTH: u32 = 32;

/// A fresh CURVE key pair, as Z85 text.
#[napi(object)]
pub struct NativeKeyPair {
    /// The public key (40 Z85 characters).
    pub public_key: String,
    /// The secret key (40 Z85 characters).
    pub secret_key: String,
}

/// A new long-term CURVE key pair from the operating system's random number generator
/// (libzmq's `zmq_curve_keypair`).
#[napi]
pub fn curve_key_pair() -> NativeKeyPair {
    let keys = engine::curve::key_pair();
    NativeKeyPair {
        public_key: z85::encode_key(&keys.public),
        secret_key: z85::encode_key(&keys.secret),
    }
}

/// The public key (32 bytes) of a 32-byte secret key (libzmq's `zmq_curve_public`).
/// `EINVAL` for any other length.
#[napi]
pub fn curve_public_key(env: Env, secret_key: Uint8Array) -> Result<Buffer> {
    let secret = key32(&secret_key, "secret key").or_js(&env)?;
    Ok(engine::curve::public_from_secret(&secret).to_vec().into())
}

/// Z85 text (rfc 32) of `data`, whose length must be a multiple of 4 (`EINVAL` otherwise).
#[napi]
pub fn z85_encode(env: Env, data: Uint8Array) -> Result<String> {
    z85::encode(&data).or_js(&env)
}

/// The bytes of Z85 `text`, whose length must be a multiple of 5 (`EINVAL` otherwise, and
/// for a character outside the alphabet or a group over 2^32 - 1).
#[napi]
pub fn z85_decode(env: Env, text: String) -> Result<Buffer> {
    Ok(z85::decode(&text).or_js(&env)?.into())
}

/// A socket's CURVE settings as JS hands them over: raw 32-byte keys (the JS layer has
/// decoded Z85 already; the lengths are checked again here).
#[napi(object)]
pub struct NativeCurve {
    /// Act as the CURVE server.
    pub server: bool,
    /// Our long-term secret key.
    pub secret_key: Uint8Array,
    /// Our long-term public key; absent: derived from the secret key.
    pub public_key: Option<Uint8Array>,
    /// The server's public key (clients).
    pub server_key: Option<Uint8Array>,
    /// The ZAP domain ("" by default).
    pub zap_domain: String,
    /// A server's allowlist of client public keys; absent: any client.
    pub allow: Option<Vec<Uint8Array>>,
}

fn key32(bytes: &[u8], what: &str) -> std::result::Result<[u8; 32], engine::Error> {
    <[u8; 32]>::try_from(bytes).map_err(|_| {
        engine::Error::new(
            engine::Code::Inval,
            format!("a CURVE {what} is 32 bytes, got {}", bytes.len()),
        )
    })
}

impl NativeCurve {
    pub(crate) fn to_engine(
        &self,
    ) -> std::result::Result<engine::curve::CurveOptions, engine::Error> {
        let allow = match &self.allow {
            Some(keys) => Some(
                keys.iter()
                    .map(|k| key32(k, "allowed client key"))
                    .collect::<std::result::Result<_, _>>()?,
            ),
            None => None,
        };
        Ok(engine::curve::CurveOptions {
            server: self.server,
            secret_key: key32(&self.secret_key, "secret key")?,
            public_key: match &self.public_key {
                Some(k) => key32(k, "public key")?,
                None => [0u8; 32],
            },
            server_key: self
                .server_key
                .as_ref()
                .map(|k| key32(k, "server key"))
                .transpose()?,
            zap_domain: self.zap_domain.clone(),
            allow,
        })
    }
}

/// A client waiting for JS's verdict, as `takeAuthRequests` hands it over.
#[napi(object)]
pub struct NativeAuthRequest {
    /// What `authReply` takes.
    pub id: u32,
    /// The client's long-term public key, Z85.
    pub public_key: String,
    /// The client's address: the IP for tcp, the endpoint for ipc.
    pub address: String,
    /// The socket's `zapDomain`.
    pub domain: String,
}

/// Wakes JS (the socket's waker, called with [`AUTH`]).
pub(crate) type Wake = Arc<dyn Fn(u32) + Send + Sync>;

#[derive(Default)]
struct QueueState {
    /// Requests JS has not taken yet.
    new: Vec<(u32, AuthRequest)>,
    /// Requests waiting for an answer (taken or not), by id.
    waiting: HashMap<u32, oneshot::Sender<AuthReply>>,
    next_id: u32,
    /// JS asked to be woken when a request comes.
    armed: bool,
    /// Cleared at close: the waker holds the JS socket.
    wake: Option<Wake>,
}

/// The requests between the engine's handshakes and JS. Shared by the socket and the
/// authenticator the engine holds.
#[derive(Default)]
pub(crate) struct AuthQueue {
    state: Mutex<QueueState>,
}

impl AuthQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding it leaves plain data behind, still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_wake(&self, wake: Option<Wake>) {
        self.lock().wake = wake;
    }

    /// Arms [`AUTH`]; returns it if requests are already queued (then it is not armed).
    pub(crate) fn arm(&self) -> u32 {
        let mut s = self.lock();
        if s.new.is_empty() {
            s.armed = true;
            0
        } else {
            s.armed = false;
            AUTH
        }
    }

    pub(crate) fn take(&self) -> Vec<NativeAuthRequest> {
        self.lock()
            .new
            .drain(..)
            .map(|(id, r)| NativeAuthRequest {
                id,
                public_key: z85::encode_key(&r.public_key),
                address: r.address,
                domain: r.domain,
            })
            .collect()
    }

    pub(crate) fn reply(&self, id: u32, reply: AuthReply) {
        let sender = self.lock().waiting.remove(&id);
        if let Some(s) = sender {
            // The handshake may have ended meanwhile (timeout, peer gone): nothing to tell.
            let _ = s.send(reply);
        }
    }

    /// Drops every request: their handshakes get 300 (closed without an ERROR).
    pub(crate) fn clear(&self) {
        let mut s = self.lock();
        s.new.clear();
        s.waiting.clear();
        s.armed = false;
    }

    fn forget(&self, id: u32) {
        let mut s = self.lock();
        s.waiting.remove(&id);
        s.new.retain(|(i, _)| *i != id);
    }

    fn push(&self, req: AuthRequest) -> (u32, oneshot::Receiver<AuthReply>) {
        let (tx, rx) = oneshot::channel();
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id = s.next_id.wrapping_add(1);
        s.new.push((id, req));
        s.waiting.insert(id, tx);
        let wake = if std::mem::take(&mut s.armed) {
            s.wake.clone()
        } else {
            None
        };
        drop(s);
        if let Some(w) = wake {
            w(AUTH);
        }
        (id, rx)
    }
}

/// The engine's view of the queue. It holds the queue weakly: a socket JS dropped must
/// not be kept by its own authenticator.
pub(crate) struct JsAuthenticator(pub(crate) Weak<AuthQueue>);

/// Removes a request the engine stopped waiting for (its future was dropped at the
/// timeout or with the connection), so unanswered ids do not pile up.
struct Forget(Weak<AuthQueue>, u32);

impl Drop for Forget {
    fn drop(&mut self) {
        if let Some(q) = self.0.upgrade() {
            q.forget(self.1);
        }
    }
}

fn temporary() -> AuthReply {
    AuthReply {
        status: 300,
        user_id: String::new(),
    }
}

impl Authenticator for JsAuthenticator {
    fn authenticate(&self, req: AuthRequest) -> Pin<Box<dyn Future<Output = AuthReply> + Send>> {
        let Some(queue) = self.0.upgrade() else {
            return Box::pin(async { temporary() });
        };
        let (id, rx) = queue.push(req);
        let guard = Forget(Arc::downgrade(&queue), id);
        Box::pin(async move {
            let _guard = guard;
            // A dropped sender is a closed socket or a cleared queue.
            rx.await.unwrap_or_else(|_| temporary())
        })
    }
}
