//! Endpoint addresses as users write them: `tcp://host:port`, `ipc://path`, `inproc://name`.
//!
//! Parsing is purely syntactic: host names are resolved by the transport when binding or
//! connecting (on every connect attempt, so a peer that moves is found again). Every error
//! names the address the user gave, because a socket usually has several endpoints and a
//! bare "invalid argument" does not say which one was wrong.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::error::{Code, Error, Result};

/// Longest `ipc://` path (or abstract name) in bytes. `sockaddr_un.sun_path` is 108 bytes on
/// Linux and 104 on the BSDs and macOS; a path needs one byte for its terminating NUL and an
/// abstract name one byte for its leading NUL, so both get the array size minus one.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const IPC_PATH_MAX: usize = 107;
/// Longest `ipc://` path in bytes (see the Linux variant of this constant).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const IPC_PATH_MAX: usize = 103;

/// The transports zeropipe speaks, listed in the "not supported" message.
const SUPPORTED: &str = "tcp, ipc, inproc";

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `tcp://host:port`.
    Tcp {
        /// Where to bind or what to connect to.
        host: TcpHost,
        /// `None` asks the OS for an ephemeral port (`*` or `0`); only valid for bind.
        port: Option<u16>,
    },
    /// `ipc://…`: a Unix domain socket.
    Ipc(IpcAddr),
    /// `inproc://name`: a socket in the same process.
    Inproc(String),
}

/// The host part of a `tcp://` endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TcpHost {
    /// `*`: every IPv4 interface when binding (as libzmq without `ZMQ_IPV6`); never valid
    /// for connect.
    Any,
    /// A literal IPv4 address, or an IPv6 address written in brackets.
    Ip(IpAddr),
    /// A host name such as `localhost`, resolved when binding or connecting.
    Name(String),
}

/// The address part of an `ipc://` endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IpcAddr {
    /// A file system path, absolute or relative to the working directory.
    Path(PathBuf),
    /// `ipc://*`: bind to a fresh path in the temporary directory; never valid for connect.
    Wildcard,
    /// `ipc://@name`: a socket in the Linux abstract namespace (no file is created).
    Abstract(String),
}

fn invalid(addr: &str, why: &str) -> Error {
    Error::new(Code::Inval, format!("Invalid address \"{addr}\": {why}"))
}

/// Parses an endpoint address.
///
/// Syntax errors give [`Code::Inval`]; a well-formed address with a transport we do not
/// speak (`udp://`, `pgm://`, `ws://`, …) gives [`Code::ProtoNoSupport`]. Both name `addr`.
pub fn parse(addr: &str) -> Result<Endpoint> {
    let Some((scheme, rest)) = addr.split_once("://") else {
        return Err(invalid(addr, "expected transport://address"));
    };
    match scheme {
        "tcp" => parse_tcp(addr, rest),
        "ipc" => parse_ipc(addr, rest),
        "inproc" => {
            if rest.is_empty() {
                Err(invalid(addr, "empty inproc name"))
            } else {
                Ok(Endpoint::Inproc(rest.to_owned()))
            }
        }
        "" => Err(invalid(addr, "missing transport")),
        other => Err(Error::new(
            Code::ProtoNoSupport,
            format!(
                "Protocol \"{other}\" is not supported by zeropipe ({SUPPORTED}) in \"{addr}\""
            ),
        )),
    }
}

fn parse_tcp(addr: &str, rest: &str) -> Result<Endpoint> {
    // libzmq's `tcp://source;destination` form selects the local address of a connect.
    // We do not offer it, and silently treating it as a host name would mislead.
    if rest.contains(';') {
        return Err(invalid(
            addr,
            "source address (\"iface;host:port\") is not supported",
        ));
    }
    if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(invalid(addr, "missing \"]\" after IPv6 address"));
        };
        let Some(port_text) = after.strip_prefix(':') else {
            return Err(invalid(addr, "missing port"));
        };
        if inside.is_empty() {
            return Err(invalid(addr, "empty host"));
        }
        let Ok(ip) = inside.parse::<std::net::Ipv6Addr>() else {
            return Err(invalid(
                addr,
                &format!("\"{inside}\" is not an IPv6 address"),
            ));
        };
        let port = parse_port(addr, port_text)?;
        return Ok(Endpoint::Tcp {
            host: TcpHost::Ip(IpAddr::V6(ip)),
            port,
        });
    }
    let Some((host_text, port_text)) = rest.rsplit_once(':') else {
        return Err(invalid(addr, "missing port"));
    };
    if host_text.contains(':') {
        return Err(invalid(
            addr,
            "IPv6 addresses must be written in brackets, e.g. tcp://[::1]:5555",
        ));
    }
    let host = parse_host(addr, host_text)?;
    let port = parse_port(addr, port_text)?;
    Ok(Endpoint::Tcp { host, port })
}

fn parse_port(addr: &str, text: &str) -> Result<Option<u16>> {
    if text.is_empty() {
        return Err(invalid(addr, "missing port"));
    }
    if text == "*" {
        return Ok(None);
    }
    // Only plain digits: `u16::from_str` would also take a leading `+`.
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(addr, &format!("port \"{text}\" is not a number")));
    }
    match text.parse::<u16>() {
        Ok(0) => Ok(None),
        Ok(port) => Ok(Some(port)),
        Err(_) => Err(invalid(
            addr,
            &format!("port {text} is out of range (0-65535)"),
        )),
    }
}

fn parse_host(addr: &str, host: &str) -> Result<TcpHost> {
    if host.is_empty() {
        return Err(invalid(addr, "empty host"));
    }
    if host == "*" {
        return Ok(TcpHost::Any);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(TcpHost::Ip(ip));
    }
    // Checked here rather than left to the resolver so that typos such as a path or a
    // space fail fast with EINVAL instead of a slow DNS round trip.
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(invalid(
            addr,
            &format!("\"{host}\" is not a valid host name"),
        ));
    }
    Ok(TcpHost::Name(host.to_owned()))
}

fn parse_ipc(addr: &str, rest: &str) -> Result<Endpoint> {
    if rest.is_empty() {
        return Err(invalid(addr, "empty ipc path"));
    }
    if rest.contains('\0') {
        return Err(invalid(addr, "ipc path contains a NUL byte"));
    }
    if rest == "*" {
        return Ok(Endpoint::Ipc(IpcAddr::Wildcard));
    }
    if rest.len() > IPC_PATH_MAX {
        return Err(invalid(
            addr,
            &format!(
                "ipc path too long ({} bytes, at most {IPC_PATH_MAX})",
                rest.len()
            ),
        ));
    }
    if let Some(name) = rest.strip_prefix('@') {
        if name.is_empty() {
            return Err(invalid(addr, "empty abstract socket name"));
        }
        return Ok(Endpoint::Ipc(IpcAddr::Abstract(name.to_owned())));
    }
    Ok(Endpoint::Ipc(IpcAddr::Path(PathBuf::from(rest))))
}

/// Checks that `ep` names one definite peer, as `connect` needs: a `*` host, an ephemeral
/// port and `ipc://*` only make sense for bind. Errors are [`Code::Inval`] naming `addr`.
pub fn validate_for_connect(ep: &Endpoint, addr: &str) -> Result<()> {
    match ep {
        Endpoint::Tcp {
            host: TcpHost::Any, ..
        } => Err(invalid(addr, "cannot connect to \"*\", name a host")),
        Endpoint::Tcp { port: None, .. } => Err(invalid(
            addr,
            "cannot connect to an ephemeral port (\"*\" or 0)",
        )),
        Endpoint::Ipc(IpcAddr::Wildcard) => Err(invalid(addr, "cannot connect to \"ipc://*\"")),
        _ => Ok(()),
    }
}

impl fmt::Display for Endpoint {
    /// The canonical text; it parses back to an equal `Endpoint`. An ephemeral port is
    /// written `*` (not the resolved port: that is the listener's business).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => {
                f.write_str("tcp://")?;
                match host {
                    TcpHost::Any => f.write_str("*")?,
                    TcpHost::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
                    TcpHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
                    TcpHost::Name(name) => f.write_str(name)?,
                }
                match port {
                    Some(port) => write!(f, ":{port}"),
                    None => f.write_str(":*"),
                }
            }
            Endpoint::Ipc(IpcAddr::Path(path)) => write!(f, "ipc://{}", path.display()),
            Endpoint::Ipc(IpcAddr::Wildcard) => f.write_str("ipc://*"),
            Endpoint::Ipc(IpcAddr::Abstract(name)) => write!(f, "ipc://@{name}"),
            Endpoint::Inproc(name) => write!(f, "inproc://{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ok(addr: &str) -> Endpoint {
        match parse(addr) {
            Ok(ep) => ep,
            Err(e) => panic!("{addr} should parse: {e}"),
        }
    }

    fn code_of(addr: &str) -> Error {
        match parse(addr) {
            Ok(ep) => panic!("{addr} should fail, parsed as {ep:?}"),
            Err(e) => e,
        }
    }

    fn tcp(host: TcpHost, port: Option<u16>) -> Endpoint {
        Endpoint::Tcp { host, port }
    }

    #[test]
    fn valid_tcp_addresses_parse() {
        assert_eq!(
            ok("tcp://127.0.0.1:5555"),
            tcp(TcpHost::Ip(Ipv4Addr::LOCALHOST.into()), Some(5555))
        );
        assert_eq!(
            ok("tcp://[::1]:5555"),
            tcp(TcpHost::Ip(Ipv6Addr::LOCALHOST.into()), Some(5555))
        );
        assert_eq!(
            ok("tcp://[::]:*"),
            tcp(TcpHost::Ip(Ipv6Addr::UNSPECIFIED.into()), None)
        );
        assert_eq!(
            ok("tcp://localhost:1"),
            tcp(TcpHost::Name("localhost".into()), Some(1))
        );
        assert_eq!(
            ok("tcp://my-host.example.com.:80"),
            tcp(TcpHost::Name("my-host.example.com.".into()), Some(80))
        );
        assert_eq!(ok("tcp://*:65535"), tcp(TcpHost::Any, Some(65535)));
        assert_eq!(ok("tcp://*:*"), tcp(TcpHost::Any, None));
        assert_eq!(ok("tcp://*:0"), tcp(TcpHost::Any, None));
        assert_eq!(
            ok("tcp://127.0.0.1:*"),
            tcp(TcpHost::Ip(Ipv4Addr::LOCALHOST.into()), None)
        );
    }

    #[test]
    fn valid_ipc_and_inproc_addresses_parse() {
        assert_eq!(
            ok("ipc:///tmp/a.sock"),
            Endpoint::Ipc(IpcAddr::Path("/tmp/a.sock".into()))
        );
        assert_eq!(
            ok("ipc://rel/a.sock"),
            Endpoint::Ipc(IpcAddr::Path("rel/a.sock".into()))
        );
        assert_eq!(ok("ipc://*"), Endpoint::Ipc(IpcAddr::Wildcard));
        assert_eq!(
            ok("ipc://@name"),
            Endpoint::Ipc(IpcAddr::Abstract("name".into()))
        );
        assert_eq!(ok("inproc://a/b:c"), Endpoint::Inproc("a/b:c".into()));
    }

    #[test]
    fn malformed_addresses_are_einval_and_name_the_address() {
        let cases = [
            ("tcp127.0.0.1:5555", "expected transport://address"),
            ("://x", "missing transport"),
            ("tcp://127.0.0.1", "missing port"),
            ("tcp://127.0.0.1:", "missing port"),
            ("tcp://:5555", "empty host"),
            ("tcp://[]:5555", "empty host"),
            ("tcp://[::1]", "missing port"),
            ("tcp://[::1:5555", "missing \"]\""),
            ("tcp://[127.0.0.1]:5555", "not an IPv6 address"),
            ("tcp://::1:5555", "brackets"),
            ("tcp://127.0.0.1:abc", "not a number"),
            ("tcp://127.0.0.1:+5", "not a number"),
            ("tcp://127.0.0.1:-1", "not a number"),
            ("tcp://127.0.0.1:65536", "out of range"),
            ("tcp://127.0.0.1:99999999999", "out of range"),
            ("tcp://127.0.0.1:5555/", "not a number"),
            ("tcp://eth0;127.0.0.1:5555", "source address"),
            ("tcp://bad host:5555", "not a valid host name"),
            ("tcp://a..b:5555", "not a valid host name"),
            ("ipc://", "empty ipc path"),
            ("ipc://@", "empty abstract socket name"),
            ("ipc://a\0b", "NUL"),
            ("inproc://", "empty inproc name"),
        ];
        for (addr, why) in cases {
            let err = code_of(addr);
            assert_eq!(err.code, Code::Inval, "{addr}: {err}");
            assert!(
                err.message.contains(&format!("\"{addr}\"")),
                "{addr}: {err}"
            );
            assert!(err.message.contains(why), "{addr}: {err} (wanted {why})");
        }
    }

    #[test]
    fn ipc_path_longer_than_sun_path_is_einval() {
        let fits = format!("ipc:///{}", "a".repeat(IPC_PATH_MAX - 1));
        assert!(parse(&fits).is_ok());
        let long = format!("ipc:///{}", "a".repeat(IPC_PATH_MAX));
        let err = code_of(&long);
        assert_eq!(err.code, Code::Inval);
        assert!(err.message.contains("ipc path too long"), "{err}");
        let long_abstract = format!("ipc://@{}", "a".repeat(IPC_PATH_MAX));
        assert_eq!(code_of(&long_abstract).code, Code::Inval);
    }

    #[test]
    fn unknown_transports_are_eprotonosupport() {
        for scheme in [
            "udp", "pgm", "epgm", "ws", "wss", "vmci", "norm", "tipc", "foo", "TCP",
        ] {
            let addr = format!("{scheme}://127.0.0.1:5555");
            let err = code_of(&addr);
            assert_eq!(err.code, Code::ProtoNoSupport, "{addr}");
            assert_eq!(
                err.message,
                format!("Protocol \"{scheme}\" is not supported by zeropipe (tcp, ipc, inproc) in \"{addr}\"")
            );
        }
    }

    #[test]
    fn connect_rejects_wildcards_and_ephemeral_ports() {
        for addr in [
            "tcp://*:5555",
            "tcp://127.0.0.1:*",
            "tcp://localhost:0",
            "ipc://*",
        ] {
            let err = validate_for_connect(&ok(addr), addr).expect_err(addr);
            assert_eq!(err.code, Code::Inval, "{addr}");
            assert!(err.message.contains(addr), "{err}");
        }
        for addr in [
            "tcp://127.0.0.1:5555",
            "tcp://[::1]:1",
            "tcp://localhost:2",
            "ipc:///x",
            "ipc://@x",
            "inproc://x",
        ] {
            assert!(validate_for_connect(&ok(addr), addr).is_ok(), "{addr}");
        }
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        for (input, shown) in [
            ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5555"),
            ("tcp://[::1]:5555", "tcp://[::1]:5555"),
            ("tcp://[0:0::1]:5555", "tcp://[::1]:5555"),
            ("tcp://*:0", "tcp://*:*"),
            ("tcp://localhost:007", "tcp://localhost:7"),
            ("ipc:///abs/path", "ipc:///abs/path"),
            ("ipc://rel", "ipc://rel"),
            ("ipc://*", "ipc://*"),
            ("ipc://@abs", "ipc://@abs"),
            ("inproc://name", "inproc://name"),
        ] {
            let ep = ok(input);
            assert_eq!(ep.to_string(), shown);
            assert_eq!(ok(shown), ep);
        }
    }
}
