//! Fair-queuing and round-robin over many peers: every peer is served in turn, and idle
//! peers cost nothing per message, so nobody can slow a socket down by connecting idle
//! sockets to it.

mod common;

use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use zeropipe_engine::{EventKind, Socket, SocketType};

use common::*;

/// Messages per second from one busy PUSH to `pull`, best of five rounds.
async fn rate(push: &Socket, pull: &Socket, n: usize) -> f64 {
    let mut best = 0f64;
    for _ in 0..5 {
        let start = Instant::now();
        let sender = async {
            for i in 0..n {
                push.send(msg(&[&(i as u32).to_be_bytes()])).await.unwrap();
            }
        };
        let receiver = async {
            let mut got = 0;
            let mut out = Vec::with_capacity(256);
            while got < n {
                out.clear();
                got += pull.try_recv_batch(&mut out, 256).unwrap();
                if out.is_empty() {
                    out.push(recv(pull).await);
                    got += 1;
                }
            }
        };
        tokio::join!(sender, receiver);
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_peer_keeps_its_rate_among_thousands_of_idle_ones() {
    // Measured against itself in the same run (a ratio, not a time): before the ready
    // queues, 2 000 idle peers made each message scan 2 000 pipes (0.5% of the rate). The
    // bound leaves room for a loaded machine's noise (0.36 seen under a CPU hog) and is
    // still 40 times the old figure.
    let pull = sock(SocketType::Pull);
    pull.enable_events();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let push = sock(SocketType::Push);
    push.connect(&ep).unwrap();
    wait_for_events(&pull, EventKind::Handshake, 1, Duration::from_secs(10)).await;
    let alone = rate(&push, &pull, 100_000).await;

    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..2000 {
        idle.push(connect_raw(&ep, SocketType::Push).await.0);
    }
    wait_for_events(&pull, EventKind::Handshake, 2000, Duration::from_secs(30)).await;
    let crowded = rate(&push, &pull, 100_000).await;
    assert!(
        crowded >= 0.2 * alone,
        "2 000 idle peers took the rate from {alone:.0} to {crowded:.0} msg/s"
    );
    drop(idle);
    push.close_now();
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_skips_thousands_of_full_peers_without_looking_at_each() {
    // 1 000 inproc PULL peers that never read fill up and leave the round-robin; the one
    // that reads keeps its rate.
    let push = sock_with(SocketType::Push, |o| o.send_high_water_mark = 10);
    push.enable_events();
    let ep = push.bind("tcp://127.0.0.1:*").await.unwrap();
    let name = unique("inproc");
    push.bind(&name).await.unwrap();
    let reader = sock(SocketType::Pull);
    reader.connect(&ep).unwrap();
    wait_for_events(&push, EventKind::Handshake, 1, Duration::from_secs(10)).await;
    let alone = rate(&push, &reader, 50_000).await;

    let stalled: Vec<Socket> = (0..1000)
        .map(|_| {
            let s = sock_with(SocketType::Pull, |o| o.receive_high_water_mark = 10);
            s.connect(&name).unwrap();
            s
        })
        .collect();
    // Fill every peer, then take the reader's share back out.
    while push.try_send(msg(&[b"filler"])).is_ok() {}
    while tokio::time::timeout(Duration::from_millis(300), reader.recv())
        .await
        .is_ok()
    {}
    let crowded = rate(&push, &reader, 50_000).await;
    assert!(
        crowded >= 0.2 * alone,
        "1 000 full peers took the rate from {alone:.0} to {crowded:.0} msg/s"
    );
    for s in stalled {
        s.close_now();
    }
    push.close_now();
    reader.close().await;
}
