//! A tiny deterministic PRNG (SplitMix64): the same seed gives the same data on every
//! platform and every version of shoplake's dependencies.

/// SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`, decorrelated per `stream` so sub-generators don't overlap.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next_u64();
        r
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform integer in `[lo, hi)`; `lo` when the range is empty.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// Index drawn from a cumulative weight table (last element = total).
    pub fn pick_cumulative(&mut self, cumulative: &[f64]) -> usize {
        let total = *cumulative.last().unwrap_or(&0.0);
        let x = self.f64() * total;
        cumulative
            .partition_point(|&c| c <= x)
            .min(cumulative.len().saturating_sub(1))
    }
}

/// Turns weights into the cumulative table [`Rng::pick_cumulative`] takes.
pub fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .into_iter()
        .map(|w| {
            acc += w;
            acc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_bounded() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(42, 1);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(42, 1);
        assert_eq!(a, (0..5).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert_ne!(Rng::new(42, 1).next_u64(), Rng::new(42, 2).next_u64());
        let cum = cumulative([1.0, 0.0, 3.0]);
        let mut r = Rng::new(7, 0);
        let mut hits = [0; 3];
        for _ in 0..4000 {
            hits[r.pick_cumulative(&cum)] += 1;
            let v = r.range(3, 9);
            assert!((3..9).contains(&v));
        }
        assert_eq!(hits[1], 0);
        assert!(hits[2] > hits[0] * 2, "{hits:?}");
    }
}
