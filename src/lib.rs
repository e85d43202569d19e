//! mproc: Python's multiprocessing for Rust.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub(crate) mod codec;
pub mod process;
pub mod shm;
pub mod sync;
pub(crate) mod sys;
pub(crate) mod wire;
