//! The server side of the CURVE handshake: what a CURVE server does with the bytes a client
//! sends after a valid greeting. The bytes are cut into command frames as the connection's
//! handshake reads them (`curve::take_command_frame`), each fed to `ServerHandshake`; a
//! verdict accepts the client and whatever follows is opened as MESSAGEs.
//!
//! The first input byte picks how the client starts:
//! - even: the input is the whole byte stream (HELLO and all);
//! - odd: a real HELLO first (so the fuzzer gets past it to INITIATE without breaking
//!   curve25519), then the real INITIATE with the next input bytes XORed into it (and cut
//!   to their length when the second byte is odd), then the rest as further bytes.
//!
//! Asserts: no panic on any input; every refusal is EPROTO; a command frame never exceeds
//! 64 KiB; a tampered INITIATE (any non-zero XOR mask) is never accepted; once the machine
//! has refused, it refuses everything after.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zeropipe_engine::curve::{
    self, ClientHandshake, ClientStep, KeyPair, PublicKey, SecretKey, ServerHandshake, ServerStep,
};
use zeropipe_engine::Code;

fn meta(t: &'static [u8]) -> Vec<(String, Bytes)> {
    vec![("Socket-Type".to_string(), Bytes::from_static(t))]
}

fn keys() -> KeyPair {
    KeyPair::from_secret(SecretKey::from_bytes(curve::key_pair().secret))
}

fn frame(body: &[u8], out: &mut BytesMut) {
    if body.len() <= 255 {
        out.extend_from_slice(&[0x04, body.len() as u8]);
    } else {
        out.extend_from_slice(&[0x06]);
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    }
    out.extend_from_slice(body);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let server_keys = keys();
    let server_public = *server_keys.public();
    let mut server = ServerHandshake::new(server_keys, &meta(b"PULL")).unwrap();
    let mut stream = BytesMut::new();
    let mut tampered = false;
    if mode & 1 == 0 {
        stream.extend_from_slice(rest);
    } else {
        // A real client's HELLO, the server's WELCOME, then the client's INITIATE.
        let mut client =
            ClientHandshake::new(server_public, keys(), &meta(b"PUSH")).unwrap();
        let hello = client.hello().unwrap();
        let Ok(ServerStep::Send(welcome)) = server.on_command(&hello) else {
            panic!("a real HELLO was refused");
        };
        let Ok(ClientStep::Send(mut initiate)) = client.on_command(&welcome) else {
            panic!("a real WELCOME was refused");
        };
        let (&shape, rest) = rest.split_first().unwrap_or((&0, &[]));
        let cut = rest.len().min(initiate.len());
        let (mask, after) = rest.split_at(cut);
        for (b, m) in initiate.iter_mut().zip(mask) {
            *b ^= m;
        }
        tampered = mask.iter().any(|&m| m != 0);
        if shape & 1 == 1 && cut < initiate.len() {
            initiate.truncate(cut);
            tampered = true;
        }
        frame(&initiate, &mut stream);
        stream.extend_from_slice(after);
    }
    let mut session = None;
    let mut refused = false;
    loop {
        let body = match curve::take_command_frame(&mut stream) {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(e) => {
                assert_eq!(e.code, Code::Proto);
                break;
            }
        };
        assert!(body.len() <= curve::MAX_HANDSHAKE_COMMAND);
        if let Some(s) = session.as_mut() {
            // After READY the client speaks in data frames: a command frame is refused by
            // the connection; open it anyway to exercise MESSAGE parsing on any bytes.
            let s: &mut curve::Session = s;
            let _ = s.open(&body);
            continue;
        }
        match server.on_command(&body) {
            Ok(ServerStep::Send(_)) => assert!(!refused),
            Ok(ServerStep::Authenticate(client)) => {
                assert!(!refused);
                assert!(!tampered, "a tampered INITIATE was accepted");
                let _ = client.public_key;
                let (ready, done) = server.accept().unwrap();
                assert!(ready.starts_with(b"\x05READY"));
                session = Some(done.session);
            }
            Err(e) => {
                assert_eq!(e.code, Code::Proto, "{}", e.message);
                refused = true;
            }
        }
    }
    let _ = PublicKey::from_bytes([0; 32]);
});
