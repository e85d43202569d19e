//! In-process "abandon" tests: a thread dies (holding the producer lock, for a put) at
//! every step of the put and get protocols, with and without a wrap of the ring;
//! the survivors must find the queue consistent, every committed item exactly once,
//! in order, and count one recovery per death.

use std::thread;
use std::time::Duration;

use super::ring::fault;
use super::*;

fn crash_in<F: FnOnce() + Send + 'static>(step: u32, f: F) {
    let r = thread::spawn(move || {
        fault::CRASH_AT.with(|c| c.set(step));
        f();
    })
    .join();
    assert!(r.is_err(), "the thread was meant to die at step {step}");
}

fn drain(q: &Queue<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match q.try_get() {
            Ok(v) => out.push(v),
            Err(TryGetError::Empty) => return out,
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

fn item(i: u8, len: usize) -> Vec<u8> {
    vec![i; len]
}

/// A queue whose next put of a `len`-byte item wraps to the start of the ring
/// (when `wrap`), holding items 1..=k.
fn setup(wrap: bool) -> (Queue<Vec<u8>>, Vec<Vec<u8>>) {
    let q = Queue::<Vec<u8>>::builder()
        .byte_capacity(4096)
        .max_message_size(1000)
        .build()
        .unwrap();
    let mut kept = Vec::new();
    if wrap {
        // Fill most of the ring, then take the first items, so that the free
        // space is at the start of the ring and the tail is near its end.
        for i in 0..7u8 {
            q.put(item(i, 500)).unwrap();
        }
        for i in 0..3u8 {
            assert_eq!(q.get().unwrap(), item(i, 500));
        }
        kept.extend((3..7u8).map(|i| item(i, 500)));
    } else {
        for i in 0..3u8 {
            q.put(item(i, 100)).unwrap();
            kept.push(item(i, 100));
        }
    }
    (q, kept)
}

#[test]
fn producer_dies_at_every_step() {
    for wrap in [false, true] {
        for step in 1..=8u32 {
            let (q, mut expected) = setup(wrap);
            let (t0, ..) = q.ring.debug_positions();
            let victim = q.clone();
            let len = if wrap { 600 } else { 100 };
            crash_in(step, move || {
                let _ = victim.put(item(200, len));
            });
            // The survivors go on: one more put, then drain.
            q.put_timeout(item(201, 50), Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("wrap={wrap} step={step}: {e}"));
            assert_eq!(q.recoveries(), 1, "wrap={wrap} step={step}");
            // The commit point: the record's stamp, or the pad that leads to it.
            let committed = if wrap { step >= 6 } else { step >= 5 };
            if committed {
                expected.push(item(200, len));
            }
            expected.push(item(201, 50));
            let got = drain(&q);
            assert_eq!(got, expected, "wrap={wrap} step={step} tail0={t0}");
            assert!(q.is_empty());
            // And the ring keeps working across many more laps.
            for i in 0..50u8 {
                q.put(item(i, 300)).unwrap();
                assert_eq!(q.get().unwrap(), item(i, 300));
            }
        }
    }
}

#[test]
fn consumer_dies_at_every_step() {
    for wrap in [false, true] {
        for step in [11u32, 12, 13, 14] {
            let (q, mut expected) = setup(wrap);
            let victim = q.clone();
            crash_in(step, move || {
                let _ = victim.get();
            });
            if step >= 13 {
                // It had copied the item out and counted it: the item went with it.
                expected.remove(0);
            }
            let got = drain(&q);
            // A consumer holds no lock: its death leaves nothing to repair (a claim it
            // made but did not finish is completed by the next get, lock-free).
            assert_eq!(q.recoveries(), 0, "wrap={wrap} step={step}");
            assert_eq!(got, expected, "wrap={wrap} step={step}");
            for i in 0..50u8 {
                q.put(item(i, 300)).unwrap();
                assert_eq!(q.get().unwrap(), item(i, 300));
            }
        }
    }
}

#[test]
fn consumer_dies_while_skipping_a_pad() {
    for step in [15u32, 16] {
        // Tail wraps with a pad; the consumer then dies around following it.
        let q = Queue::<Vec<u8>>::builder()
            .byte_capacity(4096)
            .max_message_size(1000)
            .build()
            .unwrap();
        for i in 0..7u8 {
            q.put(item(i, 500)).unwrap();
        }
        for i in 0..7u8 {
            assert_eq!(q.get().unwrap(), item(i, 500));
        }
        q.put(item(9, 600)).unwrap(); // placed at the start of the next lap
        let victim = q.clone();
        crash_in(step, move || {
            let _ = victim.get();
        });
        assert_eq!(drain(&q), vec![item(9, 600)], "step={step}");
        assert_eq!(
            q.recoveries(),
            0,
            "consumers hold no lock: nothing to repair"
        );
    }
}

#[test]
fn repeated_deaths_keep_the_count_exact() {
    let q = Queue::<u64>::new().unwrap();
    let mut expected = Vec::new();
    let mut n = 0u64;
    for round in 0..40u32 {
        let step = 1 + round % 8;
        q.put(n).unwrap();
        expected.push(n);
        n += 1;
        let victim = q.clone();
        let v = n;
        crash_in(step, move || {
            let _ = victim.put(v);
        });
        if step >= 5 {
            expected.push(v);
        }
        n += 1;
    }
    assert_eq!(q.len(), expected.len());
    q.put(n).unwrap(); // takes the producer lock: recovers from the last death
    expected.push(n);
    let got: Vec<u64> = (0..expected.len()).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, expected);
    assert_eq!(q.recoveries(), 40);
    assert!(q.is_empty());
}

#[test]
fn handle_arrives_with_the_wrong_item_type() {
    let q = Queue::<u32>::new().unwrap();
    let msg = crate::codec::encode(&q).unwrap();
    let err = crate::codec::decode::<Queue<String>>(msg).unwrap_err();
    assert!(
        err.to_string().contains(
            "a queue of `u32` arrived where a queue of `alloc::string::String` was expected"
        ),
        "{err}"
    );
    let msg = crate::codec::encode(&q).unwrap();
    let err = crate::codec::decode::<JoinableQueue<u32>>(msg).unwrap_err();
    assert!(
        err.to_string()
            .contains("a Queue arrived where a JoinableQueue was expected"),
        "{err}"
    );
    let msg = crate::codec::encode(&q).unwrap();
    let back: Queue<u32> = crate::codec::decode(msg).unwrap();
    back.put(5).unwrap();
    assert_eq!(q.get().unwrap(), 5);
}

#[test]
fn a_handle_inside_an_item_is_refused_at_put() {
    let q = Queue::<Queue<u8>>::new().unwrap();
    let inner = Queue::<u8>::new().unwrap();
    let err = q.put(inner).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("can only be sent to another process by mproc"),
        "{text}"
    );
    assert!(err.message_error().is_some());
    let _inner_back: Queue<u8> = err.into_inner();
    assert!(q.is_empty());
    // A later, unrelated encoding error is reported as itself.
    let q2 = Queue::<u8>::builder().max_message_size(0).build().unwrap();
    assert!(
        q2.put(1)
            .unwrap_err()
            .message_error()
            .unwrap()
            .is_too_large()
    );
}

#[test]
fn byte_vectors_use_postcards_encoding() {
    // The one-memcpy path writes what postcard writes for a Vec<u8>, and reads what
    // postcard wrote: the serde path and the fast path agree both ways.
    let q = Queue::<Vec<u8>>::new().unwrap();
    for len in [0usize, 1, 6, 7, 8, 9, 127, 128, 300, 16_384, 70_000] {
        let v: Vec<u8> = (0..len).map(|i| i as u8).collect();
        q.put(v.clone()).unwrap(); // fast path in
        let back: Vec<u8> = q
            .ring
            .get(false, None, ring::read_to_scratch, |buf| {
                assert_eq!(buf, postcard::to_stdvec(&v).unwrap());
                Ok(crate::codec::decode_bytes::<Vec<u8>>(&buf, Vec::new()).unwrap())
            })
            .ok()
            .unwrap();
        assert_eq!(back, v);
        // serde path in, fast path out.
        q.ring.put(ring::Item::Value(&v), false, None).ok().unwrap();
        assert_eq!(q.try_get().unwrap(), v);
        let b = Queue::<Bytes>::new().unwrap();
        b.ring
            .put(ring::Item::Value(&Bytes(v.clone())), false, None)
            .ok()
            .unwrap();
        assert_eq!(b.try_get().unwrap().0, v);
    }
}

#[test]
fn the_working_set_stays_small_in_a_large_ring() {
    // A queue drained as fast as it is filled wraps back to the start of its
    // (1 GiB, sparse) ring early instead of touching new pages all the way round.
    let q = Queue::<Vec<u8>>::new().unwrap();
    let (q2, done) = (
        q.clone(),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let d2 = done.clone();
    let consumer = thread::spawn(move || {
        let mut n = 0u64;
        while !d2.load(std::sync::atomic::Ordering::Relaxed) || !q2.is_empty() {
            if q2.get_timeout(Duration::from_millis(10)).is_ok() {
                n += 1;
            }
        }
        n
    });
    let mut most = 0;
    for i in 0..200_000u32 {
        q.put(vec![i as u8; 64]).unwrap();
        let (tail, ..) = q.ring.debug_positions();
        most = most.max(tail & (q.byte_capacity() as u64 - 1));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(consumer.join().unwrap(), 200_000);
    let (tail, ..) = q.ring.debug_positions();
    assert!(
        tail > q.byte_capacity() as u64,
        "never wrapped (tail {tail})"
    );
    // 256 KiB before wrapping, plus whatever the consumer was behind by.
    assert!(most < 8 << 20, "reached {most} bytes into the ring");
}

#[test]
fn a_waiting_producer_moves_head_past_a_dead_consumers_claim() {
    // A consumer dies between its claim and moving `head` (step 13), with no other
    // consumer around; a put that needs the dead record's bytes must help `head` on
    // by itself instead of waiting for a consumer.
    let q = Queue::<Vec<u8>>::builder()
        .byte_capacity(4096)
        .max_message_size(1000)
        .build()
        .unwrap();
    for i in 0..7u8 {
        q.put(item(i, 500)).unwrap(); // 7 records of 520 bytes: 3640 of 4096
    }
    let victim = q.clone();
    crash_in(13, move || {
        let _ = victim.get();
    });
    // 440 bytes (a 464-byte record) fit neither before the ring's end nor at its
    // start until `head` moves past the taken record.
    assert!(q.try_put(item(9, 440)).unwrap_err().is_full());
    q.put_timeout(item(9, 440), Duration::from_secs(5))
        .expect("the producer helps head past the claimed record");
    let mut expected: Vec<_> = (1..7u8).map(|i| item(i, 500)).collect();
    expected.push(item(9, 440));
    assert_eq!(drain(&q), expected);
    assert_eq!(q.recoveries(), 0);
}

#[test]
fn racing_consumers_take_every_item_once() {
    // Several lock-free consumers race for each item (optimistic copy + claim CAS);
    // every item must come out exactly once, and each producer's in order.
    const PER: u64 = if cfg!(miri) { 50 } else { 20_000 };
    let q = Queue::<(u8, u64)>::bounded(64).unwrap();
    let got = thread::scope(|s| {
        for p in 0..2u8 {
            let q = q.clone();
            s.spawn(move || {
                for i in 0..PER {
                    q.put((p, i)).unwrap();
                }
            });
        }
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                s.spawn(move || {
                    let mut out = Vec::new();
                    while let Ok(x) = q.get_timeout(Duration::from_secs(2)) {
                        out.push(x);
                    }
                    out
                })
            })
            .collect();
        consumers
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut seen = [Vec::new(), Vec::new()];
    for out in &got {
        let mut last = [None::<u64>; 2];
        for &(p, i) in out {
            // Within one consumer, a producer's items arrive in order.
            assert!(last[p as usize].is_none_or(|l| l < i), "order");
            last[p as usize] = Some(i);
            seen[p as usize].push(i);
        }
    }
    for s in &mut seen {
        s.sort_unstable();
        assert_eq!(*s, (0..PER).collect::<Vec<_>>());
    }
}

#[test]
fn a_live_but_stalled_producer_keeps_the_lock() {
    // A producer stalls inside its put, holding the producer lock (as a process
    // under SIGSTOP would). The others must wait for it, well past the point where
    // they ask whether it is alive, and never take the lock from it: only a dead
    // holder is repaired.
    let q = Queue::<u32>::bounded(16).unwrap();
    let (resume, parked) = std::sync::mpsc::channel();
    let (entered, stalled) = std::sync::mpsc::channel();
    let staller = {
        let q = q.clone();
        thread::spawn(move || {
            // Step 2 is inside the lock, after the record is written, before commit.
            fault::PARK_AT.with(|p| *p.borrow_mut() = Some((2, parked)));
            entered.send(()).unwrap();
            q.put(1).unwrap();
        })
    };
    stalled.recv().unwrap();
    // The staller reaches step 2 at some point after it said it would put; a put
    // that times out here proves it got there (the queue is otherwise empty and
    // far from full).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match q.put_timeout(2, Duration::from_millis(300)) {
            Err(e) if e.is_timeout() => break,
            Ok(()) => {
                // It had not taken the lock yet (or the lock was taken from it):
                // take the item back out and retry.
                assert_eq!(q.recoveries(), 0, "a live holder was taken over");
                assert_eq!(q.try_get().unwrap(), 2);
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the staller never took the lock"
        );
    }
    // 300 ms is 30 times the holder check: the waiter asked, was told "alive".
    assert_eq!(q.recoveries(), 0, "a live holder was taken over");
    assert!(q.is_empty());
    resume.send(()).unwrap();
    staller.join().unwrap();
    q.put(3).unwrap();
    assert_eq!(q.try_get().unwrap(), 1);
    assert_eq!(q.try_get().unwrap(), 3);
    assert_eq!(q.recoveries(), 0);
}

#[test]
fn sleeping_waiters_are_woken_in_both_wake_protocols() {
    // Ping-pong over two queues where the echoing side works (busily) for 1 ms
    // before each answer: longer than any spin, so the main thread sleeps on a
    // futex for every answer and each round trip needs a wake. With the
    // `membarrier` protocol (the default here) producers skip their fence; with the
    // fenced one (kernels or sandboxes without it) they swap the count. A lost wake
    // costs a `NAP` (50 ms): losing them would take 10 s or more; this takes about
    // 0.2 s. Neither side yields while it waits (`fault::YIELDS`): on a loaded
    // machine a yield can outlast the 1 ms of work, and the wait would end without
    // a sleep.
    fn work_for(d: Duration) {
        let start = std::time::Instant::now();
        while start.elapsed() < d {
            std::hint::spin_loop();
        }
    }
    for fenced in [false, true] {
        fault::FENCED.with(|f| f.set(fenced));
        let ping = Queue::<u32>::bounded(4).unwrap();
        let pong = Queue::<u32>::bounded(4).unwrap();
        fault::FENCED.with(|f| f.set(false));
        let sleeps_before = fault::SLEEPS.with(|c| c.get());
        let started = std::time::Instant::now();
        fault::YIELDS.with(|y| y.set(false));
        thread::scope(|s| {
            s.spawn(|| {
                fault::YIELDS.with(|y| y.set(false));
                for i in 0..200 {
                    assert_eq!(ping.get_timeout(Duration::from_secs(30)).unwrap(), i);
                    work_for(Duration::from_millis(1));
                    pong.put(i).unwrap();
                }
            });
            for i in 0..200 {
                ping.put(i).unwrap();
                assert_eq!(pong.get_timeout(Duration::from_secs(30)).unwrap(), i);
            }
        });
        fault::YIELDS.with(|y| y.set(true));
        let took = started.elapsed();
        let sleeps = fault::SLEEPS.with(|c| c.get()) - sleeps_before;
        assert!(
            sleeps >= 100,
            "the waiting side slept only {sleeps} times (fenced: {fenced}): the test no \
             longer exercises wakes"
        );
        assert!(
            took < Duration::from_secs(5),
            "200 round trips took {took:?} (fenced: {fenced}): wakes are being lost"
        );
    }
}

#[test]
fn a_waiting_consumer_takes_a_lone_item_without_waiting_for_a_batch() {
    // A spinning consumer holds out for a batch once items arrive; with one item in
    // the queue at a time (each put waits for the previous item's ack), every get
    // must still return, small items and large ones alike.
    for len in [8usize, 100_000] {
        let q = Queue::<Vec<u8>>::bounded(64).unwrap();
        let (ack, acks) = std::sync::mpsc::channel();
        let consumer = {
            let q = q.clone();
            thread::spawn(move || {
                for i in 0..200u32 {
                    let v = q.get_timeout(Duration::from_secs(30)).expect("a lone item");
                    assert_eq!(v, item(i as u8, len));
                    ack.send(()).unwrap();
                }
            })
        };
        for i in 0..200u32 {
            q.put(item(i as u8, len)).unwrap();
            acks.recv_timeout(Duration::from_secs(30))
                .expect("the consumer took the item");
        }
        consumer.join().unwrap();
        assert!(q.is_empty());
    }
}
