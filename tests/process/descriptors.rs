//! A child gets only the descriptors mproc passes on purpose: one the parent opened
//! without close-on-exec stays behind, as with Python's spawn (issue 10, item 8).

use std::os::fd::OwnedFd;
use std::time::Duration;

use mproc::process::{Process, StartMethod};

use crate::common::{temp_path, watchdog};

/// Where each of this process's descriptors above 2 points.
fn open_targets(_: ()) -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) > Some(2))
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// Opens `path` without `O_CLOEXEC`, as C code (or `libc::open`) would.
fn open_inheritable(path: &std::path::Path) -> OwnedFd {
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CREATE,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap();
    // Clear close-on-exec (rustix sets it by default).
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty()).unwrap();
    fd
}

fn inheritable_descriptor_stays_behind(m: StartMethod) {
    let _w = watchdog(
        "inheritable_descriptor_stays_behind",
        Duration::from_secs(60),
    );
    let path = temp_path("inheritable");
    let fd = open_inheritable(&path);
    let targets = Process::builder()
        .start_method(m)
        .start(open_targets, ())
        .unwrap()
        .join()
        .unwrap();
    let name = path.to_string_lossy().into_owned();
    drop(fd);
    let _ = std::fs::remove_file(&path);
    assert!(
        !targets.contains(&name),
        "{m:?} child inherited a descriptor it was not given: {targets:?}"
    );
}

#[test]
fn spawn_child_does_not_inherit_descriptors() {
    inheritable_descriptor_stays_behind(StartMethod::Spawn);
}

#[test]
fn forkserver_child_does_not_inherit_descriptors() {
    inheritable_descriptor_stays_behind(StartMethod::Forkserver);
}
