//! A thread whose result is awaited with a time limit, and that can be watched
//! going to sleep inside a blocking call.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::common::{eventually, thread_state};

/// The longest any single wait in these tests may take before it is a failure.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A thread running one call.
pub struct Spawned<R> {
    tid: u32,
    done: mpsc::Receiver<R>,
    handle: Option<thread::JoinHandle<()>>,
}

/// Runs `f` on a new thread.
pub fn spawn<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Spawned<R> {
    let (tid_tx, tid_rx) = mpsc::channel();
    let (tx, done) = mpsc::channel();
    let handle = thread::spawn(move || {
        tid_tx
            .send(rustix::thread::gettid().as_raw_nonzero().get() as u32)
            .unwrap();
        let _ = tx.send(f());
    });
    let tid = tid_rx.recv_timeout(LIMIT).expect("thread started");
    Spawned {
        tid,
        done,
        handle: Some(handle),
    }
}

impl<R> Spawned<R> {
    /// Waits until the thread sleeps in the kernel (inside its blocking call), and
    /// checks that the call has not returned.
    pub fn assert_blocked(&self, what: &str) {
        assert!(
            eventually(LIMIT, || thread_state(self.tid) == Some('S')),
            "{what}: the thread never went to sleep"
        );
        assert!(
            matches!(self.done.try_recv(), Err(mpsc::TryRecvError::Empty)),
            "{what}: returned without blocking"
        );
    }

    /// The call's result, within [`LIMIT`].
    pub fn result(mut self, what: &str) -> R {
        let r = self
            .done
            .recv_timeout(LIMIT)
            .unwrap_or_else(|e| panic!("{what}: no result within {LIMIT:?} ({e})"));
        self.handle.take().unwrap().join().unwrap();
        r
    }
}

/// Spawns `n` copies of `f`, waits until all of them block, and returns them.
pub fn spawn_blocked<R: Send + 'static>(
    n: usize,
    what: &str,
    f: impl Fn() -> R + Send + Sync + Clone + 'static,
) -> Vec<Spawned<R>> {
    let ts: Vec<_> = (0..n).map(|_| spawn(f.clone())).collect();
    for t in &ts {
        t.assert_blocked(what);
    }
    ts
}
