//! Errors and events carry the operating system's own errno name, as libzmq reports it,
//! not a generic EIO; and a closed socket refuses everything, options included.

mod common;

use std::time::Duration;

use zeropipe_engine::{Code, EventKind, SocketType};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connect_reports_econnrefused() {
    let push = sock_with(SocketType::Push, |o| o.reconnect_interval = 50);
    push.enable_events();
    push.connect(&format!("tcp://127.0.0.1:{}", free_port()))
        .unwrap();
    let events = wait_for_events(&push, EventKind::ConnectDelay, 1, Duration::from_secs(10)).await;
    let delay = events
        .iter()
        .find(|e| e.kind == EventKind::ConnectDelay)
        .unwrap();
    assert_eq!(
        delay.error.as_ref().map(|e| e.code),
        Some(Code::ConnRefused),
        "{delay:?}"
    );
    push.close_now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_cannot_be_changed_after_close() {
    let pull = sock(SocketType::Pull);
    pull.close().await;
    let err = pull.set_options(pull.options()).unwrap_err();
    assert_eq!(err.code, Code::BadF);
}
