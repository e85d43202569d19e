//! Ctrl-C for pools: the first `SIGINT` cancels every live pool's queued work and
//! closes it (running tasks finish); the second kills the workers and puts the
//! previous disposition back, so a third goes where it would have gone without
//! mproc. When no pool is alive, `SIGINT` is handled as if mproc were not there.
//!
//! A handler the application installed before the first pool (`ctrlc`, tokio's
//! signal handling) keeps working: ours calls it after its own work, and when the
//! last pool goes away the disposition that was there before is restored exactly.
//!
//! The signal handler only writes a byte to a pipe; a watcher thread does the rest.

use std::sync::{Mutex, Once, Weak};

use crate::pool::state::{PoolState, Stop};
use crate::sys::interrupt;
use crate::sys::socket;

static POOLS: Mutex<Vec<(u64, Weak<PoolState>)>> = Mutex::new(Vec::new());
static NEXT: Mutex<u64> = Mutex::new(1);
static WATCHER: Once = Once::new();

/// Keeps a pool registered for Ctrl-C while alive.
pub(crate) struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        pools.retain(|(id, _)| *id != self.0);
        if pools.is_empty() {
            let _ = interrupt::restore_previous();
        }
    }
}

/// Registers a pool; installs the handler and the watcher on first use.
pub(crate) fn register(shared: &std::sync::Arc<PoolState>) -> std::io::Result<Registration> {
    let id = {
        let mut n = NEXT.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    };
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    pools.push((id, std::sync::Arc::downgrade(shared)));
    let fd = interrupt::install()?;
    drop(pools);
    WATCHER.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("mproc-ctrl-c".into())
            .spawn(move || watch(fd));
    });
    Ok(Registration(id))
}

fn watch(fd: std::os::fd::BorrowedFd<'static>) {
    let mut seen = 0u64;
    loop {
        if socket::poll(&[(fd, false)], None).is_err() {
            return;
        }
        let mut buf = [0u8; 64];
        while matches!(socket::read(fd, &mut buf), Ok(n) if n > 0) {}
        let count = interrupt::count();
        while seen < count {
            seen += 1;
            let pools: Vec<_> = POOLS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter_map(|(_, w)| w.upgrade())
                .collect();
            if pools.is_empty() {
                interrupt::pass_on();
                continue;
            }
            for p in &pools {
                let n = p.interrupt();
                if n == 1 {
                    p.cancel_pending("interrupted by Ctrl-C");
                    p.request_stop(Stop::Graceful);
                } else {
                    p.request_stop(Stop::Terminate("interrupted by Ctrl-C (twice)"));
                }
            }
            if pools.iter().any(|p| p.interrupts() >= 2) {
                let _ = interrupt::restore_previous();
            }
        }
    }
}
