//! The robust lock's word protocol (`sync::raw`): mutual exclusion, no waiter
//! sleeping through the release it waits for, one survivor taking over from a dead
//! holder.
//!
//! The models run the production [`acquire_contended`] and [`release`] over a loom
//! owner word and [`crate::loom::Word`] for `seq`. The sleep has no timeout (loom
//! has no clock), so a lost wake-up is a deadlock that loom reports; in a program
//! the nap after which a waiter looks again would only hide it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicU64};
use loom::thread;

use crate::loom::Word;
use crate::sync::FutexWord;
use crate::sync::raw::{Contended, HolderWatch, WAITERS, acquire_contended, release};

struct Lock {
    owner: AtomicU64,
    seq: Word,
    /// Set while someone is inside the critical section.
    inside: AtomicBool,
}

fn new_lock(owner: u64) -> Arc<Lock> {
    Arc::new(Lock {
        owner: AtomicU64::new(owner),
        seq: Word::new(0),
        inside: AtomicBool::new(false),
    })
}

/// A mark that stands for a holder that died holding the lock.
const DEAD: u64 = 99 << 32;

/// `lock` as the program does it: the fast CAS, then the contended path (a sleep
/// without timeout; `dead` answers for [`DEAD`] only).
fn acquire(l: &Lock, me: u64) -> Contended {
    if l.owner
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return Contended::Taken;
    }
    acquire_contended(
        &l.owner,
        &l.seq,
        me,
        None,
        &mut HolderWatch::default(),
        |owner| owner & !WAITERS == DEAD,
        |seq: &Word, s, _nap: Duration| {
            seq.sleep(s, None);
        },
    )
}

/// The critical section: nobody else is inside.
fn critical(l: &Lock) {
    assert!(
        !l.inside.swap(true, Ordering::SeqCst),
        "two holders at once"
    );
    l.inside.store(false, Ordering::SeqCst);
}

fn locker(l: &Arc<Lock>, me: u64) -> thread::JoinHandle<Contended> {
    let l = Arc::clone(l);
    thread::spawn(move || {
        let got = acquire(&l, me);
        critical(&l);
        release(&l.owner, &l.seq);
        got
    })
}

#[test]
fn loom_lock_two_lockers_exclude_and_both_finish() {
    loom::model(|| {
        let l = new_lock(0);
        let a = locker(&l, 1 << 32);
        let b = locker(&l, 2 << 32);
        assert_eq!(a.join().unwrap(), Contended::Taken);
        assert_eq!(b.join().unwrap(), Contended::Taken);
        assert_eq!(l.owner.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn loom_lock_release_reaches_every_sleeper() {
    // Two waiters may both sleep on a held lock; the release wakes one. The woken
    // one must take the lock with WAITERS set (or set it again), or the other
    // sleeps through every later release: loom reports that as a deadlock.
    loom::model(|| {
        let me = 3 << 32;
        let l = new_lock(me);
        let a = locker(&l, 1 << 32);
        let b = locker(&l, 2 << 32);
        thread::yield_now();
        critical(&l);
        release(&l.owner, &l.seq);
        assert_eq!(a.join().unwrap(), Contended::Taken);
        assert_eq!(b.join().unwrap(), Contended::Taken);
        assert_eq!(l.owner.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn loom_lock_one_survivor_takes_over_from_a_dead_holder() {
    // The holder died holding the lock (its mark stays); each of two waiters may
    // find it dead, but only one takes it over, and the other gets it after that
    // one's release.
    loom::model(|| {
        let l = new_lock(DEAD);
        let a = locker(&l, 1 << 32);
        let b = locker(&l, 2 << 32);
        let mut outcomes = [a.join().unwrap(), b.join().unwrap()];
        outcomes.sort_by_key(|o| *o as u8);
        assert_eq!(outcomes, [Contended::Taken, Contended::TakenFromDead]);
        assert_eq!(l.owner.load(Ordering::SeqCst), 0);
    });
}
