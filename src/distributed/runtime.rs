//! The tokio runtime the BullMQ engine needs, kept inside: each executor, worker
//! and admin handle owns one, and every public method blocks like the rest of mproc.

use std::future::Future;
use std::sync::Mutex;

use super::DistributedError;

/// A small multi-thread runtime, shut down without waiting when dropped.
pub(crate) struct Runtime {
    rt: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
}

impl Runtime {
    pub(crate) fn new(name: &str, threads: usize) -> Result<Runtime, DistributedError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(format!("mproc-{name}"))
            .enable_all()
            .build()
            .map_err(|e| DistributedError::Io(format!("cannot start the runtime: {e}")))?;
        Ok(Runtime {
            handle: rt.handle().clone(),
            rt: Mutex::new(Some(rt)),
        })
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Runs `f` on the runtime and waits for it from this (non-async) thread.
    /// Called from inside another async runtime, it still works (the wait
    /// blocks that thread, like every blocking mproc call).
    pub(crate) fn block<F>(&self, f: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .expect("the distributed runtime stopped while a call was waiting on it")
    }

    pub(crate) fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(f)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.lock().unwrap_or_else(|e| e.into_inner()).take() {
            rt.shutdown_background();
        }
    }
}
