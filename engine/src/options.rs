//! Socket options, with libzmq's names and meanings and zeropipe's defaults: the one place
//! each option is declared. The [`socket_options!`] table below makes the
//! [`SocketOptions`] struct, its defaults and validation, and [`OPTION_SPECS`], from which
//! the Node binding, the TypeScript types and docs, and the README's table are all made.
//!
//! Times are milliseconds as in libzmq; `-1` means "infinite" where libzmq allows it.
//! Options are read when a pipe or connection is created, so — as in libzmq — changing a
//! high-water mark affects pipes created afterwards.

use crate::error::{Code, Error, Result};
use crate::handshake::SocketType;

const I32: i64 = i32::MAX as i64;

/// What kind of value an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// An integer between `min` and `max`.
    Integer,
    /// `true` or `false` (in [`SocketOptions::from_values`], 1 or 0).
    Boolean,
}

/// Everything known about one option, for the binding and for generated docs.
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    /// The zeromq.js name, used in JavaScript (`sendHighWaterMark`).
    pub name: &'static str,
    /// The libzmq name (`ZMQ_SNDHWM`).
    pub libzmq: &'static str,
    pub kind: OptionKind,
    /// The default (booleans: 0 or 1).
    pub default: i64,
    pub min: i64,
    pub max: i64,
    /// What the number counts: "messages", "ms", "bytes" (empty for booleans).
    pub unit: &'static str,
    /// The one socket type the option means something for; `None` for both.
    pub only: Option<SocketType>,
    /// What the option does, its special values, and where zeropipe's default differs
    /// from libzmq's: one or two sentences, Markdown.
    pub doc: &'static str,
}

/// Declares every option once: its Rust field and type, then its spec.
macro_rules! socket_options {
    ($(
        $field:ident: $ty:ty = $default:expr, $js:literal, $zmq:literal, $kind:ident,
        $min:expr, $max:expr, $unit:literal, $only:expr, $doc:literal;
    )*) => {
        /// A socket's options (see [`OPTION_SPECS`] for each one's meaning and range).
        #[derive(Clone, Debug, PartialEq)]
        pub struct SocketOptions {
            $(#[doc = $doc] pub $field: $ty,)*
        }

        impl Default for SocketOptions {
            fn default() -> Self {
                SocketOptions { $($field: $default,)* }
            }
        }

        /// Every option, in the order of [`SocketOptions::from_values`].
        pub const OPTION_SPECS: &[OptionSpec] = &[$(OptionSpec {
            name: $js,
            libzmq: $zmq,
            kind: OptionKind::$kind,
            default: $default as i64,
            min: $min,
            max: $max,
            unit: $unit,
            only: $only,
            doc: $doc,
        },)*];

        impl SocketOptions {
            /// The options as numbers, in [`OPTION_SPECS`] order.
            pub fn to_values(&self) -> Vec<i64> {
                vec![$(self.$field as i64,)*]
            }

            /// Builds options from numbers in [`OPTION_SPECS`] order, each checked against
            /// its range: the binding passes options this way, so it needs no code per option.
            pub fn from_values(values: &[i64]) -> Result<SocketOptions> {
                if values.len() != OPTION_SPECS.len() {
                    return Err(Error::new(
                        Code::Inval,
                        format!("expected {} option values, got {}", OPTION_SPECS.len(), values.len()),
                    ));
                }
                for (spec, &v) in OPTION_SPECS.iter().zip(values) {
                    spec.check(v)?;
                }
                let mut it = values.iter().copied();
                Ok(SocketOptions { $($field: convert::<$ty>(it.next().unwrap_or($default as i64)),)* })
            }
        }
    };
}

/// Converts a value already checked against its range to the field's type.
fn convert<T: FromValue>(v: i64) -> T {
    T::from_value(v)
}

trait FromValue {
    fn from_value(v: i64) -> Self;
}

impl FromValue for bool {
    fn from_value(v: i64) -> Self {
        v != 0
    }
}

impl FromValue for i64 {
    fn from_value(v: i64) -> Self {
        v
    }
}

impl FromValue for i32 {
    fn from_value(v: i64) -> Self {
        v.clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }
}

impl FromValue for u32 {
    fn from_value(v: i64) -> Self {
        v.clamp(0, u32::MAX as i64) as u32
    }
}

/// zeropipe's default for `maxMessageSize`: 256 MiB. libzmq's default is unlimited; a
/// finite default means a peer cannot make us buffer gigabytes by declaring a huge
/// message, while any realistic message still fits.
pub const DEFAULT_MAX_MESSAGE_SIZE: i64 = 256 * 1024 * 1024;

/// zeropipe's default for `linger`: 30 s. libzmq's default is -1 (wait forever); a bounded
/// default means `close()` always settles.
pub const DEFAULT_LINGER: i32 = 30_000;

const PUSH: Option<SocketType> = Some(SocketType::Push);
const PULL: Option<SocketType> = Some(SocketType::Pull);
const BOTH: Option<SocketType> = None;

socket_options! {
    send_high_water_mark: u32 = 1000, "sendHighWaterMark", "ZMQ_SNDHWM", Integer, 0, I32, "messages", PUSH,
        "Messages queued per peer before `send()` waits; 0 = no limit.";
    receive_high_water_mark: u32 = 1000, "receiveHighWaterMark", "ZMQ_RCVHWM", Integer, 0, I32, "messages", PULL,
        "Messages queued per peer before the socket stops reading that peer (TCP then pushes back on the sender); 0 = no limit.";
    linger: i32 = DEFAULT_LINGER, "linger", "ZMQ_LINGER", Integer, -1, I32, "ms", BOTH,
        "How long `close()`, and the end of the thread or process, keep flushing queued messages; -1 = until sent (libzmq's default; zeropipe's is bounded so that `close()` always settles).";
    send_timeout: i32 = -1, "sendTimeout", "ZMQ_SNDTIMEO", Integer, -1, I32, "ms", PUSH,
        "How long `send()` waits for room before failing with `EAGAIN`; -1 = forever, 0 = never wait.";
    receive_timeout: i32 = -1, "receiveTimeout", "ZMQ_RCVTIMEO", Integer, -1, I32, "ms", PULL,
        "How long `receive()` waits for a message before failing with `EAGAIN`; -1 = forever, 0 = never wait.";
    immediate: bool = false, "immediate", "ZMQ_IMMEDIATE", Boolean, 0, 1, "", BOTH,
        "Queue messages only on completed connections, not for peers being connected to.";
    reconnect_interval: i32 = 100, "reconnectInterval", "ZMQ_RECONNECT_IVL", Integer, -1, I32, "ms", BOTH,
        "Delay before the first reconnect attempt; -1 = never reconnect.";
    reconnect_max_interval: i32 = 0, "reconnectMaxInterval", "ZMQ_RECONNECT_IVL_MAX", Integer, 0, I32, "ms", BOTH,
        "Upper bound of the exponential reconnect backoff; 0 (or not above `reconnectInterval`) = no backoff.";
    max_message_size: i64 = DEFAULT_MAX_MESSAGE_SIZE, "maxMessageSize", "ZMQ_MAXMSGSIZE", Integer, -1, 9_007_199_254_740_991, "bytes", BOTH,
        "Largest whole message accepted from a peer: its frames plus 512 bytes per extra frame (so floods of empty frames are bounded too); -1 = unlimited (libzmq's default; zeropipe's is 256 MiB so a peer cannot make it buffer gigabytes).";
    handshake_interval: i32 = 30_000, "handshakeInterval", "ZMQ_HANDSHAKE_IVL", Integer, 0, I32, "ms", BOTH,
        "A connection must finish its handshake within this; 0 = no limit.";
    heartbeat_interval: i32 = 0, "heartbeatInterval", "ZMQ_HEARTBEAT_IVL", Integer, 0, I32, "ms", BOTH,
        "Send a PING this often; 0 = no heartbeats.";
    heartbeat_timeout: i32 = 0, "heartbeatTimeout", "ZMQ_HEARTBEAT_TIMEOUT", Integer, 0, I32, "ms", BOTH,
        "Close a connection not heard from for this long past a heartbeat interval; 0 = the heartbeat interval.";
    heartbeat_time_to_live: i32 = 0, "heartbeatTimeToLive", "ZMQ_HEARTBEAT_TTL", Integer, 0, 6_553_500, "ms", BOTH,
        "Ask the peer to close the connection after this much silence from us (sent in tenths of a second); 0 = no TTL.";
    connect_timeout: i32 = 0, "connectTimeout", "ZMQ_CONNECT_TIMEOUT", Integer, 0, I32, "ms", BOTH,
        "Give up one TCP connect attempt after this; 0 = the operating system's limit.";
}

impl OptionSpec {
    /// Checks one value against this option's range, naming the option.
    pub fn check(&self, value: i64) -> Result<()> {
        if value < self.min || value > self.max {
            return Err(Error::new(
                Code::Inval,
                format!(
                    "Option {} must be between {} and {}, got {value}",
                    self.name, self.min, self.max
                ),
            ));
        }
        Ok(())
    }

    /// Whether the option means something for a socket of `kind`.
    pub fn applies_to(&self, kind: SocketType) -> bool {
        self.only.is_none_or(|only| only == kind)
    }
}

impl SocketOptions {
    /// Checks every value against the range libzmq accepts, naming the offending option.
    pub fn validate(&self) -> Result<()> {
        for (spec, v) in OPTION_SPECS.iter().zip(self.to_values()) {
            spec.check(v)?;
        }
        Ok(())
    }
}

/// Converts a millisecond option to a duration; `None` for "infinite" (negative) values.
pub fn millis(value: i32) -> Option<std::time::Duration> {
    (value >= 0).then(|| std::time::Duration::from_millis(value as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_within_their_own_ranges() {
        SocketOptions::default().validate().unwrap();
        for spec in OPTION_SPECS {
            spec.check(spec.default).unwrap();
        }
    }

    #[test]
    fn values_round_trip_in_spec_order() {
        let o = SocketOptions {
            linger: 5,
            immediate: true,
            max_message_size: -1,
            ..SocketOptions::default()
        };
        assert_eq!(SocketOptions::from_values(&o.to_values()).unwrap(), o);
    }

    #[test]
    fn a_value_out_of_range_names_its_option() {
        let mut values = SocketOptions::default().to_values();
        let i = OPTION_SPECS
            .iter()
            .position(|s| s.name == "heartbeatTimeToLive")
            .unwrap();
        values[i] = 6_553_501;
        let err = SocketOptions::from_values(&values).unwrap_err();
        assert_eq!(err.code, Code::Inval);
        assert!(
            err.message.contains("heartbeatTimeToLive"),
            "{}",
            err.message
        );
        assert!(
            SocketOptions::from_values(&values[1..]).is_err(),
            "too few values"
        );
    }
}
