//! The socket's set of pipes, one per peer: how a pipe joins (with whatever was waiting for
//! a peer), how it leaves (a PUSH's unwritten messages go to the other peers), and the
//! orphans that wait while no peer exists.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::Notify;

use super::{lock, Inner};
use crate::handshake::SocketType;
use crate::message::Message;
use crate::options::SocketOptions;
use crate::pipe::Pipe;
use crate::ready_queue::SocketEnd;
use crate::socket::readiness::{READABLE, WRITABLE};

#[derive(Default)]
pub(super) struct Pipes {
    /// Every attached pipe (ready or idle): what close, linger and redistribution walk.
    pub(super) list: Vec<Arc<Pipe>>,
    /// Where the next forced message goes (see [`Pipes::force_one`]).
    cursor: usize,
    /// Messages accepted for a peer that left before they were written, kept until a peer
    /// exists again so that no accepted message is dropped.
    pub(super) orphans: VecDeque<Message>,
}

impl Pipes {
    pub(super) fn has_orphans(&self) -> bool {
        !self.orphans.is_empty()
    }

    /// Queues an accepted message past the high-water mark on the next pipe in turn, or as
    /// an orphan when there is no peer (or orphans wait already: order is kept).
    pub(super) fn force_one(&mut self, msg: Message) {
        let n = self.list.len();
        if n == 0 || self.has_orphans() {
            self.orphans.push_back(msg);
            return;
        }
        let idx = self.cursor % n;
        self.cursor = idx + 1;
        self.list[idx].force_push(std::iter::once(msg));
    }
}

impl Inner {
    /// The socket's end of a new pipe: a signal from the far end lists the pipe as ready.
    pub(crate) fn side(self: &Arc<Self>) -> Arc<SocketEnd> {
        let bit = match self.kind {
            SocketType::Push => WRITABLE,
            SocketType::Pull => READABLE,
        };
        Arc::new(SocketEnd {
            readiness: self.readiness.clone(),
            bit,
            queue: self.ready.clone(),
            owner: Arc::downgrade(self),
        })
    }

    /// A pipe between this socket and a connection task that waits on `conn`.
    pub(crate) fn new_pipe(self: &Arc<Self>, opts: &SocketOptions, conn: Arc<Notify>) -> Arc<Pipe> {
        match self.kind {
            SocketType::Push => Pipe::new(opts.send_high_water_mark as usize, conn, self.side()),
            SocketType::Pull => Pipe::new(opts.receive_high_water_mark as usize, self.side(), conn),
        }
    }

    /// Adds a pipe to the round-robin / fair-queue set. Orphaned messages move into it.
    pub(crate) fn attach(&self, pipe: Arc<Pipe>) {
        {
            let mut pipes = lock(&self.pipes);
            if !pipes.orphans.is_empty() {
                pipe.force_push(pipes.orphans.drain(..));
            }
            pipes.list.push(pipe.clone());
        }
        // Listed whatever its state: the socket's next look takes it out again if it has
        // nothing to offer, and from then on its transitions list it.
        self.ready.enlist(&pipe);
        self.readiness.wake(match self.kind {
            SocketType::Push => WRITABLE,
            SocketType::Pull => READABLE,
        });
    }

    /// The far end of `pipe` is gone for good. For PUSH the messages it never wrote go to
    /// the other peers (or wait for the next one); for PULL what was received stays
    /// readable and the pipe is dropped once drained.
    pub(crate) fn release_pipe(&self, pipe: &Arc<Pipe>) {
        match self.kind {
            SocketType::Push => {
                if !pipe.mark_detached() {
                    return;
                }
                pipe.close_reader();
                let leftover = pipe.take_all();
                self.ready.remove(pipe);
                let mut pipes = lock(&self.pipes);
                pipes.list.retain(|p| !Arc::ptr_eq(p, pipe));
                for m in leftover {
                    pipes.force_one(m);
                }
            }
            SocketType::Pull => {
                pipe.close_writer();
                if pipe.is_empty() {
                    self.forget_finished(pipe);
                }
            }
        }
    }

    /// A PULL's pipe whose writer is gone and whose messages were all taken leaves the set.
    pub(super) fn forget_finished(&self, pipe: &Arc<Pipe>) {
        if pipe.mark_detached() {
            self.ready.remove(pipe);
            lock(&self.pipes).list.retain(|p| !Arc::ptr_eq(p, pipe));
        }
    }

    /// This socket leaves an inproc pipe (disconnect), whose far end is another socket:
    /// it closes its own end so that the peer sees it gone. A PUSH's queued messages stay
    /// for the PULL (the pipe is its receive queue); a PULL's unread ones go back to the
    /// PUSH at its next send (see `round_robin`). The pipe's `detached` flag is left to the
    /// peer, which still has to take the pipe out of its own set.
    pub(super) fn leave_inproc_pipe(&self, pipe: &Arc<Pipe>) {
        match self.kind {
            SocketType::Push => pipe.close_writer(),
            SocketType::Pull => pipe.close_reader(),
        }
        self.ready.remove(pipe);
        lock(&self.pipes).list.retain(|p| !Arc::ptr_eq(p, pipe));
    }
}
