//! Readiness: how a socket tells its callers that something changed — async waiters through
//! a `Notify`, and the Node binding through a waker callback for the bits it armed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

/// Readiness bit: a message can be received.
pub const READABLE: u32 = 1;
/// Readiness bit: a message can be sent without waiting.
pub const WRITABLE: u32 = 2;
/// Readiness bit: monitor events are queued.
pub const EVENTS: u32 = 4;
/// Readiness bit: a peer completed its handshake or left (see `Socket::peers`).
pub const PEERS: u32 = 16;
/// Readiness bit: the socket closed (reported together with the bits that were armed).
pub const CLOSED: u32 = 8;

/// Called (from any thread) when an armed readiness bit becomes true.
pub type Waker = Arc<dyn Fn(u32) + Send + Sync>;

/// Wakes both async waiters and, for bits that were armed, the external waker. One per
/// socket; its pipes reach it through [`crate::ready_queue::SocketEnd`].
pub(crate) struct Readiness {
    pub(crate) notify: Notify,
    armed: AtomicU32,
    waker: RwLock<Option<Waker>>,
}

impl Readiness {
    pub(crate) fn new() -> Self {
        Readiness {
            notify: Notify::new(),
            armed: AtomicU32::new(0),
            waker: RwLock::new(None),
        }
    }

    pub(crate) fn wake(&self, bits: u32) {
        self.notify.notify_waiters();
        let fired = self.armed.fetch_and(!bits, Ordering::AcqRel) & bits;
        if fired != 0 {
            let waker = self.waker.read().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(w) = waker {
                w(fired);
            }
        }
    }

    pub(crate) fn set_waker(&self, waker: Option<Waker>) {
        *self.waker.write().unwrap_or_else(|e| e.into_inner()) = waker;
    }

    /// Arms `bits`, then asks `ready` which of them are already true and disarms those:
    /// arming first means a change between the caller's last look and this call is never
    /// missed (it either fires the waker or shows in `ready`).
    pub(crate) fn arm(&self, bits: u32, ready: impl FnOnce(u32) -> u32) -> u32 {
        self.armed.fetch_or(bits, Ordering::AcqRel);
        let now = ready(bits);
        if now != 0 {
            self.armed.fetch_and(!now, Ordering::AcqRel);
        }
        now
    }
}
