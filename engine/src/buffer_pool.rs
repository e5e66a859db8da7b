//! Large buffers (received bodies, send-stage regions), kept for reuse. A stream of 64 KiB or
//! 1 MiB messages allocates and frees one such buffer per message on each side (the free
//! often on another thread, when JS collects a Buffer). Left to the allocators, each one came
//! back as fresh pages for the kernel to fault in and zero: 463 page faults per 1 MiB message
//! (694 000 for 1 500 of them, against zeromq.js's 38 000, whose libzmq reuses its buffers),
//! and most of the run's time in the kernel. So freed buffers of 32 KiB or more wait here, by
//! power-of-two size class, for the next allocation of their class; what is kept is bounded
//! by [`POOL_BYTES`], past which buffers are freed as usual.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Buffers smaller than this come from the global allocator: its caches serve them well.
pub const SYSTEM_MIN: usize = 32 * 1024;

/// The largest size class kept for reuse (larger buffers are allocated and freed each time).
const POOLED_MAX: usize = 16 * 1024 * 1024;

/// At most this many bytes of free buffers are kept, over all classes: a burst of large
/// messages leaves at most this much behind.
pub const POOL_BYTES: usize = 64 * 1024 * 1024;

const CLASSES: usize = (POOLED_MAX / SYSTEM_MIN).trailing_zeros() as usize + 1;

/// Free buffers by class (class `i` holds `SYSTEM_MIN << i` bytes), as addresses: each one
/// is an allocation of exactly its class's size from `System`, owned by the pool alone.
static FREE: [Mutex<Vec<usize>>; CLASSES] = [const { Mutex::new(Vec::new()) }; CLASSES];
static FREE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The class of a buffer of at least `cap` bytes, and its size; `None` above the largest.
fn class_of(cap: usize) -> Option<(usize, usize)> {
    if cap > POOLED_MAX {
        return None;
    }
    let size = cap.max(SYSTEM_MIN).next_power_of_two();
    Some(((size / SYSTEM_MIN).trailing_zeros() as usize, size))
}

fn free_list(class: usize) -> std::sync::MutexGuard<'static, Vec<usize>> {
    // Each critical section is one push or pop: a poisoned lock is still consistent.
    FREE[class].lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer of a fixed capacity whose first `len` bytes were written. Contents past `len`
/// are uninitialised: write before reading (the `BufMut` impl only writes).
pub struct PooledBuf {
    ptr: *mut u8,
    len: usize,
    cap: usize,
    /// Small buffers live in a `Vec` of the global allocator.
    small: Option<Vec<u8>>,
}

// SAFETY: the buffer owns its memory outright (like a `Vec<u8>`), so it can move between
// threads and be read from several through `&`.
unsafe impl Send for PooledBuf {}
// SAFETY: as above; `&PooledBuf` only reads.
unsafe impl Sync for PooledBuf {}

impl PooledBuf {
    /// An empty buffer of at least `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> PooledBuf {
        let cap = capacity.max(1);
        if cap < SYSTEM_MIN {
            let mut v = Vec::with_capacity(cap);
            let ptr = v.as_mut_ptr();
            let cap = v.capacity();
            return PooledBuf {
                ptr,
                len: 0,
                cap,
                small: Some(v),
            };
        }
        let class = class_of(cap);
        let cap = class.map_or(cap, |(_, size)| size);
        if let Some((class, size)) = class {
            if let Some(addr) = free_list(class).pop() {
                FREE_BYTES.fetch_sub(size, Ordering::Relaxed);
                return PooledBuf {
                    ptr: addr as *mut u8,
                    len: 0,
                    cap,
                    small: None,
                };
            }
        }
        let layout = Self::layout(cap);
        // SAFETY: a non-zero size.
        let ptr = unsafe { System.alloc(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        PooledBuf {
            ptr,
            len: 0,
            cap,
            small: None,
        }
    }

    fn layout(cap: usize) -> Layout {
        Layout::array::<u8>(cap)
            .unwrap_or_else(|_| std::alloc::handle_alloc_error(Layout::new::<u8>()))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The whole capacity, for memory shared with JS that JS writes (see the binding's
    /// send stage); valid for as long as the buffer lives.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }

    /// Appends `bytes` (up to the capacity: the rest is dropped, callers size it).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.cap - self.len);
        // SAFETY: `len + n <= cap`, inside the allocation; the source is another allocation.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(self.len), n) };
        self.len += n;
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes were written (`extend_from_slice`, `BufMut`).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

// SAFETY: `chunk_mut` hands out exactly the unwritten part of the allocation, and
// `advance_mut` only moves `len` over bytes the caller wrote, never past the capacity.
unsafe impl bytes::BufMut for PooledBuf {
    fn remaining_mut(&self) -> usize {
        self.cap - self.len
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        self.len = (self.len + cnt).min(self.cap);
    }

    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        // SAFETY: the range [len, cap) lies inside the allocation this buffer owns.
        unsafe {
            bytes::buf::UninitSlice::from_raw_parts_mut(self.ptr.add(self.len), self.cap - self.len)
        }
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if self.small.is_some() {
            return; // the `Vec` frees itself
        }
        if let Some((class, size)) = class_of(self.cap) {
            // `cap` is a class size here (`with_capacity` rounds), so the buffer fits its
            // class exactly; the budget is checked first so the pool never holds more.
            if FREE_BYTES.fetch_add(size, Ordering::Relaxed) + size <= POOL_BYTES {
                free_list(class).push(self.ptr as usize);
                return;
            }
            FREE_BYTES.fetch_sub(size, Ordering::Relaxed);
        }
        // SAFETY: allocated by `System.alloc` with this layout, freed once, here.
        unsafe { System.dealloc(self.ptr, Self::layout(self.cap)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn holds_what_was_written_and_never_more_than_its_capacity() {
        for cap in [10, SYSTEM_MIN, 1 << 20] {
            let mut b = PooledBuf::with_capacity(cap);
            b.extend_from_slice(b"head");
            b.put_slice(&vec![7u8; cap - 4]);
            assert_eq!(b.len(), cap);
            assert_eq!(&b.as_ref()[..4], b"head");
            assert_eq!(b.remaining_mut(), 0);
            b.extend_from_slice(b"more");
            assert_eq!(b.len(), b.capacity(), "full: nothing more goes in");
        }
    }

    #[test]
    fn a_freed_buffer_is_reused_by_the_next_allocation_of_its_class() {
        let mut a = PooledBuf::with_capacity(3 * SYSTEM_MIN);
        assert_eq!(a.capacity(), 4 * SYSTEM_MIN, "rounded up to its class");
        let addr = a.as_mut_ptr() as usize;
        drop(a);
        // Other tests may run at once and take it first: look a few times.
        let again: Vec<_> = (0..8)
            .map(|_| PooledBuf::with_capacity(4 * SYSTEM_MIN))
            .collect();
        assert!(again.iter().any(|b| b.ptr as usize == addr));
    }

    #[test]
    fn the_pool_never_keeps_more_than_its_budget() {
        let many: Vec<_> = (0..2 * POOL_BYTES / POOLED_MAX)
            .map(|_| PooledBuf::with_capacity(POOLED_MAX))
            .collect();
        drop(many);
        assert!(FREE_BYTES.load(Ordering::Relaxed) <= POOL_BYTES);
    }
}
