//! `Process` from async code: the pidfd (and the forkserver's status pipe) watched
//! by the runtime's reactor.

use std::os::fd::AsFd;
use std::time::Instant;

use serde::de::DeserializeOwned;

use crate::process::registry::ExitSource;
use crate::process::{JoinError, Process};

impl<R> Process<R> {
    /// Waits, without blocking the thread, until the child has exited and its
    /// result and exit status are in: a [`join`](Process::join) after it returns
    /// at once. Use it to bound a wait (`tokio::time::timeout`) and keep the handle.
    ///
    /// The child's [`handshake_timeout`](crate::process::Builder::handshake_timeout)
    /// holds as in `join`: a child that never reached the bootstrap is killed at the
    /// deadline.
    ///
    /// # Errors
    ///
    /// [`JoinError::HandshakeTimeout`] as above; [`JoinError::Io`] if the pidfd
    /// cannot be watched; a malformed report as in `join`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O and time enabled.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: every step that reads the child's reports or reaps it is done
    /// whole between two waits, and its result is kept in the handle. A dropped
    /// `wait_async` leaves the handle as it found it or further along.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc::process::Process;
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let mut child = Process::start(|_: ()| std::thread::sleep(Duration::from_secs(60)), ())?;
    /// let waited = tokio::time::timeout(Duration::from_millis(50), child.wait_async()).await;
    /// assert!(waited.is_err()); // still running, and the handle is still ours
    /// child.kill()?;
    /// child.wait_async().await?;
    /// assert!(child.join().unwrap_err().is_signaled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn wait_async(&mut self) -> Result<(), JoinError> {
        loop {
            if !self.eof {
                let handshake =
                    (!self.handshake_done).then(|| self.started_at + self.handshake_timeout);
                let exited = crate::aio::readable(self.pidfd.as_fd());
                match handshake {
                    None => exited.await.map_err(|e| self.io_error(e))?,
                    Some(h) => {
                        if let Ok(r) = tokio::time::timeout_at(h.into(), exited).await {
                            r.map_err(|e| self.io_error(e))?;
                        }
                    }
                }
            }
            // The pidfd is readable, the status pipe was, or the handshake deadline
            // passed: the blocking step with a deadline of now does not wait.
            if self.wait(Some(Instant::now()))? {
                return Ok(());
            }
            if self.eof {
                // Exited and its reports are read; the forkserver has not written
                // its exit status yet.
                match &self.exit {
                    Some(ExitSource::Server(status)) => crate::aio::readable(status.as_fd())
                        .await
                        .map_err(|e| self.io_error(e))?,
                    _ => tokio::task::yield_now().await,
                }
            }
        }
    }

    /// Waits for the child and returns its result, as [`join`](Process::join)
    /// does, without blocking the thread: the child's pidfd is watched by the
    /// runtime's reactor.
    ///
    /// # Errors
    ///
    /// As [`join`](Process::join) and [`wait_async`](Process::wait_async).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O and time enabled.
    ///
    /// # Cancel safety
    ///
    /// Dropping a pending `join_async` drops the handle, as dropping a `Process`
    /// does: the child keeps running and is reaped in the background; its result
    /// is lost. To give up waiting and keep the handle, time out
    /// [`wait_async`](Process::wait_async) instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::process::Process;
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let child = Process::start(|x: u64| x * x, 12)?;
    /// assert_eq!(child.join_async().await?, 144);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn join_async(mut self) -> Result<R, JoinError>
    where
        R: DeserializeOwned,
    {
        self.wait_async().await?;
        let result = self.take_result();
        // Captured output, if any, is collected by its thread, which ends with the
        // child's stdout: detached here rather than joined on the runtime's thread.
        drop(self.output.take());
        result
    }
}
