//! A load balancer that spreads requests round robin over instances and skips the ones
//! it knows are dead, as an L7 balancer with passive health checks does: an instance that
//! refuses a connection is marked down for a while and the request goes to the next one.

use std::cell::RefCell;
use std::rc::Rc;

use sim_net::{Addr, RpcError};
use sim_runtime::time::{now, Duration, Instant};

#[derive(Clone)]
pub struct LoadBalancer {
    inner: Rc<RefCell<Inner>>,
}

struct Inner {
    backends: Vec<Addr>,
    down_until: Vec<Instant>,
    next: usize,
    down_for: Duration,
}

impl LoadBalancer {
    pub fn new(backends: Vec<Addr>, down_for: Duration) -> Self {
        let n = backends.len();
        LoadBalancer {
            inner: Rc::new(RefCell::new(Inner {
                backends,
                down_until: vec![Instant::START; n],
                next: 0,
                down_for,
            })),
        }
    }

    fn pick(&self, exclude: &[usize]) -> Option<(usize, Addr)> {
        let mut i = self.inner.borrow_mut();
        let n = i.backends.len();
        let t = now();
        for k in 0..n {
            let idx = (i.next + k) % n;
            if i.down_until[idx] <= t && !exclude.contains(&idx) {
                i.next = (idx + 1) % n;
                return Some((idx, i.backends[idx]));
            }
        }
        None
    }

    fn mark_down(&self, idx: usize) {
        let mut i = self.inner.borrow_mut();
        let until = now() + i.down_for;
        i.down_until[idx] = until;
    }

    /// Forwards a request: tries healthy backends in turn, skipping those that refuse.
    /// Timeouts and resets are not retried (the request may have been processed).
    pub async fn call<Req: Clone + 'static, Resp: Clone + 'static>(
        &self,
        request: Req,
        timeout: Duration,
    ) -> Result<Resp, RpcError> {
        let mut tried = Vec::new();
        let mut last = RpcError::Refused;
        while let Some((idx, addr)) = self.pick(&tried) {
            match sim_net::call::<Req, Resp>(addr, request.clone(), timeout).await {
                Err(RpcError::Refused) | Err(RpcError::Unreachable) => {
                    self.mark_down(idx);
                    tried.push(idx);
                    last = RpcError::Refused;
                }
                other => return other,
            }
        }
        Err(last)
    }
}
