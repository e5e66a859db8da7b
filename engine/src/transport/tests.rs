//! Transport tests. Everything stays on loopback or in the local file system; nothing here
//! resolves a name through DNS.

use std::io::IoSlice;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::endpoint::parse;

const PATIENCE: Option<Duration> = Some(Duration::from_secs(5));

fn ep(addr: &str) -> Endpoint {
    parse(addr).unwrap_or_else(|e| panic!("{addr} should parse: {e}"))
}

async fn bind(addr: &str) -> Result<Listener> {
    Listener::bind(&ep(addr), addr).await
}

async fn bind_ok(addr: &str) -> Listener {
    bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"))
}

fn bind_err(result: Result<Listener>, addr: &str) -> Error {
    match result {
        Ok(l) => panic!("bind {addr} should fail, got {}", l.endpoint()),
        Err(e) => e,
    }
}

/// Connects to `target`, accepts on `listener`, and checks bytes flow both ways. Returns
/// the peer text the listener reported.
async fn assert_round_trip(listener: &Listener, target: &str) -> String {
    let endpoint = ep(target);
    let (connected, accepted) =
        tokio::join!(connect(&endpoint, target, PATIENCE), listener.accept());
    let mut client = connected.unwrap_or_else(|e| panic!("connect {target}: {e}"));
    let (mut server, peer) =
        accepted.unwrap_or_else(|e| panic!("accept on {}: {e}", listener.endpoint()));
    client.write_all(b"ping").await.expect("client write");
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await.expect("server read");
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").await.expect("server write");
    client.read_exact(&mut buf).await.expect("client read");
    assert_eq!(&buf, b"pong");
    peer
}

/// Connects to `target` while accepting on `listener`; returns (client, server).
async fn connect_pair(listener: &Listener, target: &str) -> (Stream, Stream) {
    let endpoint = ep(target);
    let (connected, accepted) =
        tokio::join!(connect(&endpoint, target, PATIENCE), listener.accept());
    let client = connected.unwrap_or_else(|e| panic!("connect {target}: {e}"));
    let (server, _) = accepted.unwrap_or_else(|e| panic!("accept on {}: {e}", listener.endpoint()));
    (client, server)
}

fn port_of(endpoint: &str) -> u16 {
    let port = endpoint.rsplit(':').next().expect("endpoint has a port");
    port.parse()
        .unwrap_or_else(|e| panic!("port in {endpoint}: {e}"))
}

// ---------------------------------------------------------------- tcp

#[tokio::test]
async fn tcp_wildcard_host_and_port_zero_report_the_chosen_port() {
    let listener = bind_ok("tcp://*:0").await;
    let endpoint = listener.endpoint().to_owned();
    assert!(endpoint.starts_with("tcp://0.0.0.0:"), "{endpoint}");
    let port = port_of(&endpoint);
    assert_ne!(port, 0);
    assert_round_trip(&listener, &format!("tcp://127.0.0.1:{port}")).await;
}

#[tokio::test]
async fn tcp_star_port_binds_an_ephemeral_port() {
    let listener = bind_ok("tcp://127.0.0.1:*").await;
    let endpoint = listener.endpoint().to_owned();
    assert!(endpoint.starts_with("tcp://127.0.0.1:"), "{endpoint}");
    assert_ne!(port_of(&endpoint), 0);
    let peer = assert_round_trip(&listener, &endpoint).await;
    assert!(peer.starts_with("tcp://127.0.0.1:"), "{peer}");
}

#[tokio::test]
async fn binding_the_same_tcp_port_twice_is_eaddrinuse() {
    let first = bind_ok("tcp://127.0.0.1:0").await;
    let taken = first.endpoint().to_owned();
    let err = bind_err(bind(&taken).await, &taken);
    assert_eq!(err.code, Code::AddrInUse, "{err}");
    assert!(err.message.contains(&taken), "{err}");
    // The wildcard address overlaps every interface, so it is taken too.
    let wildcard = format!("tcp://*:{}", port_of(&taken));
    assert_eq!(
        bind_err(bind(&wildcard).await, &wildcard).code,
        Code::AddrInUse
    );
    assert_round_trip(&first, &taken).await;
}

#[tokio::test]
async fn a_closed_tcp_port_can_be_bound_again_at_once() {
    let listener = bind_ok("tcp://127.0.0.1:0").await;
    let endpoint = listener.endpoint().to_owned();
    let (mut client, server) = connect_pair(&listener, &endpoint).await;
    // Closing the accepted side first leaves it in TIME_WAIT on our port, which is what
    // blocks a restart without SO_REUSEADDR.
    drop(server);
    let mut buf = [0u8; 1];
    assert_eq!(client.read(&mut buf).await.expect("read EOF"), 0);
    drop(client);
    listener.close();
    let again = bind_ok(&endpoint).await;
    assert_eq!(again.endpoint(), endpoint);
}

#[tokio::test]
async fn binding_a_foreign_ip_is_eaddrnotavail() {
    // 192.0.2.0/24 is TEST-NET-1: never assigned to a real interface. Binding sends nothing.
    let addr = "tcp://192.0.2.1:5555";
    let err = bind_err(bind(addr).await, addr);
    assert_eq!(err.code, Code::AddrNotAvail, "{err}");
    assert!(err.message.contains(addr), "{err}");
}

#[tokio::test]
async fn localhost_binds_and_connects_by_name() {
    let listener = bind_ok("tcp://localhost:0").await;
    let endpoint = listener.endpoint().to_owned();
    assert!(
        endpoint.starts_with("tcp://127.0.0.1:") || endpoint.starts_with("tcp://[::1]:"),
        "{endpoint}"
    );
    let port = port_of(&endpoint);
    assert_round_trip(&listener, &format!("tcp://localhost:{port}")).await;
}

#[tokio::test]
async fn ipv6_loopback_binds_and_connects() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        println!("skipped ipv6_loopback_binds_and_connects: this machine has no IPv6 loopback");
        return;
    }
    let listener = bind_ok("tcp://[::1]:0").await;
    let endpoint = listener.endpoint().to_owned();
    assert!(endpoint.starts_with("tcp://[::1]:"), "{endpoint}");
    assert_ne!(port_of(&endpoint), 0);
    let peer = assert_round_trip(&listener, &endpoint).await;
    assert!(peer.starts_with("tcp://[::1]:"), "{peer}");
}

#[tokio::test]
async fn connecting_to_a_closed_port_is_refused() {
    let listener = bind_ok("tcp://127.0.0.1:0").await;
    let endpoint = listener.endpoint().to_owned();
    listener.close();
    let err = connect(&ep(&endpoint), &endpoint, PATIENCE)
        .await
        .expect_err("nobody listens");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
}

#[tokio::test]
async fn connect_times_out_when_the_listener_backlog_is_full() {
    use socket2::{Domain, Protocol, Socket, Type};
    // A listener that never accepts, with the smallest backlog: once its queue is full the
    // kernel drops further SYNs and the next connect hangs, a local stand-in for a
    // blackholed address.
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .expect("addr")
                .into(),
        )
        .expect("bind");
    socket.listen(0).expect("listen");
    let local = socket
        .local_addr()
        .expect("local addr")
        .as_socket()
        .expect("inet address");
    let target = format!("tcp://{local}");
    let endpoint = ep(&target);
    let mut held = Vec::new();
    for _ in 0..64 {
        match connect(&endpoint, &target, Some(Duration::from_millis(300))).await {
            Ok(stream) => held.push(stream),
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
                assert!(e.to_string().contains(&target), "{e}");
                assert!(
                    !held.is_empty(),
                    "the backlog admitted nobody before timing out"
                );
                return;
            }
        }
    }
    println!("skipped connect timeout check: the kernel never let a connect hang");
}

#[tokio::test]
async fn unconnectable_endpoints_are_invalid_input() {
    for addr in ["tcp://*:5555", "tcp://127.0.0.1:0", "ipc://*", "inproc://x"] {
        let err = connect(&ep(addr), addr, PATIENCE).await.expect_err(addr);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{addr}: {err}");
        assert!(err.to_string().contains(addr), "{err}");
    }
}

#[tokio::test]
async fn inproc_has_no_transport_listener() {
    let err = bind_err(bind("inproc://x").await, "inproc://x");
    assert_eq!(err.code, Code::Inval);
    assert!(err.message.contains("inproc://x"), "{err}");
}

// ---------------------------------------------------------------- split and vectored I/O

async fn tcp_pair() -> (Stream, Stream) {
    let listener = bind_ok("tcp://127.0.0.1:0").await;
    let endpoint = listener.endpoint().to_owned();
    connect_pair(&listener, &endpoint).await
}

async fn assert_vectored_write_through_halves(client: Stream, server: Stream) {
    assert!(client.is_write_vectored());
    let (_client_read, mut client_write) = client.into_split();
    let (mut server_read, _server_write) = server.into_split();
    assert!(client_write.is_write_vectored());
    let parts = [
        IoSlice::new(b"head"),
        IoSlice::new(b""),
        IoSlice::new(b"-"),
        IoSlice::new(b"body"),
    ];
    // The default `poll_write_vectored` writes only the first non-empty slice, so a count
    // past 4 proves the call reached the socket's writev.
    let written = client_write
        .write_vectored(&parts)
        .await
        .expect("write_vectored");
    assert_eq!(written, 9);
    let mut buf = [0u8; 9];
    server_read.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"head-body");
}

#[tokio::test]
async fn vectored_writes_pass_through_tcp_split_halves() {
    let (client, server) = tcp_pair().await;
    assert_vectored_write_through_halves(client, server).await;
}

#[tokio::test]
async fn dropping_the_write_half_ends_the_peer_stream_but_not_the_read_half() {
    let (client, mut server) = tcp_pair().await;
    let (mut client_read, client_write) = client.into_split();
    drop(client_write);
    let mut buf = [0u8; 2];
    assert_eq!(server.read(&mut buf).await.expect("read EOF"), 0);
    server.write_all(b"ok").await.expect("write back");
    client_read
        .read_exact(&mut buf)
        .await
        .expect("read after half-close");
    assert_eq!(&buf, b"ok");
}

// ---------------------------------------------------------------- ipc

#[cfg(unix)]
mod ipc_tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::FileTypeExt;
    use std::path::{Path, PathBuf};

    /// A private directory for one test, removed when the test ends.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("zp-{}-{test}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create scratch dir");
            Scratch(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn ipc(path: &Path) -> String {
        format!("ipc://{}", path.display())
    }

    fn is_socket(path: &Path) -> bool {
        fs::symlink_metadata(path)
            .map(|m| m.file_type().is_socket())
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn ipc_bind_creates_the_file_and_close_removes_it() {
        let dir = Scratch::new("create");
        let path = dir.path("s.sock");
        let addr = ipc(&path);
        let listener = bind_ok(&addr).await;
        assert_eq!(listener.endpoint(), addr);
        assert!(is_socket(&path));
        let peer = assert_round_trip(&listener, &addr).await;
        assert_eq!(peer, addr);
        listener.close();
        assert!(!path.exists(), "our socket file should be removed on close");
    }

    #[tokio::test]
    async fn ipc_stale_socket_file_is_cleared_and_bound() {
        let dir = Scratch::new("stale");
        let path = dir.path("s.sock");
        // A std listener dropped without cleanup leaves exactly what a crashed process does.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("std bind"));
        assert!(is_socket(&path));
        let addr = ipc(&path);
        let listener = bind_ok(&addr).await;
        assert_round_trip(&listener, &addr).await;
    }

    #[tokio::test]
    async fn ipc_live_socket_file_is_eaddrinuse() {
        let dir = Scratch::new("live");
        let path = dir.path("s.sock");
        let addr = ipc(&path);
        let first = bind_ok(&addr).await;
        let err = bind_err(bind(&addr).await, &addr);
        assert_eq!(err.code, Code::AddrInUse, "{err}");
        assert!(err.message.contains(&addr), "{err}");
        // Telling live from stale takes a probe connection, which the live listener sees
        // as a peer that hangs up at once (libzmq's probe does the same to its peers).
        let (mut probe, _) = first.accept().await.expect("accept the probe");
        let mut buf = [0u8; 1];
        assert_eq!(probe.read(&mut buf).await.expect("probe EOF"), 0);
        // The failed bind must not have touched the live listener's file.
        assert_round_trip(&first, &addr).await;
    }

    #[tokio::test]
    async fn ipc_path_that_is_not_a_socket_is_eaddrinuse_and_left_intact() {
        let dir = Scratch::new("file");
        let path = dir.path("precious.txt");
        fs::write(&path, b"user data").expect("write file");
        let addr = ipc(&path);
        let err = bind_err(bind(&addr).await, &addr);
        assert_eq!(err.code, Code::AddrInUse, "{err}");
        assert!(err.message.contains("not a socket"), "{err}");
        assert_eq!(fs::read(&path).expect("file still there"), b"user data");
    }

    #[tokio::test]
    async fn ipc_symlink_to_a_socket_is_not_followed() {
        let dir = Scratch::new("symlink");
        let target = dir.path("real.sock");
        drop(std::os::unix::net::UnixListener::bind(&target).expect("std bind"));
        let link = dir.path("link.sock");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let addr = ipc(&link);
        assert_eq!(bind_err(bind(&addr).await, &addr).code, Code::AddrInUse);
        assert!(fs::symlink_metadata(&link)
            .expect("link kept")
            .file_type()
            .is_symlink());
    }

    #[tokio::test]
    async fn ipc_wildcard_binds_a_fresh_path_removed_on_close() {
        let first = bind_ok("ipc://*").await;
        let second = bind_ok("ipc://*").await;
        assert_ne!(first.endpoint(), second.endpoint());
        let endpoint = first.endpoint().to_owned();
        let path = PathBuf::from(endpoint.strip_prefix("ipc://").expect("ipc endpoint"));
        assert!(path.is_absolute(), "{endpoint}");
        assert!(is_socket(&path), "{endpoint}");
        assert!(path.as_os_str().len() <= crate::endpoint::IPC_PATH_MAX);
        assert_round_trip(&first, &endpoint).await;
        first.close();
        assert!(!path.exists(), "{endpoint} should be removed on close");
        second.close();
    }

    #[tokio::test]
    async fn closing_a_listener_keeps_a_file_someone_else_rebound() {
        let dir = Scratch::new("rebound");
        let path = dir.path("s.sock");
        let addr = ipc(&path);
        let old = bind_ok(&addr).await;
        // Someone removed our file and bound the path anew, as a second process would.
        fs::remove_file(&path).expect("remove");
        let new = bind_ok(&addr).await;
        old.close();
        assert!(
            is_socket(&path),
            "the new owner's file must survive the old listener"
        );
        assert_round_trip(&new, &addr).await;
        new.close();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn ipc_relative_path_binds_in_the_working_directory() {
        let name = format!("zp-{}-relative.sock", std::process::id());
        let addr = format!("ipc://{name}");
        let listener = bind_ok(&addr).await;
        assert_eq!(listener.endpoint(), addr);
        assert!(is_socket(Path::new(&name)));
        assert_round_trip(&listener, &addr).await;
        listener.close();
        assert!(!Path::new(&name).exists());
    }

    #[tokio::test]
    async fn connecting_to_a_missing_ipc_path_fails_with_not_found() {
        let dir = Scratch::new("missing");
        let addr = ipc(&dir.path("nobody.sock"));
        let err = connect(&ep(&addr), &addr, PATIENCE)
            .await
            .expect_err("no socket");
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[tokio::test]
    async fn vectored_writes_pass_through_unix_split_halves() {
        let listener = bind_ok("ipc://*").await;
        let endpoint = listener.endpoint().to_owned();
        let (client, server) = connect_pair(&listener, &endpoint).await;
        assert_vectored_write_through_halves(client, server).await;
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn abstract_ipc_binds_and_connects_without_a_file() {
        let addr = format!("ipc://@zeropipe-test-{}-abstract", std::process::id());
        let listener = bind_ok(&addr).await;
        assert_eq!(listener.endpoint(), addr);
        assert_round_trip(&listener, &addr).await;
        let err = bind_err(bind(&addr).await, &addr);
        assert_eq!(err.code, Code::AddrInUse, "{err}");
        listener.close();
        // The name is released with the socket, so it can be bound again at once.
        bind_ok(&addr).await.close();
    }
}
