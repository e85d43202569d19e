//! The manager's wire protocol: requests and replies (serde data, never code, except
//! the same-executable function references that only a private local server takes),
//! and the length-prefixed frames that carry them on a stream.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sys::code::EntryPoint;

/// An object's id on one server instance: the instance's random tag in the high 32
/// bits, a counter in the low 32, so that an id from before a restart names nothing.
pub(crate) type ObjId = u64;

/// Encoded bytes of a user value (postcard), carried as one byte string.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct Blob(pub(crate) Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// What a new object is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) enum Kind {
    Dict,
    List,
    Namespace,
    Value(Blob),
    Queue {
        maxsize: Option<u64>,
        joinable: bool,
    },
    Lock,
    RLock,
    Semaphore {
        value: u32,
        bound: Option<u32>,
    },
    Event,
    Condition,
    Barrier {
        parties: u32,
    },
    Custom {
        type_name: String,
        init: Blob,
    },
}

impl Kind {
    /// The kind's name, as errors show it.
    pub(crate) fn name(&self) -> &str {
        match self {
            Kind::Dict => "dict",
            Kind::List => "list",
            Kind::Namespace => "namespace",
            Kind::Value(_) => "value",
            Kind::Queue {
                joinable: false, ..
            } => "queue",
            Kind::Queue { joinable: true, .. } => "joinable queue",
            Kind::Lock => "lock",
            Kind::RLock => "rlock",
            Kind::Semaphore { bound: None, .. } => "semaphore",
            Kind::Semaphore { bound: Some(_), .. } => "bounded semaphore",
            Kind::Event => "event",
            Kind::Condition => "condition",
            Kind::Barrier { .. } => "barrier",
            Kind::Custom { type_name, .. } => type_name,
        }
    }
}

/// Where a nested object sits in its container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Place {
    Key(Blob),
    Index(i64),
    Append,
    Field(String),
}

/// One request. A client identifies its process (its session) once per connection.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// First request on a connection: which client process this is.
    Hello {
        session: u64,
        pid: u32,
    },
    /// Ask for a shared-memory channel (local connections only); the two queues
    /// follow on the socket.
    UseSharedMemory,
    Create(Kind),
    /// Get or create the object registered under `name`.
    Named {
        name: String,
        kind: Kind,
    },
    /// A proxy is being sent somewhere: keep the object alive until it is adopted.
    Retain(ObjId),
    /// A received proxy takes over a retained reference.
    Adopt(ObjId),
    /// A proxy was dropped.
    Release(ObjId),
    Op {
        id: ObjId,
        op: Op,
    },
    /// A nested object: store a reference to object `target` at `place` in
    /// container `id`.
    PutObject {
        id: ObjId,
        place: Place,
        target: ObjId,
    },
    /// A nested object: the one at `place` in container `id`.
    GetObject {
        id: ObjId,
        place: Place,
        expect: String,
    },
    Shutdown,
    /// How many objects the server holds.
    Stats,
}

/// An operation on one object.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op {
    // dict
    Get(Blob),
    Set(Blob, Blob),
    Delete(Blob),
    Contains(Blob),
    Len,
    Keys,
    Values,
    Items,
    Update(Vec<(Blob, Blob)>),
    Pop(Blob),
    SetDefault(Blob, Blob),
    Clear,
    UpdateWith(Blob, EntryPoint),
    CompareAndSet {
        key: Blob,
        expected: Option<Blob>,
        new: Blob,
    },
    // list
    Append(Blob),
    Extend(Vec<Blob>),
    Insert(i64, Blob),
    Index(i64),
    SetIndex(i64, Blob),
    PopIndex(Option<i64>),
    Remove(Blob),
    Slice(Option<i64>, Option<i64>),
    ReplaceAllIf {
        expected: Vec<Blob>,
        new: Vec<Blob>,
    },
    // namespace
    GetField(String),
    SetField(String, Blob),
    DeleteField(String),
    Fields,
    // value
    Load,
    Store(Blob),
    ValueUpdateWith(EntryPoint),
    ValueCompareAndSet {
        expected: Blob,
        new: Blob,
    },
    // queue
    Put {
        item: Blob,
        timeout_ms: Option<u64>,
    },
    Take {
        timeout_ms: Option<u64>,
    },
    QueueLen,
    TaskDone,
    JoinQueue {
        timeout_ms: Option<u64>,
    },
    // locks and semaphores
    Acquire {
        thread: u64,
        timeout_ms: Option<u64>,
    },
    Release {
        thread: u64,
    },
    LockState,
    // event
    SetEvent,
    ClearEvent,
    IsSet,
    WaitEvent {
        timeout_ms: Option<u64>,
    },
    // condition (its own lock)
    CondWait {
        thread: u64,
        timeout_ms: Option<u64>,
    },
    Notify(u32),
    // barrier
    BarrierWait {
        timeout_ms: Option<u64>,
    },
    BarrierAbort,
    BarrierReset,
    BarrierState,
    // custom
    Call(Blob),
}

/// Errors the server reports, mapped to [`super::ManagerError`] by the client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) enum Fault {
    ObjectGone(ObjId),
    WrongKind { expected: String, found: String },
    KeyNotFound,
    IndexOutOfRange { index: i64, len: u64 },
    ValueNotFound,
    Empty(String),
    Full,
    Timeout,
    NotOwner,
    SemaphoreOverflow(u32),
    BrokenBarrier,
    Refused(String),
    Function(String),
    BadRequest(String),
    ShuttingDown,
}

/// One reply.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Unit,
    Bool(bool),
    Len(u64),
    Value(Option<Blob>),
    Values(Vec<Blob>),
    Items(Vec<(Blob, Blob)>),
    Names(Vec<String>),
    Id(ObjId),
    /// The server's instance tag and whether it runs functions sent by address.
    Welcome {
        instance: u32,
        functions: bool,
    },
    /// A compare-and-set lost: the current value.
    Conflict(Option<Blob>),
    /// A lock was taken after its holder died (`pid` of that holder).
    AcquiredOwnerDied {
        pid: Option<u32>,
    },
    /// Lock state: held, by which pid, recursion count.
    LockState {
        held: bool,
        pid: Option<u32>,
        count: u32,
    },
    /// Barrier state: parties, waiting, broken.
    BarrierState {
        parties: u32,
        waiting: u32,
        broken: bool,
    },
    Index(u64),
    Fault(Fault),
}

/// Encodes a request or reply.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Requests and replies hold only plain data, whose encoding cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

/// Decodes a request or reply from untrusted bytes: no panic, and no allocation
/// beyond what the (already size-limited) frame holds.
pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(format!("{} stray bytes after the message", rest.len())),
        Err(e) => Err(format!("malformed message: {e}")),
    }
}

/// Length of a stream frame's header: a little-endian `u32` payload length.
pub(crate) const FRAME_HEADER: usize = 4;

/// Splits a byte stream into frames of at most `max_len` bytes each.
///
/// Pure (no I/O), so that the server's decoder can be fed arbitrary bytes in tests.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max_len: usize,
}

impl FrameDecoder {
    pub(crate) fn new(max_len: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_len,
        }
    }

    /// Appends received bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed, or an error for a
    /// frame over the limit (its bytes are never buffered beyond what arrived).
    pub(crate) fn next_frame(&mut self) -> Result<Option<Vec<u8>>, String> {
        let avail = &self.buf[self.start..];
        if avail.len() < FRAME_HEADER {
            return Ok(None);
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len > self.max_len {
            return Err(format!(
                "frame of {len} bytes is over the limit of {} bytes",
                self.max_len
            ));
        }
        if avail.len() - FRAME_HEADER < len {
            return Ok(None);
        }
        let frame = avail[FRAME_HEADER..FRAME_HEADER + len].to_vec();
        self.start += FRAME_HEADER + len;
        Ok(Some(frame))
    }

    /// Whether a whole frame (or a header over the limit) is buffered: the next
    /// `next_frame` will not ask for more bytes.
    pub(crate) fn frame_ready(&self) -> bool {
        let avail = &self.buf[self.start..];
        if avail.len() < FRAME_HEADER {
            return false;
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        len > self.max_len || avail.len() - FRAME_HEADER >= len
    }

    /// Bytes of a frame that has begun to arrive.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Prefixes `payload` with its frame header.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let r = Request::Op {
            id: 7,
            op: Op::Set(Blob(vec![1, 2]), Blob(vec![3])),
        };
        let bytes = encode(&r);
        match decode::<Request>(&bytes).unwrap() {
            Request::Op {
                id: 7,
                op: Op::Set(k, v),
            } => {
                assert_eq!(k.0, vec![1, 2]);
                assert_eq!(v.0, vec![3]);
            }
            other => panic!("{other:?}"),
        }
        assert!(decode::<Request>(&bytes[..bytes.len() - 1]).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode::<Request>(&long).is_err());
    }

    #[test]
    fn frame_decoder_splits_and_limits() {
        let mut d = FrameDecoder::new(10);
        let mut all = frame(b"abc");
        all.extend(frame(b""));
        all.extend(frame(b"0123456789"));
        for b in &all {
            d.push(std::slice::from_ref(b));
        }
        assert_eq!(d.next_frame().unwrap().unwrap(), b"abc");
        assert_eq!(d.next_frame().unwrap().unwrap(), b"");
        assert_eq!(d.next_frame().unwrap().unwrap(), b"0123456789");
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&frame(b"xy")[..5]);
        assert!(!d.frame_ready(), "a partial frame is not ready");
        d.push(b"y");
        assert!(d.frame_ready());
        assert_eq!(d.next_frame().unwrap().unwrap(), b"xy");
        d.push(&frame(b"0123456789a")[..6]);
        assert!(d.frame_ready(), "an oversized header is reported at once");
        assert!(d.next_frame().unwrap_err().contains("over the limit"));
    }
}
