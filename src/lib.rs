//! The N-API binding of zeropipe: a thin layer over `zeropipe-engine`.
//!
//! It converts JS values to engine types in one place ([`frame_from_js`]), engine errors to
//! JS errors in one place ([`js_error`]), and otherwise forwards calls. The public API users
//! see (`Push`, `Pull`, `push()`, `pull()`) is the small JS layer in `index.js` on top of
//! [`NativeSocket`]; this file's generated typings (`binding.d.ts`) are internal.
//!
//! Hot paths are synchronous and batched: JS stages accepted sends in memory it shares with
//! Rust ([`SendStage`]) and hands them over with one `flush()`, and `tryReceive` writes a
//! batch of messages into a slab JS gives it. Waiting uses one long-lived threadsafe callback
//! per socket (the waker), armed by JS only when it has to wait.
//!
//! Every byte JS hands over is copied before the call returns: a JS buffer can be detached
//! (transferred to a worker, `ArrayBuffer.prototype.transfer()`) or freed with its thread at
//! any moment after, so Rust never keeps a pointer into JS memory.

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
static RUNTIME: LazyLock<std::result::Result<Runtime, engine::Error>> = LazyLock::new(|| {
    let threads = match std::env::var("ZEROPIPE_IO_THREADS") {
        Err(_) => DEFAULT_IO_THREADS,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => {
                return Err(engine::Error::new(
                    engine::Code::Inval,
                    format!("ZEROPIPE_IO_THREADS must be an integer from 1 to 64, got {v:?}"),
                ))
            }
        },
    };
    let fail = |e: std::io::Error| engine::Error::from_io(&e, "cannot start", "the I/O runtime");
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
static DRIVER: std::sync::OnceLock<std::result::Result<(), engine::Error>> = std::sync::OnceLock::new();

const DEFAULT_IO_THREADS: usize = 1;

fn runtime() -> Result<&'static Runtime> {
    let rt: &'static Runtime = RUNTIME.as_ref().map_err(|e| js_error(e.clone()))?;
    if rt.handle().runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
        // Only `Runtime::block_on` drives a current-thread runtime's I/O and timers.
        DRIVER
            .get_or_init(|| {
                std::thread::Builder::new()
                    .name("zeropipe-io".into())
                    .spawn(move || rt.block_on(std::future::pending::<()>()))
                    .map(|_| ())
                    .map_err(|e| engine::Error::from_io(&e, "cannot start", "the I/O thread"))
            })
            .clone()
            .map_err(js_error)?;
    }
    Ok(rt)
}

/// The one conversion of engine errors: the JS layer reads the `CODE: ` prefix back into
/// `err.code` (see `nativeError` in index.js).
fn js_error(e: engine::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{}: {}", e.code.as_str(), e.message))
}

fn malformed(what: &str) -> Error {
    js_error(engine::Error::new(engine::Code::Inval, format!("malformed {what}")))
}

/// Frames at least this large are handed to JS as Buffers of their own, over the received
/// bytes (no copy); smaller ones are copied into the receive slab.
const OWN_BUFFER_MIN: usize = 64 * 1024;

/// Receive batches stop at about this much payload.
const RECEIVE_BATCH_BYTES: usize = 64 * 1024;

/// The length word that marks a frame passed as a Buffer of its own (see `tryReceive`).
const OWN_BUFFER: u32 = u32::MAX;

/// `room()` is a JS number; 2^30 is more than any batch JS will stage.
const ROOM_MAX: usize = 1 << 30;

/// Bytes of small frames JS may stage between two flushes.
const STAGE_BYTES: usize = 64 * 1024;
/// Words of the stage's message descriptions: two header words (the committed entry count
/// and byte count), then per message its frame count and each frame's length.
const STAGE_META_WORDS: usize = 2 + 2048;

/// Memory owned by Rust and written by JS through an external ArrayBuffer: the staging area
/// of a PUSH's accepted sends. Rust keeps its own `Arc`, and each external ArrayBuffer holds
/// one more that its finalizer drops, so the memory outlives whichever side lets go last;
/// JS detaching the ArrayBuffer only empties JS's view. Both sides use it on the socket's
/// own JS thread only (JS between calls, Rust during `flush` and the environment's cleanup
/// hook, which runs on that thread after JS has stopped), so they never race; the
/// ArrayBuffers live in the socket's private state, so no other thread gets hold of them.
struct Region<T> {
    ptr: *mut T,
    len: usize,
}

impl<T: Copy + Default> Region<T> {
    fn new(len: usize) -> Self {
        let boxed: Box<[T]> = vec![T::default(); len].into_boxed_slice();
        Region { len, ptr: Box::into_raw(boxed).cast::<T>() }
    }

    fn get(&self, i: usize) -> Option<T> {
        // SAFETY: in bounds of an allocation this region owns; see the type's doc for why no
        // other thread writes meanwhile.
        (i < self.len).then(|| unsafe { self.ptr.add(i).read() })
    }

    fn set(&self, i: usize, v: T) {
        if i < self.len {
            // SAFETY: as in `get`.
            unsafe { self.ptr.add(i).write(v) }
        }
    }
}

impl<T> Drop for Region<T> {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` came from `Box::into_raw` of a boxed slice of that length, and
        // this is the last owner (the region lives in an `Arc` shared with the finalizers).
        unsafe { drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.len))) }
    }
}

// SAFETY: see `Region`'s doc: the memory is only touched on its socket's JS thread.
unsafe impl<T> Send for Region<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Region<T> {}

/// A PUSH's staging area: JS writes accepted small messages into `data` and describes them
/// in `meta`, committing each message by updating `meta[0]` (entries) and `meta[1]` (bytes);
/// Rust takes everything committed on `flush()`, or at environment teardown.
struct SendStage {
    data: Arc<Region<u8>>,
    meta: Arc<Region<i32>>,
}

impl SendStage {
    fn new() -> Self {
        SendStage { data: Arc::new(Region::new(STAGE_BYTES)), meta: Arc::new(Region::new(STAGE_META_WORDS)) }
    }

    /// Queues every committed message and empties the stage. What JS wrote is checked as
    /// untrusted input: a bad description is `EINVAL`, never a wild read.
    fn drain(&self, socket: &engine::Socket) -> Result<()> {
        let entries = self.meta.get(0).unwrap_or(0);
        let bytes = self.meta.get(1).unwrap_or(0);
        if entries == 0 {
            return Ok(());
        }
        let entries = usize::try_from(entries).ok().filter(|&n| n <= STAGE_META_WORDS - 2);
        let bytes = usize::try_from(bytes).ok().filter(|&n| n <= STAGE_BYTES);
        let (Some(entries), Some(bytes)) = (entries, bytes) else {
            return Err(malformed("send stage"));
        };
        // One allocation for the whole batch: each frame is a slice of it.
        let mut copy = vec![0u8; bytes];
        // SAFETY: `bytes <= STAGE_BYTES`, the region's length; see `Region` for exclusivity.
        unsafe { std::ptr::copy_nonoverlapping(self.data.ptr, copy.as_mut_ptr(), bytes) };
        let data = bytes::Bytes::from(copy);
        self.meta.set(0, 0);
        self.meta.set(1, 0);
        let word = |i: usize| self.meta.get(2 + i).filter(|_| i < entries).ok_or_else(|| malformed("send stage"));
        let (mut i, mut off) = (0usize, 0usize);
        while i < entries {
            let frames = usize::try_from(word(i)?).map_err(|_| malformed("send stage"))?;
            i += 1;
            let mut msg = engine::Message::with_capacity(frames);
            for _ in 0..frames {
                let len = usize::try_from(word(i)?).map_err(|_| malformed("send stage"))?;
                i += 1;
                let end = off.checked_add(len).filter(|&e| e <= data.len()).ok_or_else(|| malformed("send stage"))?;
                msg.push(data.slice(off..end));
                off = end;
            }
            socket.send_accepted(msg).map_err(js_error)?;
        }
        Ok(())
    }
}

/// An external ArrayBuffer over `region`, holding a reference that its finalizer releases.
fn external_arraybuffer<T>(env: &Env, region: &Arc<Region<T>>) -> Result<napi::sys::napi_value> {
    unsafe extern "C" fn release<T>(_env: napi::sys::napi_env, _data: *mut std::ffi::c_void, hint: *mut std::ffi::c_void) {
        // SAFETY: `hint` is the `Arc::into_raw` made below, released exactly once, here.
        unsafe { drop(Arc::from_raw(hint.cast::<Region<T>>())) }
    }
    let hint = Arc::into_raw(region.clone());
    let mut value = std::ptr::null_mut();
    // SAFETY: the pointer and length describe the region's allocation, which stays alive
    // while the ArrayBuffer holds its reference (released by `release`).
    let status = unsafe {
        napi::sys::napi_create_external_arraybuffer(
            env.raw(),
            region.ptr.cast(),
            region.len * std::mem::size_of::<T>(),
            Some(release::<T>),
            hint.cast_mut().cast(),
            &mut value,
        )
    };
    if status != napi::sys::Status::napi_ok {
        // SAFETY: the finalizer was not installed, so this reference is still ours.
        unsafe { drop(Arc::from_raw(hint)) };
        return Err(js_error(engine::Error::new(
            engine::Code::ProtoNoSupport,
            "this JavaScript runtime does not allow external ArrayBuffers, which zeropipe needs",
        )));
    }
    Ok(value)
}

fn typed_array(env: &Env, kind: napi::sys::napi_typedarray_type, len: usize, ab: napi::sys::napi_value) -> Result<Unknown<'_>> {
    let mut value = std::ptr::null_mut();
    // SAFETY: a typed array over the whole of an ArrayBuffer of at least `len` elements.
    let status = unsafe { napi::sys::napi_create_typedarray(env.raw(), kind, len, ab, 0, &mut value) };
    if status != napi::sys::Status::napi_ok {
        return Err(malformed("typed array"));
    }
    // SAFETY: `value` is a live JS value of this env.
    unsafe { Unknown::from_napi_value(env.raw(), value) }
}

/// The one conversion of JS frames: the JS layer has already normalised every
/// `MessageLike` to a string or a `Uint8Array` view. Always a copy (see the module doc).
fn frame_from_js(frame: &Either<String, Uint8Array>) -> bytes::Bytes {
    match frame {
        Either::A(s) => bytes::Bytes::copy_from_slice(s.as_bytes()),
        Either::B(b) => bytes::Bytes::copy_from_slice(b),
    }
}

/// The one conversion of large received frames: an external Buffer over the received
/// bytes, which the frame's `Bytes` keeps alive until JS collects the Buffer.
fn own_buffer<'env>(env: &'env Env, frame: bytes::Bytes) -> Result<BufferSlice<'env>> {
    let ptr = frame.as_ptr() as *mut u8;
    let len = frame.len();
    // SAFETY: `frame` keeps the memory alive until the finalizer drops it; the range is this
    // frame's alone (split off the read buffer), so JS writing to it affects no one, and
    // Rust never reads it again.
    let external = unsafe { BufferSlice::from_external(env, ptr, len, frame.clone(), |_, b| drop(b)) };
    match external {
        Ok(buf) => Ok(buf),
        // Runtimes that forbid external buffers (sandboxed builds) get a copy instead.
        Err(_) => BufferSlice::copy_from(env, &frame),
    }
}

/// A JS typed array's bytes, written by Rust and never read back. The receive slab is a
/// SharedArrayBuffer (so a received message can never be detached out from under the
/// socket), and another thread may hold it if the application shared a message with a
/// worker; so Rust takes no Rust reference to that memory, only copies bytes into the part
/// JS has not handed out yet.
struct WriteOnly {
    ptr: *mut u8,
    len: usize,
}

impl WriteOnly {
    fn of(env: &Env, value: &Unknown) -> Result<Self> {
        let (mut kind, mut len, mut data) = (0, 0usize, std::ptr::null_mut());
        let (mut ab, mut byte_offset) = (std::ptr::null_mut(), 0usize);
        // SAFETY: reads a typed array's description; fails cleanly for anything else.
        let status = unsafe {
            napi::sys::napi_get_typedarray_info(
                env.raw(),
                value.raw(),
                &mut kind,
                &mut len,
                &mut data,
                &mut ab,
                &mut byte_offset,
            )
        };
        if status != napi::sys::Status::napi_ok || kind != napi::sys::TypedarrayType::uint8_array {
            return Err(malformed("receive slab"));
        }
        Ok(WriteOnly { ptr: data.cast(), len: if data.is_null() { 0 } else { len } })
    }

    /// Copies `bytes` to `at`; out-of-range writes are dropped (the caller sized them).
    fn write(&self, at: usize, bytes: &[u8]) {
        if at.checked_add(bytes.len()).is_some_and(|end| end <= self.len) {
            // SAFETY: in bounds of the typed array's memory, which JS keeps alive for the
            // duration of this call (the value is an argument of it).
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(at), bytes.len()) }
        }
    }
}

type WakerFn = ThreadsafeFunction<u32, (), u32, Status, false>;

/// Whether the waker keeps Node's event loop alive. napi-rs only offers this on `&mut`, but
/// the waker is shared with the engine's threads, so the N-API calls are made directly
/// (both are documented as callable from the JS thread at any time).
fn set_tsfn_ref(env: &Env, tsfn: &WakerFn, referenced: bool) -> Result<()> {
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
        Err(js_error(engine::Error::new(engine::Code::Io, "cannot change the waker's reference")))
    }
}

/// A socket as its environment's teardown sees it: the socket, and for a PUSH the stage
/// whose committed messages must not be lost.
struct Registered {
    socket: Weak<engine::Socket>,
    stage: Option<Weak<SendStage>>,
}

/// The sockets of each live N-API environment (main thread or worker), by env address.
/// One cleanup hook per environment flushes and closes them when it ends: a worker thread
/// that ends must neither leave its sockets' connections behind nor lose what its sends
/// resolved for. (A hook per socket could never be removed safely, so each socket ever
/// created would have leaked one.)
static ENV_SOCKETS: LazyLock<Mutex<HashMap<usize, Vec<Registered>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn env_sockets() -> MutexGuard<'static, HashMap<usize, Vec<Registered>>> {
    ENV_SOCKETS.lock().unwrap_or_else(|e| e.into_inner())
}

fn register(env: &Env, entry: Registered) -> Result<()> {
    let key = env.raw() as usize;
    {
        let mut map = env_sockets();
        if let Some(list) = map.get_mut(&key) {
            // Forget collected sockets now and then, so the list tracks live ones.
            if list.len() >= 64 && list.len().is_power_of_two() {
                list.retain(|r| r.socket.strong_count() > 0);
            }
            list.push(entry);
            return Ok(());
        }
        map.insert(key, vec![entry]);
    }
    let hooked = env.add_env_cleanup_hook(key, |key| {
        let sockets = env_sockets().remove(&key).unwrap_or_default();
        linger_all(&sockets);
    });
    if let Err(e) = hooked {
        // Without its hook the entry would never be cleaned up; the next socket retries.
        env_sockets().remove(&key);
        return Err(e);
    }
    Ok(())
}

/// Flushes what each socket's sends resolved for, then closes them all, each within its
/// linger, blocking this thread until they are done: what libzmq's context termination
/// does, so that a thread or process ending normally loses nothing a peer could take.
fn linger_all(sockets: &[Registered]) {
    let Ok(rt) = runtime() else { return };
    let mut waiting = Vec::new();
    for r in sockets {
        let Some(socket) = r.socket.upgrade() else { continue };
        if let Some(stage) = r.stage.as_ref().and_then(Weak::upgrade) {
            // A stage JS left malformed has nothing valid left to deliver.
            let _ = stage.drain(&socket);
        }
        socket.set_waker(None);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        rt.spawn(async move {
            socket.close().await;
            let _ = tx.send(());
        });
        waiting.push(rx);
    }
    for rx in waiting {
        // An error means the close task is gone (the runtime is shutting down): nothing
        // left to wait for.
        let _ = rx.recv();
    }
}

/// Flushes and closes every socket of this environment, waiting for each within its
/// linger: the JS layer calls it on `process.on('exit')`, where the event loop no longer
/// runs, so that `process.exit()` and the end of a script deliver what was sent.
#[napi]
pub fn linger_all_sockets(env: Env) {
    let key = env.raw() as usize;
    let sockets = env_sockets().get_mut(&key).map(std::mem::take).unwrap_or_default();
    linger_all(&sockets);
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
    /// A PUSH's staging area (see [`SendStage`]).
    stage: Option<Arc<SendStage>>,
    /// Received messages taken from the engine that did not fit the last slab.
    pending: Vec<engine::Message>,
    /// The large frames of the last receive batch, for `takeOwnBuffers`.
    own: Vec<bytes::Bytes>,
    /// Released at close: the callback holds the JS socket, so keeping it would pin every
    /// closed socket in memory.
    waker: Option<Arc<WakerFn>>,
}

#[napi]
impl NativeSocket {
    /// Creates a socket of `kind` ("push" or "pull"). `waker(bits)` is called on the JS
    /// thread when a readiness bit armed with `arm()` becomes true.
    #[napi(constructor)]
    pub fn new(env: Env, kind: String, options: NativeOptions, waker: WakerFn) -> Result<Self> {
        let kind = match kind.as_str() {
            "push" => engine::SocketType::Push,
            "pull" => engine::SocketType::Pull,
            other => return Err(js_error(engine::Error::new(engine::Code::Inval, format!("unknown socket type {other}")))),
        };
        let rt = runtime()?;
        let socket = Arc::new(engine::Socket::new(kind, options.into(), rt.handle().clone()).map_err(js_error)?);
        let waker = Arc::new(waker);
        set_tsfn_ref(&env, &waker, false)?;
        let tsfn = waker.clone();
        socket.set_waker(Some(Arc::new(move |bits| {
            tsfn.call(bits, ThreadsafeFunctionCallMode::NonBlocking);
        })));
        let stage = (kind == engine::SocketType::Push).then(|| Arc::new(SendStage::new()));
        register(&env, Registered { socket: Arc::downgrade(&socket), stage: stage.as_ref().map(Arc::downgrade) })?;
        Ok(NativeSocket { socket, stage, pending: Vec::new(), own: Vec::new(), waker: Some(waker) })
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

    /// The PUSH's staging area as `[data, meta]`: a Buffer for small frames' bytes and an
    /// Int32Array describing the messages (`meta[0]` committed entries, `meta[1]` committed
    /// bytes, then per message its frame count and each frame's length). JS writes,
    /// commits each message, and calls `flush()`.
    #[napi(ts_return_type = "[Buffer, Int32Array]")]
    pub fn send_stage<'env>(&self, env: &'env Env) -> Result<Array<'env>> {
        let stage = self.stage.as_ref().ok_or_else(|| malformed("send stage request on a PULL"))?;
        let data = external_arraybuffer(env, &stage.data)?;
        let meta = external_arraybuffer(env, &stage.meta)?;
        let mut out = env.create_array(2)?;
        out.set(0, typed_array(env, napi::sys::TypedarrayType::uint8_array, stage.data.len, data)?)?;
        out.set(1, typed_array(env, napi::sys::TypedarrayType::int32_array, stage.meta.len, meta)?)?;
        Ok(out)
    }

    /// Queues the messages JS committed to the stage since the last flush and returns the
    /// room left.
    #[napi]
    pub fn flush(&self) -> Result<u32> {
        if let Some(stage) = &self.stage {
            stage.drain(&self.socket)?;
        }
        Ok(self.room())
    }

    /// Queues one message JS accepted that does not fit the stage (large frames, many
    /// frames), copying its frames now; returns the room left. JS flushes the stage first,
    /// so order is kept.
    #[napi]
    pub fn send_now(&self, frames: Vec<Either<String, Uint8Array>>) -> Result<u32> {
        let msg = engine::Message::from(frames.iter().map(frame_from_js).collect::<Vec<_>>());
        self.socket.send_accepted(msg).map_err(js_error)?;
        Ok(self.room())
    }

    /// Writes up to `max` received messages into `slab` at `offset` (a multiple of 4) and
    /// returns the bytes used: 0 when there is nothing to receive, or minus the bytes the
    /// next message needs when it does not fit what is left of the slab (it waits for the
    /// next call). The layout: little-endian u32 words — the message count, where the
    /// frames' bytes start (from `offset`), then per message its frame count and each
    /// frame's length (0xFFFFFFFF for a frame returned by `takeOwnBuffers`) — then the
    /// small frames' bytes.
    #[napi(ts_args_type = "max: number, slab: Uint8Array, offset: number")]
    pub fn try_receive(&mut self, env: &Env, max: u32, slab: Unknown, offset: u32) -> Result<i64> {
        let slab = WriteOnly::of(env, &slab)?;
        if self.pending.is_empty() {
            self.socket
                .try_recv_batch_bytes(&mut self.pending, max.max(1) as usize, RECEIVE_BATCH_BYTES)
                .map_err(js_error)?;
        }
        if self.pending.is_empty() {
            return Ok(0);
        }
        let offset = offset as usize;
        let room = slab.len.checked_sub(offset).ok_or_else(|| malformed("receive slab offset"))?;
        let small_bytes = |m: &engine::Message| -> usize {
            m.frames().iter().filter(|f| f.len() < OWN_BUFFER_MIN).map(|f| f.len()).sum()
        };
        let (mut words, mut body, mut count) = (2usize, 0usize, 0usize);
        for m in &self.pending {
            let (w, b) = (1 + m.len(), small_bytes(m));
            if (words + w) * 4 + body + b > room {
                if count == 0 {
                    return Ok(-(((words + w) * 4 + body + b) as i64));
                }
                break;
            }
            words += w;
            body += b;
            count += 1;
        }
        let mut word = offset;
        let mut put = |v: u32| {
            slab.write(word, &v.to_le_bytes());
            word += 4;
        };
        put(count as u32);
        put((words * 4) as u32);
        let mut at = offset + words * 4;
        for m in self.pending.drain(..count) {
            put(m.len() as u32);
            for f in m.into_frames() {
                if f.len() >= OWN_BUFFER_MIN {
                    put(OWN_BUFFER);
                    self.own.push(f);
                } else {
                    put(f.len() as u32);
                    slab.write(at, &f);
                    at += f.len();
                }
            }
        }
        Ok((words * 4 + body) as i64)
    }

    /// The frames of the last receive batch marked 0xFFFFFFFF, in order, as Buffers of
    /// their own.
    #[napi]
    pub fn take_own_buffers<'env>(&mut self, env: &'env Env) -> Result<Vec<BufferSlice<'env>>> {
        self.own.drain(..).map(|f| own_buffer(env, f)).collect()
    }

    /// Asks for one waker call when any of `bits` (1 readable, 2 writable, 4 events)
    /// becomes true; returns the bits already true (8 = closed).
    #[napi]
    pub fn arm(&self, bits: u32) -> u32 {
        let ready = self.socket.arm(bits);
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
            Some(w) => set_tsfn_ref(&env, w, referenced),
            None => Ok(()),
        }
    }

    /// A message can be received now.
    #[napi(getter)]
    pub fn readable(&self) -> bool {
        !self.pending.is_empty() || self.socket.readable()
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

    /// Closes; resolves once queued messages are flushed (PUSH, within linger). What JS
    /// staged is queued first.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&mut self, env: &'env Env) -> Result<Object<'env>> {
        if let Some(stage) = &self.stage {
            // A stage JS left malformed has nothing valid left to deliver.
            let _ = stage.drain(&self.socket);
        }
        self.release_waker();
        self.pending.clear();
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
        self.pending.clear();
        self.socket.close_now();
    }

    fn release_waker(&mut self) {
        self.socket.set_waker(None);
        self.waker = None;
    }
}
