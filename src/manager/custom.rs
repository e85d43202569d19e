//! User types served by a manager: Python's `BaseManager.register`, typed.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::client::ObjRef;
use super::objects::ErasedShared;
use super::proto::{Op, Reply};
use super::{ManagerError, dec, enc, unexpected};
use crate::sys::code::SelfRunning;

/// A type whose objects live on a manager and answer typed requests.
///
/// Register it with [`Builder::register`](super::Builder::register), create
/// objects with [`Manager::create_shared`](super::Manager::create_shared), and call
/// them through a [`Shared<T>`] proxy. Requests and replies are serde data: a
/// client in another program only needs the same `Request`/`Reply` types and
/// [`NAME`](SharedObject::NAME). `handle` runs on the manager, one request at a
/// time per manager.
///
/// # Examples
///
/// ```
/// use mproc::manager::{Manager, SharedObject};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Default)]
/// struct Counter(u64);
///
/// #[derive(Serialize, Deserialize)]
/// enum CounterOp { Incr(u64), Get }
///
/// impl SharedObject for Counter {
///     const NAME: &'static str = "counter";
///     type Request = CounterOp;
///     type Reply = u64;
///     fn handle(&mut self, op: CounterOp) -> u64 {
///         if let CounterOp::Incr(n) = op { self.0 += n; }
///         self.0
///     }
/// }
///
/// let m = Manager::builder().register::<Counter>().start()?;
/// let c = m.create_shared(Counter::default())?;
/// c.call(CounterOp::Incr(2))?;
/// assert_eq!(c.call(CounterOp::Get)?, 2);
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
pub trait SharedObject: Serialize + DeserializeOwned + Send + 'static {
    /// The name the manager knows the type by.
    const NAME: &'static str;
    /// What clients send.
    type Request: Serialize + DeserializeOwned;
    /// What the object answers.
    type Reply: Serialize + DeserializeOwned;
    /// Handles one request.
    fn handle(&mut self, request: Self::Request) -> Self::Reply;
}

/// A proxy to an object of a registered type.
pub struct Shared<T> {
    r: Arc<ObjRef>,
    _t: PhantomData<fn() -> T>,
}

impl<T: SharedObject> super::private::Sealed for Shared<T> {
    fn kind_name() -> String {
        T::NAME.to_string()
    }
    fn from_ref(r: ObjRef) -> Self {
        Shared {
            r: Arc::new(r),
            _t: PhantomData,
        }
    }
    fn obj(&self) -> &ObjRef {
        &self.r
    }
}

impl<T: SharedObject> super::Proxy for Shared<T> {}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            r: self.r.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared({:?})", self.r)
    }
}

impl<T> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.r.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Shared {
            r: Arc::new(ObjRef::deserialize(d)?),
            _t: PhantomData,
        })
    }
}

impl<T: SharedObject> Shared<T> {
    /// Sends `request` to the object and returns its reply.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Function`] if the handler panicked (the object stays as the
    /// panic left it), or the usual manager errors.
    pub fn call(&self, request: T::Request) -> Result<T::Reply, ManagerError> {
        match self.r.op(Op::Call(enc(&request)?))? {
            Reply::Value(Some(b)) => dec(&b),
            r => Err(unexpected(r)),
        }
    }
}

struct Erased<T>(T);

impl<T: SharedObject> ErasedShared for Erased<T> {
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, String> {
        let req: T::Request =
            postcard::from_bytes(request).map_err(|e| format!("cannot decode the request: {e}"))?;
        let reply = self.0.handle(req);
        postcard::to_stdvec(&reply).map_err(|e| format!("cannot encode the reply: {e}"))
    }
}

fn factory<T: SharedObject>(init: &[u8]) -> Result<Box<dyn ErasedShared>, String> {
    let t: T =
        postcard::from_bytes(init).map_err(|e| format!("cannot decode the initial value: {e}"))?;
    Ok(Box::new(Erased(t)))
}

/// The task that registers `T` in the server process (it travels to the server as
/// an entry point within this executable).
pub(crate) struct Registration<T>(PhantomData<fn() -> T>);

impl<T> Serialize for Registration<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de, T> Deserialize<'de> for Registration<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        Ok(Registration(PhantomData))
    }
}

impl<T: SharedObject> SelfRunning for Registration<T> {
    type Output = ();
    fn run_self(self) {
        super::server::register_factory(T::NAME, factory::<T>);
    }
}
