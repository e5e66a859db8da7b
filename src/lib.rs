//! The N-API binding of zeropipe: a thin layer over `zeropipe-engine`.
//!
//! It converts JS values to engine types in one place ([`frame_from_js`]), engine errors to
//! JS errors in one place ([`js_error`]), and otherwise forwards calls. The public API users
//! see (`Push`, `Pull`, `push()`, `pull()`) is the small JS layer in `index.js` on top of
//! [`NativeSocket`]; this file's generated typings (`binding.d.ts`) are internal.
//!
//! Hot paths are synchronous: `trySend` queues while there is room and `tryReceive` takes
//! a batch of messages. Waiting uses one long-lived threadsafe callback per socket (the
//! waker), armed by JS only when it has to wait, instead of a promise per message.

#![deny(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use tokio::runtime::Runtime;
use zeropipe_engine as engine;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's `mi_option_e` positions (libmimalloc-sys builds mimalloc v3 by default).
const MI_OPTION_ARENA_EAGER_COMMIT: i32 = 4;
const MI_OPTION_PURGE_DELAY: i32 = 15;

/// Two mimalloc defaults cost us, both found with `perf` and RSS readings:
/// - Large received frames are freed when JS collects their Buffers, and mimalloc hands
///   freed memory back to the OS after 10 ms, so the next frames fault in fresh zeroed
///   pages: a quarter of the I/O threads' time at 64 KiB. Keeping it for a second took
///   64 KiB tcp from 12-18 k to 23-30 k msg/s.
/// - Eagerly committed arenas, on machines with transparent huge pages, put whole 2 MiB
///   pages in the RSS of every thread that allocates: 7 MiB more at rest.
///
/// `MIMALLOC_PURGE_DELAY` / `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still win.
#[napi_derive::module_init]
fn tune_allocator() {
    // SAFETY: sets plain integer options before any socket exists; mimalloc reads them when
    // it next decides to commit or purge.
    unsafe {
        libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, 1000);
        libmimalloc_sys::mi_option_set_default(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
}

/// The engine's runtime, shared by every socket of the process (and every worker thread).
/// One I/O thread by default, as libzmq's `ZMQ_IO_THREADS`: with two, one-way latency
/// between two processes at 10 000 msg/s went from p99 0.7-0.8 ms to 3.4-3.7 ms (threads
/// queueing for the CPU: each process had three busy threads on two cores) for no steady
/// gain in throughput. That one thread runs a current-thread runtime (its simpler scheduler
/// measured slightly lower latency than a one-worker multi-thread runtime: p50 88 against
/// 90 µs, p99 0.5-0.8 against 1.3-1.9 ms). `ZEROPIPE_IO_THREADS` (1 to 64) changes the count
/// for the whole process.
static RUNTIME: LazyLock<std::result::Result<Runtime, String>> = LazyLock::new(|| {
    let threads = match std::env::var("ZEROPIPE_IO_THREADS") {
        Err(_) => DEFAULT_IO_THREADS,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => return Err(format!("EINVAL: ZEROPIPE_IO_THREADS must be an integer from 1 to 64, got {v:?}")),
        },
    };
    let fail = |e: std::io::Error| format!("EIO: cannot start the I/O runtime: {e}");
    if threads > 1 {
        return tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("zeropipe-io")
            .enable_all()
            .build()
            .map_err(fail);
    }
    // Driven by its own thread, started once the runtime is in place (see `runtime()`).
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(fail)
});

/// The thread that drives a one-thread runtime; started with the first socket.
static DRIVER: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();

const DEFAULT_IO_THREADS: usize = 1;

fn runtime() -> Result<&'static Runtime> {
    let rt: &'static Runtime = RUNTIME.as_ref().map_err(|e| Error::new(Status::GenericFailure, e.clone()))?;
    if rt.handle().runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
        // Only `Runtime::block_on` drives a current-thread runtime's I/O and timers.
        DRIVER
            .get_or_init(|| {
                std::thread::Builder::new()
                    .name("zeropipe-io".into())
                    .spawn(move || rt.block_on(std::future::pending::<()>()))
                    .map(|_| ())
                    .map_err(|e| format!("EIO: cannot start the I/O thread: {e}"))
            })
            .clone()
            .map_err(|e| Error::new(Status::GenericFailure, e))?;
    }
    Ok(rt)
}

/// The one conversion of engine errors: the JS layer reads the `CODE: ` prefix back into
/// `err.code` (see `nativeError` in index.js).
fn js_error(e: engine::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{}: {}", e.code.as_str(), e.message))
}

/// Frames at least this large cross the boundary without a copy, both ways (pyzmq's
/// default `copy_threshold`; below it a copy is cheaper than the bookkeeping).
const ZERO_COPY_MIN: usize = 64 * 1024;

/// Receive batches stop at about this much payload: every message of a batch is a view of
/// the batch's one buffer, so a message kept by JS keeps that much memory alive (the size of
/// Node's own socket reads).
const RECEIVE_BATCH_BYTES: usize = 64 * 1024;

/// The length word that marks a frame passed as a Buffer of its own in `tryReceive`.
const OWN_BUFFER: u32 = u32::MAX;

/// `room()` is a JS number; 2^30 is more than any batch JS will stage.
const ROOM_MAX: usize = 1 << 30;

/// A new Node Buffer of `len` uninitialised bytes, written in place through `DerefMut` (one
/// allocation, no copy through a Rust buffer).
fn new_buffer<'env>(env: &'env Env, len: usize) -> Result<BufferSlice<'env>> {
    let mut data = std::ptr::null_mut();
    let mut value = std::ptr::null_mut();
    // SAFETY: plain N-API calls on the current env; the Buffer is read back through
    // `napi_get_buffer_info`, which is how napi-rs builds a `BufferSlice` over it.
    unsafe {
        let status = napi::sys::napi_create_buffer(env.raw(), len, &mut data, &mut value);
        if status != napi::sys::Status::napi_ok {
            return Err(Error::new(Status::GenericFailure, "EIO: cannot allocate a receive buffer".to_string()));
        }
        BufferSlice::from_napi_value(env.raw(), value)
    }
}

/// A JS buffer kept alive by the message that carries its bytes.
struct JsBytes(Uint8Array);

impl AsRef<[u8]> for JsBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

// SAFETY: the bytes are only read, and napi-rs makes dropping a `Uint8Array` on another
// thread safe: the reference is released through the owning environment's thread.
unsafe impl Send for JsBytes {}

/// The one conversion of JS frames: the JS layer has already normalised every
/// `MessageLike` to a string or a `Uint8Array` view. Large views are referenced, not
/// copied, as zeromq.js and pyzmq do: such a buffer must not be modified until sent.
///
/// Only the main thread's buffers are referenced: a worker's die with the worker, while an
/// inproc peer on another thread may still be reading them.
fn frame_from_js(frame: Either<String, Uint8Array>, zero_copy: bool) -> bytes::Bytes {
    match frame {
        Either::A(s) => bytes::Bytes::from(s.into_bytes()),
        Either::B(b) if zero_copy && b.len() >= ZERO_COPY_MIN => bytes::Bytes::from_owner(JsBytes(b)),
        Either::B(b) => bytes::Bytes::copy_from_slice(&b),
    }
}

/// The one conversion of received frames. Small frames are copied (cheaper than an external
/// buffer's bookkeeping); large ones become external Buffers over the received bytes, which
/// the frame's `Bytes` keeps alive until JS collects the Buffer.
fn frame_to_js<'env>(env: &'env Env, frame: &bytes::Bytes) -> Result<BufferSlice<'env>> {
    if frame.len() >= ZERO_COPY_MIN {
        let owned = frame.clone();
        let ptr = owned.as_ptr() as *mut u8;
        // SAFETY: `owned` keeps the memory alive until the finalizer drops it; the range is
        // this frame's alone (split off the read buffer), so JS writing to it affects no one.
        let external = unsafe { BufferSlice::from_external(env, ptr, owned.len(), owned, |_, b| drop(b)) };
        // Runtimes that forbid external buffers (sandboxed builds) get a copy instead.
        if let Ok(buf) = external {
            return Ok(buf);
        }
    }
    BufferSlice::copy_from(env, frame)
}

type WakerFn = ThreadsafeFunction<u32, (), u32, Status, false>;

/// Whether the waker keeps Node's event loop alive. napi-rs only offers this on `&mut`, but
/// the waker is shared with the engine's threads, so the N-API calls are made directly
/// (both are documented as callable from the JS thread at any time).
fn set_tsfn_ref(env: &Env, tsfn: &WakerFn, referenced: bool) -> Result<()> {
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
        Err(Error::new(Status::GenericFailure, "EIO: cannot change the waker's reference".to_string()))
    }
}

/// The sockets of each live N-API environment (main thread or worker), by env address.
/// One cleanup hook per environment closes them when it ends: a worker thread that ends
/// must not leave its sockets' connections behind. (A hook per socket could never be
/// removed safely, so each socket ever created would have leaked one.)
static ENV_SOCKETS: LazyLock<Mutex<HashMap<usize, Vec<Weak<engine::Socket>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn env_sockets() -> MutexGuard<'static, HashMap<usize, Vec<Weak<engine::Socket>>>> {
    ENV_SOCKETS.lock().unwrap_or_else(|e| e.into_inner())
}

fn close_with_env(env: &Env, socket: &Arc<engine::Socket>) -> Result<()> {
    let key = env.raw() as usize;
    let weak = Arc::downgrade(socket);
    {
        let mut map = env_sockets();
        if let Some(list) = map.get_mut(&key) {
            // Forget collected sockets now and then, so the list tracks live ones.
            if list.len() >= 64 && list.len().is_power_of_two() {
                list.retain(|w| w.strong_count() > 0);
            }
            list.push(weak);
            return Ok(());
        }
        map.insert(key, vec![weak]);
    }
    let hooked = env.add_env_cleanup_hook(key, |key| {
        let sockets = env_sockets().remove(&key).unwrap_or_default();
        for s in sockets.iter().filter_map(Weak::upgrade) {
            s.set_waker(None);
            s.close_now();
        }
    });
    if let Err(e) = hooked {
        // Without its hook the entry would never be cleaned up; the next socket retries.
        env_sockets().remove(&key);
        return Err(e);
    }
    Ok(())
}

/// Socket options as passed from JS; every field is required here because the JS layer
/// fills in defaults and validates types (so users get `TypeError`/`RangeError`).
#[napi(object)]
pub struct NativeOptions {
    /// ZMQ_SNDHWM.
    pub send_high_water_mark: u32,
    /// ZMQ_RCVHWM.
    pub receive_high_water_mark: u32,
    /// ZMQ_LINGER, ms.
    pub linger: i32,
    /// ZMQ_SNDTIMEO, ms.
    pub send_timeout: i32,
    /// ZMQ_RCVTIMEO, ms.
    pub receive_timeout: i32,
    /// ZMQ_IMMEDIATE.
    pub immediate: bool,
    /// ZMQ_RECONNECT_IVL, ms.
    pub reconnect_interval: i32,
    /// ZMQ_RECONNECT_IVL_MAX, ms.
    pub reconnect_max_interval: i32,
    /// ZMQ_MAXMSGSIZE, bytes (-1 = unlimited).
    pub max_message_size: i64,
    /// ZMQ_HANDSHAKE_IVL, ms.
    pub handshake_interval: i32,
    /// ZMQ_HEARTBEAT_IVL, ms.
    pub heartbeat_interval: i32,
    /// ZMQ_HEARTBEAT_TIMEOUT, ms.
    pub heartbeat_timeout: i32,
    /// ZMQ_HEARTBEAT_TTL, ms.
    pub heartbeat_time_to_live: i32,
    /// ZMQ_CONNECT_TIMEOUT, ms.
    pub connect_timeout: i32,
}

impl From<NativeOptions> for engine::SocketOptions {
    fn from(o: NativeOptions) -> Self {
        engine::SocketOptions {
            send_high_water_mark: o.send_high_water_mark,
            receive_high_water_mark: o.receive_high_water_mark,
            linger: o.linger,
            send_timeout: o.send_timeout,
            receive_timeout: o.receive_timeout,
            immediate: o.immediate,
            reconnect_interval: o.reconnect_interval,
            reconnect_max_interval: o.reconnect_max_interval,
            max_message_size: o.max_message_size,
            handshake_interval: o.handshake_interval,
            heartbeat_interval: o.heartbeat_interval,
            heartbeat_timeout: o.heartbeat_timeout,
            heartbeat_time_to_live: o.heartbeat_time_to_live,
            connect_timeout: o.connect_timeout,
        }
    }
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
    /// For error events: the error code (`EADDRINUSE`, `EPROTO`, …).
    pub error_code: Option<String>,
    /// For error events: the message.
    pub error_message: Option<String>,
}

/// One PUSH or PULL socket owned by Rust. Internal: use `Push`/`Pull` from the package.
#[napi]
pub struct NativeSocket {
    socket: Arc<engine::Socket>,
    /// Large frames may be sent without a copy (main thread only, see `frame_from_js`).
    zero_copy: bool,
    /// Released at close: the callback holds the JS socket, so keeping it would pin every
    /// closed socket in memory.
    waker: Option<Arc<WakerFn>>,
}

#[napi]
impl NativeSocket {
    /// Creates a socket of `kind` ("push" or "pull"). `waker(bits)` is called on the JS
    /// thread when a readiness bit armed with `arm()` becomes true. `mainThread`: whether
    /// this is Node's main thread, whose large buffers may be sent without a copy.
    #[napi(constructor)]
    pub fn new(env: Env, kind: String, options: NativeOptions, waker: WakerFn, main_thread: bool) -> Result<Self> {
        let kind = match kind.as_str() {
            "push" => engine::SocketType::Push,
            "pull" => engine::SocketType::Pull,
            other => return Err(Error::new(Status::InvalidArg, format!("EINVAL: unknown socket type {other}"))),
        };
        let rt = runtime()?;
        let socket = Arc::new(engine::Socket::new(kind, options.into(), rt.handle().clone()).map_err(js_error)?);
        let waker = Arc::new(waker);
        set_tsfn_ref(&env, &waker, false)?;
        let tsfn = waker.clone();
        socket.set_waker(Some(Arc::new(move |bits| {
            tsfn.call(bits, ThreadsafeFunctionCallMode::NonBlocking);
        })));
        close_with_env(&env, &socket)?;
        Ok(NativeSocket { socket, zero_copy: main_thread, waker: Some(waker) })
    }

    /// Replaces the socket options (applied to connections made from now on).
    #[napi]
    pub fn set_options(&self, options: NativeOptions) -> Result<()> {
        self.socket.set_options(options.into()).map_err(js_error)
    }

    /// Binds; resolves to the resolved endpoint.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn bind<'env>(&self, env: &'env Env, address: String) -> Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<String, _>()?;
        let socket = self.socket.clone();
        runtime()?.spawn(async move {
            match socket.bind(&address).await {
                Ok(resolved) => deferred.resolve(move |_| Ok(resolved)),
                Err(e) => deferred.reject(js_error(e)),
            }
        });
        Ok(promise)
    }

    /// Stops listening on an address.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn unbind<'env>(&self, env: &'env Env, address: String) -> Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<(), _>()?;
        let socket = self.socket.clone();
        runtime()?.spawn(async move {
            match socket.unbind(&address).await {
                Ok(()) => deferred.resolve(|_| Ok(())),
                Err(e) => deferred.reject(js_error(e)),
            }
        });
        Ok(promise)
    }

    /// Connects (in the background, with reconnects).
    #[napi]
    pub fn connect(&self, address: String) -> Result<()> {
        let _guard = runtime()?.enter();
        self.socket.connect(&address).map_err(js_error)
    }

    /// Stops connecting to an address.
    #[napi]
    pub fn disconnect(&self, address: String) -> Result<()> {
        self.socket.disconnect(&address).map_err(js_error)
    }

    /// How many messages the socket can take now (see `flush`); capped to fit a JS number.
    #[napi]
    pub fn room(&self) -> u32 {
        self.socket.room().min(ROOM_MAX) as u32
    }

    /// Queues the messages JS accepted since the last flush, within the last reported
    /// room, and returns the room left. Small frames arrive copied into `stage` (so that
    /// a buffer reused after `send()` resolved cannot change a message); `meta` describes
    /// each message as its frame count followed by, per frame, its length in `stage`, or
    /// -1 for the next entry of `objs` (strings too long to stage, large frames).
    #[napi]
    pub fn flush(
        &self,
        stage: &[u8],
        stage_len: u32,
        meta: &[i32],
        meta_len: u32,
        objs: Vec<Either<String, Uint8Array>>,
    ) -> Result<u32> {
        let bad = || js_error(engine::Error::new(engine::Code::Inval, "malformed send batch"));
        let staged = stage.get(..stage_len as usize).ok_or_else(bad)?;
        let meta = meta.get(..meta_len as usize).ok_or_else(bad)?;
        // One allocation for the whole batch: each frame is a slice of it.
        let data = bytes::Bytes::copy_from_slice(staged);
        let mut objs = objs.into_iter();
        let (mut i, mut off) = (0usize, 0usize);
        while i < meta.len() {
            let frames = usize::try_from(meta[i]).map_err(|_| bad())?;
            i += 1;
            let lens = meta.get(i..i + frames).ok_or_else(bad)?;
            i += frames;
            let mut msg = engine::Message::with_capacity(frames);
            for &len in lens {
                if len >= 0 {
                    let end = off + len as usize;
                    if end > data.len() {
                        return Err(bad());
                    }
                    msg.push(data.slice(off..end));
                    off = end;
                } else {
                    msg.push(frame_from_js(objs.next().ok_or_else(bad)?, self.zero_copy));
                }
            }
            self.socket.send_accepted(msg).map_err(js_error)?;
        }
        Ok(self.room())
    }

    /// Takes up to `max` received messages, or null when there are none. The result is
    /// `[data, ...large]`: `data` starts with little-endian u32s (the message count, the
    /// offset of the frames' bytes, then per message its frame count and each frame's
    /// length, 0xFFFFFFFF for a frame that is the next entry of `large`), followed by the
    /// small frames' bytes. One buffer per
    /// batch instead of one per frame: JS slices it, which costs far less than a native
    /// Buffer each.
    #[napi(ts_return_type = "Buffer[] | null")]
    pub fn try_receive<'env>(&self, env: &'env Env, max: u32) -> Result<Option<Array<'env>>> {
        let mut msgs = Vec::new();
        self.socket
            .try_recv_batch_bytes(&mut msgs, max.max(1) as usize, RECEIVE_BATCH_BYTES)
            .map_err(js_error)?;
        if msgs.is_empty() {
            return Ok(None);
        }
        // Two header words: the message count and where the frames' bytes start.
        let (mut words, mut small, mut large) = (2usize, 0usize, 0usize);
        for m in &msgs {
            words += 1 + m.len();
            for f in m.frames() {
                if f.len() >= ZERO_COPY_MIN {
                    large += 1;
                } else {
                    small += f.len();
                }
            }
        }
        let mut out = env.create_array((1 + large) as u32)?;
        let mut data = new_buffer(env, words * 4 + small)?;
        let mut next_large = 1u32;
        {
            let (head, body) = data.split_at_mut(words * 4);
            let mut w = head.chunks_exact_mut(4);
            let mut put = |v: u32| {
                if let Some(slot) = w.next() {
                    slot.copy_from_slice(&v.to_le_bytes());
                }
            };
            put(msgs.len() as u32);
            put((words * 4) as u32);
            let mut off = 0;
            for m in &msgs {
                put(m.len() as u32);
                for f in m.frames() {
                    if f.len() >= ZERO_COPY_MIN {
                        put(OWN_BUFFER);
                        out.set(next_large, frame_to_js(env, f)?)?;
                        next_large += 1;
                    } else {
                        put(f.len() as u32);
                        body[off..off + f.len()].copy_from_slice(f);
                        off += f.len();
                    }
                }
            }
        }
        out.set(0, data)?;
        Ok(Some(out))
    }

    /// Asks for one waker call when any of `bits` (1 readable, 2 writable, 4 events)
    /// becomes true; returns the bits already true (8 = closed).
    #[napi]
    pub fn arm(&self, bits: u32) -> u32 {
        self.socket.arm(bits)
    }

    /// Whether the waker keeps the process alive (while JS waits on this socket).
    #[napi]
    pub fn set_ref(&self, env: Env, referenced: bool) -> Result<()> {
        match &self.waker {
            Some(w) => set_tsfn_ref(&env, w, referenced),
            None => Ok(()),
        }
    }

    /// A message can be received now.
    #[napi(getter)]
    pub fn readable(&self) -> bool {
        self.socket.readable()
    }

    /// A message can be sent now without waiting.
    #[napi(getter)]
    pub fn writable(&self) -> bool {
        self.socket.writable()
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

    /// Takes queued monitor events.
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
            })
            .collect()
    }

    /// Closes; resolves once queued messages are flushed (PUSH, within linger).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&mut self, env: &'env Env) -> Result<Object<'env>> {
        self.release_waker();
        let (deferred, promise) = env.create_deferred::<(), _>()?;
        let socket = self.socket.clone();
        runtime()?.spawn(async move {
            socket.close().await;
            deferred.resolve(|_| Ok(()));
        });
        Ok(promise)
    }

    /// Closes at once, dropping anything queued.
    #[napi]
    pub fn close_now(&mut self) {
        self.release_waker();
        self.socket.close_now();
    }

    fn release_waker(&mut self) {
        self.socket.set_waker(None);
        self.waker = None;
    }
}
