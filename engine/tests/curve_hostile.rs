//! Hostile input over raw TCP against a bound CURVE PULL and a bound CURVE PUSH: each bad
//! HELLO, INITIATE or MESSAGE costs only its own connection (the server closes it) while a
//! good CURVE peer keeps delivering; a HELLO flood is bounded (pending handshakes capped,
//! ended by `handshakeInterval`) and its CPU cost per HELLO is measured and printed.

mod common;

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use zeropipe_engine::curve::crypto::{BoxKey, LOW_ORDER_POINTS};
use zeropipe_engine::curve::{
    self, ClientHandshake, ClientStep, KeyPair, PublicKey, SecretKey, ServerHandshake, Session,
};
use zeropipe_engine::greeting::encode_greeting_for;
use zeropipe_engine::{EventKind, SocketType};

use common::{curve_client, curve_server, msg, recv, sock, sock_with, wait_for_events};

const T: Duration = Duration::from_secs(10);

/// A frame with `flags` (0x04: command, 0x00: data) carrying `body`, long above 255 bytes.
fn framed(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = if body.len() <= 255 {
        vec![flags, body.len() as u8]
    } else {
        let mut v = vec![flags | 0x02];
        v.extend_from_slice(&(body.len() as u64).to_be_bytes());
        v
    };
    out.extend_from_slice(body);
    out
}

/// A command frame carrying `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    framed(0x04, body)
}

/// A data frame carrying `body` (how MESSAGEs travel).
fn data_frame(body: &[u8]) -> Vec<u8> {
    framed(0x00, body)
}

struct Raw {
    s: TcpStream,
    buf: BytesMut,
}

impl Raw {
    /// Connects, nothing more.
    async fn connected(ep: &str) -> Raw {
        let s = TcpStream::connect(ep.trim_start_matches("tcp://"))
            .await
            .unwrap();
        Raw {
            s,
            buf: BytesMut::new(),
        }
    }

    /// Connects and exchanges CURVE greetings.
    async fn greeted(ep: &str) -> Raw {
        let Raw { mut s, .. } = Raw::connected(ep).await;
        s.write_all(&encode_greeting_for(&curve::MECHANISM, false))
            .await
            .unwrap();
        let mut g = [0u8; 64];
        timeout(T, s.read_exact(&mut g)).await.unwrap().unwrap();
        assert_eq!(&g[12..17], b"CURVE");
        Raw {
            s,
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        // The server may already have closed: a failed write is part of what we test.
        let _ = self.s.write_all(bytes).await;
    }

    /// The next command frame's body.
    async fn command(&mut self) -> Vec<u8> {
        loop {
            if self.buf.len() >= 2 {
                let (len, header) = if self.buf[0] & 0x02 != 0 {
                    if self.buf.len() < 9 {
                        (usize::MAX, 9)
                    } else {
                        (
                            u64::from_be_bytes(self.buf[1..9].try_into().unwrap()) as usize,
                            9,
                        )
                    }
                } else {
                    (self.buf[1] as usize, 2)
                };
                if len != usize::MAX && self.buf.len() >= header + len {
                    assert_eq!(self.buf[0] & 0x04, 0x04, "expected a command frame");
                    self.buf.advance(header);
                    return self.buf.split_to(len).to_vec();
                }
            }
            let n = timeout(T, self.s.read_buf(&mut self.buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "server closed during a good handshake");
        }
    }

    /// True once the server has closed the connection (EOF or reset), within T.
    async fn closed(mut self) -> bool {
        let mut sink = vec![0u8; 1 << 16];
        let until = tokio::time::Instant::now() + T;
        loop {
            match tokio::time::timeout_at(until, self.s.read(&mut sink)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}

fn meta(kind: SocketType) -> Vec<(String, Bytes)> {
    vec![(
        "Socket-Type".into(),
        Bytes::from_static(kind.as_str().as_bytes()),
    )]
}

/// A client handshake for a raw peer of type `kind` against `server`.
fn client(server: [u8; 32], kind: SocketType) -> ClientHandshake {
    let keys = KeyPair::from_secret(SecretKey::from_bytes(curve::key_pair().secret));
    ClientHandshake::new(PublicKey::from_bytes(server), keys, &meta(kind)).unwrap()
}

/// Greeting, HELLO, WELCOME: returns the raw peer and the INITIATE it would send.
async fn up_to_initiate(ep: &str, server: [u8; 32], kind: SocketType) -> (Raw, Vec<u8>) {
    let mut hs = client(server, kind);
    let mut raw = Raw::greeted(ep).await;
    raw.send(&frame(&hs.hello().unwrap())).await;
    let welcome = raw.command().await;
    match hs.on_command(&welcome).unwrap() {
        ClientStep::Send(initiate) => (raw, initiate),
        other => panic!("expected INITIATE, got {other:?}"),
    }
}

/// A whole good handshake: the raw peer and its session.
async fn established(
    ep: &str,
    server: [u8; 32],
    kind: SocketType,
) -> (Raw, Session, ClientHandshake) {
    let mut hs = client(server, kind);
    let mut raw = Raw::greeted(ep).await;
    raw.send(&frame(&hs.hello().unwrap())).await;
    let welcome = raw.command().await;
    let ClientStep::Send(initiate) = hs.on_command(&welcome).unwrap() else {
        panic!("no INITIATE")
    };
    raw.send(&frame(&initiate)).await;
    let ready = raw.command().await;
    match hs.on_command(&ready).unwrap() {
        ClientStep::Established(e) => (raw, e.session, hs),
        other => panic!("expected READY, got {other:?}"),
    }
}

/// A client built from the crypto primitives alone (rfc 26's layouts), so that its INITIATE
/// can say what the real client never would.
struct Forger {
    raw: Raw,
    client_short: KeyPair,
    server_short: PublicKey,
    cookie: Vec<u8>,
}

/// rfc 26's short nonce: a 16-byte prefix and an 8-byte counter.
fn short_nonce(prefix: &[u8; 16], n: u64) -> [u8; 24] {
    let mut nonce = [0u8; 24];
    nonce[..16].copy_from_slice(prefix);
    nonce[16..].copy_from_slice(&n.to_be_bytes());
    nonce
}

/// rfc 26's long nonce: an 8-byte prefix and 16 bytes of its box's own.
fn long_nonce(prefix: &[u8; 8], tail: &[u8]) -> [u8; 24] {
    let mut nonce = [0u8; 24];
    nonce[..8].copy_from_slice(prefix);
    nonce[8..].copy_from_slice(tail);
    nonce
}

impl Forger {
    /// Greeting, a hand-made HELLO, and the WELCOME opened: ready to INITIATE.
    async fn welcomed(ep: &str, server: [u8; 32]) -> Forger {
        let client_short = KeyPair::generate();
        let server_long = PublicKey::from_bytes(server);
        let hello_key = BoxKey::precompute(&server_long, client_short.secret()).unwrap();
        let mut hello = b"\x05HELLO\x01\x00".to_vec();
        hello.resize(80, 0);
        hello.extend_from_slice(client_short.public().as_bytes());
        hello.extend_from_slice(&1u64.to_be_bytes());
        hello.extend_from_slice(&hello_key.seal(&short_nonce(b"CurveZMQHELLO---", 1), &[0u8; 64]));
        let mut raw = Raw::greeted(ep).await;
        raw.send(&frame(&hello)).await;
        let welcome = raw.command().await;
        assert_eq!(&welcome[..8], b"\x07WELCOME");
        let plain = hello_key
            .open(&long_nonce(b"WELCOME-", &welcome[8..24]), &welcome[24..])
            .expect("the WELCOME opens with the HELLO's keys");
        Forger {
            raw,
            client_short,
            server_short: PublicKey::from_bytes(plain[..32].try_into().unwrap()),
            cookie: plain[32..].to_vec(),
        }
    }

    /// Sends an INITIATE claiming the long-term key `claimed`, its vouch sealed with
    /// `secret` and naming `vouch_short` and `vouch_server`, with a Socket-Type of `kind`.
    async fn initiate(
        mut self,
        claimed: &PublicKey,
        secret: &SecretKey,
        vouch_short: &PublicKey,
        vouch_server: &PublicKey,
        kind: SocketType,
    ) -> Raw {
        let vouch_key = BoxKey::precompute(&self.server_short, secret).unwrap();
        let vouch_nonce = [7u8; 16];
        let vouch = vouch_key.seal(
            &long_nonce(b"VOUCH---", &vouch_nonce),
            &[vouch_short.as_bytes().as_slice(), vouch_server.as_bytes()].concat(),
        );
        let kind = kind.as_str().as_bytes();
        let mut metadata = b"\x0bSocket-Type".to_vec();
        metadata.extend_from_slice(&(kind.len() as u32).to_be_bytes());
        metadata.extend_from_slice(kind);
        let plain = [
            claimed.as_bytes().as_slice(),
            &vouch_nonce,
            &vouch,
            &metadata,
        ]
        .concat();
        let box_key = BoxKey::precompute(&self.server_short, self.client_short.secret()).unwrap();
        let boxed = box_key.seal(&short_nonce(b"CurveZMQINITIATE", 2), &plain);
        let body = [
            b"\x08INITIATE".as_slice(),
            &self.cookie,
            &2u64.to_be_bytes(),
            &boxed,
        ]
        .concat();
        self.raw.send(&frame(&body)).await;
        self.raw
    }
}

/// A sealed PING (a valid MESSAGE that delivers nothing) as a data frame.
fn ping(session: &mut Session) -> Vec<u8> {
    data_frame(&session.seal(b"\x04PING\x00\x00", false, true).unwrap())
}

/// Runs every hostile case against the CURVE server bound at `ep` with public key `server`,
/// as a raw peer of type `raw_kind`; after each, `check(i)` proves good traffic still flows.
async fn every_case<F, Fut>(ep: &str, server: [u8; 32], raw_kind: SocketType, check: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut cases: Vec<(&str, Raw)> = Vec::new();
    let good_hello = || client(server, raw_kind).hello().unwrap();

    // Downgrades: a ZMTP 2.0 greeting (refused at its major version), a NULL greeting.
    let mut raw = Raw::connected(ep).await;
    raw.send(b"\xff\0\0\0\0\0\0\0\x01\x7f\x02\x00").await;
    cases.push(("a ZMTP 2.0 greeting", raw));
    let mut raw = Raw::connected(ep).await;
    raw.send(&zeropipe_engine::greeting::encode_greeting(false))
        .await;
    cases.push(("a NULL greeting", raw));

    let mut raw = Raw::greeted(ep).await;
    raw.send(&frame(&good_hello()[..100])).await;
    cases.push(("short HELLO", raw));

    let mut raw = Raw::greeted(ep).await;
    let mut h = good_hello();
    h[150] ^= 1;
    raw.send(&frame(&h)).await;
    cases.push(("HELLO with a flipped bit in its box", raw));

    let mut raw = Raw::greeted(ep).await;
    let mut h = good_hello();
    h[6] = 2;
    raw.send(&frame(&h)).await;
    cases.push(("HELLO version 2.0", raw));

    for point in LOW_ORDER_POINTS {
        let mut raw = Raw::greeted(ep).await;
        let mut h = good_hello();
        h[80..112].copy_from_slice(&point);
        raw.send(&frame(&h)).await;
        cases.push(("HELLO with a low-order short-term key", raw));
    }

    let mut raw = Raw::greeted(ep).await;
    raw.send(&[0x55; 300]).await;
    cases.push(("garbage after the greeting", raw));

    let mut raw = Raw::greeted(ep).await;
    raw.send(b"\x00\x05hello").await;
    cases.push(("a data frame instead of HELLO", raw));

    let mut raw = Raw::greeted(ep).await;
    raw.send(b"\x06\x00\x00\x00\x00\x00\x01\x11\x71").await;
    cases.push(("a 70 000-byte command header", raw));

    let (mut raw, mut initiate) = up_to_initiate(ep, server, raw_kind).await;
    initiate[9 + 40] ^= 1;
    raw.send(&frame(&initiate)).await;
    cases.push(("INITIATE with a tampered cookie", raw));

    let (mut raw, mut initiate) = up_to_initiate(ep, server, raw_kind).await;
    let last = initiate.len() - 1;
    initiate[last] ^= 0x80;
    raw.send(&frame(&initiate)).await;
    cases.push(("INITIATE with a tampered box (vouch, metadata)", raw));

    let (mut raw, initiate) = up_to_initiate(ep, server, raw_kind).await;
    raw.send(&frame(&initiate[..200])).await;
    cases.push(("short INITIATE", raw));

    // Bad vouches in an INITIATE whose box opens: the forger's honest INITIATE is
    // accepted (so its bad ones are refused for their vouch alone), then a vouch for another
    // short-term key, one naming another server (libzmq checks only the short-term key),
    // and one sealed by another long-term key than the INITIATE claims.
    let (client, other) = (KeyPair::generate(), KeyPair::generate());
    let (c, c_secret, server_long) = (
        client.public(),
        client.secret(),
        PublicKey::from_bytes(server),
    );
    let f = Forger::welcomed(ep, server).await;
    let short = *f.client_short.public();
    let mut honest = f
        .initiate(c, c_secret, &short, &server_long, raw_kind)
        .await;
    let ready = honest.command().await;
    assert_eq!(
        &ready[..6],
        b"\x05READY",
        "the forged honest INITIATE is accepted"
    );
    // Then it misbehaves at once, so that the server drops it before any check runs (a
    // PUSH server would otherwise deal it a good message).
    honest.send(&frame(b"\x04PING\x00\x00")).await;
    cases.push(("a forged honest handshake, then a plaintext PING", honest));
    let f = Forger::welcomed(ep, server).await;
    let raw = f
        .initiate(c, c_secret, other.public(), &server_long, raw_kind)
        .await;
    cases.push(("INITIATE vouching for another short-term key", raw));
    let f = Forger::welcomed(ep, server).await;
    let short = *f.client_short.public();
    let raw = f
        .initiate(c, c_secret, &short, other.public(), raw_kind)
        .await;
    cases.push(("INITIATE whose vouch names another server", raw));
    let f = Forger::welcomed(ep, server).await;
    let short = *f.client_short.public();
    let raw = f
        .initiate(other.public(), c_secret, &short, &server_long, raw_kind)
        .await;
    cases.push(("INITIATE whose vouch another long-term key sealed", raw));

    let (raw_a, initiate_a) = up_to_initiate(ep, server, raw_kind).await;
    let (mut raw_b, _) = up_to_initiate(ep, server, raw_kind).await;
    raw_b.send(&frame(&initiate_a)).await;
    cases.push(("INITIATE with another connection's cookie", raw_b));
    drop(raw_a);

    let (mut raw, initiate) = up_to_initiate(ep, server, raw_kind).await;
    let mut big = initiate.clone();
    big.resize(65_537, 0);
    raw.send(&frame(&big)).await;
    cases.push(("INITIATE over 64 KiB", raw));

    let (mut raw, mut session, _) = established(ep, server, raw_kind).await;
    let mut m = ping(&mut session);
    let at = m.len() - 20;
    m[at] ^= 1;
    raw.send(&m).await;
    cases.push(("MESSAGE with a flipped MAC bit", raw));

    let (mut raw, mut session, _) = established(ep, server, raw_kind).await;
    let m = ping(&mut session);
    raw.send(&m).await;
    raw.send(&m).await;
    cases.push(("a replayed MESSAGE", raw));

    let (mut raw, mut session, _) = established(ep, server, raw_kind).await;
    let (first, second) = (ping(&mut session), ping(&mut session));
    raw.send(&second).await;
    raw.send(&first).await;
    cases.push(("a MESSAGE with a lower nonce", raw));

    let (mut raw, _session, _) = established(ep, server, raw_kind).await;
    raw.send(&data_frame(
        b"\x07MESSAGE\x00\x00\x00\x00\x00\x00\x00\x09tooshort",
    ))
    .await;
    cases.push(("a MESSAGE under 33 bytes", raw));

    let (mut raw, _session, _) = established(ep, server, raw_kind).await;
    raw.send(&frame(b"\x04PING\x00\x00")).await;
    cases.push(("a plaintext PING after READY", raw));

    let (mut raw, _session, _) = established(ep, server, raw_kind).await;
    raw.send(&frame(b"\x05ERROR\x03400")).await;
    cases.push(("a plaintext ERROR after READY", raw));

    let (mut raw, initiate) = up_to_initiate(ep, server, raw_kind).await;
    raw.send(&frame(&initiate)).await;
    raw.send(&frame(&initiate)).await;
    cases.push(("INITIATE sent twice", raw));

    let (mut raw, mut session, _) = established(ep, server, raw_kind).await;
    // A MESSAGE sealed as if from the server (our own direction's prefix) does not open.
    let mut wrong = session.seal(b"x", false, false).unwrap().to_vec();
    wrong[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    raw.send(&data_frame(&wrong)).await;
    cases.push(("a MESSAGE with a forged nonce", raw));

    for (i, (name, raw)) in cases.into_iter().enumerate() {
        assert!(
            raw.closed().await,
            "{raw_kind:?} peer, {name}: the server kept the connection"
        );
        check(i).await;
    }
}

/// A bound CURVE server of type `kind` with a good CURVE client connected, against every
/// hostile case; good messages must keep flowing between each.
async fn hostile_against(kind: SocketType) {
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let (push, pull) = (sock(SocketType::Push), sock(SocketType::Pull));
    let peer_kind = match kind {
        SocketType::Pull => SocketType::Push,
        SocketType::Push => SocketType::Pull,
    };
    let (server, client) = match kind {
        SocketType::Pull => (&pull, &push),
        SocketType::Push => (&push, &pull),
    };
    server.set_curve(Some(curve_server(&sk))).unwrap();
    let ep = server.bind("tcp://127.0.0.1:*").await.unwrap();
    client
        .set_curve(Some(curve_client(&ck, sk.public)))
        .unwrap();
    client.connect(&ep).unwrap();
    let check = |i: usize| {
        let (push, pull) = (&push, &pull);
        async move {
            let m = msg(&[format!("good {i}").as_bytes()]);
            timeout(T, push.send(m.clone())).await.unwrap().unwrap();
            assert_eq!(recv(pull).await, m);
        }
    };
    check(usize::MAX).await;
    every_case(&ep, sk.public, peer_kind, check).await;
    push.close().await;
    pull.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curve_pull_drops_each_hostile_peer_and_keeps_receiving() {
    hostile_against(SocketType::Pull).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curve_push_drops_each_hostile_peer_and_keeps_sending() {
    hostile_against(SocketType::Push).await;
}

/// This process's CPU time (user + system).
#[cfg(unix)]
fn cpu() -> Duration {
    // SAFETY: getrusage writes one rusage struct, which we own and zeroed.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// Opens one connection per prepared greeting+HELLO and sends it; returns the streams.
async fn flood(ep: &str, hellos: &[Vec<u8>]) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for h in hellos {
        let mut s = TcpStream::connect(ep.trim_start_matches("tcp://"))
            .await
            .unwrap();
        let _ = s.write_all(h).await;
        streams.push(s);
    }
    streams
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_flood_is_bounded_timed_out_and_cheap_per_hello() {
    const N: usize = 300;
    let (sk, ck) = (curve::key_pair(), curve::key_pair());
    let pull = sock_with(SocketType::Pull, |o| o.handshake_interval = 500);
    pull.set_curve(Some(curve_server(&sk))).unwrap();
    pull.enable_events();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let greeting = encode_greeting_for(&curve::MECHANISM, false);
    let prepared = |hello: Vec<u8>| [&greeting[..], &frame(&hello)].concat();

    // 1. HELLOs whose box does not open (random C'): one curve25519 computation each, then
    //    the connection is closed.
    let bogus: Vec<Vec<u8>> = (0..N)
        .map(|_| {
            let mut h = client(sk.public, SocketType::Push).hello().unwrap();
            h[80..112].copy_from_slice(&curve::key_pair().public);
            prepared(h)
        })
        .collect();
    let (cpu0, t0) = (cpu(), Instant::now());
    let streams = flood(&ep, &bogus).await;
    wait_for_events(&pull, EventKind::HandshakeErrorProtocol, N, T).await;
    let (bogus_cpu, bogus_wall) = (cpu() - cpu0, t0.elapsed());
    drop(streams);

    // 2. Valid HELLOs that never go on: each earns a WELCOME (two more curve25519
    //    computations and a short-term key pair) and holds a pending slot until
    //    handshakeInterval; past MAX_PENDING_CURVE_HANDSHAKES connections are closed at once.
    let valid: Vec<Vec<u8>> = (0..N)
        .map(|_| prepared(client(sk.public, SocketType::Push).hello().unwrap()))
        .collect();
    let (cpu0, t0) = (cpu(), Instant::now());
    let streams = flood(&ep, &valid).await;
    let ev = wait_for_events(&pull, EventKind::HandshakeErrorOther, N, T).await;
    let (valid_cpu, valid_wall) = (cpu() - cpu0, t0.elapsed());
    let refused = ev
        .iter()
        .filter(|e| {
            e.error
                .as_ref()
                .is_some_and(|e| e.message.contains("too many"))
        })
        .count();
    let timed_out = ev
        .iter()
        .filter(|e| {
            e.error
                .as_ref()
                .is_some_and(|e| e.message.contains("timed out"))
        })
        .count();
    let bound = zeropipe_engine::socket::MAX_PENDING_CURVE_HANDSHAKES;
    assert!(
        timed_out <= bound,
        "{timed_out} pending handshakes, bound {bound}"
    );
    assert_eq!(
        refused + timed_out,
        N,
        "refused {refused}, timed out {timed_out}"
    );
    drop(streams);

    println!(
        "HELLO flood, {N} connections each: bogus HELLO {:.0} us CPU each ({:?} wall); \
         valid HELLO left pending {:.0} us CPU each ({:?} wall, {refused} refused at the bound, \
         {timed_out} ended by handshakeInterval)",
        bogus_cpu.as_secs_f64() * 1e6 / N as f64,
        bogus_wall,
        valid_cpu.as_secs_f64() * 1e6 / N as f64,
        valid_wall,
    );

    // The handshake machine alone (no sockets, no tasks): what a HELLO costs in crypto.
    let server_keys = || KeyPair::from_secret(SecretKey::from_bytes(sk.secret));
    let bodies = |bogus: bool| -> Vec<Vec<u8>> {
        (0..N)
            .map(|_| {
                let mut h = client(sk.public, SocketType::Push).hello().unwrap();
                if bogus {
                    h[80..112].copy_from_slice(&curve::key_pair().public);
                }
                h
            })
            .collect()
    };
    let mut machine_cpu = [Duration::ZERO; 2];
    for (i, bogus) in [true, false].into_iter().enumerate() {
        let hellos = bodies(bogus);
        let machines: Vec<_> = (0..N)
            .map(|_| ServerHandshake::new(server_keys(), &meta(SocketType::Pull)).unwrap())
            .collect();
        let c0 = cpu();
        for (mut m, h) in machines.into_iter().zip(&hellos) {
            assert_eq!(m.on_command(h).is_ok(), !bogus);
        }
        machine_cpu[i] = (cpu() - c0) / N as u32;
    }
    println!(
        "HELLO in the handshake machine alone: bogus {:?}, valid (WELCOME made) {:?}",
        machine_cpu[0], machine_cpu[1]
    );

    // A good client still gets in afterwards.
    let push = sock(SocketType::Push);
    push.set_curve(Some(curve_client(&ck, sk.public))).unwrap();
    push.connect(&ep).unwrap();
    timeout(T, push.send(msg(&[b"after the flood"])))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recv(&pull).await, msg(&[b"after the flood"]));
    push.close().await;
    pull.close().await;
}
