//! Behaviours found broken in review, each pinned by the test that first showed it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use zeropipe_engine::codec::{encode_command, encode_frame_header, Command, Decoded, Decoder};
use zeropipe_engine::handshake::handshake;
use zeropipe_engine::{EventKind, Message, Socket, SocketOptions, SocketType};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn inproc() -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("inproc://regressions-{}-{n}", std::process::id())
}

fn sock(kind: SocketType) -> Socket {
    sock_with(kind, |_| {})
}

fn sock_with(kind: SocketType, f: impl FnOnce(&mut SocketOptions)) -> Socket {
    let mut o = SocketOptions::default();
    f(&mut o);
    Socket::new(kind, o, tokio::runtime::Handle::current()).unwrap()
}

fn msg(parts: &[&[u8]]) -> Message {
    Message::from(
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p))
            .collect::<Vec<_>>(),
    )
}

async fn recv(s: &Socket) -> Message {
    timeout(Duration::from_secs(5), s.recv())
        .await
        .expect("receive timed out")
        .unwrap()
}

/// A free loopback port (nothing listens on it once this returns).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A hand-driven PULL peer on an accepted connection: our own handshake code as the
/// far side, then raw frames.
async fn accept_raw_pull(listener: &TcpListener) -> (TcpStream, BytesMut, Decoder) {
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut buf = BytesMut::new();
    let mut dec = Decoder::new(-1);
    handshake(&mut stream, SocketType::Pull, &mut buf, &mut dec)
        .await
        .unwrap();
    (stream, buf, dec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_never_runs_dry_still_sends_pings_and_keeps_its_connection() {
    // A PULL peer sends nothing but PONGs, so a PUSH with heartbeats only hears from it
    // after a PING. A sender that always has data queued must still PING, or its own
    // heartbeat timeout drops a healthy connection (and the batch it was writing).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("tcp://{}", listener.local_addr().unwrap());
    let push = Arc::new(sock_with(SocketType::Push, |o| {
        o.heartbeat_interval = 100;
        o.heartbeat_timeout = 400;
    }));
    push.enable_events();
    push.connect(&addr).unwrap();
    let (mut peer, mut buf, mut dec) = accept_raw_pull(&listener).await;

    let producer = {
        let push = push.clone();
        tokio::spawn(async move {
            let body = Bytes::from(vec![7u8; 64 * 1024]);
            loop {
                push.send(Message::from(vec![body.clone()])).await.unwrap();
            }
        })
    };

    let mut pings = 0;
    let mut messages = 0u64;
    let mut eof = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        loop {
            match dec.decode(&mut buf).unwrap() {
                Some(Decoded::Message(_)) => messages += 1,
                Some(Decoded::Command(Command::Ping { context, .. })) => {
                    pings += 1;
                    let mut out = BytesMut::new();
                    encode_command(&Command::Pong { context }, &mut out);
                    peer.write_all(&out).await.unwrap();
                }
                Some(Decoded::Command(_)) => {}
                None => break,
            }
        }
        buf.reserve(64 * 1024);
        match timeout(Duration::from_millis(100), peer.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                eof = true;
                break;
            }
            _ => {}
        }
    }
    // The producer may be waiting for room that a dropped connection will not make.
    producer.abort();
    drop(peer);
    let disconnects = push
        .take_events(4096)
        .iter()
        .filter(|e| e.kind == EventKind::Disconnect)
        .count();
    assert!(
        messages > 1000,
        "the load never built up ({messages} messages)"
    );
    assert!(
        !eof,
        "the PUSH dropped a live peer after {pings} PINGs and {messages} messages"
    );
    assert_eq!(disconnects, 0);
    assert!(
        pings >= 5,
        "only {pings} PINGs in 2 s at a 100 ms heartbeat"
    );
    push.close_now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_between_the_frames_of_a_message_is_answered_and_the_message_kept() {
    // libzmq queues its heartbeat PING as the next frame to encode whatever the message
    // in progress, so a PING can sit between two frames of a multipart message.
    let pull = sock(SocketType::Pull);
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let mut peer = TcpStream::connect(ep.trim_start_matches("tcp://"))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    let mut dec = Decoder::new(-1);
    handshake(&mut peer, SocketType::Push, &mut buf, &mut dec)
        .await
        .unwrap();
    let mut out = BytesMut::new();
    encode_frame_header(true, 4, &mut out);
    out.extend_from_slice(b"head");
    encode_command(
        &Command::Ping {
            ttl: 0,
            context: Bytes::from_static(b"hb"),
        },
        &mut out,
    );
    encode_frame_header(false, 4, &mut out);
    out.extend_from_slice(b"tail");
    encode_frame_header(false, 5, &mut out);
    out.extend_from_slice(b"after");
    peer.write_all(&out).await.unwrap();

    assert_eq!(recv(&pull).await, msg(&[b"head", b"tail"]));
    assert_eq!(recv(&pull).await, msg(&[b"after"]));
    let pong = timeout(Duration::from_secs(5), async {
        loop {
            if let Some(d) = dec.decode(&mut buf).unwrap() {
                return d;
            }
            buf.reserve(4096);
            assert_ne!(
                peer.read_buf(&mut buf).await.unwrap(),
                0,
                "connection dropped"
            );
        }
    })
    .await
    .expect("no PONG");
    assert_eq!(
        pong,
        Decoded::Command(Command::Pong {
            context: Bytes::from_static(b"hb")
        })
    );
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inproc_pull_that_disconnects_gets_no_more_messages_and_loses_none() {
    let ep = inproc();
    let push = sock_with(SocketType::Push, |o| o.send_timeout = 2000);
    push.bind(&ep).await.unwrap();
    let stays = sock(SocketType::Pull);
    let leaves = sock(SocketType::Pull);
    stays.connect(&ep).unwrap();
    leaves.connect(&ep).unwrap();
    leaves.disconnect(&ep).unwrap();
    for i in 0..10u32 {
        push.send(msg(&[i.to_string().as_bytes()])).await.unwrap();
    }
    for i in 0..10u32 {
        assert_eq!(recv(&stays).await, msg(&[i.to_string().as_bytes()]));
    }
    push.close().await;
    stays.close().await;
    leaves.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inproc_push_that_disconnects_leaves_what_it_queued_to_the_pull() {
    // An inproc pipe is the PULL's receive queue: what is in it was delivered.
    let ep = inproc();
    let pull = sock(SocketType::Pull);
    pull.bind(&ep).await.unwrap();
    let push = sock(SocketType::Push);
    push.connect(&ep).unwrap();
    for i in 0..3u32 {
        push.send(msg(&[i.to_string().as_bytes()])).await.unwrap();
    }
    push.disconnect(&ep).unwrap();
    for i in 0..3u32 {
        assert_eq!(recv(&pull).await, msg(&[i.to_string().as_bytes()]));
    }
    // Nothing is left over for the PUSH to wait for at close.
    timeout(Duration::from_secs(2), push.close())
        .await
        .expect("close waited for messages that were already delivered");
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inproc_pulls_unread_messages_go_to_the_remaining_pull_when_it_closes() {
    // The PUSH notices a closed inproc peer at its next send; what that peer never read
    // must move to the others then, not only once every other peer is full.
    let ep = inproc();
    let push = sock(SocketType::Push);
    push.bind(&ep).await.unwrap();
    let stays = sock(SocketType::Pull);
    let leaves = sock(SocketType::Pull);
    stays.connect(&ep).unwrap();
    leaves.connect(&ep).unwrap();
    for i in 0..4u32 {
        push.send(msg(&[i.to_string().as_bytes()])).await.unwrap();
    }
    leaves.close().await;
    for i in 4..8u32 {
        push.send(msg(&[i.to_string().as_bytes()])).await.unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..8 {
        let m = recv(&stays).await;
        got.push(String::from_utf8(m.frames()[0].to_vec()).unwrap());
    }
    got.sort();
    assert_eq!(got, ["0", "1", "2", "3", "4", "5", "6", "7"]);
    push.close().await;
    stays.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_push_keeps_reconnecting_while_it_lingers() {
    // libzmq keeps a connecting session reconnecting during linger, so messages queued for
    // a peer that is briefly down are delivered once it is back (zmq_ctx_term waits for it).
    let addr = format!("tcp://127.0.0.1:{}", free_port());
    let push = sock_with(SocketType::Push, |o| o.linger = 5000);
    push.connect(&addr).unwrap();
    for i in 0..3u32 {
        push.send(msg(&[i.to_string().as_bytes()])).await.unwrap();
    }
    let closing = tokio::spawn(async move {
        let started = std::time::Instant::now();
        push.close().await;
        started.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pull = sock(SocketType::Pull);
    pull.bind(&addr).await.unwrap();
    for i in 0..3u32 {
        assert_eq!(recv(&pull).await, msg(&[i.to_string().as_bytes()]));
    }
    let took = closing.await.unwrap();
    assert!(
        took < Duration::from_millis(4500),
        "close() ran into its linger ({took:?}) instead of finishing once flushed"
    );
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_bound_push_does_not_linger_for_messages_no_peer_can_take() {
    // What a departed peer never got waits for the next peer; once close() has stopped
    // accepting, a bound PUSH with no connects can have no next peer, so lingering for
    // those messages only delays close() (libzmq would have dropped them with the pipe).
    let push = sock_with(SocketType::Push, |o| o.linger = 5000);
    push.enable_events();
    let ep = push.bind("tcp://127.0.0.1:*").await.unwrap();
    let mut peer = TcpStream::connect(ep.trim_start_matches("tcp://"))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    let mut dec = Decoder::new(-1);
    handshake(&mut peer, SocketType::Pull, &mut buf, &mut dec)
        .await
        .unwrap();
    // Far more than the kernel buffers hold, and the peer never reads.
    let big = Bytes::from(vec![1u8; 64 * 1024]);
    for _ in 0..600 {
        push.send(Message::from(vec![big.clone()])).await.unwrap();
    }
    drop(peer);
    let gone = timeout(Duration::from_secs(5), async {
        loop {
            if push
                .take_events(64)
                .iter()
                .any(|e| e.kind == EventKind::Disconnect)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the peer's departure was not noticed");
    let started = std::time::Instant::now();
    push.close().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "close() lingered {took:?} for messages no peer can take"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_max_interval_below_the_reconnect_interval_is_ignored() {
    // libzmq only backs off when ZMQ_RECONNECT_IVL_MAX exceeds ZMQ_RECONNECT_IVL; a
    // smaller maximum must not make retries come faster than reconnectInterval.
    let addr = format!("tcp://127.0.0.1:{}", free_port());
    let push = sock_with(SocketType::Push, |o| {
        o.reconnect_interval = 150;
        o.reconnect_max_interval = 50;
    });
    push.enable_events();
    push.connect(&addr).unwrap();
    let mut intervals = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while intervals.len() < 3 && tokio::time::Instant::now() < deadline {
        for e in push.take_events(64) {
            if e.kind == EventKind::ConnectRetry {
                intervals.push(e.interval);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(intervals[..], [Some(150), Some(150), Some(150)]);
    push.close_now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_heartbeat_interval_and_timeout_do_not_break_the_connection() {
    let pull = sock(SocketType::Pull);
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let push = sock_with(SocketType::Push, |o| {
        o.heartbeat_interval = i32::MAX;
        o.heartbeat_timeout = i32::MAX;
    });
    push.connect(&ep).unwrap();
    push.send(msg(&[b"one"])).await.unwrap();
    assert_eq!(recv(&pull).await, msg(&[b"one"]));
    push.send(msg(&[b"two"])).await.unwrap();
    assert_eq!(recv(&pull).await, msg(&[b"two"]));
    push.close().await;
    pull.close().await;
}
