//! The client side: connections to a manager (pooled per process), and the
//! reference that every proxy holds.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ManagerError;
use super::auth::HandshakeError;
use super::proto::{self, Fault, ObjId, Reply, Request};
use super::transport::{Channel, RecvError, Stream};
use crate::queue::{Bytes, Queue};

/// Where a manager listens.
///
/// # Examples
///
/// ```
/// use mproc::manager::Address;
///
/// let a: Address = "127.0.0.1:5000".parse::<std::net::SocketAddr>()?.into();
/// assert_eq!(a.to_string(), "tcp://127.0.0.1:5000");
/// assert_eq!(Address::unix("/tmp/m.sock").to_string(), "unix:/tmp/m.sock");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Address {
    /// A private socket in Linux's abstract namespace, named by the manager (what
    /// [`Manager::start`](super::Manager::start) uses). Requests may come by shared
    /// memory, and `update_with` functions are accepted.
    Local(String),
    /// A Unix socket at a path, for clients on this machine.
    Unix(PathBuf),
    /// A TCP address; the session is encrypted and authenticated (Noise).
    Tcp(SocketAddr),
}

impl Address {
    /// A Unix-socket address at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Address {
        Address::Unix(path.into())
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Address {
        Address::Tcp(a)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Local(n) => write!(f, "local:@{n}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// How long a client waits for a reply between checks that the manager lives.
const LIVENESS_SLICE: Duration = Duration::from_millis(50);
/// A TCP connection silent this long is probed; a peer that vanished is noticed
/// about a minute later (a reply that is merely slow, such as a long lock wait, is
/// not: the peer's kernel answers the probes).
pub(crate) const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Connection set-up limit (connect and handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the manager.
struct Conn {
    chan: Channel,
    /// Local connections send requests through shared memory.
    shm: Option<(Queue<Bytes>, Queue<Bytes>)>,
}

impl Conn {
    fn call(&mut self, req: Vec<u8>, address: &Address) -> Result<Vec<u8>, ManagerError> {
        let gone = |reason: String| ManagerError::Disconnected {
            address: address.to_string(),
            reason,
        };
        if let Some((requests, replies)) = &self.shm {
            requests
                .put(Bytes(req))
                .map_err(|e| gone(format!("cannot send the request: {e}")))?;
            if let Some(b) = poll_queue(replies) {
                return Ok(b.0);
            }
            loop {
                match replies.get_timeout(LIVENESS_SLICE) {
                    Ok(b) => return Ok(b.0),
                    Err(e) if e.is_timeout() => {
                        if peer_gone(&self.chan.stream) {
                            return Err(gone("the manager process ended".into()));
                        }
                    }
                    Err(e) => return Err(gone(format!("the reply channel broke: {e}"))),
                }
            }
        }
        self.chan
            .send(&req)
            .map_err(|e| gone(format!("cannot send the request: {e}")))?;
        self.recv(address)
    }

    fn recv(&mut self, address: &Address) -> Result<Vec<u8>, ManagerError> {
        let gone = |reason: String| ManagerError::Disconnected {
            address: address.to_string(),
            reason,
        };
        loop {
            match self.chan.recv() {
                Ok(b) => return Ok(b),
                Err(RecvError::Idle) => {
                    if peer_gone(&self.chan.stream) {
                        return Err(gone("the manager closed the connection".into()));
                    }
                }
                Err(RecvError::Closed) => {
                    return Err(gone("the manager closed the connection".into()));
                }
                Err(RecvError::Protocol(e)) => return Err(ManagerError::Protocol(e)),
                Err(RecvError::Io(e)) => return Err(gone(e.to_string())),
            }
        }
    }
}

/// How long a waiter polls a queue (yielding the CPU between looks) before it
/// sleeps: a reply usually comes within a few microseconds, and on a busy machine
/// yielding lets the other side run instead of spinning against it.
const POLL_BUDGET: Duration = Duration::from_micros(60);

/// Takes an item if one arrives within [`POLL_BUDGET`].
pub(crate) fn poll_queue(q: &Queue<Bytes>) -> Option<Bytes> {
    if let Ok(b) = q.try_get() {
        return Some(b);
    }
    let start = std::time::Instant::now();
    while start.elapsed() < POLL_BUDGET {
        std::thread::yield_now();
        if let Ok(b) = q.try_get() {
            return Some(b);
        }
    }
    None
}

/// Whether the other end of `stream` has closed (without consuming data).
pub(crate) fn peer_gone(stream: &Stream) -> bool {
    crate::sys::abstract_socket::peer_closed(stream.as_fd())
}

struct EpState {
    pid: u32,
    session: u64,
    idle: Vec<Conn>,
    /// Whether the manager runs functions sent by address (known once connected).
    functions: Option<bool>,
}

/// One manager as seen from this process: its address, key and pooled connections.
pub(crate) struct Endpoint {
    pub(crate) address: Address,
    pub(crate) key: Arc<[u8]>,
    pub(crate) max_frame: usize,
    state: Mutex<EpState>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.address)
    }
}

static ENDPOINTS: Mutex<Vec<Weak<Endpoint>>> = Mutex::new(Vec::new());

fn new_session() -> u64 {
    let r: [u8; 8] = super::auth::random().unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        (t ^ ((std::process::id() as u64) << 32)).to_le_bytes()
    });
    u64::from_le_bytes(r)
}

impl Endpoint {
    /// The endpoint for (`address`, `key`) in this process, shared by all proxies.
    pub(crate) fn intern(address: Address, key: &[u8], max_frame: usize) -> Arc<Endpoint> {
        let mut all = ENDPOINTS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        for w in all.iter() {
            if let Some(ep) = w.upgrade()
                && ep.address == address
                && *ep.key == *key
            {
                return ep;
            }
        }
        let ep = Arc::new(Endpoint {
            address,
            key: key.into(),
            max_frame,
            state: Mutex::new(EpState {
                pid: std::process::id(),
                session: new_session(),
                idle: Vec::new(),
                functions: None,
            }),
        });
        all.push(Arc::downgrade(&ep));
        ep
    }

    fn gone(&self, reason: impl Into<String>) -> ManagerError {
        ManagerError::Disconnected {
            address: self.address.to_string(),
            reason: reason.into(),
        }
    }

    fn checkout(&self) -> Result<Conn, ManagerError> {
        self.checkout_with(true)
    }

    fn checkout_with(&self, shm: bool) -> Result<Conn, ManagerError> {
        let (session, pid) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let me = std::process::id();
            if st.pid != me {
                // A forked child: the connections are the parent's; leave them be.
                for c in st.idle.drain(..) {
                    std::mem::forget(c);
                }
                st.pid = me;
                st.session = new_session();
            }
            while let Some(c) = st.idle.pop() {
                if !peer_gone(&c.chan.stream) {
                    return Ok(c);
                }
            }
            (st.session, st.pid)
        };
        let (conn, functions) = self.connect(session, pid, shm)?;
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .functions = Some(functions);
        Ok(conn)
    }

    fn checkin(&self, conn: Conn) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.pid == std::process::id() {
            st.idle.push(conn);
        } else {
            std::mem::forget(conn);
        }
    }

    fn connect(&self, session: u64, pid: u32, shm: bool) -> Result<(Conn, bool), ManagerError> {
        let io_gone = |e: io::Error| self.gone(format!("cannot connect: {e}"));
        let stream = match &self.address {
            Address::Local(name) => Stream::Unix(
                crate::sys::abstract_socket::connect(name.as_bytes()).map_err(io_gone)?,
            ),
            Address::Unix(p) => Stream::Unix(UnixStream::connect(p).map_err(io_gone)?),
            Address::Tcp(a) => {
                let s = TcpStream::connect_timeout(a, CONNECT_TIMEOUT).map_err(io_gone)?;
                let _ = s.set_nodelay(true);
                let _ = crate::sys::abstract_socket::tcp_keepalive(s.as_fd(), KEEPALIVE_IDLE);
                Stream::Tcp(s)
            }
        };
        let _ = stream.set_read_timeout(Some(CONNECT_TIMEOUT));
        let _ = stream.set_write_timeout(Some(CONNECT_TIMEOUT));
        let chan = Channel::client(stream, &self.key, self.max_frame).map_err(|e| match e {
            HandshakeError::Rejected(reason) => ManagerError::Authentication {
                address: self.address.to_string(),
                reason,
            },
            HandshakeError::Io(e) => self.gone(format!("the handshake failed: {e}")),
        })?;
        let mut conn = Conn { chan, shm: None };
        let hello = proto::encode(&Request::Hello { session, pid });
        let welcome = conn.call(hello, &self.address)?;
        let functions = match proto::decode::<Reply>(&welcome) {
            Ok(Reply::Welcome { functions, .. }) => functions,
            _ => {
                return Err(ManagerError::Protocol(
                    "the manager did not welcome us".into(),
                ));
            }
        };
        // Liveness checks from here on; replies may take as long as a wait.
        let _ = conn.chan.stream.set_read_timeout(Some(LIVENESS_SLICE));
        let _ = conn
            .chan
            .stream
            .set_write_timeout(Some(Duration::from_secs(30)));
        if shm && matches!(self.address, Address::Local(_)) && functions {
            let ack = conn.call(proto::encode(&Request::UseSharedMemory), &self.address)?;
            if let Ok(Reply::Unit) = proto::decode::<Reply>(&ack) {
                let make = || {
                    Queue::<Bytes>::builder()
                        .byte_capacity(4 * self.max_frame.max(1 << 16))
                        .max_message_size(self.max_frame.max(1 << 15) + 64)
                        .build()
                };
                let requests =
                    make().map_err(|e| ManagerError::io("cannot create the request queue", e))?;
                let replies =
                    make().map_err(|e| ManagerError::io("cannot create the reply queue", e))?;
                let msg = crate::codec::encode(&(&requests, &replies))
                    .map_err(|e| ManagerError::Codec(e.to_string()))?;
                let fds: Vec<_> = msg.fds.iter().map(|f| f.as_fd()).collect();
                crate::wire::send(conn.chan.stream.as_fd(), &msg.bytes, &fds).map_err(|e| {
                    self.gone(format!("cannot hand over the shared-memory channel: {e}"))
                })?;
                conn.shm = Some((requests, replies));
            }
        }
        Ok((conn, functions))
    }

    /// Drops a reference over an idle connection, if there is one.
    fn release(&self, id: ObjId) {
        let conn = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.pid != std::process::id() {
                return;
            }
            st.idle.pop()
        };
        let Some(mut conn) = conn else { return };
        if conn
            .call(proto::encode(&Request::Release(id)), &self.address)
            .is_ok()
        {
            self.checkin(conn);
        }
    }

    /// Whether the manager runs functions sent by address (`update_with`).
    pub(crate) fn functions(&self) -> Result<bool, ManagerError> {
        if let Some(f) = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .functions
        {
            return Ok(f);
        }
        let c = self.checkout()?;
        self.checkin(c);
        Ok(self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .functions
            .unwrap_or(false))
    }

    /// Sends one request over a pooled connection if there is one, else over a new
    /// plain (socket-only) connection that is closed after: for one-off requests
    /// such as a shutdown, which need no shared-memory channel set up.
    pub(crate) fn call_once(&self, req: &Request) -> Result<Reply, ManagerError> {
        let idle = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.pid == std::process::id() {
                st.idle.pop()
            } else {
                None
            }
        };
        let (mut conn, pooled) = match idle {
            Some(c) if !peer_gone(&c.chan.stream) => (c, true),
            _ => (self.checkout_with(false)?, false),
        };
        let reply = conn.call(proto::encode(req), &self.address)?;
        if pooled {
            self.checkin(conn);
        }
        match proto::decode::<Reply>(&reply) {
            Ok(Reply::Fault(f)) => Err(fault_error(f)),
            Ok(r) => Ok(r),
            Err(e) => Err(ManagerError::Protocol(e)),
        }
    }

    /// Sends `req` and waits for its reply; a `Fault` becomes an error.
    pub(crate) fn call(&self, req: &Request) -> Result<Reply, ManagerError> {
        let bytes = proto::encode(req);
        if bytes.len() > self.max_frame {
            return Err(ManagerError::TooLarge {
                what: "request",
                size: bytes.len(),
                limit: self.max_frame,
            });
        }
        let mut conn = self.checkout()?;
        let reply = conn.call(bytes, &self.address)?;
        self.checkin(conn);
        match proto::decode::<Reply>(&reply) {
            Ok(Reply::Fault(f)) => Err(fault_error(f)),
            Ok(r) => Ok(r),
            Err(e) => Err(ManagerError::Protocol(e)),
        }
    }
}

pub(crate) fn fault_error(f: Fault) -> ManagerError {
    match f {
        Fault::ObjectGone(id) => ManagerError::ObjectGone { id },
        Fault::WrongKind { expected, found } => ManagerError::WrongKind { expected, found },
        Fault::KeyNotFound => ManagerError::KeyNotFound,
        Fault::IndexOutOfRange { index, len } => ManagerError::IndexOutOfRange { index, len },
        Fault::ValueNotFound => ManagerError::ValueNotFound,
        Fault::Empty(what) if what.contains("list") => ManagerError::Empty("the list"),
        Fault::Empty(_) => ManagerError::Empty("the queue"),
        Fault::Full => ManagerError::Full,
        Fault::Timeout => ManagerError::Timeout,
        Fault::NotOwner => ManagerError::NotOwner,
        Fault::SemaphoreOverflow(b) => ManagerError::SemaphoreOverflow(b),
        Fault::BrokenBarrier => ManagerError::BrokenBarrier,
        Fault::Refused(s) => ManagerError::Refused(s),
        Fault::Function(s) => ManagerError::Function(s),
        Fault::BadRequest(s) => ManagerError::Protocol(s),
        Fault::ShuttingDown => ManagerError::Disconnected {
            address: "the manager".into(),
            reason: "it is shutting down".into(),
        },
    }
}

/// A thread's identity for lock ownership, unique within this process.
pub(crate) fn thread_tag() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TAG: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TAG.with(|t| *t)
}

/// A counted reference to one object on a manager: what every proxy holds.
///
/// Serializing it (to pass a proxy to another process) retains the object on the
/// manager until the receiving process deserializes it.
pub struct ObjRef {
    pub(crate) ep: Arc<Endpoint>,
    pub(crate) id: ObjId,
}

impl fmt::Debug for ObjRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:x} at {}", self.id, self.ep.address)
    }
}

impl Drop for ObjRef {
    fn drop(&mut self) {
        // Only over a connection already open: a manager that is gone has nothing to
        // free, and a drop must not wait for a connection attempt.
        self.ep.release(self.id);
    }
}

#[derive(Serialize, Deserialize)]
struct ProxyWire {
    address: Address,
    key: Vec<u8>,
    max_frame: u64,
    id: ObjId,
}

impl Serialize for ObjRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.ep
            .call(&Request::Retain(self.id))
            .map_err(|e| serde::ser::Error::custom(format!("cannot send a manager proxy: {e}")))?;
        ProxyWire {
            address: self.ep.address.clone(),
            key: self.ep.key.to_vec(),
            max_frame: self.ep.max_frame as u64,
            id: self.id,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ObjRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = ProxyWire::deserialize(d)?;
        let ep = Endpoint::intern(
            w.address,
            &w.key,
            w.max_frame.min(usize::MAX as u64) as usize,
        );
        // If the manager is gone, the proxy's calls will say so.
        let _ = ep.call(&Request::Adopt(w.id));
        Ok(ObjRef { ep, id: w.id })
    }
}
