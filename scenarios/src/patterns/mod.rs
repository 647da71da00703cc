//! Service patterns the seed systems rely on, built once and shared by every scenario:
//! retries with exponential backoff and jitter, a circuit breaker, a token-bucket rate
//! limiter, a load balancer that skips dead instances, and a bulkhead that bounds how
//! many callers share a resource and how long the others wait.

pub mod breaker;
pub mod bulkhead;
pub mod lb;
pub mod rate_limit;
pub mod retry;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use bulkhead::{Bulkhead, BulkheadFull};
pub use lb::LoadBalancer;
pub use rate_limit::{RateLimiter, TokenBucketConfig};
pub use retry::{retry, Backoff};
