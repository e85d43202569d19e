//! Loom models of the ring's protocol (`--cfg loom` only).
//!
//! The models run the production algorithm ([`Protocol`]'s provided methods: the
//! commit, the lock-free take with its claim and helping, the producer lock's
//! compare-and-swaps and the repair after a producer's death) over loom atomics,
//! with threads standing in for processes. A tiny ring (64 bytes: two records of
//! one word, then a wrap) makes every model lap the ring, so a slow consumer's
//! optimistic copy can be overwritten under it, pads are written and crossed, and
//! room depends on consumers (or helpers) moving `head`.
//!
//! A "death" is a panic at a fault-injection step ([`Protocol::step`]), caught at
//! the top of the dying thread, which then publishes its thread mark as dead: the
//! model's stand-in for the kernel's answer to `thread_mark::liveness`.
//!
//! What is modelled, and what is not: placement of a record follows `put_locked`
//! (the tail, else the next lap) without the early wrap at `wrap_at` (a policy over
//! the same commit). The ring's own futex waits and the `membarrier` protocol are
//! not modelled (loom has no asymmetric fence); a thread that waits for room, data
//! or the lock sleeps on one futex word (`crate::loom::Word`) that every change
//! bumps, so that loom explores no spin loops. A death bumps it too, standing in
//! for the `NAP` after which a real sleeper looks again.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --lib --release loom_`;
//! each model prints how many interleavings it explored (`--nocapture`).

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::{Arc as StdArc, Once};

use loom::sync::Arc;
use loom::sync::atomic::AtomicU64;
use loom::thread;

use super::algorithm::Protocol;
use crate::loom::Word as Futex;
use crate::sync::FutexWord;

/// The ring's size in the models: 64 bytes, two 24-byte records per lap.
const SIZE: u64 = 64;
/// Every record's payload: one word.
const PAYLOAD: u64 = 8;

loom::thread_local! {
    /// The step at which this model thread "dies" (0: never).
    static CRASH_AT: Cell<u32> = Cell::new(0);
    /// Whether this thread's last put placed its record at the next lap.
    static WRAPPED: Cell<bool> = Cell::new(false);
}

/// The payload of a model thread's simulated death.
struct Death;

/// Keeps the models' simulated deaths out of the test output (other panics are
/// reported as usual).
fn quiet_deaths() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Death>().is_none() {
                default(info);
            }
        }));
    });
}

/// A ring's shared words, as loom atomics.
struct Model {
    lock: AtomicU64,
    tail: AtomicU64,
    put_count: AtomicU64,
    head: AtomicU64,
    get_count: AtomicU64,
    ring: Vec<AtomicU64>,
    asymmetric: bool,
    /// A producer's mark once it has died (what `/proc` would tell).
    dead: AtomicU64,
    /// Bumped (and its sleepers woken) whenever something a waiter waits for
    /// may have changed.
    seq: Futex,
}

impl Model {
    /// An empty ring whose positions start at `start` (a multiple of 8).
    fn new(start: u64, asymmetric: bool) -> Model {
        Model {
            lock: AtomicU64::new(0),
            tail: AtomicU64::new(start),
            put_count: AtomicU64::new(0),
            head: AtomicU64::new(start),
            get_count: AtomicU64::new(0),
            ring: (0..SIZE / 8).map(|_| AtomicU64::new(0)).collect(),
            asymmetric,
            dead: AtomicU64::new(0),
            seq: Futex::new(0),
        }
    }

    /// What a waiter looks at before it checks its condition.
    fn seq(&self) -> u32 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Sleeps unless something changed since `seq` was read.
    fn sleep(&self, seq: u32) {
        let _ = self.seq.sleep(seq, None);
    }

    /// Something changed: wakes every sleeper.
    fn changed(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.seq.wake(u32::MAX);
    }
}

impl Protocol for Model {
    type Word = AtomicU64;

    fn size(&self) -> u64 {
        SIZE
    }
    fn mask(&self) -> u64 {
        SIZE - 1
    }
    fn max_message(&self) -> u64 {
        2 * PAYLOAD
    }
    fn asymmetric(&self) -> bool {
        self.asymmetric
    }
    fn lock_word(&self) -> &AtomicU64 {
        &self.lock
    }
    fn tail(&self) -> &AtomicU64 {
        &self.tail
    }
    fn put_count(&self) -> &AtomicU64 {
        &self.put_count
    }
    fn head(&self) -> &AtomicU64 {
        &self.head
    }
    fn get_count(&self) -> &AtomicU64 {
        &self.get_count
    }
    fn ring_word(&self, phys: usize) -> &AtomicU64 {
        &self.ring[phys / 8]
    }
    fn step(&self, n: u32) {
        if CRASH_AT.with(Cell::get) == n {
            std::panic::panic_any(Death);
        }
    }
    fn lost_claim(&self) {
        // Scheduling advice only: the model's threads share no CPU to give up.
    }
}

/// A payload: the producer and its own sequence number.
fn payload(producer: u64, seq: u64) -> u64 {
    producer << 32 | seq
}

/// Takes the producer lock as `me`, waiting while a live producer holds it and
/// taking it over from a dead one, then repairing, as `Ring::lock` does.
fn lock(m: &Model, me: u64) {
    loop {
        let seq = m.seq();
        if m.acquire(0, me) {
            return;
        }
        let holder = m.lock_word().load(Ordering::Acquire);
        if holder != 0 && m.dead.load(Ordering::Acquire) == holder && m.acquire(holder, me) {
            m.repair_producer();
            return;
        }
        m.sleep(seq);
    }
}

/// One put of `value` under the producer lock, placed as `put_locked` places it
/// (at the tail, else at the start of the next lap); `false` when the ring is full.
fn put_locked(m: &Model, value: u64) -> bool {
    let t = m.tail().load(Ordering::Relaxed);
    let c = m.put_count().load(Ordering::Relaxed);
    let h = m.head().load(Ordering::Acquire);
    let Some(p) = [t, m.next_lap(t)]
        .into_iter()
        .find(|&p| m.fits(p, h, PAYLOAD))
    else {
        return false;
    };
    WRAPPED.with(|w| w.set(p != t));
    m.step(1);
    // The payload, as `RingWriter` writes it: before the commit, in free space.
    m.ring_word(m.phys(p) + 16).store(value, Ordering::Relaxed);
    m.commit_record(t, c, p, PAYLOAD);
    true
}

/// A put without waiting for room: one try under the lock and, when full, a second
/// one after helping `head` on (as a producer does before it waits). `false`:
/// still full.
fn try_put(m: &Model, me: u64, value: u64) -> bool {
    for attempt in 0..2 {
        lock(m, me);
        let done = put_locked(m, value);
        m.release();
        m.changed();
        if done {
            return true;
        }
        if attempt == 0 {
            m.help_head();
        }
    }
    false
}

/// One take: the payload as `read` copied it before the claim.
fn take(m: &Model) -> Option<u64> {
    m.take_record(&mut |off, n| {
        // A copy that loses the claim may see anything; its length is checked
        // against the ring before `read` runs, never trusted beyond that.
        Ok((n as u64 == PAYLOAD).then(|| m.ring_word(off).load(Ordering::Relaxed)))
    })
    .expect("the model's ring is never corrupt")
    .map(|x| x.expect("a claimed record has the length it was put with"))
}

/// Runs `f` on a model thread that dies at `step` (0: lives); on its death it
/// publishes `mark` as dead. Returns whether it died.
fn mortal(m: &Model, step: u32, mark: u64, f: impl FnOnce()) -> bool {
    CRASH_AT.with(|c| c.set(step));
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    CRASH_AT.with(|c| c.set(0));
    if died {
        m.dead.store(mark, Ordering::Release);
        m.changed();
    }
    died
}

/// After every thread is done: what is left is taken, and the positions agree.
fn drain_and_check(m: &Model) -> Vec<u64> {
    // A producer that died last is repaired by the next one to lock.
    lock(m, u64::MAX);
    m.release();
    let mut rest = Vec::new();
    while let Some(v) = take(m) {
        rest.push(v);
    }
    m.help_head();
    assert_eq!(
        m.get_count.load(Ordering::SeqCst),
        m.put_count.load(Ordering::SeqCst),
        "every counted put was taken"
    );
    assert_eq!(
        m.head.load(Ordering::SeqCst),
        m.tail.load(Ordering::SeqCst),
        "an empty ring's head is at its tail"
    );
    rest
}

/// Runs one model, counting its interleavings.
fn explore(name: &str, f: impl Fn() + Sync + Send + 'static) {
    quiet_deaths();
    let runs = StdArc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = StdArc::clone(&runs);
    let mut builder = loom::model::Builder::new();
    // Waiting threads yield in a loop, each look a branch: more than loom's
    // default 1,000 per execution.
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        builder.max_branches = 20_000;
    }
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "loom model {name}: {} interleavings explored, no violation",
        runs.load(Ordering::Relaxed)
    );
}

/// A ring holding items 1 and 2 of producer 1, filling its first lap.
fn preloaded(asymmetric: bool) -> Arc<Model> {
    let m = Arc::new(Model::new(0, asymmetric));
    for seq in 1..=2 {
        assert!(try_put(&m, 1, payload(1, seq)));
    }
    m
}

/// Checks what was taken, in take order per taker, against what was put.
fn check_taken(takers: &[Vec<u64>], rest: &[u64], put: &[u64]) {
    let mut all: Vec<u64> = takers.iter().flatten().chain(rest).copied().collect();
    for got in takers.iter().chain([&rest.to_vec()]) {
        assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
    }
    all.sort_unstable();
    assert_eq!(all, put, "each item taken exactly once, intact");
}

#[test]
fn loom_ring_put_take_two_consumers_across_a_wrap() {
    // Items 1 and 2 fill the ring's first lap. One consumer takes once, another
    // twice, while the producer puts item 3, which fits only behind a pad at the
    // start of the next lap, over item 1's bytes, once both were taken: a consumer
    // still copying item 1 then copies item 3's bytes and must lose its claim.
    for asymmetric in [false, true] {
        explore(
            &format!("put_take_across_a_wrap(asymmetric={asymmetric})"),
            move || {
                let m = preloaded(asymmetric);
                let takers: Vec<_> = [1, 2]
                    .into_iter()
                    .map(|n| {
                        let m = Arc::clone(&m);
                        thread::spawn(move || (0..n).filter_map(|_| take(&m)).collect::<Vec<_>>())
                    })
                    .collect();
                let third = try_put(&m, 1, payload(1, 3));
                let takers: Vec<Vec<u64>> = takers.into_iter().map(|t| t.join().unwrap()).collect();
                let mut put = vec![payload(1, 1), payload(1, 2)];
                let mut rest = drain_and_check(&m);
                if !third {
                    // Full throughout: put it now, into the emptied ring.
                    assert!(try_put(&m, 1, payload(1, 3)));
                    rest.extend(drain_and_check(&m));
                }
                put.push(payload(1, 3));
                check_taken(&takers, &rest, &put);
            },
        );
    }
}

#[test]
fn loom_ring_dead_consumer_is_helped_past() {
    // A consumer dies just before its claim (step 12) or just after it, with `head`
    // not yet moved (step 13). Another consumer and the producer, which needs that
    // room for item 3, move `head` on (help); nothing else is lost or taken twice.
    for step in [12, 13] {
        explore(&format!("dead_consumer(step={step})"), move || {
            let m = preloaded(false);
            let victim = {
                let m = Arc::clone(&m);
                thread::spawn(move || {
                    let mut got = None;
                    let died = mortal(&m, step, 0, || got = take(&m));
                    (died, got)
                })
            };
            let other = {
                let m = Arc::clone(&m);
                thread::spawn(move || take(&m).into_iter().collect::<Vec<_>>())
            };
            let third = try_put(&m, 1, payload(1, 3));
            let (died, victims) = victim.join().unwrap();
            assert!(died || victims.is_some(), "a live consumer found an item");
            let mut takers = vec![other.join().unwrap()];
            takers.extend(victims.map(|v| vec![v]));
            let mut rest = drain_and_check(&m);
            if !third {
                assert!(try_put(&m, 1, payload(1, 3)));
                rest.extend(drain_and_check(&m));
            }
            let mut put = vec![payload(1, 1), payload(1, 2), payload(1, 3)];
            if died && step == 13 {
                // It claimed an item, which died with it: the first one left then.
                let lost = put
                    .iter()
                    .position(|v| !takers.iter().flatten().chain(&rest).any(|x| x == v))
                    .expect("the dead consumer's item is missing");
                put.remove(lost);
            }
            check_taken(&takers, &rest, &put);
        });
    }
}

#[test]
fn loom_ring_dead_producer_is_taken_over_and_repaired() {
    // Producer 1 dies at each step of its put (0: it lives) while producer 2 waits
    // for the lock and a consumer takes. Producer 2 takes the dead mark over, repairs
    // and puts. The dead put is there, once and intact, iff it passed its commit
    // point (the record's stamp, or the pad when the record wrapped); producer 2's
    // always is; the ring's counts and positions agree afterwards.
    for start in [0, 48] {
        for step in 0..=8 {
            explore(
                &format!("producer_takeover(start={start}, step={step})"),
                move || {
                    let m = Arc::new(Model::new(start, false));
                    let first = {
                        let m = Arc::clone(&m);
                        thread::spawn(move || {
                            let mut put = false;
                            let died = mortal(&m, step, 1, || put = try_put(&m, 1, payload(1, 1)));
                            (died, put, WRAPPED.with(Cell::get))
                        })
                    };
                    let consumer = {
                        let m = Arc::clone(&m);
                        thread::spawn(move || take(&m))
                    };
                    let second = try_put(&m, 2, payload(2, 1));
                    let (died, first_put, wrapped) = first.join().unwrap();
                    let mut got: Vec<u64> = consumer.join().unwrap().into_iter().collect();
                    got.extend(drain_and_check(&m));
                    if !second {
                        // Full (the ring's first lap holds item 1 and the pad): again,
                        // now that it is empty.
                        assert!(try_put(&m, 2, payload(2, 1)));
                        got.extend(drain_and_check(&m));
                    }
                    // Step n runs before the store that follows it: the record's stamp
                    // is stored after step 4, the pad after step 5.
                    let committed = if died {
                        if wrapped { step >= 6 } else { step >= 5 }
                    } else {
                        first_put
                    };
                    let first_at = got.iter().position(|&v| v == payload(1, 1));
                    let second_at = got.iter().position(|&v| v == payload(2, 1));
                    assert_eq!(got.len(), if committed { 2 } else { 1 }, "{got:?}");
                    assert!(second_at.is_some(), "{got:?}");
                    // (Either order: producer 2 may have locked first.)
                    assert_eq!(first_at.is_some(), committed, "{got:?}");
                },
            );
        }
    }
}
