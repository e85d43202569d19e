//! Fault tests: SIGKILL a process that holds a lock (or waits at a barrier, or
//! holds a permit) and check what the survivors see. Every wait is bounded.

use std::sync::OnceLock;
use std::time::Duration;

use mproc::process::Process;
use mproc::shm::Value;
use mproc::sync::{
    Barrier, BrokenReason, Condition, Event, Lock, LockTimeoutError, RLock, Semaphore,
};

use crate::{LONG, eventually, watchdog};

/// Sleeps until killed (bounded, so that a test bug cannot leave it forever; the
/// parent's death kills it anyway).
fn hang() -> ! {
    std::thread::sleep(LONG * 3);
    std::process::exit(3)
}

fn hold_lock((lock, held): (Lock, Event)) -> u8 {
    let guard = lock.lock().unwrap_or_else(|d| d.into_inner());
    held.set();
    std::mem::forget(guard);
    hang()
}

fn start_holder<A>(f: fn(A) -> u8, arg: A, held: &Event) -> Process<u8>
where
    A: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let child = Process::start(f, arg).unwrap();
    assert!(held.wait_timeout(LONG), "the holder never took the lock");
    held.clear();
    child
}

fn kill(child: Process<u8>) -> u32 {
    let pid = child.pid();
    child.kill().unwrap();
    let err = child.join().unwrap_err();
    assert_eq!(err.signal(), Some(9), "{err}");
    pid
}

#[test]
fn lock_holder_killed_survivor_recovers() {
    let _w = watchdog("lock_holder_killed_survivor_recovers", LONG * 2);
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let holder = start_holder(hold_lock, (lock.clone(), held.clone()), &held);
    assert_eq!(lock.holder_pid(), Some(holder.pid()));
    let pid = kill(holder);

    // The survivor gets the lock and the news...
    let died = match lock.lock_timeout(LONG) {
        Err(LockTimeoutError::OwnerDied(d)) => d,
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    assert_eq!(died.pid(), Some(pid));
    assert!(died.to_string().contains(&format!("pid {pid}")), "{died}");
    drop(died.into_inner()); // ...and releases without repairing:
    assert!(lock.is_owner_died());
    // so the next acquisition hears it again (like std's poison),
    let guard = lock.lock().unwrap_err().into_inner();
    guard.mark_consistent(); // until someone repairs and says so.
    drop(guard);
    assert!(!lock.is_owner_died());
    drop(lock.lock().expect("consistent again"));
}

fn wait_for_lock(lock: Lock) -> Option<u32> {
    match lock.lock_timeout(LONG) {
        Err(LockTimeoutError::OwnerDied(d)) => {
            let pid = d.pid();
            d.into_inner().mark_consistent();
            pid
        }
        Ok(_) => panic!("the waiter got the lock without an owner-died report"),
        Err(e) => panic!("the waiter failed: {e}"),
    }
}

#[test]
fn lock_holder_killed_repeatedly_with_a_waiter_blocked() {
    let _w = watchdog(
        "lock_holder_killed_repeatedly_with_a_waiter_blocked",
        LONG * 4,
    );
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    for round in 0..4 {
        let holder = start_holder(hold_lock, (lock.clone(), held.clone()), &held);
        let waiter = Process::start(wait_for_lock, lock.clone()).unwrap();
        // Let the waiter block in the kernel (or spin) on the held lock: the kill
        // must wake it. (If it has not started yet, it finds the owner-died state.)
        std::thread::sleep(Duration::from_millis(20));
        let pid = kill(holder);
        assert_eq!(waiter.join().unwrap(), Some(pid), "round {round}");
        assert!(!lock.is_owner_died());
        drop(lock.lock_timeout(LONG).expect("repaired by the waiter"));
    }
}

fn hold_rlock_deep((rlock, held): (RLock, Event)) -> u8 {
    for _ in 0..3 {
        std::mem::forget(rlock.lock().unwrap_or_else(|d| d.into_inner()));
    }
    held.set();
    hang()
}

#[test]
fn rlock_holder_killed_repeatedly() {
    let _w = watchdog("rlock_holder_killed_repeatedly", LONG * 3);
    let rlock = RLock::new().unwrap();
    let held = Event::new().unwrap();
    for _ in 0..3 {
        let holder = start_holder(hold_rlock_deep, (rlock.clone(), held.clone()), &held);
        let pid = kill(holder);
        let died = match rlock.lock_timeout(LONG) {
            Err(LockTimeoutError::OwnerDied(d)) => d,
            other => panic!("expected OwnerDied, got {other:?}"),
        };
        assert_eq!(died.pid(), Some(pid));
        let outer = died.into_inner();
        // Held once by us now (not three times), and re-entrant as usual.
        let inner = rlock.lock().unwrap_err().into_inner();
        inner.mark_consistent();
        drop((inner, outer));
        assert!(!rlock.is_locked());
        assert!(!rlock.is_owner_died());
    }
}

fn cond_wait_and_report((cond, ready): (Condition, Value<u8>)) -> (bool, Option<u32>) {
    let g = cond.lock().unwrap();
    ready.set(1);
    match cond.wait_timeout(g, LONG) {
        Ok((_g, r)) => (false, Some(u32::from(r.timed_out()))),
        Err(died) => {
            let pid = died.pid();
            let (g, _) = died.into_inner();
            g.mark_consistent();
            (true, pid)
        }
    }
}

fn hold_cond_lock((cond, held): (Condition, Event)) -> u8 {
    std::mem::forget(cond.lock().unwrap_or_else(|d| d.into_inner()));
    held.set();
    hang()
}

#[test]
fn condition_lock_holder_killed_waiter_hears_it() {
    let _w = watchdog("condition_lock_holder_killed_waiter_hears_it", LONG * 3);
    let cond = Condition::new().unwrap();
    let held = Event::new().unwrap();
    for round in 0..2 {
        let ready = Value::new(0u8).unwrap();
        let waiter = Process::start(cond_wait_and_report, (cond.clone(), ready.clone())).unwrap();
        // The waiter sets `ready` under the lock and releases it only in `wait`.
        assert!(eventually(LONG, || {
            ready.get() == 1 && cond.get_lock().try_lock().is_ok()
        }));
        let holder = start_holder(hold_cond_lock, (cond.clone(), held.clone()), &held);
        let pid = kill(holder);
        cond.notify_all(); // notify needs no lock; the waiter must re-take the dead one's
        assert_eq!(waiter.join().unwrap(), (true, Some(pid)), "round {round}");
        let g = cond.lock().expect("repaired by the waiter");
        drop(g);
    }
}

fn corrupt_value_and_die((v, held): (Value<[u32; 2]>, Event)) -> u8 {
    let mut g = v.lock().unwrap_or_else(|d| d.into_inner());
    g.set([1, 0]); // half of an update that should keep both halves equal
    held.set();
    std::mem::forget(g);
    hang()
}

#[test]
fn value_lock_holder_killed_repeatedly() {
    let _w = watchdog("value_lock_holder_killed_repeatedly", LONG * 3);
    let v = Value::with_lock([0u32; 2]).unwrap();
    let held = Event::new().unwrap();
    for _ in 0..3 {
        let holder = start_holder(corrupt_value_and_die, (v.clone(), held.clone()), &held);
        let pid = kill(holder);
        let died = v.lock().unwrap_err();
        assert_eq!(died.pid(), Some(pid));
        let mut g = died.into_inner();
        assert_eq!(g.get(), [1, 0], "the dead holder's half-update is visible");
        g.set([7, 7]); // repair
        g.mark_consistent();
        drop(g);
        assert!(!v.get_lock().unwrap().is_owner_died());
        assert_eq!(v.get(), [7, 7]);
        v.set([0, 0]);
    }
}

fn wait_at_barrier((b, ms): (Barrier, u64)) -> Result<usize, BrokenReason> {
    b.wait_timeout(Duration::from_millis(ms))
        .map_err(|e| e.reason())
}

fn hang_at_barrier(b: Barrier) -> u8 {
    let _ = b.wait_timeout(LONG * 3);
    3
}

#[test]
fn party_killed_while_waiting_breaks_the_barrier() {
    let _w = watchdog("party_killed_while_waiting_breaks_the_barrier", LONG * 3);
    let b = Barrier::new(3).unwrap();
    for round in 0..2 {
        let long = LONG.as_millis() as u64;
        let survivor = Process::start(wait_at_barrier, (b.clone(), long)).unwrap();
        let victim = Process::start(hang_at_barrier, b.clone()).unwrap();
        assert!(eventually(LONG, || b.n_waiting() == 2));
        let pid = kill(victim);
        let reason = survivor.join().unwrap().unwrap_err();
        assert_eq!(
            reason,
            BrokenReason::PartyDied { pid: Some(pid) },
            "round {round}"
        );
        assert!(b.is_broken());
        assert_eq!(b.wait_timeout(LONG).unwrap_err().reason(), reason);
        b.reset();
    }
}

static IN_ACTION: OnceLock<Event> = OnceLock::new();
fn announce_and_hang() {
    if let Some(e) = IN_ACTION.get() {
        e.set();
        hang();
    }
}

fn last_party_hangs_in_action((b, in_action): (Barrier, Event)) -> u8 {
    let _ = IN_ACTION.set(in_action);
    let _ = b.wait_timeout(LONG * 3);
    3
}

#[test]
fn party_killed_in_the_action_breaks_the_barrier() {
    let _w = watchdog("party_killed_in_the_action_breaks_the_barrier", LONG * 2);
    let b = Barrier::builder(2)
        .action(announce_and_hang)
        .build()
        .unwrap();
    let in_action = Event::new().unwrap();
    let long = LONG.as_millis() as u64;
    let survivor = Process::start(wait_at_barrier, (b.clone(), long)).unwrap();
    assert!(eventually(LONG, || b.n_waiting() == 1));
    let last = Process::start(last_party_hangs_in_action, (b.clone(), in_action.clone())).unwrap();
    assert!(in_action.wait_timeout(LONG), "the action never ran");
    let pid = kill(last);
    assert_eq!(
        survivor.join().unwrap().unwrap_err(),
        BrokenReason::PartyDied { pid: Some(pid) }
    );
    assert!(b.is_broken());
}

fn hold_permit((sem, held): (Semaphore, Event)) -> u8 {
    sem.acquire().forget();
    held.set();
    hang()
}

#[test]
fn semaphore_permit_of_a_killed_holder_is_lost() {
    let _w = watchdog("semaphore_permit_of_a_killed_holder_is_lost", LONG);
    let sem = Semaphore::new(1).unwrap();
    let held = Event::new().unwrap();
    let holder = start_holder(hold_permit, (sem.clone(), held.clone()), &held);
    kill(holder);
    // Documented: a semaphore has no owner, so nothing gives the permit back.
    assert_eq!(sem.value(), 0);
    assert!(sem.acquire_timeout(Duration::from_millis(20)).is_none());
    sem.release(); // someone who knows may release it by hand
    assert!(sem.try_acquire().is_some());
}

fn wait_forever_on((e, sem, lock): (Event, Semaphore, Lock)) -> u8 {
    let _ = e.wait_timeout(LONG * 3);
    let _ = sem.acquire_timeout(LONG * 3);
    let _ = lock.lock_timeout(LONG * 3);
    3
}

fn block_on_lock(lock: Lock) -> u8 {
    let _ = lock.lock_timeout(LONG * 3);
    3
}

#[test]
fn killed_waiters_leave_nothing_behind() {
    let _w = watchdog("killed_waiters_leave_nothing_behind", LONG * 2);
    let (e, sem, lock) = (
        Event::new().unwrap(),
        Semaphore::new(0).unwrap(),
        Lock::new().unwrap(),
    );
    let waiter = Process::start(wait_forever_on, (e.clone(), sem.clone(), lock.clone())).unwrap();
    std::thread::sleep(Duration::from_millis(20)); // let it sleep in the kernel
    kill(waiter);
    let g = lock.lock().unwrap();
    let blocked = Process::start(block_on_lock, lock.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    kill(blocked);
    drop(g);
    // Everything still works for the living.
    e.set();
    assert!(e.wait_timeout(LONG));
    sem.release();
    assert!(sem.acquire_timeout(LONG).is_some());
    assert!(!lock.is_owner_died(), "a killed waiter never held the lock");
    drop(lock.lock_timeout(LONG).unwrap());
}

#[test]
fn lock_holder_killed_under_every_start_method() {
    use mproc::process::StartMethod;
    let _w = watchdog("lock_holder_killed_under_every_start_method", LONG * 3);
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    for method in StartMethod::ALL {
        let holder = Process::builder()
            .start_method(method)
            .start(hold_lock, (lock.clone(), held.clone()))
            .unwrap();
        assert!(
            held.wait_timeout(LONG),
            "{method:?}: the holder never took the lock"
        );
        held.clear();
        let pid = kill(holder);
        let died = match lock.lock_timeout(LONG) {
            Err(LockTimeoutError::OwnerDied(d)) => d,
            other => panic!("{method:?}: expected OwnerDied, got {other:?}"),
        };
        assert_eq!(died.pid(), Some(pid), "{method:?}");
        died.into_inner().mark_consistent();
    }
}
