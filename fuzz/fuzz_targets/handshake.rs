//! The NULL handshake, as PUSH and as PULL, against a scripted peer over an in-memory duplex
//! on a current-thread runtime with paused time. The peer writes the fuzz input (in one
//! piece, then in the fuzzer's pieces), reads everything we send, then hangs up.
//!
//! Asserts, for each role:
//! - the handshake returns (paused time turns a wait on a peer who will never write again
//!   into an immediate timeout, so a hang fails fast instead of stalling the fuzzer);
//! - success means the peer's Socket-Type is one we accept and the minor version is the
//!   greeting's byte 11; whatever the peer sent after its READY is left in the buffer,
//!   byte for byte, with the decoder between frames;
//! - refusals are EPROTO, a peer gone is EIO, and the outcome (or the error code) does not
//!   depend on how the bytes were cut;
//! - what we send is our greeting, then (once the peer's greeting is accepted) our READY,
//!   then an ERROR only for a socket-type refusal;
//! - memory during the handshake follows the bytes received: each read reserves at most
//!   8 KiB, never a size the peer declared.
//!
//! Input layout: see `zeropipe_fuzz::Input`. Options nibble: bits 0-1 pick maxMessageSize
//! (-1, 0, 1 KiB, 256 MiB), bits 2-3 the duplex capacity (16, 64, 4096, 65536 bytes).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::{Builder, Runtime};
use zeropipe_engine::codec::{Command, Decoded, Decoder};
use zeropipe_engine::greeting::{encode_greeting, GREETING_LEN};
use zeropipe_engine::handshake::{handshake, PeerInfo};
use zeropipe_engine::{Code, Error, SocketType};
use zeropipe_fuzz::{peak, reset_meter, Input, Metered};

const LIMITS: [i64; 4] = [-1, 0, 1024, 256 << 20];
const CAPACITIES: [usize; 4] = [16, 64, 4096, 65536];

/// The handshake's read reserve (`READ_CHUNK` in handshake.rs).
const READ_CHUNK: usize = 8192;
/// Per byte received, what a READY's property list may cost (56 bytes per 5-byte empty
/// property, more while the list reallocates), with room to spare.
const BYTES_PER_INPUT_BYTE: usize = 64;
const SLACK: usize = 4096;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
    })
}

struct Run {
    result: Result<PeerInfo, Error>,
    buf: BytesMut,
    decoder: Decoder,
    /// Everything we wrote to the peer.
    sent: Vec<u8>,
}

async fn run(local: SocketType, limit: i64, capacity: usize, pieces: Vec<&[u8]>) -> Run {
    let (mut ours, theirs) = tokio::io::duplex(capacity);
    let (mut their_rd, mut their_wr) = tokio::io::split(theirs);
    let peer_writes = async move {
        for piece in pieces {
            if their_wr.write_all(piece).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        let _ = their_wr.shutdown().await;
    };
    let peer_reads = async move {
        let mut sent = Vec::new();
        let _ = their_rd.read_to_end(&mut sent).await;
        sent
    };
    let we = async move {
        let mut buf = BytesMut::new();
        let mut decoder = Decoder::new(limit);
        reset_meter();
        let hs = Metered(Box::pin(handshake(
            &mut ours,
            local,
            &mut buf,
            &mut decoder,
        )));
        let result = tokio::time::timeout(Duration::from_secs(60), hs)
            .await
            .expect("the handshake hung");
        // Hanging up is what lets the peer's reader finish.
        drop(ours);
        (result, buf, decoder)
    };
    let ((result, buf, decoder), (), sent) = tokio::join!(we, peer_writes, peer_reads);
    Run {
        result,
        buf,
        decoder,
        sent,
    }
}

fn check(local: SocketType, stream: &[u8], run: &Run) {
    let held = peak();
    assert!(
        held <= 3 * (stream.len() + READ_CHUNK) + BYTES_PER_INPUT_BYTE * stream.len() + SLACK,
        "the handshake held {held} bytes for a {}-byte peer script",
        stream.len()
    );
    assert!(run.buf.capacity() <= 2 * (stream.len() + READ_CHUNK) + 64);

    // What we sent: greeting, READY, ERROR, each only after the one before.
    assert_eq!(
        run.sent.get(..GREETING_LEN),
        Some(&encode_greeting(false)[..])
    );
    let mut rest = BytesMut::from(&run.sent[GREETING_LEN..]);
    let mut dec = Decoder::new(-1);
    let mut sent = Vec::new();
    while let Some(d) = dec.decode(&mut rest).expect("we sent a malformed frame") {
        sent.push(d);
    }
    assert!(rest.is_empty(), "we sent a partial frame");
    let ready = Decoded::Command(Command::Ready(vec![(
        "Socket-Type".to_string(),
        Bytes::from_static(local.as_str().as_bytes()),
    )]));
    let error = Decoded::Command(Command::Error("Invalid socket type".to_string()));
    assert!(
        sent.is_empty() || sent == [ready.clone()] || sent == [ready.clone(), error],
        "we sent {sent:?}"
    );

    match &run.result {
        Ok(peer) => {
            assert_eq!(sent, [ready], "sent on success");
            assert!(
                local.accepts(&peer.socket_type),
                "accepted {:?}",
                peer.socket_type
            );
            assert_eq!(Some(&peer.minor), stream.get(11));
            // The peer's READY is the first frame after its greeting; what follows it must
            // be waiting in the buffer, untouched, for the connection's reader.
            let mut after = BytesMut::from(&stream[GREETING_LEN..]);
            let first = Decoder::new(-1).decode(&mut after);
            assert_eq!(
                first,
                Ok(Some(Decoded::Command(Command::Ready(
                    peer.properties.clone()
                ))))
            );
            let at = stream.len() - after.len();
            assert_eq!(
                Some(&run.buf[..]),
                stream.get(at..at + run.buf.len()),
                "the bytes after READY were not left for the reader"
            );
            assert!(!run.decoder.in_message());
        }
        Err(e) => {
            assert!(matches!(e.code, Code::Proto | Code::Io), "{e}");
            if sent.len() == 2 {
                assert_eq!(e.code, Code::Proto);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let limit = LIMITS[usize::from(input.options & 3)];
    let capacity = CAPACITIES[usize::from(input.options >> 2)];
    for local in [SocketType::Push, SocketType::Pull] {
        let whole = runtime().block_on(run(local, limit, capacity, vec![input.stream]));
        check(local, input.stream, &whole);
        let cut = runtime().block_on(run(local, limit, capacity, input.pieces()));
        check(local, input.stream, &cut);
        // Error messages may differ: with a limit of 0 a second data frame is refused as
        // over the limit when it arrives with the first, and as data before READY when the
        // first arrives alone. Refusals must agree in kind, successes in every detail.
        match (&whole.result, &cut.result) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.code, b.code, "{a} vs {b}"),
            (a, b) => panic!("one piece: {a:?}; the fuzzer's pieces: {b:?}"),
        }
    }
});
