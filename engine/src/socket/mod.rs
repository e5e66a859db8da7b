//! The PUSH/PULL socket: its public API, and the shared state its tasks work on.
//!
//! A socket owns a set of pipes, one per peer ([`pipes`]). PUSH round-robins whole
//! messages over the pipes that have room (a full or stalled peer is skipped); PULL
//! fair-queues, taking one message per pipe in turn; both only ever look at the pipes in
//! their ready queue ([`crate::ready_queue`]). Connection tasks ([`crate::connection`]) and
//! inproc peers ([`crate::inproc`]) sit at the far end of the pipes. Endpoints and the
//! accept loop are in [`endpoints`], close and linger in [`close`], readiness in
//! [`readiness`].
//!
//! Callers either await ([`Socket::send`], [`Socket::recv`]) or use the non-blocking
//! [`Socket::try_send`] / [`Socket::try_recv_batch`] together with [`Socket::arm`] and a
//! waker callback: the Node binding uses the latter so that a message costs one synchronous
//! call, not a promise.

mod close;
mod endpoints;
mod pipes;
pub mod readiness;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::curve::{Authenticator, Curve, CurveOptions};
use crate::error::{Code, Error, Result};
use crate::events::{Event, EventKind, EventQueue};
use crate::handshake::SocketType;
use crate::message::Message;
use crate::options::{millis, SocketOptions};
use crate::pipe::{Pipe, PushError};
use crate::ready_queue::{fair_queue, round_robin, ReadyQueue, Role};
use crate::shutdown::{Shutdown, ShutdownTrigger};

use self::endpoints::Endpoints;
use self::pipes::Pipes;
use self::readiness::Readiness;
pub use self::readiness::{Waker, CLOSED, EVENTS, PEERS, READABLE, WRITABLE};

/// Why [`Socket::try_send`] did not queue the message.
#[derive(Debug)]
pub enum TrySendError {
    /// Every pipe is full, or there is no peer yet: the message is handed back.
    Full(Message),
    /// The socket is closed.
    Closed(Message),
    /// The message is not acceptable (no frames).
    Invalid(Error),
}

/// The state a socket shares with its connection tasks and inproc peers. Its fields are
/// private to the socket's modules; [`crate::connection`] and [`crate::inproc`] use the
/// handful of `pub(crate)` methods below, which are the whole seam between them.
pub(crate) struct Inner {
    kind: SocketType,
    rt: Handle,
    opts: Mutex<SocketOptions>,
    pipes: Mutex<Pipes>,
    /// The pipes that may have something for this socket (see [`crate::ready_queue`]).
    ready: Arc<ReadyQueue>,
    endpoints: Mutex<Endpoints>,
    closed: AtomicBool,
    readiness: Arc<Readiness>,
    events: Mutex<EventQueue>,
    last_endpoint: Mutex<Option<String>>,
    /// CURVE settings for connections made from now on (`None`: the NULL mechanism).
    curve: Mutex<Option<Arc<Curve>>>,
    /// A CURVE server's authenticator and its timeout.
    authenticator: Mutex<Option<AuthConfig>>,
    /// CURVE server handshakes in progress on this socket, bounded by
    /// [`MAX_PENDING_CURVE_HANDSHAKES`].
    pub(crate) curve_pending: Arc<tokio::sync::Semaphore>,
    /// Fired when the socket's connections must stop (after linger on close).
    conn_trigger: ShutdownTrigger,
    /// Set once close has fully finished, so a second close() can wait for it.
    close_done: Notify,
    close_finished: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections never leave the data half-updated, so a poisoned lock is usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An authenticator with its timeout.
pub(crate) type AuthConfig = (Arc<dyn Authenticator>, std::time::Duration);

/// The most CURVE server handshakes one socket runs at once. Each costs the server a
/// curve25519 computation per HELLO and a task and a file descriptor until it completes or
/// `handshakeInterval` ends it; past this many, new connections are closed at once (a
/// legitimate client retries after its reconnect interval), so a flood of HELLOs that never
/// go on costs bounded memory and descriptors.
pub const MAX_PENDING_CURVE_HANDSHAKES: usize = 256;

/// `room()` stops counting here: it is what JS may accept before asking again, and summing
/// past any batch it would stage only costs time with many peers.
const ROOM_CAP: usize = 1 << 20;

/// A ZeroMQ PUSH or PULL socket. Dropping it closes it with no linger.
pub struct Socket {
    inner: Arc<Inner>,
}

impl Socket {
    /// Creates a socket whose background tasks run on `rt`.
    pub fn new(kind: SocketType, options: SocketOptions, rt: Handle) -> Result<Socket> {
        options.validate()?;
        let (conn_trigger, _) = ShutdownTrigger::new();
        let role = match kind {
            SocketType::Push => Role::Writer,
            SocketType::Pull => Role::Reader,
        };
        Ok(Socket {
            inner: Arc::new(Inner {
                kind,
                rt,
                opts: Mutex::new(options),
                pipes: Mutex::new(Pipes::default()),
                ready: Arc::new(ReadyQueue::new(role)),
                endpoints: Mutex::new(Endpoints::default()),
                closed: AtomicBool::new(false),
                readiness: Arc::new(Readiness::new()),
                events: Mutex::new(EventQueue::new()),
                last_endpoint: Mutex::new(None),
                curve: Mutex::new(None),
                authenticator: Mutex::new(None),
                curve_pending: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_CURVE_HANDSHAKES)),
                conn_trigger,
                close_done: Notify::new(),
                close_finished: AtomicBool::new(false),
            }),
        })
    }

    pub fn kind(&self) -> SocketType {
        self.inner.kind
    }

    pub fn options(&self) -> SocketOptions {
        self.inner.options()
    }

    /// Replaces the options after validating them; applies to pipes and connections made
    /// from now on (as libzmq does). `EBADF` once the socket is closed.
    pub fn set_options(&self, options: SocketOptions) -> Result<()> {
        self.inner.check_open()?;
        options.validate()?;
        *lock(&self.inner.opts) = options;
        Ok(())
    }

    /// Sets the CURVE mechanism (`Some`) or back to NULL (`None`) for connections made from
    /// now on, as options apply. Checked first: `EINVAL` for a client without a server
    /// key or a public key that does not match the secret key; `EBADF` once closed. inproc
    /// peers are not encrypted (as in libzmq).
    pub fn set_curve(&self, curve: Option<CurveOptions>) -> Result<()> {
        self.inner.check_open()?;
        let prepared = curve.map(|c| c.prepare()).transpose()?;
        *lock(&self.inner.curve) = prepared.map(Arc::new);
        Ok(())
    }

    /// Sets (or removes) the authenticator a CURVE server asks about each client, with the
    /// time it may take (past it, the verdict is 300: closed without an ERROR). Without
    /// one, a server accepts any client whose vouch checks out and that passes the
    /// allowlist, as libzmq does without a ZAP handler.
    pub fn set_authenticator(&self, auth: Option<(Arc<dyn Authenticator>, std::time::Duration)>) {
        *lock(&self.inner.authenticator) = auth;
    }

    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// ZMQ_LAST_ENDPOINT: the resolved address of the last bind (real port of `:0`).
    pub fn last_endpoint(&self) -> Option<String> {
        lock(&self.inner.last_endpoint).clone()
    }

    /// Installs the callback used for armed readiness bits.
    pub fn set_waker(&self, waker: Option<Waker>) {
        self.inner.readiness.set_waker(waker);
    }

    /// Asks for the waker to be called once when any of `bits` becomes true. Returns the
    /// bits that are already true (those are not armed), so a caller can never miss a
    /// wake-up between its last non-blocking call and arming.
    pub fn arm(&self, bits: u32) -> u32 {
        self.inner.readiness.arm(bits, |bits| self.ready_bits(bits))
    }

    fn ready_bits(&self, bits: u32) -> u32 {
        if self.is_closed() {
            return bits | CLOSED;
        }
        let mut ready = 0;
        if bits & READABLE != 0 && self.readable() {
            ready |= READABLE;
        }
        if bits & WRITABLE != 0 && self.writable() {
            ready |= WRITABLE;
        }
        if bits & EVENTS != 0 && !lock(&self.inner.events).queue.is_empty() {
            ready |= EVENTS;
        }
        // PEERS is never "already true": it marks a change, and a caller arms it before
        // looking at `peers()`, so no change falls between the two.
        ready
    }

    /// A message can be received now. (A listed pipe whose writer finished with nothing
    /// left is not a message: the next receive drops it.)
    pub fn readable(&self) -> bool {
        self.inner.kind == SocketType::Pull
            && !self.is_closed()
            && self.inner.ready.any(|p| !p.is_empty())
    }

    /// A message can be sent now without waiting.
    pub fn writable(&self) -> bool {
        self.room() > 0
    }

    /// Turns monitoring on: events are queued from now on.
    pub fn enable_events(&self) {
        lock(&self.inner.events).enabled = true;
    }

    /// Takes the queued monitor events.
    pub fn take_events(&self, max: usize) -> Vec<Event> {
        let mut q = lock(&self.inner.events);
        let n = max.min(q.queue.len());
        q.queue.drain(..n).collect()
    }

    // ---- sending -------------------------------------------------------------------

    /// Queues `msg` on the next pipe with room, without waiting.
    pub fn try_send(&self, msg: Message) -> std::result::Result<(), TrySendError> {
        if self.inner.kind != SocketType::Push {
            return Err(TrySendError::Invalid(Error::new(
                Code::Inval,
                "Socket type does not support sending",
            )));
        }
        if msg.is_empty() {
            return Err(TrySendError::Invalid(Error::new(
                Code::Inval,
                "A message needs at least one frame",
            )));
        }
        if self.is_closed() {
            return Err(TrySendError::Closed(msg));
        }
        if lock(&self.inner.pipes).has_orphans() {
            // They go first, to the next peer that attaches: order is kept.
            return Err(TrySendError::Full(msg));
        }
        round_robin(&self.inner.ready, msg, |dead| {
            self.inner.release_pipe(&dead)
        })
        .map_err(TrySendError::Full)
    }

    /// How many messages [`Socket::try_send`] would accept now: the free slots under the
    /// high-water mark summed over the peers with room (up to an internal cap; `usize::MAX`
    /// stands for a peer with no mark). Only this socket's own sends lower it; a peer leaving
    /// is the one other thing that can. The Node binding lets JS accept that many sends
    /// before crossing into Rust again.
    pub fn room(&self) -> usize {
        if self.inner.kind != SocketType::Push || self.is_closed() {
            return 0;
        }
        if lock(&self.inner.pipes).has_orphans() {
            return 0;
        }
        self.inner.ready.sum(ROOM_CAP, |p| p.room())
    }

    /// Queues a message the caller has already accepted within [`Socket::room`]: like
    /// `try_send`, but should the room have shrunk since (a peer left, its messages went to
    /// the others), the message is queued past the high-water mark instead of refused,
    /// as messages re-routed from a departed peer are. Nothing accepted is dropped.
    pub fn send_accepted(&self, msg: Message) -> Result<()> {
        match self.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(m)) => {
                lock(&self.inner.pipes).force_one(m);
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Err(Error::closed()),
            Err(TrySendError::Invalid(e)) => Err(e),
        }
    }

    /// Writes a message straight to the socket of the peer whose turn it is, from the
    /// caller's memory, if that peer's connection has nothing queued ahead of it and its
    /// task is idle (see `outlet.rs`): the kernel has copied what it takes before this
    /// returns, so the caller may reuse the memory at once. `false` when nothing was
    /// written: send the message as usual, and the same peer takes it.
    pub fn try_write_now(&self, frames: &[&[u8]]) -> bool {
        if self.inner.kind != SocketType::Push
            || frames.is_empty()
            || self.is_closed()
            || lock(&self.inner.pipes).has_orphans()
        {
            return false;
        }
        let Some(pipe) = self.inner.ready.next() else {
            return false;
        };
        if pipe.try_write_now(frames) {
            // Written past an empty queue: the pipe keeps all its room, and its turn passes.
            self.inner.ready.enlist(&pipe);
            true
        } else {
            self.inner.ready.put_back(pipe);
            false
        }
    }

    /// Sends `msg`, waiting for room up to `sendTimeout` (then `EAGAIN`).
    pub async fn send(&self, msg: Message) -> Result<()> {
        let mut msg = match self.try_send(msg) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(m)) => m,
            Err(TrySendError::Closed(_)) => return Err(Error::closed()),
            Err(TrySendError::Invalid(e)) => return Err(e),
        };
        let deadline = millis(self.inner.options().send_timeout).map(|d| Instant::now() + d);
        loop {
            let notified = self.inner.readiness.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(m)) => msg = m,
                Err(TrySendError::Closed(_)) => return Err(Error::closed()),
                Err(TrySendError::Invalid(e)) => return Err(e),
            }
            wait_until(notified, deadline, "send").await?;
        }
    }

    /// The peers this socket reaches now, as `(id, address)`: those whose handshake
    /// completed and whose connection (or inproc socket) is still there. A connect-side
    /// socket may be "connected" long before it has a peer; this is what says it has one.
    pub fn peers(&self) -> Vec<(u64, String)> {
        lock(&self.inner.pipes)
            .list
            .iter()
            .filter_map(|p| p.peer().map(|a| (p.id(), a)))
            .collect()
    }

    /// Queues `msg` for one peer (an id from [`Socket::peers`] or a `handshake` event),
    /// without waiting: a dispatcher that tracks each peer's load picks the peer itself,
    /// where round-robin would hand a busy one its share. The wire is plain PUSH, so any
    /// PULL peer takes it. `EHOSTUNREACH` if that peer is gone (as libzmq's ROUTER says
    /// with ZMQ_ROUTER_MANDATORY), `EAGAIN` if it is at its high-water mark; either way
    /// nothing was queued.
    pub fn try_send_to(&self, peer: u64, msg: Message) -> Result<()> {
        if self.inner.kind != SocketType::Push {
            return Err(Error::new(
                Code::Inval,
                "Socket type does not support sending",
            ));
        }
        if msg.is_empty() {
            return Err(Error::new(
                Code::Inval,
                "A message needs at least one frame",
            ));
        }
        self.inner.check_open()?;
        let pipe = lock(&self.inner.pipes)
            .list
            .iter()
            .find(|p| p.id() == peer && p.peer().is_some())
            .cloned();
        let unreachable = || Error::new(Code::HostUnreach, format!("no peer {peer}"));
        let Some(pipe) = pipe else {
            return Err(unreachable());
        };
        match pipe.try_push(msg) {
            Ok(_) => Ok(()),
            Err(PushError::Full(_)) => Err(Error::new(
                Code::Again,
                format!("peer {peer} is at its high-water mark"),
            )),
            Err(PushError::Closed(_)) => Err(unreachable()),
        }
    }

    // ---- receiving -----------------------------------------------------------------

    /// Takes up to `max` messages, fair-queued over the peers, without waiting.
    pub fn try_recv_batch(&self, out: &mut Vec<Message>, max: usize) -> Result<usize> {
        self.try_recv_batch_bytes(out, max, usize::MAX, usize::MAX)
    }

    /// Like [`Socket::try_recv_batch`], but stops once the messages taken hold `max_bytes`
    /// in frames shorter than `large` (always taking at least one message): the Node binding
    /// copies those into one buffer, which every message handed out keeps alive, while
    /// larger frames go to JS as they are and cost no copy.
    pub fn try_recv_batch_bytes(
        &self,
        out: &mut Vec<Message>,
        max: usize,
        max_bytes: usize,
        large: usize,
    ) -> Result<usize> {
        if self.inner.kind != SocketType::Pull {
            return Err(Error::new(
                Code::Inval,
                "Socket type does not support receiving",
            ));
        }
        if self.is_closed() {
            return Err(Error::closed());
        }
        Ok(fair_queue(
            &self.inner.ready,
            out,
            max,
            max_bytes,
            large,
            |done| self.inner.forget_finished(&done),
        ))
    }

    /// Receives one message, waiting up to `receiveTimeout` (then `EAGAIN`).
    pub async fn recv(&self) -> Result<Message> {
        let mut out = Vec::with_capacity(1);
        if self.try_recv_batch(&mut out, 1)? == 1 {
            if let Some(m) = out.pop() {
                return Ok(m);
            }
        }
        let deadline = millis(self.inner.options().receive_timeout).map(|d| Instant::now() + d);
        loop {
            let notified = self.inner.readiness.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.try_recv_batch(&mut out, 1)? == 1 {
                if let Some(m) = out.pop() {
                    return Ok(m);
                }
            }
            wait_until(notified, deadline, "receive").await?;
        }
    }

    // ---- endpoints (see endpoints.rs) -------------------------------------------------

    /// Binds to `addr`; returns the resolved endpoint (real port, real ipc path).
    pub async fn bind(&self, addr: &str) -> Result<String> {
        endpoints::bind(&self.inner, addr).await
    }

    /// Stops listening on `addr` (the address as bound, or as resolved).
    pub async fn unbind(&self, addr: &str) -> Result<()> {
        endpoints::unbind(&self.inner, addr).await
    }

    /// Connects to `addr`; the connection is made (and remade) in the background.
    pub fn connect(&self, addr: &str) -> Result<()> {
        endpoints::connect(&self.inner, addr)
    }

    /// Stops connecting to `addr` and closes that connection.
    pub fn disconnect(&self, addr: &str) -> Result<()> {
        endpoints::disconnect(&self.inner, addr)
    }

    // ---- close (see close.rs) ----------------------------------------------------------

    /// Closes the socket. A PUSH keeps flushing queued messages for up to `linger` first.
    /// Resolves when everything has stopped; calling it again waits for the same end.
    pub async fn close(&self) {
        self.inner.close().await
    }

    /// Closes without waiting: no linger (used on drop).
    pub fn close_now(&self) {
        self.inner.close_now();
    }

    /// What a close would still wait for: messages queued or in flight towards peers that
    /// could take them (0 for a PULL). The Node binding warns with it when a close lingers.
    pub fn unsent(&self) -> usize {
        self.inner.unsent()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.inner.close_now();
    }
}

async fn wait_until(
    notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    deadline: Option<Instant>,
    what: &str,
) -> Result<()> {
    match deadline {
        None => {
            notified.await;
            Ok(())
        }
        Some(d) => match tokio::time::timeout_at(d, notified).await {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::new(Code::Again, format!("Socket {what} timed out"))),
        },
    }
}

impl Inner {
    pub(crate) fn kind(&self) -> SocketType {
        self.kind
    }

    pub(crate) fn options(&self) -> SocketOptions {
        lock(&self.opts).clone()
    }

    pub(crate) fn curve(&self) -> Option<Arc<Curve>> {
        lock(&self.curve).clone()
    }

    pub(crate) fn authenticator(&self) -> Option<AuthConfig> {
        lock(&self.authenticator).clone()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::closed())
        } else {
            Ok(())
        }
    }

    /// Fires when the socket's connections must stop.
    pub(crate) fn conn_shutdown(&self) -> Shutdown {
        self.conn_trigger.subscribe()
    }

    pub(crate) fn event(
        &self,
        kind: EventKind,
        address: &str,
        interval: Option<u64>,
        error: Option<Error>,
    ) {
        self.push_event(Event {
            kind,
            address: address.to_string(),
            interval,
            error,
            peer: None,
            public_key: None,
            user_id: None,
            status: None,
        });
    }

    /// A CURVE handshake ended in an authentication verdict other than 200.
    pub(crate) fn auth_failed(&self, address: &str, status: u16, error: Error) {
        self.push_event(Event {
            kind: EventKind::HandshakeErrorAuth,
            address: address.to_string(),
            interval: None,
            error: Some(error),
            peer: None,
            public_key: None,
            user_id: None,
            status: Some(status),
        });
    }

    /// A peer on `pipe` completed its handshake (`up`) or its connection ended: the pipe
    /// says so from now on, then the event and the `PEERS` bit tell whoever waits.
    pub(crate) fn peer_changed(&self, pipe: &Pipe, address: &str, up: bool, error: Option<Error>) {
        self.peer_changed_as(pipe, address, up, error, None);
    }

    /// [`Inner::peer_changed`] with what a CURVE handshake learnt: the peer's public key
    /// and the user id (reported with the `handshake` event).
    pub(crate) fn peer_changed_as(
        &self,
        pipe: &Pipe,
        address: &str,
        up: bool,
        error: Option<Error>,
        identity: Option<([u8; 32], Option<String>)>,
    ) {
        let (public_key, user_id) = match identity {
            Some((key, user)) => (Some(key), user),
            None => (None, None),
        };
        pipe.set_peer(up.then_some(address));
        self.push_event(Event {
            kind: if up {
                EventKind::Handshake
            } else {
                EventKind::Disconnect
            },
            address: address.to_string(),
            interval: None,
            error,
            peer: Some(pipe.id()),
            public_key,
            user_id,
            status: None,
        });
        self.readiness.wake(PEERS);
    }

    fn push_event(&self, ev: Event) {
        if lock(&self.events).push(ev) {
            self.readiness.wake(EVENTS);
        }
    }
}
