//! The client side: connections to a manager (pooled per process), and the
//! reference that every proxy holds.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ManagerError;
use super::auth::HandshakeError;
use super::proto::{self, Fault, ObjId, Reply, Request};
use super::transport::{Channel, RecvError, Stream};
use crate::queue::{Bytes, PutTimeoutError, Queue};
use crate::sys::pthread::cached_pid;

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
    /// A TCP address; the session is encrypted and authenticated (Noise, or mutual
    /// TLS when the manager has certificates: feature `tls`).
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
    /// Pipelined requests sent whose replies have not been read yet (the server
    /// answers a connection's requests in order).
    unread: usize,
    /// The first failure among pipelined requests, not reported yet.
    deferred: Option<ManagerError>,
    /// When the connection was last known to work: a connection used moments ago
    /// is not probed again before the next request.
    last_used: Instant,
}

/// Most pipelined requests in flight on one connection; the next one first reads
/// the replies that are there (the server holds back at most as many).
const MAX_UNREAD: usize = 64;

/// A pooled connection idle at least this long is checked before reuse (one
/// `recv` probe), so that a manager restarted at the same address is reconnected
/// to instead of reported gone; a busy connection skips the probe.
const PROBE_AFTER: Duration = Duration::from_millis(5);

impl Conn {
    fn new(chan: Channel) -> Conn {
        Conn {
            chan,
            shm: None,
            unread: 0,
            deferred: None,
            last_used: Instant::now(),
        }
    }

    /// Sends a request; `more` when it is pipelined (more requests follow).
    fn send(&mut self, req: Vec<u8>, more: bool, address: &Address) -> Result<(), ManagerError> {
        let res = match &self.shm {
            Some((requests, _)) => {
                // Pipelined requests may fill the queue; while it is full, the
                // socket tells whether the manager still lives to empty it.
                let mut item = Bytes(req);
                loop {
                    match requests.put_timeout(item, LIVENESS_SLICE) {
                        Ok(()) => break Ok(()),
                        Err(PutTimeoutError::Timeout(back)) => {
                            if peer_gone(&self.chan.stream) {
                                break Err("the manager process ended".to_string());
                            }
                            item = back;
                        }
                        Err(e) => break Err(e.to_string()),
                    }
                }
            }
            None if more => self.chan.send_more(&req).map_err(|e| e.to_string()),
            None => self.chan.send(&req).map_err(|e| e.to_string()),
        };
        res.map_err(|e| ManagerError::Disconnected {
            address: address.to_string(),
            reason: format!("cannot send the request: {e}"),
        })
    }

    /// One request and its reply (after the replies to earlier pipelined
    /// requests, whose first failure is kept in `deferred`).
    fn call(&mut self, req: Vec<u8>, address: &Address) -> Result<Vec<u8>, ManagerError> {
        self.send(req, false, address)?;
        while self.unread > 0 {
            let r = self.recv(address)?;
            self.unread -= 1;
            self.note_pipelined(&r);
        }
        let r = self.recv(address)?;
        self.last_used = Instant::now();
        Ok(r)
    }

    /// Reads the replies to every pipelined request sent so far.
    fn read_unread(&mut self, address: &Address) -> Result<(), ManagerError> {
        if self.unread > 0 && self.shm.is_none() {
            // They may still be held back in this side's kernel (`send_more`).
            self.chan.push();
        }
        while self.unread > 0 {
            let r = self.recv(address)?;
            self.unread -= 1;
            self.note_pipelined(&r);
        }
        self.last_used = Instant::now();
        Ok(())
    }

    /// Reads the pipelined replies already there, without waiting.
    fn read_ready(&mut self, address: &Address) -> Result<(), ManagerError> {
        while self.unread > 0 {
            let r = match &self.shm {
                Some((_, replies)) => match replies.try_get() {
                    Ok(b) => b.0,
                    Err(_) => return Ok(()),
                },
                None if self.chan.has_buffered() => self.recv(address)?,
                None => return Ok(()),
            };
            self.unread -= 1;
            self.note_pipelined(&r);
        }
        Ok(())
    }

    fn note_pipelined(&mut self, reply: &[u8]) {
        let err = match proto::decode::<Reply>(reply) {
            Ok(Reply::Fault(f)) => fault_error(f),
            Ok(_) => return,
            Err(e) => ManagerError::Protocol(e),
        };
        if self.deferred.is_none() {
            self.deferred = Some(ManagerError::Pipelined(Box::new(err)));
        }
    }

    fn recv(&mut self, address: &Address) -> Result<Vec<u8>, ManagerError> {
        let gone = |reason: String| ManagerError::Disconnected {
            address: address.to_string(),
            reason,
        };
        if let Some((_, replies)) = &self.shm {
            if let Some(b) = poll_queue(replies) {
                return Ok(b.0);
            }
            // Then the queue's own wait; between sleeps, a look at the socket tells
            // whether the manager lives.
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
/// yielding lets the other side run instead of spinning against it (measured: the
/// queue's own pause-based spin made a round trip four times slower on a loaded
/// 2-CPU machine).
const POLL_BUDGET: Duration = Duration::from_micros(60);

/// Takes an item if one arrives within [`POLL_BUDGET`].
pub(crate) fn poll_queue(q: &Queue<Bytes>) -> Option<Bytes> {
    if let Ok(b) = q.try_get() {
        return Some(b);
    }
    let start = Instant::now();
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
    /// The process the pooled connections belong to (a forked child leaves its
    /// parent's alone).
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
    /// Mutual TLS settings, for a manager that serves TLS.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::tls::ClientSide>,
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
        Endpoint::intern_with(
            address,
            key,
            max_frame,
            #[cfg(feature = "tls")]
            None,
        )
    }

    /// The endpoint for (`address`, `key`, TLS settings) in this process.
    pub(crate) fn intern_with(
        address: Address,
        key: &[u8],
        max_frame: usize,
        #[cfg(feature = "tls")] tls: Option<super::tls::ClientSide>,
    ) -> Arc<Endpoint> {
        let mut all = ENDPOINTS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        for w in all.iter() {
            if let Some(ep) = w.upgrade()
                && ep.address == address
                && *ep.key == *key
            {
                #[cfg(feature = "tls")]
                if ep.tls.as_ref().map(|t| &t.material) != tls.as_ref().map(|t| &t.material) {
                    continue;
                }
                return ep;
            }
        }
        let ep = Arc::new(Endpoint {
            address,
            key: key.into(),
            max_frame,
            #[cfg(feature = "tls")]
            tls,
            state: Mutex::new(EpState {
                pid: cached_pid(),
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

    /// A connection for this thread: the one holding its pipelined requests, if
    /// any (so that its calls travel in order on one connection), else a pooled
    /// one, else a new one.
    fn checkout(self: &Arc<Self>) -> Result<Conn, ManagerError> {
        if let Some(c) = take_mine(self) {
            return Ok(c);
        }
        self.checkout_with(true)
    }

    fn checkout_with(&self, shm: bool) -> Result<Conn, ManagerError> {
        let (session, pid) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let me = cached_pid();
            if st.pid != me {
                // A forked child: the connections are the parent's; leave them be.
                for c in st.idle.drain(..) {
                    std::mem::forget(c);
                }
                st.pid = me;
                st.session = new_session();
            }
            while let Some(c) = st.idle.pop() {
                if !stale(&c) {
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

    /// Gives a connection back: to the pool, or, while replies to pipelined
    /// requests (or a failure among them) are still to be read, to this thread, so
    /// that its next calls follow them on the same connection.
    fn checkin(self: &Arc<Self>, conn: Conn) {
        if conn.unread == 0 && conn.deferred.is_none() {
            self.pool(conn);
        } else if let Some(prev) = put_mine(self, conn) {
            self.pool(prev);
        }
    }

    fn pool(&self, conn: Conn) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.pid == cached_pid() {
            st.idle.push(conn);
        } else {
            std::mem::forget(conn);
        }
    }

    fn connect(&self, session: u64, pid: u32, shm: bool) -> Result<(Conn, bool), ManagerError> {
        let io_gone = |e: io::Error| self.gone(format!("cannot connect: {e}"));
        let refused = |e| match e {
            HandshakeError::Rejected(reason) => ManagerError::Authentication {
                address: self.address.to_string(),
                reason,
            },
            HandshakeError::Io(e) => self.gone(format!("the handshake failed: {e}")),
        };
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
        let chan = match (stream, &self.address) {
            #[cfg(feature = "tls")]
            (Stream::Tcp(tcp), Address::Tcp(peer)) if self.tls.is_some() => {
                let tls = self.tls.as_ref().expect("checked");
                Channel::client_tls(tcp, *peer, tls, &self.key, self.max_frame)
            }
            (stream, _) => Channel::client(stream, &self.key, self.max_frame),
        }
        .map_err(refused)?;
        let mut conn = Conn::new(chan);
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

    /// Drops a reference over an open connection, if there is one (pipelined: a
    /// release has nothing to report).
    fn release(self: &Arc<Self>, id: ObjId) {
        let conn = take_mine(self).or_else(|| {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.pid != cached_pid() {
                return None;
            }
            st.idle.pop()
        });
        let Some(mut conn) = conn else { return };
        if stale(&conn) {
            return;
        }
        // A release cannot fail on the manager (releasing what is not held does
        // nothing), so it is pipelined without a look at earlier failures.
        let bytes = proto::encode(&Request::Release(id));
        if conn.unread >= MAX_UNREAD && conn.read_unread(&self.address).is_err() {
            return;
        }
        if conn.send(bytes, true, &self.address).is_ok() {
            conn.unread += 1;
            self.checkin(conn);
        }
    }

    /// Whether the manager runs functions sent by address (`update_with`).
    pub(crate) fn functions(self: &Arc<Self>) -> Result<bool, ManagerError> {
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

    /// Sends one request over this thread's or a pooled connection if there is
    /// one, else over a new plain (socket-only) connection that is closed after:
    /// for one-off requests such as a shutdown, which need no shared-memory channel
    /// set up.
    pub(crate) fn call_once(self: &Arc<Self>, req: &Request) -> Result<Reply, ManagerError> {
        let open = take_mine(self).or_else(|| {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.pid == cached_pid() {
                st.idle.pop()
            } else {
                None
            }
        });
        let (mut conn, pooled) = match open {
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

    fn encode_checked(&self, req: &Request) -> Result<Vec<u8>, ManagerError> {
        let bytes = proto::encode(req);
        if bytes.len() > self.max_frame {
            return Err(ManagerError::TooLarge {
                what: "request",
                size: bytes.len(),
                limit: self.max_frame,
            });
        }
        Ok(bytes)
    }

    /// Sends `req` and waits for its reply; a `Fault` becomes an error.
    ///
    /// A failure of an earlier pipelined request of this thread, already known,
    /// is reported instead, and `req` is not sent; one that becomes known with this
    /// reply is kept for the next call (a call's own result is never dropped).
    pub(crate) fn call(self: &Arc<Self>, req: &Request) -> Result<Reply, ManagerError> {
        let bytes = self.encode_checked(req)?;
        let mut conn = self.checkout()?;
        conn.read_ready(&self.address)?;
        if let Some(e) = conn.deferred.take() {
            self.checkin(conn);
            return Err(e);
        }
        let reply = conn.call(bytes, &self.address)?;
        self.checkin(conn);
        match proto::decode::<Reply>(&reply) {
            Ok(Reply::Fault(f)) => Err(fault_error(f)),
            Ok(r) => Ok(r),
            Err(e) => Err(ManagerError::Protocol(e)),
        }
    }

    /// Sends `req` without waiting for its reply (whose failure the thread's next
    /// call or [`flush`](Self::flush) reports).
    pub(crate) fn pipeline(self: &Arc<Self>, req: Request) -> Result<(), ManagerError> {
        let mut conn = self.checkout()?;
        let r = self.pipeline_on(&mut conn, req);
        // A connection that broke (gone, or a garbled reply) is dropped.
        if matches!(
            r,
            Ok(()) | Err(ManagerError::Pipelined(_) | ManagerError::TooLarge { .. })
        ) {
            self.checkin(conn);
        }
        r
    }

    fn pipeline_on(&self, conn: &mut Conn, req: Request) -> Result<(), ManagerError> {
        let bytes = self.encode_checked(&req)?;
        conn.read_ready(&self.address)?;
        if let Some(e) = conn.deferred.take() {
            return Err(e);
        }
        if conn.unread >= MAX_UNREAD {
            conn.read_unread(&self.address)?;
            if let Some(e) = conn.deferred.take() {
                return Err(e);
            }
        }
        conn.send(bytes, true, &self.address)?;
        conn.unread += 1;
        Ok(())
    }

    /// Waits for the replies to this thread's pipelined requests; the first that
    /// failed is the error.
    pub(crate) fn flush(self: &Arc<Self>) -> Result<(), ManagerError> {
        let Some(mut conn) = take_mine(self) else {
            return Ok(());
        };
        let r = conn.read_unread(&self.address);
        let deferred = conn.deferred.take();
        if r.is_ok() {
            self.checkin(conn);
        }
        r?;
        deferred.map_or(Ok(()), Err)
    }
}

/// Whether a connection may be broken: idle a while and its peer closed.
fn stale(c: &Conn) -> bool {
    c.last_used.elapsed() >= PROBE_AFTER && peer_gone(&c.chan.stream)
}

/// This thread's connection to an endpoint, for as long as the process that
/// opened it runs it (a forked child's copy is forgotten, never closed: closing
/// would tear down the parent's shared-memory channel state).
struct Mine {
    ep: Weak<Endpoint>,
    pid: u32,
    /// `None` while the thread uses it.
    conn: Option<Conn>,
}

impl Drop for Mine {
    fn drop(&mut self) {
        let Some(c) = self.conn.take() else { return };
        if self.pid != cached_pid() {
            std::mem::forget(c);
        } else if let Some(ep) = self.ep.upgrade() {
            // The thread is ending: its connection goes to the pool, for the
            // process's other threads.
            ep.pool(c);
        }
    }
}

thread_local! {
    static MINE: RefCell<Vec<Mine>> = const { RefCell::new(Vec::new()) };
}

fn mine_of<'a>(m: &'a mut [Mine], ep: &Arc<Endpoint>, me: u32) -> Option<&'a mut Mine> {
    m.iter_mut()
        .find(|x| x.pid == me && std::ptr::eq(x.ep.as_ptr(), Arc::as_ptr(ep)))
}

/// Takes this thread's connection to `ep`, if it has one.
fn take_mine(ep: &Arc<Endpoint>) -> Option<Conn> {
    MINE.try_with(|m| mine_of(&mut m.borrow_mut(), ep, cached_pid())?.conn.take())
        .ok()
        .flatten()
}

/// Makes `conn` this thread's connection to `ep`; returns the one it replaces
/// (or `conn` itself while the thread is exiting).
fn put_mine(ep: &Arc<Endpoint>, conn: Conn) -> Option<Conn> {
    let me = cached_pid();
    let mut conn = Some(conn);
    let r = MINE.try_with(|m| {
        let mut m = m.borrow_mut();
        if let Some(x) = mine_of(&mut m, ep, me) {
            return std::mem::replace(&mut x.conn, conn.take());
        }
        // Entries of endpoints gone from this process, or of a parent process.
        m.retain(|x| x.ep.strong_count() > 0 && x.pid == me);
        m.push(Mine {
            ep: Arc::downgrade(ep),
            pid: me,
            conn: conn.take(),
        });
        None
    });
    r.unwrap_or(conn)
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
    #[cfg(feature = "tls")]
    tls: Option<super::tls::TlsConfig>,
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
            #[cfg(feature = "tls")]
            tls: self.ep.tls.as_ref().map(|t| t.material.clone()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ObjRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = ProxyWire::deserialize(d)?;
        #[cfg(feature = "tls")]
        let tls = match w.tls {
            Some(t) => Some(t.client_side().map_err(serde::de::Error::custom)?),
            None => None,
        };
        let ep = Endpoint::intern_with(
            w.address,
            &w.key,
            w.max_frame.min(usize::MAX as u64) as usize,
            #[cfg(feature = "tls")]
            tls,
        );
        // If the manager is gone, the proxy's calls will say so.
        let _ = ep.call(&Request::Adopt(w.id));
        Ok(ObjRef { ep, id: w.id })
    }
}
