//! A versioned wake-up: tasks that wait for "something changed" (long-polling fetches,
//! `acks=all` requests waiting for the high watermark, a controller holding a heartbeat
//! until metadata changes) remember the version they saw and sleep until it moves.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Inner {
    version: u64,
    wakers: Vec<Waker>,
}

/// A version counter whose changes wake waiters. Wakers are woken in registration order,
/// so the wake-up order is a function of the run, not of memory addresses.
#[derive(Default)]
pub(crate) struct Signal {
    inner: RefCell<Inner>,
}

impl Signal {
    pub fn version(&self) -> u64 {
        self.inner.borrow().version
    }

    /// Bumps the version and wakes every waiter.
    pub fn notify(&self) {
        let wakers = {
            let mut i = self.inner.borrow_mut();
            i.version += 1;
            std::mem::take(&mut i.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Resolves once the version is past `seen`.
    pub fn changed(&self, seen: u64) -> Changed<'_> {
        Changed { signal: self, seen }
    }
}

/// The future of [`Signal::changed`].
pub(crate) struct Changed<'a> {
    signal: &'a Signal,
    seen: u64,
}

impl Future for Changed<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut i = self.signal.inner.borrow_mut();
        if i.version > self.seen {
            return Poll::Ready(());
        }
        if !i.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            i.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
