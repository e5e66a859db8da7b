//! Heartbeats (ZMTP 3.1 PING/PONG, heartbeatInterval/Timeout/TimeToLive): a live peer is
//! never dropped, whatever it is busy with, and silence is judged only on what we could
//! have heard.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;
use zeropipe_engine::codec::{encode_command, encode_frame_header, Command, Decoded};
use zeropipe_engine::{EventKind, Message, Socket, SocketOptions, SocketType};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_never_runs_dry_still_sends_pings_and_keeps_its_connection() {
    // A PULL peer sends nothing but PONGs, so a PUSH with heartbeats only hears from it
    // after a PING. A sender that always has data queued must still PING, or its own
    // heartbeat timeout drops a healthy connection (and the batch it was writing). Limits
    // here and below leave room for a loaded 2-core machine, where a thread can wait a few
    // hundred ms for a CPU: the behaviours do not depend on them.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("tcp://{}", listener.local_addr().unwrap());
    let push = Arc::new(sock_with(SocketType::Push, |o| {
        o.heartbeat_interval = 100;
        o.heartbeat_timeout = 1000;
    }));
    push.enable_events();
    push.connect(&addr).unwrap();
    let (mut peer, mut buf, mut dec) = accept_raw(&listener, SocketType::Pull).await;

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
    // At least 2 s and 2 000 messages (a loaded machine is slower), at most 20 s.
    let started = tokio::time::Instant::now();
    let busy_long_enough =
        |messages: u64| started.elapsed() >= Duration::from_secs(2) && messages >= 2000;
    while !busy_long_enough(messages) && started.elapsed() < Duration::from_secs(20) {
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
    // Taken while the peer is still connected: dropping it is a disconnect of its own.
    let events = push.take_events(4096);
    let disconnects: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Disconnect)
        .collect();
    // The producer may be waiting for room that a dropped connection will not make.
    producer.abort();
    drop(peer);
    assert!(
        !eof && disconnects.is_empty(),
        "the PUSH dropped a live peer after {pings} PINGs and {messages} messages: {disconnects:?}"
    );
    assert!(
        messages >= 2000,
        "the load never built up ({messages} messages)"
    );
    assert!(
        pings >= 5,
        "only {pings} PINGs in {:?} at a 100 ms heartbeat",
        started.elapsed()
    );
    push.close_now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_between_the_frames_of_a_message_is_answered_and_the_message_kept() {
    // libzmq queues its heartbeat PING as the next frame to encode whatever the message
    // in progress, so a PING can sit between two frames of a multipart message.
    let pull = sock(SocketType::Pull);
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let (mut peer, mut buf, mut dec) = connect_raw(&ep, SocketType::Push).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_consumer_keeps_its_connection_and_every_message() {
    // The application does not receive for longer than heartbeat interval + timeout: the
    // reader waits for room in the pipe and reads nothing on purpose, which is not silence.
    // Dropping the connection would throw away what the kernel buffers hold.
    let pull = sock_with(SocketType::Pull, |o| {
        o.receive_high_water_mark = 10;
        o.heartbeat_interval = 200;
        o.heartbeat_timeout = 300;
    });
    pull.enable_events();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let push = sock(SocketType::Push);
    push.enable_events();
    push.connect(&ep).unwrap();
    let body = vec![5u8; 1024];
    for i in 0..200u32 {
        push.send(msg(&[&i.to_be_bytes(), &body])).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    for i in 0..200u32 {
        assert_eq!(
            recv(&pull).await,
            msg(&[&i.to_be_bytes(), &body]),
            "message {i}"
        );
    }
    let dropped = count(&pull.take_events(4096), EventKind::Disconnect)
        + count(&push.take_events(4096), EventKind::Disconnect);
    assert_eq!(dropped, 0, "a paused consumer lost its connection");
    push.close().await;
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_consumer_keeps_a_heartbeating_producer_informed() {
    // Heartbeats on the PUSH only: while our PULL's reader is paused it cannot read the
    // PINGs to answer them, so it PINGs the peer itself at the peer's own pace.
    let pull = sock_with(SocketType::Pull, |o| o.receive_high_water_mark = 10);
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let push = sock_with(SocketType::Push, |o| {
        o.heartbeat_interval = 200;
        o.heartbeat_timeout = 800;
    });
    push.enable_events();
    push.connect(&ep).unwrap();
    push.send(msg(&[b"first"])).await.unwrap();
    assert_eq!(recv(&pull).await, msg(&[b"first"]));
    // A few PINGs reach the PULL while it still reads: it learns the peer's pace.
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Far more than the PULL's mark and the kernel buffers: the PUSH's writer blocks too.
    let big = Bytes::from(vec![9u8; 64 * 1024]);
    let sender = {
        let push = Arc::new(push);
        let p = push.clone();
        let task = tokio::spawn(async move {
            for _ in 0..300 {
                p.send(Message::from(vec![big.clone()])).await.unwrap();
            }
        });
        (push, task)
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for i in 0..300 {
        assert_eq!(
            recv(&pull).await.frames()[0].len(),
            64 * 1024,
            "message {i}"
        );
    }
    sender.1.await.unwrap();
    let push = sender.0;
    assert_eq!(
        count(&push.take_events(4096), EventKind::Disconnect),
        0,
        "the producer dropped a paused consumer"
    );
    push.close().await;
    pull.close().await;
}

/// A socket whose runtime is a current-thread runtime on a thread of its own, as the Node
/// binding runs it, so that a test can stall that one thread.
struct OwnThread {
    handle: tokio::runtime::Handle,
}

impl OwnThread {
    fn start() -> OwnThread {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        std::thread::spawn(move || rt.block_on(std::future::pending::<()>()));
        OwnThread { handle }
    }

    fn socket(&self, kind: SocketType, f: impl FnOnce(&mut SocketOptions)) -> Socket {
        let mut o = SocketOptions::default();
        f(&mut o);
        Socket::new(kind, o, self.handle.clone()).unwrap()
    }

    /// Blocks the runtime's thread, as a debugger, a long GC pause or SIGSTOP would.
    fn stall(&self, how_long: Duration) {
        self.handle
            .spawn(async move { std::thread::sleep(how_long) });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_io_thread_reads_what_arrived_before_judging_silence() {
    // After a stall longer than the heartbeat limit, the peer's data and PINGs sit in the
    // kernel unread: the connection must read them rather than call the peer silent.
    let io = OwnThread::start();
    let pull = io.socket(SocketType::Pull, |o| {
        o.heartbeat_interval = 200;
        o.heartbeat_timeout = 300;
    });
    pull.enable_events();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    // The peer keeps PINGing (so there is something to hear) but is patient itself: only
    // our side's judgement is under test.
    let push = sock_with(SocketType::Push, |o| {
        o.heartbeat_interval = 100;
        o.heartbeat_timeout = 60_000;
    });
    push.connect(&ep).unwrap();
    let mut sent = 0u32;
    for _ in 0..3 {
        for _ in 0..5 {
            push.send(msg(&[&sent.to_be_bytes()])).await.unwrap();
            sent += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        io.stall(Duration::from_millis(1200));
        for _ in 0..25 {
            push.send(msg(&[&sent.to_be_bytes()])).await.unwrap();
            sent += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for i in 0..sent {
        assert_eq!(recv(&pull).await, msg(&[&i.to_be_bytes()]), "message {i}");
    }
    assert_eq!(
        count(&pull.take_events(4096), EventKind::Disconnect),
        0,
        "a stall was taken for the peer's silence"
    );
    push.close().await;
    pull.close().await;
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_without_heartbeats_wake_nothing() {
    // No timer without a reason: with heartbeats off, an idle connection's task sleeps
    // until its peer or its socket has something for it. Measured as the CPU time of the
    // thread that runs 500 idle connections, over one second.
    let io = OwnThread::start();
    let pull = io.socket(SocketType::Pull, |_| {});
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    pull.enable_events();
    let pushes: Vec<Socket> = (0..500)
        .map(|_| {
            let p = sock(SocketType::Push);
            p.connect(&ep).unwrap();
            p
        })
        .collect();
    wait_for_events(
        &pull,
        EventKind::Handshake,
        pushes.len(),
        Duration::from_secs(20),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu = |handle: &tokio::runtime::Handle| {
        let (tx, rx) = std::sync::mpsc::channel();
        handle.spawn(async move {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes one timespec we own.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            let _ = tx.send(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap()
    };
    let before = cpu(&io.handle);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu(&io.handle) - before;
    assert!(
        used < Duration::from_millis(5),
        "500 idle connections used {used:?} of CPU in 1 s"
    );
    for p in pushes {
        p.close_now();
    }
    pull.close().await;
}
