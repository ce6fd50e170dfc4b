//! What a user of the crate can do wrong, and must get away with: a
//! connect callback that panics or closes the link it reports on, `close()`
//! from many threads at once (also while the callback runs), a huge
//! `read_exact` count. B5 and B7 of SPEC section 2, and 1b. (A read-loop
//! handler that panics: read_loop.rs. Dropping in every order, and the
//! threads and descriptors each of these leaves: process.rs.)

mod support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded};
use support::blocked::{self, In};
use support::{expect_eof, init_log, logged, raw_client, watchdog, QUIET, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

// ------------------------------------------------------------ the callback

/// The callback panics on every call, `true` and `false`: each panic is
/// logged and changes nothing else; the link works and the next change
/// still gets its call.
#[test]
fn b05_panicking_callback_is_contained_and_the_next_change_still_gets_its_call() {
    let _w = watchdog(Duration::from_secs(30));
    init_log();
    let (tx, calls) = unbounded();
    let builder = OneClientServer::builder()
        .name("cb-panics")
        .connect_callback(move |_, connected| {
            tx.send(connected).expect("recorder");
            panic!("deliberate panic in the connect callback (connected={connected})");
        });
    let server = testing::start_server(builder).expect("server starts");
    server.set_read_timeout(Some(WAIT));
    let next = || calls.recv_timeout(WAIT).expect("a callback call");
    for round in 0..3 {
        let client = testing::connect_client(&server, true).expect("client");
        assert!(next(), "round {round}: true");
        client.set_read_timeout(Some(WAIT));
        client.write_str("ping").expect("write");
        assert_eq!(server.read_str().expect("read"), "ping");
        server.write_str("pong").expect("write");
        assert_eq!(client.read_str().expect("read"), "pong");
        drop(client);
        assert!(!next(), "round {round}: false");
        assert!(!server.connected(), "round {round}");
    }
    server.close();
    assert!(server.is_closed());
    assert!(
        calls.try_recv().is_err(),
        "no call after close: the last was false"
    );
    assert!(
        logged(&["cb-panics", "panicked"]),
        "the panic was not logged"
    );
}

#[test]
fn b05_close_client_inside_callback_does_not_deadlock() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let mut record = calls.callback::<OneClientServer>();
    let server = testing::start_server(OneClientServer::builder().connect_callback(
        move |server: &OneClientServer, connected| {
            record(server, connected);
            if connected {
                server.close_client();
            }
        },
    ))
    .expect("server starts");
    for _ in 0..2 {
        let peer = raw_client(&server);
        calls.assert_next_connected(true, WAIT);
        calls.assert_next_connected(false, WAIT);
        expect_eof(peer);
    }
    assert!(!server.is_closed());
    calls.assert_no_more(QUIET);
}

/// `close()` from inside the callback, on a server and on a client: no
/// deadlock, the `false` call still comes, the port is free at once.
#[test]
fn b05_close_from_inside_the_callback_does_not_deadlock() {
    let _w = watchdog(Duration::from_secs(30));
    {
        let calls = CallbackRecorder::new();
        let mut record = calls.callback();
        let builder = OneClientServer::builder()
            .name("cb-closes")
            .connect_callback(move |server: &OneClientServer, connected| {
                record(server, connected);
                if connected {
                    server.close();
                    assert!(server.is_closed());
                }
            });
        let server = testing::start_server(builder).expect("server starts");
        let addr = server.local_addrs()[0];
        let mut peer = raw_client(&server);
        calls.assert_next_connected(true, WAIT);
        // `false` is delivered after the `true` call, and so after the
        // close() inside it returned.
        calls.assert_next_connected(false, WAIT);
        assert!(server.is_closed());
        assert!(!server.connected());
        expect_eof(&mut peer);
        let rebound = TcpListener::bind(addr);
        assert!(
            rebound.is_ok(),
            "port still taken after close() in the callback: {rebound:?}"
        );
        drop(rebound);
        assert!(matches!(server.read_str(), Err(Error::NotConnected)));
        drop(server); // joins the callback thread
        calls.assert_no_more(Duration::ZERO);
    }
    {
        // The client's callback closes its client.
        let server = testing::start_server(OneClientServer::builder().name("cb-closes-srv"))
            .expect("server");
        let calls = CallbackRecorder::new();
        let mut record = calls.callback();
        let client = testing::client_for(&server)
            .name("cb-closes-client")
            .heartbeat(Some(Duration::from_millis(5)))
            .connect_callback(move |client: &Client, connected| {
                record(client, connected);
                if connected {
                    client.close();
                }
            })
            .connect()
            .expect("client connects");
        calls.assert_next_connected(true, WAIT);
        calls.assert_next_connected(false, WAIT);
        assert!(client.is_closed());
        assert!(!client.should_be_connected());
        assert!(matches!(client.write_str("x"), Err(Error::NotConnected)));
        drop(client);
        drop(server);
    }
}

// ------------------------------------------------------------ closing

/// Eight threads call `close()` at once while a ninth is blocked in
/// `read_str`: the link closes once (one event, one callback call), and
/// the read is released with a connection error. The read is seen blocked
/// in the socket before the closers start, so a read that merely began
/// after the close cannot pass for a released one.
#[test]
fn b07_close_from_eight_threads_at_once_closes_once_and_releases_everyone() {
    let _w = watchdog(Duration::from_secs(30));
    {
        let calls = CallbackRecorder::new();
        let builder = OneClientServer::builder()
            .name("close-x8")
            .connect_callback(calls.callback());
        let server = testing::start_server(builder).expect("server starts");
        let addr = server.local_addrs()[0];
        let client = testing::connect_client(&server, true).expect("client");
        client.set_read_timeout(Some(WAIT));
        calls.assert_next_connected(true, WAIT);
        let events = server.events();
        let barrier = Barrier::new(8);
        thread::scope(|s| {
            let reader = blocked::spawn(s, "read_str", In::Socket, || server.read_str());
            let closers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        server.close();
                        assert!(server.is_closed());
                        assert!(!server.connected());
                    })
                })
                .collect();
            for closer in closers {
                closer.join().expect("close() did not panic");
            }
            let read = reader.join();
            assert!(
                read.as_ref().is_err_and(Error::is_connection_error),
                "blocked read: {read:?}"
            );
        });
        // Exactly one disconnect, one `false`.
        assert!(matches!(
            events.recv_timeout(WAIT),
            Ok(ConnectionEvent::Disconnected { .. })
        ));
        assert!(events.try_recv().is_err(), "more than one event");
        assert_eq!(calls.drain(), [false]);
        assert_eq!(server.stats().disconnects, 1);
        let seen = client.read_str();
        assert!(
            seen.as_ref().is_err_and(Error::is_connection_error),
            "the client sees the close: {seen:?}"
        );
        let refused = TcpStream::connect_timeout(&addr, WAIT);
        assert!(refused.is_err(), "the listener still takes connections");
        assert!(matches!(
            server.wait_connected(WAIT),
            Err(Error::NotConnected)
        ));
    }
}

/// Calls `close` from eight threads at once (a barrier) while the connect
/// callback is busy, and panics if any of them returns before the
/// callback has finished: B7 and 1b say close() joins every background
/// thread, waiting for a running callback, and a close() that returns
/// while the callback still runs breaks that for its caller.
fn concurrent_closes_wait_for_the_callback(
    close: impl Fn() + Sync,
    release: crossbeam_channel::Sender<()>,
    finished: &AtomicBool,
) {
    let (returned_tx, returned) = unbounded();
    let barrier = Barrier::new(8);
    thread::scope(|s| {
        for i in 0..8 {
            let (close, barrier, returned_tx) = (&close, &barrier, returned_tx.clone());
            s.spawn(move || {
                barrier.wait();
                close();
                let _ = returned_tx.send((i, finished.load(Ordering::SeqCst)));
            });
        }
        // While the callback runs no close() may return; the window only
        // has to be long enough to see one return early, which a broken
        // close() does at once.
        let early: Vec<usize> = match returned.recv_timeout(QUIET) {
            Ok((i, _)) => std::iter::once(i)
                .chain(returned.try_iter().map(|(i, _)| i))
                .collect(),
            Err(_) => Vec::new(),
        };
        drop(release);
        assert!(
            early.is_empty(),
            "at least {} of 8 concurrent close() calls (threads {early:?}) returned while the connect \
             callback was still running: only the close() that took the thread handles joins them",
            early.len()
        );
    });
    let late: Vec<(usize, bool)> = returned.try_iter().collect();
    assert!(
        late.iter().all(|&(_, done)| done),
        "returned before the callback ended: {late:?}"
    );
}

/// A connect callback that reports it started, then stays busy until
/// released (or, at worst, for [`WAIT`]).
type BusyCallback = (
    crossbeam_channel::Receiver<()>,
    crossbeam_channel::Sender<()>,
    Arc<AtomicBool>,
);

fn busy_callback() -> (BusyCallback, impl Fn(bool) + Send + 'static) {
    let (entered_tx, entered) = bounded(1);
    let (release_tx, release) = bounded::<()>(0);
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    let callback = move |connected: bool| {
        if connected {
            let _ = entered_tx.send(());
            let _ = release.recv_timeout(WAIT);
            done.store(true, Ordering::SeqCst);
        }
    };
    ((entered, release_tx, finished), callback)
}

/// B7, 1b: every one of eight concurrent `close()` calls returns only
/// once the running callback has ended. Regression test: this was a bug,
/// `Endpoint::join_threads` handed every thread handle to the first caller
/// and the seven others returned at once (fixed in 3a774f1).
#[test]
fn b07_concurrent_server_closes_all_wait_for_the_running_callback() {
    let _w = watchdog(Duration::from_secs(30));
    let ((entered, release, finished), callback) = busy_callback();
    let builder = OneClientServer::builder()
        .name("close-waits-cb")
        .connect_callback(move |_, connected| callback(connected));
    let server = testing::start_server(builder).expect("server starts");
    let _peer = raw_client(&server);
    entered.recv_timeout(WAIT).expect("the callback is running");
    concurrent_closes_wait_for_the_callback(|| server.close(), release, &finished);
}

/// 1b: "Client::close() joins its threads and waits for a running
/// callback, as the server's close() does", from eight threads at once.
/// Regression test for the same bug as the server's (fixed in 3a774f1).
/// The client connects in the background: `connect()` would return only
/// once the callback had.
#[test]
fn b07_concurrent_client_closes_all_wait_for_the_running_callback() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder().name("close-waits-cb-srv"))
        .expect("server");
    let ((entered, release, finished), callback) = busy_callback();
    let client = testing::client_for(&server)
        .name("close-waits-cb-client")
        .connect_callback(move |_, connected| callback(connected))
        .start()
        .expect("client starts");
    entered.recv_timeout(WAIT).expect("the callback is running");
    concurrent_closes_wait_for_the_callback(|| client.close(), release, &finished);
}

// ------------------------------------------------------------ calls

/// Regression (robustness): `read_exact(n)` allocates `n` bytes up front
/// (`Vec::with_capacity(n)` in `FrameReader::read_exact`, src/frame.rs),
/// so a huge count, such as a corrupt 64-bit length prefix from the peer,
/// panics ("capacity overflow", for n > isize::MAX) or aborts the whole
/// process (allocation failure: `read_exact(1 << 44)` dies with SIGABRT),
/// where Python's `readexactly` just waits and ends in
/// `IncompleteReadError`. Expected: the bytes that came, at end of file.
#[test]
fn read_exact_of_a_huge_count_is_an_incomplete_read_not_a_panic() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = support::served("huge-read-exact", &calls);
    peer.write_all(b"0123456789").expect("ten bytes");
    drop(peer);
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        server.read_exact(usize::MAX)
    }));
    match read {
        Ok(Err(Error::IncompleteRead(e13))) => {
            let partial = e13.partial;
            let expected = e13.expected;
            assert_eq!(partial, b"0123456789");
            assert_eq!(expected, Some(usize::MAX));
        }
        Ok(other) => panic!("expected IncompleteRead, got {other:?}"),
        Err(_) => panic!(
            "read_exact(usize::MAX) panicked inside the crate instead of reading to end of file"
        ),
    }
}

/// An empty separator or terminator is refused with an error that names
/// which one, and the link goes on: `read_until(b"")`, `set_terminator`.
#[test]
fn an_empty_separator_or_terminator_is_refused_by_name() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = support::served("empty-separator", &calls);
    match server.read_until(b"") {
        Err(e @ Error::InvalidArgument(_)) => {
            assert!(
                e.to_string().contains("the separator must not be empty"),
                "{e}"
            )
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    match server.set_terminator(b"") {
        Err(e @ Error::InvalidArgument(_)) => {
            assert!(
                e.to_string().contains("the terminator must not be empty"),
                "{e}"
            )
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    peer.write_all(b"still here\r\n").expect("send");
    assert_eq!(server.read_str().expect("the link goes on"), "still here");
}
