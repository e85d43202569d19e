//! Test helpers: a watchdog that aborts a hung test, and a tiny seeded RNG.

use std::sync::mpsc;
use std::time::Duration;

/// Aborts the test binary with a message unless dropped within `limit`.
pub struct Watchdog {
    cancel: Option<mpsc::Sender<()>>,
}

pub fn watchdog(what: &str, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let what = what.to_string();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            // Straight to fd 2: the test harness's output capture would swallow eprintln.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "watchdog: '{what}' still running after {limit:?}; aborting the test binary"
            );
            std::process::abort();
        }
    });
    Watchdog { cancel: Some(tx) }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.cancel.take() {
            let _ = tx.send(());
        }
    }
}

/// xorshift64*: reproducible from the printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn from_time(what: &str) -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("{what}: seed {seed}");
        Rng(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
