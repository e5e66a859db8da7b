//! `tcp://`: binding with libzmq's socket options, resolving names, connecting.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

use super::{not_connectable, BACKLOG};
use crate::endpoint::TcpHost;
use crate::error::{Code, Error, Result};

/// Resolves a host name, IPv4 addresses first (see [`super::connect`] for why), keeping the
/// resolver's order within each family.
async fn resolve(name: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port)).await?.collect();
    addrs.sort_by_key(|a| a.is_ipv6());
    addrs.dedup();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"));
    }
    Ok(addrs)
}

fn unresolvable(name: &str, addr: &str, err: &io::Error) -> Error {
    Error::new(
        Code::Inval,
        format!("Cannot resolve host \"{name}\" in \"{addr}\": {err}"),
    )
}

/// Binds and listens; returns the listener and its `tcp://ip:port` endpoint text.
pub(super) async fn bind(
    host: &TcpHost,
    port: Option<u16>,
    addr: &str,
) -> Result<(TcpListener, String)> {
    let port = port.unwrap_or(0);
    let candidates = match host {
        // libzmq binds `*` to IPv4 only unless ZMQ_IPV6 is set; matching it means a libzmq
        // peer told "connect to this host" finds us.
        TcpHost::Any => vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)],
        TcpHost::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        TcpHost::Name(name) => resolve(name, port)
            .await
            .map_err(|e| unresolvable(name, addr, &e))?,
    };
    let mut first_error = None;
    for candidate in candidates {
        match bind_one(candidate) {
            Ok(std_listener) => {
                let listener = TcpListener::from_std(std_listener)
                    .map_err(|e| Error::from_io(&e, "Cannot bind to", addr))?;
                let local = listener
                    .local_addr()
                    .map_err(|e| Error::from_io(&e, "Cannot bind to", addr))?;
                return Ok((listener, format!("tcp://{local}")));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let err =
        first_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no addresses"));
    Err(Error::from_io(&err, "Cannot bind to", addr))
}

fn bind_one(at: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))?;
    // On Unix SO_REUSEADDR only lets us re-bind a port whose old connections sit in
    // TIME_WAIT (a restarted server would otherwise wait minutes); a port someone is
    // listening on still gives EADDRINUSE. On Windows the same option would let two
    // sockets share a live port, so it stays off there. SO_REUSEPORT is never set: it
    // would let a second bind silently split our connections.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    if at.is_ipv6() && at.ip().is_unspecified() {
        // `[::]` means every interface, so accept IPv4 too, as libzmq does with ZMQ_IPV6.
        // Failure only narrows what we accept, so it is not worth failing the bind for.
        let _ = socket.set_only_v6(false);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&at.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Accepts one connection, with `TCP_NODELAY` set, and names the peer `tcp://ip:port`.
pub(super) async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, String)> {
    let (stream, peer) = listener.accept().await?;
    set_nodelay(&stream);
    Ok((stream, format!("tcp://{peer}")))
}

fn set_nodelay(stream: &TcpStream) {
    // ZMTP batches frames itself; Nagle would only add latency to the last frame of a
    // burst. Failing to set it costs latency, not correctness, and a socket that broke in
    // the meantime reports that on its first read or write anyway.
    let _ = stream.set_nodelay(true);
}

/// Connects to the first address of `host` that accepts, trying every resolved address.
pub(super) async fn connect(
    host: &TcpHost,
    port: Option<u16>,
    addr: &str,
) -> io::Result<TcpStream> {
    let Some(port) = port else {
        return Err(not_connectable(addr, "ephemeral port"));
    };
    let candidates = match host {
        TcpHost::Any => return Err(not_connectable(addr, "\"*\" is not a host")),
        TcpHost::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        TcpHost::Name(name) => resolve(name, port).await.map_err(|e| {
            io::Error::new(e.kind(), format!("cannot resolve host \"{name}\": {e}"))
        })?,
    };
    let mut first_error = None;
    for candidate in candidates {
        match TcpStream::connect(candidate).await {
            Ok(stream) => {
                set_nodelay(&stream);
                return Ok(stream);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no addresses")))
}
