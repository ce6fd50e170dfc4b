//! The connect callback and closing, SPEC section 2: B5 (the callback
//! fires on each change only, on its own thread), B6 (`close_client`,
//! `basic_close_client`) and B7 (`close`, drop). What a user can do wrong
//! inside a callback or with many closers at once is in user_faults.rs.

mod support;

use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use crossbeam_channel::unbounded;
use support::blocked::{self, In};
use support::{exchange_raw, expect_eof, raw_client, watchdog, QUIET, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

/// A server on 127.0.0.1, port 0, whose callback feeds `calls`.
fn server_with(calls: &CallbackRecorder) -> OneClientServer {
    testing::start_server(OneClientServer::builder().connect_callback(calls.callback()))
        .expect("server starts")
}

// ---------------------------------------------------------------- B5

#[test]
fn b05_callback_fires_only_on_change() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server = server_with(&calls);
    let client = testing::connect_client(&server, true).expect("client");
    calls.assert_next_connected(true, WAIT);
    expect_eof(raw_client(&server)); // rejected: no call
    server.close_client();
    server.close_client();
    server.basic_close_client();
    calls.assert_next_connected(false, WAIT);
    drop(client);
    calls.assert_no_more(QUIET);
    server.close();
    assert_eq!(
        calls.drain(),
        Vec::<bool>::new(),
        "close() with no client: no call"
    );
}

#[test]
fn b05_callback_runs_on_its_own_named_thread() {
    let _w = watchdog(Duration::from_secs(30));
    let (tx, rx) = unbounded();
    let server = testing::start_server(OneClientServer::builder().connect_callback(
        move |_, connected| {
            let me = thread::current();
            let _ = tx.send((connected, me.id(), me.name().map(str::to_owned)));
        },
    ))
    .expect("server starts");
    let client = testing::connect_client(&server, true).expect("client");
    drop(client);
    let test_thread = thread::current();
    for expected in [true, false] {
        let (connected, id, name) = rx.recv_timeout(WAIT).expect("callback");
        assert_eq!(connected, expected);
        assert_ne!(id, test_thread.id());
        let name = name.expect("the callback thread has a name");
        assert_ne!(Some(name.as_str()), test_thread.name());
    }
}

// ---------------------------------------------------------------- B6

fn closing_client_keeps_listening(basic: bool) {
    let calls = CallbackRecorder::new();
    let server = server_with(&calls);
    let peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    assert!(server.should_be_connected());
    let close = |s: &OneClientServer| {
        if basic {
            s.basic_close_client()
        } else {
            s.close_client()
        }
    };

    close(&server);
    expect_eof(peer);
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
    assert_eq!(server.should_be_connected(), basic);
    assert!(!server.is_closed());
    // Idempotent: no second call, nothing changes.
    close(&server);
    calls.assert_no_more(QUIET);
    assert_eq!(server.should_be_connected(), basic);

    // Still listening: the next client is served.
    let mut next = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    exchange_raw(&server, &mut next, "after close_client");
}

#[test]
fn b06_close_client_then_keeps_listening() {
    let _w = watchdog(Duration::from_secs(30));
    closing_client_keeps_listening(false);
}

#[test]
fn b06_basic_close_client_leaves_should_be_connected() {
    let _w = watchdog(Duration::from_secs(30));
    closing_client_keeps_listening(true);
}

#[test]
fn b06_close_client_without_client_does_nothing() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server = server_with(&calls);
    server.close_client();
    server.basic_close_client();
    calls.assert_no_more(QUIET);
    assert!(!server.is_closed() && !server.connected());
}

// ---------------------------------------------------------------- B7

/// Sends on `tx` when dropped: tells when the callback closure (owned by
/// the callback thread) is gone.
struct DropSignal(crossbeam_channel::Sender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[test]
fn b07_close_closes_everything_and_frees_the_port() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (gone_tx, gone) = unbounded();
    let mut record = calls.callback::<OneClientServer>();
    let signal = DropSignal(gone_tx);
    let server = testing::start_server(OneClientServer::builder().connect_callback(
        move |server: &OneClientServer, connected| {
            let _keep = &signal;
            record(server, connected);
        },
    ))
    .expect("server starts");
    let addr = server.local_addrs()[0];
    let peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);

    server.close();
    // close() returned: the callback has run and its thread is joined.
    assert_eq!(calls.drain(), vec![false]);
    assert!(
        gone.try_recv().is_ok(),
        "the callback thread still owns its closure: not joined"
    );
    assert!(server.is_closed() && !server.connected() && !server.should_be_connected());
    expect_eof(peer);
    let refused = TcpStream::connect(addr).expect_err("the listener is closed");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(matches!(
        server.wait_connected(WAIT),
        Err(Error::NotConnected)
    ));

    server.close(); // idempotent
    calls.assert_no_more(QUIET);

    // The port is free at once (the server's side of the closed connection
    // is in TIME_WAIT: on Unix SO_REUSEADDR lets a new listener bind
    // anyway; on Windows, where listeners set SO_EXCLUSIVEADDRUSE, which
    // is documented to refuse a rebind while a connection accepted on the
    // port is still active, this passes under Wine).
    let again = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(addr.port())
        .start()
        .expect("rebind the same port right after close()");
    let mut next = raw_client(&again);
    again.wait_connected(WAIT).expect("served");
    exchange_raw(&again, &mut next, "rebound");
}

#[test]
fn b07_drop_closes_like_close() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server = server_with(&calls);
    let port = server.port();
    let peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    drop(server);
    assert_eq!(calls.drain(), vec![false], "drop waits for the callback");
    expect_eof(peer);
    let again = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(port)
        .start();
    assert!(again.is_ok(), "rebind after drop: {again:?}");
}

/// `close()` with no client releases a `wait_connected` under way with
/// `NotConnected`. The wait is seen blocked before the close, so a wait
/// that merely began after it cannot pass for a released one.
#[test]
fn b07_close_without_client_and_wait_connected_released() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server = server_with(&calls);
    thread::scope(|s| {
        let waiter = blocked::spawn(s, "wait_connected", In::Futex, || {
            server.wait_connected(Duration::from_secs(60))
        });
        server.close();
        let waited = waiter.join();
        assert!(matches!(waited, Err(Error::NotConnected)), "{waited:?}");
    });
    assert!(server.is_closed());
    assert_eq!(calls.drain(), Vec::<bool>::new(), "no client: no call");
}
