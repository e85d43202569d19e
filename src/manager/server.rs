//! The manager server: a process that holds the objects and serves one thread per
//! connection.
//!
//! All objects sit in one table behind one mutex; operations that wait (a lock, a
//! queue, an event, a barrier) wait on one condition variable, in slices, checking
//! between slices that their client is still connected. A client process is a
//! *session*: it may hold many connections (one per thread using the manager at
//! once). When the last one closes (the process exited or was killed), the session
//! ends: the locks it held are freed and marked "owner died", and its references to
//! objects are dropped.
//!
//! About 1,050 lines: the server loop, the connection and shared-memory request
//! paths and the waiting operations stay together because they share the server's
//! mutex and condition variable and its rules for noticing a departed client; the
//! object table and the operations that never wait are in `table`.

use std::collections::HashMap;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::objects::{ErasedShared, LockState, Object, Owner, Slot, resolve_index};
use super::proto::{self, Blob, Fault, ObjId, Op, Place, Reply, Request};
use super::table::{State, dict, option_bytes, refuse_function, run_function, wrong};
use super::transport::{Channel, RecvError, Stream};
use crate::codec::Message;
use crate::queue::{Bytes, Queue};
use crate::sys::code::EntryPoint;

/// Most replies held back for a batch on one connection.
const MAX_OUTSTANDING: usize = 64;

/// How long a waiting operation sleeps before it checks its client is still there.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// A listening socket handed to the server process.
pub(crate) struct ListenerFd(pub(crate) OwnedFd);

impl Serialize for ListenerFd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::codec::serialize_fd(self.0.as_fd(), s)
    }
}

impl<'de> Deserialize<'de> for ListenerFd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::codec::deserialize_fd(d).map(ListenerFd)
    }
}

/// Limits and behaviour of a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServerConfig {
    pub(crate) max_frame: usize,
    pub(crate) handshake_timeout: Duration,
    /// A connection with no request for this long is closed (`None`: never).
    pub(crate) idle_timeout: Option<Duration>,
    /// Most connections open at once.
    pub(crate) max_connections: usize,
    /// Whether this listener's clients may send functions by address (only for
    /// the private listener of a manager started by this executable).
    pub(crate) functions: bool,
    /// Mutual TLS instead of Noise over TCP (feature `tls`).
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::tls::TlsConfig>,
}

/// Everything the server process starts from.
#[derive(Serialize, Deserialize)]
pub(crate) struct ServerArgs {
    pub(crate) listener: ListenerFd,
    pub(crate) tcp: bool,
    pub(crate) key: Vec<u8>,
    pub(crate) config: ServerConfig,
    pub(crate) instance: u32,
    pub(crate) registrations: Vec<(String, EntryPoint)>,
}

pub(crate) type Factory = fn(&[u8]) -> Result<Box<dyn ErasedShared>, String>;

static REGISTRY: Mutex<Option<HashMap<String, Factory>>> = Mutex::new(None);

/// Registers a user type's factory in this (server) process.
pub(crate) fn register_factory(name: &str, f: Factory) {
    REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(name.to_string(), f);
}

pub(super) fn make_custom(name: &str, init: &[u8]) -> Result<Box<dyn ErasedShared>, Fault> {
    let f = REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(name).copied())
        .ok_or_else(|| {
            Fault::Refused(format!("type {name:?} is not registered with this manager"))
        })?;
    f(init).map_err(|e| Fault::BadRequest(format!("cannot build a {name}: {e}")))
}

pub(crate) struct Server {
    state: Mutex<State>,
    changed: Condvar,
    instance: u32,
    shutdown: AtomicBool,
    connections: Mutex<usize>,
}

/// What the server knows about the connection a request came on.
pub(crate) struct Ctx<'a> {
    pub(super) session: u64,
    pid: u32,
    functions: bool,
    alive: &'a dyn Fn() -> bool,
}

impl Ctx<'_> {
    pub(super) fn owner(&self, thread: u64) -> Owner {
        Owner {
            session: self.session,
            thread,
            pid: self.pid,
        }
    }
}

/// The server process's entry point: serves until a `Shutdown` request.
pub(crate) fn run(args: ServerArgs) {
    crate::sys::process::ignore_sigpipe();
    // The shared-memory queues rely on membarrier(2); registering costs an RCU grace
    // period (milliseconds) once a process has threads, nothing before.
    crate::sys::barrier::register();
    for (name, ep) in &args.registrations {
        if let Err(e) = ep.invoke(Message::default()) {
            log::error!("manager: cannot register type {name:?}: {e}");
        }
    }
    let server = Arc::new(Server::new(args.instance));
    let key: Arc<[u8]> = args.key.into();
    #[cfg(feature = "tls")]
    let tls = match args
        .config
        .tls
        .as_ref()
        .map(|t| t.server_side())
        .transpose()
    {
        Ok(t) => t.map(Arc::new),
        Err(e) => {
            // The builder checked the material before it started this process.
            log::error!("manager: {e}");
            return;
        }
    };
    let config = Arc::new(args.config);
    let listener = args.listener.0;
    let shutdown_fd = crate::sys::socket::dup(listener.as_fd()).ok();
    let stop = {
        let server = server.clone();
        Arc::new(move || {
            server.shutdown.store(true, Ordering::SeqCst);
            if let Some(fd) = &shutdown_fd {
                let _ = crate::sys::stream::shutdown(fd.as_fd(), true);
            }
        })
    };
    let accept = |stream: io::Result<Stream>| -> bool {
        if server.shutdown.load(Ordering::SeqCst) {
            return false;
        }
        let Ok(stream) = stream else {
            return !server.shutdown.load(Ordering::SeqCst);
        };
        {
            let mut n = server.connections.lock().unwrap_or_else(|e| e.into_inner());
            if *n >= config.max_connections {
                log::warn!("manager: connection refused: {} open, the limit", *n);
                return true;
            }
            *n += 1;
        }
        let (server, key, config, stop) =
            (server.clone(), key.clone(), config.clone(), stop.clone());
        #[cfg(feature = "tls")]
        let tls = tls.clone();
        let spawned = std::thread::Builder::new()
            .name("mproc-manager-conn".into())
            .spawn(move || {
                #[cfg(feature = "tls")]
                let stream = match (stream, tls) {
                    (Stream::Tcp(tcp), Some(tls)) => Accepted::Tls(tcp, tls),
                    (stream, _) => Accepted::Plain(stream),
                };
                serve_connection(&server, stream, &key, &config, &*stop);
                *server.connections.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
            });
        if spawned.is_err() {
            log::error!("manager: cannot start a connection thread");
        }
        true
    };
    if args.tcp {
        let l = TcpListener::from(listener);
        for s in l.incoming() {
            let s = s.map(|s| {
                let _ = s.set_nodelay(true);
                let _ = crate::sys::abstract_socket::tcp_keepalive(
                    s.as_fd(),
                    super::client::KEEPALIVE_IDLE,
                );
                Stream::Tcp(s)
            });
            if !accept(s) {
                break;
            }
        }
    } else {
        let l = UnixListener::from(listener);
        for s in l.incoming() {
            if !accept(s.map(Stream::Unix)) {
                break;
            }
        }
    }
}

use super::client::peer_gone;

/// A connection as accepted: a stream, or (feature `tls`) a TCP connection that
/// must first complete the TLS handshake.
#[cfg(feature = "tls")]
enum Accepted {
    Plain(Stream),
    Tls(std::net::TcpStream, Arc<super::tls::ServerSide>),
}

#[cfg(feature = "tls")]
impl Accepted {
    fn set_timeouts(&self, t: Duration) {
        let _ = match self {
            Accepted::Plain(s) => s
                .set_read_timeout(Some(t))
                .and_then(|()| s.set_write_timeout(Some(t))),
            Accepted::Tls(s, _) => s
                .set_read_timeout(Some(t))
                .and_then(|()| s.set_write_timeout(Some(t))),
        };
    }

    fn handshake(
        self,
        key: &[u8],
        max_frame: usize,
    ) -> Result<Channel, super::auth::HandshakeError> {
        match self {
            Accepted::Plain(s) => Channel::server(s, key, max_frame),
            Accepted::Tls(tcp, tls) => Channel::server_tls(tcp, &tls, key, max_frame),
        }
    }
}

#[cfg(not(feature = "tls"))]
type Accepted = Stream;

#[cfg(not(feature = "tls"))]
impl Stream {
    fn set_timeouts(&self, t: Duration) {
        let _ = self.set_read_timeout(Some(t));
        let _ = self.set_write_timeout(Some(t));
    }

    fn handshake(
        self,
        key: &[u8],
        max_frame: usize,
    ) -> Result<Channel, super::auth::HandshakeError> {
        Channel::server(self, key, max_frame)
    }
}

fn serve_connection(
    server: &Server,
    stream: Accepted,
    key: &[u8],
    config: &ServerConfig,
    stop: &dyn Fn(),
) {
    stream.set_timeouts(config.handshake_timeout);
    let mut chan = match stream.handshake(key, config.max_frame) {
        Ok(c) => c,
        Err(e) => {
            log::info!("manager: handshake failed: {e:?}");
            return;
        }
    };
    // Hello comes first.
    let (session, pid) = match chan.recv().map(|b| proto::decode::<Request>(&b)) {
        Ok(Ok(Request::Hello { session, pid })) => (session, pid),
        _ => return,
    };
    let _ = chan.stream.set_read_timeout(config.idle_timeout);
    let _ = chan.stream.set_write_timeout(Some(Duration::from_secs(30)));
    server.session_open(session, pid);
    let welcome = proto::encode(&Reply::Welcome {
        instance: server.instance,
        functions: config.functions,
    });
    if chan.send(&welcome).is_ok() {
        serve_requests(server, &mut chan, config, session, pid, stop);
    }
    chan.stream.shutdown();
    server.session_close(session);
}

fn serve_requests(
    server: &Server,
    chan: &mut Channel,
    config: &ServerConfig,
    session: u64,
    pid: u32,
    stop: &dyn Fn(),
) {
    let mut out = Vec::new();
    let mut pending = 0usize;
    loop {
        let bytes = match chan.recv() {
            Ok(b) => b,
            Err(RecvError::Idle) => {
                log::info!(
                    "manager: closing a connection idle for {:?}",
                    config.idle_timeout
                );
                return;
            }
            Err(RecvError::Closed) => return,
            Err(RecvError::Protocol(e)) => {
                log::warn!("manager: dropping a connection: {e}");
                return;
            }
            Err(RecvError::Io(e)) => {
                log::info!("manager: connection error: {e}");
                return;
            }
        };
        let req = match proto::decode::<Request>(&bytes) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("manager: dropping a connection that sent a bad request: {e}");
                let reply = Reply::Fault(Fault::BadRequest(e));
                let _ = chan.send(&proto::encode(&reply));
                return;
            }
        };
        if let Request::UseSharedMemory = req {
            if chan.is_encrypted() || !config.functions {
                let _ = chan.send(&proto::encode(&Reply::Fault(Fault::Refused(
                    "shared-memory channels are for local clients".into(),
                ))));
                continue;
            }
            if chan.send(&proto::encode(&Reply::Unit)).is_ok() {
                serve_shared_memory(server, chan, session, pid, config, stop);
            }
            return;
        }
        let shutting = matches!(req, Request::Shutdown);
        let reply = {
            let stream = &chan.stream;
            let alive = || !peer_gone(stream);
            let ctx = Ctx {
                session,
                pid,
                functions: config.functions && !chan.is_encrypted(),
                alive: &alive,
            };
            server.handle(&ctx, req)
        };
        if chan
            .seal(&reply_bytes(&reply, config.max_frame), &mut out)
            .is_err()
        {
            return;
        }
        pending += 1;
        // Replies to pipelined requests go out together, but never more than
        // `MAX_OUTSTANDING` (or 1 MiB) are held back: a client that sends and never
        // reads fills its socket, and then the write timeout ends the connection.
        if shutting || !chan.has_buffered() || pending >= MAX_OUTSTANDING || out.len() > 1 << 20 {
            pending = 0;
            if chan.send_sealed(&out).is_err() {
                return;
            }
            out.clear();
        }
        if shutting {
            stop();
            return;
        }
    }
}

/// A local client's requests arrive on a shared-memory queue; the socket stays open
/// only to tell that the client is alive.
fn serve_shared_memory(
    server: &Server,
    chan: &mut Channel,
    session: u64,
    pid: u32,
    config: &ServerConfig,
    stop: &dyn Fn(),
) {
    let _ = chan.stream.set_read_timeout(Some(config.handshake_timeout));
    let Ok(msg) = crate::wire::recv(chan.stream.as_fd(), 4096) else {
        return;
    };
    let Some(msg) = msg else { return };
    let Ok((requests, replies)) = crate::codec::decode::<(Queue<Bytes>, Queue<Bytes>)>(msg) else {
        return;
    };
    let stream = &chan.stream;
    let alive = || !peer_gone(stream);
    let mut idle = Duration::ZERO;
    loop {
        let got = match super::client::poll_queue(&requests) {
            Some(b) => Ok(b),
            None => requests.get_timeout(WAIT_SLICE),
        };
        let bytes = match got {
            Ok(b) => b,
            Err(_) => {
                if server.shutdown.load(Ordering::Relaxed) || !alive() {
                    return;
                }
                idle += WAIT_SLICE;
                if config.idle_timeout.is_some_and(|t| idle >= t) {
                    return;
                }
                continue;
            }
        };
        idle = Duration::ZERO;
        let req = match proto::decode::<Request>(&bytes) {
            Ok(r) => r,
            Err(e) => {
                let _ = replies.try_put(Bytes(proto::encode(&Reply::Fault(Fault::BadRequest(e)))));
                return;
            }
        };
        let shutting = matches!(req, Request::Shutdown);
        let ctx = Ctx {
            session,
            pid,
            functions: true,
            alive: &alive,
        };
        let reply = server.handle(&ctx, req);
        // A client has at most `MAX_UNREAD` requests in flight and reads their
        // replies before it sends more, so the queue has room; one that does not
        // read gets its connection closed.
        if replies
            .try_put(Bytes(reply_bytes(&reply, config.max_frame)))
            .is_err()
        {
            return;
        }
        if shutting {
            stop();
            return;
        }
    }
}

/// A reply's encoding; one over the frame limit becomes an error the client can
/// act on (read in parts) instead of a dropped connection.
fn reply_bytes(reply: &Reply, max_frame: usize) -> Vec<u8> {
    let bytes = proto::encode(reply);
    if bytes.len() <= max_frame {
        return bytes;
    }
    proto::encode(&Reply::Fault(Fault::Refused(format!(
        "the reply of {} bytes is over the frame limit of {max_frame} bytes; read it in parts \
         (a slice of a list, one key of a dict) or raise the manager's max_frame",
        bytes.len()
    ))))
}

fn timeout_deadline(ms: Option<u64>) -> Option<Instant> {
    ms.and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)))
}

enum Waited {
    Ready,
    TimedOut,
    ClientGone,
    ShuttingDown,
}

impl Server {
    fn new(instance: u32) -> Server {
        Server {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            instance,
            shutdown: AtomicBool::new(false),
            connections: Mutex::new(0),
        }
    }

    /// A server with no listener, for feeding requests in tests.
    pub(crate) fn for_fuzzing() -> Server {
        Server::new(1)
    }

    /// Handles `req` as if from a remote client (no functions by address).
    pub(crate) fn handle_for_fuzzing(&self, req: Request) -> Reply {
        let alive = || false;
        let ctx = Ctx {
            session: 1,
            pid: 1,
            functions: false,
            alive: &alive,
        };
        self.handle(&ctx, req)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn session_open(&self, session: u64, pid: u32) {
        let mut st = self.lock();
        let s = st.sessions.entry(session).or_default();
        s.pid = pid;
        s.conns += 1;
    }

    fn session_close(&self, session: u64) {
        let mut st = self.lock();
        let Some(s) = st.sessions.get_mut(&session) else {
            return;
        };
        s.conns -= 1;
        if s.conns > 0 {
            return;
        }
        let s = st.sessions.remove(&session).expect("present");
        // Free the locks the dead client held.
        for entry in st.objects.values_mut() {
            let lock = match &mut entry.object {
                Object::Lock(l) | Object::RLock(l) => l,
                Object::Condition { lock, .. } => lock,
                _ => continue,
            };
            if lock.owner.is_some_and(|o| o.session == session) {
                lock.owner = None;
                lock.count = 0;
                lock.died = Some(Some(s.pid));
            }
        }
        for (id, n) in s.holds {
            st.unref(id, n);
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Waits on the shared condition variable until `ready` says so.
    fn wait_until<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        ctx: &Ctx<'_>,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&mut State) -> Result<bool, Fault>,
    ) -> (MutexGuard<'a, State>, Result<Waited, Fault>) {
        loop {
            match ready(&mut st) {
                Ok(true) => return (st, Ok(Waited::Ready)),
                Ok(false) => {}
                Err(f) => return (st, Err(f)),
            }
            let now = Instant::now();
            let slice = match deadline {
                Some(d) if d <= now => return (st, Ok(Waited::TimedOut)),
                Some(d) => (d - now).min(WAIT_SLICE),
                None => WAIT_SLICE,
            };
            let (g, res) = self
                .changed
                .wait_timeout(st, slice)
                .unwrap_or_else(|e| e.into_inner());
            st = g;
            if self.shutdown.load(Ordering::Relaxed) {
                return (st, Ok(Waited::ShuttingDown));
            }
            if res.timed_out() {
                drop(st);
                let alive = (ctx.alive)();
                st = self.lock();
                if !alive {
                    return (st, Ok(Waited::ClientGone));
                }
            }
        }
    }

    pub(crate) fn handle(&self, ctx: &Ctx<'_>, req: Request) -> Reply {
        match self.handle_inner(ctx, req) {
            Ok(r) => r,
            Err(f) => Reply::Fault(f),
        }
    }

    fn handle_inner(&self, ctx: &Ctx<'_>, req: Request) -> Result<Reply, Fault> {
        match req {
            Request::Hello { .. } | Request::UseSharedMemory => {
                Err(Fault::BadRequest("unexpected hello".into()))
            }
            Request::Create(kind) => {
                let mut st = self.lock();
                let id = st.create(self.instance, &kind)?;
                st.hold(ctx.session, id);
                Ok(Reply::Id(id))
            }
            Request::Named { name, kind } => {
                let mut st = self.lock();
                let id = match st.names.get(&name) {
                    Some(&id) => {
                        let found = st.get(id)?.object.kind_name().to_string();
                        if found != kind.name() {
                            return Err(Fault::WrongKind {
                                expected: kind.name().to_string(),
                                found,
                            });
                        }
                        id
                    }
                    None => {
                        let id = st.create(self.instance, &kind)?;
                        st.names.insert(name, id);
                        st.incref(id, 1);
                        id
                    }
                };
                st.hold(ctx.session, id);
                Ok(Reply::Id(id))
            }
            Request::Retain(id) => {
                let mut st = self.lock();
                st.get(id)?;
                *st.transit.entry(id).or_insert(0) += 1;
                st.incref(id, 1);
                Ok(Reply::Unit)
            }
            Request::Adopt(id) => {
                let mut st = self.lock();
                st.get(id)?;
                st.hold(ctx.session, id);
                if let Some(n) = st.transit.get_mut(&id) {
                    *n -= 1;
                    if *n == 0 {
                        st.transit.remove(&id);
                    }
                    st.unref(id, 1);
                }
                Ok(Reply::Unit)
            }
            Request::Release(id) => {
                let mut st = self.lock();
                let released = match st
                    .sessions
                    .get_mut(&ctx.session)
                    .and_then(|s| s.holds.get_mut(&id))
                {
                    Some(n) => {
                        *n -= 1;
                        if *n == 0 {
                            st.sessions
                                .get_mut(&ctx.session)
                                .expect("present")
                                .holds
                                .remove(&id);
                        }
                        true
                    }
                    None => false,
                };
                if released {
                    st.unref(id, 1);
                }
                Ok(Reply::Unit)
            }
            Request::PutObject { id, place, target } => self.put_ref(id, place, target),
            Request::GetObject { id, place, expect } => {
                let mut st = self.lock();
                let slot = st.slot_at(id, &place)?;
                let Slot::Obj(target) = slot else {
                    return Err(Fault::WrongKind {
                        expected: format!("a shared {expect}"),
                        found: "a plain value".into(),
                    });
                };
                let found = st.get(target)?.object.kind_name().to_string();
                if found != expect {
                    return Err(Fault::WrongKind {
                        expected: expect,
                        found,
                    });
                }
                st.hold(ctx.session, target);
                Ok(Reply::Id(target))
            }
            Request::Shutdown => Ok(Reply::Unit),
            Request::Stats => Ok(Reply::Len(self.lock().objects.len() as u64)),
            Request::Op { id, op } => self.op(ctx, id, op),
        }
    }

    fn op(&self, ctx: &Ctx<'_>, id: ObjId, op: Op) -> Result<Reply, Fault> {
        let mut st = self.lock();
        let mut changed = false;
        let reply = match op {
            Op::Acquire { thread, timeout_ms } => {
                return self.acquire(st, ctx, id, thread, timeout_ms);
            }
            Op::Take { timeout_ms } => return self.take(st, ctx, id, timeout_ms),
            Op::Put { item, timeout_ms } => return self.put(st, ctx, id, item, timeout_ms),
            Op::JoinQueue { timeout_ms } => {
                let deadline = timeout_deadline(timeout_ms);
                let (_st, w) = self.wait_until(st, ctx, deadline, |st| match &st.get(id)?.object {
                    Object::Queue { unfinished, .. } => Ok(*unfinished == 0),
                    o => Err(wrong("joinable queue", o)),
                });
                return waited(w?, Reply::Unit);
            }
            Op::WaitEvent { timeout_ms } => {
                let deadline = timeout_deadline(timeout_ms);
                let (_st, w) = self.wait_until(st, ctx, deadline, |st| match &st.get(id)?.object {
                    Object::Event(flag) => Ok(*flag),
                    o => Err(wrong("event", o)),
                });
                return match w? {
                    Waited::Ready => Ok(Reply::Bool(true)),
                    Waited::TimedOut => Ok(Reply::Bool(false)),
                    Waited::ClientGone | Waited::ShuttingDown => Err(Fault::ShuttingDown),
                };
            }
            Op::CondWait { thread, timeout_ms } => {
                return self.cond_wait(st, ctx, id, thread, timeout_ms);
            }
            Op::BarrierWait { timeout_ms } => return self.barrier_wait(st, ctx, id, timeout_ms),
            Op::UpdateWith(key, ep) => {
                if !ctx.functions {
                    return Err(refuse_function());
                }
                let map = dict(st.get_mut(id)?)?;
                let current = match map.get(&key.0) {
                    None => None,
                    Some(Slot::Data(b)) => Some(b.clone()),
                    Some(Slot::Obj(_)) => {
                        return Err(Fault::WrongKind {
                            expected: "a plain value".into(),
                            found: "a shared object".into(),
                        });
                    }
                };
                let new = run_function(&ep, option_bytes(current.as_deref()))?;
                let map = dict(st.get_mut(id)?)?;
                map.insert(key.0, Slot::Data(new.clone()));
                Reply::Value(Some(Blob(new)))
            }
            Op::ValueUpdateWith(ep) => {
                if !ctx.functions {
                    return Err(refuse_function());
                }
                let Object::Value(v) = &mut st.get_mut(id)?.object else {
                    return Err(wrong("value", &st.get(id)?.object));
                };
                let input = v.clone();
                let new = run_function(&ep, input)?;
                if let Object::Value(v) = &mut st.get_mut(id)?.object {
                    *v = new.clone();
                }
                Reply::Value(Some(Blob(new)))
            }
            op => {
                let (reply, freed, ch) = st.simple_op(id, op, ctx)?;
                changed = ch;
                for f in freed {
                    st.unref(f, 1);
                }
                reply
            }
        };
        drop(st);
        if changed {
            self.changed.notify_all();
        }
        Ok(reply)
    }

    fn acquire(
        &self,
        st: MutexGuard<'_, State>,
        ctx: &Ctx<'_>,
        id: ObjId,
        thread: u64,
        timeout_ms: Option<u64>,
    ) -> Result<Reply, Fault> {
        let me = ctx.owner(thread);
        let deadline = timeout_deadline(timeout_ms);
        let mut died = None;
        let (_st, w) = self.wait_until(st, ctx, deadline, |st| {
            let entry = st.get_mut(id)?;
            match &mut entry.object {
                Object::Lock(l) => Ok(try_take(l, me, false, &mut died)),
                Object::RLock(l) => Ok(try_take(l, me, true, &mut died)),
                Object::Condition { lock, .. } => Ok(try_take(lock, me, true, &mut died)),
                Object::Semaphore { value, .. } => {
                    if *value > 0 {
                        *value -= 1;
                        Ok(true)
                    } else {
                        Ok(false)
                    }
                }
                o => Err(wrong("lock or semaphore", o)),
            }
        });
        match w? {
            Waited::Ready => Ok(match died {
                Some(pid) => Reply::AcquiredOwnerDied { pid },
                None => Reply::Bool(true),
            }),
            Waited::TimedOut => Ok(Reply::Bool(false)),
            Waited::ClientGone | Waited::ShuttingDown => Err(Fault::ShuttingDown),
        }
    }

    fn take(
        &self,
        st: MutexGuard<'_, State>,
        ctx: &Ctx<'_>,
        id: ObjId,
        timeout_ms: Option<u64>,
    ) -> Result<Reply, Fault> {
        let deadline = timeout_deadline(timeout_ms);
        let mut got = None;
        let (st, w) = self.wait_until(st, ctx, deadline, |st| match &mut st.get_mut(id)?.object {
            Object::Queue { items, .. } => {
                got = items.pop_front();
                Ok(got.is_some())
            }
            o => Err(wrong("queue", o)),
        });
        drop(st);
        match w? {
            Waited::Ready => {
                self.changed.notify_all();
                Ok(Reply::Value(got.map(Blob)))
            }
            Waited::TimedOut => Err(Fault::Empty("the queue".into())),
            Waited::ClientGone | Waited::ShuttingDown => Err(Fault::ShuttingDown),
        }
    }

    fn put(
        &self,
        st: MutexGuard<'_, State>,
        ctx: &Ctx<'_>,
        id: ObjId,
        item: Blob,
        timeout_ms: Option<u64>,
    ) -> Result<Reply, Fault> {
        let deadline = timeout_deadline(timeout_ms);
        let mut item = Some(item.0);
        let (st, w) = self.wait_until(st, ctx, deadline, |st| match &mut st.get_mut(id)?.object {
            Object::Queue {
                items,
                maxsize,
                unfinished,
                ..
            } => {
                if maxsize.is_some_and(|m| items.len() as u64 >= m) {
                    return Ok(false);
                }
                items.push_back(item.take().expect("put once"));
                *unfinished += 1;
                Ok(true)
            }
            o => Err(wrong("queue", o)),
        });
        drop(st);
        match w? {
            Waited::Ready => {
                self.changed.notify_all();
                Ok(Reply::Unit)
            }
            Waited::TimedOut => Err(Fault::Full),
            Waited::ClientGone | Waited::ShuttingDown => Err(Fault::ShuttingDown),
        }
    }

    fn cond_wait(
        &self,
        mut st: MutexGuard<'_, State>,
        ctx: &Ctx<'_>,
        id: ObjId,
        thread: u64,
        timeout_ms: Option<u64>,
    ) -> Result<Reply, Fault> {
        let me = ctx.owner(thread);
        let ticket;
        let saved;
        match &mut st.get_mut(id)?.object {
            Object::Condition {
                lock,
                waiters,
                next_ticket,
                ..
            } => {
                if lock.owner != Some(me) {
                    return Err(Fault::NotOwner);
                }
                saved = lock.count;
                lock.owner = None;
                lock.count = 0;
                ticket = *next_ticket;
                *next_ticket += 1;
                waiters.push_back(ticket);
            }
            o => return Err(wrong("condition", o)),
        }
        self.changed.notify_all();
        let deadline = timeout_deadline(timeout_ms);
        let (st, w) = self.wait_until(st, ctx, deadline, |st| match &mut st.get_mut(id)?.object {
            Object::Condition { notified, .. } => Ok(notified.remove(&ticket)),
            o => Err(wrong("condition", o)),
        });
        let notified = match w? {
            Waited::Ready => true,
            Waited::TimedOut => {
                let mut st = st;
                if let Ok(Object::Condition {
                    waiters, notified, ..
                }) = st.get_mut(id).map(|e| &mut e.object)
                {
                    waiters.retain(|t| *t != ticket);
                    notified.remove(&ticket);
                }
                return self.cond_reacquire(st, ctx, id, me, saved, false);
            }
            Waited::ClientGone | Waited::ShuttingDown => return Err(Fault::ShuttingDown),
        };
        self.cond_reacquire(st, ctx, id, me, saved, notified)
    }

    fn cond_reacquire(
        &self,
        st: MutexGuard<'_, State>,
        ctx: &Ctx<'_>,
        id: ObjId,
        me: Owner,
        saved: u32,
        notified: bool,
    ) -> Result<Reply, Fault> {
        let mut died = None;
        let (_st, w) = self.wait_until(st, ctx, None, |st| match &mut st.get_mut(id)?.object {
            Object::Condition { lock, .. } => {
                if try_take(lock, me, false, &mut died) {
                    lock.count = saved;
                    Ok(true)
                } else {
                    Ok(false)
                }
            }
            o => Err(wrong("condition", o)),
        });
        match w? {
            Waited::Ready => Ok(Reply::Bool(notified)),
            _ => Err(Fault::ShuttingDown),
        }
    }

    fn barrier_wait(
        &self,
        mut st: MutexGuard<'_, State>,
        ctx: &Ctx<'_>,
        id: ObjId,
        timeout_ms: Option<u64>,
    ) -> Result<Reply, Fault> {
        let (my_gen, index) = match &mut st.get_mut(id)?.object {
            Object::Barrier {
                parties,
                count,
                generation,
                broken,
                ..
            } => {
                if *broken {
                    return Err(Fault::BrokenBarrier);
                }
                let index = *count;
                *count += 1;
                if *count == *parties {
                    *count = 0;
                    *generation += 1;
                    drop(st);
                    self.changed.notify_all();
                    return Ok(Reply::Index(index as u64));
                }
                (*generation, index)
            }
            o => return Err(wrong("barrier", o)),
        };
        let deadline = timeout_deadline(timeout_ms);
        let mut outcome = Ok(());
        let (mut st, w) = self.wait_until(st, ctx, deadline, |st| match &st.get(id)?.object {
            Object::Barrier {
                generation,
                aborted_generation,
                broken,
                ..
            } => {
                if *generation != my_gen {
                    if *aborted_generation == Some(my_gen) {
                        outcome = Err(Fault::BrokenBarrier);
                    }
                    Ok(true)
                } else if *broken {
                    outcome = Err(Fault::BrokenBarrier);
                    Ok(true)
                } else {
                    Ok(false)
                }
            }
            o => Err(wrong("barrier", o)),
        });
        match w? {
            Waited::Ready => outcome.map(|()| Reply::Index(index as u64)),
            Waited::TimedOut | Waited::ClientGone | Waited::ShuttingDown => {
                if let Ok(Object::Barrier { broken, count, .. }) =
                    st.get_mut(id).map(|e| &mut e.object)
                {
                    *broken = true;
                    *count = count.saturating_sub(1);
                }
                drop(st);
                self.changed.notify_all();
                Err(Fault::BrokenBarrier)
            }
        }
    }
}

fn waited(w: Waited, ok: Reply) -> Result<Reply, Fault> {
    match w {
        Waited::Ready => Ok(ok),
        Waited::TimedOut => Err(Fault::Timeout),
        Waited::ClientGone | Waited::ShuttingDown => Err(Fault::ShuttingDown),
    }
}

fn try_take(l: &mut LockState, me: Owner, reentrant: bool, died: &mut Option<Option<u32>>) -> bool {
    match l.owner {
        None => {
            l.owner = Some(me);
            l.count = 1;
            *died = l.died.take();
            true
        }
        Some(o) if reentrant && o == me => {
            l.count += 1;
            true
        }
        Some(_) => false,
    }
}

/// Stores a reference to object `target` at `place` in container `id`.
impl Server {
    pub(crate) fn put_ref(&self, id: ObjId, place: Place, target: ObjId) -> Result<Reply, Fault> {
        let mut st = self.lock();
        st.get(target)?;
        if id == target {
            return Err(Fault::BadRequest("an object cannot contain itself".into()));
        }
        let mut freed = None;
        match (&mut st.get_mut(id)?.object, place) {
            (Object::Dict(m), Place::Key(k)) => {
                if let Some(Slot::Obj(o)) = m.insert(k.0, Slot::Obj(target)) {
                    freed = Some(o);
                }
            }
            (Object::List(l), Place::Append) => l.push(Slot::Obj(target)),
            (Object::List(l), Place::Index(i)) => {
                let idx = resolve_index(i, l.len()).ok_or(Fault::IndexOutOfRange {
                    index: i,
                    len: l.len() as u64,
                })?;
                if let Slot::Obj(o) = std::mem::replace(&mut l[idx], Slot::Obj(target)) {
                    freed = Some(o);
                }
            }
            (Object::Namespace(n), Place::Field(f)) => {
                if let Some(Slot::Obj(o)) = n.insert(f, Slot::Obj(target)) {
                    freed = Some(o);
                }
            }
            (o, p) => {
                return Err(Fault::BadRequest(format!(
                    "cannot store an object at {p:?} in a {}",
                    o.kind_name()
                )));
            }
        }
        st.incref(target, 1);
        if let Some(o) = freed {
            st.unref(o, 1);
        }
        Ok(Reply::Unit)
    }
}

pub(super) fn op_name(op: &Op) -> String {
    let s = format!("{op:?}");
    s.split(['(', ' ', '{']).next().unwrap_or("?").to_string()
}
