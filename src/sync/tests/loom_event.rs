//! `Event`: no waiter sleeps through a `set`, whatever the interleaving.

use std::sync::atomic::Ordering;

use loom::sync::Arc;
use loom::thread;

use crate::loom::Word;
use crate::sync::FutexWord;
use crate::sync::event::{SET, lower, raise, wait_raised};

#[test]
fn loom_event_waiter_wakes_on_set() {
    loom::model(|| {
        let word = Arc::new(Word::new(0));
        let setter = {
            let word = Arc::clone(&word);
            thread::spawn(move || raise(&*word))
        };
        assert!(wait_raised(&*word, None));
        setter.join().unwrap();
        assert_ne!(word.load(Ordering::SeqCst) & SET, 0);
    });
}

#[test]
fn loom_event_set_then_clear_still_wakes_the_waiter() {
    // Python's semantics: a waiter woken by a `set` returns `true` even when a
    // `clear` follows at once; it must not sleep on forever.
    loom::model(|| {
        let word = Arc::new(Word::new(0));
        let setter = {
            let word = Arc::clone(&word);
            thread::spawn(move || {
                raise(&*word);
                lower(&*word);
            })
        };
        assert!(wait_raised(&*word, None));
        setter.join().unwrap();
        assert_eq!(word.load(Ordering::SeqCst) & SET, 0);
    });
}

#[test]
fn loom_event_two_waiters_one_set() {
    loom::model(|| {
        let word = Arc::new(Word::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let word = Arc::clone(&word);
                thread::spawn(move || wait_raised(&*word, None))
            })
            .collect();
        raise(&*word);
        for w in waiters {
            assert!(w.join().unwrap());
        }
    });
}
