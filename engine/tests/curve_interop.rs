//! CURVE against libzmq 4.3.5 (pyzmq, from the repo's `.venv`: `bash scripts/setup-python.sh`
//! makes it): each role (server or client) on each side (PUSH or PULL), binding or
//! connecting, over tcp and ipc, with multipart messages, empty frames, a 1 MiB message and
//! libzmq heartbeating every 100 ms (so PING/PONG cross the boxes both ways). The peer is
//! `curve_peer.py`; every wait is bounded and the child is killed if the test ends early.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;
use zeropipe_engine::curve::{self, z85, CurveOptions};
use zeropipe_engine::{Message, Socket, SocketType};

use common::{curve_client, curve_server, sock_with, unique};

const COUNT: usize = 2000;
const T: Duration = Duration::from_secs(20);

fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let py = root.join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `bash scripts/setup-python.sh` (pyzmq for the interop tests)",
        py.display()
    );
    py
}

/// The pattern curve_peer.py uses.
fn message(i: usize) -> Message {
    common::msg(&[
        i.to_string().as_bytes(),
        b"",
        &vec![(i % 256) as u8; i % 50],
    ])
}

fn big() -> Message {
    let big: Vec<u8> = (0..1usize << 20).map(|j| (j * 7 % 251) as u8).collect();
    common::msg(&[b"big", &big])
}

/// Starts the Python peer; for a binding one, also returns the endpoint it bound.
async fn peer(args: &[String], binds: bool) -> (Child, Option<String>, Lines) {
    spawn("curve_peer.py", args, binds).await
}

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// Starts `script` (in tests/) with `args`; if it binds, reads its "ENDPOINT" line.
async fn spawn(script: &str, args: &[String], binds: bool) -> (Child, Option<String>, Lines) {
    let mut child = Command::new(python())
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(script),
        )
        .args(args)
        .stdout(Stdio::piped())
        .stdin(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start curve_peer.py");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let endpoint = if binds {
        let line = timeout(T, lines.next_line())
            .await
            .expect("peer did not bind in time")
            .unwrap()
            .expect("peer exited before binding");
        Some(
            line.strip_prefix("ENDPOINT ")
                .expect("ENDPOINT line")
                .to_string(),
        )
    } else {
        None
    };
    (child, endpoint, lines)
}

/// Tells the peer we are done (a PUSH peer waits for it), then expects its "OK" and exit 0.
async fn finish(
    mut child: Child,
    mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"done\n").await;
    drop(stdin);
    let last = timeout(T, lines.next_line())
        .await
        .expect("peer did not finish in time")
        .unwrap();
    assert_eq!(last.as_deref(), Some("OK"));
    let status = timeout(T, child.wait())
        .await
        .expect("peer did not exit")
        .unwrap();
    assert!(status.success());
}

fn ours(kind: SocketType, curve: CurveOptions) -> Socket {
    let s = sock_with(kind, |o| o.heartbeat_interval = 100);
    s.set_curve(Some(curve)).unwrap();
    s.enable_events();
    s
}

async fn receive_all(pull: &Socket) {
    for i in 0..COUNT {
        let m = match timeout(T, pull.recv()).await {
            Ok(m) => m.unwrap(),
            Err(_) => panic!("recv {i} timed out; events: {:?}", pull.take_events(100)),
        };
        assert_eq!(m, message(i), "message {i}");
    }
    let m = match timeout(T, pull.recv()).await {
        Ok(m) => m.unwrap(),
        Err(_) => panic!(
            "the 1 MiB message timed out; events: {:?}",
            pull.take_events(100)
        ),
    };
    assert!(m == big(), "the 1 MiB message differs");
}

async fn send_all(push: &Socket) {
    for i in 0..COUNT {
        timeout(T, push.send(message(i))).await.unwrap().unwrap();
    }
    timeout(T, push.send(big())).await.unwrap().unwrap();
}

fn z(k: &[u8; 32]) -> String {
    z85::encode(k).unwrap()
}

/// One exchange with a pyzmq peer: our socket of `kind`, as the CURVE server or client,
/// binding if it is the server (the peer binds otherwise) over `proto`.
async fn exchange(proto: &str, kind: SocketType, we_serve: bool) {
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let theirs = match kind {
        SocketType::Push => "pull",
        SocketType::Pull => "push",
    };
    let count = COUNT.to_string();
    let (ours, (child, _, lines)) = if we_serve {
        let s = ours(kind, curve_server(&sk));
        let ep = s.bind(&unique(proto)).await.unwrap();
        let (secret, server) = (z(&ck.secret), z(&sk.public));
        let args = [theirs, "connect", &ep, "client", &secret, &server, &count];
        (s, peer(&args.map(String::from), false).await)
    } else {
        let bind_at = match proto {
            "tcp" => "tcp://127.0.0.1:*".to_string(),
            _ => unique("ipc"),
        };
        let secret = z(&sk.secret);
        let args = [theirs, "bind", &bind_at, "server", &secret, &count];
        let started = peer(&args.map(String::from), true).await;
        let s = ours(kind, curve_client(&ck, sk.public));
        s.connect(started.1.as_deref().unwrap()).unwrap();
        (s, started)
    };
    match kind {
        SocketType::Push => send_all(&ours).await,
        SocketType::Pull => receive_all(&ours).await,
    }
    finish(child, lines).await;
    ours.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_server_their_client() {
    for proto in ["tcp", "ipc"] {
        // Their PUSH sends to our PULL, then our PUSH to their PULL.
        exchange(proto, SocketType::Pull, true).await;
        exchange(proto, SocketType::Push, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn their_server_our_client() {
    for proto in ["tcp", "ipc"] {
        exchange(proto, SocketType::Pull, false).await;
        exchange(proto, SocketType::Push, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_the_same_exchange_without_curve() {
    let args = [
        "push",
        "bind",
        "tcp://127.0.0.1:*",
        "null",
        "x",
        &COUNT.to_string(),
    ];
    let (child, ep, lines) = peer(&args.map(String::from), true).await;
    let pull = sock_with(SocketType::Pull, |o| o.heartbeat_interval = 100);
    pull.enable_events();
    pull.connect(&ep.unwrap()).unwrap();
    receive_all(&pull).await;
    finish(child, lines).await;
    pull.close().await;
}

/// The next line the peer prints, within T.
async fn line(lines: &mut Lines) -> String {
    timeout(T, lines.next_line())
        .await
        .expect("peer said nothing in time")
        .unwrap()
        .expect("peer exited")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_verdicts_cross_both_ways() {
    use zeropipe_engine::EventKind;
    // Their ZAP handler says 400: our client reports handshake:error:auth with 400.
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let args = ["zap-server", "400", &z(&sk.secret)].map(String::from);
    let (mut child, ep, mut lines) = spawn("curve_auth_peer.py", &args, true).await;
    let push = ours(SocketType::Push, curve_client(&ck, sk.public));
    push.connect(&ep.unwrap()).unwrap();
    assert_eq!(line(&mut lines).await, format!("ZAP {}", z(&ck.public)));
    let ev = common::wait_for_events(&push, EventKind::HandshakeErrorAuth, 1, T).await;
    let e = ev
        .iter()
        .find(|e| e.kind == EventKind::HandshakeErrorAuth)
        .unwrap();
    assert_eq!(e.status, Some(400));
    push.close().await;
    drop(child.stdin.take());
    let _ = timeout(T, child.wait()).await;

    // Their ZAP handler says 200: we get in.
    let args = ["zap-server", "200", &z(&sk.secret)].map(String::from);
    let (mut child, ep, mut lines) = spawn("curve_auth_peer.py", &args, true).await;
    let push = ours(SocketType::Push, curve_client(&ck, sk.public));
    push.connect(&ep.unwrap()).unwrap();
    assert_eq!(line(&mut lines).await, format!("ZAP {}", z(&ck.public)));
    common::wait_for_events(&push, EventKind::Handshake, 1, T).await;
    push.close().await;
    drop(child.stdin.take());
    let _ = timeout(T, child.wait()).await;

    // Our allowlist leaves their client out: libzmq reports an authentication failure
    // (400); with its key listed, its handshake succeeds.
    for (listed, expect) in [(false, "FAILED_AUTH 400"), (true, "SUCCEEDED")] {
        let their = curve::key_pair();
        let allowed = if listed {
            their.public
        } else {
            curve::key_pair().public
        };
        let mut opts = curve_server(&sk);
        opts.allow = Some(std::collections::HashSet::from([allowed]));
        let pull = ours(SocketType::Pull, opts);
        let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
        let args = ["client", &ep, &z(&their.secret), &z(&sk.public)].map(String::from);
        let (mut child, _, mut lines) = spawn("curve_auth_peer.py", &args, false).await;
        assert_eq!(line(&mut lines).await, expect);
        let _ = timeout(T, child.wait()).await;
        pull.close().await;
    }

    // A wrong server key: libzmq's server cannot open our HELLO and closes without a word;
    // our client reports no verdict, only a failed handshake, and retries.
    let args = ["zap-server", "200", &z(&sk.secret)].map(String::from);
    let (mut child, ep, _lines) = spawn("curve_auth_peer.py", &args, true).await;
    let push = ours(
        SocketType::Push,
        curve_client(&ck, curve::key_pair().public),
    );
    push.connect(&ep.unwrap()).unwrap();
    let ev = common::wait_for_events(&push, EventKind::HandshakeErrorOther, 2, T).await;
    assert_eq!(common::count(&ev, EventKind::HandshakeErrorAuth), 0);
    assert_eq!(common::count(&ev, EventKind::Handshake), 0);
    push.close().await;
    drop(child.stdin.take());
    let _ = timeout(T, child.wait()).await;
}
