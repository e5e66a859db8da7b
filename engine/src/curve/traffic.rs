//! A CURVE connection's traffic after the handshake: the writer seals each frame and
//! command into a MESSAGE ([`seal_message`], [`seal_command`]), the reader turns decoded
//! MESSAGEs back into messages and commands ([`Unboxer`]). The connection's reader and
//! writer are otherwise the NULL ones: this is the only per-message work CURVE adds, and a
//! NULL connection never reaches it.
//!
//! On the wire every MESSAGE is a data frame without MORE, so the codec's decoder sees each
//! one as a single-frame message; the multipart structure, and PING/PONG, are inside the
//! boxes. `maxMessageSize` applies to the plaintext messages, as for NULL (libzmq applies it
//! to the encrypted frames, 33 bytes more each).

use bytes::{Bytes, BytesMut};

use super::{proto, Session, MESSAGE_OVERHEAD};
use crate::codec::{encode_command, parse_command, Command, Decoded, FRAME_OVERHEAD};
use crate::{Error, Message};

/// The `maxMessageSize` for the codec's decoder under CURVE: one MESSAGE frame may carry a
/// whole message's worth of plaintext plus its overhead.
pub(crate) fn outer_limit(max_message_size: i64) -> i64 {
    if max_message_size < 0 {
        -1
    } else {
        max_message_size.saturating_add(MESSAGE_OVERHEAD as i64)
    }
}

/// Appends the MESSAGEs (each in its data frame) carrying `msg`'s frames.
pub(crate) fn seal_message(
    session: &mut Session,
    msg: &Message,
    out: &mut BytesMut,
) -> Result<(), Error> {
    let frames = msg.frames();
    let last = frames.len().saturating_sub(1);
    for (i, frame) in frames.iter().enumerate() {
        session.seal_frame_into(frame, i != last, false, out)?;
    }
    Ok(())
}

/// Appends a MESSAGE carrying `cmd` (PING, PONG) with the command flag.
pub(crate) fn seal_command(
    session: &mut Session,
    cmd: &Command,
    out: &mut BytesMut,
) -> Result<(), Error> {
    // The codec writes a framed command; the box carries the body without its header.
    let mut framed = BytesMut::with_capacity(64);
    encode_command(cmd, &mut framed);
    let header = if framed.first().is_some_and(|f| f & 0x02 != 0) {
        9
    } else {
        2
    };
    session.seal_frame_into(&framed[header..], false, true, out)
}

/// The reader's side of a CURVE session: opens MESSAGEs, reassembles multipart messages
/// and bounds them by `maxMessageSize`.
pub(crate) struct Unboxer {
    session: Session,
    frames: Vec<Bytes>,
    /// What the partial message has cost against `limit` (as the codec counts it).
    cost: u64,
    limit: Option<u64>,
}

impl Unboxer {
    pub(crate) fn new(session: Session, max_message_size: i64) -> Self {
        Unboxer {
            session,
            frames: Vec::new(),
            cost: 0,
            limit: u64::try_from(max_message_size).ok(),
        }
    }

    /// Takes what the codec decoded: a MESSAGE gives a message once its last frame is in,
    /// or a command; `None` while a multipart message is incomplete. A plaintext command, a
    /// MESSAGE that does not open or whose nonce does not go up, is an error: the
    /// connection must close.
    pub(crate) fn unbox(&mut self, item: Decoded) -> Result<Option<Decoded>, Error> {
        let msg = match item {
            Decoded::Message(msg) => msg,
            Decoded::Command(_) => {
                return Err(proto("a plaintext command after the handshake"));
            }
        };
        let [frame] = msg.frames() else {
            return Err(proto("a MESSAGE split over several frames"));
        };
        let opened = self.session.open(frame)?;
        if opened.command() {
            // Between the frames of a message too, as a libzmq PING may come.
            return parse_command(opened.data).map(|c| Some(Decoded::Command(c)));
        }
        let overhead = if self.frames.is_empty() {
            0
        } else {
            FRAME_OVERHEAD
        };
        self.cost = self
            .cost
            .saturating_add(opened.data.len() as u64)
            .saturating_add(overhead);
        if let Some(limit) = self.limit {
            if self.cost > limit {
                return Err(proto(format!(
                    "message exceeds maxMessageSize ({limit} bytes)"
                )));
            }
        }
        let more = opened.more();
        self.frames.push(opened.data);
        if more {
            return Ok(None);
        }
        self.cost = 0;
        Ok(Some(Decoded::Message(Message::from(std::mem::take(
            &mut self.frames,
        )))))
    }
}
