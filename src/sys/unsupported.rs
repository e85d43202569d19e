//! Placeholder for platforms mproc does not support yet: every call fails with
//! `ErrorKind::Unsupported`. Linux is the supported platform; see `sys/linux`.

compile_error!("mproc supports Linux only for now; see the `sys` module for where a port goes");
