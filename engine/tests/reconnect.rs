//! Reconnecting: intervals and backoff as libzmq applies them.

mod common;

use std::time::Duration;

use zeropipe_engine::{EventKind, SocketType};

use common::*;

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
