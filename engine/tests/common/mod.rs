//! Helpers shared by the engine's integration tests (each test file is its own crate and
//! uses what it needs).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use zeropipe_engine::codec::Decoder;
use zeropipe_engine::curve::{CurveKeys, CurveOptions};
use zeropipe_engine::handshake::handshake;
use zeropipe_engine::{Event, EventKind, Message, Socket, SocketOptions, SocketType};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh address for `proto` ("tcp", "ipc" or "inproc"): tcp binds an ephemeral port
/// (read it back from `bind`), ipc a path of this process, inproc a name of this process.
pub fn unique(proto: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    match proto {
        "tcp" => "tcp://127.0.0.1:*".to_string(),
        "ipc" => format!("ipc:///tmp/zeropipe-engine-test-{pid}-{n}.sock"),
        _ => format!("inproc://engine-test-{pid}-{n}"),
    }
}

pub const PROTOS: [&str; 3] = ["tcp", "ipc", "inproc"];

pub fn sock(kind: SocketType) -> Socket {
    sock_with(kind, |_| {})
}

pub fn sock_with(kind: SocketType, f: impl FnOnce(&mut SocketOptions)) -> Socket {
    let mut o = SocketOptions::default();
    f(&mut o);
    Socket::new(kind, o, tokio::runtime::Handle::current()).expect("valid options")
}

pub fn msg(parts: &[&[u8]]) -> Message {
    Message::from(
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p))
            .collect::<Vec<_>>(),
    )
}

pub async fn recv(s: &Socket) -> Message {
    timeout(Duration::from_secs(5), s.recv())
        .await
        .expect("receive timed out")
        .expect("receive failed")
}

/// A free loopback port (nothing listens on it once this returns).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// A hand-driven peer on an accepted connection: our own handshake code as the far side
/// (as `kind`), then raw frames.
pub async fn accept_raw(
    listener: &TcpListener,
    kind: SocketType,
) -> (TcpStream, BytesMut, Decoder) {
    let (stream, _) = listener.accept().await.expect("accept");
    handshaken(stream, kind).await
}

/// A raw peer that connects to `endpoint` (`tcp://host:port`) and completes the handshake
/// as `kind`, then speaks raw frames.
pub async fn connect_raw(endpoint: &str, kind: SocketType) -> (TcpStream, BytesMut, Decoder) {
    let stream = TcpStream::connect(endpoint.trim_start_matches("tcp://"))
        .await
        .expect("connect");
    handshaken(stream, kind).await
}

async fn handshaken(mut stream: TcpStream, kind: SocketType) -> (TcpStream, BytesMut, Decoder) {
    let mut buf = BytesMut::new();
    let mut dec = Decoder::new(-1);
    handshake(&mut stream, kind, &mut buf, &mut dec)
        .await
        .expect("handshake");
    (stream, buf, dec)
}

pub fn count(events: &[Event], kind: EventKind) -> usize {
    events.iter().filter(|e| e.kind == kind).count()
}

/// Waits until `socket` has reported `n` events of `kind` (monitoring must be enabled),
/// returning every event taken meanwhile.
pub async fn wait_for_events(
    socket: &Socket,
    kind: EventKind,
    n: usize,
    limit: Duration,
) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = Vec::new();
    while count(&seen, kind) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} {kind:?} events",
            count(&seen, kind)
        );
        seen.extend(socket.take_events(4096));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen
}

/// CURVE options for a server with `keys` (ZAP domain "test", no allowlist).
pub fn curve_server(keys: &CurveKeys) -> CurveOptions {
    CurveOptions {
        server: true,
        secret_key: keys.secret,
        public_key: [0; 32],
        server_key: None,
        zap_domain: "test".into(),
        allow: None,
    }
}

/// CURVE options for a client with `keys` of the server whose public key is `server_public`.
pub fn curve_client(keys: &CurveKeys, server_public: [u8; 32]) -> CurveOptions {
    CurveOptions {
        server: false,
        secret_key: keys.secret,
        public_key: keys.public,
        server_key: Some(server_public),
        zap_domain: String::new(),
        allow: None,
    }
}
