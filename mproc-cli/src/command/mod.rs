//! One module per subcommand (or group of subcommands), each with a `run` function.

pub mod info;
pub mod selftest;
