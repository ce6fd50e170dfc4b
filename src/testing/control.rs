//! What a scripted peer's handle and its thread share: the test's word
//! to the thread (finished, or dropped), and the thread's report.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::verdict::Mismatch;
use crate::link::socket::Stream;

/// What the thread reports.
#[derive(Debug)]
pub(super) struct Outcome {
    pub(super) mismatches: Vec<Mismatch>,
    pub(super) not_run: Vec<String>,
}

/// What the handle tells the thread: the test has finished (end the
/// waits that last until then), or dropped the peer (end everything).
#[derive(Debug, Default)]
pub(super) struct Control {
    state: Mutex<ControlState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct ControlState {
    finish: bool,
    abort: bool,
    /// The thread is in (or about to start) a blocking read or write.
    in_io: bool,
    /// The thread reads until the test finishes (`expect_nothing_more()`):
    /// its reads have no deadline, so `finish()` shuts the socket to end
    /// them.
    reading_to_end: bool,
    /// The connection, to shut down on abort; the thread owns it, so that
    /// a reset closes it at once.
    stream: Weak<Stream>,
}

impl Control {
    pub(super) fn finish(&self) {
        let stream = {
            let mut state = self.state.lock();
            state.finish = true;
            let reading = state.in_io && state.reading_to_end;
            reading.then(|| state.stream.upgrade()).flatten()
        };
        self.changed.notify_all();
        if let Some(stream) = stream {
            stream.shutdown();
        }
    }

    /// From here on the thread reads until the test finishes or drops
    /// the peer.
    pub(super) fn read_to_end(&self) {
        self.state.lock().reading_to_end = true;
    }

    /// True once the test has finished or dropped the peer.
    pub(super) fn ended(&self) -> bool {
        let state = self.state.lock();
        state.finish || state.abort
    }

    pub(super) fn abort(&self) {
        let stream = {
            let mut state = self.state.lock();
            state.abort = true;
            // Only a read or write needs the socket shut to end: a thread
            // waiting here is woken by the notify and leaves the socket as
            // it is, with what has arrived still readable (Windows drops
            // it on a shutdown) for the end's judgement.
            state.in_io.then(|| state.stream.upgrade()).flatten()
        };
        self.changed.notify_all();
        if let Some(stream) = stream {
            stream.shutdown();
        }
    }

    /// Marks the start of a blocking read or write; false if the peer was
    /// dropped (then it must not start). Until [`end_io`](Self::end_io), a
    /// drop shuts the socket down to end it.
    pub(super) fn begin_io(&self) -> bool {
        let mut state = self.state.lock();
        // After a drop nothing starts; after finish() no read to the end.
        let over = state.abort || (state.finish && state.reading_to_end);
        state.in_io = !over;
        state.in_io
    }

    pub(super) fn end_io(&self) {
        self.state.lock().in_io = false;
    }

    pub(super) fn aborted(&self) -> bool {
        self.state.lock().abort
    }

    /// Makes `stream` the one an abort shuts down.
    pub(super) fn attach(&self, stream: &Arc<Stream>) {
        self.state.lock().stream = Arc::downgrade(stream);
    }

    /// Waits `pause`; false if an abort cut it short.
    pub(super) fn sleep(&self, pause: Duration) -> bool {
        let deadline = Instant::now().checked_add(pause);
        let mut state = self.state.lock();
        while !state.abort {
            match deadline {
                Some(deadline) => {
                    if self.changed.wait_until(&mut state, deadline).timed_out() {
                        break;
                    }
                }
                None => self.changed.wait(&mut state),
            }
        }
        !state.abort
    }

    /// Waits until the test finishes or drops the peer.
    pub(super) fn wait_end(&self) {
        let mut state = self.state.lock();
        while !state.finish && !state.abort {
            self.changed.wait(&mut state);
        }
    }
}
