//! `NativeSocket`: one PUSH or PULL socket owned by Rust, as the JS layer (`lib/socket.ts`,
//! `lib/push.ts`, `lib/pull.ts`) drives it. Internal: users see `Push` and `Pull`.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use zeropipe_engine as engine;

use crate::batch::{
    write_receive_batch, SendStage, LARGE_FRAME, OWN_RECEIVE_MIN, RECEIVE_BATCH_BYTES,
};
use crate::curve::{AuthQueue, JsAuthenticator, NativeAuthRequest, NativeCurve, AUTH};
use crate::env::{register, Registered};
use crate::errors::{malformed, to_js, OrJs};
use crate::memory::{own_buffer, typed_array_over, WriteOnly};
use crate::runtime::runtime;
use zeropipe_engine::buffer_pool::PooledBuf;

/// `room()` is a JS number; 2^30 is more than any batch JS will stage.
const ROOM_MAX: usize = 1 << 30;

type WakerFn = ThreadsafeFunction<u32, (), u32, Status, false>;

/// Whether the waker keeps Node's event loop alive. napi-rs only offers this on `&mut`, but
/// the waker is shared with the engine's threads, so the N-API calls are made directly
/// (both are documented as callable from the JS thread at any time).
fn set_tsfn_ref(
    env: &Env,
    tsfn: &WakerFn,
    referenced: bool,
) -> std::result::Result<(), engine::Error> {
    // SAFETY: both calls take the env of the current (JS) thread and a live tsfn.
    let status = unsafe {
        if referenced {
            napi::sys::napi_ref_threadsafe_function(env.raw(), tsfn.raw())
        } else {
            napi::sys::napi_unref_threadsafe_function(env.raw(), tsfn.raw())
        }
    };
    if status == napi::sys::Status::napi_ok {
        Ok(())
    } else {
        Err(engine::Error::new(
            engine::Code::Io,
            "cannot change the waker's reference",
        ))
    }
}

/// The one conversion of JS frames (the JS layer has already made every `MessageLike` a
/// string or a `Uint8Array` view): always a copy, so no pointer into JS memory outlives
/// the call (see `memory.rs`).
fn frame_from_js(frame: &Either<String, Uint8Array>) -> bytes::Bytes {
    let bytes = frame_bytes(frame);
    if bytes.len() >= LARGE_FRAME as usize {
        // Into a buffer the pool takes back once the frame is written, so the next large
        // frame is copied into memory that is already mapped (see `buffer_pool.rs`).
        let mut own = PooledBuf::with_capacity(bytes.len());
        own.extend_from_slice(bytes);
        return bytes::Bytes::from_owner(own);
    }
    bytes::Bytes::copy_from_slice(bytes)
}

/// A frame's bytes where JS holds them, for the length of the call that received them.
fn frame_bytes(frame: &Either<String, Uint8Array>) -> &[u8] {
    match frame {
        Either::A(s) => s.as_bytes(),
        Either::B(b) => b,
    }
}

/// A message of frames from JS, each copied (see [`frame_from_js`]).
fn message_from_js(frames: &[Either<String, Uint8Array>]) -> engine::Message {
    engine::Message::from(frames.iter().map(frame_from_js).collect::<Vec<_>>())
}

/// A monitor event, as zeromq.js reports it.
#[napi(object)]
pub struct NativeEvent {
    /// The zeromq.js event type (`bind`, `accept`, `connect:retry`, …).
    pub r#type: String,
    /// The endpoint concerned.
    pub address: String,
    /// For `connect:retry`: the delay before the next attempt, ms.
    pub interval: Option<u32>,
    /// For error events: the errno name (`EADDRINUSE`, `ECONNREFUSED`, …).
    pub error_code: Option<String>,
    /// For error events: the message.
    pub error_message: Option<String>,
    /// For `handshake` and the `disconnect` that ends it: the peer's id (see `peers()`).
    pub peer: Option<i64>,
    /// For `handshake` with a CURVE peer: its long-term public key, Z85.
    pub public_key: Option<String>,
    /// For `handshake` on a CURVE server: the user id the authenticator gave ("" without).
    pub user_id: Option<String>,
    /// For `handshake:error:auth`: the ZAP status (300, 400 or 500).
    pub status: Option<u32>,
}

/// A peer the socket reaches now: its handshake completed and its connection lives.
#[napi(object)]
pub struct NativePeer {
    /// Unique in the process and never reused: what `sendTo` takes.
    pub id: i64,
    /// The peer's endpoint, as events name it.
    pub address: String,
}

/// Peer ids fit a JS number exactly: they count pipes from 1 and stay far below 2^53.
fn peer_id(id: u64) -> i64 {
    id.min(i64::MAX as u64) as i64
}

/// One PUSH or PULL socket owned by Rust. Internal: use `Push`/`Pull` from the package.
#[napi]
pub struct NativeSocket {
    socket: Arc<engine::Socket>,
    /// A PUSH's send stage (see `batch.rs`).
    stage: Option<Arc<SendStage>>,
    /// Received messages taken from the engine that did not fit the last slab.
    pending: Vec<engine::Message>,
    /// The large frames of the last receive batch, for `takeOwnBuffers`.
    own: Vec<bytes::Bytes>,
    /// Large messages of sends that wait for room, copied in when `send()` was called (the
    /// caller may reuse its buffers at once) into memory the buffer pool takes back, not
    /// into JS buffers: see `hold`.
    held: std::collections::HashMap<u32, engine::Message>,
    next_held: u32,
    /// Released at close: the callback holds the JS socket, so keeping it would pin every
    /// closed socket in memory.
    waker: Option<Arc<WakerFn>>,
    /// CURVE clients waiting for JS's `authenticate` callback (see `curve.rs`).
    auth: Arc<AuthQueue>,
}

#[napi]
impl NativeSocket {
    /// Creates a socket of `kind` ("push" or "pull") with `options`' values in the order
    /// of `optionSpecs()`. `waker(bits)` is called on the JS thread when a readiness bit
    /// armed with `arm()` becomes true.
    #[napi(
        constructor,
        ts_args_type = "kind: 'push' | 'pull', options: Array<number>, waker: (bits: number) => void"
    )]
    pub fn new(env: Env, kind: String, options: Vec<i64>, waker: WakerFn) -> Result<Self> {
        let kind = match kind.as_str() {
            "push" => engine::SocketType::Push,
            "pull" => engine::SocketType::Pull,
            other => {
                return Err(to_js(
                    &env,
                    engine::Error::new(engine::Code::Inval, format!("unknown socket type {other}")),
                ))
            }
        };
        let options = engine::SocketOptions::from_values(&options).or_js(&env)?;
        let rt = runtime().or_js(&env)?;
        let socket = Arc::new(engine::Socket::new(kind, options, rt.handle().clone()).or_js(&env)?);
        let waker = Arc::new(waker);
        set_tsfn_ref(&env, &waker, false).or_js(&env)?;
        let tsfn = waker.clone();
        let wake: crate::curve::Wake = Arc::new(move |bits| {
            #[cfg(feature = "stage-trace")]
            engine::trace::stamp(&engine::trace::WAKE);
            tsfn.call(bits, ThreadsafeFunctionCallMode::NonBlocking);
        });
        socket.set_waker(Some(wake.clone()));
        let auth = Arc::new(AuthQueue::default());
        auth.set_wake(Some(wake));
        let stage = (kind == engine::SocketType::Push).then(|| Arc::new(SendStage::new()));
        register(
            &env,
            Registered {
                socket: Arc::downgrade(&socket),
                stage: stage.as_ref().map(Arc::downgrade),
            },
        )?;
        Ok(NativeSocket {
            socket,
            stage,
            pending: Vec::new(),
            own: Vec::new(),
            held: std::collections::HashMap::new(),
            next_held: 0,
            waker: Some(waker),
            auth,
        })
    }

    /// Replaces the socket options (values in `optionSpecs()` order; applied to connections
    /// made from now on).
    #[napi]
    pub fn set_options(&self, env: Env, options: Vec<i64>) -> Result<()> {
        let options = engine::SocketOptions::from_values(&options).or_js(&env)?;
        self.socket.set_options(options).or_js(&env)
    }

    /// Binds; resolves to the resolved endpoint.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn bind<'env>(&self, env: &'env Env, address: String) -> Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<String, _>()?;
        let socket = self.socket.clone();
        runtime().or_js(env)?.spawn(async move {
            let result = socket.bind(&address).await;
            deferred.resolve(move |env| result.or_js(&env));
        });
        Ok(promise)
    }

    /// Stops listening on an address.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn unbind<'env>(&self, env: &'env Env, address: String) -> Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<(), _>()?;
        let socket = self.socket.clone();
        runtime().or_js(env)?.spawn(async move {
            let result = socket.unbind(&address).await;
            deferred.resolve(move |env| result.or_js(&env));
        });
        Ok(promise)
    }

    /// Connects (in the background, with reconnects).
    #[napi]
    pub fn connect(&self, env: Env, address: String) -> Result<()> {
        let _guard = runtime().or_js(&env)?.enter();
        self.socket.connect(&address).or_js(&env)
    }

    /// Stops connecting to an address.
    #[napi]
    pub fn disconnect(&self, env: Env, address: String) -> Result<()> {
        self.socket.disconnect(&address).or_js(&env)
    }

    /// How many messages the socket can take now (see `flush`); capped to fit a JS number.
    #[napi]
    pub fn room(&self) -> u32 {
        self.socket.room().min(ROOM_MAX) as u32
    }

    /// The send stage's description words (see `batch.rs`); fixed for the socket's life.
    #[napi(ts_return_type = "Int32Array")]
    pub fn stage_meta<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let stage = self
            .stage
            .as_ref()
            .ok_or_else(|| to_js(env, malformed("send stage request on a PULL")))?;
        typed_array_over(env, &stage.meta, napi::sys::TypedarrayType::int32_array).or_js(env)
    }

    /// The send stage's current region (see `batch.rs`): fetched again whenever the
    /// generation word changes.
    #[napi(ts_return_type = "Uint8Array")]
    pub fn stage_region<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let stage = self
            .stage
            .as_ref()
            .ok_or_else(|| to_js(env, malformed("send stage request on a PULL")))?;
        typed_array_over(
            env,
            &stage.current(),
            napi::sys::TypedarrayType::uint8_array,
        )
        .or_js(env)
    }

    /// Queues the messages JS committed to the stage since the last flush, leaves the
    /// region at least `room` free bytes, and returns the room the socket has left.
    #[napi]
    pub fn flush(&self, env: Env, room: u32) -> Result<u32> {
        if let Some(stage) = &self.stage {
            stage.drain(&self.socket, room as usize).or_js(&env)?;
        }
        Ok(self.room())
    }

    /// Sends one message JS accepted that does not go through the stage (more frames than
    /// it can describe, or 64 KiB or more): written to its peer's socket from JS's memory
    /// during this call when nothing waits ahead of it, else copied now and queued (see the
    /// engine's `outlet.rs`). Either way JS may reuse or detach its buffers as soon as this
    /// returns. Returns the room left.
    #[napi]
    pub fn send_now(&self, env: Env, frames: Vec<Either<String, Uint8Array>>) -> Result<u32> {
        // Borrowed for this call only: the engine reads them (one `writev`, or the copy)
        // before it returns and keeps no pointer. JS cannot detach or free them meanwhile:
        // only this thread could, and it is in this call.
        let slices: Vec<&[u8]> = frames.iter().map(frame_bytes).collect();
        if self.socket.try_write_now(&slices) {
            return Ok(self.room());
        }
        self.send_accepted(&env, message_from_js(&frames))
    }

    fn send_accepted(&self, env: &Env, msg: engine::Message) -> Result<u32> {
        self.socket.send_accepted(msg).or_js(env)?;
        Ok(self.room())
    }

    /// Copies a large message whose send must wait, and returns the id to send it by
    /// (`sendHeld`) or drop it by (`releaseHeld`).
    #[napi]
    pub fn hold(&mut self, frames: Vec<Either<String, Uint8Array>>) -> u32 {
        let msg = message_from_js(&frames);
        let id = self.next_held;
        self.next_held = self.next_held.wrapping_add(1);
        self.held.insert(id, msg);
        id
    }

    /// Sends a held message as `sendNow` does, and returns the room left. `EINVAL` for an
    /// id that is not held (sent or released already).
    #[napi]
    pub fn send_held(&mut self, env: Env, id: u32) -> Result<u32> {
        let Some(msg) = self.held.remove(&id) else {
            return Err(engine::Error::new(
                engine::Code::Inval,
                "no such held message",
            ))
            .or_js(&env);
        };
        self.send_accepted(&env, msg)
    }

    /// Drops a held message (its send timed out, was cancelled or the socket closed).
    #[napi]
    pub fn release_held(&mut self, id: u32) {
        self.held.remove(&id);
    }

    /// Writes up to `max` received messages into `slab` at `offset` (see `batch.rs`);
    /// returns the bytes used, 0 when nothing has arrived, or minus the bytes the next
    /// message needs when it does not fit what is left of the slab.
    #[napi(ts_args_type = "max: number, slab: Uint8Array, offset: number")]
    pub fn try_receive(&mut self, env: Env, max: u32, slab: Unknown, offset: u32) -> Result<i64> {
        #[cfg(feature = "stage-trace")]
        let entered = engine::trace::now_ns();
        if self.pending.is_empty() {
            self.socket
                .try_recv_batch_bytes(
                    &mut self.pending,
                    max.max(1) as usize,
                    RECEIVE_BATCH_BYTES as usize,
                    OWN_RECEIVE_MIN,
                )
                .or_js(&env)?;
            #[cfg(feature = "stage-trace")]
            if !self.pending.is_empty() {
                crate::trace::batch(self.pending.len(), entered);
            }
        }
        let slab = WriteOnly::of(&env, &slab).or_js(&env)?;
        write_receive_batch(&mut self.pending, &mut self.own, &slab, offset as usize).or_js(&env)
    }

    /// The frames of the last receive batch marked `OWN_BUFFER`, in order.
    #[napi]
    pub fn take_own_buffers<'env>(&mut self, env: &'env Env) -> Result<Vec<BufferSlice<'env>>> {
        self.own.drain(..).map(|f| own_buffer(env, f)).collect()
    }

    /// Asks for one waker call when any of `bits` (`READABLE`, `WRITABLE`, `EVENTS`,
    /// `PEERS`, `AUTH`) becomes true; returns the bits already true (with `CLOSED` once
    /// closed).
    #[napi]
    pub fn arm(&self, bits: u32) -> u32 {
        // AUTH is this binding's own bit: the engine never sees it.
        let mut ready = self.socket.arm(bits & !AUTH) & !AUTH;
        if bits & AUTH != 0 && !self.socket.is_closed() {
            ready |= self.auth.arm();
        }
        // Messages this binding holds are readable too.
        if bits & engine::socket::READABLE != 0 && !self.pending.is_empty() {
            return ready | engine::socket::READABLE;
        }
        ready
    }

    /// Whether the waker keeps the process alive (while JS waits on this socket).
    #[napi]
    pub fn set_ref(&self, env: Env, referenced: bool) -> Result<()> {
        match &self.waker {
            Some(w) => set_tsfn_ref(&env, w, referenced).or_js(&env),
            None => Ok(()),
        }
    }

    /// A message can be received now.
    #[napi(getter)]
    pub fn readable(&self) -> bool {
        !self.pending.is_empty() || self.socket.readable()
    }

    /// The socket is closed.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.socket.is_closed()
    }

    /// ZMQ_LAST_ENDPOINT.
    #[napi(getter)]
    pub fn last_endpoint(&self) -> Option<String> {
        self.socket.last_endpoint()
    }

    /// Starts queueing monitor events.
    #[napi]
    pub fn enable_events(&self) {
        self.socket.enable_events();
    }

    /// Takes up to `max` queued monitor events.
    #[napi]
    pub fn take_events(&self, max: u32) -> Vec<NativeEvent> {
        self.socket
            .take_events(max as usize)
            .into_iter()
            .map(|e| NativeEvent {
                r#type: e.kind.name().to_string(),
                address: e.address,
                interval: e.interval.map(|i| i.min(u32::MAX as u64) as u32),
                error_code: e.error.as_ref().map(|x| x.code.as_str().to_string()),
                error_message: e.error.map(|x| x.message),
                peer: e.peer.map(peer_id),
                public_key: e.public_key.map(|k| engine::curve::z85::encode_key(&k)),
                user_id: e.user_id,
                status: e.status.map(u32::from),
            })
            .collect()
    }

    /// Messages a close would still wait for (queued or in flight to peers; 0 for PULL).
    #[napi]
    pub fn unsent(&self) -> u32 {
        self.socket.unsent().min(u32::MAX as usize) as u32
    }

    /// The peers reachable now (completed handshakes, live connections).
    #[napi]
    pub fn peers(&self) -> Vec<NativePeer> {
        self.socket
            .peers()
            .into_iter()
            .map(|(id, address)| NativePeer {
                id: peer_id(id),
                address,
            })
            .collect()
    }

    /// Queues a message for one peer, copying its frames now: `EHOSTUNREACH` if that peer
    /// is gone, `EAGAIN` at its high-water mark; nothing is queued on either error.
    #[napi]
    pub fn send_to(
        &self,
        env: Env,
        peer: i64,
        frames: Vec<Either<String, Uint8Array>>,
    ) -> Result<()> {
        let Ok(peer) = u64::try_from(peer) else {
            return Err(engine::Error::new(
                engine::Code::HostUnreach,
                format!("no peer {peer}"),
            ))
            .or_js(&env);
        };
        self.socket
            .try_send_to(peer, message_from_js(&frames))
            .or_js(&env)
    }

    /// Closes; resolves once queued messages are flushed (PUSH, within linger). What JS
    /// committed to the stage is queued first.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&mut self, env: &'env Env) -> Result<Object<'env>> {
        if let Some(stage) = &self.stage {
            // A stage JS left malformed has nothing valid left to deliver.
            let _ = stage.drain(&self.socket, 0);
        }
        self.release();
        let (deferred, promise) = env.create_deferred::<(), _>()?;
        let socket = self.socket.clone();
        runtime().or_js(env)?.spawn(async move {
            socket.close().await;
            deferred.resolve(|_| Ok(()));
        });
        Ok(promise)
    }

    /// Sets CURVE (`curve`) or back to NULL (`null`) for connections made from now on.
    /// `EINVAL` for a key that is not 32 bytes, a client without a server key, a public
    /// key that is not the secret key's; `EBADF` once closed. Default: NULL.
    #[napi]
    pub fn set_curve(&self, env: Env, curve: Option<NativeCurve>) -> Result<()> {
        let curve = curve.map(|c| c.to_engine()).transpose().or_js(&env)?;
        self.socket.set_curve(curve).or_js(&env)
    }

    /// With `timeoutMs`, a CURVE server asks JS about each client (see `AUTH` and
    /// `takeAuthRequests`) and gives up after that many ms (verdict 300); with `null`, it
    /// accepts every client that passes the allowlist (the default, as libzmq without ZAP).
    #[napi]
    pub fn set_authenticator(&self, timeout_ms: Option<u32>) {
        match timeout_ms {
            Some(ms) => self.socket.set_authenticator(Some((
                Arc::new(JsAuthenticator(Arc::downgrade(&self.auth))),
                std::time::Duration::from_millis(u64::from(ms)),
            ))),
            None => {
                self.socket.set_authenticator(None);
                self.auth.clear();
            }
        }
    }

    /// The clients waiting for a verdict that JS has not taken yet.
    #[napi]
    pub fn take_auth_requests(&self) -> Vec<NativeAuthRequest> {
        self.auth.take()
    }

    /// Answers request `id` with a ZAP status (200 welcome, 300 temporary failure, 400
    /// denied, 500 error; others count as 500) and, for 200, a user id. An id the engine
    /// stopped waiting for (timeout, peer gone) is ignored.
    #[napi]
    pub fn auth_reply(&self, id: u32, status: u32, user_id: String) {
        let status = u16::try_from(status).unwrap_or(500);
        self.auth
            .reply(id, engine::curve::AuthReply { status, user_id });
    }

    fn release(&mut self) {
        self.socket.set_waker(None);
        self.auth.set_wake(None);
        self.auth.clear();
        self.waker = None;
        self.pending.clear();
        self.own.clear();
    }
}
