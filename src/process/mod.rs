//! Child processes that run Rust functions.
pub(crate) mod bootstrap;
