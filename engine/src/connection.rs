//! One tcp/ipc connection: handshake, then a reader and a writer driven by one task, with
//! heartbeats judged by [`crate::heartbeat`]. The reconnect loop around it is
//! [`crate::connector`].
//!
//! Reader and writer run as two futures in one `select!` rather than two spawned tasks: a
//! connection then costs one task, and when either side fails the whole connection ends.
//! A PUSH's writer shares its write half with the sending thread through an
//! [`Outlet`](crate::outlet): while the writer is idle, a message can be written by the
//! thread that sends it.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, Notify};
use tokio::time::{Instant, MissedTickBehavior};

use crate::buffer_pool::PooledBuf;
use crate::codec::{self, Command, Decoded, Decoder};
use crate::curve::traffic::{self, Unboxer};
use crate::curve::{driver, Curve, Session};
use crate::error::{Code, Error, Result};
use crate::events::EventKind;
use crate::handshake::{self, PeerInfo, SocketType};
use crate::heartbeat::Liveness;
use crate::message::Message;
use crate::options::{millis, SocketOptions};
use crate::outlet::Outlet;
use crate::pipe::{Pipe, PushError};
use crate::socket::Inner;
use crate::transport::{ReadHalf, Stream, WriteHalf};

/// The smallest read: many small messages per syscall. Each read's buffer is shared by the
/// messages decoded from it, until they are all delivered.
const READ_CHUNK: usize = 64 * 1024;
/// The largest body reserved in one go from its declared size alone (see `read_loop`).
const BODY_RESERVE_MAX: usize = 4 << 20;
/// Bodies at least this large are read into an allocation of exactly their size: it is
/// what the message keeps alive (a Node Buffer over it, for as long as JS holds it), so a
/// shared or rounded-up read buffer would waste the difference for each message.
const OWN_BODY_MIN: usize = 32 * 1024;
/// Frames at least this large are written straight from their `Bytes`, not copied into
/// the write buffer.
const WRITE_BY_REFERENCE_MIN: usize = 32 * 1024;
/// Flush the write buffer once it holds this much.
const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// Messages taken from the pipe per writer round.
const WRITE_BATCH_MSGS: usize = 512;
/// Slices per vectored write: a batch of small frames is one buffer, large frames one slice
/// each, so a handful covers any batch.
const MAX_IO_SLICES: usize = 64;

/// Where the connection's pipe comes from.
#[derive(Clone)]
pub(crate) enum PipeSource {
    /// A connect-side pipe that outlives reconnects, attached to the socket since connect.
    Persistent {
        pipe: Arc<Pipe>,
        notify: Arc<Notify>,
    },
    /// A connection without its own pipe: one is made after the handshake (accepted
    /// connections, and connect-side PUSH with `immediate`).
    Fresh,
}

/// A connection's own state: its socket, its peer's address and the options in force when
/// it started (libzmq applies changed options to new connections only).
pub(crate) struct Connection {
    socket: Arc<Inner>,
    address: String,
    opts: SocketOptions,
    /// CURVE settings in force when the connection started; `None` for NULL.
    curve: Option<Arc<Curve>>,
}

/// What a completed handshake hands to the reader and writer.
struct Handshaken {
    peer: PeerInfo,
    /// A CURVE session (`None` for NULL), with the peer's key and user id for the event.
    curve: Option<(Session, [u8; 32], Option<String>)>,
}

/// What a running connection's reader and writer share.
struct Link {
    pipe: Arc<Pipe>,
    /// Woken by the pipe's socket side: data to write (PUSH) or room to read into (PULL).
    notify: Arc<Notify>,
    live: Arc<Liveness>,
    /// The peer speaks ZMTP 3.1 or later: PING/PONG exist (a 3.0 peer has no heartbeats).
    pings: bool,
}

/// How a connection ended.
pub(crate) enum Ended {
    /// Stopped before the handshake completed (by the socket, the peer or an error).
    BeforeHandshake,
    /// After a completed handshake.
    AfterHandshake,
    /// The server refused us (a CURVE ERROR "400"/"500" in the handshake): reconnecting
    /// would only be refused again, so a connecting socket stops, as libzmq's does.
    Denied,
}

impl Connection {
    pub(crate) fn new(socket: Arc<Inner>, address: String) -> Self {
        let opts = socket.options();
        let curve = socket.curve();
        Connection {
            socket,
            address,
            opts,
            curve,
        }
    }

    /// Runs the connection until the peer leaves, an error ends it, or `stop` resolves;
    /// reports `disconnect` (with the error, if one ended it) either way.
    pub(crate) async fn run(
        self,
        stream: Stream,
        source: PipeSource,
        stop: impl Future<Output = ()>,
    ) -> Ended {
        tokio::pin!(stop);
        let (ended, error, pipe) = self.run_inner(stream, source, &mut stop).await;
        match pipe {
            // After a handshake the disconnect names the peer, and the peer count drops.
            Some(pipe) => self.socket.peer_changed(&pipe, &self.address, false, error),
            None => self
                .socket
                .event(EventKind::Disconnect, &self.address, None, error),
        }
        ended
    }

    async fn run_inner(
        &self,
        mut stream: Stream,
        source: PipeSource,
        stop: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> (Ended, Option<Error>, Option<Arc<Pipe>>) {
        let kind = self.socket.kind();
        let mut buf = BytesMut::with_capacity(8 * 1024);
        let mut decoder = Decoder::new(match self.curve {
            Some(_) => traffic::outer_limit(self.opts.max_message_size),
            None => self.opts.max_message_size,
        });
        // A CURVE server's handshakes in progress are bounded (see
        // MAX_PENDING_CURVE_HANDSHAKES): past the bound a connection is closed at once.
        let _pending = match self.curve.as_deref() {
            Some(c) if c.server_key.is_none() => {
                match self.socket.curve_pending.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        let e = Error::new(
                            Code::Again,
                            "too many CURVE handshakes in progress: connection closed",
                        );
                        self.socket.event(
                            EventKind::HandshakeErrorOther,
                            &self.address,
                            None,
                            Some(e),
                        );
                        return (Ended::BeforeHandshake, None, None);
                    }
                }
            }
            _ => None,
        };
        let handshake = tokio::select! {
            _ = stop.as_mut() => return (Ended::BeforeHandshake, None, None),
            r = self.handshake(&mut stream, &mut buf, &mut decoder) => r,
        };
        drop(_pending);
        let Handshaken { peer, curve } = match handshake {
            Ok(done) => done,
            Err((e, Some(status))) => {
                self.socket.auth_failed(&self.address, status, e);
                // A client told ERROR by its server; a server that refused a client only
                // ends that connection.
                let denied = self
                    .curve
                    .as_deref()
                    .is_some_and(|c| c.server_key.is_some());
                let ended = if denied {
                    Ended::Denied
                } else {
                    Ended::BeforeHandshake
                };
                return (ended, None, None);
            }
            Err((e, None)) => {
                let event = if e.code == Code::Proto {
                    EventKind::HandshakeErrorProtocol
                } else {
                    EventKind::HandshakeErrorOther
                };
                self.socket.event(event, &self.address, None, Some(e));
                return (Ended::BeforeHandshake, None, None);
            }
        };
        if self.socket.is_closed() && kind == SocketType::Pull {
            return (Ended::BeforeHandshake, None, None);
        }

        let (pipe, notify, fresh) = match source {
            PipeSource::Persistent { pipe, notify } => (pipe, notify, false),
            PipeSource::Fresh => {
                let notify = Arc::new(Notify::new());
                let pipe = self.socket.new_pipe(&self.opts, notify.clone());
                self.socket.attach(pipe.clone());
                (pipe, notify, true)
            }
        };
        let (sessions, identity) = match curve {
            Some((session, key, user)) => (Some(session.split()), Some((key, user))),
            None => (None, None),
        };
        self.socket
            .peer_changed_as(&pipe, &self.address, true, None, identity);
        let (sealer, unboxer) = match sessions {
            Some((send, recv)) => (
                Some(send),
                Some(Unboxer::new(recv, self.opts.max_message_size)),
            ),
            None => (None, None),
        };

        let link = Link {
            pipe,
            notify,
            // A ZMTP 3.0 peer has no PING to answer: our heartbeats do not apply to it.
            live: Arc::new(Liveness::new(&self.opts, peer.minor >= 1)),
            pings: peer.minor >= 1,
        };
        let (ctrl_tx, ctrl_rx) = mpsc::channel::<Command>(8);
        let (rd, wr) = stream.into_split();
        let outlet = Arc::new(Outlet::new(wr, link.notify.clone(), link.live.clone()));
        // The sending thread may write a NULL connection's messages itself (`outlet.rs`);
        // a CURVE message must be sealed by this task's session.
        let shared = kind == SocketType::Push && sealer.is_none();
        if shared {
            link.pipe.set_outlet(Some(outlet.clone()));
        }
        let result = tokio::select! {
            _ = stop.as_mut() => Ok(()),
            r = self.read_loop(rd, buf, decoder, unboxer, &link, &ctrl_tx) => r,
            r = self.write_loop(&outlet, &link, ctrl_rx, sealer) => r,
        };
        if shared {
            link.pipe.set_outlet(None);
        }
        // No write of the sending thread's is under way past this, and none starts.
        outlet.close();
        if kind == SocketType::Push {
            // Whatever the writer had taken is gone with the connection.
            link.pipe.abandon_in_flight();
        }
        // No longer a peer before the pipe's messages move on: a dispatcher that reads
        // `peers` must not pick a pipe being emptied.
        link.pipe.set_peer(None);
        if fresh {
            self.socket.release_pipe(&link.pipe);
        }
        (Ended::AfterHandshake, result.err(), Some(link.pipe))
    }

    /// The NULL or CURVE handshake, bounded by `handshakeInterval`. A failure carries the
    /// ZAP status when it was an authentication verdict.
    async fn handshake(
        &self,
        stream: &mut Stream,
        buf: &mut BytesMut,
        decoder: &mut Decoder,
    ) -> std::result::Result<Handshaken, (Error, Option<u16>)> {
        let kind = self.socket.kind();
        let hs = async {
            match self.curve.as_deref() {
                None => handshake::handshake(stream, kind, buf, decoder)
                    .await
                    .map(|peer| Handshaken { peer, curve: None })
                    .map_err(|e| (e, None)),
                Some(curve) => {
                    let auth = self.socket.authenticator();
                    let address = zap_address(stream, &self.address);
                    match driver::handshake(stream, kind, curve, auth, address, buf).await {
                        Ok(s) => Ok(Handshaken {
                            peer: s.peer,
                            curve: Some((s.session, s.public_key, s.user_id)),
                        }),
                        Err(f) => Err((f.error, f.status)),
                    }
                }
            }
        };
        match millis(self.opts.handshake_interval).filter(|d| !d.is_zero()) {
            Some(d) => match tokio::time::timeout(d, hs).await {
                Ok(r) => r,
                Err(_) => Err((
                    Error::new(
                        Code::Again,
                        format!("handshake with {} timed out", self.address),
                    ),
                    None,
                )),
            },
            None => hs.await,
        }
    }

    async fn read_loop(
        &self,
        mut rd: ReadHalf,
        mut buf: BytesMut,
        mut decoder: Decoder,
        mut unboxer: Option<Unboxer>,
        link: &Link,
        ctrl: &mpsc::Sender<Command>,
    ) -> Result<()> {
        let read_error = |e: io::Error| Error::from_io(&e, "read from", &self.address);
        // A large body being read into a buffer of its own, and whether the last body read
        // was one (then the next header is read alone: see `Target`).
        let mut body: Option<PooledBuf> = None;
        let mut after_large = false;
        loop {
            while let Some(item) = decoder.decode(&mut buf)? {
                self.take(item, &mut unboxer, link, ctrl).await?;
            }
            // Reads are at least READ_CHUNK, so small messages arrive many per syscall. A
            // body of OWN_BODY_MIN or more (up to BODY_RESERVE_MAX) is read into a buffer of
            // its own, from the pool, and the header after it alone, so that the next large
            // body again starts in a buffer of its own (libzmq reads large bodies the same
            // way). Beyond BODY_RESERVE_MAX a body grows by at most doubling what already
            // arrived, so a declared size alone never commits more than that (and untouched
            // reserved pages cost no memory).
            let needed = decoder.needed();
            let target = match decoder.pending_body() {
                Some(len) if (OWN_BODY_MIN..=BODY_RESERVE_MAX).contains(&len) => {
                    let b = body.get_or_insert_with(|| {
                        // What already arrived is all of this body's (the decoder would
                        // have finished the frame otherwise).
                        let mut b = PooledBuf::with_capacity(len);
                        b.extend_from_slice(&buf);
                        buf.clear();
                        b
                    });
                    after_large = true;
                    Target::Body(len - b.len())
                }
                Some(_) => {
                    after_large = false;
                    let cap = READ_CHUNK.max(buf.len()).max(needed.min(BODY_RESERVE_MAX));
                    buf.reserve(needed.clamp(READ_CHUNK, cap) + codec::MAX_HEADER_LEN);
                    Target::Buf
                }
                None if after_large && buf.is_empty() => Target::Header,
                None => {
                    buf.reserve(READ_CHUNK.max(needed));
                    Target::Buf
                }
            };
            let n = match link.live.deadline() {
                None => read_more(&mut rd, &mut buf, &mut body, target)
                    .await
                    .map_err(read_error)?,
                Some(deadline) => tokio::select! {
                    biased;
                    r = read_more(&mut rd, &mut buf, &mut body, target) => r.map_err(read_error)?,
                    _ = tokio::time::sleep_until(deadline) => {
                        // Judge on what has arrived, not on whether we were scheduled in
                        // time to see it.
                        let now = match (target, body.as_mut()) {
                            (Target::Body(rest), Some(b)) => rd.read_now(&mut b.limit(rest)),
                            _ => {
                                buf.reserve(codec::MAX_HEADER_LEN);
                                rd.read_now(&mut buf)
                            }
                        };
                        match now {
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                if link.live.taking_backlog(rd.unacked()) {
                                    link.live.heard();
                                }
                                if link.live.expired() {
                                    let silent = link.live.silent_for();
                                    return Err(Error::new(
                                        Code::Again,
                                        format!("{} silent for {silent} ms: heartbeat timeout", self.address),
                                    ));
                                }
                                // Heard from in the meantime (a write drained, a backlog taken): look again.
                                continue;
                            }
                            Err(e) => return Err(read_error(e)),
                        }
                    }
                },
            };
            if n == 0 {
                return Ok(());
            }
            #[cfg(feature = "stage-trace")]
            crate::trace::stamp(&crate::trace::READ);
            link.live.heard();
            if let Target::Body(rest) = target {
                if n == rest {
                    if let Some(done) = body.take() {
                        if let Some(item) = decoder.supply_body(Bytes::from_owner(done))? {
                            self.take(item, &mut unboxer, link, ctrl).await?;
                        }
                    }
                }
            }
        }
    }

    /// Acts on what the decoder produced, unboxed first on a CURVE connection.
    async fn take(
        &self,
        item: Decoded,
        unboxer: &mut Option<Unboxer>,
        link: &Link,
        ctrl: &mpsc::Sender<Command>,
    ) -> Result<()> {
        match unboxer {
            None => self.handle(item, link, ctrl).await,
            Some(u) => match u.unbox(item)? {
                Some(item) => self.handle(item, link, ctrl).await,
                None => Ok(()),
            },
        }
    }

    /// Acts on a decoded message or command.
    async fn handle(&self, item: Decoded, link: &Link, ctrl: &mpsc::Sender<Command>) -> Result<()> {
        match item {
            Decoded::Message(msg) => {
                if self.socket.kind() == SocketType::Pull {
                    deliver(link, msg).await?;
                }
                // A PULL peer has nothing to send us; libzmq drops such frames too.
            }
            Decoded::Command(Command::Ping { ttl, context }) => {
                link.live.pinged(ttl as u64 * 100);
                // If the writer is backed up the peer is hearing from us anyway.
                let _ = ctrl.try_send(Command::Pong { context });
            }
            Decoded::Command(Command::Error(reason)) => {
                return Err(Error::new(
                    Code::Proto,
                    format!("peer sent ERROR: {reason}"),
                ));
            }
            // PONG only proves liveness (the read did); unknown commands are ignored so
            // newer peers can extend the protocol.
            Decoded::Command(_) => {}
        }
        Ok(())
    }

    async fn write_loop(
        &self,
        outlet: &Outlet,
        link: &Link,
        mut ctrl: mpsc::Receiver<Command>,
        mut sealer: Option<Session>,
    ) -> Result<()> {
        let kind = self.socket.kind();
        let write_error = |e: io::Error| Error::from_io(&e, "write to", &self.address);
        let pipe = &link.pipe;
        let wr = outlet.half();
        let mut out = BytesMut::with_capacity(WRITE_BATCH_BYTES);
        let mut batch: Vec<Message> = Vec::with_capacity(WRITE_BATCH_MSGS);
        let mut heartbeat = (self.opts.heartbeat_interval > 0 && link.pings).then(|| {
            let period = Duration::from_millis(self.opts.heartbeat_interval as u64);
            let mut t = tokio::time::interval_at(Instant::now() + period, period);
            // After a stall, one PING, not a burst of the ones missed.
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        });
        let ttl = (self.opts.heartbeat_time_to_live / 100).clamp(0, u16::MAX as i32) as u16;
        let ping = || Command::Ping {
            ttl,
            context: Bytes::new(),
        };
        loop {
            // The turn is this task's from here until it goes idle below: nothing the
            // sending thread writes can come between what it writes.
            if let Some(mut rest) = outlet.claim() {
                write_all(wr, &mut rest, &link.live)
                    .await
                    .map_err(write_error)?;
                pipe.written();
            }
            while let Ok(cmd) = ctrl.try_recv() {
                put_command(&cmd, &mut out, &mut sealer)?;
            }
            // A writer that always has data never reaches the select below, yet a PULL peer
            // only speaks when PINGed: without this its silence would trip our watchdog.
            if let Some(h) = heartbeat.as_mut() {
                let due = std::future::poll_fn(|cx| Poll::Ready(h.poll_tick(cx).is_ready())).await;
                if due {
                    put_command(&ping(), &mut out, &mut sealer)?;
                }
            }
            let mut taken = 0;
            if kind == SocketType::Push {
                // Byte-bounded: messages still queued outlive this connection (see pop_batch).
                taken = pipe.pop_batch(&mut batch, WRITE_BATCH_MSGS, WRITE_BATCH_BYTES);
                for msg in batch.drain(..) {
                    if let Some(session) = sealer.as_mut() {
                        traffic::seal_message(session, &msg, &mut out)?;
                        if out.len() >= WRITE_BATCH_BYTES {
                            write_all(wr, &mut out, &link.live)
                                .await
                                .map_err(write_error)?;
                        }
                        continue;
                    }
                    let frames = msg.frames();
                    let last = frames.len().saturating_sub(1);
                    for (i, frame) in frames.iter().enumerate() {
                        codec::encode_frame_header(i != last, frame.len(), &mut out);
                        if frame.len() >= WRITE_BY_REFERENCE_MIN {
                            let mut body: Bytes = frame.clone();
                            let mut both = bytes::Buf::chain(&mut out, &mut body);
                            write_all(wr, &mut both, &link.live)
                                .await
                                .map_err(write_error)?;
                        } else {
                            out.extend_from_slice(frame);
                        }
                    }
                    if out.len() >= WRITE_BATCH_BYTES {
                        write_all(wr, &mut out, &link.live)
                            .await
                            .map_err(write_error)?;
                    }
                }
            }
            if !out.is_empty() {
                write_all(wr, &mut out, &link.live)
                    .await
                    .map_err(write_error)?;
            }
            if taken > 0 {
                pipe.written();
                continue;
            }

            // Only a PUSH writer waits for data; a PULL's notify belongs to its reader (room
            // in the pipe), and registering here could swallow the reader's wake-up.
            let data_ready = async {
                if kind != SocketType::Push {
                    return std::future::pending::<()>().await;
                }
                link.notify.notified().await
            };
            tokio::pin!(data_ready);
            if kind == SocketType::Push {
                // Register before the last emptiness check so a push in between is not missed.
                let ready = poll_once(data_ready.as_mut()).await;
                if ready || !pipe.is_empty() {
                    continue;
                }
                // Registered and empty: a message sent from now on may be written by the
                // sending thread, and one it leaves unfinished wakes `data_ready`.
                outlet.idle();
            }
            let tick = async {
                match heartbeat.as_mut() {
                    Some(h) => {
                        h.tick().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let keepalive = async {
                match link.live.keepalive_period().filter(|_| link.pings) {
                    Some(period) => tokio::time::sleep(period).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = &mut data_ready => {}
                cmd = ctrl.recv() => match cmd {
                    Some(cmd) => put_command(&cmd, &mut out, &mut sealer)?,
                    None => return Ok(()),
                },
                _ = tick => put_command(&ping(), &mut out, &mut sealer)?,
                // The reader is paused, so the peer's PINGs go unanswered: tell it we live.
                _ = keepalive => put_command(&ping(), &mut out, &mut sealer)?,
                // Paused or resumed: look at the keepalive again.
                _ = link.live.pause_changed.notified() => {}
            }
        }
    }
}

/// Appends a command: framed as is on a NULL connection, sealed in a MESSAGE on CURVE.
fn put_command(cmd: &Command, out: &mut BytesMut, sealer: &mut Option<Session>) -> Result<()> {
    match sealer {
        None => {
            codec::encode_command(cmd, out);
            Ok(())
        }
        Some(session) => traffic::seal_command(session, cmd, out),
    }
}

/// The peer's address as an authenticator is told it (as ZAP does): the IP without the
/// port for tcp, the endpoint for ipc.
fn zap_address(stream: &Stream, endpoint: &str) -> String {
    match stream {
        Stream::Tcp(s) => s
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default(),
        #[allow(unreachable_patterns)]
        _ => endpoint.to_string(),
    }
}

/// Where the next read goes.
#[derive(Clone, Copy)]
enum Target {
    /// The read buffer: whatever is there, up to its spare capacity.
    Buf,
    /// A frame header alone (after a large body: the next body may be large too).
    Header,
    /// The rest of a large body, into its own buffer: at most this many bytes.
    Body(usize),
}

/// Reads what is there into the place `target` names.
async fn read_more(
    rd: &mut ReadHalf,
    buf: &mut BytesMut,
    body: &mut Option<PooledBuf>,
    target: Target,
) -> io::Result<usize> {
    match (target, body.as_mut()) {
        (Target::Body(rest), Some(b)) => rd.read_buf(&mut b.limit(rest)).await,
        (Target::Header, _) => {
            // Into a small buffer first: `buf` may have no spare room.
            let mut header = [0u8; codec::MAX_HEADER_LEN];
            let n = rd.read(&mut header).await?;
            buf.extend_from_slice(&header[..n]);
            Ok(n)
        }
        _ => rd.read_buf(buf).await,
    }
}

/// Queues a received message, waiting while the pipe is at its high-water mark — which
/// stops this reader and so lets TCP push back on the sender. The wait is not silence.
async fn deliver(link: &Link, msg: Message) -> Result<()> {
    let mut msg = msg;
    let mut paused = false;
    let result = loop {
        let notified = link.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match link.pipe.try_push(msg) {
            Ok(_) => break Ok(()),
            Err(PushError::Full(m)) => msg = m,
            Err(PushError::Closed(_)) => break Err(Error::closed()),
        }
        if !paused {
            paused = true;
            link.live.pause();
        }
        notified.await;
    };
    if paused {
        link.live.resume();
    }
    result
}

/// Writes all of `buf`. A write that had to wait for the kernel's buffer to drain and then
/// went through counts as hearing from the peer: its TCP stack acknowledged our data and its
/// application read it (see [`crate::heartbeat`]).
async fn write_all<B: Buf>(wr: &WriteHalf, buf: &mut B, live: &Liveness) -> io::Result<()> {
    let mut waited = false;
    while buf.has_remaining() {
        let r = {
            let mut slices = [IoSlice::new(&[]); MAX_IO_SLICES];
            let count = buf.chunks_vectored(&mut slices);
            wr.try_write_vectored(&slices[..count])
        };
        let n = match r {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                waited = true;
                wr.writable().await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        #[cfg(feature = "stage-trace")]
        crate::trace::record_write();
        buf.advance(n);
        live.wrote(n);
        if waited {
            waited = false;
            live.heard();
        }
        // `try_write` spends none of tokio's cooperative budget (`poll_write` did): without
        // this a writer that always has data would never yield, starving this
        // connection's reader (the peer's PINGs) and the thread's other tasks.
        tokio::task::consume_budget().await;
    }
    Ok(())
}

/// `write_all` for the outlet's unit tests.
#[cfg(test)]
pub(crate) async fn tests_write_all(wr: &WriteHalf, buf: &mut Bytes) {
    let live = Liveness::new(&SocketOptions::default(), true);
    write_all(wr, buf, &live).await.expect("write the rest");
}

/// Polls a future once: true if it completed. Registering a `Notified` this way (rather
/// than `enable`, which needs the concrete type) closes the check-then-wait race.
async fn poll_once<F: Future<Output = ()>>(f: Pin<&mut F>) -> bool {
    let mut f = Some(f);
    std::future::poll_fn(move |cx| {
        let done = match f.as_mut() {
            Some(fut) => fut.as_mut().poll(cx).is_ready(),
            None => true,
        };
        Poll::Ready(done)
    })
    .await
}
