//! Reconnecting a client whose link dropped: exponential backoff with
//! jitter, on a thread of its own, until it succeeds or the client closes.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::target::Target;
use crate::error::Chain;
use crate::link::endpoint::{Endpoint, Takeover};

/// How a client with [`ClientBuilder::reconnect`](crate::ClientBuilder::reconnect)
/// paces its attempts. The first attempt comes at once when the link that
/// went down lasted at least `max`, when it was the link `connect()` made
/// (however short), and for a client started without a link
/// (`connect_in_background()`); after a failed attempt the wait doubles
/// from `initial` up to `max`. Any other link that lasted less than `max`
/// counts as a failed attempt (a busy server that accepts and closes at
/// once): the client waits first, going on with the doubling where it
/// was. Each wait is drawn
/// between half and all of its nominal length, so that many clients of
/// one server do not return in step. `connect()` and
/// `connect_in_background()` refuse a zero `initial` (it would retry
/// without a pause) and an `initial` above `max`.
///
/// ```
/// use std::time::Duration;
/// use ts_tcpip::Backoff;
/// let backoff = Backoff { initial: Duration::from_millis(50), ..Backoff::default() };
/// assert_eq!(backoff.max, Duration::from_secs(5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait after a failed attempt. Default:
    /// [`DEFAULT_RECONNECT_INITIAL`](crate::DEFAULT_RECONNECT_INITIAL), 100 ms.
    pub initial: Duration,
    /// The longest wait. Default:
    /// [`DEFAULT_RECONNECT_MAX`](crate::DEFAULT_RECONNECT_MAX), 5 s.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: crate::config::DEFAULT_RECONNECT_INITIAL,
            max: crate::config::DEFAULT_RECONNECT_MAX,
        }
    }
}

/// Runs until the endpoint is closed: connects whenever the link is down
/// (the first time too, for a client that was started without one),
/// backing off between failed attempts.
pub(crate) fn run(ep: &Endpoint, target: &Target, backoff: Backoff) {
    let mut rng = Jitter::seeded();
    let mut wait = backoff.initial;
    let mut up_since: Option<Instant> = None;
    let mut failures = Failures::default();
    while !ep.wait_disconnected() {
        // A link that lasted less than the longest wait counts as a failed
        // attempt (a busy server accepts and closes at once): back off
        // from where we were instead of hammering it.
        if up_since.is_some_and(|t| t.elapsed() < backoff.max) {
            if ep.wait_closed(rng.draw(wait)) {
                return;
            }
            wait = wait.saturating_mul(2).min(backoff.max);
        } else {
            wait = backoff.initial;
        }
        while !attempt(ep, target, &mut failures) {
            if ep.wait_closed(rng.draw(wait)) {
                return;
            }
            wait = wait.saturating_mul(2).min(backoff.max);
        }
        up_since = Some(Instant::now());
    }
}

/// One connection attempt; true if the link is up again (or closed).
fn attempt(ep: &Endpoint, target: &Target, failures: &mut Failures) -> bool {
    match target.connect(ep.config()) {
        // Refused only once closed, which ends the loop too.
        Ok(conn) => {
            failures.recovered(ep);
            let _ = ep.attach(Arc::new(conn), Takeover::Never);
            true
        }
        Err(_) if ep.is_closed() => true,
        Err(e) => {
            failures.failed(ep, &e);
            false
        }
    }
}

/// The failed attempts since the link was last up: the first and each
/// change of cause are logged at WARN, the repeats at DEBUG, so a client
/// that cannot reach its server says so once, and again when the reason
/// changes, without filling the log.
#[derive(Default)]
struct Failures {
    count: u64,
    last_cause: Option<String>,
}

impl Failures {
    fn failed(&mut self, ep: &Endpoint, e: &crate::Error) {
        self.count += 1;
        let cause = Chain(e).to_string();
        if self.last_cause.as_deref() == Some(cause.as_str()) {
            log::debug!(
                "{}: connecting failed again ({} attempts): {cause}",
                ep.log_name(),
                self.count
            );
        } else {
            log::warn!(
                "{}: connecting failed (attempt {}), retrying with backoff: {cause}",
                ep.log_name(),
                self.count
            );
            self.last_cause = Some(cause);
        }
    }

    fn recovered(&mut self, ep: &Endpoint) {
        if self.count > 0 {
            log::info!(
                "{}: connected after {} failed attempts",
                ep.log_name(),
                self.count
            );
        }
        *self = Failures::default();
    }
}

/// A small xorshift generator: jitter needs spread, not cryptography, and
/// not a dependency.
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter(nanos | 1)
    }

    /// A duration between half of `nominal` and all of it.
    fn draw(&mut self, nominal: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let fraction = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        // Through f64 a nominal near Duration::MAX can round past it.
        Duration::try_from_secs_f64(nominal.as_secs_f64() * (0.5 + 0.5 * fraction))
            .map_or(nominal, |d| d.min(nominal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all_of_the_wait() {
        let mut rng = Jitter::seeded();
        let nominal = Duration::from_millis(100);
        for _ in 0..1000 {
            let d = rng.draw(nominal);
            assert!(d >= nominal / 2 && d <= nominal, "{d:?}");
        }
    }

    #[test]
    fn the_longest_wait_is_drawn_without_a_panic() {
        let mut rng = Jitter::seeded();
        for _ in 0..1000 {
            let d = rng.draw(Duration::MAX);
            assert!(d >= Duration::MAX / 2, "{d:?}");
        }
    }
}
