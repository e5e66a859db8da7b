//! The two batch formats between Rust and JavaScript, mirrored by `lib/batch.ts` (this is
//! where they are specified). Batching is where the speed comes from: a message costs a
//! few array writes in JS, and one native call carries a whole batch.
//!
//! **Send stage** (PUSH). Memory the addon owns, written by JS:
//! - `region`: a `Uint8Array` over the current region (`stageRegion()`); accepted frames'
//!   bytes, back to back.
//! - `meta`: [`STAGE_META_WORDS`] i32 words, fixed for the socket's life (`stageMeta()`).
//!   `meta[0]` is the number of committed description words, `meta[1]` the committed bytes
//!   of the region, `meta[2]` the region's generation; from `meta[3]` ([`STAGE_META_HEAD`])
//!   on, per message: its frame count, then each frame's length.
//!
//! JS writes a message, then commits it by updating `meta[0]` and `meta[1]`; `flush(room)`
//! (or the environment's teardown) queues everything committed and resets both to 0. A
//! region well used is handed to the engine as it is (its messages are slices of it, no
//! copy: the region is *sealed*) and a new one takes its place, bumping `meta[2]`, after
//! which JS fetches the new view before writing again; a region little used has its few
//! bytes copied out and is written again from the start. `flush(room)` also makes sure the
//! region has at least `room` free bytes (a large message next): up to
//! [`STAGE_REGION_MAX`], regions grow to fit what JS sends. Messages with more frames than
//! the description words hold go through `sendNow()` instead, after a flush.
//!
//! **Receive batch** (PULL). JS passes a slab (a `Uint8Array` over a SharedArrayBuffer of
//! at least [`RECEIVE_SLAB_BYTES`]) and a 4-byte aligned offset into it; Rust writes, at
//! that offset, little-endian u32 words — the message count, the offset of the frames'
//! bytes from the batch's start, then per message its frame count and each frame's length,
//! [`OWN_BUFFER`] for a frame of [`OWN_RECEIVE_MIN`] bytes or more, which comes from
//! `takeOwnBuffers()` instead — followed by the small frames' bytes. A batch holds up to
//! [`RECEIVE_BATCH_MESSAGES`] messages and about [`RECEIVE_BATCH_BYTES`] of small frames
//! (frames of their own are not counted: they cost no copy), and only as many as fit what
//! is left of the slab.

use napi_derive::napi;
use zeropipe_engine as engine;

use std::sync::{Arc, Mutex, MutexGuard};

use crate::errors::malformed;
use crate::memory::{Region, Sealed, WriteOnly};

/// Frames of this many bytes or more travel on their own: a sent one copied by a call of
/// its own.
#[napi]
pub const LARGE_FRAME: u32 = 64 * 1024;

/// A received frame of this many bytes or more is handed to JS as a Buffer of its own, over
/// the bytes as they were read (no copy, and no slab to zero-fill for it); smaller ones are
/// copied into the batch's slab.
pub(crate) const OWN_RECEIVE_MIN: usize = 16 * 1024;

/// The size of a new send-stage region.
const STAGE_BYTES: usize = 64 * 1024;

/// Regions grow (doubling) up to this to fit a stream of large messages; a larger message
/// gets a region of its own size.
#[napi]
pub const STAGE_REGION_MAX: u32 = 1024 * 1024;

/// Words of the stage's description array.
#[napi]
pub const STAGE_META_WORDS: u32 = 3 + 2048;

/// Where message descriptions start in the stage's description array.
#[napi]
pub const STAGE_META_HEAD: u32 = 3;

/// Messages per receive batch: enough to amortise the native call.
#[napi]
pub const RECEIVE_BATCH_MESSAGES: u32 = 256;

/// Payload per receive batch: every message handed out keeps its slab alive.
#[napi]
pub const RECEIVE_BATCH_BYTES: u32 = 64 * 1024;

/// The size of a receive slab (a larger one for a message that needs more), as Node's own
/// socket reads use.
#[napi]
pub const RECEIVE_SLAB_BYTES: u32 = 64 * 1024;

/// The length word of a received frame that comes from `takeOwnBuffers()`.
#[napi]
pub const OWN_BUFFER: u32 = u32::MAX;

/// A PUSH's send stage (see the module doc).
pub(crate) struct SendStage {
    /// The region JS writes into now; replaced when sealed or too small.
    region: Mutex<Arc<Region<u8>>>,
    pub(crate) meta: Arc<Region<i32>>,
}

const COMMITTED_WORDS: usize = 0;
const COMMITTED_BYTES: usize = 1;
const GENERATION: usize = 2;

impl SendStage {
    pub(crate) fn new() -> Self {
        SendStage {
            region: Mutex::new(Arc::new(Region::pooled(STAGE_BYTES))),
            meta: Arc::new(Region::new(STAGE_META_WORDS as usize, true)),
        }
    }

    fn region(&self) -> MutexGuard<'_, Arc<Region<u8>>> {
        // Every critical section leaves a valid region in place, so a poisoned lock is fine.
        self.region.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current region, for JS to write into.
    pub(crate) fn current(&self) -> Arc<Region<u8>> {
        self.region().clone()
    }

    /// Queues every committed message, empties the stage, and leaves a region with at
    /// least `room` free bytes. What JS wrote is checked as untrusted input: a bad
    /// description is `EINVAL`, never a wild read.
    pub(crate) fn drain(&self, socket: &engine::Socket, room: usize) -> Result<(), engine::Error> {
        let words = self.meta.get(COMMITTED_WORDS).unwrap_or(0);
        let bytes = self.meta.get(COMMITTED_BYTES).unwrap_or(0);
        self.meta.set(COMMITTED_WORDS, 0);
        self.meta.set(COMMITTED_BYTES, 0);
        let mut region = self.region();
        let head = STAGE_META_HEAD as usize;
        let words = usize::try_from(words)
            .ok()
            .filter(|&n| n <= self.meta.len() - head);
        let bytes = usize::try_from(bytes).ok().filter(|&n| n <= region.len());
        let (Some(words), Some(bytes)) = (words, bytes) else {
            return Err(malformed("send stage"));
        };
        let old_size = region.len();
        let data = if words == 0 {
            bytes::Bytes::new()
        } else if bytes * 2 >= old_size {
            // Well used: hand it over as it is, and write on in a new one.
            let sealed = bytes::Bytes::from_owner(Sealed {
                region: region.clone(),
                len: bytes,
            });
            *region = Arc::new(Region::pooled(next_region_size(old_size, room, true)));
            self.bump_generation();
            sealed
        } else {
            bytes::Bytes::from(region.copy_prefix(bytes))
        };
        if region.len() < room {
            *region = Arc::new(Region::pooled(next_region_size(old_size, room, false)));
            self.bump_generation();
        }
        drop(region);
        if words == 0 {
            return Ok(());
        }
        let word = |i: usize| {
            self.meta
                .get(head + i)
                .filter(|_| i < words)
                .and_then(|w| usize::try_from(w).ok())
                .ok_or_else(|| malformed("send stage"))
        };
        let (mut i, mut off) = (0usize, 0usize);
        let mut first = true;
        while i < words {
            let frames = word(i)?;
            i += 1;
            let mut msg = engine::Message::with_capacity(frames.min(words));
            for _ in 0..frames {
                let len = word(i)?;
                i += 1;
                let end = off
                    .checked_add(len)
                    .filter(|&e| e <= data.len())
                    .ok_or_else(|| malformed("send stage"))?;
                msg.push(data.slice(off..end));
                off = end;
            }
            // A flush of one message is a sender that is not streaming: its peer's
            // connection is likely idle, and writing the message now saves waking that
            // task (20-40 us here). A batch goes to the task, which writes it in one go.
            let lone = i >= words && first;
            first = false;
            if lone {
                let slices: Vec<&[u8]> = msg.frames().iter().map(|f| &f[..]).collect();
                if socket.try_write_now(&slices) {
                    continue;
                }
            }
            socket.send_accepted(msg)?;
        }
        Ok(())
    }

    fn bump_generation(&self) {
        let g = self.meta.get(GENERATION).unwrap_or(0);
        self.meta.set(GENERATION, g.wrapping_add(1));
    }
}

/// The size of the region after one of `old` bytes: room for `room` bytes at least; a
/// region filled by large messages (`grow`) doubles, up to [`STAGE_REGION_MAX`], so that a
/// stream of them takes one flush per many messages rather than one each.
fn next_region_size(old: usize, room: usize, grow: bool) -> usize {
    let max = STAGE_REGION_MAX as usize;
    let grown = if grow && room > 0 {
        old.saturating_mul(2).min(max)
    } else {
        STAGE_BYTES
    };
    grown.max(room)
}

/// Writes as many of `pending`'s first messages as fit into `slab` at `offset` (see the
/// module doc), moving their large frames to `own`. Returns the bytes written: 0 when
/// `pending` is empty, or minus the bytes the first message needs when it does not fit.
pub(crate) fn write_receive_batch(
    pending: &mut Vec<engine::Message>,
    own: &mut Vec<bytes::Bytes>,
    slab: &WriteOnly,
    offset: usize,
) -> Result<i64, engine::Error> {
    if pending.is_empty() {
        return Ok(0);
    }
    let room = slab
        .len()
        .checked_sub(offset)
        .ok_or_else(|| malformed("receive slab offset"))?;
    let large = OWN_RECEIVE_MIN;
    let small_bytes = |m: &engine::Message| -> usize {
        m.frames()
            .iter()
            .filter(|f| f.len() < large)
            .map(|f| f.len())
            .sum()
    };
    let (mut words, mut body, mut count) = (2usize, 0usize, 0usize);
    for m in pending.iter() {
        let (w, b) = (1 + m.len(), small_bytes(m));
        if (words + w) * 4 + body + b > room {
            if count == 0 {
                return Ok(-(((words + w) * 4 + body + b) as i64));
            }
            break;
        }
        words += w;
        body += b;
        count += 1;
    }
    let mut word = offset;
    let mut put = |v: u32| {
        slab.write(word, &v.to_le_bytes());
        word += 4;
    };
    put(count as u32);
    put((words * 4) as u32);
    let mut at = offset + words * 4;
    for m in pending.drain(..count) {
        put(m.len() as u32);
        for f in m.into_frames() {
            if f.len() >= large {
                put(OWN_BUFFER);
                own.push(f);
            } else {
                put(f.len() as u32);
                slab.write(at, &f);
                at += f.len();
            }
        }
    }
    Ok((words * 4 + body) as i64)
}
