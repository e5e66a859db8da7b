//! A pipe: the bounded queue of whole messages between a socket and one peer.
//!
//! For tcp/ipc one end is the socket and the other a connection task; for inproc both ends
//! are sockets, so a message moves from a PUSH to a PULL without any copy or syscall. A pipe
//! only signals on *transitions* (empty → non-empty wakes the reader side, full → not full
//! wakes the writer side), which keeps the per-message cost to one uncontended lock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::message::Message;
use crate::outlet::{Outlet, WriteNow};

/// Something to tell that a pipe changed state for it. Implemented by sockets (which list
/// the pipe as ready and wake their waiting callers, see [`crate::ready`]) and by `Notify`
/// (which wakes the connection task owning the other end).
pub trait Wake: Send + Sync {
    fn wake(&self, pipe: &Arc<Pipe>);
}

impl Wake for Notify {
    fn wake(&self, _pipe: &Arc<Pipe>) {
        // A stored permit matters: the connection task may be busy writing when we signal.
        self.notify_one();
    }
}

/// Why a push was refused; the message is handed back so nothing is lost.
#[derive(Debug)]
pub enum PushError {
    /// The pipe is at its high-water mark.
    Full(Message),
    /// The reading end is gone.
    Closed(Message),
}

/// A pipe with a high-water mark also counts as full once it holds this many payload bytes
/// (a message always fits an empty pipe). libzmq counts messages only, and zero-copies
/// large ones; zeropipe copies each accepted message (its caller may reuse or detach the
/// buffer at once), so 1 000 queued messages of 1 MiB would be 1 GiB of copies, none of it
/// memory the buffer pool could reuse. Bounding the bytes keeps a stream of large messages
/// inside reused, already-mapped buffers, and costs no throughput: 16 MiB is many
/// round-trips' worth of any link. With messages up to 16 KiB the message mark (default
/// 1 000) is reached first, so only large messages ever meet this bound.
pub const QUEUE_BYTES_MAX: usize = 16 * 1024 * 1024;

struct State {
    queue: VecDeque<Message>,
    /// The payload bytes of `queue`.
    bytes: usize,
    /// Messages taken by the writer but not yet known to be on the wire; `close()` with
    /// linger waits for these too.
    in_flight: usize,
    reader_closed: bool,
    writer_closed: bool,
}

/// Pipe ids are unique in the process, never reused: an id a caller kept can only ever name
/// the pipe it was read from, even after that pipe is gone.
static NEXT_PIPE_ID: AtomicU64 = AtomicU64::new(1);

pub struct Pipe {
    state: Mutex<State>,
    /// The pipe's (and so its peer's) id: what `Socket::peers` lists and `send_to` takes.
    id: u64,
    /// The peer's address while a handshake with it is complete and the connection lives:
    /// a connect-side pipe outlives reconnects, so being attached says nothing of a peer.
    peer: Mutex<Option<String>>,
    /// 0 = unlimited, as libzmq's HWM 0.
    /// Atomic only because an inproc pipe made before its binder existed learns the
    /// binder's mark later ([`Pipe::set_hwm`]).
    hwm: AtomicUsize,
    /// Woken when the queue becomes non-empty, or the writer end closes.
    on_readable: Arc<dyn Wake>,
    /// Woken when the queue drops below the high-water mark, the writer's batch is
    /// flushed, or the reader end closes.
    on_writable: Arc<dyn Wake>,
    /// Set once the pipe was taken out of its socket, so it is removed only once.
    detached: AtomicBool,
    /// An inproc pipe *is* the peer's receive queue: a queued message is delivered.
    inproc: bool,
    /// Whether the pipe is in its reading socket's ready queue, and in its writing socket's
    /// (see [`crate::ready::ReadyQueue`]): the flags keep each queue free of duplicates, so a
    /// socket's work per message does not grow with its number of peers.
    pub(crate) listed_for_reader: AtomicBool,
    pub(crate) listed_for_writer: AtomicBool,
    /// The live connection's write side, while a NULL-mechanism PUSH connection serves this
    /// pipe: lets the sending thread write a message itself (see `outlet.rs`).
    outlet: Mutex<Option<Arc<Outlet>>>,
}

impl Pipe {
    pub fn new(hwm: usize, on_readable: Arc<dyn Wake>, on_writable: Arc<dyn Wake>) -> Arc<Pipe> {
        Self::build(hwm, on_readable, on_writable, false)
    }

    /// A pipe whose both ends are sockets in this process.
    pub fn new_inproc(
        hwm: usize,
        on_readable: Arc<dyn Wake>,
        on_writable: Arc<dyn Wake>,
    ) -> Arc<Pipe> {
        Self::build(hwm, on_readable, on_writable, true)
    }

    fn build(
        hwm: usize,
        on_readable: Arc<dyn Wake>,
        on_writable: Arc<dyn Wake>,
        inproc: bool,
    ) -> Arc<Pipe> {
        Arc::new(Pipe {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                in_flight: 0,
                reader_closed: false,
                writer_closed: false,
            }),
            id: NEXT_PIPE_ID.fetch_add(1, Ordering::Relaxed),
            peer: Mutex::new(None),
            hwm: AtomicUsize::new(hwm),
            on_readable,
            on_writable,
            detached: AtomicBool::new(false),
            inproc,
            listed_for_reader: AtomicBool::new(false),
            listed_for_writer: AtomicBool::new(false),
            outlet: Mutex::new(None),
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Records that a peer at `address` completed its handshake on this pipe (`None`: the
    /// connection ended).
    pub fn set_peer(&self, address: Option<&str>) {
        *self.peer.lock().unwrap_or_else(|e| e.into_inner()) = address.map(str::to_string);
    }

    /// The address of the peer this pipe reaches now: one with a completed handshake whose
    /// connection (or inproc socket) is still there.
    pub fn peer(&self) -> Option<String> {
        let peer = self
            .peer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let st = self.lock();
        (!st.reader_closed && !st.writer_closed).then_some(peer)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // critical section is a single VecDeque operation), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn full(&self, st: &State) -> bool {
        let hwm = self.hwm.load(Ordering::Relaxed);
        hwm != 0 && (st.queue.len() >= hwm || (!st.queue.is_empty() && st.bytes >= QUEUE_BYTES_MAX))
    }

    /// Changes the high-water mark; a raised mark wakes a writer waiting for room.
    pub fn set_hwm(self: &Arc<Self>, hwm: usize) {
        let was_full = {
            let st = self.lock();
            let was_full = self.full(&st);
            self.hwm.store(hwm, Ordering::Relaxed);
            was_full && !self.full(&st)
        };
        if was_full {
            self.on_writable.wake(self);
        }
    }

    /// Queues `msg`; on success tells whether the pipe is now at its high-water mark (the
    /// writer's ready queue then drops it until a reader makes room).
    pub fn try_push(self: &Arc<Self>, msg: Message) -> Result<bool, PushError> {
        let (was_empty, now_full);
        {
            let mut st = self.lock();
            if st.reader_closed {
                return Err(PushError::Closed(msg));
            }
            if self.full(&st) {
                return Err(PushError::Full(msg));
            }
            was_empty = st.queue.is_empty();
            st.bytes += msg.byte_len();
            st.queue.push_back(msg);
            now_full = self.full(&st);
        }
        #[cfg(feature = "stage-trace")]
        crate::trace::stamp(&crate::trace::PUSH);
        if was_empty {
            self.on_readable.wake(self);
        }
        Ok(now_full)
    }

    /// Writes a message straight to the peer's connection from the caller's memory, when
    /// nothing is queued ahead of it and the connection's writer is idle (see `outlet.rs`).
    /// `false`: nothing was written, queue it.
    pub fn try_write_now(self: &Arc<Self>, frames: &[&[u8]]) -> bool {
        let Some(outlet) = self.outlet_lock().clone() else {
            return false;
        };
        let done = outlet.write_now(
            frames,
            || {
                let st = self.lock();
                st.queue.is_empty() && !st.reader_closed
            },
            || self.lock().in_flight += 1,
        );
        matches!(done, WriteNow::Written { .. })
    }

    /// Serves the pipe through `outlet` from now, or (`None`) no more.
    pub(crate) fn set_outlet(&self, outlet: Option<Arc<Outlet>>) {
        *self.outlet_lock() = outlet;
    }

    fn outlet_lock(&self) -> MutexGuard<'_, Option<Arc<Outlet>>> {
        // One assignment or clone per critical section: a poisoned lock is consistent.
        self.outlet.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pushes past the high-water mark: only for messages the socket already accepted and
    /// must not lose (redistribution from a departed peer).
    pub fn force_push(self: &Arc<Self>, msgs: impl IntoIterator<Item = Message>) {
        let was_empty;
        {
            let mut st = self.lock();
            was_empty = st.queue.is_empty();
            for m in msgs {
                st.bytes += m.byte_len();
                st.queue.push_back(m);
            }
            if st.queue.is_empty() {
                return;
            }
        }
        if was_empty {
            self.on_readable.wake(self);
        }
    }

    /// Takes the oldest message, and tells whether the pipe is empty after it (the reader's
    /// ready queue then drops it until a writer adds to it).
    pub fn try_pop(self: &Arc<Self>) -> Option<(Message, bool)> {
        let (msg, was_full, now_empty) = {
            let mut st = self.lock();
            let was_full = self.full(&st);
            let msg = st.queue.pop_front()?;
            st.bytes -= msg.byte_len();
            (msg, was_full, st.queue.is_empty())
        };
        if was_full {
            self.on_writable.wake(self);
        }
        Some((msg, now_empty))
    }

    /// Takes up to `max` messages, and no more than about `max_bytes` of payload (always at
    /// least one message), for a connection writer and counts them in flight until
    /// [`Pipe::written`] is called. The byte bound matters: what a writer holds dies with its
    /// connection, while what stays queued survives a reconnect or goes to another peer.
    pub fn pop_batch(
        self: &Arc<Self>,
        out: &mut Vec<Message>,
        max: usize,
        max_bytes: usize,
    ) -> usize {
        let (n, was_full, still_full) = {
            let mut st = self.lock();
            let was_full = self.full(&st);
            let mut n = 0;
            let mut bytes = 0;
            while n < max.min(st.queue.len()) && (n == 0 || bytes < max_bytes) {
                bytes += st.queue[n].byte_len();
                n += 1;
            }
            st.bytes -= bytes;
            out.extend(st.queue.drain(..n));
            st.in_flight += n;
            (n, was_full, self.full(&st))
        };
        if was_full && !still_full {
            self.on_writable.wake(self);
        }
        n
    }

    /// The writer flushed everything it popped.
    pub fn written(self: &Arc<Self>) {
        let wake = {
            let mut st = self.lock();
            let had = st.in_flight != 0;
            st.in_flight = 0;
            had && st.queue.is_empty()
        };
        if wake {
            // Lingering closers wait on the writable side for "all flushed".
            self.on_writable.wake(self);
        }
    }

    /// Everything taken was lost with the connection (it never reached the peer's kernel
    /// buffer as far as we know): forget it so linger does not wait for it.
    pub fn abandon_in_flight(&self) {
        self.lock().in_flight = 0;
    }

    /// How many more messages `try_push` would accept now (`usize::MAX` without a mark).
    pub fn room(&self) -> usize {
        let st = self.lock();
        if st.reader_closed {
            return 0;
        }
        match self.hwm.load(Ordering::Relaxed) {
            0 => usize::MAX,
            _ if self.full(&st) => 0,
            hwm => hwm.saturating_sub(st.queue.len()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Messages queued or in flight, not yet known to be on the wire (0 for an inproc
    /// pipe, which is the peer's receive queue: a queued message is delivered).
    pub fn unflushed(&self) -> usize {
        if self.inproc {
            return 0;
        }
        let st = self.lock();
        st.queue.len() + st.in_flight
    }

    /// The writer end finished: nothing more will arrive. Queued messages stay readable.
    pub fn close_writer(self: &Arc<Self>) {
        self.lock().writer_closed = true;
        self.on_readable.wake(self);
    }

    /// The reader end is gone: later pushes fail, and the writer side is told.
    pub fn close_reader(self: &Arc<Self>) {
        self.lock().reader_closed = true;
        self.on_writable.wake(self);
    }

    /// Whether the reading end is gone (a PUSH then takes the queued messages back).
    pub fn reader_closed(&self) -> bool {
        self.lock().reader_closed
    }

    /// A pipe whose writer is gone and whose queue is drained will never yield again.
    pub fn is_finished(&self) -> bool {
        let st = self.lock();
        st.writer_closed && st.queue.is_empty()
    }

    /// Empties the queue, returning what was never taken by the writer.
    pub fn take_all(self: &Arc<Self>) -> VecDeque<Message> {
        let (msgs, was_full) = {
            let mut st = self.lock();
            let was_full = self.full(&st);
            st.bytes = 0;
            (std::mem::take(&mut st.queue), was_full)
        };
        if was_full {
            self.on_writable.wake(self);
        }
        msgs
    }

    /// Marks the pipe detached; returns true only for the first caller.
    pub fn mark_detached(&self) -> bool {
        !self.detached.swap(true, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(&self, _pipe: &Arc<Pipe>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn msg(s: &'static str) -> Message {
        Message::from([s.as_bytes()])
    }

    #[test]
    fn a_pipe_with_a_mark_is_full_at_its_byte_bound_and_always_takes_one_message() {
        let chunk = bytes::Bytes::from(vec![0u8; QUEUE_BYTES_MAX / 4]);
        let big = || Message::from(vec![chunk.clone()]);
        let p = Pipe::new(1000, Arc::new(Count::default()), Arc::new(Count::default()));
        for _ in 0..4 {
            p.try_push(big()).unwrap();
        }
        assert_eq!(p.room(), 0);
        assert!(matches!(p.try_push(msg("x")), Err(PushError::Full(_))));
        p.try_pop().unwrap();
        assert!(p.room() > 0, "taking one makes room");
        let huge = bytes::Bytes::from(vec![0u8; QUEUE_BYTES_MAX * 2]);
        let empty = Pipe::new(1000, Arc::new(Count::default()), Arc::new(Count::default()));
        assert_eq!(
            empty.try_push(Message::from(vec![huge])).unwrap(),
            true,
            "an empty pipe takes any message"
        );
        let unlimited = Pipe::new(0, Arc::new(Count::default()), Arc::new(Count::default()));
        for _ in 0..8 {
            unlimited.try_push(big()).unwrap();
        }
    }

    #[test]
    fn refuses_past_the_high_water_mark_and_hands_the_message_back() {
        let p = Pipe::new(2, Arc::new(Count::default()), Arc::new(Count::default()));
        p.try_push(msg("a")).unwrap();
        p.try_push(msg("b")).unwrap();
        match p.try_push(msg("c")) {
            Err(PushError::Full(m)) => assert_eq!(m, msg("c")),
            other => panic!("expected Full, got {other:?}"),
        }
        assert_eq!(p.try_pop().map(|(m, _)| m), Some(msg("a")));
        p.try_push(msg("c")).unwrap();
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn signals_only_on_transitions() {
        let r = Arc::new(Count::default());
        let w = Arc::new(Count::default());
        let p = Pipe::new(2, r.clone(), w.clone());
        p.try_push(msg("a")).unwrap();
        p.try_push(msg("b")).unwrap();
        assert_eq!(
            r.0.load(Ordering::SeqCst),
            1,
            "only empty -> non-empty wakes the reader"
        );
        p.try_pop();
        p.try_pop();
        assert_eq!(
            w.0.load(Ordering::SeqCst),
            1,
            "only full -> not full wakes the writer"
        );
    }

    #[test]
    fn room_counts_free_slots_under_the_mark() {
        let p = Pipe::new(3, Arc::new(Count::default()), Arc::new(Count::default()));
        assert_eq!(p.room(), 3);
        p.try_push(msg("a")).unwrap();
        assert_eq!(p.room(), 2);
        p.force_push([msg("b"), msg("c"), msg("d")]);
        assert_eq!(
            p.room(),
            0,
            "forced pushes past the mark leave no room, not a negative one"
        );
        p.close_reader();
        assert_eq!(p.room(), 0);
        assert_eq!(
            Pipe::new(0, Arc::new(Count::default()), Arc::new(Count::default())).room(),
            usize::MAX
        );
    }

    #[test]
    fn zero_high_water_mark_means_unlimited() {
        let p = Pipe::new(0, Arc::new(Count::default()), Arc::new(Count::default()));
        for _ in 0..10_000 {
            p.try_push(msg("x")).unwrap();
        }
        assert_eq!(p.len(), 10_000);
    }

    #[test]
    fn a_closed_reader_refuses_pushes_without_losing_the_message() {
        let p = Pipe::new(10, Arc::new(Count::default()), Arc::new(Count::default()));
        p.close_reader();
        assert!(matches!(p.try_push(msg("a")), Err(PushError::Closed(_))));
    }

    #[test]
    fn in_flight_messages_keep_the_pipe_unflushed_until_written() {
        let p = Pipe::new(10, Arc::new(Count::default()), Arc::new(Count::default()));
        p.try_push(msg("a")).unwrap();
        let mut out = Vec::new();
        assert_eq!(p.pop_batch(&mut out, 8, usize::MAX), 1);
        assert_eq!(p.unflushed(), 1);
        p.written();
        assert_eq!(p.unflushed(), 0);
    }

    #[test]
    fn a_writer_batch_stops_at_its_byte_budget_but_takes_at_least_one_message() {
        let p = Pipe::new(10, Arc::new(Count::default()), Arc::new(Count::default()));
        for _ in 0..4 {
            p.try_push(Message::from(vec![bytes::Bytes::from(vec![0u8; 100])]))
                .unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(
            p.pop_batch(&mut out, 8, 150),
            2,
            "stops once the budget is reached"
        );
        assert_eq!(
            p.pop_batch(&mut out, 8, 10),
            1,
            "one message even when it alone exceeds the budget"
        );
        assert_eq!(p.len(), 1, "the rest stays queued");
    }
}
