//! `SharedMemory`: anonymous and named blocks, who removes names, what leaks.

use std::path::Path;

use mproc::process::Process;
use mproc::shm::{SharedMemory, ShmError};
use mproc::sync::Event;

use crate::{LONG, watchdog};

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "mproc-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn in_dev_shm(name: &str) -> bool {
    Path::new("/dev/shm").join(name).exists()
}

#[test]
fn bytes_and_values_round_trip() {
    let shm = SharedMemory::new(64).unwrap();
    assert_eq!(shm.len(), 64);
    assert_eq!(shm.to_vec(), vec![0; 64]);
    shm.write(3, b"abcdefghijklmnopqrstuvwxyz"); // unaligned start, crosses words
    let mut buf = [0u8; 26];
    shm.read(3, &mut buf);
    assert_eq!(&buf, b"abcdefghijklmnopqrstuvwxyz");
    shm.store(40, 0x0102_0304_0506_0708u64);
    assert_eq!(shm.load::<u64>(40), 0x0102_0304_0506_0708);
    shm.store(61, [9u8, 8, 7]);
    assert_eq!(shm.load::<[u8; 3]>(61), [9, 8, 7]);
}

#[test]
#[should_panic(expected = "out of bounds")]
fn out_of_bounds_access_panics() {
    let shm = SharedMemory::new(8).unwrap();
    shm.store(4, 1u64);
}

#[test]
fn zero_size_and_bad_names_are_errors() {
    assert!(matches!(SharedMemory::new(0), Err(ShmError::Size { .. })));
    for bad in ["", "/", "a/b", "..", "nul\0"] {
        assert!(
            matches!(
                SharedMemory::create(bad, 8),
                Err(ShmError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
    let e = SharedMemory::open(&unique("missing")).unwrap_err();
    assert!(matches!(e, ShmError::NotFound { .. }), "{e}");
}

fn fill((shm, byte): (SharedMemory, u8)) -> usize {
    let data = vec![byte; shm.len()];
    shm.write(0, &data);
    shm.len()
}

#[test]
fn anonymous_block_travels_to_a_child() {
    let _w = watchdog("anonymous_block_travels_to_a_child", LONG);
    let shm = SharedMemory::new(10_000).unwrap();
    let child = Process::start(fill, (shm.clone(), 0xAB)).unwrap();
    assert_eq!(child.join().unwrap(), 10_000);
    assert!(shm.to_vec().iter().all(|&b| b == 0xAB));
}

fn open_and_write(name: String) -> Option<String> {
    let shm = SharedMemory::open(&name).ok()?;
    shm.write(0, b"from a stranger");
    Some(shm.name()?.to_string())
}

#[test]
fn named_block_is_found_by_name_and_removed_by_its_creator() {
    let _w = watchdog(
        "named_block_is_found_by_name_and_removed_by_its_creator",
        LONG,
    );
    let name = unique("named");
    let shm = SharedMemory::create(&name, 32).unwrap();
    assert!(in_dev_shm(&name));
    assert!(matches!(
        SharedMemory::create(&name, 32),
        Err(ShmError::AlreadyExists { .. })
    ));
    // A process that only knows the name (it opens, it does not create).
    let child = Process::start(open_and_write, name.clone()).unwrap();
    assert_eq!(child.join().unwrap(), Some(name.clone()));
    let mut buf = [0u8; 15];
    shm.read(0, &mut buf);
    assert_eq!(&buf, b"from a stranger");
    // An opener's handle does not remove the name; the creator's last one does.
    let opened = SharedMemory::open(&name).unwrap();
    drop(opened);
    assert!(in_dev_shm(&name));
    let clone = shm.clone();
    drop(shm);
    assert!(in_dev_shm(&name), "a clone is still alive");
    drop(clone);
    assert!(!in_dev_shm(&name));
}

fn receive_named(shm: SharedMemory) -> Option<String> {
    shm.store(0, 5u32);
    shm.name().map(str::to_string)
}

#[test]
fn a_named_handle_sent_to_a_child_does_not_remove_the_name() {
    let _w = watchdog(
        "a_named_handle_sent_to_a_child_does_not_remove_the_name",
        LONG,
    );
    let name = unique("sent");
    let shm = SharedMemory::create(&name, 8).unwrap();
    let child = Process::start(receive_named, shm.clone()).unwrap();
    assert_eq!(child.join().unwrap(), Some(name.clone()));
    assert!(in_dev_shm(&name));
    assert_eq!(shm.load::<u32>(0), 5);
}

#[test]
fn persist_and_unlink() {
    let name = unique("persist");
    let shm = SharedMemory::create(&name, 8).unwrap();
    shm.persist();
    drop(shm);
    assert!(in_dev_shm(&name));
    let again = SharedMemory::open(&name).unwrap();
    again.unlink().unwrap();
    assert!(!in_dev_shm(&name));
    assert!(matches!(again.unlink(), Err(ShmError::NotFound { .. })));
    again.store(0, 1u8); // still mapped
}

fn create_named_and_hang((name, ready): (String, Event)) -> u8 {
    let shm = SharedMemory::create(&name, 8).unwrap();
    ready.set();
    std::thread::sleep(LONG * 3);
    drop(shm);
    0
}

#[test]
fn a_killed_creator_leaves_the_name_which_can_be_cleaned_up() {
    let _w = watchdog(
        "a_killed_creator_leaves_the_name_which_can_be_cleaned_up",
        LONG,
    );
    let name = unique("killed");
    let ready = Event::new().unwrap();
    let child = Process::start(create_named_and_hang, (name.clone(), ready.clone())).unwrap();
    assert!(ready.wait_timeout(LONG));
    child.kill().unwrap();
    assert!(child.join().unwrap_err().is_signaled());
    assert!(
        in_dev_shm(&name),
        "documented: the name outlives a killed creator"
    );
    SharedMemory::open(&name).unwrap().unlink().unwrap();
    assert!(!in_dev_shm(&name));
}

fn hold_anonymous((shm, ready): (SharedMemory, Event)) -> u8 {
    shm.store(0, 1u8);
    ready.set();
    std::thread::sleep(LONG * 3);
    0
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn anonymous_blocks_leave_nothing_behind() {
    let _w = watchdog("anonymous_blocks_leave_nothing_behind", LONG);
    let before_shm: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let ready = Event::new().unwrap();
    let shm = SharedMemory::new(4096).unwrap();
    let child = Process::start(hold_anonymous, (shm.clone(), ready.clone())).unwrap();
    assert!(ready.wait_timeout(LONG));
    child.kill().unwrap();
    assert!(child.join().unwrap_err().is_signaled());
    assert_eq!(shm.load::<u8>(0), 1);
    drop(shm);
    let after_shm: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let new: Vec<_> = after_shm
        .iter()
        .filter(|n| {
            let n = n.to_string_lossy();
            // Names made by this binary's tests of named blocks, which may run at
            // the same time, are theirs to remove.
            !before_shm.iter().any(|b| b.to_string_lossy() == n)
                && !n.starts_with("mproc-test-")
                && n.contains(&std::process::id().to_string())
        })
        .collect();
    assert!(
        new.is_empty(),
        "anonymous memory left names behind: {new:?}"
    );
}

fn count_fds_around_200_blocks(_: ()) -> (usize, usize, usize) {
    let before = open_fds();
    let blocks: Vec<_> = (0..200).map(|_| SharedMemory::new(64).unwrap()).collect();
    let during = open_fds();
    drop(blocks);
    (before, during, open_fds())
}

#[test]
fn dropping_handles_closes_their_descriptors() {
    let _w = watchdog("dropping_handles_closes_their_descriptors", LONG);
    // In a child, where no other test opens descriptors meanwhile.
    let child = Process::start(count_fds_around_200_blocks, ()).unwrap();
    let (before, during, after) = child.join().unwrap();
    assert_eq!(during, before + 200);
    assert_eq!(after, before);
}

#[test]
fn serializing_a_handle_outside_mproc_is_an_error() {
    let shm = SharedMemory::new(8).unwrap();
    let err = postcard::to_stdvec(&shm).unwrap_err();
    let _ = err; // postcard reduces the message; mproc's codec reports it in full
}
