//! Limits that keep one query from taking the server down: a per-query timeout, a memory
//! budget per query inside one budget for the whole server, and a cap on queries running
//! at once. Exceeding any of them fails that query with a clear message; the server and
//! the other queries carry on.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ServeError;

/// The serving limits (`[serve]` keys in parentheses).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall time from planning to the last batch (`query_timeout`).
    pub query_timeout: Duration,
    /// Queries planning or streaming at once (`max_concurrent_queries`).
    pub max_concurrent: usize,
    /// Memory one query may hold for sorts, joins and aggregations (`query_memory`).
    pub query_memory: usize,
    /// Memory all queries together may hold (`server_memory`).
    pub server_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            query_timeout: Duration::from_secs(60),
            max_concurrent: 8,
            query_memory: 1 << 30,
            server_memory: 4 << 30,
        }
    }
}

/// Parses `"512MiB"`, `"2GiB"`, `"64MB"`, `"1048576"` into bytes.
pub fn parse_bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * mult;
    (bytes.is_finite() && bytes >= 1.0).then_some(bytes as usize)
}

/// Human form of a byte count for messages.
pub fn show_bytes(n: usize) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n as f64 >= 1024.0 * MIB {
        format!("{:.1} GiB", n as f64 / (1024.0 * MIB))
    } else {
        format!("{:.1} MiB", n as f64 / MIB)
    }
}

/// The server's memory budget, shared by every query.
#[derive(Debug, Clone)]
pub struct ServerPool(Arc<GreedyMemoryPool>);

impl ServerPool {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> ServerPool {
        ServerPool(Arc::new(GreedyMemoryPool::new(bytes)))
    }

    /// Bytes reserved by all running queries.
    pub fn reserved(&self) -> usize {
        self.0.reserved()
    }
}

/// One query's memory pool: its own budget, drawn from the server's.
#[derive(Debug)]
pub struct QueryPool {
    server: ServerPool,
    limit: usize,
    used: AtomicUsize,
}

impl QueryPool {
    /// A pool of `limit` bytes inside `server`.
    pub fn new(server: ServerPool, limit: usize) -> QueryPool {
        QueryPool {
            server,
            limit,
            used: AtomicUsize::new(0),
        }
    }
}

impl fmt::Display for QueryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QueryPool({} of {})",
            self.used.load(Ordering::Relaxed),
            self.limit
        )
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "shoplake-query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.server.0.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.server.0.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.server.0.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::Relaxed);
        self.server.0.shrink(reservation, shrink)
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let next = cur + additional;
            if next > self.limit {
                return Err(DataFusionError::ResourcesExhausted(format!(
                    "query needs more than its memory limit of {} (serve.query_memory); \
                     aggregate or filter more, or raise the limit",
                    show_bytes(self.limit)
                )));
            }
            match self
                .used
                .compare_exchange(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        if self.server.0.try_grow(reservation, additional).is_err() {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the server's memory for queries ({}, serve.server_memory) is in use by \
                 other queries; try again shortly",
                show_bytes(self.server.0.memory_limit_bytes())
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

trait LimitBytes {
    fn memory_limit_bytes(&self) -> usize;
}

impl LimitBytes for GreedyMemoryPool {
    fn memory_limit_bytes(&self) -> usize {
        match self.memory_limit() {
            MemoryLimit::Finite(n) => n,
            _ => usize::MAX,
        }
    }
}

/// Admission: at most `max_concurrent` queries hold a permit.
#[derive(Debug, Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Admission {
    /// Room for `max` queries at once.
    pub fn new(max: usize) -> Admission {
        Admission {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A permit, or a clear refusal when every slot is taken (no queueing: a BI tool
    /// retries, and a queue behind a slow query would only hide the overload).
    pub fn enter(&self) -> Result<OwnedSemaphorePermit, ServeError> {
        self.permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServeError::Busy(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("2 GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("64MB"), Some(64_000_000));
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("5 parsecs"), None);
    }

    #[test]
    fn query_budget_inside_server_budget() {
        let server = ServerPool::new(1000);
        let a: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(server.clone(), 600));
        let b: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(server.clone(), 600));
        let ra = MemoryConsumer::new("a").register(&a);
        let rb = MemoryConsumer::new("b").register(&b);
        ra.try_grow(500).unwrap();
        // Over the query's own limit.
        let e = ra.try_grow(200).unwrap_err().to_string();
        assert!(e.contains("serve.query_memory"), "{e}");
        // Within b's limit but over what the server has left.
        let e = rb.try_grow(600).unwrap_err().to_string();
        assert!(e.contains("serve.server_memory"), "{e}");
        assert_eq!(server.reserved(), 500);
        rb.try_grow(400).unwrap();
        drop(ra);
        assert_eq!(server.reserved(), 400);
        rb.try_grow(200).unwrap();
        assert_eq!(b.reserved(), 600);
    }

    #[test]
    fn admission_refuses_beyond_the_cap() {
        let a = Admission::new(1);
        let p = a.enter().unwrap();
        let e = a.enter().unwrap_err();
        assert!(matches!(e, ServeError::Busy(1)), "{e}");
        assert!(e.to_string().contains("max_concurrent_queries"), "{e}");
        drop(p);
        assert!(a.enter().is_ok());
    }
}
