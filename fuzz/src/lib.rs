//! What the fuzz targets share: how an input is cut into a control byte, chunk sizes and a
//! byte stream, and an allocation meter for the "memory follows the bytes received"
//! invariants.
//!
//! Input layout for the stream targets (`decoder`, `handshake`), kept trivial so seeds can
//! be written by hand (see `fuzz/seeds.py`):
//!
//! ```text
//! byte 0          control: low nibble = k, the number of chunk-size bytes that follow;
//!                 high nibble = target-specific options
//! bytes 1..=k     chunk sizes, each byte b meaning b + 1 bytes, used cyclically
//! the rest        the stream a peer sends
//! ```
//!
//! With k = 0 the stream is delivered in one piece.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A fuzz input cut according to the layout above.
pub struct Input<'a> {
    /// The control byte's high nibble.
    pub options: u8,
    chunks: &'a [u8],
    /// The bytes a peer sends.
    pub stream: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn parse(data: &'a [u8]) -> Self {
        let Some((&control, rest)) = data.split_first() else {
            return Input {
                options: 0,
                chunks: &[],
                stream: &[],
            };
        };
        let k = usize::from(control & 0x0F).min(rest.len());
        let (chunks, stream) = rest.split_at(k);
        Input {
            options: control >> 4,
            chunks,
            stream,
        }
    }

    /// The stream cut into the fuzzer-chosen pieces (one piece when it chose none).
    pub fn pieces(&self) -> Vec<&'a [u8]> {
        if self.chunks.is_empty() {
            return vec![self.stream];
        }
        let mut out = Vec::new();
        let mut rest = self.stream;
        let mut sizes = self.chunks.iter().cycle();
        while !rest.is_empty() {
            let n = sizes
                .next()
                .map_or(1, |&b| usize::from(b) + 1)
                .min(rest.len());
            let (piece, tail) = rest.split_at(n);
            out.push(piece);
            rest = tail;
        }
        out
    }
}

/// The global allocator of every target: the system allocator, plus per-thread counters
/// that only run inside [`metered`], so that the harness's own buffers and the async
/// runtime's bookkeeping stay out of what is charged to the code under test.
pub struct Meter;

#[global_allocator]
static METER: Meter = Meter;

thread_local! {
    // Const-initialised and without destructors, so touching them from inside the
    // allocator never allocates.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn charge(grow: usize, shrink: usize) {
    let _ = ACTIVE.try_with(|active| {
        if !active.get() {
            return;
        }
        let _ = LIVE.try_with(|live| {
            // A realloc holds both blocks at its peak.
            let high = live.get().saturating_add_unsigned(grow);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(high)));
            live.set(high.saturating_sub_unsigned(shrink));
        });
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are side effects.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            charge(layout.size(), 0);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            charge(layout.size(), 0);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        charge(0, layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            charge(new_size, layout.size());
        }
        p
    }
}

/// Zeroes this thread's meter. What [`peak`] reports from then on is the most memory that
/// code run inside [`metered`] held at once; frees done outside it are not credited, so
/// anything that code returned counts as held for good (an upper bound, never an under-count).
pub fn reset_meter() {
    LIVE.with(|c| c.set(0));
    PEAK.with(|c| c.set(0));
}

/// The high-water mark in bytes since [`reset_meter`].
pub fn peak() -> usize {
    PEAK.with(|c| usize::try_from(c.get()).unwrap_or(0))
}

/// Runs `f` with the meter on.
pub fn metered<R>(f: impl FnOnce() -> R) -> R {
    struct Off(bool);
    impl Drop for Off {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(self.0));
        }
    }
    let _off = Off(ACTIVE.with(|a| a.replace(true)));
    f()
}

/// A future whose every poll runs metered: charges what the wrapped future allocates, but
/// not what other tasks (the scripted peer) or the runtime between polls do.
pub struct Metered<F>(pub Pin<Box<F>>);

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let inner = self.0.as_mut();
        metered(|| inner.poll(cx))
    }
}
