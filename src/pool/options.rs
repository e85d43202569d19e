//! [`TaskOptions`]: per-call options, and the verbs that submit a call's tasks.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, Message};
use crate::pool::imap::{Feeder, IMap, IMapUnordered, Lazy};
use crate::pool::progress::Progress;
use crate::pool::results::{self, AsyncResult, MapResult};
use crate::pool::sink::{MapSink, Mode};
use crate::pool::{Pool, StarFn, plain, sealed, worker};
use crate::sys::code::EntryPoint;
use crate::task::call::{CallInfo, Chunk, Job, OneSink, Sink};
use crate::task::slot::Slot;
use crate::task::{Future, TaskError};

/// `map` hands tasks to the pool in slices of about this many items.
const SUBMIT_SLICE: usize = 4096;

/// Per-call options: `chunksize`, a timeout, retries, a progress bar. Made by
/// [`Pool::options`]; ends with one of the verbs.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let pool = mproc::pool::Pool::new(2)?;
/// let squares = pool
///     .options()
///     .chunksize(10)
///     .timeout(Duration::from_secs(30))
///     .progress("squares")
///     .map(|x: u64| x * x, 0..100)?;
/// assert_eq!(squares[99], 9801);
///
/// // Every verb of `Pool` takes options.
/// assert_eq!(pool.options().retries(2).apply(|x: u8| x + 1, 1)?, 2);
/// let slow = pool
///     .options()
///     .timeout(Duration::from_millis(200))
///     .apply_async(|s: u64| std::thread::sleep(Duration::from_secs(s)), 30);
/// assert!(slow.get().unwrap_err().is_timeout());
/// assert_eq!(pool.options().chunksize(1).map(|x: u8| x * 2, [1, 2, 3])?, [2, 4, 6]);
/// let r = pool.options().chunksize(2).map_async(|x: u8| x * 2, [1, 2, 3]);
/// assert_eq!(r.get()?, [2, 4, 6]);
///
/// fn add(a: i32, b: i32) -> i32 { a + b }
/// let sums = pool.options().chunksize(1).starmap(add as fn(i32, i32) -> i32, [(1, 2), (3, 4)])?;
/// assert_eq!(sums, [3, 7]);
///
/// let v: Result<Vec<u32>, _> = pool.options().chunksize(4).imap(|x: u32| x + 1, 0..10).collect();
/// assert_eq!(v?, (1..11).collect::<Vec<_>>());
/// let mut v: Vec<u32> = pool
///     .options()
///     .chunksize(3)
///     .imap_unordered(|x: u32| x * 10, 0..5)
///     .map(Result::unwrap)
///     .collect();
/// v.sort();
/// assert_eq!(v, [0, 10, 20, 30, 40]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TaskOptions<'p> {
    pool: &'p Pool,
    chunksize: Option<usize>,
    timeout: Option<Duration>,
    retries: u32,
    progress: Option<String>,
    window: Option<usize>,
}

impl<'p> TaskOptions<'p> {
    pub(super) fn new(pool: &'p Pool) -> TaskOptions<'p> {
        TaskOptions {
            pool,
            chunksize: None,
            timeout: pool.timeout,
            retries: pool.retries,
            progress: None,
            window: None,
        }
    }

    /// How many items travel together (default: automatic for `map`, like
    /// Python's `len / (4 * processes)`; 1 for `imap`).
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n.max(1));
        self
    }

    /// The timeout of each task of this call (overrides the pool's default).
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many times a task lost with its worker is run again.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Shows a progress bar labelled `label` on stderr (when it is a terminal),
    /// counting items, not chunks. Needs the `progress` feature (default) to draw.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn progress(mut self, label: impl Into<String>) -> Self {
        self.progress = Some(label.into());
        self
    }

    /// For `imap`/`imap_unordered`: the most items taken from the input and not yet
    /// consumed (default `max(8192, 4 * processes * chunksize)`); this bounds memory
    /// for endless inputs.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn window(mut self, n: usize) -> Self {
        self.window = Some(n.max(1));
        self
    }

    fn call(&self, entry: EntryPoint, sink: Arc<dyn Sink>) -> Arc<CallInfo> {
        Arc::new(CallInfo {
            entry,
            sink,
            timeout: self.timeout,
            retries: self.retries,
        })
    }

    /// Submits one task with its own entry point and encoded argument (used by
    /// `distributed`, whose runner wraps the user's function).
    #[cfg(feature = "distributed")]
    pub(crate) fn submit_entry<R>(&self, entry: EntryPoint, args: Message) -> Future<R>
    where
        R: DeserializeOwned + Send + 'static,
    {
        self.submit_one(entry, Ok(args))
    }

    pub(super) fn submit_one<R>(
        &self,
        entry: EntryPoint,
        args: Result<Message, String>,
    ) -> Future<R>
    where
        R: DeserializeOwned + Send + 'static,
    {
        let args = match args {
            Ok(m) => m,
            Err(e) => {
                return Future::ready(
                    Err(TaskError::failed(
                        format!("cannot send the task's argument to a worker: {e}"),
                        Some(0),
                    )),
                    0,
                );
            }
        };
        let slot: Arc<Slot<R>> = Slot::new(0);
        let sink = Arc::new(OneSink {
            slot: Arc::clone(&slot),
        });
        let call = self.call(entry, sink);
        let item = Job {
            call,
            index: 0,
            args,
            attempts: 0,
            span: 1,
            chunk: false,
        };
        if self.pool.state.push(vec![vec![item]]).is_err() {
            slot.complete(Err(TaskError::cancelled("the pool is closed", Some(0))));
        }
        Future::from_slot(slot)
    }

    /// As [`Pool::apply`], with these options.
    ///
    /// # Errors
    ///
    /// As [`Pool::apply`].
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, TaskError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, arg).get()
    }

    /// As [`Pool::apply_async`], with these options.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let args = codec::encode(&arg).map_err(|e| e.to_string());
        AsyncResult {
            fut: self.submit_one(EntryPoint::for_fn(f), args),
        }
    }

    /// Submits `f` with an argument already encoded (the executor's `submit`).
    pub(crate) fn submit_encoded<A, R>(&self, f: fn(A) -> R, args: Message) -> Future<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_one(EntryPoint::for_fn(f), Ok(args))
    }

    fn map_sink(&self, mode: Mode, total: Option<usize>) -> Arc<MapSink> {
        let progress = self.progress.as_ref().map(|l| Progress::new(total, l));
        MapSink::new(mode, total, progress)
    }

    pub(super) fn map_entry<A, R, I>(&self, entry: EntryPoint, items: I) -> MapResult<R>
    where
        A: Serialize,
        I: IntoIterator<Item = A>,
    {
        let items = items.into_iter();
        let n = match items.size_hint() {
            (lo, Some(hi)) if lo == hi => lo,
            _ => {
                let v: Vec<A> = items.collect();
                return self.map_entry(entry, v);
            }
        };
        let items = items.map(|a| codec::encode(&a).map_err(|e| e.to_string()));
        let chunksize = self
            .chunksize
            .unwrap_or_else(|| n.div_ceil(4 * self.pool.processes).max(1));
        // The total is set once the input is exhausted: a size hint may be wrong.
        let progress = self.progress.as_ref().map(|l| Progress::new(Some(n), l));
        let sink = MapSink::new(Mode::All, None, progress);
        let call = self.call(entry, Arc::clone(&sink) as Arc<dyn Sink>);
        let mut count = 0;
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut closed = false;
        let mut chunk: Chunk = Vec::with_capacity(chunksize);
        for (index, args) in items.enumerate() {
            count += 1;
            match args {
                Ok(args) => chunk.push(Job {
                    call: Arc::clone(&call),
                    index,
                    args,
                    attempts: 0,
                    span: 1,
                    chunk: false,
                }),
                Err(reason) => {
                    let e = TaskError::failed(
                        format!("cannot send the task's argument to a worker: {reason}"),
                        Some(index),
                    );
                    return MapResult {
                        plain: results::no_plain,
                        sink,
                        early: Some(e),
                        called: None,
                        _r: PhantomData,
                    };
                }
            }
            if chunk.len() == chunksize {
                chunks.push(std::mem::replace(&mut chunk, Vec::with_capacity(chunksize)));
                // Hand work over as it is encoded, so that workers start early.
                if chunks.len() * chunksize >= SUBMIT_SLICE
                    && self.pool.state.push(std::mem::take(&mut chunks)).is_err()
                {
                    closed = true;
                    break;
                }
            }
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
        if !closed && !chunks.is_empty() && self.pool.state.push(chunks).is_err() {
            closed = true;
        }
        sink.set_total(count);
        let early = closed.then(|| TaskError::cancelled("the pool is closed", None));
        MapResult {
            plain: results::no_plain,
            sink,
            early,
            called: None,
            _r: PhantomData,
        }
    }

    /// As [`Pool::map`], with these options.
    ///
    /// # Errors
    ///
    /// As [`Pool::map`].
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Vec<R>, TaskError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.map_async(f, items).get()
    }

    /// As [`Pool::map_async`], with these options.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn map_async<A, R, I>(&self, f: fn(A) -> R, items: I) -> MapResult<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = self
            .chunksize
            .unwrap_or_else(|| items.len().div_ceil(4 * self.pool.processes).max(1));
        // A chunk runs in one call in the worker (one encode, one decode, no message
        // per task); a per-task timeout needs the tasks one by one.
        if chunksize > 1 && self.timeout.is_none() {
            self.map_chunked(f, items, chunksize)
        } else {
            self.map_entry(EntryPoint::for_fn(f), items)
        }
    }

    fn map_chunked<A, R>(&self, f: fn(A) -> R, items: Vec<A>, chunksize: usize) -> MapResult<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let n = items.len();
        let progress = self.progress.as_ref().map(|l| Progress::new(Some(n), l));
        let sink = MapSink::new(Mode::All, None, progress);
        let entry = EntryPoint::for_fn_with::<A, R, worker::ChunkRunner>(f);
        let call = self.call(entry, Arc::clone(&sink) as Arc<dyn Sink>);
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut closed = false;
        let mut index = 0;
        let mut queued = 0;
        // A slice encodes as the `Vec<A>` the worker decodes.
        for part in items.chunks(chunksize) {
            let span = part.len();
            let room = span.saturating_mul(std::mem::size_of::<A>().clamp(1, 16)) + 16;
            let mut bytes = Vec::new();
            let encoded = if plain::encode(&items, index..index + span, &mut bytes) {
                Ok(Message {
                    bytes,
                    fds: Vec::new(),
                })
            } else {
                codec::encode_with_capacity(part, room)
            };
            let args = match encoded {
                Ok(m) => m,
                Err(e) => {
                    let e = TaskError::failed(
                        format!("cannot send the tasks' arguments to a worker: {e}"),
                        Some(index),
                    );
                    return MapResult {
                        plain: plain::decode_into::<R>,
                        sink,
                        early: Some(e),
                        called: None,
                        _r: PhantomData,
                    };
                }
            };
            chunks.push(vec![Job {
                call: Arc::clone(&call),
                index,
                args,
                attempts: 0,
                span,
                chunk: true,
            }]);
            index += span;
            queued += span;
            if queued >= SUBMIT_SLICE {
                queued = 0;
                if self.pool.state.push(std::mem::take(&mut chunks)).is_err() {
                    closed = true;
                    break;
                }
            }
        }
        if !closed && !chunks.is_empty() && self.pool.state.push(chunks).is_err() {
            closed = true;
        }
        sink.set_total(n);
        MapResult {
            plain: plain::decode_into::<R>,
            sink,
            early: closed.then(|| TaskError::cancelled("the pool is closed", None)),
            called: None,
            _r: PhantomData,
        }
    }

    /// As [`Pool::starmap`], with these options.
    ///
    /// # Errors
    ///
    /// As [`Pool::starmap`].
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn starmap<Args, R, F, I>(&self, f: F, items: I) -> Result<Vec<R>, TaskError>
    where
        F: StarFn<Args, R>,
        Args: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = Args>,
    {
        self.starmap_async(f, items).get()
    }

    /// As [`Pool::starmap_async`], with these options.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn starmap_async<Args, R, F, I>(&self, f: F, items: I) -> MapResult<R>
    where
        F: StarFn<Args, R>,
        Args: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = Args>,
    {
        self.map_entry(sealed::Sealed::entry(f), items)
    }

    /// The reader behind `imap` and `imap_unordered`: a collector in `mode` and
    /// a feeder that reads `items` as results are consumed.
    fn lazy<'a, A, I>(&self, mode: Mode, entry: EntryPoint, items: I) -> Lazy<'a>
    where
        A: Serialize + 'a,
        I: IntoIterator<Item = A> + 'a,
    {
        let items = items.into_iter();
        let total = match items.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo),
            _ => None,
        };
        let sink = self.map_sink(mode, total);
        let chunksize = self.chunksize.unwrap_or(1);
        let window = self
            .window
            .unwrap_or_else(|| (4 * self.pool.processes * chunksize).max(8192))
            .max(chunksize);
        let feeder = Feeder {
            input: Box::new(items.map(|a| codec::encode(&a).map_err(|e| e.to_string()))),
            call: self.call(entry, Arc::clone(&sink) as Arc<dyn Sink>),
            shared: Arc::clone(&self.pool.state),
            chunksize,
            window,
            submitted: 0,
            exhausted: false,
        };
        Lazy::new(sink, feeder)
    }

    /// As [`Pool::imap`], with these options.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn imap<'a, A, R, I>(&self, f: fn(A) -> R, items: I) -> IMap<'a, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A> + 'a,
    {
        IMap {
            lazy: self.lazy(Mode::Ordered, EntryPoint::for_fn(f), items),
            _r: PhantomData,
        }
    }

    /// As [`Pool::imap_unordered`], with these options.
    ///
    /// # Examples
    ///
    /// See [`TaskOptions`].
    pub fn imap_unordered<'a, A, R, I>(&self, f: fn(A) -> R, items: I) -> IMapUnordered<'a, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A> + 'a,
    {
        IMapUnordered {
            lazy: self.lazy(Mode::Unordered, EntryPoint::for_fn(f), items),
            _r: PhantomData,
        }
    }
}
