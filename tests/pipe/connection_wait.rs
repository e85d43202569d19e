//! `mproc::connection::wait`: several pipe ends and processes at once (Python's
//! `multiprocessing.connection.wait`; scenarios after CPython's `TestWait`).

use std::time::{Duration, Instant};

use mproc::connection::{Waitable, wait};
use mproc::pipe::{self, Sender};
use mproc::process::Process;

#[test]
fn nothing_ready_times_out_empty() {
    let (_tx, rx) = pipe::simplex::<u8>().unwrap();
    let objects: [&dyn Waitable; 1] = [&rx];
    let start = Instant::now();
    assert!(
        wait(&objects, Some(Duration::from_millis(200)))
            .unwrap()
            .is_empty()
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
}

#[test]
fn a_huge_timeout_is_no_limit() {
    let (tx, rx) = pipe::simplex::<u8>().unwrap();
    tx.send(&1).unwrap();
    let objects: [&dyn Waitable; 1] = [&rx];
    assert_eq!(wait(&objects, Some(Duration::MAX)).unwrap(), vec![0]);
}

#[test]
fn waiting_on_nothing_forever_is_an_error() {
    let err = wait(&[], None).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(wait(&[], Some(Duration::ZERO)).unwrap().is_empty());
}

fn send_after(x: (Sender<u32>, u64)) {
    std::thread::sleep(Duration::from_millis(x.1));
    x.0.send(&(x.1 as u32)).unwrap();
}

/// Four children each answer on their own pipe at a different time: every answer
/// is collected by waiting on all the pipes, whatever the order.
#[test]
fn collects_every_answer_from_several_children() {
    let mut readers = Vec::new();
    let mut children = Vec::new();
    for delay in [300u64, 0, 200, 100] {
        let (tx, rx) = pipe::simplex::<u32>().unwrap();
        children.push(Process::start(send_after, (tx, delay)).unwrap());
        readers.push(rx);
    }
    let mut got = Vec::new();
    let mut open: Vec<usize> = (0..readers.len()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !open.is_empty() {
        assert!(Instant::now() < deadline, "answers missing: {open:?}");
        let objects: Vec<&dyn Waitable> =
            open.iter().map(|&i| &readers[i] as &dyn Waitable).collect();
        let ready = wait(&objects, Some(Duration::from_secs(30))).unwrap();
        assert!(!ready.is_empty(), "no answer within 30 s");
        let mut done = Vec::new();
        for k in ready {
            let i = open[k];
            got.push(readers[i].recv().unwrap());
            done.push(i);
        }
        open.retain(|i| !done.contains(i));
    }
    got.sort_unstable();
    assert_eq!(got, vec![0, 100, 200, 300]);
    for c in children {
        c.join().unwrap();
    }
}

/// A buffered message counts as ready although the socket itself has nothing more.
#[test]
fn a_buffered_message_is_ready() {
    let (tx, rx) = pipe::simplex::<u8>().unwrap();
    tx.send(&1).unwrap();
    tx.send(&2).unwrap();
    // Both arrive in one read; the second stays in the end's buffer.
    assert_eq!(rx.recv().unwrap(), 1);
    let objects: [&dyn Waitable; 1] = [&rx];
    assert_eq!(wait(&objects, Some(Duration::ZERO)).unwrap(), vec![0]);
    assert_eq!(rx.recv().unwrap(), 2);
    assert!(wait(&objects, Some(Duration::ZERO)).unwrap().is_empty());
}

/// Pipes and process sentinels mixed: the process is ready when it ends, the pipe
/// when its peer closes.
#[test]
fn processes_and_pipes_together() {
    let (tx, rx) = pipe::simplex::<u8>().unwrap();
    let quick = Process::start(|x: u8| x, 5).unwrap();
    let slow = Process::start(|s: u64| std::thread::sleep(Duration::from_secs(s)), 60).unwrap();
    {
        let objects: [&dyn Waitable; 3] = [&rx, &slow, &quick];
        let deadline = Instant::now() + Duration::from_secs(30);
        let ready = loop {
            let r = wait(&objects, Some(Duration::from_secs(30))).unwrap();
            if !r.is_empty() || Instant::now() >= deadline {
                break r;
            }
        };
        assert_eq!(ready, vec![2], "only the finished process is ready");
    }
    drop(tx);
    {
        let objects: [&dyn Waitable; 2] = [&rx, &slow];
        assert_eq!(
            wait(&objects, Some(Duration::from_secs(30))).unwrap(),
            vec![0]
        );
    }
    assert!(rx.recv().unwrap_err().is_closed());
    slow.kill().unwrap();
    assert!(slow.join().unwrap_err().is_signaled());
    assert_eq!(quick.join().unwrap(), 5);
}
