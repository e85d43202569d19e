//! Semantics of each proxy, and proxies crossing process boundaries.

use std::time::Duration;

use mproc::manager::{Dict, List, Manager, ManagerError, Queue};
use mproc::pool::Pool;
use mproc::process::{Process, StartMethod};

use crate::LONG;
use crate::common::watchdog;

#[test]
fn dict_follows_python_semantics() {
    let _w = watchdog("dict_follows_python_semantics", LONG);
    let m = Manager::start().unwrap();
    let d = m.dict::<String, i64>().unwrap();
    assert!(d.is_empty().unwrap());
    assert_eq!(d.get("missing").unwrap(), None);
    d.set("b".into(), 2).unwrap();
    d.set("a".into(), 1).unwrap();
    d.set("b".into(), 20).unwrap(); // overwrite keeps the insertion position
    assert_eq!(d.keys().unwrap(), vec!["b".to_string(), "a".to_string()]);
    assert_eq!(d.values().unwrap(), vec![20, 1]);
    assert_eq!(
        d.items().unwrap(),
        vec![("b".to_string(), 20), ("a".to_string(), 1)]
    );
    assert!(d.contains("a").unwrap());
    assert!(!d.contains("z").unwrap());
    assert!(matches!(d.delete("z"), Err(ManagerError::KeyNotFound)));
    d.delete("b").unwrap();
    assert_eq!(d.len().unwrap(), 1);
    d.update([("x".to_string(), 5), ("y".to_string(), 6)])
        .unwrap();
    assert_eq!(d.pop("x").unwrap(), Some(5));
    assert_eq!(d.pop("x").unwrap(), None);
    assert_eq!(d.setdefault("y".into(), 100).unwrap(), 6);
    assert_eq!(d.setdefault("z".into(), 100).unwrap(), 100);
    assert_eq!(d.update_with("z".into(), |v| v.unwrap() + 1).unwrap(), 101);
    assert_eq!(
        d.update_with("new".into(), |v| v.unwrap_or(-1)).unwrap(),
        -1
    );
    d.clear().unwrap();
    assert_eq!(d.len().unwrap(), 0);
    m.shutdown().unwrap();
}

#[test]
fn update_with_reports_a_panic_and_changes_nothing() {
    let _w = watchdog("update_with_reports_a_panic", LONG);
    let m = Manager::start().unwrap();
    let d = m.dict::<u8, u8>().unwrap();
    d.set(1, 1).unwrap();
    let err = d.update_with(1, |_| panic!("boom")).unwrap_err();
    assert!(
        matches!(&err, ManagerError::Function(msg) if msg.contains("boom")),
        "{err}"
    );
    assert_eq!(d.get(&1).unwrap(), Some(1));
    // The manager still serves.
    d.set(2, 2).unwrap();
    assert_eq!(d.len().unwrap(), 2);
}

#[test]
fn list_follows_python_semantics() {
    let _w = watchdog("list_follows_python_semantics", LONG);
    let m = Manager::start().unwrap();
    let l = m.list::<String>().unwrap();
    assert!(matches!(l.pop(), Err(ManagerError::Empty(_))));
    l.append("c".into()).unwrap();
    l.extend(["a".to_string(), "b".to_string()]).unwrap();
    l.insert(-1, "x".into()).unwrap(); // before the last, as Python
    assert_eq!(l.to_vec().unwrap(), ["c", "a", "x", "b"]);
    l.insert(100, "end".into()).unwrap();
    l.insert(-100, "start".into()).unwrap();
    assert_eq!(l.get(0).unwrap(), "start");
    assert_eq!(l.get(-1).unwrap(), "end");
    assert!(matches!(
        l.get(6),
        Err(ManagerError::IndexOutOfRange { index: 6, len: 6 })
    ));
    l.set(1, "C".into()).unwrap();
    assert_eq!(l.pop().unwrap(), "end");
    assert_eq!(l.pop_at(0).unwrap(), "start");
    l.remove(&"x".to_string()).unwrap();
    assert!(matches!(
        l.remove(&"nope".to_string()),
        Err(ManagerError::ValueNotFound)
    ));
    assert_eq!(l.slice(Some(-2), None).unwrap(), ["a", "b"]);
    assert_eq!(l.slice(Some(1), Some(-1)).unwrap(), ["a"]);
    l.sort().unwrap();
    assert_eq!(l.to_vec().unwrap(), ["C", "a", "b"]);
    l.sort_by(|a, b| b.cmp(a)).unwrap();
    assert_eq!(l.to_vec().unwrap(), ["b", "a", "C"]);
    assert_eq!(l.len().unwrap(), 3);
}

#[test]
fn namespace_value_and_queues() {
    let _w = watchdog("namespace_value_and_queues", LONG);
    let m = Manager::start().unwrap();
    let ns = m.namespace().unwrap();
    ns.set("a", &vec![1u8, 2]).unwrap();
    assert_eq!(ns.get::<Vec<u8>>("a").unwrap(), Some(vec![1, 2]));
    assert!(matches!(ns.delete("b"), Err(ManagerError::KeyNotFound)));
    let v = m.value(3.5f64).unwrap();
    assert_eq!(v.update_with(|x| x * 2.0).unwrap(), 7.0);
    let q: Queue<(u32, String)> = m.bounded_queue(2).unwrap();
    q.put((1, "a".into())).unwrap();
    q.put((2, "b".into())).unwrap();
    assert!(matches!(
        q.try_put((3, "c".into())),
        Err(ManagerError::Full)
    ));
    assert!(matches!(
        q.put_timeout((3, "c".into()), Duration::from_millis(20)),
        Err(ManagerError::Full)
    ));
    assert_eq!(q.len().unwrap(), 2);
    assert_eq!(q.get().unwrap().0, 1);
    assert_eq!(q.try_get().unwrap().0, 2);
    assert!(matches!(q.try_get(), Err(ManagerError::Empty(_))));
    let jq = m.joinable_queue::<u8>().unwrap();
    jq.put(1).unwrap();
    assert!(
        jq.join_timeout(Duration::from_millis(20))
            .unwrap_err()
            .is_timeout()
    );
    jq.get().unwrap();
    jq.task_done().unwrap();
    jq.join_timeout(LONG).unwrap();
    assert!(jq.task_done().is_err());
}

fn fill(args: (Dict<String, Vec<u32>>, List<u32>, u32)) -> u32 {
    let (d, l, n) = args;
    // Nested: the list held at "seen" changes for everyone.
    d.get_list::<u32, _>("seen").unwrap().append(n).unwrap();
    l.append(n * 10).unwrap();
    d.update_with("sum".into(), |s| vec![s.map_or(0, |s| s[0]) + 1])
        .unwrap();
    n
}

#[test]
fn nested_objects_change_for_every_process() {
    let _w = watchdog("nested_objects_change_for_every_process", LONG);
    let m = Manager::start().unwrap();
    let d = m.dict::<String, Vec<u32>>().unwrap();
    let seen = m.list::<u32>().unwrap();
    d.set_shared("seen".into(), &seen).unwrap();
    drop(seen); // the dict keeps it alive
    let other = m.list::<u32>().unwrap();
    let kids: Vec<_> = (0..4)
        .map(|n| Process::start(fill, (d.clone(), other.clone(), n)).unwrap())
        .collect();
    for k in kids {
        k.join().unwrap();
    }
    let mut got = d.get("seen").unwrap().unwrap();
    got.sort();
    assert_eq!(got, vec![0, 1, 2, 3]);
    assert_eq!(d.get("sum").unwrap(), Some(vec![4]));
    assert_eq!(d.get_list::<u32, _>("seen").unwrap().len().unwrap(), 4);
    assert_eq!(other.len().unwrap(), 4);
    // A list of dicts.
    let outer = m.list::<u8>().unwrap();
    let inner = m.dict::<String, u8>().unwrap();
    outer.append_shared(&inner).unwrap();
    outer
        .get_dict::<String, u8>(0)
        .unwrap()
        .set("k".into(), 7)
        .unwrap();
    assert_eq!(inner.get("k").unwrap(), Some(7));
    assert!(matches!(
        d.get_list::<u32, _>("sum"),
        Err(ManagerError::WrongKind { .. })
    ));
}

fn add_many(args: (Dict<String, u64>, mproc::manager::Lock, u32)) {
    let (d, lock, n) = args;
    for _ in 0..n {
        d.update_with("fn".into(), |v| v.unwrap_or(0) + 1).unwrap();
        let _g = lock.lock().unwrap();
        let v = d.get("locked").unwrap().unwrap_or(0);
        d.set("locked".into(), v + 1).unwrap();
    }
}

#[test]
fn no_lost_update_with_update_with_or_the_lock() {
    let _w = watchdog("no_lost_update", LONG * 2);
    let m = Manager::start().unwrap();
    let d = m.dict::<String, u64>().unwrap();
    let lock = m.lock().unwrap();
    let kids: Vec<_> = (0..4)
        .map(|_| Process::start(add_many, (d.clone(), lock.clone(), 200)).unwrap())
        .collect();
    for k in kids {
        k.join().unwrap();
    }
    assert_eq!(d.get("fn").unwrap(), Some(800));
    assert_eq!(d.get("locked").unwrap(), Some(800));
}

fn pool_task(d: Dict<u32, u32>) -> usize {
    let pid = std::process::id();
    d.set(pid, 1).unwrap();
    d.len().unwrap()
}

#[test]
fn a_proxy_passed_to_a_pool_task_and_through_a_pipe() {
    let _w = watchdog("a_proxy_passed_to_a_pool_task", LONG);
    let m = Manager::start().unwrap();
    let d = m.dict::<u32, u32>().unwrap();
    let pool = Pool::new(2).unwrap();
    let got = pool.map(pool_task, vec![d.clone(); 6]).unwrap();
    assert!(got.iter().all(|&n| n >= 1));
    assert!(d.len().unwrap() >= 1);

    let (a, b) = mproc::pipe::duplex().unwrap();
    a.send(&d).unwrap();
    let back: Dict<u32, u32> = b.recv().unwrap();
    back.set(0, 42).unwrap();
    assert_eq!(d.get(&0).unwrap(), Some(42));

    // Through an mproc queue, to a child process.
    let q = mproc::queue::Queue::<Dict<u32, u32>>::new().unwrap();
    q.put(d.clone()).unwrap();
    let child = Process::start(from_queue, q).unwrap();
    assert_eq!(child.join().unwrap(), Some(42));
    assert_eq!(d.get(&1).unwrap(), Some(43));
}

fn from_queue(q: mproc::queue::Queue<Dict<u32, u32>>) -> Option<u32> {
    let d = q.get_timeout(LONG).unwrap();
    d.set(1, 43).unwrap();
    d.get(&0).unwrap()
}

#[test]
fn proxies_are_send_and_sync_and_shared_by_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Dict<String, String>>();
    assert_send_sync::<mproc::manager::Lock>();
    assert_send_sync::<Manager>();
    let _w = watchdog("proxies_shared_by_threads", LONG);
    let m = Manager::start().unwrap();
    let d = m.dict::<u32, u32>().unwrap();
    let lock = m.lock().unwrap();
    let held = lock.lock().unwrap();
    std::thread::scope(|s| {
        // One thread waits on the lock while others keep using the manager.
        let waiter = s.spawn(|| lock.lock_timeout(LONG).map(|_| ()).is_ok());
        for t in 0..3u32 {
            let d = &d;
            s.spawn(move || {
                for i in 0..50 {
                    d.set(t * 100 + i, i).unwrap();
                }
            });
        }
        drop(held);
        assert!(waiter.join().unwrap());
    });
    assert_eq!(d.len().unwrap(), 150);
}

#[test]
fn every_start_method_and_scope() {
    let _w = watchdog("every_start_method_and_scope", LONG);
    for method in StartMethod::ALL {
        let m = Manager::builder().start_method(method).start().unwrap();
        let v = m.value(1u8).unwrap();
        assert_eq!(v.get().unwrap(), 1);
        m.shutdown().unwrap();
        assert!(v.get().unwrap_err().is_disconnected());
    }
    let n = Manager::scope(|m| {
        let l = m.list::<u8>().unwrap();
        l.extend([1, 2]).unwrap();
        l.len().unwrap()
    })
    .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn drop_shuts_the_manager_down() {
    let _w = watchdog("drop_shuts_the_manager_down", LONG);
    let m = Manager::start().unwrap();
    let d = m.dict::<u8, u8>().unwrap();
    d.set(1, 1).unwrap();
    drop(m);
    let err = d.get(&1).unwrap_err();
    assert!(err.is_disconnected(), "{err}");
}

type SyncArgs = (
    mproc::manager::Barrier,
    mproc::manager::Condition,
    mproc::manager::Namespace,
    mproc::manager::Event,
    mproc::manager::BoundedSemaphore,
    Dict<String, i64>,
);

fn sync_child((barrier, cond, ns, event, sem, stats): SyncArgs) -> (usize, bool) {
    let index = barrier.wait_timeout(LONG).unwrap();
    // Wait on the condition until the parent sets the flag.
    let mut g = cond.lock().unwrap();
    while ns.get::<bool>("go").unwrap() != Some(true) {
        assert!(g.wait_timeout(LONG).unwrap(), "no notification came");
    }
    drop(g);
    // At most one child inside at a time.
    for _ in 0..20 {
        sem.acquire().unwrap();
        let now = stats
            .update_with("inside".into(), |n| n.unwrap_or(0) + 1)
            .unwrap();
        stats
            .update_with("max".into(), |m| m.unwrap_or(0).max(1))
            .unwrap();
        if now > 1 {
            stats.set("overlap".into(), now).unwrap();
        }
        stats
            .update_with("inside".into(), |n| n.unwrap_or(0) - 1)
            .unwrap();
        sem.release().unwrap();
    }
    (index, event.wait_timeout(LONG).unwrap())
}

#[test]
fn barrier_condition_event_and_semaphore_across_processes() {
    let _w = watchdog("sync_across_processes", LONG * 2);
    let m = Manager::start().unwrap();
    let barrier = m.barrier(3).unwrap();
    let cond = m.condition().unwrap();
    let ns = m.namespace().unwrap();
    let event = m.event().unwrap();
    let sem = m.bounded_semaphore(1).unwrap();
    let stats = m.dict::<String, i64>().unwrap();
    let args: SyncArgs = (
        barrier.clone(),
        cond.clone(),
        ns.clone(),
        event.clone(),
        sem.clone(),
        stats.clone(),
    );
    let kids: Vec<_> = (0..2)
        .map(|_| Process::start(sync_child, args.clone()).unwrap())
        .collect();
    let mine = barrier.wait_timeout(LONG).unwrap();
    {
        let g = cond.lock().unwrap();
        ns.set("go", &true).unwrap();
        g.notify_all().unwrap();
    }
    event.set().unwrap();
    let mut indices = vec![mine];
    for k in kids {
        let (i, saw_event) = k.join().unwrap();
        assert!(saw_event);
        indices.push(i);
    }
    indices.sort();
    assert_eq!(indices, vec![0, 1, 2], "each waiter gets its own index");
    assert_eq!(
        stats.get("overlap").unwrap(),
        None,
        "two holders of a 1-permit semaphore"
    );
    assert_eq!(stats.get("inside").unwrap(), Some(0));
    assert!(matches!(
        sem.release(),
        Err(ManagerError::SemaphoreOverflow(1))
    ));
    // Abort breaks waiters; reset mends the barrier.
    barrier.abort().unwrap();
    assert!(matches!(
        barrier.wait_timeout(LONG),
        Err(ManagerError::BrokenBarrier)
    ));
    barrier.reset().unwrap();
    assert!(!barrier.is_broken().unwrap());
    assert_eq!(barrier.parties().unwrap(), 3);
}
