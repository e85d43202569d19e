//! What the pool's builder sets about seeing inside its workers: log forwarding
//! (see [`observe`](crate::observe)). Kept apart from the builder's other
//! options; [`Builder`]'s setters for them are here.

use crate::pool::Builder;

/// The workers' observation options, carried from the builder to every worker
/// start.
#[derive(Clone, Debug)]
pub(crate) struct WorkerObserve {
    pub(crate) forward_logs: bool,
}

impl Default for WorkerObserve {
    fn default() -> Self {
        WorkerObserve { forward_logs: true }
    }
}

impl WorkerObserve {
    /// Applies the options to the process builder of a worker.
    pub(crate) fn configure(&self, builder: &mut crate::process::Builder) {
        builder.forward_logs(self.forward_logs);
    }
}

impl Builder {
    /// Whether the workers' `log` records are handed to this process's logger,
    /// tagged with the worker's name and pid and the task's index (default
    /// `true`; see [`observe`](crate::observe)).
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::pool::Pool;
    ///
    /// let pool = Pool::builder().processes(1).forward_logs(false).build()?;
    /// assert_eq!(pool.apply(|x: u8| { log::info!("stays in the worker"); x }, 3)?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forward_logs(&mut self, on: bool) -> &mut Self {
        self.observe.forward_logs = on;
        self
    }
}
