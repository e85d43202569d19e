//! mproc: Python's multiprocessing for Rust.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub(crate) mod codec;
pub mod pipe;
pub mod process;
pub mod queue;
pub(crate) mod sys;
pub(crate) mod wire;
