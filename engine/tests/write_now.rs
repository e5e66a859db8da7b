//! `Socket::try_write_now`: the sending thread writing a message to its peer's socket itself
//! (see `outlet.rs`). What it must never change: order, whole messages, and what linger
//! waits for; and a CURVE connection never takes such writes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{sleep, timeout, Instant};
use zeropipe_engine::curve;
use zeropipe_engine::{Message, Socket, SocketType};

mod common;
use common::{curve_client, curve_server, recv, sock, sock_with, unique};

const T: Duration = Duration::from_secs(20);

/// Message `i`: a small head frame naming it and a body of `len` bytes that depend on `i`,
/// so a frame out of place, torn or from another message shows.
fn frames(i: u32, len: usize) -> (Vec<u8>, Vec<u8>) {
    let head = format!("msg {i}").into_bytes();
    let body = (0..len)
        .map(|k| (k as u32).wrapping_mul(31).wrapping_add(i) as u8)
        .collect();
    (head, body)
}

fn message(head: &[u8], body: &[u8]) -> Message {
    Message::from(vec![
        Bytes::copy_from_slice(head),
        Bytes::copy_from_slice(body),
    ])
}

async fn until_peer(push: &Socket) {
    let start = Instant::now();
    while push.peers().is_empty() {
        assert!(start.elapsed() < T, "no peer within {T:?}");
        sleep(Duration::from_millis(5)).await;
    }
}

/// Writes a message directly as soon as the connection task is idle (it goes idle once it
/// has found its pipe empty, whenever its thread gets to run): a refused attempt writes
/// nothing, so trying again is safe.
async fn write_when_idle(push: &Socket, frames: &[&[u8]]) {
    let start = Instant::now();
    while !push.try_write_now(frames) {
        assert!(start.elapsed() < T, "the connection never went idle");
        sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_and_queued_messages_arrive_whole_and_in_order_through_a_full_kernel_buffer() {
    for proto in ["tcp", "ipc"] {
        let pull = sock_with(SocketType::Pull, |o| o.receive_high_water_mark = 4);
        let ep = pull.bind(&unique(proto)).await.unwrap();
        let push = Arc::new(sock(SocketType::Push));
        push.connect(&ep).unwrap();
        until_peer(&push).await;

        // Sizes from a few bytes to 1 MiB: the large ones fill the kernel's buffers while
        // the reader sleeps, so writes are partial or refused and the rest goes through the
        // task and the pipe, interleaved with messages written directly.
        let sizes = [10usize, 70_000, 1 << 20, 300, 500_000, 65_536, 3, 2 << 20];
        const N: u32 = 120;
        // The first is written directly: the path is taken at least once, whatever the
        // scheduling.
        let mut written = 1;
        let sender = {
            let push = push.clone();
            tokio::spawn(async move {
                let (head, body) = frames(0, sizes[0]);
                write_when_idle(&push, &[&head, &body]).await;
                for i in 1..N {
                    let (head, body) = frames(i, sizes[i as usize % sizes.len()]);
                    if push.try_write_now(&[&head, &body]) {
                        written += 1;
                    } else {
                        push.send(message(&head, &body)).await.unwrap();
                    }
                    // The caller's memory is its own again: scribbling on it changes nothing.
                    drop((head, body));
                }
                written
            })
        };
        // A slow start: the kernel's buffers fill.
        sleep(Duration::from_millis(200)).await;
        for i in 0..N {
            let got = timeout(T, pull.recv())
                .await
                .expect("receive timed out")
                .unwrap();
            let (head, body) = frames(i, sizes[i as usize % sizes.len()]);
            assert!(
                got == message(&head, &body),
                "{proto}: message {i} is not the one sent (head {:?})",
                String::from_utf8_lossy(&got.frames()[0])
            );
            if i % 16 == 0 {
                sleep(Duration::from_millis(10)).await;
            }
        }
        let written = timeout(T, sender).await.unwrap().unwrap();
        assert!(written < N, "{proto}: the kernel buffer never filled");
        push.close().await;
        pull.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linger_waits_for_the_rest_of_a_partly_written_message() {
    for proto in ["tcp", "ipc"] {
        // A receive queue of one, filled first, and a second message held by its reader,
        // which waits for room: the peer reads nothing more until the application takes
        // the first, so what the kernel's buffers do not hold of the next one waits.
        let pull = sock_with(SocketType::Pull, |o| o.receive_high_water_mark = 1);
        let ep = pull.bind(&unique(proto)).await.unwrap();
        let push = Arc::new(sock_with(SocketType::Push, |o| o.linger = 10_000));
        push.connect(&ep).unwrap();
        until_peer(&push).await;
        push.send(message(b"first", b"")).await.unwrap();
        push.send(message(b"second", b"")).await.unwrap();
        sleep(Duration::from_millis(50)).await;
        // Larger than loopback's socket buffers: the kernel takes part, the task the rest.
        let (head, body) = frames(7, 16 << 20);
        write_when_idle(&push, &[&head, &body]).await;
        assert!(
            push.unsent() > 0,
            "{proto}: the unwritten rest is not counted"
        );
        let closing = {
            let push = push.clone();
            tokio::spawn(async move { push.close().await })
        };
        sleep(Duration::from_millis(100)).await;
        assert!(
            !closing.is_finished(),
            "{proto}: close() did not wait for the rest"
        );
        assert!(recv(&pull).await == message(b"first", b""));
        assert!(recv(&pull).await == message(b"second", b""));
        let got = recv(&pull).await;
        assert!(
            got == message(&head, &body),
            "{proto}: the message arrived damaged"
        );
        timeout(T, closing)
            .await
            .expect("close never finished")
            .unwrap();
        pull.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curve_connection_takes_no_direct_writes() {
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let pull = sock(SocketType::Pull);
    pull.set_curve(Some(curve_server(&sk))).unwrap();
    let ep = pull.bind(&unique("tcp")).await.unwrap();
    let push = sock(SocketType::Push);
    push.set_curve(Some(curve_client(&ck, sk.public))).unwrap();
    push.connect(&ep).unwrap();
    until_peer(&push).await;
    let (head, body) = frames(1, 100);
    // Written as is, the message would be plaintext on an encrypted stream. (A NULL
    // connection would long have gone idle by then.)
    sleep(Duration::from_millis(100)).await;
    assert!(!push.try_write_now(&[&head, &body]));
    push.send(message(&head, &body)).await.unwrap();
    assert!(recv(&pull).await == message(&head, &body));
    push.close().await;
    pull.close().await;
}
