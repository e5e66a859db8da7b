//! The PUSH/PULL socket: its pipes, endpoints, readiness and close.
//!
//! A socket owns a list of pipes, one per peer. PUSH round-robins whole messages over the
//! pipes that have room (a full or stalled peer is skipped); PULL fair-queues, taking one
//! message per pipe in turn. Connection tasks (see [`crate::connection`]) and inproc peers
//! (see [`crate::inproc`]) sit at the far end of the pipes.
//!
//! Callers either await ([`Socket::send`], [`Socket::recv`]) or use the non-blocking
//! [`Socket::try_send`] / [`Socket::try_recv_batch`] together with [`Socket::arm`] and a
//! waker callback: the Node binding uses the latter so that a message costs one synchronous
//! call, not a promise.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::endpoint::{self, Endpoint};
use crate::error::{Code, Error, Result};
use crate::events::{Event, EventKind, EventQueue};
use crate::handshake::SocketType;
use crate::inproc;
use crate::message::Message;
use crate::options::{millis, SocketOptions};
use crate::pipe::{Pipe, PushError, Wake};
use crate::shutdown::{Shutdown, ShutdownTrigger};
use crate::transport::Listener;

/// Readiness bit: a message can be received.
pub const READABLE: u32 = 1;
/// Readiness bit: a message can be sent without waiting.
pub const WRITABLE: u32 = 2;
/// Readiness bit: monitor events are queued.
pub const EVENTS: u32 = 4;
/// Readiness bit: the socket closed (reported together with the bits that were armed).
pub const CLOSED: u32 = 8;

/// Called (from any thread) when an armed readiness bit becomes true.
pub type Waker = Arc<dyn Fn(u32) + Send + Sync>;

/// Wakes both async waiters and, for bits that were armed, the external waker. One per
/// socket; pipes hold it through [`Side`].
pub(crate) struct Readiness {
    notify: Notify,
    armed: AtomicU32,
    waker: RwLock<Option<Waker>>,
}

impl Readiness {
    fn new() -> Self {
        Readiness { notify: Notify::new(), armed: AtomicU32::new(0), waker: RwLock::new(None) }
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
}

/// One side of a socket's readiness, as seen by a pipe.
pub(crate) struct Side {
    pub(crate) readiness: Arc<Readiness>,
    pub(crate) bit: u32,
}

impl Wake for Side {
    fn wake(&self) {
        self.readiness.wake(self.bit);
    }
}

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

pub(crate) struct Pipes {
    pub(crate) list: Vec<Arc<Pipe>>,
    cursor: usize,
    /// Messages accepted for a peer that left before they were written, kept until a peer
    /// exists again so that no accepted message is dropped.
    orphans: VecDeque<Message>,
}

struct BindEntry {
    requested: String,
    resolved: String,
    trigger: ShutdownTrigger,
    /// Drops the connections accepted through this endpoint: on unbind, as libzmq (whose
    /// sessions are children of the listener), but not on close, where they must linger.
    accepted: ShutdownTrigger,
    inproc: bool,
    /// The accept loop; awaited by unbind/close so the port or path is really released
    /// (no connection accepted, rebinding works) once they resolve.
    task: Option<tokio::task::JoinHandle<()>>,
}

pub(crate) struct ConnectEntry {
    address: String,
    trigger: ShutdownTrigger,
    /// The pipe that outlives reconnects (libzmq creates it at connect time).
    pipe: Option<Arc<Pipe>>,
}

struct Endpoints {
    binds: Vec<BindEntry>,
    connects: Vec<ConnectEntry>,
}

pub(crate) struct Inner {
    pub(crate) kind: SocketType,
    pub(crate) rt: Handle,
    opts: Mutex<SocketOptions>,
    pub(crate) pipes: Mutex<Pipes>,
    endpoints: Mutex<Endpoints>,
    closed: AtomicBool,
    pub(crate) readiness: Arc<Readiness>,
    events: Mutex<EventQueue>,
    last_endpoint: Mutex<Option<String>>,
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

/// A ZeroMQ PUSH or PULL socket. Dropping it closes it with no linger.
pub struct Socket {
    inner: Arc<Inner>,
}

impl Socket {
    /// Creates a socket whose background tasks run on `rt`.
    pub fn new(kind: SocketType, options: SocketOptions, rt: Handle) -> Result<Socket> {
        options.validate()?;
        let (conn_trigger, _) = ShutdownTrigger::new();
        Ok(Socket {
            inner: Arc::new(Inner {
                kind,
                rt,
                opts: Mutex::new(options),
                pipes: Mutex::new(Pipes { list: Vec::new(), cursor: 0, orphans: VecDeque::new() }),
                endpoints: Mutex::new(Endpoints { binds: Vec::new(), connects: Vec::new() }),
                closed: AtomicBool::new(false),
                readiness: Arc::new(Readiness::new()),
                events: Mutex::new(EventQueue::new()),
                last_endpoint: Mutex::new(None),
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
    /// from now on (as libzmq does).
    pub fn set_options(&self, options: SocketOptions) -> Result<()> {
        options.validate()?;
        *lock(&self.inner.opts) = options;
        Ok(())
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
        *self.inner.readiness.waker.write().unwrap_or_else(|e| e.into_inner()) = waker;
    }

    /// Asks for the waker to be called once when any of `bits` becomes true. Returns the
    /// bits that are already true (those are not armed), so a caller can never miss a
    /// wake-up between its last non-blocking call and arming.
    pub fn arm(&self, bits: u32) -> u32 {
        let r = &self.inner.readiness;
        r.armed.fetch_or(bits, Ordering::AcqRel);
        let ready = self.ready_bits(bits);
        if ready != 0 {
            r.armed.fetch_and(!ready, Ordering::AcqRel);
        }
        ready
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
        ready
    }

    /// A message can be received now.
    pub fn readable(&self) -> bool {
        self.inner.kind == SocketType::Pull
            && !self.is_closed()
            && lock(&self.inner.pipes).list.iter().any(|p| !p.is_empty())
    }

    /// A message can be sent now without waiting.
    pub fn writable(&self) -> bool {
        if self.inner.kind != SocketType::Push || self.is_closed() {
            return false;
        }
        let pipes = lock(&self.inner.pipes);
        pipes.orphans.is_empty() && pipes.list.iter().any(|p| p.has_room())
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
            return Err(TrySendError::Invalid(Error::new(Code::Inval, "A message needs at least one frame")));
        }
        if self.is_closed() {
            return Err(TrySendError::Closed(msg));
        }
        self.inner.round_robin(msg).map_err(TrySendError::Full)
    }

    /// How many messages [`Socket::try_send`] would accept now: the free slots under the
    /// high-water mark summed over the peers (`usize::MAX` when a peer has no mark). Only
    /// this socket's own sends lower it; a peer leaving is the one other thing that can.
    /// The Node binding lets JS accept that many sends before crossing into Rust again.
    pub fn room(&self) -> usize {
        if self.inner.kind != SocketType::Push || self.is_closed() {
            return 0;
        }
        let pipes = lock(&self.inner.pipes);
        if !pipes.orphans.is_empty() {
            return 0;
        }
        pipes.list.iter().fold(0usize, |sum, p| sum.saturating_add(p.room()))
    }

    /// Queues a message the caller has already accepted within [`Socket::room`]: like
    /// `try_send`, but should the room have shrunk since (a peer left, its messages went to
    /// the others), the message is queued past the high-water mark instead of refused,
    /// as messages re-routed from a departed peer are. Nothing accepted is dropped.
    pub fn send_accepted(&self, msg: Message) -> Result<()> {
        let msg = match self.try_send(msg) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(m)) => m,
            Err(TrySendError::Closed(_)) => return Err(Error::closed()),
            Err(TrySendError::Invalid(e)) => return Err(e),
        };
        let mut pipes = lock(&self.inner.pipes);
        let n = pipes.list.len();
        if n == 0 || !pipes.orphans.is_empty() {
            pipes.orphans.push_back(msg);
        } else {
            let idx = pipes.cursor % n;
            pipes.cursor = idx + 1;
            pipes.list[idx].force_push(std::iter::once(msg));
        }
        Ok(())
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

    // ---- receiving -----------------------------------------------------------------

    /// Takes up to `max` messages, fair-queued over the peers, without waiting.
    pub fn try_recv_batch(&self, out: &mut Vec<Message>, max: usize) -> Result<usize> {
        self.try_recv_batch_bytes(out, max, usize::MAX)
    }

    /// Like [`Socket::try_recv_batch`], but stops once the messages taken hold `max_bytes`
    /// of payload (always taking at least one): the Node binding copies a batch into one
    /// buffer, and every message handed out keeps that buffer alive.
    pub fn try_recv_batch_bytes(&self, out: &mut Vec<Message>, max: usize, max_bytes: usize) -> Result<usize> {
        if self.inner.kind != SocketType::Pull {
            return Err(Error::new(Code::Inval, "Socket type does not support receiving"));
        }
        if self.is_closed() {
            return Err(Error::closed());
        }
        Ok(self.inner.fair_queue(out, max, max_bytes))
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

    // ---- endpoints -----------------------------------------------------------------

    /// Binds to `addr`; returns the resolved endpoint (real port, real ipc path).
    pub async fn bind(&self, addr: &str) -> Result<String> {
        let ep = endpoint::parse(addr)?;
        self.inner.check_open()?;
        let resolved = match &ep {
            Endpoint::Inproc(name) => {
                inproc::bind(&self.inner, name)?;
                let (trigger, _) = ShutdownTrigger::new();
                lock(&self.inner.endpoints).binds.push(BindEntry {
                    requested: addr.to_string(),
                    resolved: addr.to_string(),
                    trigger,
                    accepted: ShutdownTrigger::new().0,
                    inproc: true,
                    task: None,
                });
                addr.to_string()
            }
            _ => {
                let listener = match Listener::bind(&ep, addr).await {
                    Ok(l) => l,
                    Err(e) => {
                        self.inner.event(EventKind::BindError, addr, None, Some(e.clone()));
                        return Err(e);
                    }
                };
                let resolved = listener.endpoint().to_string();
                let (trigger, shutdown) = ShutdownTrigger::new();
                let (accepted, accepted_shutdown) = ShutdownTrigger::new();
                {
                    let mut eps = lock(&self.inner.endpoints);
                    // close() may have run while we were binding.
                    if self.inner.is_closed() {
                        return Err(Error::closed());
                    }
                    let task =
                        self.inner.rt.spawn(accept_loop(self.inner.clone(), listener, shutdown, accepted_shutdown));
                    eps.binds.push(BindEntry {
                        requested: addr.to_string(),
                        resolved: resolved.clone(),
                        trigger,
                        accepted,
                        inproc: false,
                        task: Some(task),
                    });
                }
                resolved
            }
        };
        *lock(&self.inner.last_endpoint) = Some(resolved.clone());
        self.inner.event(EventKind::Bind, &resolved, None, None);
        Ok(resolved)
    }

    /// Stops listening on `addr` (the address as bound, or as resolved).
    pub async fn unbind(&self, addr: &str) -> Result<()> {
        endpoint::parse(addr)?;
        self.inner.check_open()?;
        let entry = {
            let mut eps = lock(&self.inner.endpoints);
            let pos = eps.binds.iter().position(|b| b.requested == addr || b.resolved == addr);
            match pos {
                Some(i) => eps.binds.remove(i),
                None => return Err(Error::new(Code::NoEnt, format!("Not bound to {addr}"))),
            }
        };
        entry.trigger.fire();
        entry.accepted.fire();
        if let Some(task) = entry.task {
            let _ = task.await;
        }
        if entry.inproc {
            inproc::unbind(&self.inner, &entry.resolved);
        }
        self.inner.event(EventKind::Unbind, &entry.resolved, None, None);
        Ok(())
    }

    /// Connects to `addr`; the connection is made (and remade) in the background.
    pub fn connect(&self, addr: &str) -> Result<()> {
        let ep = endpoint::parse(addr)?;
        endpoint::validate_for_connect(&ep, addr)?;
        self.inner.check_open()?;
        if let Endpoint::Inproc(name) = &ep {
            let pipe = inproc::connect(&self.inner, name)?;
            let (trigger, _) = ShutdownTrigger::new();
            lock(&self.inner.endpoints).connects.push(ConnectEntry {
                address: addr.to_string(),
                trigger,
                pipe: Some(pipe),
            });
            return Ok(());
        }
        let opts = self.inner.options();
        let conn_notify = Arc::new(Notify::new());
        // PULL always keeps its pipe across reconnects; PUSH does unless `immediate`, in
        // which case messages may only queue for peers that are really there.
        let persistent = self.inner.kind == SocketType::Pull || !opts.immediate;
        let pipe = persistent.then(|| {
            let p = self.inner.new_pipe(&opts, conn_notify.clone());
            self.inner.attach(p.clone());
            p
        });
        let (trigger, shutdown) = ShutdownTrigger::new();
        lock(&self.inner.endpoints).connects.push(ConnectEntry {
            address: addr.to_string(),
            trigger,
            pipe: pipe.clone(),
        });
        let inner = self.inner.clone();
        let address = addr.to_string();
        self.inner.rt.spawn(async move {
            crate::connection::connector(inner, ep, address, pipe, conn_notify, shutdown).await
        });
        Ok(())
    }

    /// Stops connecting to `addr` and closes that connection.
    pub fn disconnect(&self, addr: &str) -> Result<()> {
        let ep = endpoint::parse(addr)?;
        self.inner.check_open()?;
        let entry = {
            let mut eps = lock(&self.inner.endpoints);
            match eps.connects.iter().position(|c| c.address == addr) {
                Some(i) => eps.connects.remove(i),
                None => return Err(Error::new(Code::NoEnt, format!("Not connected to {addr}"))),
            }
        };
        entry.trigger.fire();
        if let Some(pipe) = entry.pipe {
            if matches!(ep, Endpoint::Inproc(_)) {
                self.inner.leave_inproc_pipe(&pipe);
            } else {
                self.inner.release_pipe(&pipe);
            }
        }
        Ok(())
    }

    // ---- close ---------------------------------------------------------------------

    /// Closes the socket. A PUSH keeps flushing queued messages for up to `linger` first.
    /// Resolves when everything has stopped; calling it again waits for the same end.
    pub async fn close(&self) {
        self.inner.close().await
    }

    /// Closes without waiting: no linger (used on drop and at process/thread teardown).
    pub fn close_now(&self) {
        self.inner.close_now();
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

async fn accept_loop(inner: Arc<Inner>, listener: Listener, mut shutdown: Shutdown, unbound: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    inner.event(EventKind::Accept, listener.endpoint(), None, None);
                    let conn_shutdown = inner.conn_trigger.subscribe();
                    let inner2 = inner.clone();
                    let _ = peer;
                    let address = listener.endpoint().to_string();
                    let unbound = unbound.clone();
                    inner.rt.spawn(async move {
                        crate::connection::accepted(inner2, stream, address, conn_shutdown, unbound).await
                    });
                }
                Err(e) => {
                    let err = Error::from_io(&e, "accept on", listener.endpoint());
                    inner.event(EventKind::AcceptError, listener.endpoint(), None, Some(err));
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::select! {
                        _ = shutdown.wait() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
    }
    let address = listener.endpoint().to_string();
    listener.close();
    // ZMQ_EVENT_CLOSED: the listening socket is gone (unbind or close).
    inner.event(EventKind::Close, &address, None, None);
}

impl Inner {
    pub(crate) fn options(&self) -> SocketOptions {
        lock(&self.opts).clone()
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

    pub(crate) fn conn_shutdown(&self) -> Shutdown {
        self.conn_trigger.subscribe()
    }

    pub(crate) fn event(&self, kind: EventKind, address: &str, interval: Option<u64>, error: Option<Error>) {
        let became_ready = lock(&self.events).push(Event {
            kind,
            address: address.to_string(),
            interval,
            error,
        });
        if became_ready {
            self.readiness.wake(EVENTS);
        }
    }

    /// The socket-side wake target for a pipe of this socket.
    pub(crate) fn side(&self) -> Arc<Side> {
        let bit = match self.kind {
            SocketType::Push => WRITABLE,
            SocketType::Pull => READABLE,
        };
        Arc::new(Side { readiness: self.readiness.clone(), bit })
    }

    /// A pipe between this socket and a connection task that waits on `conn`.
    pub(crate) fn new_pipe(&self, opts: &SocketOptions, conn: Arc<Notify>) -> Arc<Pipe> {
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
            pipes.list.push(pipe);
        }
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
                let mut pipes = lock(&self.pipes);
                pipes.list.retain(|p| !Arc::ptr_eq(p, pipe));
                if leftover.is_empty() {
                    return;
                }
                if pipes.list.is_empty() {
                    pipes.orphans.extend(leftover);
                } else {
                    let n = pipes.list.len();
                    for (i, m) in leftover.into_iter().enumerate() {
                        let idx = (pipes.cursor + i) % n;
                        pipes.list[idx].force_push(std::iter::once(m));
                    }
                }
            }
            SocketType::Pull => {
                pipe.close_writer();
                let mut pipes = lock(&self.pipes);
                if pipe.is_empty() && pipe.mark_detached() {
                    pipes.list.retain(|p| !Arc::ptr_eq(p, pipe));
                }
            }
        }
    }

    /// This socket leaves an inproc pipe (disconnect), whose far end is another socket:
    /// it closes its own end so that the peer sees it gone. A PUSH's queued messages stay
    /// for the PULL (the pipe is its receive queue); a PULL's unread ones go back to the
    /// PUSH at its next send (see `round_robin`). The pipe's `detached` flag is left to the
    /// peer, which still has to take the pipe out of its own list.
    fn leave_inproc_pipe(&self, pipe: &Arc<Pipe>) {
        match self.kind {
            SocketType::Push => pipe.close_writer(),
            SocketType::Pull => pipe.close_reader(),
        }
        lock(&self.pipes).list.retain(|p| !Arc::ptr_eq(p, pipe));
    }

    fn round_robin(&self, msg: Message) -> std::result::Result<(), Message> {
        let mut msg = msg;
        // Each pass either queues the message or releases at least one closed inproc peer
        // (which leaves the list), so this ends within as many passes as there are pipes.
        loop {
            let mut dead = Vec::new();
            let sent = {
                let mut pipes = lock(&self.pipes);
                let n = pipes.list.len();
                if n == 0 || !pipes.orphans.is_empty() {
                    return Err(msg);
                }
                let start = pipes.cursor % n;
                let mut sent = false;
                for i in 0..n {
                    let idx = (start + i) % n;
                    match pipes.list[idx].try_push(msg) {
                        Ok(()) => {
                            pipes.cursor = idx + 1;
                            sent = true;
                            msg = Message::new();
                            break;
                        }
                        Err(PushError::Full(m)) => msg = m,
                        Err(PushError::Closed(m)) => {
                            dead.push(pipes.list[idx].clone());
                            msg = m;
                        }
                    }
                }
                sent
            };
            // A closed inproc peer passed on the way is released now, even when another
            // peer took the message, or its unread messages would wait until every other
            // peer is full.
            for p in &dead {
                self.release_pipe(p);
            }
            if sent {
                return Ok(());
            }
            if dead.is_empty() {
                return Err(msg);
            }
        }
    }

    fn fair_queue(&self, out: &mut Vec<Message>, max: usize, max_bytes: usize) -> usize {
        let mut pipes = lock(&self.pipes);
        let mut taken = 0;
        let mut bytes = 0usize;
        let mut idle_rounds = 0;
        while taken < max && bytes < max_bytes && !pipes.list.is_empty() {
            let n = pipes.list.len();
            let idx = pipes.cursor % n;
            match pipes.list[idx].try_pop() {
                Some(m) => {
                    bytes = bytes.saturating_add(m.byte_len());
                    out.push(m);
                    taken += 1;
                    idle_rounds = 0;
                    pipes.cursor = idx + 1;
                }
                None => {
                    if pipes.list[idx].is_finished() && pipes.list[idx].mark_detached() {
                        pipes.list.remove(idx);
                        continue;
                    }
                    pipes.cursor = idx + 1;
                    idle_rounds += 1;
                    if idle_rounds >= n {
                        break;
                    }
                }
            }
        }
        taken
    }

    fn close_now(&self) {
        self.begin_close();
        self.finish_close();
    }

    async fn close(self: &Arc<Self>) {
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
        let accepts: Vec<_> = lock(&self.endpoints).binds.iter_mut().filter_map(|b| b.task.take()).collect();
        for task in accepts {
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
        let eps = lock(&self.endpoints);
        for b in &eps.binds {
            b.trigger.fire();
        }
        drop(eps);
        inproc::socket_closing(self);
        self.readiness.wake(READABLE | WRITABLE | EVENTS | CLOSED);
        true
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
            // Orphans leave only through a pipe attached later; with accepting stopped,
            // that is a connect made with `immediate` (the others keep their pipe attached,
            // which would have taken the orphans already). Without one, they stay unsent.
            let orphans_can_leave = lock(&self.endpoints).connects.iter().any(|c| c.pipe.is_none());
            let flushed = {
                let pipes = lock(&self.pipes);
                (pipes.orphans.is_empty() || !orphans_can_leave) && pipes.list.iter().all(|p| p.is_flushed())
            };
            if flushed {
                return;
            }
            // A periodic re-check covers flush progress that does not cross a pipe
            // transition (the last bytes leaving the kernel buffer, a peer vanishing).
            let tick = tokio::time::sleep(Duration::from_millis(50));
            match deadline {
                Some(d) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tick => {}
                        _ = tokio::time::sleep_until(d) => return,
                    }
                }
                None => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tick => {}
                    }
                }
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
        lock(&self.endpoints).binds.clear();
        if !self.close_finished.swap(true, Ordering::AcqRel) {
            self.event(EventKind::End, "", None, None);
        }
        self.close_done.notify_waiters();
        self.readiness.wake(READABLE | WRITABLE | EVENTS | CLOSED);
    }
}
