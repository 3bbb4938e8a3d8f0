//! The one retry policy: jittered exponential backoff that honours Retry-After,
//! `max(retry_after, min(base * 2^n + jitter, max))`, re-signing every attempt.

use std::time::Duration;

use rand::Rng;

/// How often and how patiently to retry retryable errors.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt.
    pub base: Duration,
    /// Upper bound of one backoff.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Delay after failed attempt number `attempt` (0-based), given a server Retry-After.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(20));
        let jitter_cap = exp.as_millis().max(1) as u64 / 2 + 1;
        let jitter = Duration::from_millis(rand::rng().random_range(0..jitter_cap));
        let backoff = (exp + jitter).min(self.max);
        retry_after.map_or(backoff, |ra| ra.max(backoff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_honours_retry_after() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let d0 = p.delay(0, None);
        assert!(
            d0 >= Duration::from_millis(100) && d0 <= Duration::from_millis(151),
            "{d0:?}"
        );
        let d2 = p.delay(2, None);
        assert!(d2 >= Duration::from_millis(400), "{d2:?}");
        assert_eq!(p.delay(10, None), Duration::from_secs(1));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }
}
