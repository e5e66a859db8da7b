//! CURVE between two engine sockets over tcp and ipc: delivery (multipart, empty frames,
//! 1 MiB, 10 000 in order), fresh short-term keys per connection, heartbeats inside boxes,
//! refusals (NULL peers, a wrong server key, the allowlist, every authenticator status and
//! its timeout) and the events each side reports.

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;
use zeropipe_engine::curve::{
    self, AuthReply, AuthRequest, Authenticator, CurveKeys, CurveOptions,
};
use zeropipe_engine::greeting::encode_greeting_for;
use zeropipe_engine::{EventKind, Message, Socket, SocketType};

use common::{
    count, curve_client, curve_server, msg, recv, sock, sock_with, unique, wait_for_events,
};

const T: Duration = Duration::from_secs(10);

/// A bound CURVE PULL server and a connected CURVE PUSH client over `proto`.
async fn pair(proto: &str) -> (Socket, Socket, CurveKeys, CurveKeys) {
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let pull = sock(SocketType::Pull);
    pull.set_curve(Some(curve_server(&sk))).unwrap();
    // Monitored from the start: the handshake events come before anything else.
    pull.enable_events();
    let ep = pull.bind(&unique(proto)).await.unwrap();
    let push = sock(SocketType::Push);
    push.set_curve(Some(curve_client(&ck, sk.public))).unwrap();
    push.enable_events();
    push.connect(&ep).unwrap();
    (pull, push, sk, ck)
}

async fn send(s: &Socket, m: Message) {
    timeout(T, s.send(m))
        .await
        .expect("send timed out")
        .expect("send failed");
}

#[test]
fn keys_and_z85_api() {
    let k = curve::key_pair();
    assert_eq!(curve::public_from_secret(&k.secret), k.public);
    let text = curve::z85::encode(&k.public).unwrap();
    assert_eq!(text.len(), 40);
    assert_eq!(curve::z85::decode(&text).unwrap(), k.public);
    assert!(curve::z85::encode(&[1, 2, 3]).is_err());
    assert!(curve::z85::decode("abcd").is_err());
    assert!(curve::z85::decode("%%%%%").is_err(), "above 2^32-1");
    assert!(!format!("{k:?}").contains(&format!("{:?}", k.secret)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_are_einval_and_closed_sockets_ebadf() {
    let k = curve::key_pair();
    let s = sock(SocketType::Push);
    let mut no_server_key = curve_client(&k, [0; 32]);
    no_server_key.server_key = None;
    assert_eq!(
        s.set_curve(Some(no_server_key)).unwrap_err().code.as_str(),
        "EINVAL"
    );
    let low_order = curve_client(&k, [0; 32]);
    assert_eq!(
        s.set_curve(Some(low_order)).unwrap_err().code.as_str(),
        "EINVAL"
    );
    let mut mismatched = curve_client(&k, curve::key_pair().public);
    mismatched.public_key = curve::key_pair().public;
    assert_eq!(
        s.set_curve(Some(mismatched)).unwrap_err().code.as_str(),
        "EINVAL"
    );
    s.set_curve(Some(curve_client(&k, curve::key_pair().public)))
        .unwrap();
    s.set_curve(None).unwrap();
    s.close().await;
    assert_eq!(s.set_curve(None).unwrap_err().code.as_str(), "EBADF");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_travel_over_tcp_and_ipc() {
    for proto in ["tcp", "ipc"] {
        let (pull, push, sk, ck) = pair(proto).await;
        send(&push, msg(&[b"hello"])).await;
        assert_eq!(recv(&pull).await, msg(&[b"hello"]), "{proto}");
        // Multipart with empty frames, and an empty message.
        send(&push, msg(&[b"", b"a", b"", b"bc", b""])).await;
        assert_eq!(recv(&pull).await, msg(&[b"", b"a", b"", b"bc", b""]));
        send(&push, msg(&[b""])).await;
        assert_eq!(recv(&pull).await, msg(&[b""]));
        // 1 MiB and a frame just over the short-header size.
        let big: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
        send(&push, msg(&[&big, &[9u8; 300]])).await;
        assert_eq!(recv(&pull).await, msg(&[&big, &[9u8; 300]]));
        // 10 000 in order.
        let sender = {
            let push = Arc::new(push);
            let p = push.clone();
            (
                push,
                tokio::spawn(async move {
                    for i in 0u32..10_000 {
                        p.send(msg(&[&i.to_be_bytes()])).await.unwrap();
                    }
                }),
            )
        };
        for i in 0u32..10_000 {
            assert_eq!(recv(&pull).await, msg(&[&i.to_be_bytes()]), "{proto} #{i}");
        }
        timeout(T, sender.1).await.unwrap().unwrap();
        // Both sides know who the other is.
        let ev = wait_for_events(&pull, EventKind::Handshake, 1, T).await;
        let hs = ev.iter().find(|e| e.kind == EventKind::Handshake).unwrap();
        assert_eq!(hs.public_key, Some(ck.public));
        assert_eq!(hs.user_id.as_deref(), Some(""));
        let ev = wait_for_events(&sender.0, EventKind::Handshake, 1, T).await;
        let hs = ev.iter().find(|e| e.kind == EventKind::Handshake).unwrap();
        assert_eq!(hs.public_key, Some(sk.public));
        sender.0.close().await;
        pull.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_curve_push_serves_a_connecting_client_pull() {
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let push = sock(SocketType::Push);
    push.set_curve(Some(curve_server(&sk))).unwrap();
    let ep = push.bind(&unique("tcp")).await.unwrap();
    let pull = sock(SocketType::Pull);
    pull.set_curve(Some(curve_client(&ck, sk.public))).unwrap();
    pull.connect(&ep).unwrap();
    send(&push, msg(&[b"x", b"y"])).await;
    assert_eq!(recv(&pull).await, msg(&[b"x", b"y"]));
    push.close().await;
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_travel_inside_boxes() {
    // The PULL pings every 50 ms and drops the PUSH after 300 ms without a word; the PUSH
    // has nothing to send, so only its (boxed) PONGs keep the connection up.
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let pull = sock_with(SocketType::Pull, |o| {
        o.heartbeat_interval = 50;
        o.heartbeat_timeout = 300;
    });
    pull.set_curve(Some(curve_server(&sk))).unwrap();
    pull.enable_events();
    let ep = pull.bind(&unique("tcp")).await.unwrap();
    let push = sock_with(SocketType::Push, |o| o.heartbeat_interval = 50);
    push.set_curve(Some(curve_client(&ck, sk.public))).unwrap();
    push.connect(&ep).unwrap();
    let mut ev = wait_for_events(&pull, EventKind::Handshake, 1, T).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    ev.extend(pull.take_events(1000));
    assert_eq!(count(&ev, EventKind::Disconnect), 0, "{ev:?}");
    send(&push, msg(&[b"still here"])).await;
    assert_eq!(recv(&pull).await, msg(&[b"still here"]));
    push.close().await;
    pull.close().await;
}

/// Reads a peer's greeting and its first command frame (a HELLO): its short-term key C'.
async fn hello_key(listener: &TcpListener) -> [u8; 32] {
    let (mut s, _) = timeout(T, listener.accept()).await.unwrap().unwrap();
    s.write_all(&encode_greeting_for(&curve::MECHANISM, true))
        .await
        .unwrap();
    let mut g = [0u8; 64 + 2 + 200];
    timeout(T, s.read_exact(&mut g)).await.unwrap().unwrap();
    assert_eq!(&g[12..17], b"CURVE");
    assert_eq!(&g[64..66], &[0x04, 200]);
    assert_eq!(&g[66..72], b"\x05HELLO");
    g[66 + 80..66 + 112].try_into().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_and_reconnect_uses_a_new_short_term_key() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ep = format!("tcp://{}", listener.local_addr().unwrap());
    let ck = curve::key_pair();
    let push = sock(SocketType::Push);
    push.set_curve(Some(curve_client(&ck, curve::key_pair().public)))
        .unwrap();
    push.connect(&ep).unwrap();
    let mut seen = HashSet::new();
    for _ in 0..3 {
        // Each one is dropped after its HELLO; the client reconnects.
        assert!(
            seen.insert(hello_key(&listener).await),
            "a short-term key came back"
        );
    }
    assert!(!seen.contains(&ck.public));
    push.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_peers_are_refused_both_ways() {
    let sk = curve::key_pair();
    // A NULL PUSH against a CURVE PULL.
    let pull = sock(SocketType::Pull);
    pull.set_curve(Some(curve_server(&sk))).unwrap();
    pull.enable_events();
    let ep = pull.bind(&unique("tcp")).await.unwrap();
    let push = sock(SocketType::Push);
    push.enable_events();
    push.connect(&ep).unwrap();
    let ev = wait_for_events(&pull, EventKind::HandshakeErrorProtocol, 1, T).await;
    let e = ev
        .iter()
        .find(|e| e.kind == EventKind::HandshakeErrorProtocol)
        .unwrap();
    assert!(
        e.error.as_ref().unwrap().message.contains("\"NULL\""),
        "{e:?}"
    );
    wait_for_events(&push, EventKind::HandshakeErrorProtocol, 1, T).await;
    push.close().await;
    pull.close().await;
    // A CURVE PUSH against a NULL PULL.
    let pull = sock(SocketType::Pull);
    pull.enable_events();
    let ep = pull.bind(&unique("ipc")).await.unwrap();
    let push = sock(SocketType::Push);
    push.set_curve(Some(curve_client(&curve::key_pair(), sk.public)))
        .unwrap();
    push.connect(&ep).unwrap();
    wait_for_events(&pull, EventKind::HandshakeErrorProtocol, 1, T).await;
    push.close().await;
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_server_key_fails_silently_and_the_client_retries() {
    let sk = curve::key_pair();
    let pull = sock(SocketType::Pull);
    pull.set_curve(Some(curve_server(&sk))).unwrap();
    pull.enable_events();
    let ep = pull.bind(&unique("tcp")).await.unwrap();
    let push = sock_with(SocketType::Push, |o| o.reconnect_interval = 20);
    push.set_curve(Some(curve_client(
        &curve::key_pair(),
        curve::key_pair().public,
    )))
    .unwrap();
    push.enable_events();
    push.connect(&ep).unwrap();
    // The server cannot open the HELLO: it closes, and the client tries again.
    let ev = wait_for_events(&pull, EventKind::HandshakeErrorProtocol, 3, T).await;
    assert!(ev.iter().any(|e| e
        .error
        .as_ref()
        .is_some_and(|e| e.message.contains("HELLO"))));
    let ev = wait_for_events(&push, EventKind::HandshakeErrorOther, 2, T).await;
    assert_eq!(count(&ev, EventKind::HandshakeErrorAuth), 0);
    assert_eq!(count(&ev, EventKind::Handshake), 0);
    push.close().await;
    pull.close().await;
}

/// An authenticator answering `status` (after `delay`), counting its calls.
struct Fixed {
    status: u16,
    delay: Duration,
    calls: AtomicUsize,
    seen: std::sync::Mutex<Vec<AuthRequest>>,
}

/// The socket's handle on a [`Fixed`] the test keeps too.
struct Shared(Arc<Fixed>);

impl Authenticator for Shared {
    fn authenticate(&self, req: AuthRequest) -> Pin<Box<dyn Future<Output = AuthReply> + Send>> {
        let this = &self.0;
        this.calls.fetch_add(1, Ordering::SeqCst);
        this.seen.lock().unwrap().push(req);
        let (status, delay) = (this.status, this.delay);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            AuthReply {
                status,
                user_id: format!("user-{status}"),
            }
        })
    }
}

/// A CURVE PULL server with `auth` and `allow`, a CURVE PUSH client connecting to it; both
/// monitored.
async fn judged(
    proto: &str,
    auth: Option<(Arc<Fixed>, Duration)>,
    allow: Option<HashSet<[u8; 32]>>,
) -> (Socket, Socket, CurveKeys) {
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let pull = sock(SocketType::Pull);
    pull.set_curve(Some(CurveOptions {
        allow,
        ..curve_server(&sk)
    }))
    .unwrap();
    pull.set_authenticator(auth.map(|(a, t)| (Arc::new(Shared(a)) as Arc<dyn Authenticator>, t)));
    pull.enable_events();
    let ep = pull.bind(&unique(proto)).await.unwrap();
    let push = sock_with(SocketType::Push, |o| o.reconnect_interval = 50);
    push.set_curve(Some(curve_client(&ck, sk.public))).unwrap();
    push.enable_events();
    push.connect(&ep).unwrap();
    (pull, push, ck)
}

fn fixed(status: u16, delay: Duration) -> Arc<Fixed> {
    Arc::new(Fixed {
        status,
        delay,
        calls: AtomicUsize::new(0),
        seen: Default::default(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allowlist_admits_listed_keys_and_refuses_others_with_400() {
    // Not listed: 400 on both sides, before any authenticator is asked.
    let auth = fixed(200, Duration::ZERO);
    let (pull, push, _) = judged(
        "tcp",
        Some((auth.clone(), T)),
        Some(HashSet::from([curve::key_pair().public])),
    )
    .await;
    let ev = wait_for_events(&pull, EventKind::HandshakeErrorAuth, 1, T).await;
    let e = ev
        .iter()
        .find(|e| e.kind == EventKind::HandshakeErrorAuth)
        .unwrap();
    assert_eq!(e.status, Some(400));
    let ev = wait_for_events(&push, EventKind::HandshakeErrorAuth, 1, T).await;
    let e = ev
        .iter()
        .find(|e| e.kind == EventKind::HandshakeErrorAuth)
        .unwrap();
    assert_eq!(e.status, Some(400));
    assert_eq!(auth.calls.load(Ordering::SeqCst), 0);
    push.close().await;
    pull.close().await;

    // Listed: welcome.
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let pull = sock(SocketType::Pull);
    pull.set_curve(Some(CurveOptions {
        allow: Some(HashSet::from([ck.public])),
        ..curve_server(&sk)
    }))
    .unwrap();
    let ep = pull.bind(&unique("ipc")).await.unwrap();
    let push = sock(SocketType::Push);
    push.set_curve(Some(curve_client(&ck, sk.public))).unwrap();
    push.connect(&ep).unwrap();
    send(&push, msg(&[b"in"])).await;
    assert_eq!(recv(&pull).await, msg(&[b"in"]));
    push.close().await;
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refused_with_400_stops_reconnecting_as_libzmqs_does() {
    for proto in ["tcp", "ipc"] {
        let auth = fixed(400, Duration::ZERO);
        // The client reconnects every 50 ms: any retry would show within the wait below.
        let (pull, push, _) = judged(proto, Some((auth.clone(), T)), None).await;
        wait_for_events(&push, EventKind::HandshakeErrorAuth, 1, T).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let later = push.take_events(4096);
        assert_eq!(
            count(&later, EventKind::ConnectRetry),
            0,
            "{proto}: {later:?}"
        );
        assert_eq!(count(&later, EventKind::Connect), 0, "{proto}: {later:?}");
        assert_eq!(
            auth.calls.load(Ordering::SeqCst),
            1,
            "{proto}: asked once, never again"
        );
        push.close_now();
        pull.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticator_statuses_200_300_400_500_and_timeout() {
    // 200: welcome, with the user id and the client's key on the server's handshake event.
    let auth = fixed(200, Duration::ZERO);
    let (pull, push, ck) = judged("tcp", Some((auth.clone(), T)), None).await;
    send(&push, msg(&[b"ok"])).await;
    assert_eq!(recv(&pull).await, msg(&[b"ok"]));
    let ev = wait_for_events(&pull, EventKind::Handshake, 1, T).await;
    let e = ev.iter().find(|e| e.kind == EventKind::Handshake).unwrap();
    assert_eq!(e.user_id.as_deref(), Some("user-200"));
    assert_eq!(e.public_key, Some(ck.public));
    let req = auth.seen.lock().unwrap()[0].clone();
    assert_eq!(req.public_key, ck.public);
    assert_eq!(req.address, "127.0.0.1");
    assert_eq!(req.domain, "test");
    push.close().await;
    pull.close().await;

    // 400 and 500: ERROR with the status, reported on both sides.
    for status in [400u16, 500] {
        let (pull, push, _) = judged("ipc", Some((fixed(status, Duration::ZERO), T)), None).await;
        for s in [&pull, &push] {
            let ev = wait_for_events(s, EventKind::HandshakeErrorAuth, 1, T).await;
            let e = ev
                .iter()
                .find(|e| e.kind == EventKind::HandshakeErrorAuth)
                .unwrap();
            assert_eq!(e.status, Some(status));
        }
        push.close().await;
        pull.close().await;
    }

    // 300, and a timeout (which counts as 300): closed without an ERROR, so the client only
    // sees the connection end, and retries.
    for (auth, limit) in [
        (fixed(300, Duration::ZERO), T),
        (
            fixed(200, Duration::from_secs(30)),
            Duration::from_millis(100),
        ),
    ] {
        let (pull, push, _) = judged("tcp", Some((auth.clone(), limit)), None).await;
        let ev = wait_for_events(&pull, EventKind::HandshakeErrorAuth, 2, T).await;
        assert!(ev
            .iter()
            .filter(|e| e.kind == EventKind::HandshakeErrorAuth)
            .all(|e| e.status == Some(300)));
        let ev = wait_for_events(&push, EventKind::HandshakeErrorOther, 1, T).await;
        assert_eq!(count(&ev, EventKind::HandshakeErrorAuth), 0);
        assert!(auth.calls.load(Ordering::SeqCst) >= 2);
        push.close().await;
        pull.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inproc_stays_unencrypted_and_works() {
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let pull = sock(SocketType::Pull);
    pull.set_curve(Some(curve_server(&sk))).unwrap();
    let ep = pull.bind(&unique("inproc")).await.unwrap();
    let push = sock(SocketType::Push);
    push.set_curve(Some(curve_client(&ck, sk.public))).unwrap();
    push.connect(&ep).unwrap();
    send(&push, msg(&[b"local"])).await;
    assert_eq!(recv(&pull).await, msg(&[b"local"]));
    push.close().await;
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_message_size_bounds_the_plaintext_message() {
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let pull = sock_with(SocketType::Pull, |o| o.max_message_size = 1000);
    pull.set_curve(Some(curve_server(&sk))).unwrap();
    pull.enable_events();
    let ep = pull.bind(&unique("tcp")).await.unwrap();
    let push = sock(SocketType::Push);
    push.set_curve(Some(curve_client(&ck, sk.public))).unwrap();
    push.connect(&ep).unwrap();
    send(&push, msg(&[&[1u8; 1000]])).await;
    assert_eq!(recv(&pull).await.frames()[0], Bytes::from(vec![1u8; 1000]));
    // Two frames of 600 are over 1000 together: the connection ends.
    send(&push, msg(&[&[2u8; 600], &[3u8; 600]])).await;
    let ev = wait_for_events(&pull, EventKind::Disconnect, 1, T).await;
    let d = ev.iter().find(|e| e.kind == EventKind::Disconnect).unwrap();
    assert!(d.error.as_ref().unwrap().message.contains("maxMessageSize"));
    let _ = BytesMut::new();
    push.close().await;
    pull.close().await;
}
