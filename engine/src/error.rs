//! One error type for the whole engine, carrying the POSIX-style code that libzmq and
//! zeromq.js users already match on (`EADDRINUSE`, `EAGAIN`, `ECONNREFUSED`, …). The Node
//! binding turns it into an `Error` with `code` in exactly one place.

use std::fmt;
use std::io;

/// The error codes the engine reports: libzmq's and the operating system's errno names,
/// so that code written against zeromq.js (`err.code === "EAGAIN"`) keeps working and an
/// OS failure (`EMFILE`, `ECONNREFUSED`) is reported as itself, not as a generic I/O error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// An argument (endpoint, option value) is malformed.
    Inval,
    /// The endpoint's transport is not one we speak (`udp://`, `pgm://`, …).
    ProtoNoSupport,
    /// The address is already bound, by us or by another process.
    AddrInUse,
    /// The address does not belong to this machine (binding to a foreign IP).
    AddrNotAvail,
    /// The socket (or the endpoint) is closed.
    BadF,
    /// The operation would block: a timeout expired or a non-blocking call found no room.
    Again,
    /// No such endpoint (unbind/disconnect of an address never bound/connected), or no such
    /// file (an ipc path).
    NoEnt,
    /// The peer violated the protocol.
    Proto,
    /// Nobody listens at the address (`ECONNREFUSED`).
    ConnRefused,
    /// The peer reset the connection (`ECONNRESET`).
    ConnReset,
    /// The connection was aborted on our side (`ECONNABORTED`).
    ConnAborted,
    /// Writing to a connection the peer closed (`EPIPE`).
    Pipe,
    /// A connect attempt or an operation timed out at the OS level (`ETIMEDOUT`).
    TimedOut,
    /// No route to the host (`EHOSTUNREACH`).
    HostUnreach,
    /// The network is unreachable (`ENETUNREACH`).
    NetUnreach,
    /// The network is down (`ENETDOWN`).
    NetDown,
    /// This process has no file descriptors left (`EMFILE`).
    MFile,
    /// The system has no file descriptors left (`ENFILE`).
    NFile,
    /// No buffer space for the socket (`ENOBUFS`).
    NoBufs,
    /// Out of memory in the kernel (`ENOMEM`).
    NoMem,
    /// Permission denied, e.g. a privileged port or an ipc directory (`EACCES`).
    Acces,
    /// Operation not permitted (`EPERM`).
    Perm,
    /// Any other I/O failure; the message carries the OS text.
    Io,
}

impl Code {
    /// The errno-style name, as exposed to JavaScript in `err.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Inval => "EINVAL",
            Code::ProtoNoSupport => "EPROTONOSUPPORT",
            Code::AddrInUse => "EADDRINUSE",
            Code::AddrNotAvail => "EADDRNOTAVAIL",
            Code::BadF => "EBADF",
            Code::Again => "EAGAIN",
            Code::NoEnt => "ENOENT",
            Code::Proto => "EPROTO",
            Code::ConnRefused => "ECONNREFUSED",
            Code::ConnReset => "ECONNRESET",
            Code::ConnAborted => "ECONNABORTED",
            Code::Pipe => "EPIPE",
            Code::TimedOut => "ETIMEDOUT",
            Code::HostUnreach => "EHOSTUNREACH",
            Code::NetUnreach => "ENETUNREACH",
            Code::NetDown => "ENETDOWN",
            Code::MFile => "EMFILE",
            Code::NFile => "ENFILE",
            Code::NoBufs => "ENOBUFS",
            Code::NoMem => "ENOMEM",
            Code::Acces => "EACCES",
            Code::Perm => "EPERM",
            Code::Io => "EIO",
        }
    }

    /// The code of an OS error: its errno where the platform gives one we name, else its
    /// portable kind, else [`Code::Io`].
    pub fn of_io(err: &io::Error) -> Code {
        if let Some(code) = err.raw_os_error().and_then(from_errno) {
            return code;
        }
        use io::ErrorKind as K;
        match err.kind() {
            K::AddrInUse => Code::AddrInUse,
            K::AddrNotAvailable => Code::AddrNotAvail,
            K::InvalidInput => Code::Inval,
            K::WouldBlock => Code::Again,
            K::TimedOut => Code::TimedOut,
            K::NotFound => Code::NoEnt,
            K::ConnectionRefused => Code::ConnRefused,
            K::ConnectionReset => Code::ConnReset,
            K::ConnectionAborted => Code::ConnAborted,
            K::BrokenPipe => Code::Pipe,
            K::HostUnreachable => Code::HostUnreach,
            K::NetworkUnreachable => Code::NetUnreach,
            K::NetworkDown => Code::NetDown,
            K::PermissionDenied => Code::Acces,
            K::OutOfMemory => Code::NoMem,
            K::Unsupported => Code::ProtoNoSupport,
            _ => Code::Io,
        }
    }
}

/// The errno values whose names the portable `ErrorKind` does not carry (`EMFILE` is
/// "uncategorized" there), read from the platform's own constants.
#[cfg(unix)]
fn from_errno(errno: i32) -> Option<Code> {
    Some(match errno {
        libc::EMFILE => Code::MFile,
        libc::ENFILE => Code::NFile,
        libc::ENOBUFS => Code::NoBufs,
        libc::ENOMEM => Code::NoMem,
        libc::EPERM => Code::Perm,
        libc::EACCES => Code::Acces,
        libc::ECONNREFUSED => Code::ConnRefused,
        libc::ECONNRESET => Code::ConnReset,
        libc::ECONNABORTED => Code::ConnAborted,
        libc::EPIPE => Code::Pipe,
        libc::ETIMEDOUT => Code::TimedOut,
        libc::EHOSTUNREACH => Code::HostUnreach,
        libc::ENETUNREACH => Code::NetUnreach,
        libc::ENETDOWN => Code::NetDown,
        libc::EADDRINUSE => Code::AddrInUse,
        libc::EADDRNOTAVAIL => Code::AddrNotAvail,
        libc::ENOENT => Code::NoEnt,
        _ => return None,
    })
}

/// Windows reports socket errors as WSA codes; their portable kinds cover the common ones,
/// and these are the descriptor and buffer shortages the kinds leave uncategorized.
#[cfg(windows)]
fn from_errno(errno: i32) -> Option<Code> {
    const WSAEMFILE: i32 = 10024;
    const WSAENOBUFS: i32 = 10055;
    Some(match errno {
        WSAEMFILE => Code::MFile,
        WSAENOBUFS => Code::NoBufs,
        _ => return None,
    })
}

#[cfg(not(any(unix, windows)))]
fn from_errno(_errno: i32) -> Option<Code> {
    None
}

/// An engine error: a code to match on and a human sentence that names what went wrong
/// (the address, the option, the peer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    /// An OS error met while doing `what` with `address`, with its errno name as the code
    /// and the OS text in the message.
    pub fn from_io(err: &io::Error, what: &str, address: &str) -> Self {
        Error::new(Code::of_io(err), format!("{what} {address}: {err}"))
    }

    pub fn closed() -> Self {
        Error::new(Code::BadF, "Socket is closed")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_keep_their_errno_name() {
        let cases = [
            (
                io::Error::from(io::ErrorKind::ConnectionRefused),
                "ECONNREFUSED",
            ),
            (io::Error::from(io::ErrorKind::TimedOut), "ETIMEDOUT"),
            (io::Error::from(io::ErrorKind::AddrInUse), "EADDRINUSE"),
            (io::Error::from(io::ErrorKind::PermissionDenied), "EACCES"),
        ];
        for (err, name) in cases {
            assert_eq!(Code::of_io(&err).as_str(), name, "{err:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn descriptor_exhaustion_is_emfile_not_eio() {
        assert_eq!(
            Code::of_io(&io::Error::from_raw_os_error(libc::EMFILE)),
            Code::MFile
        );
        assert_eq!(
            Code::of_io(&io::Error::from_raw_os_error(libc::ENFILE)),
            Code::NFile
        );
        assert_eq!(
            Code::of_io(&io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            Code::ConnRefused
        );
    }
}
