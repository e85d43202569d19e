//! Two processes playing ping-pong over a `Pipe`, Python's classic `Pipe` demo.
//!
//! The parent sends a number, the child sends it back plus one. The round trip
//! time is printed: a receive polls briefly before it sleeps, so two processes that
//! answer each other at once do not pay the kernel's wake-up cost.
//!
//! ```text
//! cargo run --release --example ping_pong
//! ```

use std::time::{Duration, Instant};

use mproc::pipe::{self, Connection};
use mproc::process::Process;

/// The child: answers every number with the next one, until the parent hangs up.
fn pong(conn: Connection<u64>) -> u64 {
    let mut rounds = 0;
    while let Ok(n) = conn.recv() {
        if conn.send(&(n + 1)).is_err() {
            break;
        }
        rounds += 1;
    }
    rounds
}

fn main() {
    const ROUNDS: u64 = 20_000;
    let (here, there) = pipe::duplex::<u64>().expect("pipe");
    let child = Process::start(pong, there).expect("start the child");

    let mut n = 0;
    for _ in 0..100 {
        here.send(&n).unwrap();
        n = here.recv().unwrap();
    }
    let start = Instant::now();
    for _ in 0..ROUNDS {
        here.send(&n).unwrap();
        n = here.recv().unwrap();
    }
    let per_round = start.elapsed() / ROUNDS as u32;
    drop(here); // the child's recv now says Closed, and it returns

    assert_eq!(n, ROUNDS + 100);
    let rounds = child
        .join_timeout(Duration::from_secs(30))
        .expect("child failed");
    assert_eq!(rounds, ROUNDS + 100);
    println!("{ROUNDS} round trips, {per_round:?} each");
}
