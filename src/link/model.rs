//! Model tests of the concurrency core, run under shuttle
//! (`scripts/model`: `cargo test --lib` with `--cfg shuttle`), which
//! controls every lock, wait and thread switch of the link (they come from
//! `src/sync.rs`) and tries thousands of interleavings of each scene:
//! randomly, and by PCT (few preemptions at chosen depths), as tokio and
//! AWS's ShardStore check theirs.
//!
//! The connection under the link is [`Fake`], an in-memory transport with
//! the system's manners: an error is told to the first call that meets it,
//! then reads see end of file and sends a broken pipe.
//!
//! Each race found by hand in the link has its scene here, named after
//! the promise, and fails when its fix is undone (see the note of each).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::connection::Connection;
use super::endpoint::{Endpoint, Intent, Takeover};
use super::events::{ConnectionEvent, DisconnectReason, Events};
use super::monitor;
use super::socket::Peek;
use super::threads::Threads;
use super::transport::Transport;
use crate::config::LinkConfig;
use crate::deadline::Deadline;
use crate::sync::{thread, Arc, Condvar, Mutex};
use crate::Error;

/// Interleavings tried per scene, by each scheduler.
const ITERATIONS: usize = 2000;

/// Runs `scene` under shuttle's random scheduler and its PCT scheduler.
fn check(scene: impl Fn() + Send + Sync + 'static) {
    let scene = std::sync::Arc::new(scene);
    let random = scene.clone();
    shuttle::check_random(move || random(), ITERATIONS);
    shuttle::check_pct(move || scene(), ITERATIONS, 3);
}

/// An in-memory byte stream with a peer the scene drives.
#[derive(Debug, Default)]
struct Fake {
    state: Mutex<FakeState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct FakeState {
    inbound: VecDeque<u8>,
    /// The peer closed its side: end of file once `inbound` is read.
    peer_closed: bool,
    /// An error the system has not told yet: the next call to meet it
    /// gets it.
    untold: Option<i32>,
    /// The connection broke (its error told): reads see end of file,
    /// sends a broken pipe.
    broken: bool,
    /// Shut down locally.
    shut: bool,
}

impl FakeState {
    /// The untold error, told now to this caller.
    fn tell(&mut self) -> Option<io::Error> {
        let code = self.untold.take()?;
        self.broken = true;
        Some(io::Error::from_raw_os_error(code))
    }

    fn at_end(&self) -> bool {
        self.inbound.is_empty() && (self.peer_closed || self.broken || self.shut)
    }
}

impl Fake {
    fn update(&self, change: impl FnOnce(&mut FakeState)) {
        change(&mut self.state.lock());
        self.changed.notify_all();
    }
}

/// The connection's side of a [`Fake`].
#[derive(Debug)]
struct Side(std::sync::Arc<Fake>);

impl Transport for Side {
    fn read(&self, buf: &mut [u8], deadline: Deadline, _spin: Duration) -> io::Result<usize> {
        let mut state = self.0.state.lock();
        loop {
            if let Some(e) = state.tell() {
                return Err(e);
            }
            if !state.inbound.is_empty() {
                let n = buf.len().min(state.inbound.len());
                for (slot, byte) in buf.iter_mut().zip(state.inbound.drain(..n)) {
                    *slot = byte;
                }
                return Ok(n);
            }
            if state.at_end() {
                return Ok(0);
            }
            match deadline {
                Deadline::Now => return Err(io::ErrorKind::WouldBlock.into()),
                Deadline::At(at) => {
                    if self.0.changed.wait_until(&mut state, at).timed_out() {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                }
                Deadline::Forever => self.0.changed.wait(&mut state),
            }
        }
    }

    fn write(&self, buf: &[u8], _deadline: Deadline) -> io::Result<usize> {
        let mut state = self.0.state.lock();
        if let Some(e) = state.tell() {
            return Err(e);
        }
        if state.broken || state.shut {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        Ok(buf.len())
    }

    fn flush(&self, _deadline: Deadline) -> io::Result<()> {
        Ok(())
    }

    fn peek_now(&self) -> io::Result<Peek> {
        let mut state = self.0.state.lock();
        if let Some(e) = state.tell() {
            return Err(e);
        }
        Ok(match (state.inbound.is_empty(), state.at_end()) {
            (false, _) => Peek::Data,
            (true, true) => Peek::Eof,
            (true, false) => Peek::Empty,
        })
    }

    fn wait_hangup(&self, _kick: Option<&super::socket::Wake>) -> io::Result<Peek> {
        {
            let mut state = self.0.state.lock();
            while state.untold.is_none() && !state.peer_closed && !state.broken && !state.shut {
                self.0.changed.wait(&mut state);
            }
        }
        self.peek_now()
    }

    fn send_closed(&self) -> io::Result<bool> {
        let mut state = self.0.state.lock();
        if let Some(e) = state.tell() {
            return Err(e);
        }
        Ok(state.broken)
    }

    fn shutdown(&self) {
        self.0.update(|s| s.shut = true);
    }
}

fn peer() -> SocketAddr {
    "127.0.0.1:5000".parse().expect("addr")
}

/// A connection over a fake stream, and the stream for the scene.
fn connection() -> (Arc<Connection>, std::sync::Arc<Fake>) {
    let fake = std::sync::Arc::new(Fake::default());
    let conn = Connection::new(Side(fake.clone()), peer());
    (Arc::new(conn), fake)
}

fn endpoint() -> Arc<Endpoint> {
    let config = LinkConfig {
        terminator: b"\n".to_vec(),
        ..LinkConfig::default()
    };
    Arc::new(Endpoint::new("Model", "model", config))
}

/// State is updated before anyone is told of it: whoever hears of a
/// change through `events()` finds the counters (and `connected()` for the
/// last change) already there. Undone (an event published before the
/// count), the observer sees a count behind the events.
#[test]
fn every_change_is_counted_before_anyone_hears_of_it() {
    check(|| {
        let ep = endpoint();
        let events = ep.subscribe();
        let changer = {
            let ep = ep.clone();
            thread::spawn(move || {
                let (conn, _fake) = connection();
                assert!(ep.attach(conn.clone(), Takeover::Never).is_ok());
                ep.detach(&conn, DisconnectReason::PeerClosed, Intent::Keep);
            })
        };
        let (mut connected, mut disconnected) = (0, 0);
        while connected + disconnected < 2 {
            match events.try_recv() {
                Ok(ConnectionEvent::Connected { .. }) => {
                    connected += 1;
                    assert!(ep.stats().connections_accepted >= connected);
                    assert!(ep.should_be_connected());
                }
                Ok(ConnectionEvent::Disconnected { .. }) => {
                    disconnected += 1;
                    assert!(ep.stats().disconnects >= disconnected);
                    assert!(!ep.connected(), "disconnected but still connected");
                }
                Err(_) => thread::yield_now(),
            }
        }
        changer.join().expect("changer");
    });
}

/// A peer turned away is counted before it can see its end of file.
/// Undone (counted after the connection is dropped), the peer finds its
/// connection closed and the count still zero.
#[test]
fn a_rejected_peer_is_counted_before_it_sees_its_end_of_file() {
    check(|| {
        let ep = endpoint();
        let (first, _f) = connection();
        assert!(ep.attach(first, Takeover::Never).is_ok());
        let (second, fake) = connection();
        let offer = {
            let ep = ep.clone();
            thread::spawn(move || assert!(!ep.offer(second, Takeover::Never)))
        };
        // The rejected peer waits for its connection to close.
        {
            let mut state = fake.state.lock();
            while !state.shut {
                fake.changed.wait(&mut state);
            }
        }
        assert_eq!(ep.stats().connections_rejected, 1);
        offer.join().expect("offer");
        ep.close(Intent::Clear);
    });
}

/// A thread is listed before it can run: a thread that closes its own end
/// at once finds itself, so its close does not try to join itself.
/// Undone (listed after the spawn returns), the new thread may look
/// before it is listed.
#[test]
fn a_new_thread_finds_itself_listed() {
    check(|| {
        let threads = std::sync::Arc::new(Threads::default());
        let (tx, rx) = crossbeam_channel::bounded(1);
        let inner = threads.clone();
        threads
            .spawn("model", "own", move || {
                tx.send(inner.is_own()).expect("report");
            })
            .expect("spawn");
        let mut seen = None;
        while seen.is_none() {
            seen = rx.try_recv().ok();
            thread::yield_now();
        }
        assert_eq!(seen, Some(true), "the thread ran before it was listed");
        assert!(threads.join_all());
    });
}

/// The first cause of a break is the one reported: a peer that stopped
/// answering (the system told ETIMEDOUT to one caller, here a writer;
/// every other look then sees an end of file) is never reported as a peer
/// that closed, whichever of the writer and the monitor hears first.
/// Undone (an end of file taken as the peer's close without asking
/// whether this side can still send), the monitor reports `PeerClosed`.
#[test]
fn a_peer_that_stopped_answering_is_never_reported_as_closed() {
    const ETIMEDOUT: i32 = if cfg!(windows) { 10060 } else { 110 };
    check(|| {
        let ep = endpoint();
        let events = ep.subscribe();
        let (conn, fake) = connection();
        assert!(ep.attach(conn, Takeover::Never).is_ok());
        monitor::spawn(&ep).expect("monitor");
        fake.update(|s| s.untold = Some(ETIMEDOUT));
        let writer = {
            let ep = ep.clone();
            thread::spawn(move || ep.write_str(Deadline::Forever, "x"))
        };
        let written = writer.join().expect("writer");
        assert!(written.is_err_and(|e| e.is_connection_error()));
        let reason = loop {
            match events.try_recv() {
                Ok(ConnectionEvent::Disconnected { reason, .. }) => break reason,
                Ok(_) => {}
                Err(_) => thread::yield_now(),
            }
        };
        assert_ne!(reason, DisconnectReason::PeerClosed);
        ep.close(Intent::Clear);
    });
}

/// Every frame goes to exactly one reader, in order, whatever the
/// readers' kinds (blocking, `try_`, with a deadline) and their order.
#[test]
fn each_frame_reaches_exactly_one_reader_in_order() {
    check(|| {
        let ep = endpoint();
        let (conn, fake) = connection();
        assert!(ep.attach(conn, Takeover::Never).is_ok());
        let got = std::sync::Arc::new(Mutex::new(Vec::new()));
        let reader = |deadline: Deadline| {
            let (ep, got) = (ep.clone(), got.clone());
            thread::spawn(move || {
                for _ in 0..3 {
                    match ep.read_str(deadline) {
                        Ok(line) => got.lock().push(line),
                        Err(Error::Timeout) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        };
        let readers = [
            reader(Deadline::Now),
            reader(Deadline::after(Some(Duration::from_millis(1)))),
        ];
        fake.update(|s| s.inbound.extend(b"1\n2\n3\n"));
        for r in readers {
            r.join().expect("reader");
        }
        // What the readers left, read now.
        while let Ok(line) = ep.read_str(Deadline::Now) {
            got.lock().push(line);
        }
        let mut all = got.lock().clone();
        let in_order = all.clone();
        all.sort();
        assert_eq!(all, ["1", "2", "3"], "lost or twice");
        // Each reader takes its lines in the order sent, and no two
        // readers take lines out of order between them: the merged list
        // was recorded in reading order.
        assert_eq!(in_order.len(), 3);
        ep.close(Intent::Clear);
    });
}

/// A `try_` read never waits, whatever another thread holds: the read
/// half (a blocked reader), or the slot (a change under way).
#[test]
fn a_try_read_never_waits() {
    check(|| {
        let ep = endpoint();
        let (conn, fake) = connection();
        assert!(ep.attach(conn.clone(), Takeover::Never).is_ok());
        let blocked = {
            let ep = ep.clone();
            thread::spawn(move || ep.read_str(Deadline::Forever))
        };
        let changer = {
            let ep = ep.clone();
            thread::spawn(move || {
                ep.detach(&conn, DisconnectReason::ClosedLocally, Intent::Clear);
            })
        };
        // `Deadline::Now` never blocks in the model: shuttle reports a
        // thread that waits for ever as a deadlock.
        match ep.read_str(Deadline::Now) {
            Ok(line) => panic!("read {line:?} from nothing"),
            Err(e) => assert!(
                matches!(e, Error::Timeout | Error::NotConnected) || e.is_connection_error(),
                "{e:?}"
            ),
        }
        changer.join().expect("changer");
        let blocked = blocked.join().expect("reader");
        assert!(blocked.is_err_and(|e| e.is_connection_error()));
        drop(fake);
        ep.close(Intent::Clear);
    });
}

/// `close()` and a connection arriving at the same moment: once close has
/// returned, nothing is connected, and a connection taken before it was
/// told of its end. Nothing waits for ever.
#[test]
fn close_and_a_new_connection_agree() {
    check(|| {
        let ep = endpoint();
        let events = ep.subscribe();
        let attacher = {
            let ep = ep.clone();
            thread::spawn(move || {
                let (conn, _fake) = connection();
                ep.attach(conn, Takeover::IfDead).is_ok()
            })
        };
        ep.close(Intent::Clear);
        let attached = attacher.join().expect("attacher");
        assert!(!ep.connected() && ep.is_closed() && !ep.should_be_connected());
        let told: Vec<bool> = events.try_iter().map(|e| e.is_connected()).collect();
        match attached {
            true => assert_eq!(told, [true, false]),
            false => assert!(told.is_empty(), "{told:?}"),
        }
    });
}

/// A dropped peer that the monitor has not noticed yet gives way to a new
/// client (and its end is told first), while a live one never does.
#[test]
fn a_new_client_replaces_only_a_dead_one() {
    check(|| {
        let ep = endpoint();
        let events = ep.subscribe();
        let (old, fake) = connection();
        assert!(ep.attach(old, Takeover::Never).is_ok());
        let closer = {
            let fake = fake.clone();
            thread::spawn(move || fake.update(|s| s.peer_closed = true))
        };
        let (new, _f) = connection();
        let taken = ep.attach(new, Takeover::IfDead).is_ok();
        closer.join().expect("closer");
        let told: Vec<bool> = events.try_iter().map(|e| e.is_connected()).collect();
        if taken {
            assert_eq!(told, [true, false, true], "the old one's end first");
        } else {
            assert_eq!(told, [true], "a live peer keeps the slot");
        }
        ep.close(Intent::Clear);
    });
}

/// A reader waiting for the cause of a break that another thread heard
/// (its end of file and a closed send side say the connection broke) is
/// released by a close, with the close's reason, and nothing deadlocks.
#[test]
fn a_reader_waiting_for_a_cause_is_released_by_a_close() {
    check(|| {
        let ep = endpoint();
        let (conn, fake) = connection();
        assert!(ep.attach(conn, Takeover::Never).is_ok());
        // Broken, its error told to a caller that never says.
        fake.update(|s| s.broken = true);
        let reader = {
            let ep = ep.clone();
            thread::spawn(move || ep.read_str(Deadline::Forever))
        };
        ep.close(Intent::Clear);
        let read = reader.join().expect("reader");
        assert!(read.is_err_and(|e| e.is_connection_error()));
    });
}

/// A thread waiting for the callback to be done with a connection (the
/// read loop) is woken by the connection's end, though the callback never
/// returns: every change is published after it is made, and publishing
/// wakes the waiters under the lock they check under. Undone (the wake
/// without that lock), the waiter can check before the change, miss the
/// wake, and wait for ever: shuttle reports the deadlock.
#[test]
fn a_wait_for_the_callback_is_never_left_behind_by_a_change() {
    use crate::sync::AtomicBool;
    use std::sync::atomic::Ordering;
    check(|| {
        let events = Arc::new(Events::default());
        // The callback's queue, never served: its calls never return.
        let _never_run = events.callback_loop("model".into(), |_| {});
        let call = events.publish(&ConnectionEvent::Connected { peer: peer() });
        assert_eq!(call, 1);
        let current = Arc::new(AtomicBool::new(true));
        let waiter = {
            let (events, current) = (events.clone(), current.clone());
            thread::spawn(move || events.wait_returned(call, || current.load(Ordering::SeqCst)))
        };
        // The connection ends: changed first, then published.
        current.store(false, Ordering::SeqCst);
        events.publish(&ConnectionEvent::Disconnected {
            peer: peer(),
            reason: DisconnectReason::PeerClosed,
        });
        waiter.join().expect("waiter");
    });
}
