//! Congestion control for the calls to one service: how many may be in flight adapts to the service's answers,
//! as TCP's window does. While calls succeed and the limit is what holds them back, it grows (doubling per round
//! until the first throttle, then by one per round); on throttling it halves, once per round of calls (the
//! throttles of calls sent before the cut are the same congestion, not new evidence). A fixed number is wrong
//! both ways: too few for a quiet account, too many for one that is already throttled.

use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Where a service's window starts: what the engine used as a fixed number before.
pub const START: usize = 16;
/// The most calls to one service in flight, however quiet it is.
pub const MAX: usize = 256;

/// One service's window.
#[derive(Debug)]
pub struct Adaptive {
    inner: Mutex<Inner>,
    freed: Notify,
    max: f64,
}

#[derive(Debug)]
struct Inner {
    limit: f64,
    in_flight: usize,
    slow_start: bool,
    /// Bumped by every cut: a throttle from a call sent before it does not cut again.
    epoch: u64,
    stats: Snapshot,
}

/// What a window did, for benchmarks and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub limit: usize,
    pub lowest_limit: usize,
    pub highest_limit: usize,
    pub peak_in_flight: usize,
    pub successes: u64,
    pub throttles: u64,
    pub cuts: u64,
}

impl Adaptive {
    pub fn new(start: usize, max: usize) -> Arc<Self> {
        let start = start.clamp(1, max.max(1));
        Arc::new(Self {
            inner: Mutex::new(Inner {
                limit: start as f64,
                in_flight: 0,
                slow_start: true,
                epoch: 0,
                stats: Snapshot { limit: start, lowest_limit: start, highest_limit: start, ..Snapshot::default() },
            }),
            freed: Notify::new(),
            max: max.max(1) as f64,
        })
    }

    /// Waits for room in the window. The permit gives it back when dropped; say how the call went first
    /// ([`Permit::succeeded`], [`Permit::throttled`]) so the window learns from it.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a release between the look and the wait is not missed.
            freed.as_mut().enable();
            if let Ok(mut i) = self.inner.lock() {
                if (i.in_flight as f64) < i.limit.floor().max(1.0) {
                    i.in_flight += 1;
                    i.stats.peak_in_flight = i.stats.peak_in_flight.max(i.in_flight);
                    return Permit { window: self.clone(), epoch: i.epoch, released: false };
                }
            } else {
                // A poisoned window limits nothing rather than stopping every call.
                return Permit { window: self.clone(), epoch: 0, released: true };
            }
            freed.await;
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.inner.lock().map(|i| Snapshot { limit: i.limit.floor() as usize, ..i.stats }).unwrap_or_default()
    }

    fn release(&self, epoch: u64, verdict: Option<bool>) {
        if let Ok(mut i) = self.inner.lock() {
            // Only a window that held calls back has shown it is too small.
            let binding = (i.in_flight as f64) >= i.limit.floor();
            i.in_flight = i.in_flight.saturating_sub(1);
            match verdict {
                Some(true) => {
                    i.stats.throttles += 1;
                    if epoch == i.epoch {
                        i.limit = (i.limit / 2.0).max(1.0);
                        i.slow_start = false;
                        i.epoch += 1;
                        i.stats.cuts += 1;
                    }
                }
                Some(false) => {
                    i.stats.successes += 1;
                    if binding {
                        let step = if i.slow_start { 1.0 } else { 1.0 / i.limit };
                        i.limit = (i.limit + step).min(self.max);
                    }
                }
                None => {}
            }
            let limit = i.limit.floor() as usize;
            i.stats.lowest_limit = i.stats.lowest_limit.min(limit);
            i.stats.highest_limit = i.stats.highest_limit.max(limit);
        }
        self.freed.notify_waiters();
    }
}

/// A place in a window, held while the call is in flight.
#[derive(Debug)]
pub struct Permit {
    window: Arc<Adaptive>,
    epoch: u64,
    released: bool,
}

impl Permit {
    /// The service answered (anything but a throttle: an answer means it had room for the call).
    pub fn succeeded(mut self) {
        self.released = true;
        self.window.release(self.epoch, Some(false));
    }
    /// The service said to slow down.
    pub fn throttled(mut self) {
        self.released = true;
        self.window.release(self.epoch, Some(true));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        // No answer (a dropped connection, a cancelled call): room given back, nothing learned.
        if !self.released {
            self.window.release(self.epoch, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Sends `calls` calls through `window` with as much demand as it allows; a call is throttled when more
    /// than `capacity` are in flight at once (as a service's rate limit answers).
    async fn drive(window: &Arc<Adaptive>, calls: usize, capacity: usize) -> usize {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let throttled = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..calls)
            .map(|_| {
                let (window, in_flight, throttled) = (window.clone(), in_flight.clone(), throttled.clone());
                tokio::spawn(async move {
                    let permit = window.acquire().await;
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    if now > capacity {
                        throttled.fetch_add(1, Ordering::SeqCst);
                        permit.throttled();
                    } else {
                        permit.succeeded();
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        throttled.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn the_window_grows_while_calls_succeed_and_it_holds_them_back() {
        let window = Adaptive::new(4, 64);
        drive(&window, 2000, usize::MAX).await;
        let s = window.snapshot();
        assert_eq!(s.throttles, 0);
        assert_eq!(s.limit, 64, "{s:?}");
        assert_eq!(s.peak_in_flight, 64, "{s:?}");
    }

    #[tokio::test]
    async fn the_window_does_not_grow_when_it_is_not_what_holds_calls_back() {
        let window = Adaptive::new(4, 64);
        // One call at a time: the window of 4 never binds, so nothing shows it is too small.
        for _ in 0..200 {
            window.acquire().await.succeeded();
        }
        assert_eq!(window.snapshot().limit, 4);
    }

    #[tokio::test]
    async fn throttling_halves_the_window_once_per_round_and_it_settles_near_capacity() {
        let window = Adaptive::new(64, 256);
        let throttled = drive(&window, 3000, 10).await;
        let s = window.snapshot();
        assert!(s.cuts >= 1 && s.throttles as usize == throttled, "{s:?}");
        // 64 in flight against room for 10: cut to 32, 16, 8 (one cut per round, not one per throttle).
        assert!(s.cuts < s.throttles, "every throttle cut the window: {s:?}");
        assert!(s.lowest_limit <= 10, "{s:?}");
        assert!(s.limit <= 2 * 10 && s.limit >= 10 / 2, "settles around the service's room: {s:?}");
        // Most calls went through once the window learned: the throttled share is small.
        assert!(throttled * 10 < 3000, "{throttled} of 3000 throttled: {s:?}");
    }

    #[tokio::test]
    async fn a_dropped_permit_gives_its_place_back_and_teaches_nothing() {
        let window = Adaptive::new(1, 8);
        drop(window.acquire().await);
        let p = tokio::time::timeout(Duration::from_secs(5), window.acquire()).await;
        assert!(p.is_ok(), "the place was not given back");
        let s = window.snapshot();
        assert_eq!((s.successes, s.throttles, s.limit), (0, 0, 1));
    }
}
