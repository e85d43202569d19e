//! A manager holding a dict of lists and a shared counter, filled by worker
//! processes: Python's `multiprocessing.Manager()`, typed, where nested updates
//! (`d["l"].append(x)`) reach the manager's object.
//!
//! ```text
//! cargo run --release --example manager
//! ```

use mproc::manager::{Dict, Manager, Shared, SharedObject};
use mproc::process::Process;
use serde::{Deserialize, Serialize};

/// A counter living on the manager, served with its own typed requests.
#[derive(Serialize, Deserialize, Default)]
struct Counter {
    value: u64,
}

#[derive(Serialize, Deserialize)]
enum CounterOp {
    Incr(u64),
    Get,
}

impl SharedObject for Counter {
    const NAME: &'static str = "example-counter";
    type Request = CounterOp;
    type Reply = u64;
    fn handle(&mut self, op: CounterOp) -> u64 {
        if let CounterOp::Incr(n) = op {
            self.value += n;
        }
        self.value
    }
}

/// A worker: files each number it checks under "even" or "odd" (lists held by
/// the manager), and counts what it did.
fn worker((id, numbers, counter): (u32, Dict<String, Vec<u64>>, Shared<Counter>)) -> u32 {
    for n in (id as u64 * 10)..(id as u64 * 10 + 10) {
        let key = if n % 2 == 0 { "even" } else { "odd" };
        numbers
            .get_list::<u64, _>(key)
            .expect("nested list")
            .append(n)
            .expect("append");
        counter.call(CounterOp::Incr(1)).expect("incr");
    }
    id
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let m = Manager::builder().register::<Counter>().start()?;
    let numbers = m.dict::<String, Vec<u64>>()?;
    numbers.set_shared("even".into(), &m.list::<u64>()?)?;
    numbers.set_shared("odd".into(), &m.list::<u64>()?)?;
    let counter = m.create_shared(Counter::default())?;

    let workers: Vec<_> = (0..4)
        .map(|id| Process::start(worker, (id, numbers.clone(), counter.clone())))
        .collect::<Result<_, _>>()?;
    for w in workers {
        println!("worker {} done", w.join()?);
    }

    let mut even = numbers.get("even")?.unwrap_or_default();
    let mut odd = numbers.get("odd")?.unwrap_or_default();
    even.sort();
    odd.sort();
    println!("even: {even:?}");
    println!("odd:  {odd:?}");
    println!("counter: {}", counter.call(CounterOp::Get)?);
    assert_eq!(even.len() + odd.len(), 40);
    assert_eq!(counter.call(CounterOp::Get)?, 40);
    m.shutdown()?;
    Ok(())
}
