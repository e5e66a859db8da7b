//! The N-API binding of zeropipe: a thin layer over `zeropipe-engine`, driven by the
//! TypeScript layer in `lib/` (the generated `binding.js`/`binding.d.ts` are internal).
//!
//! Layout:
//! - [`socket`]: `NativeSocket`, one engine socket as JS drives it.
//! - [`curve`]: CURVE keys, Z85, settings, and the authenticator that asks JS.
//! - [`batch`]: the send-stage and receive-batch formats (mirrored by `lib/batch.ts`).
//! - [`memory`]: memory shared with JS, and why each use of it is sound.
//! - [`env`]: each JS environment's sockets and their flush-and-close at its end.
//! - [`errors`]: the one conversion of engine errors to JS errors with `code`.
//! - [`specs`]: options, events and readiness bits as the engine declares them.
//! - [`runtime`]: the I/O runtime and its thread.
//!
//! Hot paths are synchronous and batched: JS stages accepted sends in memory it shares with
//! Rust and hands them over with one `flush()`, and `tryReceive` writes a batch of messages
//! into a slab JS gives it. Waiting uses one long-lived threadsafe callback per socket (the
//! waker), armed by JS only when it has to wait. Every byte JS hands over is copied before
//! the call returns: a JS buffer can be detached or freed with its thread at any moment
//! after, so Rust never keeps a pointer into JS memory.

#![deny(clippy::unwrap_used)]

mod batch;
mod curve;
mod env;
mod errors;
mod memory;
mod runtime;
mod socket;
mod specs;
#[cfg(feature = "stage-trace")]
mod trace;

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
