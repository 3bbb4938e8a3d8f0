//! Client-side token bucket per endpoint family, so a client (or many tasks sharing one)
//! approaches the API's per-endpoint limit without hitting it. Callers reserve a slot and
//! sleep outside the lock; concurrent callers queue in arrival order.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A rate limit shared by several processes (the jobs backend implements it), consulted
/// after the client's own bucket: workers on different machines then split one budget
/// per endpoint family instead of each spending the whole of it.
#[async_trait::async_trait]
pub trait SharedLimiter: Send + Sync {
    /// Reserves a slot for `family` and returns how long to wait before sending.
    async fn reserve(&self, family: &str) -> Duration;
}

/// Token buckets keyed by endpoint family.
#[derive(Debug)]
pub struct RateLimiter {
    rps: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    waited_ns: AtomicU64,
}

impl RateLimiter {
    /// `rps` per family (0 = unlimited), with a burst of `burst` requests.
    pub fn new(rps: f64, burst: f64) -> Self {
        RateLimiter {
            rps,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
            waited_ns: AtomicU64::new(0),
        }
    }

    /// How long the caller must wait before sending; the slot is reserved.
    pub fn reserve(&self, family: &str) -> Duration {
        if self.rps <= 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = b.entry(family.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rps).min(self.burst);
        *last = now;
        *tokens -= 1.0;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-*tokens / self.rps)
        }
    }

    /// Waits for a slot.
    pub async fn acquire(&self, family: &str) {
        let wait = self.reserve(family);
        if !wait.is_zero() {
            self.waited_ns
                .fetch_add(wait.as_nanos() as u64, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    /// Counts time a caller spent waiting elsewhere (a [`SharedLimiter`]).
    pub fn add_waited(&self, d: Duration) {
        self.waited_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Total time callers spent waiting.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_ns.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_requests_after_the_burst() {
        let l = RateLimiter::new(10.0, 2.0);
        assert_eq!(l.reserve("a"), Duration::ZERO);
        assert_eq!(l.reserve("a"), Duration::ZERO);
        let w3 = l.reserve("a");
        let w4 = l.reserve("a");
        assert!(
            w3 > Duration::from_millis(80) && w3 <= Duration::from_millis(100),
            "{w3:?}"
        );
        assert!(
            w4 > Duration::from_millis(180) && w4 <= Duration::from_millis(200),
            "{w4:?}"
        );
        assert_eq!(l.reserve("b"), Duration::ZERO, "families are independent");
        assert_eq!(RateLimiter::new(0.0, 1.0).reserve("a"), Duration::ZERO);
    }
}
