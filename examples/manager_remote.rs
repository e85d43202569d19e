//! A manager served on loopback TCP to another process that connects with the key:
//! Python's `BaseManager(address, authkey)`, with mutual authentication and an
//! encrypted session. A client with the wrong key is refused.
//!
//! ```text
//! cargo run --release --example manager_remote
//! ```

use std::net::SocketAddr;

use mproc::manager::{Address, Manager};
use mproc::process::Process;

const KEY: &[u8] = b"a key shared by server and clients";

/// Another process (it could be on another machine): connects by address and
/// key, finds the shared objects by name, and works on them.
fn client(address: Address) -> Result<usize, String> {
    let m = Manager::connect(address, KEY).map_err(|e| e.to_string())?;
    let jobs = m.named_queue::<String>("jobs").map_err(|e| e.to_string())?;
    let results = m
        .named_dict::<String, usize>("results")
        .map_err(|e| e.to_string())?;
    let mut done = 0;
    while let Ok(word) = jobs.try_get() {
        results
            .set(word.clone(), word.len())
            .map_err(|e| e.to_string())?;
        done += 1;
    }
    Ok(done)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Manager::serve("127.0.0.1:0".parse::<SocketAddr>()?, KEY)?;
    println!("serving on {}", server.address());
    let jobs = server.named_queue::<String>("jobs")?;
    for w in ["alpha", "beta", "gamma", "delta"] {
        jobs.put(w.to_string())?;
    }

    let done = Process::start(client, server.address().clone())?.join()??;
    println!("the client did {done} jobs");
    let results = server.named_dict::<String, usize>("results")?;
    println!("results: {:?}", results.items()?);
    assert_eq!(results.len()?, 4);

    let wrong = Manager::connect(server.address().clone(), b"not the key").unwrap_err();
    println!("a client with the wrong key: {wrong}");
    assert!(wrong.is_authentication());
    server.shutdown()?;
    Ok(())
}
