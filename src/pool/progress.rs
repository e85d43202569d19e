//! Progress bars for maps (feature `progress`, on by default): one tick per item,
//! drawn on stderr only when it is a terminal.

#[cfg(feature = "progress")]
mod imp {
    use indicatif::{ProgressBar, ProgressStyle};

    /// A progress bar counting items.
    #[derive(Clone)]
    pub(crate) struct Progress(ProgressBar);

    impl Progress {
        pub(crate) fn new(total: Option<usize>, label: &str) -> Progress {
            let bar = match total {
                Some(n) => {
                    let bar = ProgressBar::new(n as u64);
                    if let Ok(style) = ProgressStyle::with_template(
                        "{msg} [{bar:40.cyan/blue}] {pos}/{len} ({per_sec}, eta {eta})",
                    ) {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar
                }
                None => {
                    let bar = ProgressBar::new_spinner();
                    if let Ok(style) =
                        ProgressStyle::with_template("{msg} {spinner} {pos} ({per_sec})")
                    {
                        bar.set_style(style);
                    }
                    bar
                }
            };
            bar.set_message(label.to_string());
            Progress(bar)
        }

        pub(crate) fn inc(&self) {
            self.0.inc(1);
        }

        pub(crate) fn position(&self) -> u64 {
            self.0.position()
        }

        pub(crate) fn finish(&self) {
            if !self.0.is_finished() {
                self.0.finish();
            }
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
