//! Which peers a socket reaches now, and sending to one of them: what a dispatcher that
//! tracks each worker's load is built on.

use std::time::Duration;

use tokio::time::timeout;
use zeropipe_engine::{Code, EventKind, SocketType};

mod common;
use common::*;

/// Polls `peers()` until it has `n` entries: the count changes on the I/O threads.
async fn until_peers(s: &zeropipe_engine::Socket, n: usize) -> Vec<(u64, String)> {
    timeout(Duration::from_secs(10), async {
        loop {
            let p = s.peers();
            if p.len() == n {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never saw {n} peers, have {:?}", s.peers()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_a_peer_only_once_its_handshake_completed_and_not_after_it_left() {
    for proto in PROTOS {
        let push = sock(SocketType::Push);
        let ep = push.bind(&unique(proto)).await.unwrap();
        assert!(push.peers().is_empty(), "{proto}: nobody connected yet");

        let pull = sock(SocketType::Pull);
        // A connect with nobody bound is no peer, for tcp and ipc (reconnecting) and inproc
        // (pending) alike.
        let early = sock(SocketType::Pull);
        let nobody = match proto {
            "tcp" => format!("tcp://127.0.0.1:{}", free_port()),
            _ => unique(proto),
        };
        early.connect(&nobody).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            early.peers().is_empty(),
            "{proto}: a pending connect is not a peer"
        );

        pull.connect(&ep).unwrap();
        let on_push = until_peers(&push, 1).await;
        let on_pull = until_peers(&pull, 1).await;
        assert!(on_push[0].1.starts_with(proto), "{proto}: {on_push:?}");
        assert!(on_pull[0].1.starts_with(proto), "{proto}: {on_pull:?}");

        pull.close().await;
        until_peers(&push, 0).await;
        push.close().await;
        early.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_to_the_peer_it_names_and_to_no_other() {
    for proto in PROTOS {
        let push = sock(SocketType::Push);
        let ep = push.bind(&unique(proto)).await.unwrap();
        let a = sock(SocketType::Pull);
        a.connect(&ep).unwrap();
        let first = until_peers(&push, 1).await[0].0;
        let b = sock(SocketType::Pull);
        b.connect(&ep).unwrap();
        let second = until_peers(&push, 2)
            .await
            .into_iter()
            .map(|(id, _)| id)
            .find(|id| *id != first)
            .unwrap();

        // Round-robin would alternate; naming the peer sends all three to `a`.
        for i in 0..3u8 {
            push.try_send_to(first, msg(&[b"to-a", &[i]])).unwrap();
        }
        push.try_send_to(second, msg(&[b"to-b"])).unwrap();
        for i in 0..3u8 {
            assert_eq!(recv(&a).await, msg(&[b"to-a", &[i]]), "{proto}");
        }
        assert_eq!(recv(&b).await, msg(&[b"to-b"]), "{proto}");

        let err = push.try_send_to(999_999_999, msg(&[b"x"])).unwrap_err();
        assert_eq!(err.code, Code::HostUnreach, "{proto}");
        for s in [push, a, b] {
            s.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_send_to_a_peer_at_its_mark_and_keeps_nothing_of_it() {
    let push = sock_with(SocketType::Push, |o| o.send_high_water_mark = 2);
    let ep = push.bind(&unique("inproc")).await.unwrap();
    let pull = sock_with(SocketType::Pull, |o| o.receive_high_water_mark = 2);
    pull.connect(&ep).unwrap();
    let id = until_peers(&push, 1).await[0].0;
    let mut sent = 0;
    let err = loop {
        match push.try_send_to(id, msg(&[&[sent]])) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100, "the mark never applied");
    };
    assert_eq!(err.code, Code::Again);
    for i in 0..sent {
        assert_eq!(recv(&pull).await, msg(&[&[i]]));
    }
    push.close().await;
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_the_peer_in_its_handshake_and_disconnect_events() {
    for proto in ["tcp", "ipc"] {
        let push = sock(SocketType::Push);
        push.enable_events();
        let ep = push.bind(&unique(proto)).await.unwrap();
        let pull = sock(SocketType::Pull);
        pull.connect(&ep).unwrap();
        let id = until_peers(&push, 1).await[0].0;
        pull.close().await;
        until_peers(&push, 0).await;
        // The peer leaves the list when its pipe closes, and its connection's task reports the
        // disconnect just after: the event may come a moment later than the list's change.
        let events =
            wait_for_events(&push, EventKind::Disconnect, 1, Duration::from_secs(10)).await;
        let peer_of = |k: EventKind| events.iter().find(|e| e.kind == k).and_then(|e| e.peer);
        assert_eq!(
            peer_of(EventKind::Handshake),
            Some(id),
            "{proto}: {events:?}"
        );
        assert_eq!(
            peer_of(EventKind::Disconnect),
            Some(id),
            "{proto}: {events:?}"
        );
        push.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_a_reconnected_peer_back_to_the_list() {
    let pull = sock(SocketType::Pull);
    let ep = pull.bind(&unique("tcp")).await.unwrap();
    let push = sock_with(SocketType::Push, |o| o.reconnect_interval = 10);
    push.connect(&ep).unwrap();
    until_peers(&push, 1).await;
    pull.close().await;
    until_peers(&push, 0).await;
    let again = sock(SocketType::Pull);
    again.bind(&ep).await.unwrap();
    until_peers(&push, 1).await;
    push.close().await;
    again.close().await;
}
