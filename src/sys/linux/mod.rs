//! Linux implementation of the `sys` layer: rustix where it has the call, libc for
//! the rest (`posix_spawn`, `fork`, robust pthread mutexes).
#![allow(unsafe_code)]

pub(crate) mod abstract_socket;
pub(crate) mod barrier;
pub(crate) mod clock;
pub(crate) mod code;
pub(crate) mod epoll;
#[cfg(feature = "tokio")]
pub(crate) mod event_fd;
pub(crate) mod futex;
pub(crate) mod interrupt;
pub(crate) mod limits;
pub(crate) mod memory;
pub(crate) mod process;
pub(crate) mod pthread;
#[cfg(feature = "tokio")]
pub(crate) mod reactor;
pub(crate) mod shared_word;
pub(crate) mod shm_region;
pub(crate) mod socket;
pub(crate) mod sockopt;
pub(crate) mod startup;
pub(crate) mod stream;
pub(crate) mod thread_mark;
pub(crate) mod wake_socket;
