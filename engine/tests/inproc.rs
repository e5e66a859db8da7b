//! inproc peers: a pipe shared by two sockets of this process, and what happens to its
//! messages when either side leaves.

mod common;

use std::time::Duration;

use tokio::time::timeout;
use zeropipe_engine::SocketType;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inproc_pull_that_disconnects_gets_no_more_messages_and_loses_none() {
    let ep = unique("inproc");
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
    let ep = unique("inproc");
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
    // What the departed peer never read moves to the others, not only once every other
    // peer is full.
    let ep = unique("inproc");
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
async fn a_quiet_push_hands_what_a_closed_inproc_pull_never_read_to_its_successor() {
    // The module API's pattern: a PULL closes with a message still in its pipe, a new PULL
    // connects, and the PUSH sends nothing more. The message must not wait for a send
    // that never comes.
    let ep = unique("inproc");
    let push = sock(SocketType::Push);
    push.bind(&ep).await.unwrap();
    let first = sock(SocketType::Pull);
    first.connect(&ep).unwrap();
    push.send(msg(&[b"unread"])).await.unwrap();
    first.close().await;
    let second = sock(SocketType::Pull);
    second.connect(&ep).unwrap();
    let m = timeout(Duration::from_secs(5), recv(&second))
        .await
        .expect("the unread message stayed in the closed peer's pipe");
    assert_eq!(m, msg(&[b"unread"]));
    push.close().await;
    second.close().await;
}
