//! The statistics of the load reports: medians, quartiles, and a distribution-free confidence
//! interval for the median.

/// The first and third quartiles (nearest rank): where the middle half of the rounds fell.
pub(super) fn quartiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => (0.0, 0.0),
        n => (v[n / 4], v[(3 * n) / 4]),
    }
}

/// A distribution-free 95 % confidence interval for the median of `sorted` (ascending): the
/// order statistics `x(j)` and `x(n+1-j)` (1-based), with `j` the largest rank for which
/// `P(B ≤ j-1) ≤ 0.025`, `B ~ Binomial(n, 1/2)`. Below 6 values even the whole range, which is
/// what is given then, covers less than 95 %.
pub(super) fn median_ci(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    // P(B = i) in log space, so that large n does not underflow 2^-n.
    #[allow(clippy::cast_precision_loss, reason = "round counts are small")]
    let nf = n as f64;
    let mut log_p = -nf * std::f64::consts::LN_2;
    let mut cdf = 0.0;
    // j - 1: the number of values left below the interval.
    let mut below = 0;
    for i in 0..n {
        cdf += log_p.exp(); // P(B ≤ i)
        if cdf > 0.025 {
            break;
        }
        below = i;
        #[allow(clippy::cast_precision_loss, reason = "round counts are small")]
        let (k, left) = (i as f64, (n - i) as f64);
        log_p += left.ln() - (k + 1.0).ln();
    }
    (sorted[below], sorted[n - 1 - below])
}

pub(super) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(n: usize) -> Vec<f64> {
        #[allow(clippy::cast_precision_loss, reason = "small test sizes")]
        (1..=n).map(|r| r as f64).collect()
    }

    #[test]
    fn median_ci_takes_the_tabulated_ranks() {
        // Ranks of the 95 % interval for the median, from the binomial table: n = 21 → 6..16,
        // n = 31 → 10..22, n = 63 → 24..40.
        assert_eq!(median_ci(&ranks(21)), (6.0, 16.0));
        assert_eq!(median_ci(&ranks(31)), (10.0, 22.0));
        assert_eq!(median_ci(&ranks(63)), (24.0, 40.0));
    }

    #[test]
    fn median_ci_of_few_values_is_the_whole_range() {
        assert_eq!(median_ci(&ranks(5)), (1.0, 5.0));
        assert_eq!(median_ci(&ranks(1)), (1.0, 1.0));
        assert_eq!(median_ci(&[]), (0.0, 0.0));
    }

    #[test]
    fn median_ci_does_not_underflow_for_many_rounds() {
        let (lo, hi) = median_ci(&ranks(2000));
        assert!(
            lo > 900.0 && lo < 1000.0 && hi > 1000.0 && hi < 1100.0,
            "{lo}..{hi}"
        );
    }
}
