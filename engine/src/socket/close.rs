//! Closing a socket: stop new work, let a PUSH linger until what it queued is on the wire
//! (or `linger` runs out), then stop every connection and release every pipe.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::readiness::{CLOSED, EVENTS, READABLE, WRITABLE};
use super::{lock, Inner};
use crate::events::EventKind;
use crate::handshake::SocketType;
use crate::inproc;

/// How often a lingering close looks again without a pipe transition to wake it: the
/// last bytes leaving a kernel buffer, or a peer vanishing, cross no transition.
const LINGER_RECHECK: Duration = Duration::from_millis(50);

impl Inner {
    pub(super) fn close_now(&self) {
        self.begin_close();
        self.finish_close();
    }

    pub(super) async fn close(self: &Arc<Self>) {
        if !self.begin_close() {
            // Someone else is closing: wait for them.
            loop {
                let done = self.close_done.notified();
                tokio::pin!(done);
                done.as_mut().enable();
                if self.close_finished.load(Ordering::Acquire) {
                    return;
                }
                done.await;
            }
        }
        // begin_close stopped the accept loops; wait for their listeners to be gone.
        let accepts: Vec<_> = lock(&self.endpoints)
            .binds
            .iter_mut()
            .filter_map(|b| b.task.take())
            .collect();
        for task in accepts {
            // A panicked accept loop has nothing left to release.
            let _ = task.await;
        }
        if self.kind == SocketType::Push {
            self.linger().await;
        }
        self.finish_close();
    }

    /// Stops new work: no sends, no binds, no new connections accepted. Returns false if
    /// close had already begun.
    fn begin_close(&self) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        for b in &lock(&self.endpoints).binds {
            b.trigger.fire();
        }
        inproc::socket_closing(self);
        self.readiness.wake(READABLE | WRITABLE | EVENTS | CLOSED);
        true
    }

    /// Messages queued or in flight towards peers that could still take them.
    pub(super) fn unsent(&self) -> usize {
        if self.kind != SocketType::Push {
            return 0;
        }
        let orphans_count = self.orphans_can_leave();
        let pipes = lock(&self.pipes);
        let queued: usize = pipes.list.iter().map(|p| p.unflushed()).sum();
        queued
            + if orphans_count {
                pipes.orphans.len()
            } else {
                0
            }
    }

    /// Waits until every tcp/ipc pipe is flushed to the wire, or `linger` passes.
    async fn linger(&self) {
        let deadline = match self.options().linger {
            0 => return,
            l if l < 0 => None,
            l => Some(Instant::now() + Duration::from_millis(l as u64)),
        };
        loop {
            let notified = self.readiness.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.unsent() == 0 {
                return;
            }
            let recheck = tokio::time::sleep(LINGER_RECHECK);
            let out_of_time = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = notified => {}
                _ = recheck => {}
                _ = out_of_time => return,
            }
        }
    }

    fn finish_close(&self) {
        self.conn_trigger.fire();
        let connects = std::mem::take(&mut lock(&self.endpoints).connects);
        for c in connects {
            c.trigger.fire();
            if let Some(p) = c.pipe {
                match self.kind {
                    SocketType::Push => p.close_writer(),
                    SocketType::Pull => p.close_reader(),
                }
            }
        }
        let pipes = std::mem::take(&mut lock(&self.pipes).list);
        for p in pipes {
            match self.kind {
                SocketType::Push => p.close_writer(),
                SocketType::Pull => p.close_reader(),
            }
        }
        self.ready.clear();
        lock(&self.endpoints).binds.clear();
        if !self.close_finished.swap(true, Ordering::AcqRel) {
            self.event(EventKind::End, "", None, None);
        }
        self.close_done.notify_waiters();
        self.readiness.wake(READABLE | WRITABLE | EVENTS | CLOSED);
    }
}
