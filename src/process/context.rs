//! The process-wide default start method and start contexts: Python's
//! `set_start_method`, `get_start_method`, `get_all_start_methods` and `get_context`.

use std::sync::atomic::{AtomicU8, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::process::{Builder, Process, SpawnError, StartMethod};

/// 0: never set (the built-in default); otherwise 1 + the method's index.
static DEFAULT: AtomicU8 = AtomicU8::new(0);

fn encode(m: StartMethod) -> u8 {
    match m {
        StartMethod::Forkserver => 1,
        StartMethod::Spawn => 2,
        StartMethod::Fork => 3,
    }
}

fn decode(v: u8) -> Option<StartMethod> {
    match v {
        1 => Some(StartMethod::Forkserver),
        2 => Some(StartMethod::Spawn),
        3 => Some(StartMethod::Fork),
        _ => None,
    }
}

/// [`set_start_method`] was called before, without `force`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the start method was already set (to {current:?}); set it once, early in `main`, \
     or pass `force = true`"
)]
pub struct StartMethodAlreadySet {
    /// The start method in force.
    pub current: StartMethod,
}

/// Sets the start method that every [`Builder`] (and pool) uses unless told
/// otherwise (Python's `multiprocessing.set_start_method`).
///
/// As in Python it is meant to be set once, early: a second call fails unless
/// `force` is set. Processes already started are not affected.
///
/// # Errors
///
/// [`StartMethodAlreadySet`] when it was set before and `force` is `false`.
///
/// # Examples
///
/// ```
/// use mproc::process::{get_start_method, set_start_method, Process, StartMethod};
///
/// set_start_method(StartMethod::Spawn, false)?;
/// assert_eq!(get_start_method(), StartMethod::Spawn);
/// assert!(set_start_method(StartMethod::Fork, false).is_err());
/// let child = Process::start(|x: u8| x + 1, 1)?; // started with Spawn
/// assert_eq!(child.join()?, 2);
/// set_start_method(StartMethod::Forkserver, true)?;
/// assert_eq!(get_start_method(), StartMethod::Forkserver);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn set_start_method(method: StartMethod, force: bool) -> Result<(), StartMethodAlreadySet> {
    if force {
        DEFAULT.store(encode(method), Ordering::Relaxed);
        return Ok(());
    }
    match DEFAULT.compare_exchange(0, encode(method), Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => Ok(()),
        Err(v) => Err(StartMethodAlreadySet {
            current: decode(v).unwrap_or_default(),
        }),
    }
}

/// The start method in force: the one set by [`set_start_method`], or
/// [`StartMethod::Forkserver`] (Python's `get_start_method`). It is also what
/// `StartMethod::default()` returns.
///
/// # Examples
///
/// ```
/// use mproc::process::{get_start_method, StartMethod};
///
/// assert_eq!(get_start_method(), StartMethod::default());
/// ```
pub fn get_start_method() -> StartMethod {
    decode(DEFAULT.load(Ordering::Relaxed)).unwrap_or(StartMethod::Forkserver)
}

/// Every start method this platform supports, the built-in default first
/// (Python's `get_all_start_methods`).
///
/// # Examples
///
/// ```
/// use mproc::process::{get_all_start_methods, StartMethod};
///
/// let all = get_all_start_methods();
/// assert_eq!(all[0], StartMethod::Forkserver);
/// assert!(all.contains(&StartMethod::Spawn) && all.contains(&StartMethod::Fork));
/// ```
pub fn get_all_start_methods() -> Vec<StartMethod> {
    StartMethod::ALL.to_vec()
}

/// A start method to start processes and pools with, whatever the process-wide
/// default (Python's `multiprocessing.get_context(method)`).
///
/// # Examples
///
/// ```
/// use mproc::process::{get_context, StartMethod};
///
/// let ctx = get_context(Some(StartMethod::Spawn));
/// assert_eq!(ctx.start_method(), StartMethod::Spawn);
/// let child = ctx.start(|s: String| s.len(), "four".to_string())?;
/// assert_eq!(child.join()?, 4);
/// let pool = ctx.pool().processes(1).build()?;
/// assert_eq!(pool.apply(|x: u32| x * 3, 5)?, 15);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    method: StartMethod,
}

/// A [`Context`] for `method`, or for the start method in force when `None`
/// (Python's `get_context`).
///
/// # Examples
///
/// ```
/// use mproc::process::{get_context, get_start_method};
///
/// assert_eq!(get_context(None).start_method(), get_start_method());
/// ```
pub fn get_context(method: Option<StartMethod>) -> Context {
    Context {
        method: method.unwrap_or_else(get_start_method),
    }
}

impl Context {
    /// The context's start method.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::{get_context, StartMethod};
    ///
    /// assert_eq!(get_context(Some(StartMethod::Fork)).start_method(), StartMethod::Fork);
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// A process [`Builder`] with this context's start method.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::{get_context, StartMethod};
    ///
    /// let ctx = get_context(Some(StartMethod::Spawn));
    /// let child = ctx.process().name("ctx-child").start(|_: ()| 7u8, ())?;
    /// assert_eq!(child.join()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn process(&self) -> Builder {
        let mut b = Builder::default();
        b.start_method(self.method);
        b
    }

    /// Starts `f(arg)` with this context's start method (Python's
    /// `ctx.Process(target=f, args=(arg,)).start()`).
    ///
    /// # Errors
    ///
    /// As [`Builder::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// let child = mproc::process::get_context(None).start(|x: i32| -x, 3)?;
    /// assert_eq!(child.join()?, -3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Process<R>, SpawnError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.process().start(f, arg)
    }

    /// A pool [`Builder`](crate::pool::Builder) with this context's start method
    /// (Python's `ctx.Pool`).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::{get_context, StartMethod};
    ///
    /// let pool = get_context(Some(StartMethod::Forkserver)).pool().processes(2).build()?;
    /// assert_eq!(pool.map(|x: u8| x + 1, 0..3)?, vec![1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pool(&self) -> crate::pool::Builder {
        let mut b = crate::pool::Pool::builder();
        b.start_method(self.method);
        b
    }
}
