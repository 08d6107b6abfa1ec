//! Spike rejection: the median of the last three conversions.
//!
//! A single disturbed conversion (a static discharge, a glitch on the supply) would otherwise
//! widen the stability window's spread and delay the measurement, or shift its mean. The median
//! of three ignores one outlier at the cost of one conversion of delay; averaging is left to the
//! stability window, which only has to cope with noise.

/// The median of the last three raw conversions.
#[derive(Debug, Clone, Default)]
pub struct SpikeFilter {
    last: [i32; 3],
    /// How many of `last` hold conversions (0 to 3).
    filled: u8,
}

impl SpikeFilter {
    /// An empty filter.
    pub const fn new() -> Self {
        Self {
            last: [0; 3],
            filled: 0,
        }
    }

    /// Takes a conversion and returns the filtered value. Until three have arrived, the newest
    /// passes through unchanged.
    pub fn push(&mut self, counts: i32) -> i32 {
        let [_, b, c] = self.last;
        self.last = [b, c, counts];
        self.filled = (self.filled + 1).min(3);
        if self.filled < 3 {
            return counts;
        }
        median_of_three(b, c, counts)
    }

    /// Forgets the history, after the platform changed in a way the filter must not smear.
    pub fn clear(&mut self) {
        self.filled = 0;
    }
}

fn median_of_three(a: i32, b: i32, c: i32) -> i32 {
    a.max(b).min(a.min(b).max(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_spike_is_removed() {
        let mut filter = SpikeFilter::new();
        let out: [i32; 5] = [100, 101, 9_000, 102, 103].map(|x| filter.push(x));
        assert_eq!(out, [100, 101, 101, 102, 103]);
    }

    #[test]
    fn median_of_three_picks_the_middle_in_every_order() {
        for (a, b, c) in [
            (1, 2, 3),
            (1, 3, 2),
            (2, 1, 3),
            (2, 3, 1),
            (3, 1, 2),
            (3, 2, 1),
        ] {
            assert_eq!(median_of_three(a, b, c), 2);
        }
        assert_eq!(median_of_three(5, 5, -1), 5);
    }

    #[test]
    fn a_step_passes_with_one_conversion_of_delay() {
        let mut filter = SpikeFilter::new();
        let out: [i32; 6] = [0, 0, 0, 50, 50, 50].map(|x| filter.push(x));
        assert_eq!(out, [0, 0, 0, 0, 50, 50]);
    }
}
