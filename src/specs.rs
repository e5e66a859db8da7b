//! What the JS layer learns from the engine instead of restating it: every option's name,
//! default, range and meaning, every event type, and the readiness bits. The generated
//! TypeScript (`lib/generated.ts`, by `scripts/generate.mjs`) and the README's option table
//! come from these too.

use napi_derive::napi;
use zeropipe_engine as engine;

/// Readiness bit: a message can be received.
#[napi]
pub const READABLE: u32 = engine::socket::READABLE;
/// Readiness bit: a message can be sent without waiting.
#[napi]
pub const WRITABLE: u32 = engine::socket::WRITABLE;
/// Readiness bit: monitor events are queued.
#[napi]
pub const EVENTS: u32 = engine::socket::EVENTS;
/// Readiness bit: a peer completed its handshake or left.
#[napi]
pub const PEERS: u32 = engine::socket::PEERS;
/// Readiness bit: the socket closed.
#[napi]
pub const CLOSED: u32 = engine::socket::CLOSED;
/// Events kept for a reader that does not read them (the oldest go first).
#[napi]
pub const MAX_QUEUED_EVENTS: u32 = engine::events::MAX_QUEUED_EVENTS as u32;

/// One socket option, as the engine declares it.
#[napi(object)]
pub struct OptionSpec {
    /// The zeromq.js name (`sendHighWaterMark`).
    pub name: String,
    /// The libzmq name (`ZMQ_SNDHWM`).
    pub libzmq: String,
    /// `"integer"` or `"boolean"`.
    pub kind: String,
    /// The default (booleans: 0 or 1).
    pub default_value: i64,
    pub min: i64,
    pub max: i64,
    /// What the number counts: "messages", "ms", "bytes" (empty for booleans).
    pub unit: String,
    /// `"Push"` or `"Pull"` for an option of one socket type; absent for both.
    pub only: Option<String>,
    /// What it does (Markdown).
    pub doc: String,
}

/// Every socket option, in the order `NativeSocket` takes their values.
#[napi]
pub fn option_specs() -> Vec<OptionSpec> {
    engine::options::OPTION_SPECS
        .iter()
        .map(|s| OptionSpec {
            name: s.name.into(),
            libzmq: s.libzmq.into(),
            kind: match s.kind {
                engine::options::OptionKind::Integer => "integer".into(),
                engine::options::OptionKind::Boolean => "boolean".into(),
            },
            default_value: s.default,
            min: s.min,
            max: s.max,
            unit: s.unit.into(),
            only: s.only.map(|k| match k {
                engine::SocketType::Push => "Push".into(),
                engine::SocketType::Pull => "Pull".into(),
            }),
            doc: s.doc.into(),
        })
        .collect()
}

/// One monitor event type.
#[napi(object)]
pub struct EventSpec {
    /// The zeromq.js event type (`handshake:error:protocol`).
    pub r#type: String,
    /// What it means (Markdown).
    pub doc: String,
}

/// Every monitor event type.
#[napi]
pub fn event_specs() -> Vec<EventSpec> {
    engine::events::EVENT_SPECS
        .iter()
        .map(|(t, d)| EventSpec {
            r#type: (*t).into(),
            doc: (*d).into(),
        })
        .collect()
}
