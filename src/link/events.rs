//! Changes of connection state: the event type, the subscribers of
//! `events()`, and the thread that runs the user's connect callback.

use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::error::{Chain, Error};
use crate::sync::{Condvar, Mutex};

/// A change of connection state, as [`Link::events`](crate::Link::events)
/// delivers it.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// A peer is now connected.
    Connected {
        /// The peer's address.
        peer: SocketAddr,
    },
    /// The peer is gone.
    Disconnected {
        /// The peer's address.
        peer: SocketAddr,
        /// Why the link ended.
        reason: DisconnectReason,
    },
}

impl ConnectionEvent {
    /// True for [`ConnectionEvent::Connected`]: the `bool` the connect
    /// callback receives.
    pub fn is_connected(&self) -> bool {
        matches!(self, ConnectionEvent::Connected { .. })
    }
}

/// Why a link ended.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub enum DisconnectReason {
    /// The peer closed the connection (end of file seen).
    PeerClosed,
    /// This side closed it: `close()`, `close_client()` and kin.
    ClosedLocally,
    /// A read-loop server's heartbeat monitor heard nothing in time.
    HeartbeatMissed,
    /// The peer stopped answering: the system gave up on it after the
    /// dead-peer bound (see
    /// [`Builder::dead_peer_timeout`](crate::builder::Builder::dead_peer_timeout)),
    /// without a word from it (powered off, cable pulled, host frozen).
    PeerUnresponsive,
    /// The connection broke for another reason than a silent peer (which
    /// is [`PeerUnresponsive`](Self::PeerUnresponsive)): a reset, a broken
    /// pipe, a TLS error. The error that ended it.
    Error(Arc<Error>),
    /// The read-loop handler returned this error, so the client was
    /// closed.
    HandlerFailed(Arc<Error>),
    /// The read-loop handler panicked, so the client was closed.
    HandlerPanicked,
    /// A new client took the slot: the server's
    /// [`SlotPolicy::ReplaceOld`](crate::SlotPolicy::ReplaceOld) closed
    /// this one to serve it.
    Replaced,
}

/// Same variant, and for the errors the same error (or one that reads
/// the same).
impl PartialEq for DisconnectReason {
    fn eq(&self, other: &Self) -> bool {
        use DisconnectReason as R;
        let same =
            |a: &Arc<Error>, b: &Arc<Error>| Arc::ptr_eq(a, b) || a.to_string() == b.to_string();
        match (self, other) {
            (R::Error(a), R::Error(b)) | (R::HandlerFailed(a), R::HandlerFailed(b)) => same(a, b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Eq for DisconnectReason {}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::PeerClosed => f.write_str("the peer closed the connection"),
            DisconnectReason::ClosedLocally => f.write_str("closed locally"),
            DisconnectReason::HeartbeatMissed => f.write_str("no heartbeat in time"),
            DisconnectReason::PeerUnresponsive => f.write_str("the peer stopped answering"),
            DisconnectReason::Error(e) => write!(f, "{}", Chain(&**e)),
            DisconnectReason::HandlerFailed(e) => {
                write!(f, "the read-loop handler failed: {}", Chain(&**e))
            }
            DisconnectReason::HandlerPanicked => f.write_str("the read-loop handler panicked"),
            DisconnectReason::Replaced => f.write_str("replaced by a new client"),
        }
    }
}

impl fmt::Display for ConnectionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionEvent::Connected { peer } => write!(f, "connected to {peer}"),
            ConnectionEvent::Disconnected { peer, reason } => {
                write!(f, "disconnected from {peer}: {reason}")
            }
        }
    }
}

/// Fans each change out to the callback thread and to every `events()`
/// receiver, in the order the changes happened.
///
/// `publish` is called with the endpoint's slot lock held (that is what
/// orders the events); it takes `sinks` inside it, then `returned` to wake
/// its waiters. Lock order: slot, sinks, returned. No lock is held while
/// user code runs.
///
/// The callback's calls are numbered from 1 in the order they are queued;
/// `returned` counts those that have returned, so that a thread can wait
/// for the callback to be done with a given change (the read loop, which
/// must not serve a connection before the callback has, as in Python).
#[derive(Default)]
pub(crate) struct Events {
    sinks: Mutex<Sinks>,
    /// Shared with the callback thread, which counts its calls.
    returned: Arc<Returned>,
}

/// The callback's calls that have returned.
#[derive(Default)]
struct Returned {
    count: Mutex<u64>,
    /// Signalled when a call returns and on every publish (a change of
    /// the slot, which may end what a waiter waits for).
    changed: Condvar,
}

#[derive(Default)]
struct Sinks {
    callback: Option<Sender<ConnectionEvent>>,
    /// Calls queued for the callback so far.
    queued: u64,
    subscribers: Vec<Sender<ConnectionEvent>>,
}

impl Events {
    pub(crate) fn subscribe(&self) -> Receiver<ConnectionEvent> {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.sinks.lock().subscribers.push(tx);
        rx
    }

    /// Tells the callback and every subscriber of `event`. Returns the
    /// number of the callback's call for it, for [`wait_returned`]; 0 when
    /// no callback will be called (there is nothing to wait for).
    ///
    /// [`wait_returned`]: Self::wait_returned
    pub(crate) fn publish(&self, event: &ConnectionEvent) -> u64 {
        let mut sinks = self.sinks.lock();
        let mut call = 0;
        // The callback thread only goes away after `close_callback`.
        if let Some(Ok(())) = sinks.callback.as_ref().map(|tx| tx.send(event.clone())) {
            sinks.queued += 1;
            call = sinks.queued;
        }
        // A receiver that was dropped is forgotten.
        sinks
            .subscribers
            .retain(|tx| tx.send(event.clone()).is_ok());
        drop(sinks);
        // Taken so that a waiter between its check and its wait cannot
        // miss the change this event tells of.
        let _count = self.returned.count.lock();
        self.returned.changed.notify_all();
        call
    }

    /// Waits until the callback's call number `call` has returned, or
    /// `still` turns false. `still` is asked under the lock each publish
    /// takes before it wakes waiters, so it must not take the slot lock;
    /// a change it looks at must be made before the change is published.
    /// No lock is held while the callback runs. `call` 0 returns at once.
    pub(crate) fn wait_returned(&self, call: u64, still: impl Fn() -> bool) {
        let mut count = self.returned.count.lock();
        while *count < call && still() {
            self.returned.changed.wait(&mut count);
        }
    }

    /// Subscribes the callback and returns the body of its thread, which
    /// calls `callback` once per change, serially, until `close_callback`.
    /// A panic in the callback is logged (as `log_name`) and the next
    /// change still gets its call.
    pub(crate) fn callback_loop<F>(
        &self,
        log_name: String,
        mut callback: F,
    ) -> impl FnOnce() + Send + 'static
    where
        F: FnMut(bool) + Send + 'static,
    {
        let (tx, rx) = crossbeam_channel::unbounded::<ConnectionEvent>();
        self.sinks.lock().callback = Some(tx);
        let returned = self.returned.clone();
        move || {
            for event in rx {
                let connected = event.is_connected();
                if catch_unwind(AssertUnwindSafe(|| callback(connected))).is_err() {
                    log::error!("{log_name}: the connect callback panicked (connected={connected}); continuing");
                }
                // A call that panicked has returned too: nobody waits for
                // ever on a callback that failed.
                *returned.count.lock() += 1;
                returned.changed.notify_all();
            }
        }
    }

    /// Lets the callback thread finish the calls already queued and end.
    pub(crate) fn close_callback(&self) {
        self.sinks.lock().callback = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn events_and_reasons_read_as_sentences() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let lost = Error::ConnectionLost(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        let event = ConnectionEvent::Disconnected {
            peer,
            reason: DisconnectReason::Error(Arc::new(lost)),
        };
        assert_eq!(
            event.to_string(),
            "disconnected from 127.0.0.1:5000: connection lost: reset"
        );
        assert_eq!(
            ConnectionEvent::Connected { peer }.to_string(),
            "connected to 127.0.0.1:5000"
        );
    }

    #[test]
    fn reasons_compare_by_variant_and_error() {
        let a = DisconnectReason::HandlerFailed(Arc::new(Error::Timeout));
        assert_eq!(a, DisconnectReason::HandlerFailed(Arc::new(Error::Timeout)));
        assert_ne!(
            a,
            DisconnectReason::HandlerFailed(Arc::new(Error::NotConnected))
        );
        assert_ne!(a, DisconnectReason::Error(Arc::new(Error::Timeout)));
        assert_eq!(DisconnectReason::PeerClosed, DisconnectReason::PeerClosed);
    }

    /// A waiter for the callback's call is released when that call
    /// returns, not before; and by a later change that ends what it waits
    /// for, though the callback never returns.
    #[test]
    fn a_waiter_is_released_by_the_call_returning_or_by_a_change() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::Duration;
        const WAIT: Duration = Duration::from_secs(10);
        let events = Events::default();
        let (entered_tx, entered) = crossbeam_channel::unbounded();
        let (release, release_rx) = crossbeam_channel::unbounded::<()>();
        let body = events.callback_loop("test".into(), move |_| {
            let _ = entered_tx.send(());
            // Longer than the test waits: only a release ends the call.
            let _ = release_rx.recv_timeout(WAIT * 3);
        });
        let callback = std::thread::spawn(body);
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let first = events.publish(&ConnectionEvent::Connected { peer });
        assert_eq!(first, 1);
        let current = AtomicBool::new(true);
        let (events, current) = (&events, &current);
        std::thread::scope(|s| {
            let (done_tx, done) = crossbeam_channel::unbounded();
            s.spawn(move || {
                events.wait_returned(first, || true);
                let _ = done_tx.send(());
            });
            entered.recv_timeout(WAIT).expect("the callback is called");
            assert!(done.recv_timeout(Duration::from_millis(100)).is_err());
            release.send(()).expect("release");
            done.recv_timeout(WAIT)
                .expect("released by the call's return");

            let second = events.publish(&ConnectionEvent::Connected { peer });
            assert_eq!(second, 2);
            let (done_tx, done) = crossbeam_channel::unbounded();
            s.spawn(move || {
                events.wait_returned(second, || current.load(Ordering::SeqCst));
                let _ = done_tx.send(());
            });
            entered
                .recv_timeout(WAIT)
                .expect("the callback is called again");
            assert!(done.recv_timeout(Duration::from_millis(100)).is_err());
            current.store(false, Ordering::SeqCst);
            events.publish(&ConnectionEvent::Disconnected {
                peer,
                reason: DisconnectReason::PeerClosed,
            });
            done.recv_timeout(WAIT).expect("released by the change");
            // Let the held calls go, and the thread end.
            for _ in 0..2 {
                release.send(()).expect("release");
            }
        });
        events.close_callback();
        callback.join().expect("the callback thread");
        assert_eq!(*events.returned.count.lock(), 3);
        events.wait_returned(0, || true);
    }

    #[test]
    fn publish_reaches_every_live_receiver_in_order() {
        let events = Events::default();
        let (a, b) = (events.subscribe(), events.subscribe());
        drop(b);
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        events.publish(&ConnectionEvent::Connected { peer });
        events.publish(&ConnectionEvent::Disconnected {
            peer,
            reason: DisconnectReason::PeerClosed,
        });
        assert!(a.try_recv().expect("first").is_connected());
        assert!(!a.try_recv().expect("second").is_connected());
        assert_eq!(
            events.sinks.lock().subscribers.len(),
            1,
            "the dropped one is forgotten"
        );
    }
}
