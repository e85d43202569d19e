//! The table of async waiters a shared-memory object keeps beside its futex words.
//!
//! A thread that waits on a shared object sleeps on a futex word; an async task
//! cannot (no reactor watches a futex), so it registers instead: it claims a slot
//! of the object's table, writes its wake socket's name there
//! (`sys::wake_socket`: one socket per waiter, owned by its process, watched by
//! its reactor), and counts itself among the object's waiters of that kind. The
//! object's wake path, which wakes futex sleepers only when its waiter count says
//! someone sleeps, also signals the table's sockets of that kind only when the
//! table's own count says an async waiter is registered: the blocking fast path is
//! unchanged, and a wake with no async waiter costs one more load, in the slow
//! path only.
//!
//! A slot is a `u64`: 0 when free, else `(kind + 1) << 60 | nonce << 32 | pid`.
//! A slot whose socket is gone (its process died) is freed by the next waker. With
//! every slot taken, a further async waiter does not sleep on a socket: it looks
//! again every [`POLL`] (it never blocks the thread).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::sys::wake_socket;

/// Slots in a table.
pub(crate) const SLOTS: usize = 16;

/// The table: the number of registered async waiters, and the slots.
pub(crate) struct Table<'a> {
    pub(crate) count: &'a AtomicU32,
    pub(crate) slots: [&'a AtomicU64; SLOTS],
}

fn unpack(v: u64) -> (u8, u32, u32) {
    (
        ((v >> 60) as u8).wrapping_sub(1),
        ((v >> 32) & 0x0fff_ffff) as u32,
        v as u32,
    )
}

impl Table<'_> {
    /// Signals the registered async waiters of `kind`; returns how many were
    /// signalled. Called by the object's wake path after it made their condition
    /// true and saw its waiter count non-zero.
    pub(crate) fn wake(&self, kind: u8) -> usize {
        if self.count.load(Ordering::SeqCst) == 0 {
            return 0;
        }
        let mut signalled = 0;
        for slot in self.slots {
            let v = slot.load(Ordering::SeqCst);
            if v == 0 {
                continue;
            }
            let (k, nonce, pid) = unpack(v);
            if k != kind {
                continue;
            }
            match wake_socket::send(pid, nonce) {
                Ok(true) => signalled += 1,
                // Its socket is gone: the waiter's process died registered.
                Ok(false) => {
                    if slot
                        .compare_exchange(v, 0, Ordering::SeqCst, Ordering::Relaxed)
                        .is_ok()
                    {
                        let _ = self
                            .count
                            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |c| {
                                c.checked_sub(1)
                            });
                    }
                }
                // No socket to send from: the waiter finds out within its nap.
                Err(_) => {}
            }
        }
        signalled
    }
}

/// Wakes the async waiter whose wake socket is named by `id` (a [`Parked::id`]):
/// `Some(true)` when it was signalled (or already had a wake-up pending),
/// `Some(false)` when its socket is gone (its process died, or it finished and
/// the name was not reused), `None` when this process cannot send at all.
pub(crate) fn signal(id: u64) -> Option<bool> {
    wake_socket::send(id as u32, (id >> 32) as u32).ok()
}

#[cfg(feature = "tokio")]
pub(crate) use waiter::{POLL, Parked, Registration};

#[cfg(feature = "tokio")]
mod waiter {
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use std::time::Duration;

    use super::{SLOTS, Table};
    use crate::sys::wake_socket;

    /// Longest sleep before a registered waiter looks again on its own (as the
    /// blocking waiters' futex nap: a wake lost to a dead process's bookkeeping
    /// costs at most this).
    pub(crate) const NAP: Duration = Duration::from_millis(50);
    /// How often a waiter that found no free slot looks again.
    pub(crate) const POLL: Duration = Duration::from_millis(2);

    /// This process's idle wake sockets, reused across waits (and the pid they
    /// were made for: a forked child must not share its parent's).
    static POOL: Mutex<(u32, Vec<(OwnedFd, u32)>)> = Mutex::new((0, Vec::new()));
    static NONCE: AtomicU32 = AtomicU32::new(1);

    fn take_socket(pid: u32) -> Option<(OwnedFd, u32)> {
        {
            let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
            if pool.0 != pid {
                *pool = (pid, Vec::new());
            }
            if let Some(s) = pool.1.pop() {
                return Some(s);
            }
        }
        for _ in 0..4 {
            let nonce = NONCE.fetch_add(1, Ordering::Relaxed) & 0x0fff_ffff;
            if let Ok(sock) = wake_socket::bind(pid, nonce) {
                return Some((sock, nonce));
            }
        }
        None
    }

    fn give_socket(pid: u32, sock: (OwnedFd, u32)) {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if pool.0 == pid && pool.1.len() < 64 {
            pool.1.push(sock);
        }
    }

    /// A wake socket held for one wait, outside any table: for an object that
    /// keeps its waiters' names itself (a barrier's slots). [`id`](Parked::id)
    /// names it for [`signal`](super::signal); dropping it returns the socket to
    /// the process's pool.
    pub(crate) struct Parked {
        sock: Option<(OwnedFd, u32)>,
        pid: u32,
    }

    impl Parked {
        /// A wake socket of this process, or `None` when none can be made (out of
        /// descriptors).
        pub(crate) fn new() -> Option<Parked> {
            let pid = crate::sys::process::getpid();
            let sock = take_socket(pid)?;
            Some(Parked {
                sock: Some(sock),
                pid,
            })
        }

        /// The socket's name as one non-zero word: `nonce << 32 | pid`.
        pub(crate) fn id(&self) -> u64 {
            let nonce = self.sock.as_ref().map_or(0, |s| s.1);
            u64::from(nonce) << 32 | u64::from(self.pid)
        }

        /// Forgets wake-ups already received (before the condition is checked).
        pub(crate) fn drain(&self) {
            if let Some((sock, _)) = &self.sock {
                wake_socket::drain(sock);
            }
        }

        /// Sleeps until woken, or for `max` at most.
        pub(crate) async fn sleep(&self, max: Duration) {
            if let Some((sock, _)) = &self.sock {
                let _ = tokio::time::timeout(max, crate::aio::readable(sock.as_fd())).await;
            }
        }
    }

    impl Drop for Parked {
        fn drop(&mut self) {
            if let Some((sock, nonce)) = self.sock.take() {
                wake_socket::drain(&sock);
                give_socket(self.pid, (sock, nonce));
            }
        }
    }

    /// One async waiter's place in a table, released when dropped (completed or
    /// cancelled).
    pub(crate) struct Registration<'a> {
        count: &'a AtomicU32,
        slot: Option<(&'a AtomicU64, OwnedFd, u32)>,
        pid: u32,
    }

    impl<'a> Registration<'a> {
        /// Registers as a waiter of `kind`. The caller then counts itself in the
        /// object's waiter count (so that its wake path runs), drains, checks its
        /// condition, and only then sleeps.
        pub(crate) fn new(table: &Table<'a>, kind: u8) -> Registration<'a> {
            let pid = crate::sys::process::getpid();
            let mut reg = Registration {
                count: table.count,
                slot: None,
                pid,
            };
            let Some((sock, nonce)) = take_socket(pid) else {
                return reg;
            };
            let entry = (u64::from(kind) + 1) << 60 | u64::from(nonce) << 32 | u64::from(pid);
            table.count.fetch_add(1, Ordering::SeqCst);
            for slot in table.slots.iter().take(SLOTS) {
                if slot
                    .compare_exchange(0, entry, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                {
                    reg.slot = Some((slot, sock, nonce));
                    return reg;
                }
            }
            decrement(table.count);
            give_socket(pid, (sock, nonce));
            reg
        }

        /// Forgets wake-ups already received (before the condition is checked).
        pub(crate) fn drain(&self) {
            if let Some((_, sock, _)) = &self.slot {
                wake_socket::drain(sock);
            }
        }

        /// Sleeps until woken, or [`NAP`] (registered), or [`POLL`] (no slot).
        pub(crate) async fn sleep(&self) {
            match &self.slot {
                Some((_, sock, _)) => {
                    let _ = tokio::time::timeout(NAP, crate::aio::readable(sock.as_fd())).await;
                }
                None => tokio::time::sleep(POLL).await,
            }
        }
    }

    impl Drop for Registration<'_> {
        fn drop(&mut self) {
            if let Some((slot, sock, nonce)) = self.slot.take() {
                slot.store(0, Ordering::SeqCst);
                decrement(self.count);
                wake_socket::drain(&sock);
                give_socket(self.pid, (sock, nonce));
            }
        }
    }

    fn decrement(c: &AtomicU32) {
        let _ = c.fetch_update(Ordering::SeqCst, Ordering::Relaxed, |v| v.checked_sub(1));
    }
}
