//! Records: the writer that encodes an item straight into the ring, and the readers
//! that copy a payload out.

use std::cell::Cell;
use std::sync::atomic::Ordering;

use postcard::ser_flavors::Flavor;

use super::SharedRegion;
use crate::queue::error::MessageError;

thread_local! {
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Writes postcard output straight into the ring. Small pushes (serde's `u8`s,
/// varints) collect in a staging buffer that is copied in with one `memcpy`; byte
/// blocks ([`Bytes`](super::Bytes), strings) larger than it go in directly. The
/// limit is checked whenever bytes reach the ring.
pub(super) struct RingWriter<'a> {
    pub(super) region: &'a SharedRegion,
    pub(super) off: usize,
    pub(super) written: usize,
    pub(super) limit: usize,
    pub(super) overflow: &'a Cell<bool>,
    pub(super) staged: usize,
    pub(super) stage: [u8; STAGE],
}

pub(super) const STAGE: usize = 256;

impl RingWriter<'_> {
    #[cold]
    fn overflowed(&self) -> postcard::Error {
        self.overflow.set(true);
        postcard::Error::SerializeBufferFull
    }

    fn flush(&mut self) -> postcard::Result<()> {
        if self.written + self.staged > self.limit {
            return Err(self.overflowed());
        }
        self.region
            .write(self.off + self.written, &self.stage[..self.staged]);
        self.written += self.staged;
        self.staged = 0;
        Ok(())
    }
}

impl Flavor for RingWriter<'_> {
    type Output = usize;

    #[inline(always)]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        if self.staged == STAGE {
            self.flush()?;
        }
        self.stage[self.staged] = b;
        self.staged += 1;
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.staged + data.len() <= STAGE {
            self.stage[self.staged..self.staged + data.len()].copy_from_slice(data);
            self.staged += data.len();
            return Ok(());
        }
        self.flush()?;
        if self.written + data.len() > self.limit {
            return Err(self.overflowed());
        }
        self.region.write(self.off + self.written, data);
        self.written += data.len();
        Ok(())
    }

    fn finalize(mut self) -> postcard::Result<usize> {
        self.flush()?;
        Ok(self.written)
    }
}

pub(super) enum Encoded {
    Done(u64),
    Overflow,
}

/// What a `put` writes.
pub(crate) enum Item<'a, T: ?Sized> {
    /// A serde value, encoded with postcard.
    Value(&'a T),
    /// A byte vector, written as postcard encodes `Vec<u8>` and [`Bytes`](super::Bytes)
    /// (a varint length, then the bytes) with one `memcpy`.
    Bytes(&'a [u8]),
}

impl<T: ?Sized> Clone for Item<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Item<'_, T> {}

/// postcard's varint (LEB128) of `v` into `out`; returns its length.
pub(super) fn write_varint(mut v: u64, out: &mut [u8; 10]) -> usize {
    let mut i = 0;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out[i] = b;
            return i + 1;
        }
        out[i] = b | 0x80;
        i += 1;
    }
}

/// Reads a postcard varint from the start of `bytes`: `(value, length)`.
pub(super) fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Copies a payload into this thread's reusable scratch buffer.
pub(crate) fn read_to_scratch(
    region: &SharedRegion,
    off: usize,
    len: usize,
) -> Result<Vec<u8>, MessageError> {
    let mut buf = SCRATCH.with(Cell::take);
    buf.clear();
    region.read_append(off, len, &mut buf);
    Ok(buf)
}

/// Gives a scratch buffer back for the next get on this thread (unless it grew
/// large).
pub(crate) fn return_scratch(buf: Vec<u8>) {
    if buf.capacity() <= 4 << 20 {
        SCRATCH.with(|s| s.set(buf));
    }
}

/// Copies a payload written by [`Item::Bytes`] (or by postcard for a `Vec<u8>`)
/// straight into a vector of its own: one `memcpy`.
pub(crate) fn read_byte_vec(
    region: &SharedRegion,
    off: usize,
    len: usize,
) -> Result<Vec<u8>, MessageError> {
    let mut head = [0u8; 10];
    let k = len.min(10);
    let mut varint = None;
    if len >= 1 && off % 8 == 0 {
        // The varint from one word instead of a copy: a record's payload is
        // 8-aligned, and one of `len >= 1` bytes is padded to at least 8.
        head[..8].copy_from_slice(&region.u64_at(off).load(Ordering::Relaxed).to_le_bytes());
        varint = read_varint(&head[..k.min(8)]);
    }
    if varint.is_none() {
        region.read(off, &mut head[..k]);
        varint = read_varint(&head[..k]);
    }
    match varint {
        Some((v, w)) if v == (len - w) as u64 => {
            let mut out = Vec::with_capacity(len - w);
            region.read_append(off + w, len - w, &mut out);
            Ok(out)
        }
        _ => Err(MessageError::decode("the record is not a byte vector")),
    }
}
