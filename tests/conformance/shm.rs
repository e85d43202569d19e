//! Shared-memory scenarios: `_TestValue`, `_TestArray` and `_TestSharedMemory` of
//! `_test_multiprocessing.py`.

use std::sync::atomic::Ordering;

use mproc::process::Process;
use mproc::shm::{Array, SharedAtomicU64, SharedMemory, ShmError, Value};
use mproc::sync::Event;

use crate::common::{eventually, watchdog};
use crate::{LIMIT, LONG};

fn unique(tag: &str) -> String {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "mproc-conf-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// What `_TestValue._test` does in the child: set each value to its new one.
fn set_values((i, d, c): (Value<i32>, Value<f64>, Value<u8>)) {
    i.set(-1);
    d.set(4.0);
    c.set(b'b');
}

/// `_TestValue.test_value`: values of several types made in the parent and
/// changed by a child are seen changed by the parent.
#[test]
fn test_value() {
    let _w = watchdog("test_value", LIMIT);
    let i = Value::with_lock(25i32).unwrap();
    let d = Value::with_lock(1.25f64).unwrap();
    let c = Value::with_lock(b'x').unwrap();
    assert_eq!((i.get(), d.get(), c.get()), (25, 1.25, b'x'));
    Process::start(set_values, (i.clone(), d.clone(), c.clone()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!((i.get(), d.get(), c.get()), (-1, 4.0, b'b'));
}

/// `_TestValue.test_rawvalue`: a value without a lock works the same, and has no
/// lock.
#[test]
fn test_rawvalue() {
    let _w = watchdog("test_rawvalue", LIMIT);
    let i = Value::new(25i32).unwrap();
    let d = Value::new(1.25f64).unwrap();
    let c = Value::new(b'x').unwrap();
    assert!(i.get_lock().is_none());
    Process::start(set_values, (i.clone(), d.clone(), c.clone()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!((i.get(), d.get(), c.get()), (-1, 4.0, b'b'));
}

/// `_TestValue.test_getobj_getlock`: a value with a lock exposes it; the lock is
/// re-entrant (`get`/`set` work while it is held); a raw value has none.
#[test]
fn test_getobj_getlock() {
    let v = Value::with_lock(5i64).unwrap();
    let lock = v.get_lock().expect("a lock");
    let held = lock.lock().unwrap();
    v.set(v.get() + 1);
    drop(held);
    assert_eq!(v.get(), 6);
    let g = v.lock().unwrap();
    assert_eq!(g.update(|x| x * 2), 12);
    drop(g);
    assert_eq!(v.get(), 12);
    assert!(Value::new(0u8).unwrap().get_lock().is_none());
}

/// `_TestValue.test_value` (a counter under the value's lock): four processes
/// each add 500; nothing is lost.
#[test]
fn test_value_locked_counter() {
    let _w = watchdog("test_value_locked_counter", LIMIT);
    fn add(v: Value<u64>) {
        for _ in 0..500 {
            v.lock().unwrap().update(|x| x + 1);
        }
    }
    let v = Value::with_lock(0u64).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| Process::start(add, v.clone()).unwrap())
        .collect();
    for c in children {
        c.join().unwrap();
    }
    assert_eq!(v.get(), 2000);
}

/// `_TestValue.test_value` (a holder killed; Python deadlocks): mproc's promise
/// is that the value's lock reports `OwnerDied` and the value is still readable.
#[test]
fn test_value_lock_holder_killed() {
    let _w = watchdog("test_value_lock_holder_killed", LIMIT);
    let v = Value::with_lock(1u32).unwrap();
    let child = Process::start(
        |v: Value<u32>| -> u8 {
            let mut g = v.lock().unwrap();
            g.set(2);
            std::mem::forget(g);
            std::process::abort();
        },
        v.clone(),
    )
    .unwrap();
    let _ = child.join();
    let died = v.lock().unwrap_err();
    let g = died.into_inner();
    assert_eq!(g.get(), 2);
    g.mark_consistent();
    drop(g);
    assert_eq!(v.lock().unwrap().get(), 2);
}

/// What `_TestArray.f` does: a running sum, in place.
fn running_sum(a: Array<i64>) {
    for i in 1..a.len() {
        a.set(i, a.get(i) + a.get(i - 1));
    }
}

/// `_TestArray.test_array`: an array made from a sequence, changed by a child,
/// is seen changed by the parent.
#[test]
fn test_array() {
    let _w = watchdog("test_array", LIMIT);
    let seq = [680i64, 626, 934, 821, 150, 233, 548, 982, 714, 831];
    let arr = Array::with_lock(seq.len()).unwrap();
    arr.copy_from_slice(&seq);
    assert_eq!(arr.len(), seq.len());
    assert_eq!(arr.get(3), seq[3]);
    assert_eq!(arr.to_vec(), seq);
    Process::start(running_sum, arr.clone())
        .unwrap()
        .join()
        .unwrap();
    let mut want = seq.to_vec();
    for i in 1..want.len() {
        want[i] += want[i - 1];
    }
    assert_eq!(arr.to_vec(), want);
}

/// `_TestArray.test_array_from_size`: an array of a given size starts zeroed.
#[test]
fn test_array_from_size() {
    let size = 10;
    let a = Array::<f64>::with_lock(size).unwrap();
    assert_eq!(a.len(), size);
    assert_eq!(a.to_vec(), vec![0.0; size]);
    a.set(9, 1.5);
    assert_eq!(a.get(9), 1.5);
}

/// `_TestArray.test_rawarray`: an array without a lock works across processes
/// and has no lock.
#[test]
fn test_rawarray() {
    let _w = watchdog("test_rawarray", LIMIT);
    let arr = Array::from_slice(&[1i64, 2, 3, 4]).unwrap();
    assert!(arr.get_lock().is_none());
    Process::start(running_sum, arr.clone())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(arr.to_vec(), [1, 3, 6, 10]);
}

/// `_TestArray.test_getobj_getlock_obj`: a locked array exposes its lock and a
/// guard to read and write under it.
#[test]
fn test_getobj_getlock_obj() {
    let a = Array::<u16>::with_lock(3).unwrap();
    assert!(a.get_lock().is_some());
    {
        let g = a.lock().unwrap();
        g.set(0, 7);
        g.set(2, 9);
        assert_eq!(g.get(0), 7);
        assert_eq!(g.to_vec(), [7, 0, 9]);
    }
    assert_eq!(a.to_vec(), [7, 0, 9]);
    assert!(Array::<u16>::new(3).unwrap().get_lock().is_none());
}

/// `_TestArray.test_array` (an index out of range raises `IndexError`): it panics
/// with the index, and the array is unharmed.
#[test]
fn test_array_index_out_of_range() {
    let a = Array::from_slice(&[1u8, 2]).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.get(2)));
    assert!(r.is_err());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.set(5, 1)));
    assert!(r.is_err());
    assert_eq!(a.to_vec(), [1, 2]);
}

/// `_TestSharedMemory.test_shared_memory_basics`: a named block has its size and
/// name; another handle opened by name sees the same bytes; a name in use cannot
/// be created again; the creator removes the name when it lets go.
#[test]
fn test_shared_memory_basics() {
    let name = unique("basics");
    let sms = SharedMemory::create(&name, 512).unwrap();
    assert_eq!(sms.len(), 512);
    assert_eq!(sms.name(), Some(name.as_str()));
    sms.write(0, b"howdy");
    let other = SharedMemory::open(&name).unwrap();
    let mut buf = [0u8; 5];
    other.read(0, &mut buf);
    assert_eq!(&buf, b"howdy");
    other.write(5, b"!");
    assert_eq!(&sms.to_vec()[..6], b"howdy!");
    match SharedMemory::create(&name, 512) {
        Err(ShmError::AlreadyExists { name: n }) => assert_eq!(n, name),
        other => panic!("unexpected {other:?}"),
    }
    drop((sms, other));
    assert!(matches!(
        SharedMemory::open(&name),
        Err(ShmError::NotFound { .. })
    ));
}

/// `_TestSharedMemory.test_shared_memory_basics` (bad arguments): a zero size and
/// invalid names are refused with typed errors, a missing name is `NotFound`.
#[test]
fn test_invalid_shared_memory_creation() {
    assert!(matches!(SharedMemory::new(0), Err(ShmError::Size { .. })));
    assert!(matches!(
        SharedMemory::create(&unique("zero"), 0),
        Err(ShmError::Size { .. })
    ));
    assert!(matches!(
        SharedMemory::create("a/b", 8),
        Err(ShmError::InvalidName { .. })
    ));
    assert!(matches!(
        SharedMemory::open(&unique("missing")),
        Err(ShmError::NotFound { .. })
    ));
}

/// `_TestSharedMemory.test_shared_memory_across_processes`: a child attaches by
/// name and writes; the parent reads it.
#[test]
fn test_shared_memory_across_processes() {
    let _w = watchdog("test_shared_memory_across_processes", LIMIT);
    let name = unique("across");
    let sms = SharedMemory::create(&name, 64).unwrap();
    let child = Process::start(
        |name: String| {
            let shm = SharedMemory::open(&name).unwrap();
            shm.write(0, b"howdy");
        },
        name,
    )
    .unwrap();
    child.join().unwrap();
    assert_eq!(&sms.to_vec()[..5], b"howdy");
}

/// `_TestSharedMemory.test_shared_memory_pickle_unpickle`: a block passed to a
/// child as an argument (anonymous, no name at all) is the same memory.
#[test]
fn test_shared_memory_pickle_unpickle() {
    let _w = watchdog("test_shared_memory_pickle_unpickle", LIMIT);
    let sms = SharedMemory::new(16).unwrap();
    sms.store(0, 41u64);
    let child = Process::start(
        |shm: SharedMemory| {
            let v: u64 = shm.load(0);
            shm.store(8, v + 1);
            shm.len()
        },
        sms.clone(),
    )
    .unwrap();
    assert_eq!(child.join().unwrap(), 16);
    assert_eq!(sms.load::<u64>(8), 42);
}

/// `_TestSharedMemory.test_shared_memory_recreate`: after a block's name is
/// removed, the same name can be created afresh (zeroed).
#[test]
fn test_shared_memory_recreate() {
    let name = unique("recreate");
    let a = SharedMemory::create(&name, 8).unwrap();
    a.store(0, 7u64);
    a.unlink().unwrap();
    let b = SharedMemory::create(&name, 8).unwrap();
    assert_eq!(b.load::<u64>(0), 0);
    assert_eq!(a.load::<u64>(0), 7, "the old mapping stays usable");
}

/// `_TestSharedMemory.test_shared_memory_cleaned_after_process_termination`
/// (Python's resource tracker unlinks it): mproc documents that a named block of a
/// killed creator stays until `unlink`; a survivor can open it and remove it.
#[test]
fn test_shared_memory_cleaned_after_process_termination() {
    let _w = watchdog(
        "test_shared_memory_cleaned_after_process_termination",
        LIMIT,
    );
    let name = unique("killed");
    let made = Event::new().unwrap();
    let child = Process::start(
        |(name, made): (String, Event)| {
            let shm = SharedMemory::create(&name, 32).unwrap();
            shm.write(0, b"left");
            made.set();
            std::thread::sleep(std::time::Duration::from_secs(60));
        },
        (name.clone(), made.clone()),
    )
    .unwrap();
    assert!(made.wait_timeout(LONG));
    child.kill().unwrap();
    assert!(child.join().unwrap_err().is_signaled());
    let left = SharedMemory::open(&name).unwrap();
    assert_eq!(&left.to_vec()[..4], b"left");
    left.unlink().unwrap();
    assert!(matches!(
        SharedMemory::open(&name),
        Err(ShmError::NotFound { .. })
    ));
}

/// `_TestSharedMemory.test_shared_memory_cleaned_after_process_termination`
/// (anonymous memory): nothing of a killed owner's anonymous block is left in
/// `/dev/shm`, and the survivors keep their mapping.
#[test]
fn test_anonymous_memory_survives_killed_owner() {
    let _w = watchdog("test_anonymous_memory_survives_killed_owner", LIMIT);
    let shm = SharedMemory::new(8).unwrap();
    let child = Process::start(
        |shm: SharedMemory| -> u8 {
            shm.store(0, 99u64);
            std::process::abort();
        },
        shm.clone(),
    )
    .unwrap();
    assert!(child.join().unwrap_err().is_signaled());
    assert_eq!(shm.load::<u64>(0), 99);
    assert_eq!(shm.name(), None);
}

/// `_TestValue.test_value` used as a counter (`Value('i')` + `get_lock`): mproc's
/// shared atomics count across processes without a lock.
#[test]
fn test_shared_atomic_counter() {
    let _w = watchdog("test_shared_atomic_counter", LIMIT);
    let n = SharedAtomicU64::new(0).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Process::start(
                |n: SharedAtomicU64| {
                    for _ in 0..1000 {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                },
                n.clone(),
            )
            .unwrap()
        })
        .collect();
    for c in children {
        c.join().unwrap();
    }
    assert!(eventually(LONG, || n.load(Ordering::SeqCst) == 4000));
}
