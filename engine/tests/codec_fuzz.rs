//! Deterministic robustness checks for everything a peer's bytes reach before a connection
//! is up: the frame decoder and the handshake. Thousands of pseudo-random streams (random
//! bytes, and valid streams with mutations) are fed with random split points; whatever the
//! bytes are, the code must not panic, must not hand out a message over `maxMessageSize`,
//! must not let memory run ahead of the bytes received, and the handshake must return.
//!
//! The generator is a fixed-seed xorshift, so a failure reproduces exactly; the failing
//! seed is printed in the assertion message.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeropipe_engine::codec::{
    encode_command, encode_message, encode_ready, Command, Decoded, Decoder, FRAME_OVERHEAD,
    MAX_COMMAND_SIZE,
};
use zeropipe_engine::greeting::encode_greeting;
use zeropipe_engine::handshake::handshake;
use zeropipe_engine::{Code, Message, SocketType};

/// xorshift64*: tiny, deterministic, good enough to pick bytes and lengths.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Zero is the one state xorshift never leaves.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Lengths biased towards the interesting edges (0, 1, 255/256, a few hundred).
    fn len(&mut self) -> usize {
        match self.below(6) {
            0 => 0,
            1 => 1,
            2 => 254 + self.below(4),
            3 => self.below(16),
            _ => self.below(600),
        }
    }
}

/// A valid stream: a mix of data messages (short and long frames, empty ones) and commands.
fn valid_stream(rng: &mut Rng) -> Vec<u8> {
    let mut out = BytesMut::new();
    for _ in 0..1 + rng.below(5) {
        match rng.below(6) {
            0 => encode_ready(if rng.chance(2) { "PUSH" } else { "PULL" }, &mut out),
            1 => encode_command(
                &Command::Ping {
                    ttl: rng.next() as u16,
                    context: Bytes::from({
                        let n = rng.below(20);
                        rng.bytes(n)
                    }),
                },
                &mut out,
            ),
            2 => encode_command(
                &Command::Ready(
                    (0..rng.below(4))
                        .map(|_| {
                            (
                                "X-Prop".to_string(),
                                Bytes::from({
                                    let n = rng.len();
                                    rng.bytes(n)
                                }),
                            )
                        })
                        .collect(),
                ),
                &mut out,
            ),
            3 => encode_command(
                &Command::Unknown {
                    name: "HELLO".into(),
                    data: Bytes::from({
                        let n = rng.len();
                        rng.bytes(n)
                    }),
                },
                &mut out,
            ),
            _ => {
                let frames = (0..1 + rng.below(6))
                    .map(|_| {
                        Bytes::from({
                            let n = rng.len();
                            rng.bytes(n)
                        })
                    })
                    .collect::<Vec<_>>();
                encode_message(&Message::from(frames), &mut out);
            }
        }
    }
    out.to_vec()
}

/// Breaks a stream the way a hostile or buggy peer would.
fn mutate(rng: &mut Rng, mut s: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        if s.is_empty() {
            s = {
                let n = 1 + rng.below(16);
                rng.bytes(n)
            };
            continue;
        }
        let at = rng.below(s.len());
        match rng.below(7) {
            // Flip one bit (often a flags byte or a size).
            0 => s[at] ^= 1 << rng.below(8),
            1 => s[at] = rng.next() as u8,
            // A declared size from 0 to 2^63-1 or beyond, written where a header might be.
            2 => {
                let size = match rng.below(4) {
                    0 => u64::MAX,
                    1 => 1u64 << (rng.below(63) + 1),
                    2 => i64::MAX as u64,
                    _ => rng.next(),
                };
                let flags = [0x02u8, 0x03, 0x06, 0x07][rng.below(4)];
                let mut header = vec![flags];
                header.extend_from_slice(&size.to_be_bytes());
                s.splice(at..at, header);
            }
            3 => s.truncate(at),
            4 => {
                let n = rng.below(32);
                let junk = rng.bytes(n);
                s.splice(at..at, junk);
            }
            5 => {
                let end = (at + rng.below(16)).min(s.len());
                s.drain(at..end);
            }
            // An endless-looking run of empty MORE frames.
            _ => {
                let run = [0x01u8, 0x00].repeat(rng.below(600));
                s.splice(at..at, run);
            }
        }
    }
    s
}

fn peer_bytes(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => {
            let n = rng.below(2000);
            rng.bytes(n)
        }
        1 => valid_stream(rng),
        _ => {
            let s = valid_stream(rng);
            mutate(rng, s)
        }
    }
}

/// Cuts `total` bytes into chunks at random points (sometimes one byte at a time).
fn split_points(rng: &mut Rng, total: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut left = total;
    let bytewise = rng.chance(8);
    while left > 0 {
        let n = if bytewise {
            1
        } else {
            1 + rng.below(left.min(700))
        };
        sizes.push(n);
        left -= n;
    }
    sizes
}

/// What a message costs against `maxMessageSize` (see `FRAME_OVERHEAD`).
fn cost(m: &Message) -> u64 {
    m.byte_len() as u64 + (m.len() as u64 - 1) * FRAME_OVERHEAD
}

const LIMITS: [i64; 5] = [-1, 0, 1, 300, 1 << 20];

#[test]
fn the_decoder_survives_random_and_mutated_streams_within_its_limits() {
    let mut outcomes = [0usize; 3]; // clean end, protocol error, data still pending
    for seed in 0..20_000u64 {
        let mut rng = Rng::new(seed);
        let stream = peer_bytes(&mut rng);
        let limit = LIMITS[rng.below(LIMITS.len())];
        let mut dec = Decoder::new(limit);
        let mut buf = BytesMut::new();
        let mut fed = 0usize;
        let mut failed = false;
        'feed: for n in split_points(&mut rng, stream.len()) {
            buf.extend_from_slice(&stream[fed..fed + n]);
            fed += n;
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(Decoded::Message(m))) => {
                        assert!(!m.is_empty(), "seed {seed}: a message without frames");
                        if limit >= 0 {
                            assert!(
                                cost(&m) <= limit as u64,
                                "seed {seed}: a message costing {} passed maxMessageSize {limit}",
                                cost(&m)
                            );
                        }
                        assert!(m.byte_len() <= fed, "seed {seed}: more bytes out than in");
                    }
                    Ok(Some(Decoded::Command(c))) => {
                        let size = match &c {
                            Command::Ready(props) => {
                                props.iter().map(|(n, v)| n.len() + v.len()).sum()
                            }
                            Command::Error(reason) => reason.len(),
                            Command::Ping { context, .. } => context.len(),
                            Command::Pong { context } => context.len(),
                            Command::Unknown { name, data } => name.len() + data.len(),
                        };
                        assert!(
                            size as u64 <= MAX_COMMAND_SIZE,
                            "seed {seed}: oversized command"
                        );
                        if let Command::Ping { context, .. } = &c {
                            assert!(
                                context.len() <= 16,
                                "seed {seed}: PING context over 16 bytes"
                            );
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(e.code, Code::Proto, "seed {seed}: {}", e.message);
                        failed = true;
                        break 'feed;
                    }
                }
            }
            // Declared sizes must never turn into memory: the buffer only ever holds what
            // was fed, and its allocation follows that (Vec-style doubling at most).
            assert!(buf.len() <= fed, "seed {seed}");
            assert!(
                buf.capacity() <= 2 * fed + 64,
                "seed {seed}: capacity {} after {fed} bytes fed",
                buf.capacity()
            );
        }
        outcomes[if failed {
            1
        } else if buf.is_empty() && !dec.in_message() {
            0
        } else {
            2
        }] += 1;
    }
    // The generator must exercise every path, or the test proves little.
    assert!(
        outcomes.iter().all(|&n| n > 1000),
        "outcomes (clean, error, pending): {outcomes:?}"
    );
}

/// The bytes a peer sends during the handshake: a greeting (valid, damaged or absent)
/// followed by a READY (valid, damaged or replaced) and whatever else.
fn handshake_script(rng: &mut Rng) -> Vec<u8> {
    let mut greeting = encode_greeting(rng.chance(2)).to_vec();
    if rng.chance(3) {
        greeting = mutate(rng, greeting);
    } else if rng.chance(4) {
        greeting[11] = rng.next() as u8; // any minor version is fine
    }
    let mut rest = BytesMut::new();
    match rng.below(4) {
        0 => encode_ready(["PUSH", "PULL", "push", ""][rng.below(4)], &mut rest),
        1 => rest.extend_from_slice(&peer_bytes(rng)),
        _ => {
            encode_ready("PUSH", &mut rest);
            rest.extend_from_slice(&valid_stream(rng));
        }
    }
    let mut rest = rest.to_vec();
    if rng.chance(2) {
        rest = mutate(rng, rest);
    }
    match rng.below(8) {
        0 => {
            let n = rng.below(200);
            rng.bytes(n)
        }
        1 => greeting[..rng.below(greeting.len())].to_vec(),
        _ => [greeting, rest].concat(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_survives_random_and_mutated_peers_and_always_returns() {
    let mut outcomes = [0usize; 3]; // accepted, refused (EPROTO), peer gone (EIO)
    for seed in 0..3_000u64 {
        let mut rng = Rng::new(seed ^ 0x5EED);
        let script = handshake_script(&mut rng);
        let local = if rng.chance(2) {
            SocketType::Pull
        } else {
            SocketType::Push
        };
        let limit = LIMITS[rng.below(LIMITS.len())];
        let chunks = split_points(&mut rng, script.len());
        let script_len = script.len();
        let (mut ours, theirs) = tokio::io::duplex(16 + rng.below(4096));
        let (mut their_rd, mut their_wr) = tokio::io::split(theirs);
        // The peer reads whatever we send (so our writes never block on it) and writes its
        // script in pieces, then hangs up.
        let sink = tokio::spawn(async move {
            let mut got = Vec::new();
            let _ = their_rd.read_to_end(&mut got).await;
        });
        let writer = tokio::spawn(async move {
            let mut at = 0;
            for n in chunks {
                if their_wr.write_all(&script[at..at + n]).await.is_err() {
                    return;
                }
                at += n;
                tokio::task::yield_now().await;
            }
            let _ = their_wr.shutdown().await;
        });
        let mut buf = BytesMut::new();
        let mut dec = Decoder::new(limit);
        let result = tokio::time::timeout(
            Duration::from_secs(5),
            handshake(&mut ours, local, &mut buf, &mut dec),
        )
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: the handshake did not return"));
        match result {
            Ok(peer) => {
                assert!(
                    local.accepts(&peer.socket_type),
                    "seed {seed}: accepted {:?}",
                    peer.socket_type
                );
                outcomes[0] += 1;
            }
            Err(e) if e.code == Code::Proto => outcomes[1] += 1,
            Err(e) => {
                assert_eq!(e.code, Code::Io, "seed {seed}: {}", e.message);
                outcomes[2] += 1;
            }
        }
        // Each read reserves at most 8 KiB on top of what arrived: never a declared size.
        assert!(
            buf.capacity() <= 2 * (script_len + 8192) + 64,
            "seed {seed}: capacity {} after a {script_len}-byte script",
            buf.capacity()
        );
        drop(ours);
        writer.await.expect("peer writer panicked");
        sink.await.expect("peer reader panicked");
    }
    assert!(
        outcomes.iter().all(|&n| n > 100),
        "outcomes (accepted, refused, gone): {outcomes:?}"
    );
}
