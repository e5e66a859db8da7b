//! Ready queues: the pipes that may have something for a socket, kept apart from the idle
//! ones (as libzmq's fair-queue and load-balancer keep their active pipes first), so that
//! the work per message does not grow with the number of connected peers. Without them,
//! one busy peer among 5 000 idle ones cost a scan of 5 000 pipes per message: anyone who
//! could connect could slow a socket down a thousandfold with idle connections.
//!
//! A PULL lists the pipes that hold messages (or whose writer finished), a PUSH the pipes
//! with room under the high-water mark. A pipe enters its queue when its far end signals a
//! transition (empty → non-empty, full → not full, end closed) and leaves it when the
//! socket takes it out to use it; [`fair_queue`] and [`round_robin`] put it back at the end
//! while it still qualifies. Each pipe has a flag per role so it is never listed twice.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::message::Message;
use crate::pipe::{Pipe, PushError, Wake};
use crate::socket::readiness::{Readiness, WRITABLE};
use crate::socket::Inner;

/// Which end of its pipes a socket is: a PULL reads them, a PUSH writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Reader,
    Writer,
}

pub(crate) struct ReadyQueue {
    role: Role,
    /// A leaf lock: nothing else is locked while it is held, except a pipe's own lock when
    /// reading its state (pipes never take it while holding theirs).
    pipes: Mutex<VecDeque<Arc<Pipe>>>,
}

impl ReadyQueue {
    pub(crate) fn new(role: Role) -> Self {
        ReadyQueue {
            role,
            pipes: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<Pipe>>> {
        // Every critical section is one VecDeque operation, so a poisoned lock is usable.
        self.pipes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn flag<'p>(&self, pipe: &'p Pipe) -> &'p AtomicBool {
        match self.role {
            Role::Reader => &pipe.listed_for_reader,
            Role::Writer => &pipe.listed_for_writer,
        }
    }

    /// Lists `pipe` at the end, unless it is listed already.
    pub(crate) fn enlist(&self, pipe: &Arc<Pipe>) {
        if !self.flag(pipe).swap(true, Ordering::AcqRel) {
            self.lock().push_back(pipe.clone());
        }
    }

    /// Takes the first listed pipe out. Its flag is cleared *before* the caller looks at the
    /// pipe, so a transition the caller does not see re-lists it.
    pub(crate) fn next(&self) -> Option<Arc<Pipe>> {
        let pipe = self.lock().pop_front()?;
        self.flag(&pipe).store(false, Ordering::Release);
        Some(pipe)
    }

    /// Whether any listed pipe satisfies `test`, looking from the front (in practice the
    /// first one does: a pipe stays listed only while it qualifies).
    /// Puts a pipe just taken by [`ReadyQueue::next`] back at the front: it keeps its turn.
    pub(crate) fn put_back(&self, pipe: Arc<Pipe>) {
        if !self.flag(&pipe).swap(true, Ordering::AcqRel) {
            self.lock().push_front(pipe);
        }
    }

    pub(crate) fn any(&self, test: impl Fn(&Pipe) -> bool) -> bool {
        self.lock().iter().any(|p| test(p))
    }

    /// Sums `measure` over the listed pipes, stopping once `cap` is reached.
    pub(crate) fn sum(&self, cap: usize, measure: impl Fn(&Pipe) -> usize) -> usize {
        let mut total = 0usize;
        for p in self.lock().iter() {
            total = total.saturating_add(measure(p));
            if total >= cap {
                return cap;
            }
        }
        total
    }

    /// Forgets a pipe that left the socket (its flag stays set, so it is never re-listed).
    pub(crate) fn remove(&self, pipe: &Arc<Pipe>) {
        self.lock().retain(|p| !Arc::ptr_eq(p, pipe));
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

/// A socket's end of a pipe: a signal from the far end lists the pipe in the socket's ready
/// queue, then wakes the socket's callers.
pub(crate) struct SocketEnd {
    pub(crate) readiness: Arc<Readiness>,
    pub(crate) bit: u32,
    pub(crate) queue: Arc<ReadyQueue>,
    /// The socket itself, so that a PUSH takes back what a departed reader never read the
    /// moment it leaves: waiting for the next send would strand those messages for good
    /// when no send comes (an inproc PULL closed and replaced while the PUSH is quiet).
    /// Weak: a pipe must not keep its socket alive.
    pub(crate) owner: Weak<Inner>,
}

impl Wake for SocketEnd {
    fn wake(&self, pipe: &Arc<Pipe>) {
        if self.bit == WRITABLE && pipe.reader_closed() {
            if let Some(socket) = self.owner.upgrade() {
                // Called with no lock held (pipes signal after releasing theirs), so the
                // socket may take its own locks here.
                socket.release_pipe(pipe);
                return;
            }
        }
        self.queue.enlist(pipe);
        self.readiness.wake(self.bit);
    }
}

/// PULL: takes up to `max` messages and about `max_bytes` of payload in frames shorter than
/// `large` (at least one message), one message per ready pipe in turn. A finished pipe met
/// on the way (its writer gone, nothing left) is handed to `finished`.
pub(crate) fn fair_queue(
    ready: &ReadyQueue,
    out: &mut Vec<Message>,
    max: usize,
    max_bytes: usize,
    large: usize,
    mut finished: impl FnMut(Arc<Pipe>),
) -> usize {
    let mut taken = 0;
    let mut bytes = 0usize;
    while taken < max && bytes < max_bytes {
        let Some(pipe) = ready.next() else { break };
        match pipe.try_pop() {
            Some((msg, now_empty)) => {
                bytes = bytes.saturating_add(msg.bytes_below(large));
                out.push(msg);
                taken += 1;
                if !now_empty {
                    ready.enlist(&pipe);
                }
            }
            // Empty: its next message re-lists it. Finished: it never will.
            None => {
                if pipe.is_finished() {
                    finished(pipe);
                }
            }
        }
    }
    taken
}

/// PUSH: queues `msg` on the next ready pipe, which goes to the back of the queue while it
/// has room left. A pipe whose reader is gone is handed to `closed` (the message moves on to
/// the next pipe). Hands the message back when no pipe has room.
pub(crate) fn round_robin(
    ready: &ReadyQueue,
    msg: Message,
    mut closed: impl FnMut(Arc<Pipe>),
) -> Result<(), Message> {
    let mut msg = msg;
    // Each pass takes one pipe out of the queue for good unless it accepts the message, so
    // this ends within as many passes as there are listed pipes.
    loop {
        let Some(pipe) = ready.next() else {
            return Err(msg);
        };
        match pipe.try_push(msg) {
            Ok(now_full) => {
                if !now_full {
                    ready.enlist(&pipe);
                }
                return Ok(());
            }
            // Full: the reader making room re-lists it.
            Err(PushError::Full(m)) => msg = m,
            Err(PushError::Closed(m)) => {
                closed(pipe);
                msg = m;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Nothing;
    impl Wake for Nothing {
        fn wake(&self, _pipe: &Arc<Pipe>) {}
    }

    fn end(queue: &Arc<ReadyQueue>, bit: u32) -> Arc<SocketEnd> {
        Arc::new(SocketEnd {
            readiness: Arc::new(Readiness::new()),
            bit,
            queue: queue.clone(),
            owner: Weak::new(),
        })
    }

    fn msg(s: &'static str) -> Message {
        Message::from([s.as_bytes()])
    }

    #[test]
    fn a_pipe_is_listed_once_however_often_it_signals() {
        let q = Arc::new(ReadyQueue::new(Role::Reader));
        let p = Pipe::new(0, end(&q, 1), Arc::new(Nothing));
        p.try_push(msg("a")).unwrap();
        p.close_writer();
        q.enlist(&p);
        assert!(q.next().is_some());
        assert!(q.next().is_none(), "listed once");
    }

    #[test]
    fn fair_queue_takes_one_message_per_peer_in_turn() {
        let q = Arc::new(ReadyQueue::new(Role::Reader));
        let a = Pipe::new(0, end(&q, 1), Arc::new(Nothing));
        let b = Pipe::new(0, end(&q, 1), Arc::new(Nothing));
        for s in ["a1", "a2", "a3"] {
            a.try_push(msg(s)).unwrap();
        }
        b.try_push(msg("b1")).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            fair_queue(&q, &mut out, 10, usize::MAX, usize::MAX, |_| {}),
            4
        );
        assert_eq!(out, vec![msg("a1"), msg("b1"), msg("a2"), msg("a3")]);
        assert!(q.next().is_none(), "drained pipes are no longer listed");
        a.try_push(msg("a4")).unwrap();
        assert_eq!(
            fair_queue(&q, &mut out, 10, usize::MAX, usize::MAX, |_| {}),
            1,
            "the next message re-lists its pipe"
        );
    }

    #[test]
    fn idle_peers_cost_nothing_per_message() {
        // 5 000 idle pipes that were never listed, and one busy one: each message looks at
        // the busy pipe alone.
        let q = Arc::new(ReadyQueue::new(Role::Reader));
        let looked = Arc::new(AtomicUsize::new(0));
        let _idle: Vec<_> = (0..5000)
            .map(|_| Pipe::new(0, end(&q, 1), Arc::new(Nothing)))
            .collect();
        let busy = Pipe::new(0, end(&q, 1), Arc::new(Nothing));
        for _ in 0..100 {
            busy.try_push(msg("x")).unwrap();
        }
        let mut out = Vec::new();
        let finished = |_p: Arc<Pipe>| {
            looked.fetch_add(1, Ordering::Relaxed);
        };
        assert_eq!(
            fair_queue(&q, &mut out, 1000, usize::MAX, usize::MAX, finished),
            100
        );
        assert_eq!(looked.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn round_robin_skips_full_pipes_until_they_have_room_again() {
        let q = Arc::new(ReadyQueue::new(Role::Writer));
        let a = Pipe::new(1, Arc::new(Nothing), end(&q, 2));
        let b = Pipe::new(1, Arc::new(Nothing), end(&q, 2));
        q.enlist(&a);
        q.enlist(&b);
        round_robin(&q, msg("1"), |_| {}).unwrap();
        round_robin(&q, msg("2"), |_| {}).unwrap();
        assert!(round_robin(&q, msg("3"), |_| {}).is_err(), "both full");
        assert_eq!(a.len() + b.len(), 2);
        a.try_pop().unwrap();
        round_robin(&q, msg("3"), |_| {}).expect("a made room and was re-listed");
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn round_robin_hands_a_pipe_with_a_closed_reader_over_and_moves_on() {
        let q = Arc::new(ReadyQueue::new(Role::Writer));
        let dead = Pipe::new(10, Arc::new(Nothing), end(&q, 2));
        let live = Pipe::new(10, Arc::new(Nothing), end(&q, 2));
        q.enlist(&dead);
        q.enlist(&live);
        dead.close_reader();
        let mut released = 0;
        round_robin(&q, msg("x"), |_| released += 1).unwrap();
        assert_eq!(released, 1);
        assert_eq!(live.len(), 1);
    }
}
