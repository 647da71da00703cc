//! Service patterns the seed systems rely on, built once and shared by every scenario:
//! retries with exponential backoff and jitter, a circuit breaker, a token-bucket rate
//! limiter, and a load balancer that skips dead instances.

pub mod breaker;
pub mod lb;
pub mod rate_limit;
pub mod retry;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use lb::LoadBalancer;
pub use rate_limit::{RateLimiter, TokenBucketConfig};
pub use retry::{retry, Backoff};
