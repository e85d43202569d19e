//! Proxies for data: [`Dict`], [`List`], [`Namespace`], [`Value`].

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::ObjRef;
use super::proto::{Op, Place, Reply};
use super::{ManagerError, Proxy, dec, enc, proxy_impl, unexpected};
use crate::sys::code::EntryPoint;

fn value<T: DeserializeOwned>(r: Reply) -> Result<Option<T>, ManagerError> {
    match r {
        Reply::Value(None) => Ok(None),
        Reply::Value(Some(b)) => dec(&b).map(Some),
        r => Err(unexpected(r)),
    }
}

fn values<T: DeserializeOwned>(r: Reply) -> Result<Vec<T>, ManagerError> {
    match r {
        Reply::Values(vs) => vs.iter().map(dec).collect(),
        r => Err(unexpected(r)),
    }
}

fn len(r: Reply) -> Result<usize, ManagerError> {
    match r {
        Reply::Len(n) => Ok(n as usize),
        r => Err(unexpected(r)),
    }
}

fn boolean(r: Reply) -> Result<bool, ManagerError> {
    match r {
        Reply::Bool(b) => Ok(b),
        r => Err(unexpected(r)),
    }
}

/// A dict held by a manager: Python's `Manager().dict()`, typed.
///
/// Insertion-ordered, like Python's. Keys are compared by their encoding (see the
/// [module docs](super#values-and-keys)). Lookups take any `Q` that `K` borrows as
/// (`&str` for `String` keys).
///
/// # Examples
///
/// ```
/// let m = mproc::manager::Manager::start()?;
/// let d = m.dict::<String, u32>()?;
/// d.set("a".into(), 1)?;
/// d.update([("b".to_string(), 2), ("c".to_string(), 3)])?;
/// assert_eq!(d.get("b")?, Some(2));
/// assert!(d.contains("c")?);
/// assert_eq!(d.pop("c")?, Some(3));
/// assert_eq!(d.keys()?, vec!["a".to_string(), "b".to_string()]);
/// assert_eq!(d.setdefault("a".into(), 9)?, 1);
/// d.delete("a")?;
/// assert_eq!(d.len()?, 1);
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
pub struct Dict<K, V> {
    r: Arc<ObjRef>,
    _t: PhantomData<fn() -> (K, V)>,
}

proxy_impl!("dict", Dict<K, V>);

impl<K, V> Dict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The value at `key`, or `None` (Python's `d.get(k)`). A nested shared list,
    /// dict or value reads as its current contents.
    pub fn get<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Option<V>, ManagerError>
    where
        K: Borrow<Q>,
    {
        value(self.r.op(Op::Get(enc(key)?))?)
    }

    /// Sets `key` to `value` (Python's `d[k] = v`).
    ///
    /// It returns once the manager has stored the value: any process that reads
    /// the dict afterwards sees it. See [`set_pipelined`](Self::set_pipelined) for
    /// a set that does not wait.
    pub fn set(&self, key: K, value: V) -> Result<(), ManagerError> {
        self.r.unit(Op::Set(enc(&key)?, enc(&value)?))
    }

    /// Sets `key` to `value` without waiting for the manager's reply: for a
    /// thread that writes many values, the round trip is paid once for many sets.
    ///
    /// Ordering: the manager carries out one thread's requests in the order the
    /// thread made them, pipelined or not, so this thread's later calls see the
    /// value. Another process is only sure to see it once this thread's next
    /// (waiting) call to the manager has returned, or [`flush`](Self::flush) has:
    /// call `flush()` before telling another process, by another channel, that the
    /// value is there.
    ///
    /// Errors: a value too large, or a manager that is gone, are reported here. A
    /// failure on the manager's side (the dict no longer exists) is reported, as
    /// [`ManagerError::Pipelined`], by this thread's next call to the manager or by
    /// `flush()`; a call that reports it is not carried out, and a call's own
    /// result is never replaced by it. A thread has at most 64 requests in flight;
    /// the next one first waits for replies.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = mproc::manager::Manager::start()?;
    /// let d = m.dict::<u32, u32>()?;
    /// for i in 0..100 {
    ///     d.set_pipelined(i, i * i)?;
    /// }
    /// d.flush()?; // every set is done, and none failed
    /// assert_eq!(d.get(&9)?, Some(81));
    /// # Ok::<(), mproc::manager::ManagerError>(())
    /// ```
    pub fn set_pipelined(&self, key: K, value: V) -> Result<(), ManagerError> {
        self.r.pipeline(Op::Set(enc(&key)?, enc(&value)?))
    }

    /// Waits until the manager has carried out this thread's pipelined requests
    /// ([`set_pipelined`](Self::set_pipelined)) to this manager.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Pipelined`] holding the first of them that failed;
    /// [`ManagerError::Disconnected`] if the manager is gone.
    pub fn flush(&self) -> Result<(), ManagerError> {
        self.r.ep.flush()
    }

    /// Removes `key` (Python's `del d[k]`).
    ///
    /// # Errors
    ///
    /// [`ManagerError::KeyNotFound`] if it is not there.
    pub fn delete<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<(), ManagerError>
    where
        K: Borrow<Q>,
    {
        self.r.unit(Op::Delete(enc(key)?))
    }

    /// Whether `key` is there (Python's `k in d`).
    pub fn contains<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<bool, ManagerError>
    where
        K: Borrow<Q>,
    {
        boolean(self.r.op(Op::Contains(enc(key)?))?)
    }

    /// The number of entries.
    pub fn len(&self) -> Result<usize, ManagerError> {
        len(self.r.op(Op::Len)?)
    }

    /// Whether the dict is empty.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        values(self.r.op(Op::Keys)?)
    }

    /// The values, in insertion order.
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        values(self.r.op(Op::Values)?)
    }

    /// The entries, in insertion order.
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        match self.r.op(Op::Items)? {
            Reply::Items(items) => items.iter().map(|(k, v)| Ok((dec(k)?, dec(v)?))).collect(),
            r => Err(unexpected(r)),
        }
    }

    /// Sets every entry of `items`, in one request.
    pub fn update(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<(), ManagerError> {
        let items = items
            .into_iter()
            .map(|(k, v)| Ok((enc(&k)?, enc(&v)?)))
            .collect::<Result<_, ManagerError>>()?;
        self.r.unit(Op::Update(items))
    }

    /// Removes `key` and returns its value, or `None` if it was not there.
    pub fn pop<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Option<V>, ManagerError>
    where
        K: Borrow<Q>,
    {
        value(self.r.op(Op::Pop(enc(key)?))?)
    }

    /// The value at `key`, after setting it to `default` if it was not there.
    pub fn setdefault(&self, key: K, default: V) -> Result<V, ManagerError> {
        value(self.r.op(Op::SetDefault(enc(&key)?, enc(&default)?))?)?
            .ok_or_else(|| ManagerError::Protocol("setdefault returned nothing".into()))
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.r.unit(Op::Clear)
    }

    /// Replaces the value at `key` with `f(current)` atomically, and returns it:
    /// concurrent updates from any number of processes are never lost.
    ///
    /// On a manager started by this program, `f` runs on the manager (it travels
    /// by address, as a task does; it must not capture). Elsewhere (TCP, Unix
    /// socket), the client reads, applies `f` and writes back with a
    /// compare-and-set, retrying when another writer came first.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Function`] if `f` panicked on the manager (nothing changed).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = mproc::manager::Manager::start()?;
    /// let d = m.dict::<String, u64>()?;
    /// assert_eq!(d.update_with("hits".into(), |n| n.unwrap_or(0) + 1)?, 1);
    /// assert_eq!(d.update_with("hits".into(), |n| n.unwrap_or(0) + 1)?, 2);
    /// # Ok::<(), mproc::manager::ManagerError>(())
    /// ```
    pub fn update_with(&self, key: K, f: fn(Option<V>) -> V) -> Result<V, ManagerError>
    where
        V: 'static,
    {
        let k = enc(&key)?;
        if self.r.ep.functions()? {
            let ep = EntryPoint::for_fn(f);
            return value(self.r.op(Op::UpdateWith(k, ep))?)?
                .ok_or_else(|| ManagerError::Protocol("update_with returned nothing".into()));
        }
        let mut current = self.r.op(Op::Get(k.clone()))?;
        loop {
            let (expected, cur) = match current {
                Reply::Value(None) => (None, None),
                Reply::Value(Some(b)) => {
                    let v: V = dec(&b)?;
                    (Some(b), Some(v))
                }
                r => return Err(unexpected(r)),
            };
            let new = f(cur);
            let new_b = enc(&new)?;
            match self.r.op(Op::CompareAndSet {
                key: k.clone(),
                expected,
                new: new_b,
            })? {
                Reply::Unit => return Ok(new),
                Reply::Conflict(now) => current = Reply::Value(now),
                r => return Err(unexpected(r)),
            }
        }
    }

    /// Stores a reference to another shared object at `key`: the dict then holds
    /// that object, and a proxy got back with [`get_shared`](Dict::get_shared)
    /// changes it for everyone.
    pub fn set_shared<P: Proxy>(&self, key: K, object: &P) -> Result<(), ManagerError> {
        self.r.put_object(Place::Key(enc(&key)?), object)
    }

    /// A proxy to the shared object stored at `key`.
    ///
    /// # Errors
    ///
    /// `KeyNotFound`, or `WrongKind` when the key holds a plain value or another
    /// kind of object.
    pub fn get_shared<P: Proxy, Q: Serialize + ?Sized>(&self, key: &Q) -> Result<P, ManagerError>
    where
        K: Borrow<Q>,
    {
        self.r.get_object(Place::Key(enc(key)?))
    }

    /// A proxy to the shared list stored at `key`.
    pub fn get_list<T, Q: Serialize + ?Sized>(&self, key: &Q) -> Result<List<T>, ManagerError>
    where
        K: Borrow<Q>,
    {
        self.get_shared(key)
    }

    /// A proxy to the shared dict stored at `key`.
    pub fn get_dict<K2, V2, Q: Serialize + ?Sized>(
        &self,
        key: &Q,
    ) -> Result<Dict<K2, V2>, ManagerError>
    where
        K: Borrow<Q>,
    {
        self.get_shared(key)
    }
}

/// A list held by a manager: Python's `Manager().list()`, typed. Indices follow
/// Python's rules (negative counts from the end).
///
/// # Examples
///
/// ```
/// let m = mproc::manager::Manager::start()?;
/// let l = m.list::<i32>()?;
/// l.extend([3, 1, 2])?;
/// l.append(5)?;
/// l.insert(0, 9)?;
/// assert_eq!(l.get(-1)?, 5);
/// l.set(0, 4)?;
/// assert_eq!(l.pop()?, 5);
/// l.remove(&1)?;
/// l.sort()?;
/// assert_eq!(l.to_vec()?, vec![2, 3, 4]);
/// assert_eq!(l.slice(Some(1), None)?, vec![3, 4]);
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
pub struct List<T> {
    r: Arc<ObjRef>,
    _t: PhantomData<fn() -> T>,
}

proxy_impl!("list", List<T>);

impl<T: Serialize + DeserializeOwned> List<T> {
    /// Appends `item`.
    pub fn append(&self, item: T) -> Result<(), ManagerError> {
        self.r.unit(Op::Append(enc(&item)?))
    }

    /// Appends every item, in one request.
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<(), ManagerError> {
        let items = items
            .into_iter()
            .map(|i| enc(&i))
            .collect::<Result<_, _>>()?;
        self.r.unit(Op::Extend(items))
    }

    /// Inserts `item` before `index` (clamped, as Python's `insert`).
    pub fn insert(&self, index: i64, item: T) -> Result<(), ManagerError> {
        self.r.unit(Op::Insert(index, enc(&item)?))
    }

    /// The item at `index`.
    ///
    /// # Errors
    ///
    /// [`ManagerError::IndexOutOfRange`].
    pub fn get(&self, index: i64) -> Result<T, ManagerError> {
        value(self.r.op(Op::Index(index))?)?.ok_or_else(|| ManagerError::Protocol("no item".into()))
    }

    /// Replaces the item at `index`.
    pub fn set(&self, index: i64, item: T) -> Result<(), ManagerError> {
        self.r.unit(Op::SetIndex(index, enc(&item)?))
    }

    /// Removes and returns the last item.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Empty`] for an empty list.
    pub fn pop(&self) -> Result<T, ManagerError> {
        value(self.r.op(Op::PopIndex(None))?)?
            .ok_or_else(|| ManagerError::Protocol("no item".into()))
    }

    /// Removes and returns the item at `index`.
    pub fn pop_at(&self, index: i64) -> Result<T, ManagerError> {
        value(self.r.op(Op::PopIndex(Some(index)))?)?
            .ok_or_else(|| ManagerError::Protocol("no item".into()))
    }

    /// Removes the first item equal to `item` (compared by encoding).
    ///
    /// # Errors
    ///
    /// [`ManagerError::ValueNotFound`].
    pub fn remove(&self, item: &T) -> Result<(), ManagerError> {
        self.r.unit(Op::Remove(enc(item)?))
    }

    /// The number of items.
    pub fn len(&self) -> Result<usize, ManagerError> {
        len(self.r.op(Op::Len)?)
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// Items `start..end` with Python's slice rules (`l[start:end]`).
    pub fn slice(&self, start: Option<i64>, end: Option<i64>) -> Result<Vec<T>, ManagerError> {
        values(self.r.op(Op::Slice(start, end))?)
    }

    /// Every item.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        self.slice(None, None)
    }

    /// Removes every item.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.r.unit(Op::Clear)
    }

    /// Sorts the list by `T`'s order, atomically: the list is read, sorted here
    /// and written back only if nobody changed it meanwhile (else retried).
    pub fn sort(&self) -> Result<(), ManagerError>
    where
        T: Ord,
    {
        self.sort_by(|a, b| a.cmp(b))
    }

    /// Sorts the list with `compare` (atomically, as [`sort`](List::sort)).
    pub fn sort_by(
        &self,
        mut compare: impl FnMut(&T, &T) -> std::cmp::Ordering,
    ) -> Result<(), ManagerError> {
        loop {
            let raw = match self.r.op(Op::Slice(None, None))? {
                Reply::Values(vs) => vs,
                r => return Err(unexpected(r)),
            };
            let mut items = raw
                .iter()
                .map(|b| Ok((dec::<T>(b)?, b.clone())))
                .collect::<Result<Vec<_>, ManagerError>>()?;
            items.sort_by(|a, b| compare(&a.0, &b.0));
            let new = items.into_iter().map(|(_, b)| b).collect();
            match self.r.op(Op::ReplaceAllIf { expected: raw, new })? {
                Reply::Unit => return Ok(()),
                Reply::Conflict(_) => continue,
                r => return Err(unexpected(r)),
            }
        }
    }

    /// Appends a reference to another shared object (a list of dicts, ...).
    pub fn append_shared<P: Proxy>(&self, object: &P) -> Result<(), ManagerError> {
        self.r.put_object(Place::Append, object)
    }

    /// Replaces the item at `index` with a reference to another shared object.
    pub fn set_shared<P: Proxy>(&self, index: i64, object: &P) -> Result<(), ManagerError> {
        self.r.put_object(Place::Index(index), object)
    }

    /// A proxy to the shared object at `index`.
    pub fn get_shared<P: Proxy>(&self, index: i64) -> Result<P, ManagerError> {
        self.r.get_object(Place::Index(index))
    }

    /// A proxy to the shared dict at `index`.
    pub fn get_dict<K, V>(&self, index: i64) -> Result<Dict<K, V>, ManagerError> {
        self.get_shared(index)
    }

    /// A proxy to the shared list at `index`.
    pub fn get_list<U>(&self, index: i64) -> Result<List<U>, ManagerError> {
        self.get_shared(index)
    }
}

/// Named fields of serde values: Python's `Manager().Namespace()`.
///
/// # Examples
///
/// ```
/// let m = mproc::manager::Manager::start()?;
/// let ns = m.namespace()?;
/// ns.set("x", &10u32)?;
/// ns.set("name", &"run-1")?;
/// assert_eq!(ns.get::<u32>("x")?, Some(10));
/// assert_eq!(ns.fields()?, vec!["name".to_string(), "x".to_string()]);
/// ns.delete("x")?;
/// assert_eq!(ns.get::<u32>("x")?, None);
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
pub struct Namespace {
    r: Arc<ObjRef>,
    _t: PhantomData<()>,
}

proxy_impl!("namespace", Namespace);

impl Namespace {
    /// The value of `field`, or `None` if it is not set.
    pub fn get<T: DeserializeOwned>(&self, field: &str) -> Result<Option<T>, ManagerError> {
        value(self.r.op(Op::GetField(field.to_string()))?)
    }

    /// Sets `field`.
    pub fn set<T: Serialize + ?Sized>(&self, field: &str, value: &T) -> Result<(), ManagerError> {
        self.r.unit(Op::SetField(field.to_string(), enc(value)?))
    }

    /// Removes `field` (`KeyNotFound` if it is not set).
    pub fn delete(&self, field: &str) -> Result<(), ManagerError> {
        self.r.unit(Op::DeleteField(field.to_string()))
    }

    /// The names of the fields, sorted.
    pub fn fields(&self) -> Result<Vec<String>, ManagerError> {
        match self.r.op(Op::Fields)? {
            Reply::Names(n) => Ok(n),
            r => Err(unexpected(r)),
        }
    }

    /// Stores a reference to another shared object in `field`.
    pub fn set_shared<P: Proxy>(&self, field: &str, object: &P) -> Result<(), ManagerError> {
        self.r.put_object(Place::Field(field.to_string()), object)
    }

    /// A proxy to the shared object in `field`.
    pub fn get_shared<P: Proxy>(&self, field: &str) -> Result<P, ManagerError> {
        self.r.get_object(Place::Field(field.to_string()))
    }
}

/// One shared value: Python's `Manager().Value(typecode, v)`, for any serde type.
///
/// # Examples
///
/// ```
/// let m = mproc::manager::Manager::start()?;
/// let v = m.value(String::from("a"))?;
/// v.set("b".into())?;
/// assert_eq!(v.update_with(|s| s + "c")?, "bc");
/// assert_eq!(v.get()?, "bc");
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
pub struct Value<T> {
    r: Arc<ObjRef>,
    _t: PhantomData<fn() -> T>,
}

proxy_impl!("value", Value<T>);

impl<T: Serialize + DeserializeOwned> Value<T> {
    /// The current value.
    pub fn get(&self) -> Result<T, ManagerError> {
        value(self.r.op(Op::Load)?)?.ok_or_else(|| ManagerError::Protocol("no value".into()))
    }

    /// Replaces the value.
    pub fn set(&self, v: T) -> Result<(), ManagerError> {
        self.r.unit(Op::Store(enc(&v)?))
    }

    /// Replaces the value with `f(current)` atomically and returns it (see
    /// [`Dict::update_with`]).
    pub fn update_with(&self, f: fn(T) -> T) -> Result<T, ManagerError>
    where
        T: 'static,
    {
        if self.r.ep.functions()? {
            return value(self.r.op(Op::ValueUpdateWith(EntryPoint::for_fn(f)))?)?
                .ok_or_else(|| ManagerError::Protocol("no value".into()));
        }
        let mut raw = match self.r.op(Op::Load)? {
            Reply::Value(Some(b)) => b,
            r => return Err(unexpected(r)),
        };
        loop {
            let new = f(dec(&raw)?);
            match self.r.op(Op::ValueCompareAndSet {
                expected: raw,
                new: enc(&new)?,
            })? {
                Reply::Unit => return Ok(new),
                Reply::Conflict(Some(now)) => raw = now,
                r => return Err(unexpected(r)),
            }
        }
    }
}
