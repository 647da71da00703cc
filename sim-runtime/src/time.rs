//! Virtual time: an `Instant` that only the executor advances, and the futures that wait
//! on it (`sleep`, `sleep_until`, `timeout`, `interval`).
//!
//! Durations are plain `std::time::Duration`: a length of time is not a clock reading, so
//! it is safe to share with the standard library.

use std::fmt;
use std::future::Future;
use std::ops::{Add, AddAssign, Sub};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
pub use std::time::Duration;

use crate::node::NodeId;
use crate::timers::TimerKey;
use crate::world;

/// A point in virtual time, in nanoseconds since the simulation started.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Instant(u64);

/// Seconds since the start with every nanosecond (`Instant(1.500000001s)`), not the raw
/// count of nanoseconds, which nobody reads at a glance.
impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Instant({}.{:09}s)",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

impl Instant {
    /// The moment the simulation starts.
    pub const START: Instant = Instant(0);

    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time since the simulation started.
    pub fn elapsed_since_start(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self - earlier`, saturating at zero.
    pub fn duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        // In u64 rather than through `Duration::as_nanos`'s u128: this is on the path of
        // every `sleep`.
        d.as_secs()
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(u64::from(d.subsec_nanos())))
            .and_then(|n| self.0.checked_add(n))
            .map(Instant)
    }

    #[inline]
    pub fn saturating_add(self, d: Duration) -> Instant {
        let n = d
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()));
        Instant(self.0.saturating_add(n))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    #[inline]
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_sub(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.duration_since(earlier)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 / 1_000_000;
        let us = (self.0 / 1_000) % 1_000;
        write!(f, "{}.{:03}{:03}s", ms / 1000, ms % 1000, us)
    }
}

/// The current virtual time as the calling node's clock reads it (skew and drift
/// applied). Outside a node, or without skew, this is the simulation's true time.
pub fn now() -> Instant {
    world::with(|w| w.local_now())
}

/// The simulation's true time, which no node can read directly in real life but
/// checkers and traces use.
pub fn now_global() -> Instant {
    world::with(|w| w.now)
}

/// Waits for `duration` of the calling node's clock.
#[inline]
pub fn sleep(duration: Duration) -> Sleep {
    Sleep::new(world::sleep_deadline(duration))
}

/// Waits until the calling node's clock reads `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    let global = world::with(|w| w.local_to_global(deadline));
    Sleep::new(global)
}

/// A timer future. Dropping it cancels the timer.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    timer: Option<TimerKey>,
}

impl Sleep {
    #[inline]
    fn new(deadline: Instant) -> Self {
        Sleep {
            deadline,
            timer: None,
        }
    }

    /// The true (global) time at which this sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (used by `interval`), keeping the registration.
    pub fn reset(&mut self, deadline: Instant) {
        if let Some(key) = self.timer.take() {
            let deadline = self.deadline;
            world::try_with(|w| w.cancel_timer(deadline, key));
        }
        self.deadline = world::with(|w| w.local_to_global(deadline));
    }
}

impl Sleep {
    /// The first poll (not registered yet): the borrow that registers the timer reads
    /// the clock as well.
    fn register(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        world::with(|w| {
            if self.deadline <= w.now {
                return Poll::Ready(());
            }
            self.timer = Some(w.add_timer(self.deadline, cx.waker().clone()));
            Poll::Pending
        })
    }

    /// A poll before the deadline of a registered sleep: the poller may be another task.
    fn update_waker(&self, key: TimerKey, cx: &mut Context<'_>) {
        world::with(|w| w.update_timer_waker(self.deadline, key, cx.waker()));
    }

    fn cancel(&mut self, key: TimerKey) {
        // A timer that is due has fired already; otherwise cancel it (the world may
        // already be gone when a simulation is torn down).
        let deadline = self.deadline;
        if deadline > world::now_fast() {
            world::try_with(|w| w.cancel_timer(deadline, key));
        }
    }
}

impl Future for Sleep {
    type Output = ();
    // Inlined into the awaiting future: a sleep that is due completes in a few
    // instructions, and one that is not registers out of line.
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(key) = this.timer else {
            return this.register(cx);
        };
        if this.deadline <= world::now_fast() {
            // A registered timer has fired by now: its registration is already gone.
            this.timer = None;
            return Poll::Ready(());
        }
        this.update_waker(key, cx);
        Poll::Pending
    }
}

impl Drop for Sleep {
    #[inline]
    fn drop(&mut self) {
        if let Some(key) = self.timer.take() {
            self.cancel(key);
        }
    }
}

/// The error of a `timeout` whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

/// Runs `future` but gives up after `duration` of virtual time.
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

pin_project_lite::pin_project! {
    /// The future of [`timeout`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Ticks every `period`, starting one period from now. A tick that is late (the task was
/// busy or its node paused) is delivered at once, and the schedule keeps its phase.
pub fn interval(period: Duration) -> Interval {
    assert!(!period.is_zero(), "interval period must be non-zero");
    let start = now();
    Interval {
        period,
        next: start + period,
        sleep: None,
    }
}

/// The ticker of [`interval`].
pub struct Interval {
    period: Duration,
    next: Instant,
    sleep: Option<Sleep>,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled (local) time.
    pub async fn tick(&mut self) -> Instant {
        let at = self.next;
        let sleep = self.sleep.get_or_insert_with(|| sleep_until(at));
        sleep.await;
        self.sleep = None;
        let current = now();
        self.next = at + self.period;
        // Skip ticks that were missed entirely rather than firing a burst.
        while self.next <= current {
            self.next += self.period;
        }
        at
    }

    pub fn period(&self) -> Duration {
        self.period
    }
}

/// Waits until the simulation's true time reaches `deadline` (no clock skew applied).
pub fn sleep_until_global(deadline: Instant) -> Sleep {
    Sleep::new(deadline)
}

/// Wakes `waker` when the simulation's true time reaches `deadline`, or at once if it
/// has. This is a timer with no future: it cannot be cancelled, so a wake it brings may
/// find nothing to do, as any spurious wake may. It is for code that learns *now* when
/// another task will have work, such as a network that knows a message's arrival: the
/// receiver then sleeps until the arrival instead of being woken to set its own timer.
/// `node` is the node of the task that `waker` wakes; the trace's `timer.fire` names it.
pub fn wake_at_global(deadline: Instant, node: NodeId, waker: Waker) {
    if deadline <= world::now_fast() {
        waker.wake();
    } else {
        world::with(|w| w.add_wake_timer(deadline, waker, node));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_debugs_as_seconds_with_every_nanosecond() {
        assert_eq!(
            format!("{:?}", Instant::from_nanos(1_500_000_001)),
            "Instant(1.500000001s)"
        );
        assert_eq!(format!("{:?}", Instant::START), "Instant(0.000000000s)");
        assert_eq!(
            format!("{:?}", Some(Instant::from_nanos(42))),
            "Some(Instant(0.000000042s))"
        );
    }

    #[test]
    fn adding_a_duration_is_exact_until_it_overflows_u64_nanoseconds() {
        let t = Instant::from_nanos(5);
        let d = Duration::new(3, 7);
        assert_eq!((t + d).as_nanos(), 3_000_000_012);
        assert_eq!(t.checked_add(d), Some(Instant::from_nanos(3_000_000_012)));
        // The largest duration that fits, then one nanosecond more, then seconds that
        // overflow on their own.
        let max = Duration::from_nanos(u64::MAX - 5);
        assert_eq!(t.checked_add(max), Some(Instant::from_nanos(u64::MAX)));
        let over = max + Duration::from_nanos(1);
        assert_eq!(t.checked_add(over), None);
        assert_eq!((t + over).as_nanos(), u64::MAX);
        assert_eq!(Instant::START.checked_add(Duration::MAX), None);
        assert_eq!((Instant::START + Duration::MAX).as_nanos(), u64::MAX);
    }
}
