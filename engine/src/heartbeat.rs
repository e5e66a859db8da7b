//! What a connection knows of its peer's liveness, shared by its reader and writer, and the
//! rules for judging silence (ZMTP 3.1 heartbeats: `heartbeatInterval`, `heartbeatTimeout`,
//! and the TTL a peer announces in its PINGs).
//!
//! Where this goes further than libzmq: silence is judged only on what we could have heard.
//! - While the reader waits for room in the pipe (the application is not receiving), it
//!   reads nothing on purpose: that time is not silence, and the clock starts afresh when
//!   it reads again. libzmq drops such a paused consumer, with what it had buffered.
//! - A peer that is taking a backlog we sent it is not silent. A busy PUSH's PING waits
//!   behind megabytes of data, so its PONG can come long after the timeout while the peer
//!   is reading steadily all along: when the deadline comes with bytes still queued
//!   towards the peer, and the peer has taken some since the last look (acknowledged, for
//!   TCP; read, for ipc), that counts as hearing from it. A peer whose application hangs
//!   stops taking once its receive buffer is full, and is judged from then on; with no
//!   backlog (only PINGs), only what it sends counts, as in libzmq. Likewise a write that
//!   had to wait for the kernel's buffer to drain, then went through.
//! - Before a deadline passes judgement, the reader takes whatever the kernel already
//!   holds (after a stall of our own I/O thread, the peer's bytes are there unread).
//! - With no heartbeat in force there is no timer at all.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::options::SocketOptions;

/// Bounds on how often a paused reader's connection PINGs a peer that runs heartbeats.
const KEEPALIVE_MIN_MS: u64 = 50;
const KEEPALIVE_MAX_MS: u64 = 1000;

pub(crate) struct Liveness {
    start: Instant,
    /// Milliseconds since `start` when we last heard from the peer.
    last_heard: AtomicU64,
    /// Our own limit: heartbeat interval plus timeout, ms (0 = no heartbeats of ours).
    ours: u64,
    /// The TTL the peer asked for in its last PING, ms (0 = none).
    peer_ttl: AtomicU64,
    /// When the peer's last PING arrived (ms since `start`, 0 = never) and the gap before
    /// it: how often the peer expects to hear from us.
    peer_ping_at: AtomicU64,
    peer_ping_gap: AtomicU64,
    /// The reader is waiting for room in the pipe, reading nothing on purpose.
    paused: AtomicBool,
    /// Wakes the writer when `paused` changes, so it can keep a heartbeating peer informed.
    pub(crate) pause_changed: Notify,
    /// Bytes written to the socket so far, and how many of them the peer had taken at the
    /// last look (see [`Liveness::taking_backlog`]).
    written: AtomicU64,
    taken: AtomicU64,
    /// What was still queued towards the peer at the last look.
    unacked: AtomicU64,
}

/// A backlog is only evidence of life while the peer is the bottleneck: this much stays
/// queued towards it from one look to the next. Below that, the bytes it "took" may only
/// have gone into its kernel's receive buffer, which a hung process (or a partition's far
/// side that still ACKs, like a stalled proxy) keeps accepting until it is full; a peer
/// working through megabytes behind its PONG keeps far more than this queued.
pub(crate) const BACKLOG_MIN: u64 = 64 * 1024;

impl Liveness {
    /// `pings`: whether the peer speaks ZMTP 3.1 (PING/PONG); without, no heartbeat of ours.
    pub(crate) fn new(opts: &SocketOptions, pings: bool) -> Self {
        let ours = if opts.heartbeat_interval > 0 && pings {
            let timeout = if opts.heartbeat_timeout > 0 {
                opts.heartbeat_timeout
            } else {
                opts.heartbeat_interval
            };
            opts.heartbeat_interval as u64 + timeout as u64
        } else {
            0
        };
        Liveness {
            start: Instant::now(),
            last_heard: AtomicU64::new(0),
            ours,
            peer_ttl: AtomicU64::new(0),
            peer_ping_at: AtomicU64::new(0),
            peer_ping_gap: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            pause_changed: Notify::new(),
            written: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            unacked: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        // Counted from 1, so that 0 can mean "never".
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// Something came from the peer, or the peer visibly drained what we wrote.
    pub(crate) fn heard(&self) {
        self.last_heard.store(self.now_ms(), Ordering::Relaxed);
    }

    pub(crate) fn silent_for(&self) -> u64 {
        self.now_ms()
            .saturating_sub(self.last_heard.load(Ordering::Relaxed))
    }

    /// The peer PINGed us asking to be dropped after `ttl_ms` of silence (0 = no TTL).
    pub(crate) fn pinged(&self, ttl_ms: u64) {
        self.peer_ttl.store(ttl_ms, Ordering::Relaxed);
        let now = self.now_ms();
        let before = self.peer_ping_at.swap(now, Ordering::Relaxed);
        if before != 0 {
            self.peer_ping_gap.store(now - before, Ordering::Relaxed);
        }
    }

    /// The longest silence allowed now, ms; `None` when no heartbeat is in force.
    pub(crate) fn limit(&self) -> Option<u64> {
        let ttl = self.peer_ttl.load(Ordering::Relaxed);
        match (self.ours, ttl) {
            (0, 0) => None,
            (a, 0) => Some(a),
            (0, t) => Some(t),
            (a, t) => Some(a.min(t)),
        }
    }

    /// When silence would end the connection, if nothing is heard before; `None` while the
    /// reader is paused or no heartbeat is in force.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.paused.load(Ordering::Relaxed) {
            return None;
        }
        let limit = self.limit()?;
        let at = self
            .last_heard
            .load(Ordering::Relaxed)
            .saturating_add(limit);
        Some(self.start + Duration::from_millis(at))
    }

    /// `n` more bytes went to the socket.
    pub(crate) fn wrote(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Whether the peer is working through a backlog we sent it: at least [`BACKLOG_MIN`]
    /// bytes were queued towards it (`unacked`, from the socket) at the last look and are
    /// now, and it has taken some since.
    pub(crate) fn taking_backlog(&self, unacked: Option<u64>) -> bool {
        let Some(unacked) = unacked else { return false };
        let taken = self.written.load(Ordering::Relaxed).saturating_sub(unacked);
        let before = self.taken.swap(taken, Ordering::Relaxed);
        let queued_before = self.unacked.swap(unacked, Ordering::Relaxed);
        queued_before >= BACKLOG_MIN && unacked >= BACKLOG_MIN && taken > before
    }

    pub(crate) fn expired(&self) -> bool {
        match self.limit() {
            Some(limit) => !self.paused.load(Ordering::Relaxed) && self.silent_for() >= limit,
            None => false,
        }
    }

    pub(crate) fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
        self.pause_changed.notify_one();
    }

    /// Reading again: the silence clock restarts now.
    pub(crate) fn resume(&self) {
        self.heard();
        self.paused.store(false, Ordering::Relaxed);
        self.pause_changed.notify_one();
    }

    /// While the reader is paused, how often to PING a peer that runs heartbeats of its own
    /// (we cannot read its PINGs to answer them, so it hears from us this way instead);
    /// `None` when not paused or the peer never PINGed.
    pub(crate) fn keepalive_period(&self) -> Option<Duration> {
        if !self.paused.load(Ordering::Relaxed) || self.peer_ping_at.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let gap = match self.peer_ping_gap.load(Ordering::Relaxed) {
            0 => match self.peer_ttl.load(Ordering::Relaxed) {
                0 => KEEPALIVE_MAX_MS,
                ttl => ttl / 3,
            },
            g => g,
        };
        Some(Duration::from_millis(
            gap.clamp(KEEPALIVE_MIN_MS, KEEPALIVE_MAX_MS),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Liveness {
        fn new_for_test(opts: &SocketOptions) -> Self {
            Liveness::new(opts, true)
        }
    }

    fn opts(interval: i32, timeout: i32) -> SocketOptions {
        SocketOptions {
            heartbeat_interval: interval,
            heartbeat_timeout: timeout,
            ..SocketOptions::default()
        }
    }

    #[test]
    fn no_heartbeat_means_no_deadline() {
        let live = Liveness::new_for_test(&opts(0, 0));
        assert_eq!(live.deadline(), None);
        assert!(!live.expired());
    }

    #[test]
    fn the_limit_is_interval_plus_timeout_or_the_peers_ttl_if_lower() {
        let live = Liveness::new_for_test(&opts(100, 400));
        assert_eq!(live.limit(), Some(500));
        live.pinged(300);
        assert_eq!(live.limit(), Some(300));
        let ttl_only = Liveness::new_for_test(&opts(0, 0));
        ttl_only.pinged(2000);
        assert_eq!(ttl_only.limit(), Some(2000));
    }

    #[tokio::test(start_paused = true)]
    async fn time_spent_paused_is_not_silence() {
        let live = Liveness::new_for_test(&opts(100, 100));
        live.heard();
        live.pause();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!live.expired(), "paused");
        assert_eq!(live.deadline(), None);
        live.resume();
        assert!(!live.expired(), "the clock restarts on resume");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(live.expired());
    }

    #[test]
    fn a_peer_taking_a_backlog_is_heard_and_one_with_none_left_is_not() {
        let live = Liveness::new_for_test(&opts(100, 100));
        let m = BACKLOG_MIN;
        live.wrote((10 * m) as usize);
        assert!(!live.taking_backlog(None), "the platform cannot tell");
        assert!(
            !live.taking_backlog(Some(9 * m)),
            "a first look has nothing to compare"
        );
        assert!(
            live.taking_backlog(Some(6 * m)),
            "took 3 more, 6 still queued"
        );
        assert!(!live.taking_backlog(Some(6 * m)), "took nothing more since");
        live.wrote(3);
        assert!(
            !live.taking_backlog(Some(0)),
            "took everything: no backlog, only PONGs count"
        );
        // A hung peer's kernel still ACKs what fits its receive buffer: with little queued,
        // taking bytes is no sign that the peer's process reads them.
        live.wrote(1000);
        assert!(!live.taking_backlog(Some(10)));
        live.wrote(1000);
        assert!(!live.taking_backlog(Some(20)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_reader_pings_a_heartbeating_peer_at_its_own_pace() {
        let live = Liveness::new_for_test(&opts(0, 0));
        live.pause();
        assert_eq!(
            live.keepalive_period(),
            None,
            "the peer never pinged: nobody is waiting to hear"
        );
        live.pinged(0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        live.pinged(0);
        assert_eq!(live.keepalive_period(), Some(Duration::from_millis(200)));
        live.resume();
        assert_eq!(live.keepalive_period(), None);
    }
}
