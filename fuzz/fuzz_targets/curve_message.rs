//! MESSAGE decoding on an established CURVE session (made by a real in-memory handshake
//! per input). The input is a list of operations, each `op (1 byte) len (1 byte) bytes`:
//! - 0: open `bytes` as a MESSAGE body (anything at all);
//! - 1: the peer seals `bytes` (MORE and COMMAND flags from `len`'s low bits) and we open
//!   it: it must open, with the same frame and flags;
//! - 2: the peer seals `bytes`, `bytes` is XORed over it again, and we open it: it must
//!   fail unless the mask is all zeros;
//! - 3: replay the last sealed MESSAGE: it must fail;
//! - 4: the same as 1, in place.
//!
//! Asserts: no panic; every failure is EPROTO; a failure changes nothing (the next good
//! MESSAGE still opens).
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zeropipe_engine::curve::{
    self, ClientHandshake, ClientStep, KeyPair, SecretKey, ServerHandshake, ServerStep, Session,
};
use zeropipe_engine::Code;

fn keys() -> KeyPair {
    KeyPair::from_secret(SecretKey::from_bytes(curve::key_pair().secret))
}

/// A client and a server session, as a completed handshake leaves them.
fn sessions() -> (Session, Session) {
    let meta = |t: &'static [u8]| vec![("Socket-Type".to_string(), Bytes::from_static(t))];
    let server_keys = keys();
    let mut client = ClientHandshake::new(*server_keys.public(), keys(), &meta(b"PUSH")).unwrap();
    let mut server = ServerHandshake::new(server_keys, &meta(b"PULL")).unwrap();
    let Ok(ServerStep::Send(welcome)) = server.on_command(&client.hello().unwrap()) else {
        panic!("HELLO");
    };
    let Ok(ClientStep::Send(initiate)) = client.on_command(&welcome) else {
        panic!("WELCOME");
    };
    let Ok(ServerStep::Authenticate(_)) = server.on_command(&initiate) else {
        panic!("INITIATE");
    };
    let (ready, server_done) = server.accept().unwrap();
    let Ok(ClientStep::Established(client_done)) = client.on_command(&ready) else {
        panic!("READY");
    };
    (client_done.session, server_done.session)
}

fuzz_target!(|data: &[u8]| {
    let (mut peer, mut ours) = sessions();
    let mut last: Option<Bytes> = None;
    let mut rest = data;
    while let [op, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (bytes, after) = tail.split_at(n);
        rest = after;
        let (more, command) = (len & 1 == 1, len & 2 == 2);
        match op % 5 {
            0 => {
                if let Err(e) = ours.open(bytes) {
                    assert_eq!(e.code, Code::Proto);
                }
            }
            1 | 4 => {
                let sealed = peer.seal(bytes, more, command).unwrap();
                let opened = if op % 5 == 1 {
                    ours.open(&sealed).unwrap()
                } else {
                    ours.open_in_place(BytesMut::from(&sealed[..])).unwrap()
                };
                assert_eq!(&opened.data[..], bytes);
                assert_eq!((opened.more(), opened.command()), (more, command));
                last = Some(sealed);
            }
            2 => {
                let mut sealed = peer.seal(bytes, more, command).unwrap().to_vec();
                for (b, m) in sealed.iter_mut().zip(bytes) {
                    *b ^= m;
                }
                let zero = bytes.iter().take(sealed.len()).all(|&m| m == 0);
                match ours.open(&sealed) {
                    Ok(_) => assert!(zero, "a tampered MESSAGE opened"),
                    Err(e) => {
                        assert_eq!(e.code, Code::Proto);
                        assert!(!zero, "a good MESSAGE did not open");
                    }
                }
            }
            _ => {
                if let Some(m) = &last {
                    assert_eq!(ours.open(m).unwrap_err().code, Code::Proto);
                }
            }
        }
    }
    // A failure changed nothing: the next good MESSAGE still opens.
    let sealed = peer.seal(b"end", false, false).unwrap();
    assert_eq!(&ours.open(&sealed).unwrap().data[..], b"end");
});
