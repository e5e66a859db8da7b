//! One tcp/ipc connection: handshake, then a reader and a writer driven by one task, plus
//! heartbeats; and the connector loop that (re)establishes outgoing connections.
//!
//! Reader and writer run as two futures in one `select!` rather than two spawned tasks: a
//! connection then costs one task, and when either side fails the whole connection ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::codec::{self, Command, Decoded, Decoder};
use crate::endpoint::Endpoint;
use crate::error::{Code, Error, Result};
use crate::events::EventKind;
use crate::handshake::{self, SocketType};
use crate::message::Message;
use crate::options::{millis, SocketOptions};
use crate::pipe::{Pipe, PushError};
use crate::shutdown::Shutdown;
use crate::socket::Inner;
use crate::transport::{self, Stream};

/// The smallest read: many small messages per syscall. Each read's buffer is shared by the
/// messages decoded from it, until they are all delivered.
const READ_CHUNK: usize = 64 * 1024;
/// The largest body reserved in one go from its declared size alone (see `reader`).
const BODY_RESERVE_MAX: usize = 4 << 20;
/// Frames at least this large are written straight from their `Bytes`, not copied into
/// the write buffer.
const ZERO_COPY_MIN: usize = 32 * 1024;
/// Flush the write buffer once it holds this much.
const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// Messages taken from the pipe per writer round.
const WRITE_BATCH_MSGS: usize = 512;

/// Where the connection's pipe comes from.
enum PipeSource {
    /// A connect-side pipe that outlives reconnects; `attached` says whether the socket
    /// already has it (it does unless `immediate` kept it out until a peer is there).
    Persistent { pipe: Arc<Pipe>, notify: Arc<Notify> },
    /// A connection without its own pipe: one is made after the handshake (accepted
    /// connections, and connect-side PUSH with `immediate`).
    Fresh,
}

/// Runs an accepted connection until it ends, the socket's connections stop, or its
/// endpoint is unbound.
pub(crate) async fn accepted(inner: Arc<Inner>, stream: Stream, address: String, socket: Shutdown, unbound: Shutdown) {
    let stop = either(socket, unbound);
    let _ = run_until(&inner, stream, &address, PipeSource::Fresh, stop).await;
    inner.event(EventKind::Disconnect, &address, None, None);
}

/// Resolves when either shutdown fires.
async fn either(mut a: Shutdown, mut b: Shutdown) {
    tokio::select! {
        _ = a.wait() => {},
        _ = b.wait() => {},
    }
}

/// Connects to `ep`, runs the connection, and reconnects with backoff until shut down.
pub(crate) async fn connector(
    inner: Arc<Inner>,
    ep: Endpoint,
    address: String,
    pipe: Option<Arc<Pipe>>,
    notify: Arc<Notify>,
    mut shutdown: Shutdown,
) {
    let opts = inner.options();
    let base = opts.reconnect_interval;
    let mut interval = base.max(0) as u64;
    let conn_shutdown = inner.conn_shutdown();
    loop {
        let attempt = tokio::select! {
            _ = shutdown.wait() => return,
            r = transport::connect(&ep, &address, millis(opts.connect_timeout).filter(|d| !d.is_zero())) => r,
        };
        match attempt {
            Ok(stream) => {
                inner.event(EventKind::Connect, &address, None, None);
                let source = match &pipe {
                    Some(p) => PipeSource::Persistent { pipe: p.clone(), notify: notify.clone() },
                    None => PipeSource::Fresh,
                };
                // Either this endpoint's trigger (disconnect/close) or the socket-wide one
                // ends the connection.
                let stop = either(shutdown.clone(), conn_shutdown.clone());
                let handshaken = run_until(&inner, stream, &address, source, stop).await;
                inner.event(EventKind::Disconnect, &address, None, None);
                if handshaken {
                    interval = base.max(0) as u64;
                }
            }
            Err(e) => {
                let err = Error::from_io(&e, "connect to", &address);
                inner.event(EventKind::ConnectDelay, &address, None, Some(err));
            }
        }
        // A closing PUSH keeps reconnecting while it lingers (as libzmq does), so what it
        // queued for a peer that is briefly down still gets there; it stops once close()
        // ends its connections.
        if base < 0 || shutdown.is_fired() || conn_shutdown.is_fired() {
            return;
        }
        inner.event(EventKind::ConnectRetry, &address, Some(interval), None);
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(Duration::from_millis(interval)) => {}
        }
        // As libzmq: a maximum not above the base interval means no backoff.
        if opts.reconnect_max_interval > base {
            interval = (interval.max(1) * 2).min(opts.reconnect_max_interval as u64);
        }
    }
}

/// Shared, lock-free connection state read by the watchdog.
struct Liveness {
    start: Instant,
    /// Milliseconds since `start` of the last bytes received.
    last_recv: AtomicU64,
    /// The TTL the peer asked for in its last PING, ms (0 = none).
    peer_ttl: AtomicU64,
}

impl Liveness {
    fn touch(&self) {
        self.last_recv.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn silent_for(&self) -> u64 {
        (self.start.elapsed().as_millis() as u64).saturating_sub(self.last_recv.load(Ordering::Relaxed))
    }
}

/// Returns whether the handshake completed.
async fn run_until(
    inner: &Arc<Inner>,
    mut stream: Stream,
    address: &str,
    source: PipeSource,
    stop: impl std::future::Future<Output = ()>,
) -> bool {
    let opts = inner.options();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut decoder = Decoder::new(opts.max_message_size);
    tokio::pin!(stop);

    let hs = handshake::handshake(&mut stream, inner.kind, &mut buf, &mut decoder);
    let hs = async {
        match millis(opts.handshake_interval).filter(|d| !d.is_zero()) {
            Some(d) => match tokio::time::timeout(d, hs).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(Code::Again, format!("handshake with {address} timed out"))),
            },
            None => hs.await,
        }
    };
    let peer = tokio::select! {
        _ = &mut stop => return false,
        r = hs => r,
    };
    if let Err(e) = peer {
        let kind = if e.code == Code::Proto { EventKind::HandshakeErrorProtocol } else { EventKind::HandshakeErrorOther };
        inner.event(kind, address, None, Some(e));
        return false;
    }
    if inner.is_closed() && inner.kind == SocketType::Pull {
        return false;
    }

    let (pipe, notify, fresh) = match source {
        PipeSource::Persistent { pipe, notify } => (pipe, notify, false),
        PipeSource::Fresh => {
            let notify = Arc::new(Notify::new());
            let pipe = inner.new_pipe(&opts, notify.clone());
            inner.attach(pipe.clone());
            (pipe, notify, true)
        }
    };
    inner.event(EventKind::Handshake, address, None, None);

    let live = Liveness { start: Instant::now(), last_recv: AtomicU64::new(0), peer_ttl: AtomicU64::new(0) };
    let (ctrl_tx, ctrl_rx) = mpsc::channel::<Command>(8);
    let (rd, wr) = stream.into_split();
    let result = tokio::select! {
        _ = &mut stop => Ok(()),
        r = reader(rd, buf, decoder, inner.kind, &pipe, &notify, &ctrl_tx, &live) => r,
        r = writer(wr, inner.kind, &pipe, &notify, ctrl_rx, &opts) => r,
        e = watchdog(&opts, &live) => Err(e),
    };
    let _ = result;
    if inner.kind == SocketType::Push {
        // Whatever the writer had taken is gone with the connection.
        pipe.abandon_in_flight();
    }
    if fresh {
        inner.release_pipe(&pipe);
    }
    true
}

#[allow(clippy::too_many_arguments)]
async fn reader(
    mut rd: transport::ReadHalf,
    mut buf: BytesMut,
    mut decoder: Decoder,
    kind: SocketType,
    pipe: &Pipe,
    room: &Notify,
    ctrl: &mpsc::Sender<Command>,
    live: &Liveness,
) -> Result<()> {
    loop {
        while let Some(item) = decoder.decode(&mut buf)? {
            match item {
                Decoded::Message(msg) => {
                    if kind == SocketType::Pull {
                        deliver(pipe, room, msg).await?;
                    }
                    // A PULL peer has nothing to send us; libzmq drops such frames too.
                }
                Decoded::Command(cmd) => match cmd {
                    Command::Ping { ttl, context } => {
                        live.peer_ttl.store(ttl as u64 * 100, Ordering::Relaxed);
                        // If the writer is backed up the peer is hearing from us anyway.
                        let _ = ctrl.try_send(Command::Pong { context });
                    }
                    Command::Error(reason) => {
                        return Err(Error::new(Code::Proto, format!("peer sent ERROR: {reason}")));
                    }
                    // PONG only proves liveness (the read was touched); unknown commands are ignored
                    // so newer peers can extend the protocol.
                    _ => {}
                },
            }
        }
        // Reads are at least READ_CHUNK, so small messages arrive many per syscall. A large
        // frame's body is read into one allocation of its declared size, up to
        // BODY_RESERVE_MAX; beyond that it grows by at most doubling what already arrived, so
        // a declared size alone never commits more than that (and untouched reserved pages
        // cost no memory). The extra header's worth lets a stream of large frames take one
        // read per frame instead of a short header read and a body read.
        let needed = decoder.needed();
        let cap = READ_CHUNK.max(buf.len()).max(needed.min(BODY_RESERVE_MAX));
        buf.reserve(needed.clamp(READ_CHUNK, cap) + codec::MAX_HEADER_LEN);
        let n = rd.read_buf(&mut buf).await.map_err(|e| Error::from_io(&e, "read from", "peer"))?;
        if n == 0 {
            return Ok(());
        }
        live.touch();
    }
}

/// Queues a received message, waiting while the pipe is at its high-water mark — which
/// stops this reader and so lets TCP push back on the sender.
async fn deliver(pipe: &Pipe, room: &Notify, msg: Message) -> Result<()> {
    let mut msg = msg;
    loop {
        let notified = room.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match pipe.try_push(msg) {
            Ok(()) => return Ok(()),
            Err(PushError::Full(m)) => msg = m,
            Err(PushError::Closed(_)) => return Err(Error::closed()),
        }
        notified.await;
    }
}

async fn writer(
    mut wr: transport::WriteHalf,
    kind: SocketType,
    pipe: &Pipe,
    data: &Notify,
    mut ctrl: mpsc::Receiver<Command>,
    opts: &SocketOptions,
) -> Result<()> {
    let io_err = |e: std::io::Error| Error::from_io(&e, "write to", "peer");
    let mut out = BytesMut::with_capacity(WRITE_BATCH_BYTES);
    let mut batch: Vec<Message> = Vec::with_capacity(WRITE_BATCH_MSGS);
    let mut heartbeat = (opts.heartbeat_interval > 0).then(|| {
        let period = Duration::from_millis(opts.heartbeat_interval as u64);
        tokio::time::interval_at(Instant::now() + period, period)
    });
    let ttl = (opts.heartbeat_time_to_live / 100).clamp(0, u16::MAX as i32) as u16;
    loop {
        while let Ok(cmd) = ctrl.try_recv() {
            codec::encode_command(&cmd, &mut out);
        }
        // A writer that always has data never reaches the select below, yet a PULL peer
        // only speaks when PINGed: without this its silence would trip our watchdog.
        if let Some(h) = heartbeat.as_mut() {
            let due = std::future::poll_fn(|cx| std::task::Poll::Ready(h.poll_tick(cx).is_ready())).await;
            if due {
                codec::encode_command(&Command::Ping { ttl, context: Bytes::new() }, &mut out);
            }
        }
        let mut taken = 0;
        if kind == SocketType::Push {
            // Byte-bounded: messages still queued outlive this connection (see pop_batch).
            taken = pipe.pop_batch(&mut batch, WRITE_BATCH_MSGS, WRITE_BATCH_BYTES);
            for msg in batch.drain(..) {
                let frames = msg.frames();
                let last = frames.len().saturating_sub(1);
                for (i, frame) in frames.iter().enumerate() {
                    if frame.len() >= ZERO_COPY_MIN {
                        codec::encode_frame_header(i != last, frame.len(), &mut out);
                        let mut body: Bytes = frame.clone();
                        let mut both = bytes::Buf::chain(&mut out, &mut body);
                        wr.write_all_buf(&mut both).await.map_err(io_err)?;
                    } else {
                        codec::encode_frame_header(i != last, frame.len(), &mut out);
                        out.extend_from_slice(frame);
                    }
                }
                if out.len() >= WRITE_BATCH_BYTES {
                    wr.write_all_buf(&mut out).await.map_err(io_err)?;
                }
            }
        }
        if !out.is_empty() {
            wr.write_all_buf(&mut out).await.map_err(io_err)?;
        }
        if taken > 0 {
            pipe.written();
            continue;
        }
        wr.flush().await.map_err(io_err)?;

        // Only a PUSH writer waits for data; a PULL's notify belongs to its reader (room in
        // the pipe), and registering here could swallow the reader's wake-up.
        let data_ready = async {
            if kind != SocketType::Push {
                return std::future::pending::<()>().await;
            }
            data.notified().await
        };
        tokio::pin!(data_ready);
        if kind == SocketType::Push {
            // Register before the last emptiness check so a push in between is not missed.
            let poll = futures_poll_once(data_ready.as_mut()).await;
            if poll || !pipe.is_empty() {
                continue;
            }
        }
        let tick = async {
            match heartbeat.as_mut() {
                Some(h) => {
                    h.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = &mut data_ready => {}
            cmd = ctrl.recv() => match cmd {
                Some(cmd) => codec::encode_command(&cmd, &mut out),
                None => return Ok(()),
            },
            _ = tick => {
                codec::encode_command(&Command::Ping { ttl, context: Bytes::new() }, &mut out);
            }
        }
    }
}

/// Ends the connection when the peer has been silent too long: longer than our heartbeat
/// interval plus timeout (we PING it every interval, so a live peer answers), or longer than
/// the TTL the peer itself announced.
async fn watchdog(opts: &SocketOptions, live: &Liveness) -> Error {
    let ours = (opts.heartbeat_interval > 0).then(|| {
        let timeout = if opts.heartbeat_timeout > 0 { opts.heartbeat_timeout } else { opts.heartbeat_interval };
        opts.heartbeat_interval as u64 + timeout as u64
    });
    loop {
        let ttl = live.peer_ttl.load(Ordering::Relaxed);
        let limit = match (ours, ttl) {
            (Some(a), 0) => a,
            (Some(a), t) => a.min(t),
            (None, 0) => {
                // No heartbeat in force yet; a PING with a TTL may start one.
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            (None, t) => t,
        };
        let silent = live.silent_for();
        if silent >= limit {
            return Error::new(Code::Again, format!("peer silent for {silent} ms: heartbeat timeout"));
        }
        tokio::time::sleep(Duration::from_millis((limit - silent).clamp(10, 1000))).await;
    }
}

/// Polls a future once: true if it completed. Registering a `Notified` this way (rather
/// than `enable`, which needs the concrete type) closes the check-then-wait race.
async fn futures_poll_once<F: std::future::Future<Output = ()>>(f: std::pin::Pin<&mut F>) -> bool {
    let mut f = Some(f);
    std::future::poll_fn(move |cx| {
        let done = match f.as_mut() {
            Some(fut) => fut.as_mut().poll(cx).is_ready(),
            None => true,
        };
        std::task::Poll::Ready(done)
    })
    .await
}
