//! Managers: the scenarios of CPython's `_TestContainers`, `_TestRemoteManager`,
//! `_TestManagerRestart`, `_TestMyManager` and `_TestZZZNumberOfObjects`, and of
//! `TestSyncManagerTypes` (each shared type used from a child process), translated
//! to `mproc::manager`.
//!
//! Where Python's proxies are dynamic (`d['supplies']['water']` returns a proxy or
//! a copy depending on what is stored), mproc's are typed: a nested object is read
//! through `get_dict`/`get_list` as a proxy, or through a plain `get` as a copy of
//! its current contents. The tests check the same behaviour through that API.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use mproc::manager::{
    Address, Barrier, Condition, Dict, Event, JoinableQueue, List, Lock, Manager, ManagerError,
    Namespace, Queue, RLock, Semaphore, Shared, SharedObject, Value,
};
use mproc::process::Process;
use serde::{Deserialize, Serialize};

use crate::common::{eventually, watchdog};
use crate::{LIMIT, LONG};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// `test_list`: building, extending, indexing and slicing a list, and lists that
/// hold other lists.
#[test]
fn test_list() {
    let _w = watchdog("manager::test_list", LIMIT);
    let m = Manager::start().unwrap();
    let a = m.list::<i64>().unwrap();
    a.extend(0..10).unwrap();
    assert_eq!(a.to_vec().unwrap(), (0..10).collect::<Vec<_>>());

    let b = m.list::<i64>().unwrap();
    assert_eq!(b.to_vec().unwrap(), Vec::<i64>::new());
    b.extend(0..5).unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![0, 1, 2, 3, 4]);
    assert_eq!(b.get(2).unwrap(), 2);
    // A slice past the end stops at the end, as in Python.
    assert_eq!(b.slice(Some(2), Some(10)).unwrap(), vec![2, 3, 4]);
    // `b *= 2`.
    b.extend(b.to_vec().unwrap()).unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    // `b + [5, 6]` is a new (local) list; `b` is unchanged.
    let mut sum = b.to_vec().unwrap();
    sum.extend([5, 6]);
    assert_eq!(sum.len(), 12);
    assert_eq!(b.len().unwrap(), 10);
    assert_eq!(a.to_vec().unwrap(), (0..10).collect::<Vec<_>>());

    // A list of lists: `e = self.list([a, b])`.
    let e = m.list::<Vec<i64>>().unwrap();
    e.append_shared(&a).unwrap();
    e.append_shared(&b).unwrap();
    assert_eq!(
        e.to_vec().unwrap(),
        vec![
            (0..10).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
        ]
    );
    // `f = self.list([a]); a.append(...)`: the change shows through `f`.
    let f = m.list::<Vec<i64>>().unwrap();
    f.append_shared(&a).unwrap();
    a.append(100).unwrap();
    assert_eq!(f.get_list::<i64>(0).unwrap().len().unwrap(), 11);
    assert_eq!(f.get(0).unwrap().last(), Some(&100));
}

/// `test_list_proxy_in_list`: changes through a nested list's proxy reach the
/// list the outer one holds, and only that one; a list that holds itself is
/// refused or harmless, never a crash of the manager.
#[test]
fn test_list_proxy_in_list() {
    let _w = watchdog("manager::test_list_proxy_in_list", LIMIT);
    let m = Manager::start().unwrap();
    let a = m.list::<Vec<i64>>().unwrap();
    for _ in 0..3 {
        let inner = m.list::<i64>().unwrap();
        inner.extend(0..3).unwrap();
        a.append_shared(&inner).unwrap();
    }
    assert_eq!(a.to_vec().unwrap(), vec![vec![0, 1, 2]; 3]);
    a.get_list::<i64>(0).unwrap().set(-1, 55).unwrap();
    assert_eq!(a.get(0).unwrap(), vec![0, 1, 55]);
    for i in 1..3 {
        assert_eq!(a.get(i).unwrap(), vec![0, 1, 2]);
    }
    assert_eq!(a.get_list::<i64>(1).unwrap().pop().unwrap(), 2);
    assert_eq!(a.get_list::<i64>(1).unwrap().len().unwrap(), 2);
    for i in [0, 2] {
        assert_eq!(a.get_list::<i64>(i).unwrap().len().unwrap(), 3);
    }
    drop(a);

    // `b.append(b)`: Python allows the cycle (and prints it as `[[...]]`); a
    // typed proxy could not read it whole, so mproc refuses a list holding
    // itself, and the manager goes on serving.
    let b = m.list::<u8>().unwrap();
    let held = b.append_shared(&b);
    assert!(matches!(held, Err(ManagerError::Protocol(_))), "{held:?}");
    // A cycle through two lists: reading either whole must answer (an error),
    // not recurse without end.
    let x = m.list::<Vec<u8>>().unwrap();
    let y = m.list::<Vec<u8>>().unwrap();
    x.append_shared(&y).unwrap();
    y.append_shared(&x).unwrap();
    let read = x.to_vec();
    assert!(matches!(read, Err(ManagerError::Protocol(_))), "{read:?}");
    drop((b, x, y));
    let c = m.list::<u8>().unwrap();
    c.append(1).unwrap();
    assert_eq!(c.to_vec().unwrap(), vec![1]);
}

/// `test_dict`: keys, values and items of a dict filled with `d[i] = chr(i)`.
#[test]
fn test_dict() {
    let _w = watchdog("manager::test_dict", LIMIT);
    let m = Manager::start().unwrap();
    let d = m.dict::<u32, char>().unwrap();
    let indices: Vec<u32> = (65..70).collect();
    for &i in &indices {
        d.set(i, char::from_u32(i).unwrap()).unwrap();
    }
    let copy: BTreeMap<u32, char> = d.items().unwrap().into_iter().collect();
    let want: BTreeMap<u32, char> = indices
        .iter()
        .map(|&i| (i, char::from_u32(i).unwrap()))
        .collect();
    assert_eq!(copy, want);
    let mut keys = d.keys().unwrap();
    keys.sort();
    assert_eq!(keys, indices);
    let mut values = d.values().unwrap();
    values.sort();
    assert_eq!(values, vec!['A', 'B', 'C', 'D', 'E']);
    // Insertion order is kept, as in a Python dict.
    assert_eq!(d.keys().unwrap(), indices);
}

/// `test_dict_proxy_nested`: dicts held by a dict and by a list stay shared;
/// clearing the outer dict leaves the inner ones alive through their proxies.
#[test]
fn test_dict_proxy_nested() {
    let _w = watchdog("manager::test_dict_proxy_nested", LIMIT);
    let m = Manager::start().unwrap();
    let pets = m.dict::<String, u32>().unwrap();
    pets.update([("ferrets".into(), 2), ("hamsters".into(), 4)])
        .unwrap();
    let supplies = m.dict::<String, u32>().unwrap();
    supplies
        .update([("water".into(), 10), ("feed".into(), 3)])
        .unwrap();
    let d = m.dict::<String, BTreeMap<String, u32>>().unwrap();
    d.set_shared("pets".into(), &pets).unwrap();
    d.set_shared("supplies".into(), &supplies).unwrap();
    let inner =
        |d: &Dict<String, BTreeMap<String, u32>>, k: &str| d.get_dict::<String, u32, _>(k).unwrap();

    assert_eq!(supplies.get("water").unwrap(), Some(10));
    assert_eq!(inner(&d, "supplies").get("water").unwrap(), Some(10));
    inner(&d, "supplies").set("blankets".into(), 5).unwrap();
    assert_eq!(supplies.get("blankets").unwrap(), Some(5));
    assert_eq!(inner(&d, "supplies").get("blankets").unwrap(), Some(5));
    inner(&d, "supplies").set("water".into(), 7).unwrap();
    assert_eq!(supplies.get("water").unwrap(), Some(7));

    // The outer dict keeps the inner ones alive without the first proxies.
    drop(pets);
    drop(supplies);
    assert_eq!(inner(&d, "pets").get("ferrets").unwrap(), Some(2));
    inner(&d, "supplies").set("blankets".into(), 11).unwrap();
    assert_eq!(inner(&d, "supplies").get("blankets").unwrap(), Some(11));
    // A plain get reads a nested dict as its contents.
    assert_eq!(d.get("supplies").unwrap().unwrap()["blankets"], 11);

    let pets = inner(&d, "pets");
    let supplies = inner(&d, "supplies");
    supplies.set("water".into(), 7).unwrap();
    assert_eq!(inner(&d, "supplies").get("water").unwrap(), Some(7));

    d.clear().unwrap();
    assert_eq!(d.len().unwrap(), 0);
    assert_eq!(supplies.get("water").unwrap(), Some(7));
    assert_eq!(pets.get("hamsters").unwrap(), Some(4));

    let l = m.list::<BTreeMap<String, u32>>().unwrap();
    l.append_shared(&pets).unwrap();
    l.append_shared(&supplies).unwrap();
    l.get_dict::<String, u32>(0)
        .unwrap()
        .set("marmots".into(), 1)
        .unwrap();
    assert_eq!(pets.get("marmots").unwrap(), Some(1));
    drop(pets);
    drop(supplies);
    assert_eq!(
        l.get_dict::<String, u32>(0)
            .unwrap()
            .get("marmots")
            .unwrap(),
        Some(1)
    );

    // `outer = self.list([[88, 99], l])`: a plain list stays plain data, the
    // nested proxy stays shared.
    let outer = m.list::<Vec<BTreeMap<String, u32>>>().unwrap();
    let plain = m.list::<Vec<u32>>().unwrap();
    plain.append(vec![88, 99]).unwrap();
    assert_eq!(plain.get(0).unwrap(), vec![88, 99]);
    outer.append_shared(&l).unwrap();
    let last = outer.get_list::<BTreeMap<String, u32>>(-1).unwrap();
    assert_eq!(
        last.get_dict::<String, u32>(-1)
            .unwrap()
            .get("feed")
            .unwrap(),
        Some(3)
    );
    assert_eq!(outer.get(-1).unwrap()[1]["feed"], 3);
}

/// `test_nested_queue`: a queue held by a list and by a dict.
#[test]
fn test_nested_queue() {
    let _w = watchdog("manager::test_nested_queue", LIMIT);
    let m = Manager::start().unwrap();
    let a = m.list::<()>().unwrap();
    a.append_shared(&m.queue::<u32>().unwrap()).unwrap();
    let q: Queue<u32> = a.get_shared(0).unwrap();
    q.put(123).unwrap();
    assert_eq!(a.get_shared::<Queue<u32>>(0).unwrap().get().unwrap(), 123);
    let b = m.dict::<u32, ()>().unwrap();
    b.set_shared(0, &m.queue::<u32>().unwrap()).unwrap();
    b.get_shared::<Queue<u32>, _>(&0).unwrap().put(456).unwrap();
    assert_eq!(
        b.get_shared::<Queue<u32>, _>(&0).unwrap().get().unwrap(),
        456
    );
}

/// `test_namespace`: named fields set, read and deleted.
#[test]
fn test_namespace() {
    let _w = watchdog("manager::test_namespace", LIMIT);
    let m = Manager::start().unwrap();
    let n = m.namespace().unwrap();
    n.set("name", "Bob").unwrap();
    n.set("job", "Builder").unwrap();
    n.set("_hidden", "hidden").unwrap();
    assert_eq!(
        (
            n.get::<String>("name").unwrap(),
            n.get::<String>("job").unwrap()
        ),
        (Some("Bob".into()), Some("Builder".into()))
    );
    n.delete("job").unwrap();
    assert_eq!(n.get::<String>("job").unwrap(), None);
    let mut fields = n.fields().unwrap();
    fields.sort();
    assert_eq!(fields, vec!["_hidden".to_string(), "name".to_string()]);
}

fn remote_putter((address, key): (Address, Vec<u8>)) {
    let m = Manager::connect(address, key).unwrap();
    m.named_queue::<(String, Option<u8>, bool, f64)>("queue")
        .unwrap()
        .put(("hello world".into(), None, true, 2.25))
        .unwrap();
}

/// `_TestRemoteManager.test_remote`: a child connects to a manager by address and
/// a random key and puts a tuple on a shared queue; another connection gets it.
/// (Python's other half, "a function cannot be sent", holds by construction: the
/// wire carries data only.)
#[test]
fn test_remote() {
    let _w = watchdog("manager::test_remote", LIMIT);
    let key: Vec<u8> = (0..32).map(|i| (i * 37 + 11) as u8).collect();
    let m = Manager::serve(any_port(), &key).unwrap();
    let p = Process::start(remote_putter, (m.address().clone(), key.clone())).unwrap();
    let m2 = Manager::connect(m.address().clone(), &key).unwrap();
    let q = m2
        .named_queue::<(String, Option<u8>, bool, f64)>("queue")
        .unwrap();
    assert_eq!(
        q.get_timeout(LONG).unwrap(),
        ("hello world".to_string(), None, true, 2.25)
    );
    p.join().unwrap();
    m.shutdown().unwrap();
}

fn restart_putter((address, key): (Address, Vec<u8>)) {
    let m = Manager::connect(address, key).unwrap();
    m.named_queue::<String>("queue")
        .unwrap()
        .put("hello world".into())
        .unwrap();
}

/// `_TestManagerRestart.test_rapid_restart`: a manager shut down can be started
/// again at once on the same TCP address, and old proxies reach the new one.
#[test]
fn test_rapid_restart() {
    let _w = watchdog("manager::test_rapid_restart", LIMIT);
    let key = b"restart key".to_vec();
    let m = Manager::serve(any_port(), &key).unwrap();
    let addr = m.address().clone();
    let p = Process::start(restart_putter, (addr.clone(), key.clone())).unwrap();
    let q = m.named_queue::<String>("queue").unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), "hello world");
    p.join().unwrap();
    m.shutdown().unwrap();
    // The proxy now reports the manager gone, at once.
    assert!(matches!(
        q.try_get(),
        Err(ManagerError::Disconnected { .. })
    ));
    let m = Manager::serve(addr.clone(), &key).unwrap();
    assert_eq!(m.address(), &addr);
    // The old proxy reconnects by itself, and learns that its object is not on
    // the new manager; the name gives a new queue there.
    let gone = q.try_get();
    assert!(
        matches!(gone, Err(ManagerError::ObjectGone { .. })),
        "{gone:?}"
    );
    let q2 = m.named_queue::<String>("queue").unwrap();
    q2.put("again".into()).unwrap();
    assert_eq!(q2.get_timeout(LONG).unwrap(), "again");
    m.shutdown().unwrap();
}

#[derive(Serialize, Deserialize, Default)]
struct FooBar;

#[derive(Serialize, Deserialize)]
enum FooBarCall {
    F,
    G,
}

impl SharedObject for FooBar {
    const NAME: &'static str = "conformance-foobar";
    type Request = FooBarCall;
    type Reply = String;
    fn handle(&mut self, call: FooBarCall) -> String {
        match call {
            FooBarCall::F => "f()".into(),
            FooBarCall::G => panic!("ValueError"),
        }
    }
}

/// `_TestMyManager.test_mymanager`: a registered type's methods run on the
/// manager; one that raises is an error for the caller, not the end of the
/// manager; `shutdown` ends the server process.
#[test]
fn test_mymanager() {
    let _w = watchdog("manager::test_mymanager", LIMIT);
    let m = Manager::builder().register::<FooBar>().start().unwrap();
    let foo: Shared<FooBar> = m.create_shared(FooBar).unwrap();
    assert_eq!(foo.call(FooBarCall::F).unwrap(), "f()");
    let err = foo.call(FooBarCall::G).unwrap_err();
    assert!(err.to_string().contains("ValueError"), "{err}");
    assert_eq!(foo.call(FooBarCall::F).unwrap(), "f()");
    let pid = m.pid().unwrap();
    m.shutdown().unwrap();
    assert!(eventually(LONG, || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
    }));
}

/// `_TestMyManager.test_mymanager_context`: the scope style starts and shuts down.
#[test]
fn test_mymanager_context() {
    let _w = watchdog("manager::test_mymanager_context", LIMIT);
    let n = Manager::scope(|m| {
        let l = m.list::<u8>().unwrap();
        l.extend([1, 2, 3]).unwrap();
        l.len().unwrap()
    })
    .unwrap();
    assert_eq!(n, 3);
}

fn hold_proxies(args: (Dict<u32, u32>, List<u32>, Queue<u32>)) {
    let (d, l, q) = args;
    // Objects this child makes and keeps only through its own proxies.
    let mine = q.get().unwrap();
    d.set(mine, mine).unwrap();
    l.append(mine).unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

/// `_TestZZZNumberOfObjects`: once every proxy is gone, the manager holds no
/// object, also when the process holding the proxies was killed.
#[test]
fn test_number_of_objects() {
    let _w = watchdog("manager::test_number_of_objects", LIMIT);
    let m = Manager::start().unwrap();
    assert_eq!(m.object_count().unwrap(), 0);
    {
        let d = m.dict::<u32, Vec<u32>>().unwrap();
        let l = m.list::<u32>().unwrap();
        d.set_shared(1, &l).unwrap();
        let _e = m.event().unwrap();
        assert_eq!(m.object_count().unwrap(), 3);
    }
    assert!(eventually(LONG, || m.object_count().unwrap() == 0));

    let d = m.dict::<u32, u32>().unwrap();
    let l = m.list::<u32>().unwrap();
    let q = m.queue::<u32>().unwrap();
    let child = Process::start(hold_proxies, (d.clone(), l.clone(), q.clone())).unwrap();
    q.put(7).unwrap();
    assert!(eventually(LONG, || l.len().unwrap() == 1));
    drop((d, l, q));
    // The child still holds its proxies: the objects live.
    assert_eq!(m.object_count().unwrap(), 3);
    child.kill().unwrap();
    let _ = child.join();
    assert!(eventually(LONG, || m.object_count().unwrap() == 0));
}

type SyncTypes = (
    Event,
    Lock,
    RLock,
    Semaphore,
    Condition,
    Barrier,
    JoinableQueue<u32>,
    Value<i64>,
    Namespace,
);

fn sync_types_child(args: SyncTypes) {
    let (event, lock, rlock, sem, cond, barrier, jq, value, ns) = args;
    event.set().unwrap();
    {
        let _g = lock.lock().unwrap();
        value.set(value.get().unwrap() + 1).unwrap();
    }
    {
        let _a = rlock.lock().unwrap();
        let _b = rlock.lock().unwrap();
        ns.set("child", &std::process::id()).unwrap();
    }
    sem.release().unwrap();
    {
        let g = cond.lock().unwrap();
        ns.set("ready", &true).unwrap();
        g.notify_all().unwrap();
    }
    barrier.wait_timeout(LONG).unwrap();
    let n = jq.get().unwrap();
    jq.put(n * 2).unwrap();
    jq.task_done().unwrap();
}

/// `TestSyncManagerTypes`: every synchronisation type and container a manager
/// serves, used from a child process.
#[test]
fn test_sync_manager_types_from_a_child() {
    let _w = watchdog("manager::test_sync_manager_types", LIMIT);
    let m = Manager::start().unwrap();
    let (event, lock, rlock) = (m.event().unwrap(), m.lock().unwrap(), m.rlock().unwrap());
    let sem = m.semaphore(0).unwrap();
    let cond = m.condition().unwrap();
    let barrier = m.barrier(2).unwrap();
    let jq = m.joinable_queue::<u32>().unwrap();
    let value = m.value(41i64).unwrap();
    let ns = m.namespace().unwrap();
    jq.put(21).unwrap();
    let child = Process::start(
        sync_types_child,
        (
            event.clone(),
            lock.clone(),
            rlock.clone(),
            sem.clone(),
            cond.clone(),
            barrier.clone(),
            jq.clone(),
            value.clone(),
            ns.clone(),
        ),
    )
    .unwrap();
    assert!(event.wait_timeout(LONG).unwrap());
    assert!(sem.acquire_timeout(LONG).unwrap());
    {
        let mut g = cond.lock().unwrap();
        while ns.get::<bool>("ready").unwrap() != Some(true) {
            assert!(g.wait_timeout(LONG).unwrap(), "no notify within {LONG:?}");
        }
    }
    barrier.wait_timeout(LONG).unwrap();
    child.join().unwrap();
    assert_eq!(value.get().unwrap(), 42);
    // The child finished the item it took and put another: `join` waits for
    // that one too.
    assert_eq!(jq.get_timeout(LONG).unwrap(), 42);
    assert!(matches!(
        jq.join_timeout(Duration::from_millis(100)),
        Err(ManagerError::Timeout)
    ));
    jq.task_done().unwrap();
    jq.join_timeout(LONG).unwrap();
    assert!(ns.get::<u32>("child").unwrap().is_some());
}
