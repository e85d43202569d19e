//! `Value` and `Array`: typed data in shared memory, with and without a lock.

use mproc::process::Process;
use mproc::shm::{Array, ShmSafe, Value};

use crate::{LONG, watchdog};

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Particle {
    pos: [f32; 3],
    id: u32,
}
#[allow(unsafe_code)] // a user type opting in, as users do
// SAFETY: repr(C); an array of f32 and a u32: no padding, every bit pattern valid.
unsafe impl ShmSafe for Particle {}

#[test]
fn values_of_many_types() {
    let a = Value::new(-5i8).unwrap();
    assert_eq!(a.get(), -5);
    let b = Value::with_lock(2.5f64).unwrap();
    b.set(b.get() * 2.0);
    assert_eq!(b.get(), 5.0);
    let p = Value::new(Particle {
        pos: [1.0, 2.0, 3.0],
        id: 9,
    })
    .unwrap();
    assert_eq!(p.get().id, 9);
    let big = Value::new([7u64; 100]).unwrap();
    assert_eq!(big.get()[99], 7);
}

#[test]
fn arrays() {
    let a = Array::<u16>::new(5).unwrap();
    assert_eq!(a.to_vec(), [0; 5]);
    a.copy_from_slice(&[1, 2, 3, 4, 5]);
    a.set(0, 10);
    assert_eq!(a.get(0), 10);
    assert_eq!(a.to_vec(), [10, 2, 3, 4, 5]);
    let empty = Array::<u8>::new(0).unwrap();
    assert!(empty.is_empty());
    assert!(empty.to_vec().is_empty());
    let locked = Array::<i32>::with_lock(3).unwrap();
    {
        let g = locked.lock().unwrap();
        g.set(1, g.get(0) + 4);
        assert_eq!(g.to_vec(), [0, 4, 0]);
        // The lock is re-entrant: plain calls work while it is held.
        assert_eq!(locked.get(1), 4);
    }
}

#[test]
#[should_panic(expected = "out of bounds")]
fn array_index_out_of_bounds_panics() {
    Array::<u8>::new(2).unwrap().get(2);
}

#[test]
#[should_panic(expected = "made without a lock")]
fn locking_a_value_without_a_lock_panics() {
    let _ = Value::new(1u8).unwrap().lock();
}

fn add_locked((v, n): (Value<u64>, u32)) -> u32 {
    for _ in 0..n {
        v.lock().expect("no holder died").update(|x| x + 1);
    }
    n
}

#[test]
fn locked_value_counts_exactly_across_processes() {
    let _w = watchdog("locked_value_counts_exactly_across_processes", LONG * 2);
    let v = Value::with_lock(0u64).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| Process::start(add_locked, (v.clone(), 5_000)).unwrap())
        .collect();
    for c in children {
        assert_eq!(c.join().unwrap(), 5_000);
    }
    assert_eq!(v.get(), 20_000);
}

fn scale((a, k): (Array<Particle>, f32)) -> u32 {
    let mut ps = a.to_vec();
    for p in &mut ps {
        for x in &mut p.pos {
            *x *= k;
        }
    }
    a.copy_from_slice(&ps);
    ps.len() as u32
}

#[test]
fn array_of_structs_travels_to_a_child() {
    let _w = watchdog("array_of_structs_travels_to_a_child", LONG);
    let ps: Vec<Particle> = (0..100)
        .map(|i| Particle {
            pos: [i as f32, 1.0, -1.0],
            id: i,
        })
        .collect();
    let a = Array::from_slice(&ps).unwrap();
    let child = Process::start(scale, (a.clone(), 2.0)).unwrap();
    assert_eq!(child.join().unwrap(), 100);
    let back = a.to_vec();
    assert_eq!(
        back[10],
        Particle {
            pos: [20.0, 2.0, -2.0],
            id: 10
        }
    );
}

fn child_sees_lock(v: Value<u32>) -> (bool, u32) {
    (v.get_lock().is_some(), v.get())
}

#[test]
fn the_lock_travels_with_the_value() {
    let _w = watchdog("the_lock_travels_with_the_value", LONG);
    let v = Value::with_lock(3u32).unwrap();
    assert_eq!(
        Process::start(child_sees_lock, v.clone())
            .unwrap()
            .join()
            .unwrap(),
        (true, 3)
    );
    let raw = Value::new(4u32).unwrap();
    assert_eq!(
        Process::start(child_sees_lock, raw)
            .unwrap()
            .join()
            .unwrap(),
        (false, 4)
    );
}
