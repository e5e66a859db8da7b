//! A PUSH connection's write side, shared by its connection task and the sending thread.
//!
//! A message handed to `send()` usually travels: the caller copies it (its buffer may be
//! reused or detached the moment `send()` returns), queues it on the peer's pipe, wakes the
//! connection task, which writes it. For a large message the copy and the hop cost more
//! than the write itself: at 64 KiB over tcp loopback the copy was 8% of the process's CPU,
//! and made the kernel's own copy out of it 3× dearer, as it read memory last written on
//! the other core (perf, 40 000 messages, at 787b12b). libzmq avoids both by referencing
//! the caller's buffer, which is what made JS buffers unsafe to reuse in zeromq.js.
//!
//! So when nothing is queued ahead of it and the task is idle, the sending thread writes
//! the message itself, straight from the caller's memory, with one non-blocking `writev`:
//! the kernel copies what it takes before the call returns, and only a remainder it did
//! not take is copied, to be finished by the task. Order is kept by one rule: whoever
//! writes holds the turn. The task takes it ([`Outlet::claim`]) before it looks at the
//! pipe and keeps it until the pipe is empty and everything is written; the sending thread
//! writes only while the task does not hold it, the pipe is empty, and no remainder waits.
//!
//! Only NULL-mechanism connections have an outlet: a CURVE message is sealed by the task's
//! own session state.

use std::io::IoSlice;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::codec;
use crate::heartbeat::Liveness;
use crate::transport::WriteHalf;

/// Frames per message written in one `writev` by the sending thread (a header and a body
/// each); a message with more goes through the pipe.
const MAX_FRAMES: usize = 32;

/// Whose turn it is to write, and what the sending thread left unwritten.
struct Turn {
    /// The connection task is writing, or may be about to (it looks at the pipe only
    /// while it holds this).
    task: bool,
    /// The tail of a message the kernel did not take all of: written by the task before
    /// anything else.
    rest: Option<Bytes>,
    /// The connection ended: nobody writes through it any more.
    closed: bool,
}

pub(crate) struct Outlet {
    wr: WriteHalf,
    turn: Mutex<Turn>,
    /// Wakes the connection task: a remainder to write.
    task: Arc<Notify>,
    /// Writes count as traffic for the heartbeat's backlog check (see `heartbeat.rs`).
    live: Arc<Liveness>,
}

/// What [`Outlet::write_now`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteNow {
    /// The message is the kernel's, or partly so with the rest left to the task: accepted.
    /// `true` when a rest was left (it counts as in flight on the pipe).
    Written { rest: bool },
    /// Nothing was written: queue the message as usual.
    NotNow,
}

impl Outlet {
    pub(crate) fn new(wr: WriteHalf, task: Arc<Notify>, live: Arc<Liveness>) -> Outlet {
        Outlet {
            wr,
            // The task owns the turn until it first goes idle.
            turn: Mutex::new(Turn {
                task: true,
                rest: None,
                closed: false,
            }),
            task,
            live,
        }
    }

    fn turn(&self) -> MutexGuard<'_, Turn> {
        // Each critical section leaves the fields consistent: a poisoned lock is usable.
        self.turn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection task's write half.
    pub(crate) fn half(&self) -> &WriteHalf {
        &self.wr
    }

    /// The task takes the turn, and with it whatever the sending thread left unwritten.
    pub(crate) fn claim(&self) -> Option<Bytes> {
        let mut turn = self.turn();
        turn.task = true;
        turn.rest.take()
    }

    /// The task has written everything and found the pipe empty: the sending thread may
    /// write until the task claims the turn again.
    pub(crate) fn idle(&self) {
        self.turn().task = false;
    }

    /// The connection ended: once this returns no write is under way and none starts.
    pub(crate) fn close(&self) {
        let mut turn = self.turn();
        turn.closed = true;
        turn.rest = None;
    }

    /// Writes a whole message from the caller's memory if it is the sending thread's turn
    /// and the kernel takes at least part of it. `queue_empty` is asked while the turn is
    /// held, so the task cannot be taking from the pipe meanwhile; `in_flight` is called
    /// (under the turn) when a remainder is left, for linger to wait for it.
    pub(crate) fn write_now(
        &self,
        frames: &[&[u8]],
        queue_empty: impl FnOnce() -> bool,
        in_flight: impl FnOnce(),
    ) -> WriteNow {
        if frames.is_empty() || frames.len() > MAX_FRAMES {
            return WriteNow::NotNow;
        }
        let mut turn = self.turn();
        if turn.task || turn.closed || turn.rest.is_some() || !queue_empty() {
            return WriteNow::NotNow;
        }
        let mut headers = BytesMut::with_capacity(frames.len() * codec::MAX_HEADER_LEN);
        let mut ends = [0usize; MAX_FRAMES];
        let last = frames.len() - 1;
        for (i, f) in frames.iter().enumerate() {
            codec::encode_frame_header(i != last, f.len(), &mut headers);
            ends[i] = headers.len();
        }
        let mut slices = [IoSlice::new(&[]); 2 * MAX_FRAMES];
        let mut start = 0;
        for (i, f) in frames.iter().enumerate() {
            slices[2 * i] = IoSlice::new(&headers[start..ends[i]]);
            slices[2 * i + 1] = IoSlice::new(f);
            start = ends[i];
        }
        let slices = &slices[..2 * frames.len()];
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let n = match self.wr.try_write_vectored(slices) {
            Ok(n) if n > 0 => n,
            // Full (or a broken connection, which the task is about to find): the pipe
            // keeps the message as it would have anyway.
            Ok(_) | Err(_) => return WriteNow::NotNow,
        };
        #[cfg(feature = "stage-trace")]
        crate::trace::record_write();
        self.live.wrote(n);
        if n == total {
            return WriteNow::Written { rest: false };
        }
        turn.rest = Some(tail(slices, n));
        in_flight();
        drop(turn);
        self.task.notify_one();
        WriteNow::Written { rest: true }
    }
}

/// The bytes of `slices` after the first `skip`, copied.
fn tail(slices: &[IoSlice<'_>], skip: usize) -> Bytes {
    let total: usize = slices.iter().map(|s| s.len()).sum();
    let mut out = BytesMut::with_capacity(total.saturating_sub(skip));
    let mut skip = skip;
    for s in slices {
        if skip >= s.len() {
            skip -= s.len();
            continue;
        }
        out.extend_from_slice(&s[skip..]);
        skip = 0;
    }
    out.freeze()
}

impl std::fmt::Debug for Outlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outlet").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::SocketOptions;
    use crate::transport::Stream;
    use tokio::io::AsyncReadExt;

    #[cfg(unix)]
    #[tokio::test]
    async fn the_sending_thread_writes_only_in_its_turn_and_never_past_a_waiting_rest() {
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let (_rd, wr) = Stream::Unix(ours).into_split();
        let task = Arc::new(Notify::new());
        let live = Arc::new(Liveness::new(&SocketOptions::default(), true));
        let outlet = Outlet::new(wr, task.clone(), live);
        let mut in_flight = 0;
        let yes = || true;

        // The task holds the turn until it first goes idle.
        assert_eq!(
            outlet.write_now(&[b"a"], yes, || in_flight += 1),
            WriteNow::NotNow
        );
        outlet.idle();
        // Not past messages still queued.
        assert_eq!(
            outlet.write_now(&[b"a"], || false, || in_flight += 1),
            WriteNow::NotNow
        );
        assert_eq!(
            outlet.write_now(&[b"ab", b""], yes, || in_flight += 1),
            WriteNow::Written { rest: false }
        );
        let mut theirs = theirs;
        let mut got = [0u8; 6];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(
            got,
            [1, 2, b'a', b'b', 0, 0],
            "two frames, MORE on the first"
        );

        // Claimed: the task may be writing.
        assert_eq!(outlet.claim(), None);
        assert_eq!(
            outlet.write_now(&[b"a"], yes, || in_flight += 1),
            WriteNow::NotNow
        );
        outlet.idle();

        // More than the socket holds: the rest is left to the task, counted in flight,
        // and nothing else is written until the task has taken it.
        let big = vec![7u8; 8 << 20];
        assert_eq!(
            outlet.write_now(&[&big], yes, || in_flight += 1),
            WriteNow::Written { rest: true }
        );
        assert_eq!(in_flight, 1);
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            theirs.read_to_end(&mut all).await.unwrap();
            all
        });
        // The peer reads, so the kernel has room again: still not the sending thread's turn.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(
            outlet.write_now(&[b"a"], yes, || in_flight += 1),
            WriteNow::NotNow
        );
        let rest = outlet.claim().expect("the rest waits for the task");
        let mut rest = rest;
        crate::connection::tests_write_all(outlet.half(), &mut rest).await;
        outlet.close();
        drop(outlet);
        let all = reader.await.unwrap();
        assert_eq!(
            all.len(),
            codec::MAX_HEADER_LEN + big.len(),
            "header and body, once"
        );
        assert!(all[codec::MAX_HEADER_LEN..].iter().all(|&b| b == 7));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn nothing_is_written_after_close() {
        let (ours, _theirs) = tokio::net::UnixStream::pair().unwrap();
        let (_rd, wr) = Stream::Unix(ours).into_split();
        let live = Arc::new(Liveness::new(&SocketOptions::default(), true));
        let outlet = Outlet::new(wr, Arc::new(Notify::new()), live);
        outlet.idle();
        outlet.close();
        assert_eq!(outlet.write_now(&[b"a"], || true, || {}), WriteNow::NotNow);
    }

    #[test]
    fn tail_skips_whole_and_partial_slices() {
        let a = [1u8, 2, 3];
        let b = [4u8, 5];
        let c = [6u8, 7, 8, 9];
        let s = [IoSlice::new(&a), IoSlice::new(&b), IoSlice::new(&c)];
        assert_eq!(&tail(&s, 0)[..], &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(&tail(&s, 4)[..], &[5, 6, 7, 8, 9]);
        assert_eq!(&tail(&s, 5)[..], &[6, 7, 8, 9]);
        assert_eq!(&tail(&s, 9)[..], &[] as &[u8]);
    }
}
