//! Wire compatibility with zmq.rs (the `zeromq` crate), an independent ZMTP 3.1
//! implementation, in both directions and with either side binding. (libzmq and zeromq.js
//! peers are exercised by the Node interop tests.)

use std::time::Duration;

use bytes::Bytes;
use tokio::time::timeout;
use zeromq::{Socket as _, SocketRecv, SocketSend, ZmqMessage};
use zeropipe_engine::{Message, Socket, SocketOptions, SocketType};

fn ours(kind: SocketType) -> Socket {
    Socket::new(
        kind,
        SocketOptions::default(),
        tokio::runtime::Handle::current(),
    )
    .unwrap()
}

/// Message `i` of a run: a header, an empty frame, the number, and an empty last frame.
fn frames(i: u32) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"job"),
        Bytes::new(),
        Bytes::from(i.to_string()),
        Bytes::new(),
    ]
}

const N: u32 = 1000;

async fn send_from_zmqrs(push: &mut zeromq::PushSocket) {
    for i in 0..N {
        let m = ZmqMessage::try_from(frames(i)).unwrap();
        timeout(Duration::from_secs(5), push.send(m))
            .await
            .expect("zmq.rs send hung")
            .unwrap();
    }
}

async fn expect_at_ours(pull: &Socket) {
    for i in 0..N {
        let m = timeout(Duration::from_secs(5), pull.recv())
            .await
            .expect("receive timed out")
            .unwrap();
        assert_eq!(m, Message::from(frames(i)), "message {i}");
    }
}

async fn send_from_ours(push: &Socket) {
    for i in 0..N {
        push.send(Message::from(frames(i))).await.unwrap();
    }
}

async fn expect_at_zmqrs(pull: &mut zeromq::PullSocket) {
    for i in 0..N {
        let m = timeout(Duration::from_secs(5), pull.recv())
            .await
            .expect("zmq.rs receive timed out")
            .unwrap();
        assert_eq!(m.into_vec(), frames(i), "message {i}");
    }
}

/// Sends the run from our PUSH while zmq.rs receives and checks it, then closes ours.
async fn deliver_ours_to_zmqrs(push: Socket, mut pull: zeromq::PullSocket) {
    let receiver = tokio::spawn(async move {
        expect_at_zmqrs(&mut pull).await;
    });
    send_from_ours(&push).await;
    receiver.await.unwrap();
    push.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zmqrs_push_to_our_bound_pull_delivers_multipart_with_empty_frames_in_order() {
    let pull = ours(SocketType::Pull);
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let mut push = zeromq::PushSocket::new();
    push.connect(&ep).await.unwrap();
    let sender = tokio::spawn(async move {
        send_from_zmqrs(&mut push).await;
        push
    });
    expect_at_ours(&pull).await;
    drop(sender.await.unwrap());
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_push_to_a_bound_zmqrs_pull_delivers_multipart_with_empty_frames_in_order() {
    let mut pull = zeromq::PullSocket::new();
    let ep = pull.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let push = ours(SocketType::Push);
    push.connect(&ep).unwrap();
    deliver_ours_to_zmqrs(push, pull).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_bound_push_feeds_a_connecting_zmqrs_pull() {
    let push = ours(SocketType::Push);
    let ep = push.bind("tcp://127.0.0.1:*").await.unwrap();
    let mut pull = zeromq::PullSocket::new();
    pull.connect(&ep).await.unwrap();
    deliver_ours_to_zmqrs(push, pull).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_zmqrs_push_feeds_our_connecting_pull() {
    let mut push = zeromq::PushSocket::new();
    let ep = push.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let pull = ours(SocketType::Pull);
    pull.connect(&ep).unwrap();
    // zmq.rs hands a message back when no peer is connected yet, so wait for ours to arrive.
    let sender = tokio::spawn(async move {
        for _ in 0..100 {
            match push.send(ZmqMessage::from("hello")).await {
                Ok(()) => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        send_from_zmqrs(&mut push).await;
        push
    });
    let first = timeout(Duration::from_secs(10), pull.recv())
        .await
        .expect("no first message")
        .unwrap();
    assert_eq!(first, Message::from(vec![Bytes::from_static(b"hello")]));
    expect_at_ours(&pull).await;
    drop(sender.await.unwrap());
    pull.close().await;
}
