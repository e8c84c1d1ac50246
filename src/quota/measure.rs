//! The quota arithmetic: how much of an allotment a customer used in a billing period so far,
//! and what it will have used at the period's end at the same pace. Volume: bytes as the
//! measure says; the estimate is vnStat's (use so far ÷ time elapsed × period length). 95th
//! percentile: 5-minute rates (bytes × 8 ÷ 300), the top 5 % of the period's samples discarded,
//! the larger of in and out (each direction's percentile, then the larger). Pure functions.

use super::period::BillingPeriod;
use crate::config::{Allotment, Measure};
use crate::store::quota::Bucket;

/// The colo billing convention's sample length.
pub const P95_BUCKET_S: u32 = 300;

/// What a customer used, in the allotment's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Measured {
    /// Bytes (volume) or bits per second (95th percentile).
    pub used: u64,
    /// The projection at the end of the period.
    pub estimate: u64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    /// Bytes as the allotment counts them (volume), or sent + received (95th percentile).
    pub used_bytes: u64,
}

/// The unit of an allotment's numbers.
pub fn unit(a: &Allotment) -> &'static str {
    match a {
        Allotment::Volume { .. } => "bytes",
        Allotment::P95 { .. } => "bit/s",
    }
}

/// The allotment's amount, in its unit.
pub fn amount(a: &Allotment) -> u64 {
    match *a {
        Allotment::Volume { bytes, .. } => bytes,
        Allotment::P95 { bits_per_s } => bits_per_s,
    }
}

/// The length of a rate sample for the 95th percentile: five minutes, or the accounting
/// interval when five minutes are not a whole number of intervals.
pub fn p95_bucket(interval_s: u32) -> u32 {
    if interval_s > 0 && P95_BUCKET_S % interval_s == 0 {
        P95_BUCKET_S
    } else {
        interval_s.max(1)
    }
}

/// Measures `buckets` (traffic in the period up to `at`, from the store) against `allotment`.
pub fn measure(
    allotment: &Allotment,
    buckets: &[Bucket],
    period: BillingPeriod,
    at: i64,
    bucket_s: u32,
) -> Measured {
    let now = at.clamp(period.start, period.end);
    let inside = || {
        buckets
            .iter()
            .filter(move |b| b.start >= period.start && b.start < now)
    };
    let tx: u64 = inside().fold(0u64, |a, b| a.saturating_add(b.tx_bytes));
    let rx: u64 = inside().fold(0u64, |a, b| a.saturating_add(b.rx_bytes));
    match *allotment {
        Allotment::Volume { measure, .. } => {
            let used = match measure {
                Measure::Total => tx.saturating_add(rx),
                Measure::Tx => tx,
                Measure::Rx => rx,
                Measure::Max => tx.max(rx),
            };
            Measured {
                used,
                estimate: estimate(used, now - period.start, period.seconds()),
                tx_bytes: tx,
                rx_bytes: rx,
                used_bytes: used,
            }
        }
        Allotment::P95 { .. } => {
            let step = i64::from(bucket_s.max(1));
            let total = (period.seconds() + step - 1) / step;
            let elapsed = (now - period.start + step - 1) / step;
            let rates = |dir: fn(&Bucket) -> u64| -> Vec<u64> {
                inside()
                    .map(|b| dir(b).saturating_mul(8) / step as u64)
                    .collect()
            };
            let (mut out, mut inn) = (rates(|b| b.tx_bytes), rates(|b| b.rx_bytes));
            Measured {
                used: billable_so_far(&mut out, total as usize)
                    .max(billable_so_far(&mut inn, total as usize)),
                estimate: billable_so_far(&mut out, elapsed as usize)
                    .max(billable_so_far(&mut inn, elapsed as usize)),
                tx_bytes: tx,
                rx_bytes: rx,
                used_bytes: tx.saturating_add(rx),
            }
        }
    }
}

/// vnStat's projection: the use so far at the same pace over the whole period.
pub fn estimate(used: u64, elapsed_s: i64, period_s: i64) -> u64 {
    if elapsed_s <= 0 || period_s <= elapsed_s {
        return used;
    }
    let e = u128::from(used) * period_s as u128 / elapsed_s as u128;
    u64::try_from(e).unwrap_or(u64::MAX)
}

/// The 95th percentile of a complete set of samples: the largest value once the top 5 %
/// (rounded down: none below 20 samples) is discarded. 0 for no samples.
pub fn p95(samples: &mut [u64]) -> u64 {
    let n = samples.len();
    billable_so_far(samples, n)
}

/// The 95th percentile of a set of `samples_in_set` samples of which `observed` are known and
/// the others are zero: the (⌊n/20⌋+1)-th largest observed value, or 0. With the whole period
/// as the set, it is what the customer would be billed if its traffic stopped now, and it can
/// only grow as the period goes on.
pub fn billable_so_far(observed: &mut [u64], samples_in_set: usize) -> u64 {
    let discard = samples_in_set / 20;
    observed.sort_unstable_by(|a, b| b.cmp(a));
    observed.get(discard).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn bucket(start: i64, tx: u64, rx: u64) -> Bucket {
        Bucket {
            start,
            tx_bytes: tx,
            rx_bytes: rx,
        }
    }

    #[test]
    fn the_95th_percentile_of_known_sets() {
        // 100 samples 1..=100: the top 5 (96..=100) go, 95 is billed.
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(p95(&mut v), 95);
        // 20 samples: one is discarded.
        let mut v: Vec<u64> = (1..=20).collect();
        assert_eq!(p95(&mut v), 19);
        // Fewer than 20 samples: nothing is discarded, the maximum is billed.
        let mut v = vec![3, 9, 1];
        assert_eq!(p95(&mut v), 9);
        let mut v: Vec<u64> = (1..=19).collect();
        assert_eq!(p95(&mut v), 19);
        let mut v = vec![];
        assert_eq!(p95(&mut v), 0);
        // 39 samples: still one discarded; 40: two.
        let mut v: Vec<u64> = (1..=39).collect();
        assert_eq!(p95(&mut v), 38);
        let mut v: Vec<u64> = (1..=40).collect();
        assert_eq!(p95(&mut v), 38);
        // A 30-day month: 8640 samples, 432 discarded; one burst of 432 samples is free.
        let mut v = vec![1_000_000u64; 432];
        v.extend(std::iter::repeat_n(1000, 8640 - 432));
        assert_eq!(p95(&mut v), 1000);
        v.push(1_000_000);
        assert_eq!(p95(&mut v), 1_000_000);
    }

    #[test]
    fn the_billable_rate_so_far_only_grows() {
        // 3 busy samples out of a 100-sample set: 5 may be discarded, so nothing is billed yet.
        let mut v = vec![800, 900, 1000];
        assert_eq!(billable_so_far(&mut v, 100), 0);
        // Six busy samples: the sixth largest is billed.
        let mut v = vec![100, 800, 900, 1000, 700, 600];
        assert_eq!(billable_so_far(&mut v, 100), 100);
        // Judged on the 6 samples alone (the estimate), nothing is discarded.
        assert_eq!(billable_so_far(&mut v, 6), 1000);
    }

    #[test]
    fn volume_measures_and_the_estimate() {
        let period = BillingPeriod {
            start: 0,
            end: 30 * DAY,
        };
        let buckets = [
            bucket(0, 100, 300),
            bucket(60, 50, 10),
            bucket(30 * DAY, 9999, 9999),
        ];
        let vol = |measure| Allotment::Volume {
            bytes: 1000,
            measure,
        };
        let at = 3 * DAY;
        let m = measure(&vol(Measure::Total), &buckets, period, at, 300);
        assert_eq!((m.used, m.tx_bytes, m.rx_bytes), (460, 150, 310));
        // 3 days of 30: ten times as much by the end.
        assert_eq!(m.estimate, 4600);
        assert_eq!(
            measure(&vol(Measure::Tx), &buckets, period, at, 300).used,
            150
        );
        assert_eq!(
            measure(&vol(Measure::Rx), &buckets, period, at, 300).used,
            310
        );
        assert_eq!(
            measure(&vol(Measure::Max), &buckets, period, at, 300).used,
            310
        );
        // Only what happened before `at` counts.
        assert_eq!(
            measure(&vol(Measure::Total), &buckets, period, 60, 300).used,
            400
        );
        // At the end of the period the estimate is the use.
        let m = measure(&vol(Measure::Total), &buckets, period, 30 * DAY, 300);
        assert_eq!(m.estimate, m.used);
        assert_eq!(estimate(10, 0, 100), 10);
        assert_eq!(estimate(u64::MAX, 1, 100), u64::MAX);
    }

    #[test]
    fn p95_allotments_bill_the_larger_direction() {
        // A 1-day period of 288 five-minute samples: 14 may be discarded.
        let period = BillingPeriod { start: 0, end: DAY };
        let p = Allotment::P95 {
            bits_per_s: 1_000_000,
        };
        // 20 samples sending 37,500,000 bytes (1 Mbit/s) and receiving 3,750,000 (100 kbit/s),
        // then the day runs to its end.
        let buckets: Vec<Bucket> = (0..20)
            .map(|i| bucket(i * 300, 37_500_000, 3_750_000))
            .collect();
        let m = measure(&p, &buckets, period, DAY, 300);
        assert_eq!(m.used, 1_000_000);
        assert_eq!(m.used_bytes, 20 * 41_250_000);
        // Receiving more than sending: inbound is billed.
        let buckets: Vec<Bucket> = (0..20).map(|i| bucket(i * 300, 0, 7_500_000)).collect();
        assert_eq!(measure(&p, &buckets, period, DAY, 300).used, 200_000);
        // Only 10 busy samples in the day: all inside the discarded 14.
        let buckets: Vec<Bucket> = (0..10).map(|i| bucket(i * 300, 37_500_000, 0)).collect();
        assert_eq!(measure(&p, &buckets, period, DAY, 300).used, 0);
        // ... but an hour into the day they are the pace, and the estimate says so.
        let m = measure(&p, &buckets, period, 3000, 300);
        assert_eq!((m.used, m.estimate), (0, 1_000_000));
        assert_eq!(p95_bucket(60), 300);
        assert_eq!(p95_bucket(10), 300);
        assert_eq!(p95_bucket(120), 120);
        assert_eq!(p95_bucket(3600), 3600);
    }
}
