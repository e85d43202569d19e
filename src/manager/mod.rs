//! Shared objects served by a manager process: Python's `multiprocessing.Manager()`
//! and `BaseManager(address, authkey)`, typed and without pickle.
//!
//! A [`Manager`] is a server process that holds ordinary objects (a [`Dict`], a
//! [`List`], a [`Namespace`], a [`Value`], a [`Queue`], locks, events, barriers,
//! your own types) and hands every other process a *proxy* to them. Proxies are
//! handles: cheap to clone, `Send + Sync`, and they travel to child processes as
//! arguments, through pipes and queues. Every call on a proxy is a request to the
//! manager.
//!
//! ```
//! use mproc::manager::Manager;
//! use mproc::process::Process;
//!
//! fn worker((d, n): (mproc::manager::Dict<String, Vec<u32>>, u32)) {
//!     // Nested objects work: this changes the list the manager holds.
//!     let seen: mproc::manager::List<u32> = d.get_list("seen").unwrap();
//!     seen.append(n).unwrap();
//!     // An atomic update, run on the manager (a plain function, no captures).
//!     d.update_with("runs".into(), |r| vec![r.map_or(0, |r| r[0]) + 1]).unwrap();
//! }
//!
//! let m = Manager::start()?;
//! let d = m.dict::<String, Vec<u32>>()?;
//! d.set_shared("seen".into(), &m.list::<u32>()?)?;
//! let kids: Vec<_> = (1..=3).map(|n| Process::start(worker, (d.clone(), n))).collect::<Result<_, _>>()?;
//! for k in kids { k.join()?; }
//! let mut seen = d.get("seen")?.unwrap(); // a nested list reads as a Vec
//! seen.sort();
//! assert_eq!(seen, vec![1, 2, 3]);
//! assert_eq!(d.get("runs")?, Some(vec![3]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Use a manager for state that many processes read and change and that is not
//! plain data: dicts, lists, queues of serde values. For plain numbers and arrays
//! [`shm`](crate::shm) is far faster (no server in between); for a lock or an event
//! between processes of one machine, [`sync`](crate::sync) needs no server either.
//!
//! # Values and keys
//!
//! Values are serde types, stored on the manager in their encoded form (postcard):
//! the server never knows `K` or `V`. A dict compares and hashes its keys **by their
//! encoding**: two keys are the same key when they encode to the same bytes. For
//! strings, integers, tuples and derived structs that is ordinary equality; it is
//! not for floats (`0.0` and `-0.0` are two keys, a `NaN` equals itself) or for
//! types whose encoding depends on more than their value (a `HashMap` used as a key
//! encodes in iteration order). `List::remove` compares the same way. `str` and
//! `String` (and `[T]`/`Vec<T>`) encode alike, so lookups may borrow.
//!
//! # Nested objects
//!
//! A dict value, list item or namespace field can be another shared object:
//! [`Dict::set_shared`] stores a reference, [`Dict::get_list`] (and `get_dict`,
//! `get_shared`) returns a proxy to it, and changes through that proxy are seen by
//! everyone. Read with a plain [`Dict::get`], a nested list, dict or value reads as
//! its current contents (`Vec<T>`, a map, `T`).
//!
//! # Atomic updates
//!
//! [`Dict::update_with`] and [`Value::update_with`] run a plain function (no
//! captures) on the manager, holding its lock: no lost update. The function travels
//! by address within one executable, so only a manager started by this program and
//! reached over its private socket runs it; over TCP or a Unix-socket address the
//! same call falls back to a compare-and-set loop on the client (still atomic, with
//! retries under contention).
//!
//! # Speed
//!
//! A client of a manager started by [`Manager::start`] sends its requests through
//! a pair of shared-memory queues (set up over the private socket, which stays open
//! only to tell that each side lives): no socket round trip per call, as both
//! sides poll their queue for a few tens of microseconds before they sleep. Every
//! call waits for the manager's reply, as Python's do, so
//! a value set is seen by every process once `set` returns. For many writes from
//! one thread, [`Dict::set_pipelined`] does not wait: the manager still carries out
//! each thread's requests in order (so the thread reads its own writes), a failure
//! is reported by the thread's next call or by [`Dict::flush`], and over TCP the
//! request travels in the same segment as the call after it.
//!
//! # Across machines
//!
//! [`Manager::serve`] listens on a TCP (or Unix-socket) address with an
//! authentication key; [`Manager::connect`] reaches it from another process or
//! machine. Both sides prove the key with an HMAC-SHA256 challenge–response before
//! anything else is read, and over TCP the session is then encrypted and
//! authenticated (Noise, keyed from the authkey): a frame that was modified,
//! replayed or reordered ends the connection. The wire carries data only.
//!
//! With feature `tls`, a manager can serve mutual TLS instead, for users who already
//! have certificates: `Builder::tls` on the server, `Manager::connect_tls` on
//! clients, with the key still proved inside the TLS session (see `TlsConfig`).
//!
//! # Caveats
//!
//! - **Drop**: dropping the [`Manager`] that started the server shuts it down (as
//!   [`Manager::shutdown`] does); every proxy then fails with
//!   [`ManagerError::Disconnected`]. A manager reached with [`Manager::connect`]
//!   is not shut down by its drop.
//! - **Manager death**: if the server process dies, every proxy call returns
//!   `Disconnected` within about 50 ms, never a hang.
//! - **Client death**: when every connection of a client process closes, the
//!   manager frees the locks it held (the next acquirer gets `OwnerDied`) and drops
//!   its references to objects.
//! - **Parent death**: the server process dies with the process that started it.
//! - **Lifetime of objects**: an object lives while a proxy to it exists in a
//!   connected process, a container refers to it, or it has a name. A proxy that is
//!   serialized but never deserialized keeps its object alive until shutdown.
//! - **Blocking functions**: an `update_with` function or a registered type's
//!   handler runs while the manager's table is locked: keep it short.

mod auth;
mod budget;
mod client;
mod collections;
mod custom;
mod error;
mod locks;
mod objects;
mod proto;
mod queues;
mod server;
mod table;
#[cfg(feature = "tls")]
mod tls;
mod transport;

#[doc(hidden)]
pub mod fuzz;

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use client::Address;
pub use collections::{Dict, List, Namespace, Value};
pub use custom::{Shared, SharedObject};
pub use error::{LockError, ManagerError};
pub use locks::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock, LockGuard, RLock,
    RLockGuard, Semaphore,
};
pub use queues::{JoinableQueue, Queue};
#[cfg(feature = "tls")]
pub use tls::TlsConfig;

use crate::process::{Process, StartMethod};
use crate::sys::code::EntryPoint;
use client::{Endpoint, ObjRef};
use proto::{Blob, Kind, Reply, Request};

/// The largest request or reply by default (16 MiB).
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// A proxy type: one of the shared object kinds of this module.
///
/// Implemented by [`Dict`], [`List`], [`Namespace`], [`Value`], [`Queue`],
/// [`JoinableQueue`], the locks, [`Event`], [`Condition`], [`Barrier`] and
/// [`Shared`]; used by generic accessors such as [`Dict::get_shared`].
pub trait Proxy: private::Sealed + Sized {}

pub(crate) mod private {
    /// The plumbing behind [`Proxy`](super::Proxy).
    pub trait Sealed {
        /// The server's name for this kind of object.
        fn kind_name() -> String;
        /// Wraps a reference.
        fn from_ref(r: super::client::ObjRef) -> Self;
        /// The reference.
        fn obj(&self) -> &super::client::ObjRef;
    }
}

macro_rules! proxy_impl {
    ($name:literal, $ty:ident $(<$($g:ident),*>)? $(where $($b:tt)*)?) => {
        impl$(<$($g),*>)? crate::manager::private::Sealed for $ty$(<$($g),*>)? $(where $($b)*)? {
            fn kind_name() -> String {
                $name.to_string()
            }
            fn from_ref(r: crate::manager::client::ObjRef) -> Self {
                $ty { r: std::sync::Arc::new(r), _t: std::marker::PhantomData }
            }
            fn obj(&self) -> &crate::manager::client::ObjRef {
                &self.r
            }
        }
        impl$(<$($g),*>)? crate::manager::Proxy for $ty$(<$($g),*>)? $(where $($b)*)? {}
        impl$(<$($g),*>)? Clone for $ty$(<$($g),*>)? {
            fn clone(&self) -> Self {
                $ty { r: self.r.clone(), _t: std::marker::PhantomData }
            }
        }
        impl$(<$($g),*>)? std::fmt::Debug for $ty$(<$($g),*>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), self.r)
            }
        }
        impl$(<$($g),*>)? serde::Serialize for $ty$(<$($g),*>)? {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.r.serialize(s)
            }
        }
        impl<'de, $($($g),*)?> serde::Deserialize<'de> for $ty$(<$($g),*>)? $(where $($b)*)? {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let r = crate::manager::client::ObjRef::deserialize(d)?;
                Ok(<Self as crate::manager::private::Sealed>::from_ref(r))
            }
        }
    };
}
pub(crate) use proxy_impl;

/// Encodes a user value.
pub(crate) fn enc<T: Serialize + ?Sized>(v: &T) -> Result<Blob, ManagerError> {
    postcard::to_stdvec(v)
        .map(Blob)
        .map_err(|e| ManagerError::Codec(format!("cannot encode the value: {e}")))
}

/// Decodes a user value.
pub(crate) fn dec<T: DeserializeOwned>(b: &Blob) -> Result<T, ManagerError> {
    postcard::from_bytes(&b.0).map_err(|e| {
        ManagerError::Codec(format!(
            "cannot decode a {} from the manager's value: {e}",
            std::any::type_name::<T>()
        ))
    })
}

/// A reply of an unexpected shape.
pub(crate) fn unexpected(r: Reply) -> ManagerError {
    ManagerError::Protocol(format!("unexpected reply {r:?}"))
}

impl ObjRef {
    pub(crate) fn op(&self, op: proto::Op) -> Result<Reply, ManagerError> {
        self.ep.call(&Request::Op { id: self.id, op })
    }

    pub(crate) fn pipeline(&self, op: proto::Op) -> Result<(), ManagerError> {
        self.ep.pipeline(Request::Op { id: self.id, op })
    }

    pub(crate) fn unit(&self, op: proto::Op) -> Result<(), ManagerError> {
        match self.op(op)? {
            Reply::Unit => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    pub(crate) fn get_object<P: Proxy>(&self, place: proto::Place) -> Result<P, ManagerError> {
        match self.ep.call(&Request::GetObject {
            id: self.id,
            place,
            expect: P::kind_name(),
        })? {
            Reply::Id(id) => Ok(P::from_ref(ObjRef {
                ep: self.ep.clone(),
                id,
            })),
            r => Err(unexpected(r)),
        }
    }

    pub(crate) fn put_object<P: Proxy>(
        &self,
        place: proto::Place,
        p: &P,
    ) -> Result<(), ManagerError> {
        if !std::sync::Arc::ptr_eq(&self.ep, &p.obj().ep) {
            return Err(ManagerError::Refused(
                "a shared object can only hold objects of the same manager".into(),
            ));
        }
        match self.ep.call(&Request::PutObject {
            id: self.id,
            place,
            target: p.obj().id,
        })? {
            Reply::Unit => Ok(()),
            r => Err(unexpected(r)),
        }
    }
}

/// A manager: a server process holding shared objects, or a connection to one.
///
/// # Examples
///
/// ```
/// use mproc::manager::Manager;
///
/// let m = Manager::start()?;
/// let d = m.dict::<String, u64>()?;
/// d.set("a".into(), 1)?;
/// assert_eq!(d.get("a")?, Some(1));
/// m.shutdown()?;
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
pub struct Manager {
    ep: std::sync::Arc<Endpoint>,
    server: Mutex<Option<Process<()>>>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("address", &self.ep.address)
            .field(
                "owner",
                &self.server.lock().map(|s| s.is_some()).unwrap_or(false),
            )
            .finish()
    }
}

/// Configures and starts a [`Manager`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mproc::manager::Manager;
/// use mproc::process::StartMethod;
///
/// let m = Manager::builder()
///     .start_method(StartMethod::Fork)
///     .max_frame(1 << 20)
///     .idle_timeout(Duration::from_secs(600))
///     .start()?;
/// assert!(m.list::<u8>()?.is_empty()?);
/// # Ok::<(), mproc::manager::ManagerError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    method: Option<StartMethod>,
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    max_frame: usize,
    handshake_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_connections: usize,
    registrations: Vec<(String, EntryPoint)>,
    #[cfg(feature = "tls")]
    tls: Option<TlsConfig>,
    #[cfg(feature = "tls")]
    tls_client: Option<TlsConfig>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            method: None,
            address: None,
            authkey: None,
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: None,
            max_connections: 1024,
            registrations: Vec::new(),
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            tls_client: None,
        }
    }
}

impl Builder {
    /// How the server process is started (default: the crate's default,
    /// [`StartMethod::Forkserver`]).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Where the server listens (default: a private abstract Unix socket). A TCP
    /// address with port 0 picks a free port: see [`Manager::address`].
    pub fn address(mut self, address: impl Into<Address>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The authentication key (default: 32 random bytes, which proxies carry to
    /// the processes they are sent to).
    pub fn authkey(mut self, key: impl AsRef<[u8]>) -> Self {
        self.authkey = Some(key.as_ref().to_vec());
        self
    }

    /// The largest request or reply, in bytes (default [`DEFAULT_MAX_FRAME`]).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes.clamp(1 << 10, u32::MAX as usize);
        self
    }

    /// How long a new connection may take to authenticate (default 5 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Close connections that send nothing for this long (default: never for the
    /// private socket; 10 minutes for TCP and Unix-socket addresses). Proxies
    /// reconnect by themselves.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The most connections open at once (default 1024); more are closed at once.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Registers a user type, so that [`Manager::create_shared`] can make objects of it on
    /// this manager (Python's `BaseManager.register`, typed).
    pub fn register<T: SharedObject>(mut self) -> Self {
        self.registrations.push((
            T::NAME.to_string(),
            EntryPoint::for_task::<custom::Registration<T>>(),
        ));
        self
    }

    /// Serves mutual TLS instead of Noise (feature `tls`; the address must be TCP):
    /// clients must present a certificate that chains to `server.ca`, and connect
    /// with [`Manager::connect_tls`]. The authentication key is still proved by both
    /// sides, inside the TLS session.
    ///
    /// The handle that [`start`](Self::start) returns talks to its server over TLS
    /// too, as a client: with the material of [`tls_client`](Self::tls_client) if
    /// given, else with `server`'s own (which works when the server's certificate is
    /// also valid for client authentication under `server.ca`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, server: TlsConfig) -> Self {
        self.tls = Some(server);
        self
    }

    /// The certificates the handle that starts a TLS server connects with (feature
    /// `tls`; see [`tls`](Self::tls)).
    #[cfg(feature = "tls")]
    pub fn tls_client(mut self, client: TlsConfig) -> Self {
        self.tls_client = Some(client);
        self
    }

    /// Starts the server process.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Start`] when the address cannot be bound or the process
    /// cannot be started; [`ManagerError::Tls`] for TLS settings on an address that
    /// is not TCP.
    pub fn start(self) -> Result<Manager, ManagerError> {
        #[cfg(feature = "tls")]
        let tls_client = match &self.tls {
            None => None,
            Some(server) => {
                if !matches!(self.address, Some(Address::Tcp(_))) {
                    return Err(ManagerError::Tls(
                        "TLS is served on TCP addresses only: give the builder a TCP address"
                            .into(),
                    ));
                }
                server.server_side()?;
                Some(self.tls_client.as_ref().unwrap_or(server).client_side()?)
            }
        };
        let key = match self.authkey {
            Some(k) => k,
            None => auth::random::<32>()
                .map_err(|e| ManagerError::Start(e.to_string()))?
                .to_vec(),
        };
        let instance: u32 = u32::from_le_bytes(
            auth::random::<4>().map_err(|e| ManagerError::Start(e.to_string()))?,
        ) | 1;
        let private = self.address.is_none();
        let (address, fd, tcp) = match self.address {
            None | Some(Address::Local(_)) => {
                let tag: [u8; 8] =
                    auth::random().map_err(|e| ManagerError::Start(e.to_string()))?;
                let name = format!(
                    "mproc-manager-{}-{:016x}",
                    std::process::id(),
                    u64::from_le_bytes(tag)
                );
                let l = crate::sys::abstract_socket::bind(name.as_bytes()).map_err(|e| {
                    ManagerError::Start(format!("cannot listen on a private socket: {e}"))
                })?;
                (Address::Local(name), std::os::fd::OwnedFd::from(l), false)
            }
            Some(Address::Unix(path)) => {
                let l = std::os::unix::net::UnixListener::bind(&path).map_err(|e| {
                    ManagerError::Start(format!("cannot listen on {}: {e}", path.display()))
                })?;
                (Address::Unix(path), std::os::fd::OwnedFd::from(l), false)
            }
            Some(Address::Tcp(a)) => {
                let l = std::net::TcpListener::bind(a)
                    .map_err(|e| ManagerError::Start(format!("cannot listen on {a}: {e}")))?;
                let bound = l
                    .local_addr()
                    .map_err(|e| ManagerError::Start(e.to_string()))?;
                (Address::Tcp(bound), std::os::fd::OwnedFd::from(l), true)
            }
        };
        let idle = self.idle_timeout.or(if private {
            None
        } else {
            Some(Duration::from_secs(600))
        });
        let args = server::ServerArgs {
            listener: server::ListenerFd(fd),
            tcp,
            key: key.clone(),
            config: server::ServerConfig {
                max_frame: self.max_frame,
                handshake_timeout: self.handshake_timeout,
                idle_timeout: idle,
                max_connections: self.max_connections,
                functions: private,
                #[cfg(feature = "tls")]
                tls: self.tls,
            },
            instance,
            registrations: self.registrations,
        };
        let mut b = Process::builder();
        b.name("mproc-manager").daemon(true);
        if let Some(m) = self.method {
            b.start_method(m);
        }
        let process = b
            .start(server::run, args)
            .map_err(|e| ManagerError::Start(e.to_string()))?;
        Ok(Manager {
            ep: Endpoint::intern_with(
                address,
                &key,
                self.max_frame,
                #[cfg(feature = "tls")]
                tls_client,
            ),
            server: Mutex::new(Some(process)),
        })
    }
}

impl Manager {
    /// Starts a manager process with the default settings, as Python's
    /// `multiprocessing.Manager()` does.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Start`] when the process cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = mproc::manager::Manager::start()?;
    /// let v = m.value(41u32)?;
    /// v.set(42)?;
    /// assert_eq!(v.get()?, 42);
    /// # Ok::<(), mproc::manager::ManagerError>(())
    /// ```
    pub fn start() -> Result<Manager, ManagerError> {
        Builder::default().start()
    }

    /// A builder for a manager with other settings.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Starts a manager process serving `address` (TCP or Unix socket) to clients
    /// that know `authkey`; this handle owns it (drop shuts it down).
    ///
    /// # Errors
    ///
    /// As [`Builder::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::manager::Manager;
    ///
    /// let server = Manager::serve("127.0.0.1:0".parse::<std::net::SocketAddr>()?, b"secret")?;
    /// let client = Manager::connect(server.address().clone(), b"secret")?;
    /// let q = client.named_queue::<String>("jobs")?;
    /// q.put("hello".into())?;
    /// assert_eq!(server.named_queue::<String>("jobs")?.get()?, "hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serve(
        address: impl Into<Address>,
        authkey: impl AsRef<[u8]>,
    ) -> Result<Manager, ManagerError> {
        Builder::default().address(address).authkey(authkey).start()
    }

    /// Connects to a manager serving `address`, proving `authkey`.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Authentication`] for a wrong key, `Disconnected` when
    /// nothing answers.
    pub fn connect(
        address: impl Into<Address>,
        authkey: impl AsRef<[u8]>,
    ) -> Result<Manager, ManagerError> {
        let ep = Endpoint::intern(address.into(), authkey.as_ref(), DEFAULT_MAX_FRAME);
        ep.functions()?;
        Ok(Manager {
            ep,
            server: Mutex::new(None),
        })
    }

    /// Connects to a manager serving mutual TLS at `address` (feature `tls`; see
    /// [`Builder::tls`]), presenting `tls`'s certificate and proving `authkey`
    /// inside the TLS session. Proxies made through this handle carry `tls` (and the
    /// key) to the processes they are sent to.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Authentication`] when either side's certificate is not
    /// trusted by the other, or the key is wrong; `Disconnected` when nothing
    /// answers; [`ManagerError::Tls`] for unusable TLS material or an address that
    /// is not TCP.
    #[cfg(feature = "tls")]
    pub fn connect_tls(
        address: impl Into<Address>,
        authkey: impl AsRef<[u8]>,
        tls: TlsConfig,
    ) -> Result<Manager, ManagerError> {
        let address = address.into();
        if !matches!(address, Address::Tcp(_)) {
            return Err(ManagerError::Tls(format!(
                "TLS is served on TCP addresses only, not at {address}"
            )));
        }
        let ep = Endpoint::intern_with(
            address,
            authkey.as_ref(),
            DEFAULT_MAX_FRAME,
            Some(tls.client_side()?),
        );
        ep.functions()?;
        Ok(Manager {
            ep,
            server: Mutex::new(None),
        })
    }

    /// Starts a manager, runs `f` with it, and shuts it down (Python's
    /// `with Manager() as m:`).
    ///
    /// # Errors
    ///
    /// A start or shutdown failure.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = mproc::manager::Manager::scope(|m| {
    ///     let l = m.list::<u32>()?;
    ///     l.extend([1, 2, 3])?;
    ///     l.len()
    /// })??;
    /// assert_eq!(n, 3);
    /// # Ok::<(), mproc::manager::ManagerError>(())
    /// ```
    pub fn scope<R>(f: impl FnOnce(&Manager) -> R) -> Result<R, ManagerError> {
        let m = Manager::start()?;
        let r = f(&m);
        m.shutdown()?;
        Ok(r)
    }

    /// The server's process id, for a manager this handle started.
    pub fn pid(&self) -> Option<u32> {
        self.server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|p| p.pid())
    }

    /// How many objects the manager holds now (for tests and monitoring).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = mproc::manager::Manager::start()?;
    /// let d = m.dict::<u8, u8>()?;
    /// assert_eq!(m.object_count()?, 1);
    /// drop(d); // the last proxy: the manager frees the dict
    /// assert_eq!(m.object_count()?, 0);
    /// # Ok::<(), mproc::manager::ManagerError>(())
    /// ```
    pub fn object_count(&self) -> Result<usize, ManagerError> {
        match self.ep.call(&Request::Stats)? {
            Reply::Len(n) => Ok(n as usize),
            r => Err(unexpected(r)),
        }
    }

    /// The address the manager listens on.
    pub fn address(&self) -> &Address {
        &self.ep.address
    }

    /// Stops the server process (for a manager this handle started) and waits for
    /// it; every proxy then fails with [`ManagerError::Disconnected`]. For a
    /// connected manager, only closes this handle.
    ///
    /// # Errors
    ///
    /// `Disconnected` if the server had already died (it is reaped anyway).
    pub fn shutdown(self) -> Result<(), ManagerError> {
        self.stop()
    }

    fn stop(&self) -> Result<(), ManagerError> {
        let process = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(process) = process else {
            return Ok(());
        };
        let asked = self.ep.call_once(&Request::Shutdown);
        match process.join_timeout(Duration::from_secs(5)) {
            Ok(()) => asked.map(|_| ()),
            Err(e) => {
                if let Some(p) = e.into_inner() {
                    let _ = p.kill();
                    let _ = p.join();
                }
                asked.map(|_| ())
            }
        }
    }

    fn create<P: Proxy>(&self, kind: Kind) -> Result<P, ManagerError> {
        match self.ep.call(&Request::Create(kind))? {
            Reply::Id(id) => Ok(P::from_ref(ObjRef {
                ep: self.ep.clone(),
                id,
            })),
            r => Err(unexpected(r)),
        }
    }

    fn named<P: Proxy>(&self, name: &str, kind: Kind) -> Result<P, ManagerError> {
        match self.ep.call(&Request::Named {
            name: name.to_string(),
            kind,
        })? {
            Reply::Id(id) => Ok(P::from_ref(ObjRef {
                ep: self.ep.clone(),
                id,
            })),
            r => Err(unexpected(r)),
        }
    }

    /// A new, empty shared dict.
    pub fn dict<K, V>(&self) -> Result<Dict<K, V>, ManagerError> {
        self.create(Kind::Dict)
    }

    /// A new, empty shared list.
    pub fn list<T>(&self) -> Result<List<T>, ManagerError> {
        self.create(Kind::List)
    }

    /// A new, empty namespace.
    pub fn namespace(&self) -> Result<Namespace, ManagerError> {
        self.create(Kind::Namespace)
    }

    /// A new shared value.
    pub fn value<T: Serialize>(&self, init: T) -> Result<Value<T>, ManagerError> {
        self.create(Kind::Value(enc(&init)?))
    }

    /// A new unbounded queue.
    pub fn queue<T>(&self) -> Result<Queue<T>, ManagerError> {
        self.create(Kind::Queue {
            maxsize: None,
            joinable: false,
        })
    }

    /// A new queue holding at most `maxsize` items.
    pub fn bounded_queue<T>(&self, maxsize: usize) -> Result<Queue<T>, ManagerError> {
        self.create(Kind::Queue {
            maxsize: Some(maxsize as u64),
            joinable: false,
        })
    }

    /// A new joinable queue (`task_done`/`join`).
    pub fn joinable_queue<T>(&self) -> Result<JoinableQueue<T>, ManagerError> {
        self.create(Kind::Queue {
            maxsize: None,
            joinable: true,
        })
    }

    /// A new lock.
    pub fn lock(&self) -> Result<Lock, ManagerError> {
        self.create(Kind::Lock)
    }

    /// A new reentrant lock.
    pub fn rlock(&self) -> Result<RLock, ManagerError> {
        self.create(Kind::RLock)
    }

    /// A new semaphore with `value` permits.
    pub fn semaphore(&self, value: u32) -> Result<Semaphore, ManagerError> {
        self.create(Kind::Semaphore { value, bound: None })
    }

    /// A new semaphore that may not be released above `value`.
    pub fn bounded_semaphore(&self, value: u32) -> Result<BoundedSemaphore, ManagerError> {
        self.create(Kind::Semaphore {
            value,
            bound: Some(value),
        })
    }

    /// A new event (not set).
    pub fn event(&self) -> Result<Event, ManagerError> {
        self.create(Kind::Event)
    }

    /// A new condition variable with its own reentrant lock.
    pub fn condition(&self) -> Result<Condition, ManagerError> {
        self.create(Kind::Condition)
    }

    /// A new barrier for `parties` waiters.
    pub fn barrier(&self, parties: u32) -> Result<Barrier, ManagerError> {
        self.create(Kind::Barrier { parties })
    }

    /// A new object of a registered type (see [`Builder::register`]).
    ///
    /// # Errors
    ///
    /// [`ManagerError::Refused`] if the manager has no type registered under
    /// `T::NAME`.
    pub fn create_shared<T: SharedObject>(&self, init: T) -> Result<Shared<T>, ManagerError> {
        self.create(Kind::Custom {
            type_name: T::NAME.to_string(),
            init: enc(&init)?,
        })
    }

    /// The dict registered under `name`, created empty if there is none: how
    /// clients of a remote manager find the same object.
    pub fn named_dict<K, V>(&self, name: &str) -> Result<Dict<K, V>, ManagerError> {
        self.named(name, Kind::Dict)
    }

    /// The list registered under `name` (created empty if there is none).
    pub fn named_list<T>(&self, name: &str) -> Result<List<T>, ManagerError> {
        self.named(name, Kind::List)
    }

    /// The namespace registered under `name` (created empty if there is none).
    pub fn named_namespace(&self, name: &str) -> Result<Namespace, ManagerError> {
        self.named(name, Kind::Namespace)
    }

    /// The value registered under `name` (created with `init` if there is none).
    pub fn named_value<T: Serialize>(&self, name: &str, init: T) -> Result<Value<T>, ManagerError> {
        self.named(name, Kind::Value(enc(&init)?))
    }

    /// The unbounded queue registered under `name` (created if there is none).
    pub fn named_queue<T>(&self, name: &str) -> Result<Queue<T>, ManagerError> {
        self.named(
            name,
            Kind::Queue {
                maxsize: None,
                joinable: false,
            },
        )
    }

    /// The lock registered under `name` (created if there is none).
    pub fn named_lock(&self, name: &str) -> Result<Lock, ManagerError> {
        self.named(name, Kind::Lock)
    }

    /// The event registered under `name` (created if there is none).
    pub fn named_event(&self, name: &str) -> Result<Event, ManagerError> {
        self.named(name, Kind::Event)
    }

    /// The object of a registered type under `name` (created from `init` if there
    /// is none).
    pub fn named_shared<T: SharedObject>(
        &self,
        name: &str,
        init: T,
    ) -> Result<Shared<T>, ManagerError> {
        self.named(
            name,
            Kind::Custom {
                type_name: T::NAME.to_string(),
                init: enc(&init)?,
            },
        )
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
