//! One error type for the whole engine, carrying the POSIX-style code that libzmq and
//! zeromq.js users already match on (`EADDRINUSE`, `EAGAIN`, …). The Node binding turns it
//! into an `Error` with `code` in exactly one place.

use std::fmt;
use std::io;

/// The error codes the engine reports. The names are libzmq's errno names so that code
/// written against zeromq.js (`err.code === "EAGAIN"`) keeps working.
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
    /// No such endpoint (unbind/disconnect of an address never bound/connected).
    NoEnt,
    /// The peer violated the protocol.
    Proto,
    /// The operation was cancelled because the socket is closing.
    Term,
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
            Code::Term => "ETERM",
            Code::Io => "EIO",
        }
    }
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
        Error { code, message: message.into() }
    }

    /// Maps an OS error met while using `address` to our codes, keeping the OS text.
    pub fn from_io(err: &io::Error, what: &str, address: &str) -> Self {
        let code = match err.kind() {
            io::ErrorKind::AddrInUse => Code::AddrInUse,
            io::ErrorKind::AddrNotAvailable => Code::AddrNotAvail,
            io::ErrorKind::InvalidInput => Code::Inval,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Code::Again,
            _ => Code::Io,
        };
        Error::new(code, format!("{what} {address}: {err}"))
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
