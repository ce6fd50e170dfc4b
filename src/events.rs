//! Changes of connection state: the event type, the subscribers of
//! `events()`, and the thread that runs the user's connect callback.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The peer closed the connection (end of file seen).
    PeerClosed,
    /// This side closed it: `close()`, `close_client()` and kin.
    ClosedLocally,
    /// A read-loop server's heartbeat monitor heard nothing in time.
    HeartbeatMissed,
    /// The connection broke: reset, broken pipe, keepalive failure, or an
    /// error in the read-loop handler. The text says which.
    Error(String),
}

/// Fans each change out to the callback thread and to every `events()`
/// receiver, in the order the changes happened.
///
/// `publish` is called with the endpoint's slot lock held (that is what
/// orders the events); it takes `sinks` inside it. Lock order: slot, then
/// sinks. Neither lock is held while user code runs.
#[derive(Default)]
pub(crate) struct Events {
    sinks: Mutex<Sinks>,
}

#[derive(Default)]
struct Sinks {
    callback: Option<Sender<ConnectionEvent>>,
    subscribers: Vec<Sender<ConnectionEvent>>,
}

impl Events {
    pub(crate) fn subscribe(&self) -> Receiver<ConnectionEvent> {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.sinks.lock().subscribers.push(tx);
        rx
    }

    pub(crate) fn publish(&self, event: &ConnectionEvent) {
        let mut sinks = self.sinks.lock();
        if let Some(tx) = &sinks.callback {
            // The callback thread only goes away after `close_callback`.
            let _ = tx.send(event.clone());
        }
        // A receiver that was dropped is forgotten.
        sinks
            .subscribers
            .retain(|tx| tx.send(event.clone()).is_ok());
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
        move || {
            for event in rx {
                let connected = event.is_connected();
                if catch_unwind(AssertUnwindSafe(|| callback(connected))).is_err() {
                    log::error!("{log_name}: the connect callback panicked (connected={connected}); continuing");
                }
            }
        }
    }

    /// Lets the callback thread finish the calls already queued and end.
    pub(crate) fn close_callback(&self) {
        self.sinks.lock().callback = None;
    }
}
