//! zeropipe's protocol engine: ZeroMQ PUSH/PULL sockets speaking ZMTP 3.1, in plain async
//! Rust on tokio. Nothing here knows about Node; the `zeropipe` crate binds it to N-API.
//!
//! The modules, from the wire up:
//! - [`error`]: the error type and its errno-style codes (`EADDRINUSE`, `EAGAIN`, …).
//! - [`message`]: a message as a list of `Bytes` frames.
//! - [`codec`]: ZMTP 3.x frame and command encoding/decoding, bounded by `maxMessageSize`.
//! - [`greeting`]: the 64-byte ZMTP greeting.
//! - [`handshake`]: the NULL-mechanism handshake (greeting + READY with Socket-Type checks).
//! - [`endpoint`]: parsing `tcp://`, `ipc://` and `inproc://` addresses.
//! - [`transport`]: TCP and IPC listeners and connectors producing byte streams.

pub mod codec;
pub mod endpoint;
pub mod error;
pub mod greeting;
pub mod handshake;
pub mod message;
pub mod transport;

pub use error::{Code, Error, Result};
pub use message::Message;
