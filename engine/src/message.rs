//! A ZeroMQ message: one or more frames, delivered atomically. Frames are `Bytes` so that a
//! message can move from the JS boundary through queues to the wire without copies.

use bytes::Bytes;

/// A whole message. Empty frames are legal and preserved; a message always has at least
/// one frame once it is on the wire (an empty `Message` is rejected before it is queued).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    frames: Vec<Bytes>,
}

impl Message {
    pub fn new() -> Self {
        Message { frames: Vec::new() }
    }

    pub fn with_capacity(n: usize) -> Self {
        Message {
            frames: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, frame: Bytes) {
        self.frames.push(frame);
    }

    pub fn frames(&self) -> &[Bytes] {
        &self.frames
    }

    pub fn into_frames(self) -> Vec<Bytes> {
        self.frames
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Total payload bytes over all frames.
    pub fn byte_len(&self) -> usize {
        self.frames.iter().map(Bytes::len).sum()
    }

    /// Payload bytes of the frames shorter than `large`.
    pub fn bytes_below(&self, large: usize) -> usize {
        self.frames
            .iter()
            .map(Bytes::len)
            .filter(|&n| n < large)
            .sum()
    }
}

impl From<Vec<Bytes>> for Message {
    fn from(frames: Vec<Bytes>) -> Self {
        Message { frames }
    }
}

impl<const N: usize> From<[&'static [u8]; N]> for Message {
    fn from(frames: [&'static [u8]; N]) -> Self {
        Message {
            frames: frames.iter().map(|f| Bytes::from_static(f)).collect(),
        }
    }
}
