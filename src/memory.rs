//! Memory shared between Rust and JavaScript, and the rules that keep it sound.
//!
//! - [`Region`]: memory Rust owns and JS writes through an external ArrayBuffer (a PUSH's
//!   send stage). Rust keeps its own reference and each ArrayBuffer one more, so the memory
//!   outlives whichever side lets go last; JS detaching the ArrayBuffer only empties JS's
//!   view of it.
//! - [`WriteOnly`]: memory JS owns (a receive slab) that Rust copies into and never reads.
//! - [`own_buffer`]: a received frame handed to JS as an external Buffer that keeps the
//!   frame's bytes alive until JS collects it; Rust never touches them again.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use zeropipe_engine as engine;

use zeropipe_engine::buffer_pool::PooledBuf;

use crate::errors::malformed;

/// Memory owned by Rust and written by JS through an external ArrayBuffer. Both sides use
/// it on the owning socket's JS thread only — JS between calls, Rust during a call from JS
/// or in the environment's cleanup hook, which runs on that thread after JS has stopped —
/// so they never race; the ArrayBuffers live in the socket's private state, so no other
/// thread gets hold of them.
pub(crate) struct Region<T> {
    ptr: *mut T,
    len: usize,
    backing: Backing,
}

/// Where a region's memory comes from.
enum Backing {
    /// Its own allocation, with this layout.
    Raw(std::alloc::Layout),
    /// A large buffer of the engine's (send-stage regions: see `buffer_pool.rs` for why
    /// they do not come from the global allocator), freed as the backing drops.
    Pooled(#[allow(dead_code)] PooledBuf),
}

impl Region<u8> {
    /// A byte region of at least `len` bytes; its contents are never read before JS wrote
    /// them (Rust reads only what JS committed).
    pub(crate) fn pooled(len: usize) -> Self {
        let mut buf = PooledBuf::with_capacity(len.max(1));
        let ptr = buf.as_mut_ptr();
        let len = buf.capacity();
        Region {
            ptr,
            len,
            backing: Backing::Pooled(buf),
        }
    }
}

impl<T: Copy> Region<T> {
    /// A region of `len` elements, zeroed when `zeroed` (its contents are never read before
    /// JS wrote them otherwise: Rust reads only what JS committed).
    pub(crate) fn new(len: usize, zeroed: bool) -> Self {
        let len = len.max(1);
        let layout = Self::layout(len);
        // SAFETY: the layout has a non-zero size (len >= 1, T is not zero-sized here).
        let ptr = unsafe {
            if zeroed {
                std::alloc::alloc_zeroed(layout)
            } else {
                std::alloc::alloc(layout)
            }
        };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Region {
            ptr: ptr.cast::<T>(),
            len,
            backing: Backing::Raw(layout),
        }
    }

    fn layout(len: usize) -> std::alloc::Layout {
        // Only fails for sizes no allocator could give: treat as out of memory.
        std::alloc::Layout::array::<T>(len)
            .unwrap_or_else(|_| std::alloc::handle_alloc_error(std::alloc::Layout::new::<T>()))
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, i: usize) -> Option<T> {
        // SAFETY: in bounds of an allocation this region owns; see the type's doc for why no
        // other thread writes meanwhile.
        (i < self.len).then(|| unsafe { self.ptr.add(i).read() })
    }

    pub(crate) fn set(&self, i: usize, v: T) {
        if i < self.len {
            // SAFETY: as in `get`.
            unsafe { self.ptr.add(i).write(v) }
        }
    }

    /// Copies the first `n` elements out (`n` at most the length; JS wrote them).
    pub(crate) fn copy_prefix(&self, n: usize) -> Vec<T> {
        let n = n.min(self.len);
        let mut out = Vec::with_capacity(n);
        // SAFETY: `n` is within the region and within `out`'s capacity; the elements were
        // written by JS before it committed them (see `SendStage`).
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr, out.as_mut_ptr(), n);
            out.set_len(n);
        }
        out
    }
}

impl<T> Drop for Region<T> {
    fn drop(&mut self) {
        if let Backing::Raw(layout) = self.backing {
            // SAFETY: `ptr` came from `alloc`/`alloc_zeroed` with this same layout, and this
            // is the last owner (the region lives in an `Arc` shared with the finalizers).
            unsafe { std::alloc::dealloc(self.ptr.cast(), layout) }
        }
        // A pooled buffer goes back to the pool as the backing drops.
    }
}

// SAFETY: see `Region`'s doc: the memory is only touched on its socket's JS thread, or read
// once sealed (see `Sealed`).
unsafe impl<T> Send for Region<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Region<T> {}

/// The first `len` bytes of a region JS has stopped writing to, as the bytes of messages:
/// sending them needs no copy. Sealed by `SendStage::drain`, which gives JS a new region and
/// moves the stage's generation on; the JS layer swaps its view before writing again, and
/// nothing else ever held one (the views live in the socket's private state). Detaching or
/// collecting the old view, or the thread's end, only drops the view's reference: the `Arc`
/// here keeps the memory for as long as a message uses it.
pub(crate) struct Sealed {
    pub(crate) region: Arc<Region<u8>>,
    pub(crate) len: usize,
}

impl AsRef<[u8]> for Sealed {
    fn as_ref(&self) -> &[u8] {
        let len = self.len.min(self.region.len);
        // SAFETY: JS wrote these bytes before committing them and writes no more (see the
        // type's doc), so this is initialised memory nobody mutates while the slice lives.
        unsafe { std::slice::from_raw_parts(self.region.ptr, len) }
    }
}

/// A typed array over the whole of `region`, through an external ArrayBuffer that holds a
/// reference to it, released by the ArrayBuffer's finalizer.
pub(crate) fn typed_array_over<'env, T>(
    env: &'env Env,
    region: &Arc<Region<T>>,
    kind: napi::sys::napi_typedarray_type,
) -> std::result::Result<Unknown<'env>, engine::Error> {
    unsafe extern "C" fn release<T>(
        _env: napi::sys::napi_env,
        _data: *mut std::ffi::c_void,
        hint: *mut std::ffi::c_void,
    ) {
        // SAFETY: `hint` is the `Arc::into_raw` made below, released exactly once, here.
        unsafe { drop(Arc::from_raw(hint.cast::<Region<T>>())) }
    }
    let hint = Arc::into_raw(region.clone());
    let mut ab = std::ptr::null_mut();
    // SAFETY: the pointer and length describe the region's allocation, which stays alive
    // while the ArrayBuffer holds its reference (released by `release`).
    let status = unsafe {
        napi::sys::napi_create_external_arraybuffer(
            env.raw(),
            region.ptr.cast(),
            region.len * std::mem::size_of::<T>(),
            Some(release::<T>),
            hint.cast_mut().cast(),
            &mut ab,
        )
    };
    if status != napi::sys::Status::napi_ok {
        // SAFETY: the finalizer was not installed, so this reference is still ours.
        unsafe { drop(Arc::from_raw(hint)) };
        return Err(engine::Error::new(
            engine::Code::ProtoNoSupport,
            "this JavaScript runtime does not allow external ArrayBuffers, which zeropipe needs",
        ));
    }
    let mut value = std::ptr::null_mut();
    // SAFETY: a typed array over the whole of the ArrayBuffer just made.
    let status = unsafe {
        napi::sys::napi_create_typedarray(env.raw(), kind, region.len, ab, 0, &mut value)
    };
    if status != napi::sys::Status::napi_ok {
        return Err(malformed("typed array"));
    }
    // SAFETY: `value` is a live JS value of this env.
    unsafe { Unknown::from_napi_value(env.raw(), value) }.map_err(|_| malformed("typed array"))
}

/// A JS `Uint8Array`'s bytes, written by Rust and never read back. A receive slab is a
/// SharedArrayBuffer (so that a received message can never be detached out from under the
/// socket), and another thread may hold it if the application shared a message with a
/// worker: so Rust takes no Rust reference to that memory, and only copies bytes into the
/// part JS has not handed out yet.
pub(crate) struct WriteOnly {
    ptr: *mut u8,
    len: usize,
}

impl WriteOnly {
    pub(crate) fn of(env: &Env, value: &Unknown) -> std::result::Result<Self, engine::Error> {
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
        Ok(WriteOnly {
            ptr: data.cast(),
            len: if data.is_null() { 0 } else { len },
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies `bytes` to `at`; out-of-range writes are dropped (the caller sized them).
    pub(crate) fn write(&self, at: usize, bytes: &[u8]) {
        if at
            .checked_add(bytes.len())
            .is_some_and(|end| end <= self.len)
        {
            // SAFETY: in bounds of the typed array's memory, which JS keeps alive for the
            // duration of this call (the value is an argument of it).
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(at), bytes.len()) }
        }
    }
}

/// A large received frame as a Buffer of its own, over the received bytes: the frame's
/// `Bytes` keeps them alive until JS collects the Buffer.
pub(crate) fn own_buffer<'env>(env: &'env Env, frame: bytes::Bytes) -> Result<BufferSlice<'env>> {
    let ptr = frame.as_ptr() as *mut u8;
    let len = frame.len();
    // SAFETY: `frame` keeps the memory alive until the finalizer drops it; the range is this
    // frame's alone (split off the read buffer), so JS writing to it affects no one, and
    // Rust never reads it again.
    let external = unsafe {
        BufferSlice::from_external(env, ptr, len, frame.clone(), move |env, b| {
            drop(b);
            let _ = env.adjust_external_memory(-(len as i64));
        })
    };
    match external {
        Ok(buf) => {
            // V8 is told what the Buffer holds, so that a stream of large messages makes it
            // collect them (and the buffer pool reuse their memory) rather than let them
            // pile up as if they were 0-byte objects. Node runs this finalizer on the JS
            // thread, where the matching decrease is allowed.
            let _ = env.adjust_external_memory(len as i64);
            Ok(buf)
        }
        // Runtimes that forbid external buffers (sandboxed builds) get a copy instead.
        Err(_) => BufferSlice::copy_from(env, &frame),
    }
}
