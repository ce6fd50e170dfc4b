//! The threads a side of a link owns: each named, each joined on close.

use std::sync::atomic::Ordering;

use crate::error::Result;
use crate::sync::thread::{self, JoinHandle, ThreadId};
use crate::sync::{AtomicBool, Mutex};

/// Every thread started for one side of a link.
#[derive(Default)]
pub(crate) struct Threads {
    started: Mutex<Started>,
    /// Held by whoever joins, so that a second `join_all` returns only
    /// once the first has joined them all.
    joining: Mutex<()>,
    /// A thread joined early (see `Started::reap`) had panicked.
    panicked: AtomicBool,
}

#[derive(Default)]
struct Started {
    /// Not yet joined.
    handles: Vec<JoinHandle<()>>,
    /// Every thread started here and not yet joined.
    ids: Vec<ThreadId>,
}

impl Started {
    /// Joins the threads that have ended (at once: they have), so that
    /// short-lived ones (a TLS handshake each) do not pile up until close.
    fn reap(&mut self, panicked: &AtomicBool) {
        let (ended, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.handles)
            .into_iter()
            .partition(crate::sync::is_finished);
        for handle in ended {
            self.ids.retain(|id| *id != handle.thread().id());
            if handle.join().is_err() {
                panicked.store(true, Ordering::Relaxed);
            }
        }
        self.handles = running;
    }
}

impl Threads {
    /// Starts a thread named `tcpip-<kind> <name>` (`tcpip-<kind>` for an
    /// unnamed end; Linux shows the first 15 bytes), joined by `join_all`.
    /// It is listed before it can run: a thread that closes its own end
    /// at once must find itself (`is_own`), so the list stays locked
    /// across the spawn.
    pub(crate) fn spawn(
        &self,
        kind: &str,
        name: &str,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<()> {
        let thread_name = match name {
            "" => format!("tcpip-{kind}"),
            name => format!("tcpip-{kind} {name}"),
        };
        let mut started = self.started.lock();
        started.reap(&self.panicked);
        let handle = thread::Builder::new().name(thread_name).spawn(f)?;
        started.ids.push(handle.thread().id());
        started.handles.push(handle);
        Ok(())
    }

    /// True when called from one of these threads.
    pub(crate) fn is_own(&self) -> bool {
        let me = thread::current().id();
        self.started.lock().ids.contains(&me)
    }

    /// Joins every thread started here; false if one of them panicked.
    /// Called from one of them it joins nothing: a thread cannot join
    /// itself, and waiting for the others could wait for a close that
    /// waits for this one. The owner's close joins them all.
    pub(crate) fn join_all(&self) -> bool {
        if self.is_own() {
            return true;
        }
        let _turn = self.joining.lock();
        let handles = std::mem::take(&mut self.started.lock().handles);
        let mut clean = !self.panicked.load(Ordering::Relaxed);
        for handle in handles {
            clean &= handle.join().is_ok();
        }
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn threads_are_named_and_joined() {
        let threads = Threads::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        threads
            .spawn("unit", "test", move || {
                let name = std::thread::current().name().map(str::to_owned);
                tx.send(name).expect("send");
            })
            .expect("spawn");
        let name = rx.recv_timeout(Duration::from_secs(10)).expect("ran");
        assert_eq!(name.as_deref(), Some("tcpip-unit test"));
        assert!(threads.join_all());
        assert!(threads.started.lock().handles.is_empty());
    }

    #[test]
    fn ended_threads_are_joined_when_the_next_one_starts() {
        let threads = Threads::default();
        let (tx, rx) = crossbeam_channel::unbounded::<()>();
        threads.spawn("unit", "short", || {}).expect("spawn");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !crate::sync::is_finished(&threads.started.lock().handles[0]) {
            assert!(
                std::time::Instant::now() < deadline,
                "the short thread never ended"
            );
            std::thread::yield_now();
        }
        threads
            .spawn("unit", "long", move || {
                let _ = rx.recv_timeout(Duration::from_secs(10));
            })
            .expect("spawn");
        assert_eq!(
            threads.started.lock().handles.len(),
            1,
            "the ended one joined"
        );
        assert_eq!(threads.started.lock().ids.len(), 1);
        drop(tx);
        assert!(threads.join_all());
    }

    #[test]
    fn a_panicked_thread_is_reported_by_the_join() {
        let threads = Threads::default();
        threads
            .spawn("unit", "panics", || panic!("on purpose"))
            .expect("spawn");
        assert!(!threads.join_all());
    }

    #[test]
    fn join_from_an_own_thread_returns_without_joining() {
        let threads = Arc::new(Threads::default());
        let (tx, rx) = crossbeam_channel::unbounded();
        let inner = threads.clone();
        let (go_tx, go_rx) = crossbeam_channel::unbounded::<()>();
        threads
            .spawn("unit", "self", move || {
                // Wait until spawn has recorded this thread.
                let _ = go_rx.recv_timeout(Duration::from_secs(10));
                tx.send((inner.is_own(), inner.join_all())).expect("send");
            })
            .expect("spawn");
        go_tx.send(()).expect("go");
        let (own, joined) = rx.recv_timeout(Duration::from_secs(10)).expect("ran");
        assert!(own && joined);
        assert!(!threads.is_own());
        assert!(threads.join_all());
    }
}
