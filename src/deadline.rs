//! How long one call may wait, carried from the public API down to the
//! socket: every lock and every socket wait of the call is bounded by the
//! same instant, so a call returns by its deadline whatever other threads
//! do on the link.

use std::time::{Duration, Instant};

use crate::sync::{Mutex, MutexGuard};

/// The deadline of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// No deadline: wait as long as it takes.
    Forever,
    /// Do not wait at all: only what is ready now (the `try_` calls).
    Now,
    /// Wait until this instant; once it has passed, take only what is
    /// ready, as [`Deadline::Now`] does.
    At(Instant),
}

impl Deadline {
    /// `timeout` from now; `None` is no deadline, and so is a timeout too
    /// long for an `Instant` (`Duration::MAX` means "for ever", not a
    /// panic).
    #[inline]
    pub(crate) fn after(timeout: Option<Duration>) -> Deadline {
        match timeout {
            None => Deadline::Forever,
            Some(timeout) => match Instant::now().checked_add(timeout) {
                Some(at) => Deadline::At(at),
                None => Deadline::Forever,
            },
        }
    }

    /// The time left: `None` for no deadline, zero once it has passed (or
    /// for [`Deadline::Now`]).
    #[inline]
    pub(crate) fn left(self) -> Option<Duration> {
        match self {
            Deadline::Forever => None,
            Deadline::Now => Some(Duration::ZERO),
            Deadline::At(at) => Some(at.saturating_duration_since(Instant::now())),
        }
    }

    /// True once no waiting is left: [`Deadline::Now`], or an instant that
    /// has passed.
    #[inline]
    pub(crate) fn passed(self) -> bool {
        self.left().is_some_and(|left| left.is_zero())
    }

    /// Locks `mutex`, waiting no longer than the deadline; `None` when
    /// another thread held it throughout.
    #[inline]
    pub(crate) fn lock<'a, T>(self, mutex: &'a Mutex<T>) -> Option<MutexGuard<'a, T>> {
        match self {
            Deadline::Forever => Some(mutex.lock()),
            Deadline::Now => mutex.try_lock(),
            Deadline::At(at) => mutex.try_lock_until(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_past_an_instants_range_is_none_at_all() {
        assert_eq!(Deadline::after(Some(Duration::MAX)), Deadline::Forever);
        assert_eq!(Deadline::after(None), Deadline::Forever);
        assert!(matches!(
            Deadline::after(Some(Duration::from_secs(1))),
            Deadline::At(_)
        ));
    }

    #[test]
    fn now_and_a_passed_instant_leave_no_time() {
        assert!(Deadline::Now.passed());
        assert!(Deadline::after(Some(Duration::ZERO)).passed());
        assert!(!Deadline::Forever.passed());
        assert_eq!(Deadline::Forever.left(), None);
        let later = Deadline::after(Some(Duration::from_secs(60)));
        assert!(!later.passed() && later.left() > Some(Duration::from_secs(59)));
    }

    #[test]
    fn a_lock_held_elsewhere_is_given_up_at_the_deadline() {
        let mutex = Mutex::new(());
        let held = mutex.lock();
        assert!(Deadline::Now.lock(&mutex).is_none());
        let soon = Deadline::after(Some(Duration::from_millis(5)));
        assert!(soon.lock(&mutex).is_none());
        drop(held);
        assert!(Deadline::Now.lock(&mutex).is_some());
        assert!(Deadline::Forever.lock(&mutex).is_some());
    }
}
