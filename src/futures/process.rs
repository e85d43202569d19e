//! The process-backed executor, on a [`Pool`].

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::futures::{Executor, Future, MapInner, MapIter, SubmitError};
use crate::pool::{Pool, PoolError};

/// An executor on a pool of worker processes: Python's `ProcessPoolExecutor`,
/// without `BrokenProcessPool` (a dead worker fails only its task) and with
/// per-task timeouts (set them on the pool's [`Builder`](crate::pool::Builder)).
///
/// # Examples
///
/// ```
/// use mproc::futures::{Executor, ProcessPoolExecutor};
///
/// let ex = ProcessPoolExecutor::new(2)?;
/// let fut = ex.submit(|_: ()| std::process::id(), ())?;
/// assert_ne!(fut.result()?, std::process::id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ProcessPoolExecutor {
    pool: Pool,
}

impl ProcessPoolExecutor {
    /// An executor with `n` worker processes and the pool's default options.
    ///
    /// # Errors
    ///
    /// [`PoolError`] when the workers cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = mproc::futures::ProcessPoolExecutor::new(1)?;
    /// assert_eq!(ex.pool().processes(), 1);
    /// # Ok::<(), mproc::pool::PoolError>(())
    /// ```
    pub fn new(n: usize) -> Result<ProcessPoolExecutor, PoolError> {
        Ok(ProcessPoolExecutor {
            pool: Pool::new(n)?,
        })
    }

    /// An executor on `pool` (built with any [`Builder`](crate::pool::Builder) options).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::futures::{Executor, ProcessPoolExecutor};
    /// use mproc::pool::Pool;
    ///
    /// let pool = Pool::builder().processes(1).task_timeout(Duration::from_millis(300)).build()?;
    /// let ex = ProcessPoolExecutor::from_pool(pool);
    /// let fut = ex.submit(|s: u64| std::thread::sleep(Duration::from_secs(s)), 30)?;
    /// assert!(fut.result().unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_pool(pool: Pool) -> ProcessPoolExecutor {
        ProcessPoolExecutor { pool }
    }

    /// The pool underneath.
    ///
    /// # Examples
    ///
    /// See [`new`](ProcessPoolExecutor::new).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

impl Executor for ProcessPoolExecutor {
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        if self.pool.is_closed() {
            return Err(SubmitError::Closed);
        }
        let msg = crate::codec::encode(&arg).map_err(|e| SubmitError::Encode(e.to_string()))?;
        Ok(self.pool.options().submit_encoded(f, msg))
    }

    fn map<'a, A, R, I>(
        &'a self,
        f: fn(A) -> R,
        items: I,
        timeout: Option<Duration>,
        chunksize: usize,
    ) -> Result<MapIter<'a, R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        if self.pool.is_closed() {
            return Err(SubmitError::Closed);
        }
        let items: Vec<A> = items.into_iter().collect();
        let n = items.len();
        let mut it = self
            .pool
            .options()
            .chunksize(chunksize.max(1))
            .window(n.max(1))
            .imap(f, items);
        // Every item now, as the trait promises: the calls run even if the
        // iterator is never read (before a `shutdown`, say).
        it.submit_all();
        Ok(MapIter {
            inner: MapInner::Pool(it),
            deadline: timeout.and_then(|t| crate::deadline::after(t).map(|d| (d, t))),
            next: 0,
            expired: false,
        })
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        if cancel_futures {
            self.pool.cancel_pending();
        }
        self.pool.close();
        if wait {
            self.pool.join();
        }
    }
}

impl Drop for ProcessPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}
