//! Stability: is the load holding still, and what does it weigh while it does?
//!
//! The window holds the last two seconds of (spike-filtered) conversions: twenty at the HX711's
//! 10 Hz. The load is still when every one of them lies within a band (±50 g by default,
//! converted to counts by the caller, who knows the calibration); the measurement is then their
//! mean, the moving average that takes out the noise and most of the body sway.
//!
//! Why two seconds and not one: body sway runs at 0.2 to 0.6 Hz, and a one-second mean barely
//! attenuates it. Over the panel of `firmware/tests/scale_accuracy.rs` a one-second window
//! measured 33 g off at worst (12 g mean), a two-second one 24 g (5 g mean), for a measurement
//! about 3 s after stepping on instead of 2 s.

/// Conversions in the window: two seconds at the HX711's 10 Hz.
pub const WINDOW_LEN: usize = 20;

/// The last `WINDOW_LEN` conversions, oldest overwritten first.
#[derive(Debug, Clone, Default)]
pub struct StabilityWindow {
    samples: [i32; WINDOW_LEN],
    /// Where the next conversion goes.
    next: usize,
    filled: usize,
}

impl StabilityWindow {
    /// An empty window: not still until it has filled.
    pub const fn new() -> Self {
        Self {
            samples: [0; WINDOW_LEN],
            next: 0,
            filled: 0,
        }
    }

    /// Adds a conversion, dropping the oldest once the window is full.
    pub fn push(&mut self, counts: i32) {
        if let Some(slot) = self.samples.get_mut(self.next) {
            *slot = counts;
        }
        self.next = (self.next + 1) % WINDOW_LEN;
        self.filled = (self.filled + 1).min(WINDOW_LEN);
    }

    /// Empties the window, so stillness has to be shown again from scratch.
    pub fn clear(&mut self) {
        self.filled = 0;
    }

    /// The mean of the window when it is full and every conversion lies within ±`half_band`
    /// counts of the middle of the range; `None` while the load moves.
    pub fn still_mean(&self, half_band: f32) -> Option<f32> {
        let samples = self.samples.get(..self.filled)?;
        if self.filled < WINDOW_LEN {
            return None;
        }
        let (min, max) = samples
            .iter()
            .fold((i32::MAX, i32::MIN), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        let spread = i64::from(max) - i64::from(min);
        if spread as f32 > 2.0 * half_band.abs() {
            return None;
        }
        let sum: i64 = samples.iter().map(|&s| i64::from(s)).sum();
        Some(sum as f32 / WINDOW_LEN as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_still_until_a_full_window_has_been_seen() {
        let mut window = StabilityWindow::new();
        for _ in 0..WINDOW_LEN - 1 {
            window.push(1_000);
            assert_eq!(window.still_mean(50.0), None);
        }
        window.push(1_000);
        assert_eq!(window.still_mean(50.0), Some(1_000.0));
    }

    #[test]
    fn one_conversion_outside_the_band_breaks_stillness_until_it_leaves_the_window() {
        let mut window = StabilityWindow::new();
        for _ in 0..WINDOW_LEN {
            window.push(0);
        }
        window.push(101);
        for _ in 0..WINDOW_LEN {
            assert_eq!(window.still_mean(50.0), None);
            window.push(0);
        }
        assert_eq!(window.still_mean(50.0), Some(0.0));
    }

    #[test]
    fn the_mean_averages_the_whole_window() {
        let mut window = StabilityWindow::new();
        for i in 0..WINDOW_LEN as i32 {
            window.push(-45 + 5 * i);
        }
        // -45, -40, ..., 50: spread 95 fits ±50.
        assert_eq!(window.still_mean(50.0), Some(2.5));
        assert_eq!(window.still_mean(40.0), None);
    }

    #[test]
    fn clearing_requires_a_new_full_window() {
        let mut window = StabilityWindow::new();
        for _ in 0..WINDOW_LEN {
            window.push(7);
        }
        window.clear();
        window.push(7);
        assert_eq!(window.still_mean(50.0), None);
    }
}
