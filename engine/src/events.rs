//! Socket monitor events, named as zeromq.js names them (`bind`, `accept`, `connect:retry`,
//! `handshake:error:protocol`, …) so that `sock.events.on(type, fn)` code ports unchanged.

use std::collections::VecDeque;

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Accept,
    AcceptError,
    Bind,
    BindError,
    Connect,
    ConnectDelay,
    ConnectRetry,
    Close,
    Disconnect,
    Handshake,
    HandshakeErrorProtocol,
    HandshakeErrorOther,
    Unbind,
    End,
}

impl EventKind {
    /// The zeromq.js event type string.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Accept => "accept",
            EventKind::AcceptError => "accept:error",
            EventKind::Bind => "bind",
            EventKind::BindError => "bind:error",
            EventKind::Connect => "connect",
            EventKind::ConnectDelay => "connect:delay",
            EventKind::ConnectRetry => "connect:retry",
            EventKind::Close => "close",
            EventKind::Disconnect => "disconnect",
            EventKind::Handshake => "handshake",
            EventKind::HandshakeErrorProtocol => "handshake:error:protocol",
            EventKind::HandshakeErrorOther => "handshake:error:other",
            EventKind::Unbind => "unbind",
            EventKind::End => "end",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    pub address: String,
    /// For `connect:retry`: the delay before the next attempt, ms.
    pub interval: Option<u64>,
    pub error: Option<Error>,
}

/// A bounded queue: monitoring must never be a way to grow memory without bound, so the
/// oldest events are dropped once nobody reads them.
pub(crate) struct EventQueue {
    pub enabled: bool,
    pub queue: VecDeque<Event>,
}

pub(crate) const MAX_QUEUED_EVENTS: usize = 4096;

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
