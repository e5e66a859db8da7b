//! Socket options, with libzmq's names and meanings and zeropipe's defaults.
//!
//! Times are milliseconds as in libzmq; `-1` means "infinite" where libzmq allows it.
//! Options are read when a pipe or connection is created, so — as in libzmq — changing a
//! high-water mark affects pipes created afterwards.

use crate::error::{Code, Error, Result};

/// zeropipe's default for [`SocketOptions::max_message_size`]: 256 MiB. libzmq's default is
/// unlimited; a finite default means a peer cannot make us buffer gigabytes by declaring a
/// huge message, while any realistic message still fits.
pub const DEFAULT_MAX_MESSAGE_SIZE: i64 = 256 * 1024 * 1024;

/// zeropipe's default for [`SocketOptions::linger`]: 30 s. libzmq's default is -1 (wait
/// forever); a bounded default means `close()` always settles.
pub const DEFAULT_LINGER: i32 = 30_000;

#[derive(Clone, Debug, PartialEq)]
pub struct SocketOptions {
    /// ZMQ_SNDHWM: messages queued per outgoing pipe before `send` waits. 0 = no limit.
    pub send_high_water_mark: u32,
    /// ZMQ_RCVHWM: messages queued per incoming pipe before we stop reading that peer
    /// (TCP then pushes back on the sender). 0 = no limit.
    pub receive_high_water_mark: u32,
    /// ZMQ_LINGER: how long `close()` keeps flushing queued messages, ms; -1 = until sent.
    pub linger: i32,
    /// ZMQ_SNDTIMEO: how long a send waits for room before `EAGAIN`, ms; -1 = forever.
    pub send_timeout: i32,
    /// ZMQ_RCVTIMEO: how long a receive waits for a message before `EAGAIN`, ms; -1 = forever.
    pub receive_timeout: i32,
    /// ZMQ_IMMEDIATE: queue messages only on completed connections.
    pub immediate: bool,
    /// ZMQ_RECONNECT_IVL: first reconnect delay, ms; -1 = do not reconnect.
    pub reconnect_interval: i32,
    /// ZMQ_RECONNECT_IVL_MAX: upper bound of the exponential backoff, ms; 0 = no backoff.
    pub reconnect_max_interval: i32,
    /// ZMQ_MAXMSGSIZE: largest whole message accepted from a peer, bytes; -1 = unlimited.
    pub max_message_size: i64,
    /// ZMQ_HANDSHAKE_IVL: a connection must finish its handshake within this, ms; 0 = no limit.
    pub handshake_interval: i32,
    /// ZMQ_HEARTBEAT_IVL: send a PING this often, ms; 0 = no heartbeats.
    pub heartbeat_interval: i32,
    /// ZMQ_HEARTBEAT_TIMEOUT: close a connection silent this long after a PING, ms;
    /// 0 = the heartbeat interval.
    pub heartbeat_timeout: i32,
    /// ZMQ_HEARTBEAT_TTL: tells the peer to close us after this much silence, ms (sent in
    /// tenths of a second, so at most 6 553 500); 0 = no TTL.
    pub heartbeat_time_to_live: i32,
    /// ZMQ_CONNECT_TIMEOUT: give up a TCP connect attempt after this, ms; 0 = the OS default.
    pub connect_timeout: i32,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            send_high_water_mark: 1000,
            receive_high_water_mark: 1000,
            linger: DEFAULT_LINGER,
            send_timeout: -1,
            receive_timeout: -1,
            immediate: false,
            reconnect_interval: 100,
            reconnect_max_interval: 0,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            handshake_interval: 30_000,
            heartbeat_interval: 0,
            heartbeat_timeout: 0,
            heartbeat_time_to_live: 0,
            connect_timeout: 0,
        }
    }
}

fn range(name: &str, value: i64, min: i64, max: i64) -> Result<()> {
    if value < min || value > max {
        return Err(Error::new(
            Code::Inval,
            format!("Option {name} must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(())
}

impl SocketOptions {
    /// Checks every value against the range libzmq accepts, naming the offending option.
    pub fn validate(&self) -> Result<()> {
        const I32: i64 = i32::MAX as i64;
        range(
            "sendHighWaterMark",
            self.send_high_water_mark as i64,
            0,
            I32,
        )?;
        range(
            "receiveHighWaterMark",
            self.receive_high_water_mark as i64,
            0,
            I32,
        )?;
        range("linger", self.linger as i64, -1, I32)?;
        range("sendTimeout", self.send_timeout as i64, -1, I32)?;
        range("receiveTimeout", self.receive_timeout as i64, -1, I32)?;
        range("reconnectInterval", self.reconnect_interval as i64, -1, I32)?;
        range(
            "reconnectMaxInterval",
            self.reconnect_max_interval as i64,
            0,
            I32,
        )?;
        range("maxMessageSize", self.max_message_size, -1, i64::MAX)?;
        range("handshakeInterval", self.handshake_interval as i64, 0, I32)?;
        range("heartbeatInterval", self.heartbeat_interval as i64, 0, I32)?;
        range("heartbeatTimeout", self.heartbeat_timeout as i64, 0, I32)?;
        range(
            "heartbeatTimeToLive",
            self.heartbeat_time_to_live as i64,
            0,
            6_553_500,
        )?;
        range("connectTimeout", self.connect_timeout as i64, 0, I32)?;
        Ok(())
    }
}

/// Converts a millisecond option to a duration; `None` for "infinite" (negative) values.
pub fn millis(value: i32) -> Option<std::time::Duration> {
    (value >= 0).then(|| std::time::Duration::from_millis(value as u64))
}
