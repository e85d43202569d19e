//! Worker state (mpire's `use_worker_state`): a value made once in each worker
//! by [`Builder::worker_state`] and handed, by `&mut`, to every task of the
//! `*_with_state` verbs that runs in that worker.
//!
//! The state lives in the worker process only and never travels: it need not be
//! serde, and it is made again in a worker that replaces one (a crash, a
//! timeout, a recycle), so it suits caches, connections and accumulators that
//! are fine to lose with their worker.

use std::any::Any;
use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, Message};
use crate::pool::{AsyncResult, Builder, MapResult, Pool, TaskError};
use crate::sys::code::{EntryPoint, Outcome, Runner, StatefulRunner};

thread_local! {
    /// The worker's state (tasks run on the worker's one thread).
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Makes the state: decodes the argument, calls the initializer, keeps its value.
struct InitState;

impl<A: DeserializeOwned, S: 'static> Runner<A, S> for InitState {
    fn run(f: fn(A) -> S, input: Message) -> Outcome {
        let arg: A = codec::decode(input)
            .map_err(|e| format!("cannot decode the worker state's argument: {e}"))?;
        let state = f(arg);
        STATE.with(|s| *s.borrow_mut() = Some(Box::new(state)));
        codec::encode(&()).map_err(|e| e.to_string())
    }
}

/// Runs a task with the worker's state.
struct WithState;

impl<S: 'static, A: DeserializeOwned, R: Serialize> StatefulRunner<S, A, R> for WithState {
    fn run(f: fn(&mut S, A) -> R, input: Message) -> Outcome {
        let arg: A = codec::decode(input)
            .map_err(|e| format!("cannot decode the arguments in the worker: {e}"))?;
        let result = STATE.with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                return Err(
                    "the worker state is already in use (a task ran inside another)".into(),
                );
            };
            let Some(state) = slot.as_mut() else {
                return Err(
                    "this pool's workers have no state: build the pool with `Builder::worker_state`"
                        .to_string(),
                );
            };
            match state.downcast_mut::<S>() {
                Some(state) => Ok(f(state, arg)),
                None => Err(format!(
                    "the worker state is not a `{}`: the task and `Builder::worker_state` disagree",
                    std::any::type_name::<S>()
                )),
            }
        })?;
        codec::encode(&result).map_err(|e| format!("cannot encode the result in the worker: {e}"))
    }
}

impl Builder {
    /// Makes a state in each worker when it starts, `init(arg)`, and keeps it for
    /// the worker's life (mpire's worker state): tasks given to
    /// [`Pool::apply_with_state`] and [`Pool::map_with_state`] get it by `&mut`.
    /// It runs after the [`initializer`](Builder::initializer), and again in each
    /// replacement worker. A panic in it fails [`build`](Builder::build) with
    /// [`PoolError::Initializer`](crate::pool::PoolError::Initializer).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::pool::Pool;
    ///
    /// struct Seen {
    ///     count: u64,
    /// }
    ///
    /// let pool = Pool::builder()
    ///     .processes(1)
    ///     .worker_state(|start: u64| Seen { count: start }, 100)
    ///     .build()?;
    /// let counts = pool.map_with_state(|s: &mut Seen, _x: u8| { s.count += 1; s.count }, [0, 0, 0])?;
    /// assert_eq!(counts, [101, 102, 103]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker_state<A, S>(&mut self, init: fn(A) -> S, arg: A) -> &mut Self
    where
        A: Serialize + DeserializeOwned + 'static,
        S: 'static,
    {
        self.options.state_init = Some(match codec::encode(&arg) {
            Ok(m) if m.fds.is_empty() => {
                Ok((EntryPoint::for_fn_with::<A, S, InitState>(init), m.bytes))
            }
            Ok(_) => Err("a worker state's argument cannot hold mproc handles".into()),
            Err(e) => Err(e.to_string()),
        });
        self
    }
}

impl Pool {
    /// [`apply`](Pool::apply) for a task that takes its worker's state (see
    /// [`Builder::worker_state`]).
    ///
    /// # Errors
    ///
    /// As [`apply`](Pool::apply); a pool built without a state of type `S` fails
    /// the task with a message saying so.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::pool::Pool;
    ///
    /// let pool = Pool::builder().processes(1).worker_state(|_: ()| Vec::<String>::new(), ()).build()?;
    /// pool.apply_with_state(|seen: &mut Vec<String>, s: String| seen.push(s), "a".to_string())?;
    /// let n = pool.apply_with_state(|seen: &mut Vec<String>, s: String| { seen.push(s); seen.len() }, "b".to_string())?;
    /// assert_eq!(n, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_with_state<S, A, R>(&self, f: fn(&mut S, A) -> R, arg: A) -> Result<R, TaskError>
    where
        S: 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async_with_state(f, arg).get()
    }

    /// [`apply_async`](Pool::apply_async) for a task that takes its worker's
    /// state.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::pool::Pool;
    ///
    /// let pool = Pool::builder().processes(1).worker_state(|k: u32| k, 3).build()?;
    /// let r = pool.apply_async_with_state(|k: &mut u32, x: u32| *k * x, 5);
    /// assert_eq!(r.get()?, 15);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_async_with_state<S, A, R>(&self, f: fn(&mut S, A) -> R, arg: A) -> AsyncResult<R>
    where
        S: 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let args = codec::encode(&arg).map_err(|e| e.to_string());
        let entry = EntryPoint::for_stateful::<S, A, R, WithState>(f);
        AsyncResult {
            fut: self.options().submit_one(entry, args),
        }
    }

    /// [`map`](Pool::map) for a task that takes its worker's state: results in
    /// input order; tasks travel one by one (in batches).
    ///
    /// # Errors
    ///
    /// As [`map`](Pool::map).
    ///
    /// # Examples
    ///
    /// See [`Builder::worker_state`].
    pub fn map_with_state<S, A, R, I>(
        &self,
        f: fn(&mut S, A) -> R,
        items: I,
    ) -> Result<Vec<R>, TaskError>
    where
        S: 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.map_async_with_state(f, items).get()
    }

    /// [`map_async`](Pool::map_async) for a task that takes its worker's state.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::pool::Pool;
    ///
    /// let pool = Pool::builder().processes(2).worker_state(|k: u64| k, 10).build()?;
    /// let r = pool.map_async_with_state(|k: &mut u64, x: u64| *k + x, 0..4);
    /// assert_eq!(r.get()?, [10, 11, 12, 13]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_async_with_state<S, A, R, I>(&self, f: fn(&mut S, A) -> R, items: I) -> MapResult<R>
    where
        S: 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let entry = EntryPoint::for_stateful::<S, A, R, WithState>(f);
        self.options().map_entry(entry, items)
    }
}
