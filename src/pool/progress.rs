//! Progress bars for maps (feature `progress`, on by default): one tick per item,
//! drawn on stderr only when it is a terminal.
//!
//! The bar finishes itself when its last item arrives, before the map's caller is
//! woken, and then ends its line: whatever the program prints next starts on a line of
//! its own instead of on top of the bar. A bar dropped before its last item (a map
//! that failed or was abandoned) is left as it stands and its line is ended too.
//! The rate reads `12.3 items/s`; the time left reads `eta 4.2s`, and once the bar is
//! full, the time it took (`done in 5.7s`).

use std::time::Duration;

/// `rate` items per second, to three significant figures at most (`0.52`, `12.3`, `4817`).
#[cfg_attr(not(feature = "progress"), allow(dead_code))]
fn format_rate(rate: f64) -> String {
    if !rate.is_finite() || rate <= 0.0 {
        "– items/s".to_owned()
    } else if rate >= 100.0 {
        format!("{rate:.0} items/s")
    } else if rate >= 10.0 {
        format!("{rate:.1} items/s")
    } else {
        format!("{rate:.2} items/s")
    }
}

/// A duration for people: `0.4s`, `4.2s`, `57s`, `3m 05s`, `2h 07m`.
#[cfg_attr(not(feature = "progress"), allow(dead_code))]
fn format_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3600.0 {
        let s = s.round() as u64;
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        let m = (s / 60.0).round() as u64;
        format!("{}h {:02}m", m / 60, m % 60)
    }
}

#[cfg(feature = "progress")]
mod imp {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use indicatif::{ProgressBar, ProgressState, ProgressStyle};

    use super::{format_duration, format_rate};

    /// A progress bar counting items.
    #[derive(Clone)]
    pub(crate) struct Progress(Arc<Bar>);

    struct Bar {
        bar: ProgressBar,
        /// Set by whoever ends the bar's line (finish or drop), so it is ended once.
        ended: AtomicBool,
    }

    impl Bar {
        /// Ends the bar's line on the terminal, once.
        fn end_line(&self) {
            if !self.ended.swap(true, Ordering::AcqRel) && !self.bar.is_hidden() {
                // indicatif leaves the cursor after the bar's last character.
                let _ = writeln!(std::io::stderr());
            }
        }
    }

    impl Drop for Bar {
        fn drop(&mut self) {
            if !self.bar.is_finished() {
                self.bar.abandon();
            }
            self.end_line();
        }
    }

    fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
        let _ = w.write_str(&format_rate(state.per_sec()));
    }

    fn remaining(state: &ProgressState, w: &mut dyn std::fmt::Write) {
        let _ = if state.is_finished() || state.len().is_some_and(|n| state.pos() >= n) {
            write!(w, "done in {}", format_duration(state.elapsed()))
        } else if state.pos() == 0 {
            w.write_str("eta –")
        } else {
            write!(w, "eta {}", format_duration(state.eta()))
        };
    }

    impl Progress {
        pub(crate) fn new(total: Option<usize>, label: &str) -> Progress {
            let bar = match total {
                Some(n) => {
                    let bar = ProgressBar::new(n as u64);
                    if let Ok(style) = ProgressStyle::with_template(
                        "{msg} [{bar:30.cyan/blue}] {pos}/{len}, {rate}, {remaining}",
                    ) {
                        bar.set_style(
                            style
                                .with_key("rate", rate)
                                .with_key("remaining", remaining)
                                .progress_chars("=> "),
                        );
                    }
                    bar
                }
                None => {
                    let bar = ProgressBar::new_spinner();
                    if let Ok(style) = ProgressStyle::with_template("{msg} {spinner} {pos}, {rate}")
                    {
                        bar.set_style(style.with_key("rate", rate));
                    }
                    bar
                }
            };
            bar.set_message(label.to_string());
            Progress(Arc::new(Bar {
                bar,
                ended: AtomicBool::new(false),
            }))
        }

        /// Counts one item; the last one finishes the bar (before the result is handed
        /// to the map's caller, who may print next).
        pub(crate) fn inc(&self) {
            self.0.bar.inc(1);
            if let Some(len) = self.0.bar.length() {
                if self.0.bar.position() >= len {
                    self.finish();
                }
            }
        }

        pub(crate) fn position(&self) -> u64 {
            self.0.bar.position()
        }

        pub(crate) fn finish(&self) {
            if !self.0.bar.is_finished() {
                self.0.bar.finish();
            }
            self.0.end_line();
        }

        #[cfg(test)]
        pub(crate) fn is_finished(&self) -> bool {
            self.0.bar.is_finished()
        }
    }
}

#[cfg(not(feature = "progress"))]
mod imp {
    /// Without the `progress` feature, bars count but draw nothing.
    #[derive(Clone)]
    pub(crate) struct Progress(std::sync::Arc<std::sync::atomic::AtomicU64>);

    impl Progress {
        pub(crate) fn new(_total: Option<usize>, _label: &str) -> Progress {
            Progress(Default::default())
        }
        pub(crate) fn inc(&self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        pub(crate) fn position(&self) -> u64 {
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
        pub(crate) fn finish(&self) {}
    }
}

pub(crate) use imp::Progress;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_items_per_second() {
        assert_eq!(format_rate(11.2938), "11.3 items/s");
        assert_eq!(format_rate(0.5234), "0.52 items/s");
        assert_eq!(format_rate(4817.2), "4817 items/s");
        assert_eq!(format_rate(0.0), "– items/s");
        assert_eq!(format_rate(f64::NAN), "– items/s");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(format_duration(Duration::from_millis(420)), "0.4s");
        assert_eq!(format_duration(Duration::from_millis(5670)), "5.7s");
        assert_eq!(format_duration(Duration::from_secs(57)), "57s");
        assert_eq!(format_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(format_duration(Duration::from_secs(7620)), "2h 07m");
    }

    #[cfg(feature = "progress")]
    #[test]
    fn the_last_item_finishes_the_bar() {
        let p = Progress::new(Some(3), "items");
        p.inc();
        p.inc();
        assert!(!p.is_finished());
        p.clone().inc();
        assert!(p.is_finished(), "the bar must be finished by its last item");
        assert_eq!(p.position(), 3);
        p.finish(); // idempotent
    }
}
