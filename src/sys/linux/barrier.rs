//! Asymmetric memory barriers between processes (`membarrier(2)`).
//!
//! A sleep/wake handshake over shared memory is a store-then-load on each side: the
//! waker stores "there is data" and then loads "is anybody asleep?"; the waiter
//! stores "I am going to sleep" and then loads "is there data?". Each side needs a
//! full fence between its store and its load, or both loads can miss both stores
//! and the waiter sleeps through the wake. When one side runs rarely (a waiter about
//! to sleep) and the other on every operation (a producer after every put), the
//! rare side can pay for both: `MEMBARRIER_CMD_GLOBAL_EXPEDITED` runs a full barrier
//! on every CPU that is running a thread of a process that registered for it, so the
//! frequent side needs only a compiler barrier. Either the frequent side's load runs
//! after that barrier (and sees the waiter's store), or its store is drained by the
//! barrier before `membarrier` returns (and the waiter's load sees it).
//!
//! A process receives these barriers only once it has registered, which this module
//! does once per process ([`register`]). The registration belongs to the address
//! space: a forked child inherits it, an `execve` drops it (a re-executed process
//! starts with fresh statics and registers again when it needs to).
//!
//! No unsafe code: rustix wraps the system call.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::thread::{MembarrierCommand, membarrier, membarrier_query};

const UNKNOWN: u8 = 0;
const REGISTERED: u8 = 1;
const UNAVAILABLE: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Registers this process to receive global expedited barriers; `true` when it is
/// (now or already) registered, `false` when the kernel lacks the command or a
/// sandbox forbids it. Registering is idempotent; the answer is cached.
pub(crate) fn register() -> bool {
    match STATE.load(Ordering::Acquire) {
        REGISTERED => true,
        UNAVAILABLE => false,
        _ => register_slow(),
    }
}

#[cold]
fn register_slow() -> bool {
    let supported = membarrier_query();
    let ok = supported.contains_command(MembarrierCommand::GlobalExpedited)
        && supported.contains_command(MembarrierCommand::RegisterGlobalExpedited)
        && membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok();
    STATE.store(if ok { REGISTERED } else { UNAVAILABLE }, Ordering::Release);
    ok
}

/// Runs a full memory barrier on every CPU that currently runs a thread of a
/// registered process, this one included (the call itself is a full barrier).
///
/// The caller must have [`register`]ed (it is how the caller's processes agreed to
/// rely on this), but the barrier does not depend on it.
pub(crate) fn global_barrier() -> io::Result<()> {
    membarrier(MembarrierCommand::GlobalExpedited).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_is_cached_and_the_barrier_runs() {
        let first = register();
        assert_eq!(register(), first);
        if first {
            global_barrier().expect("a registered process may issue the barrier");
        }
    }
}
