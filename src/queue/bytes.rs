//! [`Bytes`]: a byte buffer that serde encodes in one piece.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A `Vec<u8>` that crosses a queue or a pipe as one block of bytes.
///
/// serde encodes a plain `Vec<u8>` (or `[u8; N]`) as a sequence of separate `u8`s,
/// which costs a few nanoseconds per byte. `Bytes` encodes as one length-prefixed
/// block: putting it copies it into the queue's shared memory once, with `memcpy`.
/// Use it (directly, or as a field) for large binary payloads.
///
/// # Examples
///
/// ```
/// use mproc::queue::{Bytes, Queue};
///
/// let q = Queue::<Bytes>::new()?;
/// q.put(Bytes::from(vec![42u8; 1 << 20])).unwrap();
/// let got = q.get().unwrap();
/// assert_eq!(got.len(), 1 << 20);
/// assert!(got.iter().all(|&b| b == 42));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// An empty buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = mproc::queue::Bytes::new();
    /// assert!(b.is_empty());
    /// ```
    pub fn new() -> Bytes {
        Bytes(Vec::new())
    }

    /// The underlying vector.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = mproc::queue::Bytes::from(&b"abc"[..]);
    /// assert_eq!(b.into_vec(), b"abc".to_vec());
    /// ```
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Bytes {
        Bytes(v.to_vec())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Vec<u8> {
        b.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte buffer")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element::<u8>()? {
                    v.push(b);
                }
                Ok(Bytes(v))
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}
