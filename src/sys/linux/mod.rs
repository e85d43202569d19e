//! Linux implementation of the `sys` layer: rustix where it has the call, libc for
//! the rest (`posix_spawn`, `fork`, robust pthread mutexes).
#![allow(unsafe_code)]

pub(crate) mod code;
// Used by the queue and sync modules, which are being merged.
#[allow(dead_code)]
pub(crate) mod futex;
#[allow(dead_code)]
pub(crate) mod memory;
pub(crate) mod process;
pub(crate) mod pthread;
pub(crate) mod shm_region;
pub(crate) mod socket;
pub(crate) mod startup;
pub(crate) mod stream;
