//! End-to-end behaviour of PUSH/PULL sockets over tcp, ipc and inproc, and against
//! hostile peers speaking raw bytes.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use zeropipe_engine::{Code, SocketType};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_multipart_messages_with_empty_frames_intact_in_order() {
    for proto in PROTOS {
        let pull = sock(SocketType::Pull);
        let push = sock(SocketType::Push);
        let ep = pull.bind(&unique(proto)).await.unwrap();
        push.connect(&ep).unwrap();
        for i in 0..100u32 {
            let n = i.to_string();
            push.send(msg(&[b"head", b"", n.as_bytes(), b""]))
                .await
                .unwrap();
        }
        for i in 0..100u32 {
            let n = i.to_string();
            assert_eq!(
                recv(&pull).await,
                msg(&[b"head", b"", n.as_bytes(), b""]),
                "{proto}"
            );
        }
        push.close().await;
        pull.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_whichever_side_binds_and_whichever_starts_first() {
    for proto in PROTOS {
        // PUSH binds, PULL connects afterwards; messages sent before the peer exist wait.
        let push = sock(SocketType::Push);
        let ep = push.bind(&unique(proto)).await.unwrap();
        let sender = tokio::spawn(async move {
            push.send(msg(&[b"early"])).await.unwrap();
            push
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let pull = sock(SocketType::Pull);
        pull.connect(&ep).unwrap();
        assert_eq!(recv(&pull).await, msg(&[b"early"]), "{proto}");
        let push = sender.await.unwrap();
        push.close().await;
        pull.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_before_the_peer_binds_queues_and_delivers() {
    for proto in ["tcp", "ipc", "inproc"] {
        let addr = match proto {
            "tcp" => {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let a = format!("tcp://{}", l.local_addr().unwrap());
                drop(l);
                a
            }
            _ => unique(proto),
        };
        let push = sock(SocketType::Push);
        push.connect(&addr).unwrap();
        push.send(msg(&[b"queued before bind"])).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let pull = sock(SocketType::Pull);
        pull.bind(&addr).await.unwrap();
        assert_eq!(recv(&pull).await, msg(&[b"queued before bind"]), "{proto}");
        push.close().await;
        pull.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robins_over_two_pullers() {
    for proto in PROTOS {
        let push = sock(SocketType::Push);
        let ep = push.bind(&unique(proto)).await.unwrap();
        let a = sock(SocketType::Pull);
        let b = sock(SocketType::Pull);
        a.connect(&ep).unwrap();
        b.connect(&ep).unwrap();
        // Wait until both peers are attached so the split is deterministic.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for i in 0..10u32 {
            push.send(msg(&[i.to_string().as_bytes()])).await.unwrap();
        }
        let mut got_a = Vec::new();
        let mut got_b = Vec::new();
        for _ in 0..5 {
            got_a.push(recv(&a).await);
            got_b.push(recv(&b).await);
        }
        assert_eq!(got_a.len() + got_b.len(), 10, "{proto}");
        assert!(got_a != got_b, "{proto}: each message goes to one peer");
        push.close().await;
        a.close().await;
        b.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fair_queues_between_two_pushers() {
    for proto in PROTOS {
        let pull = sock(SocketType::Pull);
        let ep = pull.bind(&unique(proto)).await.unwrap();
        let a = sock(SocketType::Push);
        let b = sock(SocketType::Push);
        a.connect(&ep).unwrap();
        b.connect(&ep).unwrap();
        for i in 0..50u32 {
            a.send(msg(&[b"a", i.to_string().as_bytes()]))
                .await
                .unwrap();
            b.send(msg(&[b"b", i.to_string().as_bytes()]))
                .await
                .unwrap();
        }
        // Let both pipes fill before reading so fairness, not arrival order, decides.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut first20 = Vec::new();
        for _ in 0..20 {
            first20.push(recv(&pull).await.frames()[0].clone());
        }
        let from_a = first20.iter().filter(|f| f.as_ref() == b"a").count();
        assert!((8..=12).contains(&from_a), "{proto}: {from_a} of 20 from a");
        a.close().await;
        b.close().await;
        pull.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_times_out_with_eagain_when_no_peer_has_room() {
    let push = sock_with(SocketType::Push, |o| o.send_timeout = 50);
    push.bind(&unique("tcp")).await.unwrap();
    let err = push.send(msg(&[b"x"])).await.unwrap_err();
    assert_eq!(err.code, Code::Again);
    push.close_now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_water_marks_bound_the_queue_and_push_back() {
    let pull = sock_with(SocketType::Pull, |o| o.receive_high_water_mark = 5);
    let ep = pull.bind(&unique("tcp")).await.unwrap();
    let push = sock_with(SocketType::Push, |o| {
        o.send_high_water_mark = 5;
        o.send_timeout = 300;
    });
    push.connect(&ep).unwrap();
    let big = vec![7u8; 256 * 1024];
    let mut sent = 0;
    loop {
        match push.send(msg(&[&big])).await {
            Ok(()) => sent += 1,
            Err(e) => {
                assert_eq!(e.code, Code::Again);
                break;
            }
        }
        assert!(sent < 1000, "send never blocked: no backpressure");
    }
    for _ in 0..sent {
        recv(&pull).await;
    }
    push.close().await;
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_a_taken_port_fails_with_eaddrinuse_and_bad_endpoints_are_typed() {
    let a = sock(SocketType::Pull);
    let ep = a.bind("tcp://127.0.0.1:*").await.unwrap();
    let b = sock(SocketType::Pull);
    assert_eq!(b.bind(&ep).await.unwrap_err().code, Code::AddrInUse);
    assert_eq!(
        b.bind("udp://127.0.0.1:5555").await.unwrap_err().code,
        Code::ProtoNoSupport
    );
    assert_eq!(
        b.bind("tcp://127.0.0.1").await.unwrap_err().code,
        Code::Inval
    );
    assert_eq!(b.connect("tcp://*:5555").unwrap_err().code, Code::Inval);
    let name = unique("inproc");
    a.bind(&name).await.unwrap();
    assert_eq!(b.bind(&name).await.unwrap_err().code, Code::AddrInUse);
    a.close().await;
    b.close().await;
    assert_eq!(
        a.bind("tcp://127.0.0.1:*").await.unwrap_err().code,
        Code::BadF
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_binder_restarts() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", l.local_addr().unwrap());
    drop(l);
    let pull = sock(SocketType::Pull);
    pull.bind(&addr).await.unwrap();
    let push = sock(SocketType::Push);
    push.connect(&addr).unwrap();
    push.send(msg(&[b"one"])).await.unwrap();
    assert_eq!(recv(&pull).await, msg(&[b"one"]));
    pull.close().await;
    drop(pull);
    tokio::time::sleep(Duration::from_millis(100)).await;
    push.send(msg(&[b"two"])).await.unwrap();
    let pull = sock(SocketType::Pull);
    pull.bind(&addr).await.unwrap();
    assert_eq!(recv(&pull).await, msg(&[b"two"]));
    push.close().await;
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linger_flushes_queued_messages_on_close() {
    let pull = sock(SocketType::Pull);
    let ep = pull.bind(&unique("tcp")).await.unwrap();
    let push = sock(SocketType::Push);
    push.connect(&ep).unwrap();
    for i in 0..500u32 {
        push.send(msg(&[i.to_string().as_bytes()])).await.unwrap();
    }
    push.close().await;
    for i in 0..500u32 {
        assert_eq!(recv(&pull).await, msg(&[i.to_string().as_bytes()]));
    }
    pull.close().await;
}

/// Speaks a raw greeting (and optionally READY) to `addr`, returning the stream.
async fn raw_peer(addr: &str, socket_type: Option<&str>) -> TcpStream {
    let hostport = addr.trim_start_matches("tcp://");
    let mut s = TcpStream::connect(hostport).await.unwrap();
    let mut g = [0u8; 64];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 1;
    g[12..16].copy_from_slice(b"NULL");
    s.write_all(&g).await.unwrap();
    if let Some(t) = socket_type {
        let mut body = Vec::new();
        body.push(5);
        body.extend_from_slice(b"READY");
        body.push(11);
        body.extend_from_slice(b"Socket-Type");
        body.extend_from_slice(&(t.len() as u32).to_be_bytes());
        body.extend_from_slice(t.as_bytes());
        s.write_all(&[0x04, body.len() as u8]).await.unwrap();
        s.write_all(&body).await.unwrap();
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_lose_only_their_own_connection() {
    let pull = sock_with(SocketType::Pull, |o| o.handshake_interval = 300);
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let good = sock(SocketType::Push);
    good.connect(&ep).unwrap();

    // A frame header declaring 2^40 bytes.
    let mut huge = raw_peer(&ep, Some("PUSH")).await;
    let mut hdr = vec![0x02u8];
    hdr.extend_from_slice(&(1u64 << 40).to_be_bytes());
    huge.write_all(&hdr).await.unwrap();
    // Garbage instead of a greeting.
    let mut garbage = TcpStream::connect(ep.trim_start_matches("tcp://"))
        .await
        .unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // A handshake that never finishes.
    let mut silent = TcpStream::connect(ep.trim_start_matches("tcp://"))
        .await
        .unwrap();
    // Endless empty MORE frames.
    let mut more = raw_peer(&ep, Some("PUSH")).await;
    let more_task = tokio::spawn(async move {
        let chunk = [0x01u8, 0x00].repeat(4096);
        for _ in 0..100_000 {
            if more.write_all(&chunk).await.is_err() {
                return true;
            }
        }
        false
    });

    good.send(msg(&[b"still here"])).await.unwrap();
    assert_eq!(recv(&pull).await, msg(&[b"still here"]));

    let mut buf = [0u8; 256];
    for s in [&mut huge, &mut garbage, &mut silent] {
        // Each hostile connection is closed by us (EOF or reset), not left hanging.
        let closed = timeout(Duration::from_secs(3), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a hostile connection was not closed");
    }
    assert!(
        timeout(Duration::from_secs(10), more_task)
            .await
            .unwrap()
            .unwrap(),
        "endless MORE frames were not cut off"
    );
    good.send(msg(&[b"and still"])).await.unwrap();
    assert_eq!(recv(&pull).await, msg(&[b"and still"]));
    good.close().await;
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_a_peer_of_the_wrong_socket_type() {
    let pull = sock(SocketType::Pull);
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let mut wrong = raw_peer(&ep, Some("PULL")).await;
    let mut buf = Vec::new();
    let _ = timeout(Duration::from_secs(3), wrong.read_to_end(&mut buf))
        .await
        .expect("not closed");
    // Our greeting, our READY, then an ERROR command before the close.
    assert!(
        buf.windows(5).any(|w| w == b"ERROR"),
        "no ERROR command sent"
    );
    pull.close().await;
}

/// Reads from a raw peer until `pred` holds on everything read so far (or a timeout).
async fn read_until(s: &mut TcpStream, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = timeout(Duration::from_secs(5), async {
        while !pred(&got) {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_pings_with_pongs_echoing_the_context_and_ignores_unknown_commands() {
    let pull = sock(SocketType::Pull);
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let mut peer = raw_peer(&ep, Some("PUSH")).await;
    // An unknown command first: it must be ignored, not fatal.
    peer.write_all(&[0x04, 6, 5, b'H', b'E', b'L', b'L', b'O'])
        .await
        .unwrap();
    // PING: name, TTL 0, context "ctx42".
    peer.write_all(&[
        0x04, 12, 4, b'P', b'I', b'N', b'G', 0, 0, b'c', b't', b'x', b'4', b'2',
    ])
    .await
    .unwrap();
    let got = read_until(&mut peer, |b| b.windows(4).any(|w| w == b"PONG")).await;
    let at = got.windows(4).position(|w| w == b"PONG").expect("no PONG");
    assert_eq!(&got[at + 4..at + 9], b"ctx42");
    // The connection still carries messages afterwards.
    peer.write_all(&[0x00, 2, b'o', b'k']).await.unwrap();
    assert_eq!(recv(&pull).await, msg(&[b"ok"]));
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_pings_and_closes_a_peer_silent_past_the_heartbeat_timeout() {
    let pull = sock_with(SocketType::Pull, |o| {
        o.heartbeat_interval = 100;
        o.heartbeat_timeout = 200;
    });
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let mut peer = raw_peer(&ep, Some("PUSH")).await;
    let started = std::time::Instant::now();
    let got = read_until(&mut peer, |_| false).await;
    assert!(got.windows(4).any(|w| w == b"PING"), "no PING was sent");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "silent peer kept for {elapsed:?}"
    );
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_queues_only_on_completed_connections() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", l.local_addr().unwrap());
    drop(l);
    let push = sock_with(SocketType::Push, |o| {
        o.immediate = true;
        o.send_timeout = 100;
    });
    push.connect(&addr).unwrap();
    assert_eq!(push.send(msg(&[b"x"])).await.unwrap_err().code, Code::Again);
    let pull = sock(SocketType::Pull);
    pull.bind(&addr).await.unwrap();
    // Once the connection completes, sends go through.
    let mut sent = false;
    for _ in 0..50 {
        if push.send(msg(&[b"y"])).await.is_ok() {
            sent = true;
            break;
        }
    }
    assert!(sent, "send never succeeded after the peer came up");
    assert_eq!(recv(&pull).await, msg(&[b"y"]));
    push.close().await;
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departed_peers_unsent_messages_go_to_the_remaining_peer() {
    let push = sock(SocketType::Push);
    let ep = push.bind("tcp://127.0.0.1:*").await.unwrap();
    // A raw PULL that completes the handshake and then never reads: its pipe fills.
    let mut stalled = raw_peer(&ep, Some("PULL")).await;
    let _ = read_until(&mut stalled, |b| b.windows(5).any(|w| w == b"READY")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let big = vec![1u8; 64 * 1024];
    // Until the stalled peer's queue is full, beyond what the kernel buffers hold: its pipe
    // holds 16 MiB (`QUEUE_BYTES_MAX`), some 250 of these.
    let mut queued = 0u32;
    loop {
        let mut m = msg(&[queued.to_string().as_bytes()]);
        m.push(Bytes::from(big.clone()));
        match timeout(Duration::from_millis(300), push.send(m)).await {
            Ok(sent) => sent.unwrap(),
            Err(_) => break,
        }
        queued += 1;
        assert!(queued < 5000, "send never blocked: no backpressure");
    }
    let good = sock(SocketType::Pull);
    good.connect(&ep).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stalled);
    let mut seen = 0;
    while timeout(Duration::from_secs(3), good.recv()).await.is_ok() {
        seen += 1;
    }
    // Whatever the stalled peer's kernel buffers swallowed is lost (as with libzmq); the
    // queued rest must arrive at the good peer instead of being dropped.
    assert!(
        seen >= 200,
        "only {seen} of {queued} messages were re-routed"
    );
    push.close().await;
    good.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbind_drops_the_connections_accepted_through_that_endpoint() {
    let pull = sock(SocketType::Pull);
    let kept = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let dropped = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let mut on_kept = raw_peer(&kept, Some("PUSH")).await;
    let mut on_dropped = raw_peer(&dropped, Some("PUSH")).await;
    on_kept.write_all(&[0x00, 1, b'a']).await.unwrap();
    on_dropped.write_all(&[0x00, 1, b'b']).await.unwrap();
    let mut got = vec![recv(&pull).await, recv(&pull).await];
    got.sort_by(|x, y| x.frames()[0].cmp(&y.frames()[0]));
    assert_eq!(got, vec![msg(&[b"a"]), msg(&[b"b"])]);
    pull.unbind(&dropped).await.unwrap();
    let mut buf = [0u8; 64];
    let eof = timeout(Duration::from_secs(3), async {
        loop {
            match on_dropped.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        eof.is_ok(),
        "the connection accepted through the unbound endpoint stayed open"
    );
    on_kept.write_all(&[0x00, 1, b'c']).await.unwrap();
    assert_eq!(recv(&pull).await, msg(&[b"c"]));
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inproc_connect_before_bind_takes_the_binders_high_water_mark() {
    for connect_first in [false, true] {
        let name = unique("inproc");
        let push = sock_with(SocketType::Push, |o| {
            o.send_high_water_mark = 1;
            o.send_timeout = 0;
        });
        let pull = sock_with(SocketType::Pull, |o| o.receive_high_water_mark = 1);
        if connect_first {
            pull.connect(&name).unwrap();
            push.bind(&name).await.unwrap();
        } else {
            push.bind(&name).await.unwrap();
            pull.connect(&name).unwrap();
        }
        let mut queued = 0;
        while push.send(msg(&[b"x"])).await.is_ok() {
            queued += 1;
            assert!(queued < 100, "no high-water mark");
        }
        // libzmq sums both marks for inproc, whichever side came first.
        assert_eq!(queued, 2, "connect_first = {connect_first}");
        push.close().await;
        pull.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_is_exactly_what_try_send_accepts_and_send_accepted_never_drops() {
    // inproc: the one queue holds both marks, and nothing drains it behind our back.
    let pull = sock_with(SocketType::Pull, |o| o.receive_high_water_mark = 2);
    let push = sock_with(SocketType::Push, |o| o.send_high_water_mark = 3);
    assert_eq!(push.room(), 0, "no peer, no room");
    assert_eq!(pull.room(), 0, "a PULL never has room to send");
    let ep = pull.bind(&unique("inproc")).await.unwrap();
    push.connect(&ep).unwrap();
    assert_eq!(push.room(), 5);
    for i in 0..5u8 {
        push.try_send(msg(&[&[i]])).unwrap();
        assert_eq!(push.room(), 4 - i as usize);
    }
    assert!(
        push.try_send(msg(&[b"refused"])).is_err(),
        "room 0 means try_send refuses"
    );
    // What a caller already accepted goes in past the mark rather than being lost.
    push.send_accepted(msg(&[b"accepted"])).unwrap();
    assert_eq!(push.room(), 0);
    for i in 0..5u8 {
        assert_eq!(recv(&pull).await, msg(&[&[i]]));
    }
    assert_eq!(recv(&pull).await, msg(&[b"accepted"]));

    // With no peer at all, accepted messages wait for the next one.
    let lonely = sock(SocketType::Push);
    let ep2 = lonely.bind(&unique("inproc")).await.unwrap();
    lonely.send_accepted(msg(&[b"kept"])).unwrap();
    let late = sock(SocketType::Pull);
    late.connect(&ep2).unwrap();
    assert_eq!(recv(&late).await, msg(&[b"kept"]));
    for s in [push, pull, lonely, late] {
        s.close_now();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_batches_stop_at_their_byte_budget_but_take_at_least_one_message() {
    let pull = sock(SocketType::Pull);
    let push = sock(SocketType::Push);
    let ep = pull.bind(&unique("inproc")).await.unwrap();
    push.connect(&ep).unwrap();
    for _ in 0..4 {
        push.send(msg(&[&[7u8; 100]])).await.unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(
        pull.try_recv_batch_bytes(&mut out, 10, 150, usize::MAX)
            .unwrap(),
        2,
        "stops once 150 bytes are taken"
    );
    assert_eq!(
        pull.try_recv_batch_bytes(&mut out, 10, 1, usize::MAX)
            .unwrap(),
        1,
        "one message even past the budget"
    );
    assert_eq!(
        pull.try_recv_batch_bytes(&mut out, 10, usize::MAX, usize::MAX)
            .unwrap(),
        1,
        "the rest"
    );
    // Frames of `large` bytes or more do not count against the budget.
    for _ in 0..4 {
        push.send(msg(&[&[7u8; 100]])).await.unwrap();
    }
    assert_eq!(
        pull.try_recv_batch_bytes(&mut out, 10, 150, 100).unwrap(),
        4,
        "100-byte frames are large here"
    );
    push.close_now();
    pull.close_now();
}
