//! Byte streams for the ZMTP engine: TCP everywhere, Unix domain sockets (`ipc://`) on Unix.
//!
//! The engine above only needs "a duplex byte stream, split into a reader and a writer", so
//! everything transport-specific (socket options, resolution, ipc file ownership) stays here
//! and the rest of the engine matches on nothing. `inproc://` is not a byte stream and is
//! handled by the socket layer, never by this module.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::endpoint::Endpoint;
use crate::error::{Code, Error, Result};

#[cfg(unix)]
mod ipc;
mod tcp;

#[cfg(test)]
mod tests;

/// Listen backlog for every listener, libzmq's default `ZMQ_BACKLOG`.
const BACKLOG: i32 = 100;

/// Forwards one call to whichever tokio type an enum variant holds. The variants of
/// `Stream`, `ReadHalf` and `WriteHalf` share names so one macro serves all three.
macro_rules! each_variant {
    ($value:expr, $inner:ident => $body:expr) => {
        match $value {
            Self::Tcp($inner) => $body,
            #[cfg(unix)]
            Self::Unix($inner) => $body,
        }
    };
}

/// Implements `AsyncWrite` by delegation, including the vectored path: the engine writes a
/// frame header and its body in one `writev`, which only happens if every layer forwards
/// `poll_write_vectored` and reports `is_write_vectored` truthfully.
macro_rules! delegate_async_write {
    ($ty:ty) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                each_variant!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                each_variant!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
            }

            fn is_write_vectored(&self) -> bool {
                each_variant!(self, s => s.is_write_vectored())
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each_variant!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each_variant!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
            }
        }
    };
}

macro_rules! delegate_async_read {
    ($ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                each_variant!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
            }
        }
    };
}

/// A connected byte stream, from [`Listener::accept`] or [`connect`].
#[derive(Debug)]
pub enum Stream {
    /// A TCP connection (with `TCP_NODELAY` set, as ZeroMQ does).
    Tcp(tokio::net::TcpStream),
    /// A Unix domain socket connection (`ipc://`).
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

/// The reading half of a [`Stream`], from [`Stream::into_split`].
#[derive(Debug)]
pub enum ReadHalf {
    /// Reading half of a TCP connection.
    Tcp(tokio::net::tcp::OwnedReadHalf),
    /// Reading half of a Unix domain socket connection.
    #[cfg(unix)]
    Unix(tokio::net::unix::OwnedReadHalf),
}

/// The writing half of a [`Stream`], from [`Stream::into_split`]. Dropping it shuts down
/// the write direction (the peer reads end-of-stream) without closing the reading half.
#[derive(Debug)]
pub enum WriteHalf {
    /// Writing half of a TCP connection.
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    /// Writing half of a Unix domain socket connection.
    #[cfg(unix)]
    Unix(tokio::net::unix::OwnedWriteHalf),
}

impl Stream {
    /// Splits the stream so that reading and writing can live in separate tasks without a
    /// lock between them.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            #[cfg(unix)]
            Stream::Unix(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Unix(r), WriteHalf::Unix(w))
            }
        }
    }
}

impl ReadHalf {
    /// Reads what the kernel already holds, without waiting: `WouldBlock` when nothing is
    /// there. The heartbeat check uses it so that silence is judged on what has arrived,
    /// not on what the runtime has noticed yet: after a stall of this thread, tokio's
    /// readiness is stale until its driver runs again (and its own `try_read` trusts that
    /// readiness), so this asks the socket itself.
    pub fn read_now<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        let sock = match self {
            Self::Tcp(s) => socket2::SockRef::from(s.as_ref()),
            #[cfg(unix)]
            Self::Unix(s) => socket2::SockRef::from(s.as_ref()),
        };
        if !buf.has_remaining_mut() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no room to read into",
            ));
        }
        let dst = buf.chunk_mut();
        // SAFETY: the slice is only written (by `recv`), never read, as `UninitSlice` asks.
        let spare = unsafe { dst.as_uninit_slice_mut() };
        // The socket is non-blocking (tokio made it so): this returns at once.
        let n = sock.recv(spare)?;
        // SAFETY: `recv` initialised the first `n` bytes of that chunk.
        unsafe { buf.advance_mut(n) };
        Ok(n)
    }

    /// Bytes we wrote that the peer has not taken yet: for TCP, not yet acknowledged by the
    /// peer's kernel; for a Unix socket, not yet read by the peer. `None` where the
    /// platform cannot tell. A peer that takes what we wrote is not silent (see
    /// `heartbeat.rs`).
    pub fn unacked(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd = match self {
                Self::Tcp(s) => s.as_ref().as_raw_fd(),
                Self::Unix(s) => s.as_ref().as_raw_fd(),
            };
            let mut queued: libc::c_int = 0;
            // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one int through the pointer, on a socket
            // this half keeps open.
            let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
            (rc == 0 && queued >= 0).then_some(queued as u64)
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }
}

impl WriteHalf {
    /// Writes what the kernel takes now, without waiting (`WouldBlock` when it takes
    /// nothing). Takes `&self`: a PUSH's sending thread writes through the same half as
    /// its connection task (see `outlet.rs`), one at a time.
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        each_variant!(self, s => s.try_write_vectored(bufs))
    }

    /// Waits until the kernel may take more.
    pub async fn writable(&self) -> io::Result<()> {
        each_variant!(self, s => s.writable().await)
    }
}

delegate_async_read!(Stream);
delegate_async_read!(ReadHalf);
delegate_async_write!(Stream);
delegate_async_write!(WriteHalf);

/// A bound, listening endpoint.
///
/// Dropping it (or [`Listener::close`]) stops listening and, for an `ipc://` path that
/// this listener created, removes the socket file — but only while that file is still the
/// one we created, so a path re-bound by someone else in the meantime is left alone.
#[derive(Debug)]
pub struct Listener {
    inner: ListenerInner,
    endpoint: String,
}

#[derive(Debug)]
enum ListenerInner {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Ipc(ipc::IpcListener),
}

impl Listener {
    /// Binds and listens on `ep`; `addr` is the text the user gave, used in error messages.
    ///
    /// Errors: [`Code::AddrInUse`] for a taken port or a live/foreign ipc path,
    /// [`Code::AddrNotAvail`] for an IP that is not local, [`Code::Inval`] for a host that
    /// does not resolve or an `inproc://` endpoint (inproc is not a transport stream),
    /// [`Code::ProtoNoSupport`] for `ipc://` where Unix sockets (or, for `ipc://@name`, the
    /// abstract namespace) do not exist.
    pub async fn bind(ep: &Endpoint, addr: &str) -> Result<Listener> {
        match ep {
            Endpoint::Tcp { host, port } => {
                let (listener, endpoint) = tcp::bind(host, *port, addr).await?;
                Ok(Listener {
                    inner: ListenerInner::Tcp(listener),
                    endpoint,
                })
            }
            #[cfg(unix)]
            Endpoint::Ipc(ipc_addr) => {
                let (listener, endpoint) = ipc::bind(ipc_addr, addr).await?;
                Ok(Listener {
                    inner: ListenerInner::Ipc(listener),
                    endpoint,
                })
            }
            #[cfg(not(unix))]
            Endpoint::Ipc(_) => Err(Error::new(
                Code::ProtoNoSupport,
                format!("Protocol \"ipc\" is not supported on this platform in \"{addr}\""),
            )),
            Endpoint::Inproc(_) => Err(Error::new(
                Code::Inval,
                format!("Invalid address \"{addr}\": inproc endpoints have no transport listener"),
            )),
        }
    }

    /// The endpoint actually bound, as libzmq's `ZMQ_LAST_ENDPOINT` reports it: the port
    /// the OS chose for `tcp://*:0` (`tcp://0.0.0.0:54321`), the address a host name
    /// resolved to, the generated path for `ipc://*`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Waits for the next incoming connection and returns it with a text naming the peer
    /// (`tcp://ip:port`; for ipc, the peer's path if it bound one, else our own endpoint,
    /// since Unix clients are normally unnamed).
    ///
    /// An error here is usually about this one connection attempt (it was reset before we
    /// took it) or a temporary shortage (`EMFILE`); the listener stays usable.
    pub async fn accept(&self) -> io::Result<(Stream, String)> {
        match &self.inner {
            ListenerInner::Tcp(listener) => {
                let (stream, peer) = tcp::accept(listener).await?;
                Ok((Stream::Tcp(stream), peer))
            }
            #[cfg(unix)]
            ListenerInner::Ipc(listener) => {
                let (stream, peer) = listener.accept(&self.endpoint).await?;
                Ok((Stream::Unix(stream), peer))
            }
        }
    }

    /// Stops listening and removes our ipc socket file if it is still ours. Equivalent to
    /// dropping the listener; spelled out for call sites where the cleanup is the point.
    pub fn close(self) {
        drop(self);
    }
}

/// Connects to `ep` (`addr` is the user's text, for messages). Host names are resolved on
/// every call, IPv4 addresses tried before IPv6 ones (libzmq without `ZMQ_IPV6` only uses
/// IPv4, so that is where a libzmq peer bound to a name listens), each in turn until one
/// accepts.
///
/// `timeout` bounds the whole attempt, resolution included; when it expires the error has
/// kind [`io::ErrorKind::TimedOut`]. Endpoints that cannot be connected to (`*` host,
/// ephemeral port, `ipc://*`, `inproc://`) give [`io::ErrorKind::InvalidInput`]; check them
/// up front with [`crate::endpoint::validate_for_connect`] to get a proper EINVAL.
pub async fn connect(ep: &Endpoint, addr: &str, timeout: Option<Duration>) -> io::Result<Stream> {
    let attempt = connect_inner(ep, addr);
    match timeout {
        None => attempt.await,
        Some(limit) => match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {addr} timed out after {} ms", limit.as_millis()),
            )),
        },
    }
}

async fn connect_inner(ep: &Endpoint, addr: &str) -> io::Result<Stream> {
    match ep {
        Endpoint::Tcp { host, port } => tcp::connect(host, *port, addr).await.map(Stream::Tcp),
        #[cfg(unix)]
        Endpoint::Ipc(ipc_addr) => ipc::connect(ipc_addr, addr).await.map(Stream::Unix),
        #[cfg(not(unix))]
        Endpoint::Ipc(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("ipc is not supported on this platform: {addr}"),
        )),
        Endpoint::Inproc(_) => Err(not_connectable(
            addr,
            "inproc endpoints have no transport stream",
        )),
    }
}

fn not_connectable(addr: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("cannot connect to {addr}: {why}"),
    )
}
