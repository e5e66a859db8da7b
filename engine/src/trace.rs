//! Per-stage timestamps of the receive path, for latency work only: compiled in with the
//! `stage-trace` feature, absent (not merely disabled) otherwise, so release builds pay
//! nothing. Each stage stores the CLOCK_MONOTONIC time (the clock of Node's
//! `process.hrtime`, so stamps compare with a sender's, in another process too) of its
//! latest occurrence in the whole process; at a low message rate, with one message in
//! flight at a time, the latest stamps are those of the message being received.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The I/O thread's read that returned the latest bytes.
pub static READ: AtomicU64 = AtomicU64::new(0);
/// The latest message queued in a socket's pipe.
pub static PUSH: AtomicU64 = AtomicU64::new(0);
/// The latest call of a socket's external waker.
pub static WAKE: AtomicU64 = AtomicU64::new(0);

/// CLOCK_MONOTONIC in ns.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Records now as `stage`'s latest time.
pub fn stamp(stage: &AtomicU64) {
    stage.store(now_ns(), Ordering::Relaxed);
}

/// The time of every write syscall that sent bytes (a sender's side: matched to the send
/// stamps in its messages by time).
pub static WRITES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Records a write that just returned.
pub fn record_write() {
    let t = now_ns();
    WRITES.lock().unwrap_or_else(|e| e.into_inner()).push(t);
}
