//! User types registered with a manager: a shared counter and a bounded cache.

use std::collections::{HashMap, VecDeque};

use mproc::manager::{Manager, ManagerError, Shared, SharedObject};
use mproc::process::Process;
use serde::{Deserialize, Serialize};

use crate::LONG;
use crate::common::watchdog;

#[derive(Serialize, Deserialize, Default)]
pub struct Counter {
    n: u64,
}

#[derive(Serialize, Deserialize)]
pub enum CounterOp {
    Incr(u64),
    Get,
    Explode,
}

impl SharedObject for Counter {
    const NAME: &'static str = "test-counter";
    type Request = CounterOp;
    type Reply = u64;
    fn handle(&mut self, op: CounterOp) -> u64 {
        match op {
            CounterOp::Incr(k) => self.n += k,
            CounterOp::Get => {}
            CounterOp::Explode => panic!("counter exploded"),
        }
        self.n
    }
}

/// A cache keeping the `capacity` most recently inserted entries.
#[derive(Serialize, Deserialize)]
pub struct Cache {
    capacity: usize,
    map: HashMap<String, Vec<u8>>,
    order: VecDeque<String>,
    hits: u64,
    misses: u64,
}

#[derive(Serialize, Deserialize)]
pub enum CacheOp {
    Put(String, Vec<u8>),
    Get(String),
    Stats,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub enum CacheReply {
    Done,
    Found(Option<Vec<u8>>),
    Stats { len: usize, hits: u64, misses: u64 },
}

impl SharedObject for Cache {
    const NAME: &'static str = "test-cache";
    type Request = CacheOp;
    type Reply = CacheReply;
    fn handle(&mut self, op: CacheOp) -> CacheReply {
        match op {
            CacheOp::Put(k, v) => {
                if self.map.insert(k.clone(), v).is_none() {
                    self.order.push_back(k);
                    if self.order.len() > self.capacity {
                        let old = self.order.pop_front().expect("non-empty");
                        self.map.remove(&old);
                    }
                }
                CacheReply::Done
            }
            CacheOp::Get(k) => {
                let v = self.map.get(&k).cloned();
                if v.is_some() {
                    self.hits += 1;
                } else {
                    self.misses += 1;
                }
                CacheReply::Found(v)
            }
            CacheOp::Stats => CacheReply::Stats {
                len: self.map.len(),
                hits: self.hits,
                misses: self.misses,
            },
        }
    }
}

fn count(c: Shared<Counter>) {
    for _ in 0..100 {
        c.call(CounterOp::Incr(1)).unwrap();
    }
}

#[test]
fn a_registered_counter_counts_across_processes() {
    let _w = watchdog("registered_counter", LONG);
    let m = Manager::builder()
        .register::<Counter>()
        .register::<Cache>()
        .start()
        .unwrap();
    let c = m.create_shared(Counter::default()).unwrap();
    let kids: Vec<_> = (0..3)
        .map(|_| Process::start(count, c.clone()).unwrap())
        .collect();
    for k in kids {
        k.join().unwrap();
    }
    assert_eq!(c.call(CounterOp::Get).unwrap(), 300);
    // A panicking handler is an error for the caller; the manager goes on.
    let err = c.call(CounterOp::Explode).unwrap_err();
    assert!(
        matches!(&err, ManagerError::Function(m) if m.contains("counter exploded")),
        "{err}"
    );
    assert_eq!(c.call(CounterOp::Get).unwrap(), 300);
    // The same object by name.
    let named = m.named_shared("hits", Counter { n: 5 }).unwrap();
    named.call(CounterOp::Incr(1)).unwrap();
    assert_eq!(
        m.named_shared("hits", Counter::default())
            .unwrap()
            .call(CounterOp::Get)
            .unwrap(),
        6
    );
}

#[test]
fn a_user_defined_cache() {
    let _w = watchdog("user_defined_cache", LONG);
    let m = Manager::builder().register::<Cache>().start().unwrap();
    let cache = m
        .create_shared(Cache {
            capacity: 2,
            map: HashMap::new(),
            order: VecDeque::new(),
            hits: 0,
            misses: 0,
        })
        .unwrap();
    for k in ["a", "b", "c"] {
        assert_eq!(
            cache
                .call(CacheOp::Put(k.into(), k.as_bytes().to_vec()))
                .unwrap(),
            CacheReply::Done
        );
    }
    assert_eq!(
        cache.call(CacheOp::Get("a".into())).unwrap(),
        CacheReply::Found(None)
    );
    assert_eq!(
        cache.call(CacheOp::Get("c".into())).unwrap(),
        CacheReply::Found(Some(b"c".to_vec()))
    );
    assert_eq!(
        cache.call(CacheOp::Stats).unwrap(),
        CacheReply::Stats {
            len: 2,
            hits: 1,
            misses: 1
        }
    );
}

#[test]
fn an_unregistered_type_is_refused() {
    let _w = watchdog("unregistered_type", LONG);
    let m = Manager::start().unwrap();
    let err = m.create_shared(Counter::default()).unwrap_err();
    assert!(
        matches!(&err, ManagerError::Refused(msg) if msg.contains("test-counter")),
        "{err}"
    );
}
