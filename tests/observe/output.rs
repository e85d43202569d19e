//! Captured output: whole when under the limit, bounded over it, never blocking
//! the child; a pool's failed task carries its worker's last stderr lines.

use std::io::Write;
use std::time::Duration;

use mproc::pipe::{Sender, simplex};
use mproc::pool::Pool;
use mproc::process::{Process, StartMethod};

use crate::LIMIT;
use crate::common::watchdog;

/// Writes `n` bytes of a known pattern to stdout (straight to the stream: a
/// `Fork` child of a test thread inherits libtest's capture of `print!`).
fn print_pattern(n: usize) -> usize {
    let line: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).chain([b'\n']).collect();
    let mut out = std::io::stdout().lock();
    let mut left = n;
    while left > 0 {
        let k = left.min(line.len());
        out.write_all(&line[..k]).unwrap();
        left -= k;
    }
    out.flush().unwrap();
    n
}

fn pattern(n: usize) -> Vec<u8> {
    let line: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).chain([b'\n']).collect();
    line.iter().copied().cycle().take(n).collect()
}

#[test]
fn ten_mb_of_stdout_comes_back_whole() {
    let _w = watchdog("10 MB of stdout", LIMIT);
    const TEN_MB: usize = 10 << 20;
    for method in StartMethod::ALL {
        let child = Process::builder()
            .start_method(method)
            .capture_output(true)
            .start(print_pattern, TEN_MB)
            .unwrap();
        let (result, output) = child.join_with_output();
        assert_eq!(result.unwrap(), TEN_MB);
        assert_eq!(output.stdout_dropped, 0, "{method:?}");
        assert_eq!(output.stdout.len(), TEN_MB, "{method:?}");
        assert!(
            output.stdout == pattern(TEN_MB),
            "{method:?}: the bytes differ"
        );
        assert!(output.stderr.is_empty());
    }
}

#[test]
fn output_over_the_limit_keeps_its_first_and_last_halves() {
    let _w = watchdog("bounded capture", LIMIT);
    let n = 3 << 20;
    let limit = 1 << 20;
    let child = Process::builder()
        .capture_output(true)
        .capture_limit(limit)
        .start(print_pattern, n)
        .unwrap();
    let (result, output) = child.join_with_output();
    assert_eq!(result.unwrap(), n);
    assert_eq!(output.stdout.len(), limit);
    assert_eq!(output.stdout_dropped, (n - limit) as u64);
    let all = pattern(n);
    assert!(output.stdout[..limit / 2] == all[..limit / 2]);
    assert!(output.stdout[limit / 2..] == all[n - limit / 2..]);
}

/// Prints without end, telling the parent how far it got every 8 MiB.
fn print_forever(progress: Sender<u64>) {
    let chunk = vec![b'y'; 1 << 20];
    let mut out = std::io::stdout().lock();
    let mut written: u64 = 0;
    loop {
        out.write_all(&chunk).unwrap();
        written += chunk.len() as u64;
        if written % (8 << 20) == 0 && progress.send(&written).is_err() {
            return;
        }
    }
}

#[test]
fn a_child_printing_without_end_does_not_block() {
    let _w = watchdog("endless printer", LIMIT);
    for method in StartMethod::ALL {
        let (tx, rx) = simplex::<u64>().unwrap();
        let child = Process::builder()
            .start_method(method)
            .capture_output(true)
            .capture_limit(1 << 20)
            .start(print_forever, tx)
            .unwrap();
        // Far more than any pipe holds: nobody makes the child wait.
        let mut got = 0;
        while got < 200 << 20 {
            got = rx
                .recv_timeout(LIMIT / 2)
                .expect("the child keeps printing");
        }
        child.kill().unwrap();
        let (result, output) = child.join_with_output();
        assert_eq!(result.unwrap_err().signal(), Some(9));
        // Bounded: the limit is kept, the rest counted.
        assert_eq!(output.stdout.len(), 1 << 20, "{method:?}");
        assert!(
            output.stdout_dropped >= (200 << 20) - (1 << 20),
            "{method:?}"
        );
    }
}

fn complain_then(how: u8) -> u8 {
    eprintln!("first complaint");
    let _ = writeln!(
        std::io::stderr(),
        "checking the disk: no space left on device"
    );
    match how {
        0 => panic!("gave up"),
        1 => std::process::abort(),
        _ => {
            std::thread::sleep(Duration::from_secs(600));
            0
        }
    }
}

#[test]
fn a_failed_pool_task_shows_the_last_lines_of_its_stderr() {
    let _w = watchdog("stderr tail in TaskError", LIMIT);
    for method in StartMethod::ALL {
        let pool = Pool::builder()
            .processes(1)
            .start_method(method)
            .capture_output(true)
            .task_timeout(Duration::from_secs(3))
            .handle_ctrl_c(false)
            .build()
            .unwrap();
        for how in 0..3u8 {
            let err = pool.apply(complain_then, how).unwrap_err();
            match how {
                0 => assert!(err.is_panic()),
                1 => assert!(err.is_worker_lost()),
                _ => assert!(err.is_timeout()),
            }
            let tail = err
                .stderr_tail()
                .unwrap_or_else(|| panic!("{method:?} {how}: {err}"));
            assert!(
                tail.ends_with("checking the disk: no space left on device"),
                "{tail}"
            );
            assert!(err.to_string().contains("no space left on device"), "{err}");
        }
        // Without collection, no tail.
        let plain = Pool::builder()
            .processes(1)
            .start_method(method)
            .handle_ctrl_c(false)
            .build()
            .unwrap();
        let err = plain
            .apply(|_: ()| -> u8 { panic!("quiet") }, ())
            .unwrap_err();
        assert_eq!(err.stderr_tail(), None);
    }
}
