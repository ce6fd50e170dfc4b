//! The slot: the one connection a side of a link serves, its epoch, and
//! the waits on it. State only: what a change sets off (shutting sockets,
//! counting, telling the callback) is the endpoint's, done under the slot
//! lock through a [`SlotGuard`] so that changes are told in the order they
//! happened.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::deadline::Deadline;
use crate::sync::{Arc, AtomicU64, Condvar, Mutex, MutexGuard};

/// The current connection (of type `C`) and whether the side is closed.
pub(crate) struct Slot<C> {
    state: Mutex<State<C>>,
    /// Bumped (under the lock) by every install and removal: whoever saw
    /// the connection at an epoch knows it is still current while the
    /// epoch has not moved, with one load and no lock.
    epoch: AtomicU64,
    /// Signalled on every change of the state.
    changed: Condvar,
    /// Threads waiting for a change, for tests that must know a waiter is
    /// waiting before they act (counted under the lock the wait releases).
    #[cfg(test)]
    waiting: std::sync::atomic::AtomicUsize,
    /// Waits begun so far, for tests that must know a waiter has come
    /// back to wait after a change.
    #[cfg(test)]
    waits: std::sync::atomic::AtomicUsize,
}

pub(crate) struct State<C> {
    conn: Option<Arc<C>>,
    closed: bool,
}

/// The slot, locked.
pub(crate) struct SlotGuard<'a, C> {
    slot: &'a Slot<C>,
    state: MutexGuard<'a, State<C>>,
}

impl<C> Default for Slot<C> {
    fn default() -> Self {
        Slot {
            state: Mutex::new(State {
                conn: None,
                closed: false,
            }),
            epoch: AtomicU64::new(0),
            changed: Condvar::new(),
            #[cfg(test)]
            waiting: Default::default(),
            #[cfg(test)]
            waits: Default::default(),
        }
    }
}

impl<C> Slot<C> {
    pub(crate) fn lock(&self) -> SlotGuard<'_, C> {
        SlotGuard {
            slot: self,
            state: self.state.lock(),
        }
    }

    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// True while the connection current at `epoch` still is.
    #[inline]
    pub(crate) fn is_current(&self, epoch: u64) -> bool {
        self.epoch() == epoch
    }

    pub(crate) fn current(&self) -> Option<Arc<C>> {
        self.state.lock().conn.clone()
    }

    /// The connection with the epoch it is current at; None if the slot
    /// stayed locked past `deadline` (its holders never wait while they
    /// hold it, so only a call that must not wait at all sees that).
    pub(crate) fn current_with_epoch(&self, deadline: Deadline) -> Option<(u64, Option<Arc<C>>)> {
        let state = deadline.lock(&self.state)?;
        Some((self.epoch(), state.conn.clone()))
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.state.lock().conn.is_some()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Waits for a connection: `Connected` at once if there is one.
    pub(crate) fn wait_connected(&self, timeout: Duration) -> Waited {
        let deadline = deadline_after(timeout);
        let mut state = self.state.lock();
        loop {
            if state.conn.is_some() {
                return Waited::Connected;
            }
            if state.closed {
                return Waited::Closed;
            }
            if self.wait_changed(&mut state, deadline) && state.conn.is_none() {
                return if state.closed {
                    Waited::Closed
                } else {
                    Waited::TimedOut
                };
            }
        }
    }

    /// Waits until a connection newer than the one current at epoch `seen`
    /// exists; returns it with its epoch. None once closed.
    pub(crate) fn next_connection(&self, seen: u64) -> Option<(Arc<C>, u64)> {
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return None;
            }
            // Only installs and removals move the epoch, and a removal
            // empties the slot: a connection at another epoch is new.
            let epoch = self.epoch();
            if let (Some(conn), true) = (&state.conn, epoch != seen) {
                return Some((conn.clone(), epoch));
            }
            self.wait_changed(&mut state, None);
        }
    }

    /// Waits up to `timeout` unless `conn` stops being the connection
    /// first. True if it still is.
    pub(crate) fn wait_while_current(&self, conn: &Arc<C>, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        let mut state = self.state.lock();
        while state.holds(conn) && !self.wait_changed(&mut state, deadline) {}
        state.holds(conn)
    }

    /// Waits until there is no connection; true if that is because the
    /// side is closed.
    pub(crate) fn wait_disconnected(&self) -> bool {
        let mut state = self.state.lock();
        while state.conn.is_some() && !state.closed {
            self.wait_changed(&mut state, None);
        }
        state.closed
    }

    /// Waits up to `timeout` unless the side is closed first. True if it
    /// is closed.
    pub(crate) fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        let mut state = self.state.lock();
        while !state.closed && !self.wait_changed(&mut state, deadline) {}
        state.closed
    }

    /// Waits for a change until `deadline` (for ever without one); true if
    /// the deadline passed.
    fn wait_changed(
        &self,
        state: &mut MutexGuard<'_, State<C>>,
        deadline: Option<Instant>,
    ) -> bool {
        #[cfg(test)]
        {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            self.waits.fetch_add(1, Ordering::SeqCst);
        }
        let timed_out = match deadline {
            Some(deadline) => self.changed.wait_until(state, deadline).timed_out(),
            None => {
                self.changed.wait(state);
                false
            }
        };
        #[cfg(test)]
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        timed_out
    }
}

/// How a wait for a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    Connected,
    TimedOut,
    Closed,
}

impl<C> State<C> {
    fn holds(&self, conn: &Arc<C>) -> bool {
        self.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn))
    }
}

impl<C> SlotGuard<'_, C> {
    pub(crate) fn conn(&self) -> Option<&Arc<C>> {
        self.state.conn.as_ref()
    }

    /// True while `conn` is the connection.
    pub(crate) fn holds(&self, conn: &Arc<C>) -> bool {
        self.state.holds(conn)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.closed
    }

    /// Makes `conn` the connection; the slot must be empty and open.
    pub(crate) fn install(&mut self, conn: Arc<C>) {
        debug_assert!(self.state.conn.is_none() && !self.state.closed);
        self.state.conn = Some(conn);
        self.changed();
    }

    /// Empties the slot if it holds `conn`; false if it did not.
    pub(crate) fn remove(&mut self, conn: &Arc<C>) -> bool {
        if !self.state.holds(conn) {
            return false;
        }
        self.state.conn = None;
        self.changed();
        true
    }

    /// Marks the side closed; false if it was already. Whoever closes
    /// removes the connection first.
    pub(crate) fn close(&mut self) -> bool {
        if self.state.closed {
            return false;
        }
        self.state.closed = true;
        self.slot.changed.notify_all();
        true
    }

    fn changed(&mut self) {
        self.slot.epoch.fetch_add(1, Ordering::Release);
        self.slot.changed.notify_all();
    }
}

/// `timeout` from now; None (no deadline) when that is further than an
/// `Instant` reaches, so `Duration::MAX` means "for ever", not a panic.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::test_util::{watchdog, WAIT};
    use std::thread;

    const LONG: Duration = Duration::from_secs(10);

    /// Returns once `waiters` threads wait on the slot for a change: they
    /// counted themselves under the lock that their wait releases, so
    /// whatever the test does next happens while they wait.
    fn until_waiting<C>(slot: &Slot<C>, waiters: usize) {
        loop {
            let _state = slot.state.lock();
            if slot.waiting.load(Ordering::SeqCst) >= waiters {
                return;
            }
            drop(_state);
            thread::yield_now();
        }
    }

    #[test]
    fn install_and_remove_move_the_epoch_and_only_the_current_connection_is_removed() {
        let slot = Slot::<u32>::default();
        let (a, b) = (Arc::new(1), Arc::new(2));
        let start = slot.epoch();
        slot.lock().install(a.clone());
        let at = slot.epoch();
        assert!(at > start && slot.is_current(at) && slot.is_connected());
        assert!(!slot.lock().remove(&b), "not the current one");
        assert!(slot.is_current(at));
        assert!(slot.lock().remove(&a));
        assert!(!slot.is_current(at) && !slot.is_connected());
        assert!(!slot.lock().remove(&a), "removed once");
    }

    /// A change that leaves the slot empty and open (a connection came and
    /// went before the waiter looked) is no answer: `wait_connected` waits
    /// on, and reports the next connection.
    #[test]
    fn wait_connected_waits_on_through_a_connection_that_came_and_went() {
        let _w = watchdog(WAIT);
        let slot = Slot::<u32>::default();
        thread::scope(|s| {
            let waiter = s.spawn(|| slot.wait_connected(LONG));
            until_waiting(&slot, 1);
            let begun = slot.waits.load(Ordering::SeqCst);
            {
                let mut state = slot.lock();
                let gone = Arc::new(1);
                state.install(gone.clone());
                assert!(state.remove(&gone));
            }
            // The waiter woke to an empty slot: it waits again (or, wrongly,
            // returns).
            while slot.waits.load(Ordering::SeqCst) == begun && !waiter.is_finished() {
                thread::yield_now();
            }
            slot.lock().install(Arc::new(2));
            assert_eq!(waiter.join().expect("waiter"), Waited::Connected);
        });
    }

    #[test]
    fn wait_connected_reports_connected_timeout_and_close() {
        let _w = watchdog(WAIT);
        let slot = Slot::<u32>::default();
        assert_eq!(
            slot.wait_connected(Duration::from_millis(1)),
            Waited::TimedOut
        );
        thread::scope(|s| {
            let waiter = s.spawn(|| slot.wait_connected(LONG));
            until_waiting(&slot, 1);
            slot.lock().install(Arc::new(7));
            assert_eq!(waiter.join().expect("waiter"), Waited::Connected);
        });
        assert_eq!(slot.wait_connected(Duration::ZERO), Waited::Connected);
        let slot = Slot::<u32>::default();
        thread::scope(|s| {
            let waiter = s.spawn(|| slot.wait_connected(Duration::MAX));
            until_waiting(&slot, 1);
            slot.lock().close();
            assert_eq!(waiter.join().expect("waiter"), Waited::Closed);
        });
    }

    #[test]
    fn next_connection_skips_the_one_already_seen_and_ends_on_close() {
        let _w = watchdog(WAIT);
        let slot = Slot::<u32>::default();
        let first = Arc::new(1);
        slot.lock().install(first.clone());
        let (conn, epoch) = slot.next_connection(0).expect("the current one");
        assert!(Arc::ptr_eq(&conn, &first));
        thread::scope(|s| {
            let next = s.spawn(|| slot.next_connection(epoch));
            until_waiting(&slot, 1);
            let mut guard = slot.lock();
            guard.remove(&first);
            guard.install(Arc::new(2));
            drop(guard);
            let (conn, _) = next.join().expect("thread").expect("a new one");
            assert_eq!(*conn, 2);
        });
        thread::scope(|s| {
            let (_, epoch) = slot.next_connection(0).expect("current");
            let slot = &slot;
            let next = s.spawn(move || slot.next_connection(epoch));
            until_waiting(slot, 1);
            slot.lock().close();
            assert!(next.join().expect("thread").is_none());
        });
    }

    #[test]
    fn waits_end_when_the_connection_goes_or_the_slot_closes() {
        let _w = watchdog(WAIT);
        let slot = Slot::<u32>::default();
        let conn = Arc::new(1);
        slot.lock().install(conn.clone());
        assert!(slot.wait_while_current(&conn, Duration::from_millis(1)));
        thread::scope(|s| {
            let waiter = s.spawn(|| slot.wait_while_current(&conn, LONG));
            let disconnected = s.spawn(|| slot.wait_disconnected());
            until_waiting(&slot, 2);
            slot.lock().remove(&conn);
            assert!(!waiter.join().expect("waiter"));
            assert!(!disconnected.join().expect("waiter"), "not closed");
        });
        assert!(!slot.wait_closed(Duration::from_millis(1)));
        thread::scope(|s| {
            let waiter = s.spawn(|| slot.wait_closed(LONG));
            until_waiting(&slot, 1);
            assert!(slot.lock().close() && !slot.lock().close());
            assert!(waiter.join().expect("waiter"));
        });
    }

    #[test]
    fn a_wait_of_duration_max_has_no_deadline() {
        assert!(deadline_after(Duration::MAX).is_none());
        assert!(deadline_after(LONG).is_some());
    }
}
