//! zeropipe's protocol engine: ZeroMQ PUSH/PULL sockets speaking ZMTP 3.1, in plain async
//! Rust on tokio. Nothing here knows about Node; the `zeropipe` crate binds it to N-API.
//!
//! The modules, from the wire up:
//! - [`error`]: the error type and its errno-style codes (`EADDRINUSE`, `EAGAIN`, …).
//! - [`message`]: a message as a list of `Bytes` frames.
//! - [`buffer_pool`]: large buffers from the system allocator (received bodies, send stages).
//! - [`codec`]: ZMTP 3.x frame and command encoding/decoding, bounded by `maxMessageSize`.
//! - [`greeting`]: the 64-byte ZMTP greeting.
//! - [`curve`]: the CURVE security mechanism: keys, Z85, the handshake state machines,
//!   MESSAGE boxes, and the options and authenticator a socket takes.
//! - [`handshake`]: the NULL-mechanism handshake (greeting + READY with Socket-Type checks).
//! - [`endpoint`]: parsing `tcp://`, `ipc://` and `inproc://` addresses.
//! - [`transport`]: TCP and IPC listeners and connectors producing byte streams.
//! - [`pipe`]: the bounded queue of messages between a socket and one peer (the HWM).
//! - [`heartbeat`]: a connection's knowledge of its peer's liveness, and when silence ends it.
//! - [`connection`]: one tcp/ipc peer (a `Connection`): handshake, reader, writer.
//! - [`outlet`]: a PUSH connection's write side, shared with the sending thread so that a
//!   message nothing waits ahead of is written straight from the caller's memory.
//! - [`connector`]: the connect side's loop: connect, run, reconnect with backoff.
//! - [`inproc`]: same-process peers sharing one pipe, no copies, no syscalls.
//! - [`ready_queue`]: the pipes that have something for a socket, apart from idle ones;
//!   PULL fair-queuing and PUSH round-robin over them.
//! - [`socket`]: the socket (`Socket`): its API, pipe set, endpoints, readiness, close and
//!   linger.
//! - [`options`]: the socket options, libzmq names, zeropipe defaults.
//! - [`events`]: monitor events, with zeromq.js's names.
//! - [`shutdown`]: how tasks learn that their socket or endpoint is gone.
//! - `trace` (feature `stage-trace`): per-stage timestamps of the receive path.

// Public: the socket API and its types, large buffers (the binding allocates them too),
// and (for the fuzz targets and the raw-peer tests, which speak the wire format directly) the
// codec, greeting, handshake, CURVE machines and endpoint parser.
pub mod buffer_pool;
pub mod codec;
mod connection;
mod connector;
pub mod curve;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod greeting;
pub mod handshake;
mod heartbeat;
mod inproc;
pub mod message;
pub mod options;
mod outlet;
mod pipe;
mod ready_queue;
mod shutdown;
pub mod socket;
#[cfg(feature = "stage-trace")]
pub mod trace;
mod transport;

pub use error::{Code, Error, Result};
pub use events::{Event, EventKind};
pub use handshake::SocketType;
pub use message::Message;
pub use options::SocketOptions;
pub use socket::{Socket, TrySendError};
