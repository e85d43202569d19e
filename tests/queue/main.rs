//! Tests of `mproc::queue`: in-process first (`threads`), then across real
//! processes (`processes`), `shutdown(immediate)` across processes (`shutdown`),
//! then SIGKILL fault loops (`faults`). The crash of a
//! process at each individual step of the put/get protocol is covered by the unit
//! tests in `src/queue/tests.rs`.
#![cfg(not(miri))]

#[path = "../common/mod.rs"]
mod common;
mod faults;
mod processes;
mod shutdown;
mod threads;
mod util;
