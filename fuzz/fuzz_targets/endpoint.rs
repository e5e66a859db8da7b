//! `endpoint::parse` and `validate_for_connect` on arbitrary strings (the input, lossily
//! decoded as UTF-8).
//!
//! Asserts that nothing panics, and:
//! - a refusal is EINVAL or EPROTONOSUPPORT and quotes the address as given;
//! - an accepted endpoint has sane fields: a known scheme prefix, a non-empty inproc name,
//!   an ipc path or abstract name that is non-empty, NUL-free and within `IPC_PATH_MAX`, a
//!   host name that is a valid DNS name;
//! - its `Display` text parses back to an equal endpoint, and is stable;
//! - `validate_for_connect` accepts exactly the endpoints naming one definite peer, and its
//!   refusals are EINVAL quoting the address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zeropipe_engine::endpoint::{
    parse, validate_for_connect, Endpoint, IpcAddr, TcpHost, IPC_PATH_MAX,
};
use zeropipe_engine::Code;

fn check_host_name(name: &str) {
    let bare = name.strip_suffix('.').unwrap_or(name);
    assert!(!bare.is_empty() && bare.len() <= 253, "host name {name:?}");
    for label in bare.split('.') {
        assert!(
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "host name {name:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let addr = String::from_utf8_lossy(data);
    let addr = addr.as_ref();
    let ep = match parse(addr) {
        Ok(ep) => ep,
        Err(e) => {
            assert!(matches!(e.code, Code::Inval | Code::ProtoNoSupport), "{e}");
            assert!(e.message.contains(addr), "{addr:?}: {e}");
            return;
        }
    };

    match &ep {
        Endpoint::Tcp { host, port } => {
            assert!(addr.starts_with("tcp://"));
            if let TcpHost::Name(name) = host {
                check_host_name(name);
            }
            assert_ne!(*port, Some(0), "port 0 is ephemeral, i.e. None");
        }
        Endpoint::Ipc(ipc) => {
            assert!(addr.starts_with("ipc://"));
            match ipc {
                IpcAddr::Path(path) => {
                    let text = path.to_str().expect("a path parsed from a str");
                    assert!(!text.is_empty() && text.len() <= IPC_PATH_MAX, "{text:?}");
                    assert!(!text.contains('\0') && !text.starts_with('@') && text != "*");
                }
                IpcAddr::Abstract(name) => {
                    assert!(!name.is_empty() && name.len() < IPC_PATH_MAX, "{name:?}");
                    assert!(!name.contains('\0'));
                }
                IpcAddr::Wildcard => assert_eq!(addr, "ipc://*"),
            }
        }
        Endpoint::Inproc(name) => {
            assert!(addr.starts_with("inproc://"));
            assert!(!name.is_empty());
        }
    }

    let shown = ep.to_string();
    match parse(&shown) {
        Ok(back) => assert_eq!(back, ep, "{addr:?} shown as {shown:?}"),
        Err(e) => panic!("{addr:?} shown as {shown:?}, which does not parse: {e}"),
    }
    let again = parse(&shown).map(|ep| ep.to_string());
    assert_eq!(
        again.as_deref(),
        Ok(shown.as_str()),
        "display is not canonical"
    );

    let definite = !matches!(
        ep,
        Endpoint::Tcp {
            host: TcpHost::Any,
            ..
        } | Endpoint::Tcp { port: None, .. }
            | Endpoint::Ipc(IpcAddr::Wildcard)
    );
    match validate_for_connect(&ep, addr) {
        Ok(()) => assert!(definite, "connect accepted {ep:?}"),
        Err(e) => {
            assert!(!definite, "connect refused {ep:?}: {e}");
            assert_eq!(e.code, Code::Inval);
            assert!(e.message.contains(addr), "{e}");
        }
    }
});
