//! Lock-free atomics in shared memory.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize, AtomicU8, AtomicU16, AtomicU32,
    AtomicU64, AtomicUsize, Ordering,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ShmError;
use super::handle::{RegionIn, RegionOut};
use super::raw::{AtomicHeader, Shared};

const ATOMIC_MAGIC: u64 = u64::from_le_bytes(*b"mprocAT\x01");

mod sealed {
    pub trait Sealed {}
}

/// The standard atomic integer types, which [`SharedAtomic`] can hold.
///
/// Sealed: implemented for `AtomicU8` … `AtomicU64`, `AtomicI8` … `AtomicI64`,
/// `AtomicUsize` and `AtomicIsize`. (`AtomicBool` is left out because another
/// process could store a byte that is not a valid `bool`.)
pub trait AtomicPrimitive: sealed::Sealed + Send + Sync + 'static {
    /// The plain integer type.
    type Value: Copy + fmt::Debug;
    #[doc(hidden)]
    const KIND: u64;
    #[doc(hidden)]
    fn init(&self, value: Self::Value);
    #[doc(hidden)]
    fn snapshot(&self) -> Self::Value;
}

macro_rules! atomic_primitive {
    ($($a:ident $v:ty = $kind:expr),* $(,)?) => {$(
        impl sealed::Sealed for $a {}
        impl AtomicPrimitive for $a {
            type Value = $v;
            const KIND: u64 = $kind;
            fn init(&self, value: $v) {
                self.store(value, Ordering::Relaxed);
            }
            fn snapshot(&self) -> $v {
                self.load(Ordering::Relaxed)
            }
        }
    )*};
}

atomic_primitive!(
    AtomicU8 u8 = 0x101,
    AtomicU16 u16 = 0x102,
    AtomicU32 u32 = 0x104,
    AtomicU64 u64 = 0x108,
    AtomicUsize usize = 0x118,
    AtomicI8 i8 = 0x201,
    AtomicI16 i16 = 0x202,
    AtomicI32 i32 = 0x204,
    AtomicI64 i64 = 0x208,
    AtomicIsize isize = 0x218,
);

/// An atomic integer in shared memory: a lock-free counter or flag that several
/// processes update, like a `Value` without the lock but with atomic operations.
///
/// It dereferences to the standard atomic (`&AtomicU64` for
/// [`SharedAtomicU64`]), so every method of `std::sync::atomic` is available:
/// `fetch_add`, `compare_exchange`, `load`, … with the usual memory orderings,
/// which hold across processes as they do across threads. A handle: clone it or pass
/// it to a child as a task argument.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::Ordering;
/// use mproc::shm::SharedAtomicU64;
///
/// let hits = SharedAtomicU64::new(0)?;
/// let h2 = hits.clone(); // e.g. passed to a worker process
/// h2.fetch_add(5, Ordering::Relaxed);
/// hits.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(hits.load(Ordering::Relaxed), 6);
/// # Ok::<(), mproc::shm::ShmError>(())
/// ```
pub struct SharedAtomic<A: AtomicPrimitive> {
    shared: Arc<Shared<AtomicHeader<A>>>,
}

/// A shared [`AtomicU8`].
pub type SharedAtomicU8 = SharedAtomic<AtomicU8>;
/// A shared [`AtomicU16`].
pub type SharedAtomicU16 = SharedAtomic<AtomicU16>;
/// A shared [`AtomicU32`].
pub type SharedAtomicU32 = SharedAtomic<AtomicU32>;
/// A shared [`AtomicU64`].
pub type SharedAtomicU64 = SharedAtomic<AtomicU64>;
/// A shared [`AtomicUsize`].
pub type SharedAtomicUsize = SharedAtomic<AtomicUsize>;
/// A shared [`AtomicI8`].
pub type SharedAtomicI8 = SharedAtomic<AtomicI8>;
/// A shared [`AtomicI16`].
pub type SharedAtomicI16 = SharedAtomic<AtomicI16>;
/// A shared [`AtomicI32`].
pub type SharedAtomicI32 = SharedAtomic<AtomicI32>;
/// A shared [`AtomicI64`].
pub type SharedAtomicI64 = SharedAtomic<AtomicI64>;
/// A shared [`AtomicIsize`].
pub type SharedAtomicIsize = SharedAtomic<AtomicIsize>;

impl<A: AtomicPrimitive> SharedAtomic<A> {
    /// A new shared atomic holding `value`.
    ///
    /// # Errors
    ///
    /// [`ShmError::Create`] when the system refuses the memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    ///
    /// let flag = mproc::shm::SharedAtomicU32::new(7)?;
    /// assert_eq!(flag.swap(8, Ordering::AcqRel), 7);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn new(value: A::Value) -> Result<SharedAtomic<A>, ShmError> {
        let shared = Shared::<AtomicHeader<A>>::create(c"mproc-atomic", 0, |h, _, _| {
            h.value.init(value);
            h.kind.store(A::KIND, Ordering::Relaxed);
            h.magic.store(ATOMIC_MAGIC, Ordering::Release);
            Ok(())
        })
        .map_err(|source| ShmError::Create {
            len: size_of::<AtomicHeader<A>>(),
            source,
        })?;
        Ok(SharedAtomic {
            shared: Arc::new(shared),
        })
    }
}

impl<A: AtomicPrimitive> Deref for SharedAtomic<A> {
    type Target = A;

    #[inline]
    fn deref(&self) -> &A {
        &self.shared.header().value
    }
}

impl<A: AtomicPrimitive> Clone for SharedAtomic<A> {
    fn clone(&self) -> Self {
        SharedAtomic {
            shared: self.shared.clone(),
        }
    }
}

impl<A: AtomicPrimitive> fmt::Debug for SharedAtomic<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedAtomic")
            .field(&self.shared.header().value.snapshot())
            .finish()
    }
}

impl<A: AtomicPrimitive> Serialize for SharedAtomic<A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RegionOut::new(self.shared.region()).serialize(s)
    }
}

impl<'de, A: AtomicPrimitive> Deserialize<'de> for SharedAtomic<A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let shared =
            RegionIn::deserialize(d)?.into_shared::<AtomicHeader<A>, D::Error>(|_| Ok(0))?;
        let h = shared.header();
        if h.magic.load(Ordering::Acquire) != ATOMIC_MAGIC
            || h.kind.load(Ordering::Relaxed) != A::KIND
        {
            return Err(serde::de::Error::custom(
                "received descriptor is not an mproc shared atomic of this type",
            ));
        }
        Ok(SharedAtomic {
            shared: Arc::new(shared),
        })
    }
}
