//! Progress on standard error for scans and glucose catch-ups. It draws only when standard
//! error is a terminal, so pipes and scripts see the plain output alone.

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// A scan's progress: time elapsed out of the scan's length, and the devices found so far.
#[derive(Debug)]
pub struct Scan {
    bar: ProgressBar,
    found: usize,
}

impl Scan {
    /// A bar for a scan of `length`.
    pub fn start(length: Duration) -> Self {
        let bar = ProgressBar::new(length.as_secs().max(1));
        bar.set_style(
            // The steady tick redraws the elapsed time; the length is the scan's, in seconds.
            ProgressStyle::with_template("{spinner} scanning: {elapsed} of {len}s, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message("0 device(s)");
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar, found: 0 }
    }

    /// Prints `line` above the bar; `new_device` counts it as found.
    pub fn line(&mut self, line: &str, new_device: bool) {
        if new_device {
            self.found = self.found.saturating_add(1);
            self.bar.set_message(format!("{} device(s)", self.found));
        }
        self.bar.suspend(|| crate::cli::output::out!("{line}"));
    }

    /// Removes the bar.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

/// One bar per glucose meter being caught up: records received over records announced.
#[derive(Debug, Default)]
pub struct CatchUps {
    bars: MultiProgress,
    by_address: HashMap<String, ProgressBar>,
}

impl CatchUps {
    /// A meter announced `expected` records.
    pub fn started(&mut self, address: &str, expected: u16) {
        if expected == 0 {
            return;
        }
        let bar = self.bars.add(ProgressBar::new(u64::from(expected)));
        bar.set_style(
            ProgressStyle::with_template("{prefix} catch-up [{bar:30}] {pos}/{len} records")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(address.to_owned());
        if let Some(old) = self.by_address.insert(address.to_owned(), bar) {
            old.finish_and_clear();
        }
    }

    /// A record of `address` arrived.
    pub fn received(&mut self, address: &str) {
        if let Some(bar) = self.by_address.get(address) {
            bar.inc(1);
            if bar.length().is_some_and(|len| bar.position() >= len) {
                bar.finish_and_clear();
                self.by_address.remove(address);
            }
        }
    }

    /// The session of `address` ended (the catch-up is over, complete or not).
    pub fn ended(&mut self, address: &str) {
        if let Some(bar) = self.by_address.remove(address) {
            bar.finish_and_clear();
        }
    }

    /// Prints `line` on standard output without tearing the bars.
    pub fn print(&self, line: &str) {
        self.bars.suspend(|| crate::cli::output::out!("{line}"));
    }
}
