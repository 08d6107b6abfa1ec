//! Sorting for the cuff's short arrays. core's `sort_unstable` costs 2 to 4 KiB of flash per
//! element type on Cortex-M; these arrays hold at most a cycle's beats (128) and are sorted once
//! per measurement, where an insertion sort is fast enough and takes a hundred bytes.

/// Sorts `items` in place by `less`, stably.
pub(crate) fn insertion_sort_by<T>(items: &mut [T], mut less: impl FnMut(&T, &T) -> bool) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 {
            match (items.get(j - 1), items.get(j)) {
                (Some(before), Some(this)) if less(this, before) => items.swap(j - 1, j),
                _ => break,
            }
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::insertion_sort_by;

    #[test]
    fn sorts_like_the_standard_sort() {
        let mut a = [5u16, 1, 4, 1, 9, 0, 65535, 3];
        let mut b = a;
        insertion_sort_by(&mut a, |x, y| x < y);
        b.sort_unstable();
        assert_eq!(a, b);
        let mut f = [2.5f32, -1.0, 0.0, 7.25];
        insertion_sort_by(&mut f, |x, y| x.total_cmp(y).is_lt());
        assert_eq!(f, [-1.0, 0.0, 2.5, 7.25]);
        let mut empty: [u16; 0] = [];
        insertion_sort_by(&mut empty, |x, y| x < y);
    }
}
