//! Socket monitor events, named as zeromq.js names them (`bind`, `accept`, `connect:retry`,
//! `handshake:error:protocol`, …) so that `sock.events.on(type, fn)` code ports unchanged.

use std::collections::VecDeque;

use crate::error::Error;

/// Declares every event kind once: its variant, its zeromq.js name, and what it means.
macro_rules! event_kinds {
    ($($variant:ident = $name:literal, $doc:literal;)*) => {
        /// A monitor event's kind.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum EventKind {
            $(#[doc = $doc] $variant,)*
        }

        impl EventKind {
            /// The zeromq.js event type string.
            pub fn name(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }
        }

        /// Every event type with what it means, for the binding and generated docs.
        pub const EVENT_SPECS: &[(&str, &str)] = &[$(($name, $doc),)*];
    };
}

event_kinds! {
    Accept = "accept", "A connection was accepted on a bound endpoint (`address` is the endpoint).";
    AcceptError = "accept:error", "Accepting a connection failed (`error.code` is the errno name, e.g. `EMFILE`); the listener keeps going.";
    Bind = "bind", "The socket is bound (`address` is the resolved endpoint, e.g. the real port of `:0`).";
    BindError = "bind:error", "Binding failed (`error` says why, e.g. `EADDRINUSE`).";
    Connect = "connect", "An outgoing connection was established (the handshake follows).";
    ConnectDelay = "connect:delay", "A connect attempt failed (`error.code`, e.g. `ECONNREFUSED`); a retry follows.";
    ConnectRetry = "connect:retry", "A reconnect attempt is scheduled in `interval` ms.";
    Close = "close", "A listening endpoint closed (unbind or close).";
    Disconnect = "disconnect", "A connection ended (`error`, if set, is why: e.g. a heartbeat timeout).";
    Handshake = "handshake", "A peer completed the ZMTP handshake: from now on it takes (PUSH) or sends (PULL) messages. Wait for this, not `accept` or `connect`, to know a peer is ready.";
    HandshakeErrorProtocol = "handshake:error:protocol", "A peer failed the handshake by breaking the protocol (bad greeting, wrong socket type). A `handshake:error` listener hears every handshake failure.";
    HandshakeErrorAuth = "handshake:error:auth", "A CURVE handshake ended in an authentication verdict other than 200 (`status` is 300, 400 or 500): on a server, its allowlist or authenticator refused the client; on a client, the server sent ERROR \"400\" or \"500\". A `handshake:error` listener hears every handshake failure.";
    HandshakeErrorOther = "handshake:error:other", "A handshake failed for another reason (timeout, connection lost). A `handshake:error` listener hears every handshake failure.";
    Unbind = "unbind", "An endpoint was unbound.";
    End = "end", "The socket closed; no events follow.";
}

#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    pub address: String,
    /// For `connect:retry`: the delay before the next attempt, ms.
    pub interval: Option<u64>,
    pub error: Option<Error>,
    /// For `handshake` and a `disconnect` after one: the peer's id, as `Socket::peers`
    /// lists it and `Socket::try_send_to` takes it.
    pub peer: Option<u64>,
    /// For `handshake` with a CURVE peer: its long-term public key (on a server, the
    /// client's, proven by its vouch; on a client, the server key it was configured with).
    pub public_key: Option<[u8; 32]>,
    /// For `handshake` on a CURVE server: the user id its authenticator gave (empty
    /// without one).
    pub user_id: Option<String>,
    /// For `handshake:error:auth`: the ZAP status (300, 400 or 500).
    pub status: Option<u16>,
}

/// A bounded queue: monitoring must never be a way to grow memory without bound, so the
/// oldest events are dropped once nobody reads them.
pub(crate) struct EventQueue {
    pub enabled: bool,
    pub queue: VecDeque<Event>,
}

/// Events kept for a reader that does not take them; the oldest go first.
pub const MAX_QUEUED_EVENTS: usize = 4096;

impl EventQueue {
    pub fn new() -> Self {
        EventQueue {
            enabled: false,
            queue: VecDeque::new(),
        }
    }

    /// Returns true if the queue went from empty to non-empty.
    pub fn push(&mut self, ev: Event) -> bool {
        if !self.enabled {
            return false;
        }
        if self.queue.len() >= MAX_QUEUED_EVENTS {
            self.queue.pop_front();
        }
        self.queue.push_back(ev);
        self.queue.len() == 1
    }
}
