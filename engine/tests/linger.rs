//! close() and linger: what a closing PUSH still delivers, and what it does not wait for.

mod common;

use std::time::Duration;

use bytes::Bytes;
use tokio::time::timeout;
use zeropipe_engine::{EventKind, Message, SocketType};

use common::*;

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
    let (peer, _buf, _dec) = connect_raw(&ep, SocketType::Pull).await;
    // Until the queue is full (beyond what the kernel buffers hold): the peer never reads.
    let big = Bytes::from(vec![1u8; 64 * 1024]);
    let mut queued = 0;
    while let Ok(sent) = timeout(
        Duration::from_millis(300),
        push.send(Message::from(vec![big.clone()])),
    )
    .await
    {
        sent.unwrap();
        queued += 1;
    }
    assert!(queued > 100, "only {queued} messages were queued");
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
