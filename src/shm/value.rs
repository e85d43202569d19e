//! `Value<T>` and `Array<T>`: typed plain data in shared memory, with an optional lock.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ShmError;
use super::handle::{RegionIn, RegionOut};
use super::raw::{DataHeader, Shared, ShmSafe};
use crate::sync::{OwnerDied, RLock, RLockGuard};

const DATA_MAGIC: u64 = u64::from_le_bytes(*b"mprocDA\x01");

/// The shared part of `Value` and `Array`: `len` elements of `T`, maybe a lock.
struct Data<T> {
    shared: Arc<Shared<DataHeader>>,
    len: usize,
    lock: Option<RLock>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Data<T> {
    fn clone(&self) -> Self {
        Data {
            shared: self.shared.clone(),
            len: self.len,
            lock: self.lock.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: ShmSafe> Data<T> {
    fn new(
        len: usize,
        with_lock: bool,
        init: impl FnOnce(&Shared<DataHeader>),
    ) -> Result<Self, ShmError> {
        let bytes = len.checked_mul(size_of::<T>()).ok_or(ShmError::Size {
            len,
            elem_size: size_of::<T>(),
        })?;
        let shared = Shared::<DataHeader>::create(c"mproc-value", bytes, |h, shared, _| {
            h.elem_size.store(size_of::<T>() as u64, Ordering::Relaxed);
            h.len.store(len as u64, Ordering::Relaxed);
            init(shared);
            h.magic.store(DATA_MAGIC, Ordering::Release);
            Ok(())
        })
        .map_err(|source| ShmError::Create { len: bytes, source })?;
        let lock = if with_lock {
            Some(RLock::new().map_err(ShmError::Lock)?)
        } else {
            None
        };
        Ok(Data {
            shared: Arc::new(shared),
            len,
            lock,
            _t: PhantomData,
        })
    }

    /// Holds the lock (if any) for the duration of `f`. The owner-died state is
    /// left for `lock()` to report: a single copy in or out is whole either way.
    fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self
            .lock
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(OwnerDied::into_inner));
        f()
    }

    fn get(&self, index: usize) -> T {
        self.check(index);
        self.locked(|| self.shared.tail_read(index).expect("index checked"))
    }

    fn set(&self, index: usize, value: T) {
        self.check(index);
        self.locked(|| self.shared.tail_write(index, value).expect("index checked"));
    }

    fn write_all(&self, src: &[T]) {
        self.shared
            .tail_write_slice(0, src)
            .expect("length checked");
    }

    #[track_caller]
    fn check(&self, index: usize) {
        if index >= self.len {
            panic!(
                "index {index} is out of bounds for a shared array of length {}",
                self.len
            );
        }
    }

    fn read_vec(&self) -> Vec<T> {
        self.shared.tail_read_vec(self.len).expect("length checked")
    }

    /// Takes the lock and wraps its guard (also inside an [`OwnerDied`]); `what`
    /// names the caller in the panic when there is no lock.
    fn lock_with<'a, G>(
        &'a self,
        what: &str,
        wrap: impl Fn(RLockGuard<'a>) -> G,
    ) -> Result<G, OwnerDied<G>> {
        let Some(lock) = self.lock.as_ref() else {
            no_lock(what)
        };
        match lock.lock() {
            Ok(guard) => Ok(wrap(guard)),
            Err(died) => Err(died.map(wrap)),
        }
    }
}

#[cold]
#[track_caller]
fn no_lock(what: &str) -> ! {
    panic!("{what}::lock called on a shared {what} made without a lock; use {what}::with_lock")
}

#[derive(Serialize)]
struct DataOut<'a> {
    region: RegionOut<'a>,
    lock: Option<&'a RLock>,
}

#[derive(Deserialize)]
struct DataIn {
    region: RegionIn,
    lock: Option<RLock>,
}

impl<T: ShmSafe> Serialize for Data<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DataOut {
            region: RegionOut::new(self.shared.region()),
            lock: self.lock.as_ref(),
        }
        .serialize(s)
    }
}

impl<'de, T: ShmSafe> Deserialize<'de> for Data<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = DataIn::deserialize(d)?;
        let mut len = 0usize;
        let shared: Shared<DataHeader> =
            wire.region.into_shared::<DataHeader, D::Error>(|region| {
                let h = region.view::<DataHeader>(0).ok_or_else(|| {
                    "received shared value is too small for its header".to_string()
                })?;
                if h.magic.load(Ordering::Acquire) != DATA_MAGIC {
                    return Err("received descriptor is not an mproc shared value".to_string());
                }
                let elem = h.elem_size.load(Ordering::Relaxed);
                if elem != size_of::<T>() as u64 {
                    return Err(format!(
                        "received shared value holds elements of {elem} bytes, expected {}",
                        size_of::<T>()
                    ));
                }
                len = usize::try_from(h.len.load(Ordering::Relaxed))
                    .map_err(|_| "received shared value has an impossible length".to_string())?;
                len.checked_mul(size_of::<T>())
                    .ok_or_else(|| "received shared value has an impossible length".to_string())
            })?;
        Ok(Data {
            shared: Arc::new(shared),
            len,
            lock: wire.lock,
            _t: PhantomData,
        })
    }
}

/// One value of a plain-data type in shared memory, like Python's
/// `multiprocessing.Value` (with a lock) and `RawValue` (without).
///
/// [`get`](Value::get) and [`set`](Value::set) copy the whole value in or out. Made
/// with [`Value::with_lock`], the value carries a re-entrant [`RLock`] (as Python's
/// `Value(..., lock=True)` does), which `get` and `set` hold for their copy, and
/// which [`lock`](Value::lock) holds across a read-modify-write. Made with
/// [`Value::new`], it has no lock: concurrent `set`s from several processes may
/// interleave, and a read-modify-write (`v.set(v.get() + 1)`) loses updates. For
/// counters, prefer a lock-free [`SharedAtomicU64`](super::SharedAtomicU64).
///
/// `get` and `set` take the lock even when a previous holder died (a single copy
/// is whole either way) and leave the owner-died state for [`lock`](Value::lock)
/// to report.
///
/// A handle: clone it, or pass it to a child as a task argument; all copies refer
/// to the same memory.
///
/// # Examples
///
/// ```
/// use mproc::shm::Value;
///
/// let v = Value::with_lock(10i64)?;
/// {
///     let mut guard = v.lock().unwrap(); // Err only if a holder died
///     let x = guard.get();
///     guard.set(x + 1);
/// }
/// assert_eq!(v.get(), 11);
/// # Ok::<(), mproc::shm::ShmError>(())
/// ```
pub struct Value<T> {
    data: Data<T>,
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            data: self.data.clone(),
        }
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("value", &self.get())
            .field("locked", &self.data.lock.is_some())
            .finish()
    }
}

impl<T: ShmSafe> Value<T> {
    /// A new shared value without a lock (Python's `RawValue`).
    ///
    /// # Errors
    ///
    /// [`ShmError::Create`] when the system refuses the memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = mproc::shm::Value::new(1.5f32)?;
    /// assert_eq!(v.get(), 1.5);
    /// assert!(v.get_lock().is_none());
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn new(value: T) -> Result<Value<T>, ShmError> {
        Ok(Value {
            data: Data::new(1, false, |s| {
                s.tail_write(0, value);
            })?,
        })
    }

    /// A new shared value with its own re-entrant lock (Python's
    /// `Value(typecode, value, lock=True)`).
    ///
    /// # Errors
    ///
    /// [`ShmError::Create`], or [`ShmError::Lock`] when the lock cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = mproc::shm::Value::with_lock(0u32)?;
    /// assert!(v.get_lock().is_some());
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn with_lock(value: T) -> Result<Value<T>, ShmError> {
        Ok(Value {
            data: Data::new(1, true, |s| {
                s.tail_write(0, value);
            })?,
        })
    }

    /// A copy of the value (holding the lock, if any, for the copy).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = mproc::shm::Value::new(7u8)?;
    /// assert_eq!(v.get(), 7);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn get(&self) -> T {
        self.data.get(0)
    }

    /// Replaces the value (holding the lock, if any, for the copy).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = mproc::shm::Value::new(7u8)?;
    /// v.set(8);
    /// assert_eq!(v.get(), 8);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn set(&self, value: T) {
        self.data.set(0, value)
    }

    /// The value's lock, if it was made with one (Python's `get_lock()`). It is
    /// re-entrant, so `get` and `set` work while this thread holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = mproc::shm::Value::with_lock(1u64)?;
    /// let lock = v.get_lock().unwrap();
    /// let _held = lock.lock().unwrap();
    /// v.set(v.get() * 2); // re-enters the lock
    /// assert_eq!(v.get(), 2);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn get_lock(&self) -> Option<&RLock> {
        self.data.lock.as_ref()
    }

    /// Takes the value's lock and returns a guard to read and write through while
    /// holding it.
    ///
    /// # Errors
    ///
    /// [`OwnerDied`] when a process died holding the lock (see
    /// [`RLock::lock`](crate::sync::RLock::lock)); the guard inside still holds it.
    ///
    /// # Panics
    ///
    /// When the value was made without a lock ([`Value::new`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = mproc::shm::Value::with_lock(5i32)?;
    /// let g = v.lock().unwrap();
    /// assert_eq!(g.update(|x| x * 3), 15);
    /// drop(g);
    /// assert_eq!(v.get(), 15);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, OwnerDied<ValueGuard<'_, T>>> {
        self.data
            .lock_with("Value", |guard| ValueGuard { value: self, guard })
    }
}

/// Holds a [`Value`]'s lock; read and write through it. Releases the lock on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T: ShmSafe> {
    value: &'a Value<T>,
    guard: RLockGuard<'a>,
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueGuard")
            .field("value", &self.get())
            .finish()
    }
}

impl<T: ShmSafe> ValueGuard<'_, T> {
    /// A copy of the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = mproc::shm::Value::with_lock(3u16)?;
    /// assert_eq!(v.lock().unwrap().get(), 3);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn get(&self) -> T {
        self.value.data.shared.tail_read(0).expect("one element")
    }

    /// Replaces the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = mproc::shm::Value::with_lock(3u16)?;
    /// v.lock().unwrap().set(4);
    /// assert_eq!(v.get(), 4);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn set(&mut self, value: T) {
        self.value
            .data
            .shared
            .tail_write(0, value)
            .expect("one element");
    }

    /// Replaces the value with `f(value)` and returns the new value.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = mproc::shm::Value::with_lock(1u64)?;
    /// assert_eq!(v.lock().unwrap().update(|x| x + 41), 42);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn update(&self, f: impl FnOnce(T) -> T) -> T {
        let new = f(self.get());
        self.value
            .data
            .shared
            .tail_write(0, new)
            .expect("one element");
        new
    }

    /// Clears the owner-died state of the lock: call it once the value is known to
    /// be good again (see [`RLockGuard::mark_consistent`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = mproc::shm::Value::with_lock(0u8)?;
    /// let g = v.lock().unwrap();
    /// g.mark_consistent(); // no effect when nobody died
    /// assert!(!v.get_lock().unwrap().is_owner_died());
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn mark_consistent(&self) {
        self.guard.mark_consistent();
    }
}

impl<T: ShmSafe> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(s)
    }
}

impl<'de, T: ShmSafe> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let data = Data::<T>::deserialize(d)?;
        if data.len != 1 {
            return Err(serde::de::Error::custom(format!(
                "received shared array of {} elements where a single value was expected",
                data.len
            )));
        }
        Ok(Value { data })
    }
}

/// A fixed-length array of a plain-data type in shared memory, like Python's
/// `multiprocessing.Array` (with a lock) and `RawArray` (without).
///
/// Elements are copied in and out ([`get`](Array::get), [`set`](Array::set),
/// [`to_vec`](Array::to_vec), [`copy_from_slice`](Array::copy_from_slice)); each
/// call holds the lock, if there is one, for its whole copy, and
/// [`lock`](Array::lock) holds it across several calls.
///
/// # Examples
///
/// ```
/// use mproc::shm::Array;
///
/// let a = Array::<f64>::from_slice(&[1.0, 2.0, 3.0])?;
/// a.set(1, 20.0);
/// assert_eq!(a.to_vec(), [1.0, 20.0, 3.0]);
/// assert_eq!(a.len(), 3);
/// # Ok::<(), mproc::shm::ShmError>(())
/// ```
pub struct Array<T> {
    data: Data<T>,
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            data: self.data.clone(),
        }
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("len", &self.len())
            .field("locked", &self.data.lock.is_some())
            .finish()
    }
}

impl<T: ShmSafe> Array<T> {
    /// A new array of `len` zeroed elements, without a lock (Python's `RawArray`).
    ///
    /// # Errors
    ///
    /// [`ShmError::Size`] when the size overflows, [`ShmError::Create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::<u32>::new(4)?;
    /// assert_eq!(a.to_vec(), [0, 0, 0, 0]);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn new(len: usize) -> Result<Array<T>, ShmError> {
        Ok(Array {
            data: Data::new(len, false, |_| {})?,
        })
    }

    /// A new array of `len` zeroed elements with its own re-entrant lock (Python's
    /// `Array(typecode, len, lock=True)`).
    ///
    /// # Errors
    ///
    /// As [`Array::new`], and [`ShmError::Lock`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::<i8>::with_lock(2)?;
    /// assert!(a.get_lock().is_some());
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn with_lock(len: usize) -> Result<Array<T>, ShmError> {
        Ok(Array {
            data: Data::new(len, true, |_| {})?,
        })
    }

    /// A new array holding a copy of `values`, without a lock.
    ///
    /// # Errors
    ///
    /// As [`Array::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::from_slice(&[1u8, 2, 3])?;
    /// assert_eq!(a.get(2), 3);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn from_slice(values: &[T]) -> Result<Array<T>, ShmError> {
        Ok(Array {
            data: Data::new(values.len(), false, |s| {
                s.tail_write_slice(0, values);
            })?,
        })
    }

    /// The number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::<u64>::new(5)?;
    /// assert_eq!(a.len(), 5);
    /// assert!(!a.is_empty());
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.data.len
    }

    /// Whether the array has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(mproc::shm::Array::<u64>::new(0)?.is_empty());
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.data.len == 0
    }

    /// A copy of element `index`.
    ///
    /// # Panics
    ///
    /// When `index >= len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::from_slice(&[10i32, 20])?;
    /// assert_eq!(a.get(1), 20);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    #[track_caller]
    pub fn get(&self, index: usize) -> T {
        self.data.get(index)
    }

    /// Replaces element `index`.
    ///
    /// # Panics
    ///
    /// When `index >= len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::<i32>::new(2)?;
    /// a.set(0, -1);
    /// assert_eq!(a.to_vec(), [-1, 0]);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    #[track_caller]
    pub fn set(&self, index: usize, value: T) {
        self.data.set(index, value)
    }

    /// A copy of all elements (under the lock, if any, as one copy).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::from_slice(&[1u16, 2])?;
    /// assert_eq!(a.to_vec(), vec![1, 2]);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        self.data.locked(|| self.data.read_vec())
    }

    /// Overwrites all elements with `values` (under the lock, if any).
    ///
    /// # Panics
    ///
    /// When `values.len() != len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::<u8>::new(3)?;
    /// a.copy_from_slice(&[7, 8, 9]);
    /// assert_eq!(a.to_vec(), [7, 8, 9]);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    #[track_caller]
    pub fn copy_from_slice(&self, values: &[T]) {
        assert_eq!(
            values.len(),
            self.len(),
            "copy_from_slice needs exactly as many values as the shared array has elements"
        );
        self.data.locked(|| self.data.write_all(values));
    }

    /// The array's lock, if it was made with one (Python's `get_lock()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::<u8>::new(1)?;
    /// assert!(a.get_lock().is_none());
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn get_lock(&self) -> Option<&RLock> {
        self.data.lock.as_ref()
    }

    /// Takes the array's lock and returns a guard to read and write through.
    ///
    /// # Errors
    ///
    /// [`OwnerDied`] when a process died holding the lock; the guard inside still
    /// holds it.
    ///
    /// # Panics
    ///
    /// When the array was made without a lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::<u32>::with_lock(2)?;
    /// {
    ///     let g = a.lock().unwrap();
    ///     g.set(0, g.get(1) + 5);
    /// }
    /// assert_eq!(a.to_vec(), [5, 0]);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, OwnerDied<ArrayGuard<'_, T>>> {
        self.data
            .lock_with("Array", |guard| ArrayGuard { array: self, guard })
    }
}

/// Holds an [`Array`]'s lock; read and write through it. Releases the lock on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T: ShmSafe> {
    array: &'a Array<T>,
    guard: RLockGuard<'a>,
}

impl<T: ShmSafe> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayGuard")
            .field("len", &self.array.len())
            .finish()
    }
}

impl<T: ShmSafe> ArrayGuard<'_, T> {
    /// A copy of element `index`.
    ///
    /// # Panics
    ///
    /// When `index >= len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::<u8>::with_lock(1)?;
    /// assert_eq!(a.lock().unwrap().get(0), 0);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    #[track_caller]
    pub fn get(&self, index: usize) -> T {
        self.array.data.get(index)
    }

    /// Replaces element `index`.
    ///
    /// # Panics
    ///
    /// When `index >= len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::<u8>::with_lock(1)?;
    /// a.lock().unwrap().set(0, 9);
    /// assert_eq!(a.get(0), 9);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    #[track_caller]
    pub fn set(&self, index: usize, value: T) {
        self.array.data.set(index, value)
    }

    /// A copy of all elements.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::<u8>::with_lock(2)?;
    /// assert_eq!(a.lock().unwrap().to_vec(), [0, 0]);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        self.array.data.read_vec()
    }

    /// Clears the owner-died state of the lock (see
    /// [`RLockGuard::mark_consistent`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = mproc::shm::Array::<u8>::with_lock(1)?;
    /// a.lock().unwrap().mark_consistent();
    /// assert!(!a.get_lock().unwrap().is_owner_died());
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn mark_consistent(&self) {
        self.guard.mark_consistent();
    }
}

impl<T: ShmSafe> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(s)
    }
}

impl<'de, T: ShmSafe> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Array {
            data: Data::deserialize(d)?,
        })
    }
}
