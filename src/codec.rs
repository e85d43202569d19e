//! How values cross a process boundary: serde with postcard for the bytes, and
//! file descriptors out-of-band.
//!
//! A handle (queue, pipe end, lock, shared block) serializes to an index into a list
//! of descriptors that travels beside the bytes (`SCM_RIGHTS` on a Unix socket).
//! [`serialize_fd`] and [`deserialize_fd`] are what handle types call from their
//! serde impls; they find the list in a thread-local context that only [`encode`]
//! and [`decode`] set up. Outside that context (say, `serde_json::to_string` on a
//! queue, or a job for Redis), serializing a handle is an error at the call.

use std::cell::RefCell;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes plus the descriptors they refer to.
#[derive(Debug, Default)]
pub(crate) struct Message {
    /// The postcard encoding of the value.
    pub(crate) bytes: Vec<u8>,
    /// Descriptors referenced by index from `bytes`.
    pub(crate) fds: Vec<OwnedFd>,
}

/// A value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodecError(pub(crate) String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

thread_local! {
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
    // postcard reduces custom errors to a fixed text; keep ours to report it.
    static HANDLE_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn handle_error(msg: String) -> String {
    HANDLE_ERROR.with(|e| *e.borrow_mut() = Some(msg.clone()));
    msg
}

fn explain(what: &str, err: impl fmt::Display) -> CodecError {
    match HANDLE_ERROR.with(|e| e.borrow_mut().take()) {
        Some(msg) => CodecError(format!("cannot {what} the value: {msg}")),
        None => CodecError(format!("cannot {what} the value: {err}")),
    }
}

const NO_CONTEXT: &str = "an mproc handle (queue, pipe end, lock, event, shared memory) can only be sent to \
     another process by mproc itself: as an argument of a process or pool task, or over a Pipe";

/// Encodes `value`, collecting (duplicates of) the descriptors of every handle in it.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Message, CodecError> {
    encode_with_capacity(value, 0)
}

/// [`encode`] into a buffer that starts with room for `capacity` bytes (a good guess
/// saves the buffer's regrowth on large values).
pub(crate) fn encode_with_capacity<T: Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> Result<Message, CodecError> {
    let saved = OUTGOING.with(|o| o.borrow_mut().replace(Vec::new()));
    let bytes = postcard::serialize_with_flavor(value, VecOut::new(capacity));
    let fds = OUTGOING
        .with(|o| std::mem::replace(&mut *o.borrow_mut(), saved))
        .unwrap_or_default();
    let bytes = bytes.map_err(|e| explain("serialize", e))?;
    Ok(Message { bytes, fds })
}

/// Why [`encode_within`] produced no message.
#[derive(Debug)]
pub(crate) enum LimitedEncodeError {
    /// The encoding is `size` bytes, over the limit. Found without ever holding
    /// more than the limit in memory: the encoding stops at the limit, and the
    /// size is then counted without storing anything.
    TooLarge { size: usize },
    /// The value could not be encoded.
    Codec(CodecError),
}

/// [`encode`], refusing an encoding over `limit` bytes as soon as it passes the
/// limit: a value far over the limit costs no more memory than the limit.
pub(crate) fn encode_within<T: Serialize + ?Sized>(
    value: &T,
    limit: usize,
) -> Result<Message, LimitedEncodeError> {
    let saved = OUTGOING.with(|o| o.borrow_mut().replace(Vec::new()));
    let out = VecOut::limited(limit);
    let bytes = postcard::serialize_with_flavor(value, out);
    let fds = OUTGOING
        .with(|o| std::mem::replace(&mut *o.borrow_mut(), saved))
        .unwrap_or_default();
    match bytes {
        Ok(bytes) => Ok(Message { bytes, fds }),
        Err(postcard::Error::SerializeBufferFull) => {
            drop(fds);
            // Count the whole size (for the message) without storing it; handles
            // serialize as in a real transfer, their duplicates closed at once.
            let saved = OUTGOING.with(|o| o.borrow_mut().replace(Vec::new()));
            let size =
                postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default());
            OUTGOING.with(|o| *o.borrow_mut() = saved);
            match size {
                Ok(size) => Err(LimitedEncodeError::TooLarge { size }),
                Err(e) => Err(LimitedEncodeError::Codec(explain("serialize", e))),
            }
        }
        Err(e) => Err(LimitedEncodeError::Codec(explain("serialize", e))),
    }
}

/// postcard's output into a `Vec<u8>`, as its own `AllocVec`, except that the short
/// pieces serde hands over (a varint is 1 to 10 bytes) are copied as fixed-size moves:
/// a `memcpy` call per piece was most of the cost of encoding a `Vec<u64>`.
/// With a limit ([`VecOut::limited`]) it fails (`SerializeBufferFull`) as soon as the
/// output would pass it.
pub(crate) struct VecOut(pub(crate) Vec<u8>, pub(crate) usize);

impl VecOut {
    /// Output with room for `capacity` bytes to begin with, and no limit.
    pub(crate) fn new(capacity: usize) -> VecOut {
        VecOut(Vec::with_capacity(capacity), usize::MAX)
    }

    /// Output that refuses to grow past `limit` bytes.
    pub(crate) fn limited(limit: usize) -> VecOut {
        VecOut(Vec::new(), limit)
    }
}

impl postcard::ser_flavors::Flavor for VecOut {
    type Output = Vec<u8>;

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.0.len() + data.len() > self.1 {
            return Err(postcard::Error::SerializeBufferFull);
        }
        macro_rules! fixed {
            ($($n:literal)*) => {
                match data.len() {
                    $($n => self.0.extend_from_slice(&data[..$n]),)*
                    _ => self.0.extend_from_slice(data),
                }
            };
        }
        fixed!(1 2 3 4 5 6 7 8 9 10);
        Ok(())
    }

    #[inline(always)]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.0.len() >= self.1 {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Decodes a `T` from `msg`, giving each handle in it its descriptor.
pub(crate) fn decode<T: DeserializeOwned>(msg: Message) -> Result<T, CodecError> {
    decode_bytes(&msg.bytes, msg.fds)
}

/// Decodes a `T` from `bytes`, with `fds` for the handles in it.
pub(crate) fn decode_bytes<T: DeserializeOwned>(
    bytes: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<T, CodecError> {
    let saved = INCOMING.with(|i| i.borrow_mut().replace(fds.into_iter().map(Some).collect()));
    let value = postcard::take_from_bytes::<T>(bytes);
    INCOMING.with(|i| *i.borrow_mut() = saved);
    let (value, rest) = value.map_err(|e| explain("deserialize", e))?;
    if !rest.is_empty() {
        // A message is exactly one value: bytes after it mean the sender and the
        // receiver disagree on the type, or the message was damaged.
        return Err(CodecError(format!(
            "cannot deserialize the value: {} of the message's {} bytes are left over after              a complete value (a different type was sent, or the message is damaged)",
            rest.len(),
            bytes.len()
        )));
    }
    Ok(value)
}

/// Serializes a descriptor as an index into the outgoing list (for handle types).
///
/// Fails with a clear message outside an mproc transfer.
pub(crate) fn serialize_fd<S: Serializer>(
    fd: BorrowedFd<'_>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let index = OUTGOING.with(|o| -> Result<u32, String> {
        let mut o = o.borrow_mut();
        let list = o.as_mut().ok_or_else(|| NO_CONTEXT.to_string())?;
        let dup = crate::sys::socket::dup(fd.as_fd())
            .map_err(|e| format!("cannot duplicate a handle's descriptor: {e}"))?;
        list.push(dup);
        Ok(list.len() as u32 - 1)
    });
    match index {
        Ok(i) => i.serialize(serializer),
        Err(msg) => Err(serde::ser::Error::custom(handle_error(msg))),
    }
}

/// Deserializes a descriptor sent by [`serialize_fd`] (for handle types).
pub(crate) fn deserialize_fd<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<OwnedFd, D::Error> {
    let index = u32::deserialize(deserializer)? as usize;
    INCOMING
        .with(|i| {
            let mut i = i.borrow_mut();
            let list = i.as_mut().ok_or_else(|| NO_CONTEXT.to_string())?;
            list.get_mut(index).and_then(Option::take).ok_or_else(|| {
                format!(
                    "handle refers to descriptor #{index}, which did not arrive with the message"
                )
            })
        })
        .map_err(|msg| serde::de::Error::custom(handle_error(msg)))
}

/// Encodes `value` straight into `flavor`, for a transport that cannot carry
/// descriptors (a queue's shared memory): a handle inside the value is an error at
/// the call. (Added for `queue`, which writes messages into its ring in place.)
pub(crate) fn encode_plain_into<T, F>(value: &T, flavor: F) -> Result<F::Output, CodecError>
where
    T: Serialize + ?Sized,
    F: postcard::ser_flavors::Flavor,
{
    let saved = OUTGOING.with(|o| o.borrow_mut().take());
    let out = postcard::serialize_with_flavor(value, flavor);
    OUTGOING.with(|o| *o.borrow_mut() = saved);
    out.map_err(|e| explain("serialize", e))
}

/// An error for a handle type's `Serialize`/`Deserialize` impl whose text survives
/// postcard (which reduces custom errors to a fixed text): `encode`/`decode` report
/// it. (Added for `queue` and `pipe`: "a queue of `u32` arrived where ...".)
pub(crate) fn handle_custom_error<E: serde::de::Error>(msg: impl fmt::Display) -> E {
    E::custom(handle_error(msg.to_string()))
}

/// As [`handle_custom_error`], for `Serialize` impls.
pub(crate) fn handle_custom_ser_error<E: serde::ser::Error>(msg: impl fmt::Display) -> E {
    E::custom(handle_error(msg.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&7u32).unwrap().bytes;
        bytes.extend_from_slice(&[1, 2, 3]);
        let err = decode_bytes::<u32>(&bytes, Vec::new()).unwrap_err();
        assert!(
            err.0.contains("3 of the message's 4 bytes are left over"),
            "{err}"
        );
    }

    #[test]
    fn encoding_stops_at_the_limit() {
        let big = vec![7u8; 10_000];
        match encode_within(&big, 100) {
            Err(LimitedEncodeError::TooLarge { size }) => assert_eq!(size, 10_002),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(encode_within(&big, 10_002).unwrap().bytes.len(), 10_002);
    }

    #[test]
    fn round_trip_plain_values() {
        let msg = encode(&(7u32, "seven".to_string(), vec![1.5f64])).unwrap();
        assert!(msg.fds.is_empty());
        let back: (u32, String, Vec<f64>) = decode(msg).unwrap();
        assert_eq!(back, (7, "seven".to_string(), vec![1.5]));
    }

    #[derive(Debug)]
    struct Handle(OwnedFd);
    impl Serialize for Handle {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize_fd(self.0.as_fd(), s)
        }
    }
    impl<'de> Deserialize<'de> for Handle {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize_fd(d).map(Handle)
        }
    }

    #[test]
    fn handles_travel_as_descriptors() {
        let (a, _b) = crate::sys::socket::pipe().unwrap();
        let msg = encode(&(1u8, Handle(a))).unwrap();
        assert_eq!(msg.fds.len(), 1);
        let (one, _h): (u8, Handle) = decode(msg).unwrap();
        assert_eq!(one, 1);
    }

    #[test]
    fn handle_outside_mproc_is_an_error_at_the_call() {
        let (a, _b) = crate::sys::socket::pipe().unwrap();
        assert!(postcard::to_stdvec(&Handle(a)).is_err());
        HANDLE_ERROR.with(|e| assert!(e.borrow().as_deref().unwrap().contains("can only be sent")));
        let missing = decode_bytes::<Handle>(&[0], Vec::new()).unwrap_err();
        assert!(missing.0.contains("did not arrive"), "{missing}");
    }
}
