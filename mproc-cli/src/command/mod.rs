//! One module per subcommand (or group of subcommands), each with a `run` function.

pub mod info;
#[cfg(feature = "distributed")]
pub mod jobs;
#[cfg(feature = "distributed")]
pub mod queues;
pub mod selftest;
