//! OneClientServer behaviour, B1–B10, B17, B19, B20 of SPEC.md: one or
//! more tests per behaviour, each named after it.
//!
//! No sleep synchronises anything: waits are channels, `wait_connected`,
//! the callback recorder and blocking reads with timeouts. A short window
//! (`QUIET`) is only used to assert that something does NOT happen.

mod support;

use std::io::{BufReader, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, RecvTimeoutError};
use support::{expect_eof, raw_client, raw_connect, recv_line, send_line, watchdog, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

/// Window for asserting that nothing happens (no callback, a read still
/// blocked). Only ever used that way: nothing waits on it to be "enough".
const QUIET: Duration = Duration::from_millis(200);

/// A server on 127.0.0.1, port 0, whose callback feeds `calls`.
fn server_with(calls: &CallbackRecorder) -> OneClientServer {
    testing::start_server(OneClientServer::builder().connect_callback(calls.callback()))
        .expect("server starts")
}

/// A line each way between `server` and a connected crate `client`.
fn exchange(server: &OneClientServer, client: &Client, tag: &str) {
    client.set_read_timeout(Some(WAIT));
    server.set_read_timeout(Some(WAIT));
    client
        .write_str(&format!("to server {tag}"))
        .expect("client write");
    assert_eq!(
        server.read_str().expect("server read"),
        format!("to server {tag}")
    );
    server
        .write_str(&format!("to client {tag}"))
        .expect("server write");
    assert_eq!(
        client.read_str().expect("client read"),
        format!("to client {tag}")
    );
}

/// A line each way between `server` and a raw peer.
fn exchange_raw(server: &OneClientServer, peer: &mut TcpStream, tag: &str) {
    server.set_read_timeout(Some(WAIT));
    send_line(peer, &format!("to server {tag}"));
    assert_eq!(
        server.read_str().expect("server read"),
        format!("to server {tag}")
    );
    server
        .write_str(&format!("to client {tag}"))
        .expect("server write");
    assert_eq!(recv_line(peer), format!("to client {tag}"));
}

/// Starts a server on `builder`'s host, or None (with a note) when this
/// machine cannot bind IPv6 loopback.
fn start_or_skip_ipv6(builder: ServerBuilder, what: &str) -> Option<OneClientServer> {
    match builder.start() {
        Ok(server) => Some(server),
        Err(Error::Io(e)) if TcpListener::bind((LOCALHOST_IPV6, 0)).is_err() => {
            eprintln!("note: skipping {what}: IPv6 loopback unavailable ({e})");
            None
        }
        Err(e) => panic!("{what}: server does not start: {e}"),
    }
}

// ---------------------------------------------------------------- B1

#[test]
fn b01_start_binds_before_returning() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    assert_ne!(server.port(), 0);
    assert_eq!(server.host(), Some(LOCALHOST_IPV4));
    let expected: SocketAddr = (LOCALHOST_IPV4.parse::<IpAddr>().unwrap(), server.port()).into();
    assert_eq!(server.local_addrs(), vec![expected]);
    // No retry: the listener exists as soon as start() returns.
    let mut peer = TcpStream::connect(expected).expect("connect right after start()");
    peer.set_read_timeout(Some(WAIT)).unwrap();
    server.wait_connected(WAIT).expect("served");
    exchange_raw(&server, &mut peer, "b01");
}

#[test]
fn b01_any_host_port_zero_lists_each_socket_and_port_is_zero() {
    let _w = watchdog(Duration::from_secs(30));
    let Some(server) =
        start_or_skip_ipv6(OneClientServer::builder().any_host().port(0), "any_host")
    else {
        return;
    };
    assert_eq!(server.host(), None);
    assert_eq!(server.port(), 0, "two sockets, two ports: ambiguous");
    let addrs = server.local_addrs();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert!(
        addrs.iter().any(|a| a.is_ipv4()) && addrs.iter().any(|a| a.is_ipv6()),
        "{addrs:?}"
    );
    for addr in &addrs {
        assert!(addr.ip().is_unspecified(), "{addr}");
        assert_ne!(addr.port(), 0, "{addr}");
    }
}

#[test]
fn b01_port_in_use_is_an_io_error_not_a_panic() {
    let _w = watchdog(Duration::from_secs(30));
    let taken = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("std listener");
    let port = taken.local_addr().unwrap().port();
    let result = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(port)
        .start();
    match result {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}"),
        other => panic!("expected Error::Io(AddrInUse), got {other:?}"),
    }
    // The same against one of our own servers.
    let first = testing::start_server(OneClientServer::builder()).expect("first server");
    let second = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(first.port())
        .start();
    assert!(matches!(second, Err(Error::Io(_))), "{second:?}");
}

// ---------------------------------------------------------------- B2

#[test]
fn b02_second_client_is_closed_at_once_first_untouched() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server = server_with(&calls);
    let client = testing::connect_client(&server, true).expect("first client");
    calls.assert_next_connected(true, WAIT);
    let first_peer = server.peer_addr();
    exchange(&server, &client, "before");

    let second = raw_client(&server);
    expect_eof(second);

    exchange(&server, &client, "after");
    assert!(server.connected() && client.connected());
    assert_eq!(
        server.peer_addr(),
        first_peer,
        "the first client is still the one served"
    );
    assert_eq!(server.stats().connections_rejected, 1);
    calls.assert_no_more(QUIET);
}

#[test]
fn b02_five_clients_at_once_exactly_one_served() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    let addr = support::dial_addr(&server);
    let barrier = Arc::new(Barrier::new(5));
    let connecting: Vec<_> = (0..5)
        .map(|_| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                raw_connect(addr)
            })
        })
        .collect();
    let streams: Vec<TcpStream> = connecting
        .into_iter()
        .map(|t| t.join().expect("connect"))
        .collect();

    server.wait_connected(WAIT).expect("one is served");
    let served_addr = server.peer_addr().expect("peer");
    let (mut served, rejected): (Vec<_>, Vec<_>) = streams
        .into_iter()
        .partition(|s| s.local_addr().unwrap() == served_addr);
    assert_eq!(served.len(), 1, "the served peer is one of the five");
    assert_eq!(rejected.len(), 4);
    for stream in rejected {
        expect_eof(stream);
    }
    // The one served does not see EOF: it gets the server's line.
    exchange_raw(&server, &mut served[0], "b02");
    let stats = server.stats();
    assert_eq!(
        (stats.connections_accepted, stats.connections_rejected),
        (1, 4),
        "{stats:?}"
    );
}

// ---------------------------------------------------------------- B3

#[test]
fn b03_monitor_notices_a_dropped_client() {
    let _w = watchdog(Duration::from_secs(30));
    // Scheduling slack on a loaded 2-core CI machine; the spec's bound is
    // one interval (100 ms by default) plus slack.
    const SLACK: Duration = Duration::from_secs(2);
    let calls = CallbackRecorder::new();
    let server = server_with(&calls);
    let client = testing::connect_client(&server, true).expect("client");
    calls.assert_next_connected(true, WAIT);
    drop(client);
    let dropped = Instant::now();
    calls.assert_next_connected(false, DEFAULT_MONITOR_CONNECTION_INTERVAL + SLACK);
    eprintln!("b03: drop noticed after {:?}", dropped.elapsed());
    assert!(!server.connected());
    assert!(
        server.should_be_connected(),
        "the peer left: not closed on purpose"
    );
    assert!(matches!(server.read_str(), Err(Error::NotConnected)));
}

/// B3 with a read timeout far shorter than the monitor interval: the
/// monitor's wait on the socket obeys that timeout, and used to wake at its
/// pace (every millisecond) on an idle link. It now looks once per
/// interval, and still notices the drop.
#[test]
fn b03_a_short_read_timeout_does_not_wake_the_idle_monitor_at_its_pace() {
    let _w = watchdog(Duration::from_secs(30));
    const SLACK: Duration = Duration::from_secs(2);
    // A measurement window, not a wait for something to happen.
    const WINDOW: Duration = Duration::from_millis(500);
    let calls = CallbackRecorder::new();
    let server = testing::start_server(
        OneClientServer::builder()
            .name("pace")
            .connect_callback(calls.callback()),
    )
    .expect("server starts");
    server.set_read_timeout(Some(Duration::from_millis(1)));
    let peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    let monitor = "tcpip-monitor p"; // "tcpip-monitor pace", cut to 15 bytes
    let before = support::context_switches(monitor).expect("the monitor thread");
    thread::sleep(WINDOW);
    let woke = support::context_switches(monitor).expect("the monitor thread") - before;
    // Once per 100 ms interval is about 10 switches here (the peek and the
    // wait each wake it); at the timeout's pace, 60 or more (the kernel
    // rounds 1 ms up to its tick).
    assert!(
        woke < 30,
        "the idle monitor woke {woke} times in {WINDOW:?}"
    );
    drop(peer);
    calls.assert_next_connected(false, DEFAULT_MONITOR_CONNECTION_INTERVAL + SLACK);
}

// ---------------------------------------------------------------- B4

#[test]
fn b04_without_monitor_new_client_replaces_dropped_one() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server = testing::start_server(
        OneClientServer::builder()
            .monitor_connection_interval(Duration::ZERO)
            .connect_callback(calls.callback()),
    )
    .expect("server starts");
    let first = testing::connect_client(&server, true).expect("first client");
    calls.assert_next_connected(true, WAIT);
    drop(first);
    assert!(
        server.connected(),
        "no monitor, no read: nobody has noticed yet"
    );

    let second = testing::client_for(&server)
        .connect()
        .expect("second client");
    calls.assert_next_connected(false, WAIT);
    calls.assert_next_connected(true, WAIT);
    exchange(&server, &second, "b04");
    calls.assert_no_more(QUIET);
    assert_eq!(server.stats().connections_rejected, 0);
}

/// Regression: a client that connects right after the old one dropped
/// was sometimes turned away with the monitor on, when the monitor's
/// end-of-file check and `attach`'s ran at the same moment (each took the
/// other's look at the receive buffer for a busy reader). Both now run
/// under the slot lock. A race, so this drives many drop-then-reconnect
/// rounds on four servers for a few seconds.
#[test]
fn b04_client_right_after_a_drop_is_never_turned_away() {
    let _w = watchdog(Duration::from_secs(60));
    const BUDGET: Duration = Duration::from_secs(3);
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let (stop, rounds) = (stop.clone(), rounds.clone());
            thread::spawn(move || {
                let calls = CallbackRecorder::new();
                let server = server_with(&calls); // default monitor: 100 ms
                while !stop.load(Relaxed) && started.elapsed() < BUDGET {
                    rounds.fetch_add(1, Relaxed);
                    let peer = raw_client(&server);
                    calls.assert_next_connected(true, WAIT);
                    drop(peer);
                    let next = raw_client(&server);
                    calls.assert_next_connected(false, WAIT);
                    match calls.next_connected(WAIT) {
                        Some(true) => {}
                        Some(false) => panic!("two false calls in a row"),
                        None => {
                            expect_eof(next);
                            assert_eq!(server.stats().connections_rejected, 1);
                            stop.store(true, Relaxed);
                            return false;
                        }
                    }
                    drop(next);
                    calls.assert_next_connected(false, WAIT);
                }
                true
            })
        })
        .collect();
    let all_accepted = loops.into_iter().all(|l| l.join().expect("loop"));
    assert!(
        all_accepted,
        "a client connecting right after the old one dropped was turned away \
         (after {} rounds): Endpoint::attach's is_dead() lost a try_lock race \
         with the monitor's",
        rounds.load(Relaxed)
    );
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

#[test]
fn b05_panicking_callback_is_logged_and_next_change_still_called() {
    let _w = watchdog(Duration::from_secs(30));
    support::init_log();
    let name = "b05-panicking-callback";
    let calls = CallbackRecorder::new();
    let mut record = calls.callback::<OneClientServer>();
    let server = testing::start_server(OneClientServer::builder().name(name).connect_callback(
        move |server: &OneClientServer, connected| {
            record(server, connected);
            if connected {
                panic!("deliberate panic in the connect callback");
            }
        },
    ))
    .expect("server starts");
    for round in 0..2 {
        let client = testing::connect_client(&server, true).expect("client");
        calls.assert_next_connected(true, WAIT);
        exchange(&server, &client, "after a panic");
        drop(client);
        calls.assert_next_connected(false, WAIT);
        assert!(!server.connected(), "round {round}");
    }
    assert!(
        support::logged(&[name, "panicked"]),
        "the panic was not logged"
    );
    server.close();
    assert!(server.is_closed());
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

#[test]
fn b05_close_inside_callback_does_not_deadlock() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let mut record = calls.callback::<OneClientServer>();
    let server = testing::start_server(OneClientServer::builder().connect_callback(
        move |server: &OneClientServer, connected| {
            record(server, connected);
            if connected {
                server.close();
            }
        },
    ))
    .expect("server starts");
    let peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    calls.assert_next_connected(false, WAIT);
    expect_eof(peer);
    assert!(server.is_closed());
    drop(server); // joins the callback thread, which close() could not
    calls.assert_no_more(QUIET);
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
    // is in TIME_WAIT: SO_REUSEADDR lets a new listener bind anyway).
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

#[test]
fn b07_close_without_client_and_wait_connected_released() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server = Arc::new(server_with(&calls));
    let (tx, rx) = bounded(1);
    let waiter = {
        let server = server.clone();
        thread::spawn(move || {
            tx.send(server.wait_connected(Duration::from_secs(60)))
                .unwrap()
        })
    };
    server.close();
    let waited = rx
        .recv_timeout(WAIT)
        .expect("wait_connected released by close()");
    assert!(matches!(waited, Err(Error::NotConnected)), "{waited:?}");
    waiter.join().unwrap();
    assert!(server.is_closed());
    assert_eq!(calls.drain(), Vec::<bool>::new(), "no client: no call");
}

/// Regression: of two threads calling close() at once, the second
/// returned while the callback was still running (the first had taken
/// every thread handle to join). Now a second closer waits for the first.
#[test]
fn b07_concurrent_close_waits_for_the_running_callback() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let mut record = calls.callback::<OneClientServer>();
    let (release_tx, release_rx) = bounded::<()>(1);
    let server = Arc::new(
        testing::start_server(OneClientServer::builder().connect_callback(
            move |server: &OneClientServer, connected| {
                record(server, connected);
                if !connected {
                    let _ = release_rx.recv(); // a slow callback, until released
                }
            },
        ))
        .expect("server starts"),
    );
    let _peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    let (done_tx, done) = unbounded();
    let closer = |who: &'static str| {
        let (server, done_tx) = (server.clone(), done_tx.clone());
        thread::spawn(move || {
            server.close();
            done_tx.send(who).unwrap();
        })
    };
    let first = closer("first");
    calls.assert_next_connected(false, WAIT); // the callback is running now
    let second = closer("second");
    let early = done.recv_timeout(QUIET);
    release_tx.send(()).unwrap();
    first.join().unwrap();
    second.join().unwrap();
    if let Ok(who) = early {
        panic!("the {who} of two concurrent close() calls returned while the callback was still running");
    }
}

// ---------------------------------------------------------------- B8

/// Every read and write of `link` fails at once with a connection error.
#[track_caller]
fn assert_every_call_fails_at_once(link: &impl Link, what: &str) {
    let started = Instant::now();
    let mut results: Vec<(&str, Option<Error>)> = vec![
        ("read", link.read(10).err()),
        ("read_to_end", link.read_to_end().err()),
        ("read_exact", link.read_exact(10).err()),
        ("read_line", link.read_line().err()),
        ("read_until", link.read_until(b"x").err()),
        ("read_str", link.read_str().err()),
        ("read_json", link.read_json::<serde_json::Value>().err()),
        ("try_read_str", link.try_read_str().err()),
        (
            "try_read_json",
            link.try_read_json::<serde_json::Value>().err(),
        ),
        ("write", link.write(b"x").err()),
        ("write_lines", link.write_lines(["a", "b"]).err()),
        ("write_str", link.write_str("x").err()),
        ("write_json", link.write_json(&[1, 2]).err()),
    ];
    for (method, err) in results.drain(..) {
        match err {
            Some(e) => assert!(e.is_connection_error(), "{what}: {method} gave {e:?}"),
            None => panic!("{what}: {method} succeeded with no peer"),
        }
    }
    assert!(started.elapsed() < WAIT, "{what}: the calls blocked");
}

#[test]
fn b08_every_call_fails_at_once_without_client() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    assert_every_call_fails_at_once(&server, "never connected");

    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    server.close_client();
    assert_every_call_fails_at_once(&server, "after close_client");
    drop(peer);

    server.close();
    assert_every_call_fails_at_once(&server, "after close");
}

#[test]
fn b08_every_call_fails_at_once_on_a_closed_client() {
    let _w = watchdog(Duration::from_secs(30));
    assert_every_call_fails_at_once(&Client::closed(), "Client::closed()");
}

// ---------------------------------------------------------------- B9

/// A server with a raw peer that sends and reads nothing.
fn served_silent_peer() -> (Arc<OneClientServer>, TcpStream) {
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    (Arc::new(server), peer)
}

fn blocked_read_is_released_by(close: fn(&OneClientServer)) {
    let (server, _peer) = served_silent_peer();
    let (tx, rx) = bounded(1);
    let reader = {
        let server = server.clone();
        thread::spawn(move || tx.send(server.read_str()).unwrap())
    };
    assert!(
        matches!(rx.recv_timeout(QUIET), Err(RecvTimeoutError::Timeout)),
        "read_str returned with nothing sent"
    );
    close(&server);
    let result = rx
        .recv_timeout(WAIT)
        .expect("the blocked read was not released");
    let err = result.expect_err("read_str succeeded");
    assert!(err.is_connection_error(), "{err:?}");
    reader.join().unwrap();
}

fn blocked_write_is_released_by(close: fn(&OneClientServer)) {
    let (server, _peer) = served_silent_peer();
    let (progress_tx, progress) = unbounded();
    let (done_tx, done) = bounded(1);
    let writer = {
        let server = server.clone();
        thread::spawn(move || {
            let chunk = vec![b'w'; 1 << 20];
            loop {
                if let Err(e) = server.write(&chunk) {
                    done_tx.send(e).unwrap();
                    return;
                }
                progress_tx.send(()).unwrap();
            }
        })
    };
    // The peer never reads: the writes stop once the socket buffers are
    // full. Wait until a whole window passes without one completing.
    while progress.recv_timeout(QUIET).is_ok() {}
    assert!(done.try_recv().is_err(), "a write failed before close");
    close(&server);
    let err = done
        .recv_timeout(WAIT)
        .expect("the blocked write was not released");
    assert!(err.is_connection_error(), "{err:?}");
    writer.join().unwrap();
}

#[test]
fn b09_blocked_read_released_by_close_client() {
    let _w = watchdog(Duration::from_secs(30));
    blocked_read_is_released_by(OneClientServer::close_client);
}

#[test]
fn b09_blocked_read_released_by_close() {
    let _w = watchdog(Duration::from_secs(30));
    blocked_read_is_released_by(OneClientServer::close);
}

#[test]
fn b09_blocked_write_released_by_close_client() {
    let _w = watchdog(Duration::from_secs(30));
    blocked_write_is_released_by(OneClientServer::close_client);
}

#[test]
fn b09_blocked_write_released_by_close() {
    let _w = watchdog(Duration::from_secs(30));
    blocked_write_is_released_by(OneClientServer::close);
}

// ---------------------------------------------------------------- B10

/// While a thread is blocked reading on `side`, this thread writes on it.
fn write_while_reading<L: Link + Send + Sync + 'static>(side: Arc<L>, other: &impl Link) {
    let (tx, rx) = bounded(1);
    let reader = {
        let side = side.clone();
        thread::spawn(move || tx.send(side.read_str()).unwrap())
    };
    assert!(matches!(
        rx.recv_timeout(QUIET),
        Err(RecvTimeoutError::Timeout)
    ));
    side.write_str("written while a read waits")
        .expect("write during a read");
    assert_eq!(
        other.read_str().expect("other side reads"),
        "written while a read waits"
    );
    other.write_str("now the read").expect("other side writes");
    let got = rx.recv_timeout(WAIT).expect("the read completes");
    assert_eq!(got.expect("read_str"), "now the read");
    reader.join().unwrap();
}

#[test]
fn b10_write_proceeds_while_a_read_is_blocked() {
    let _w = watchdog(Duration::from_secs(30));
    let server =
        Arc::new(testing::start_server(OneClientServer::builder()).expect("server starts"));
    let client = Arc::new(testing::connect_client(&server, true).expect("client"));
    server.set_read_timeout(Some(WAIT));
    client.set_read_timeout(Some(WAIT));
    write_while_reading(server.clone(), &*client);
    write_while_reading(client, &*server);
}

fn line_of(writer: usize, index: usize) -> String {
    // 198 bytes of text + "\r\n": each writer's own fill byte shows any mix.
    let head = format!("w{writer}-{index:04}-");
    let fill = char::from(b'a' + writer as u8)
        .to_string()
        .repeat(198 - head.len());
    head + &fill
}

#[test]
fn b10_concurrent_write_str_never_interleaves() {
    let _w = watchdog(Duration::from_secs(30));
    const WRITERS: usize = 4;
    const LINES: usize = 1000;
    let server =
        Arc::new(testing::start_server(OneClientServer::builder()).expect("server starts"));
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    let start = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (server, start) = (server.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for i in 0..LINES {
                    server.write_str(&line_of(w, i)).expect("write_str");
                }
            })
        })
        .collect();
    // Read at the same time, so no writer waits on a full buffer for long.
    let mut reader = BufReader::new(peer);
    let mut next = [0usize; WRITERS];
    for _ in 0..WRITERS * LINES {
        let line = support::recv_buffered_line(&mut reader);
        let w = line[1..line.find('-').expect("a writer tag")]
            .parse::<usize>()
            .expect("writer");
        assert_eq!(line, line_of(w, next[w]), "mangled or out of order");
        next[w] += 1;
    }
    assert_eq!(next, [LINES; WRITERS]);
    for writer in writers {
        writer.join().unwrap();
    }
}

#[test]
fn b10_large_concurrent_writes_never_interleave() {
    let _w = watchdog(Duration::from_secs(30));
    const WRITERS: usize = 4;
    const WRITES: usize = 16;
    const SIZE: usize = 256 * 1024; // far above one send() on loopback
    let server =
        Arc::new(testing::start_server(OneClientServer::builder()).expect("server starts"));
    let mut peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let server = server.clone();
            thread::spawn(move || {
                let block = vec![b'A' + w as u8; SIZE];
                for _ in 0..WRITES {
                    server.write(&block).expect("write");
                }
            })
        })
        .collect();
    let mut received = vec![0u8; WRITERS * WRITES * SIZE];
    peer.read_exact(&mut received).expect("every byte arrives");
    for writer in writers {
        writer.join().unwrap();
    }
    // Every run of one byte is a whole number of blocks.
    let mut totals = [0usize; WRITERS];
    for run in received.chunk_by(|a, b| a == b) {
        assert_eq!(
            run.len() % SIZE,
            0,
            "a write of {SIZE} bytes was split by another ({})",
            run.len()
        );
        totals[usize::from(run[0] - b'A')] += run.len();
    }
    assert_eq!(totals, [WRITES * SIZE; WRITERS]);
}

// ---------------------------------------------------------------- B17

/// Socket options of one of this process's sockets, found by its
/// addresses among /proc/self/fd. Linux only: the crate does not expose
/// its sockets, and this reads them without touching the crate.
#[cfg(target_os = "linux")]
#[derive(Debug, PartialEq)]
struct TcpOptions {
    nodelay: bool,
    keepalive: bool,
    time: Duration,
    interval: Duration,
    retries: u32,
    user_timeout: Option<Duration>,
}

#[cfg(target_os = "linux")]
fn socket_options(local: SocketAddr, peer: SocketAddr) -> TcpOptions {
    use std::os::fd::{BorrowedFd, RawFd};
    let entries = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd");
    for entry in entries.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: only getsockname/getpeername/getsockopt go through this
        // borrow: on an fd closed or reused meanwhile by another test they
        // fail or describe another socket, which the address check skips.
        // The socket we want belongs to a connection this test holds open.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let addrs = (
            sock.local_addr().ok().and_then(|a| a.as_socket()),
            sock.peer_addr().ok().and_then(|a| a.as_socket()),
        );
        if addrs == (Some(local), Some(peer)) {
            return TcpOptions {
                nodelay: sock.tcp_nodelay().expect("TCP_NODELAY"),
                keepalive: sock.keepalive().expect("SO_KEEPALIVE"),
                time: sock.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
                interval: sock.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
                retries: sock.tcp_keepalive_retries().expect("TCP_KEEPCNT"),
                user_timeout: sock.tcp_user_timeout().expect("TCP_USER_TIMEOUT"),
            };
        }
    }
    panic!("no socket {local} -> {peer} in this process");
}

/// With the default dead-peer bound (10 s): keepalive probes after 5 s,
/// 4 of them 1 s apart, and TCP_USER_TIMEOUT 10 s.
#[cfg(target_os = "linux")]
fn expected_options() -> TcpOptions {
    TcpOptions {
        nodelay: true,
        keepalive: true,
        time: DEFAULT_DEAD_PEER_TIMEOUT / 2,
        interval: Duration::from_secs(1),
        retries: KEEPALIVE_PROBES,
        user_timeout: Some(DEFAULT_DEAD_PEER_TIMEOUT),
    }
}

/// `dead_peer_timeout(ZERO)`: the Python reference's keepalive, no user
/// timeout.
#[cfg(target_os = "linux")]
#[test]
fn b17_without_a_dead_peer_bound_the_python_keepalive_is_set() {
    let _w = watchdog(Duration::from_secs(30));
    let builder = OneClientServer::builder().dead_peer_timeout(Duration::ZERO);
    let server = testing::start_server(builder).expect("server starts");
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    let accepted = socket_options(peer.peer_addr().unwrap(), peer.local_addr().unwrap());
    let python = TcpOptions {
        nodelay: true,
        keepalive: true,
        time: KEEPALIVE_TIME,
        interval: KEEPALIVE_INTERVAL,
        retries: KEEPALIVE_PROBES,
        user_timeout: None,
    };
    assert_eq!(accepted, python);
}

#[cfg(target_os = "linux")]
#[test]
fn b17_accepted_socket_has_keepalive_and_nodelay() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    let accepted = socket_options(peer.peer_addr().unwrap(), peer.local_addr().unwrap());
    assert_eq!(accepted, expected_options());
}

#[cfg(target_os = "linux")]
#[test]
fn b17_client_socket_has_keepalive_and_nodelay() {
    let _w = watchdog(Duration::from_secs(30));
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("std listener");
    let port = listener.local_addr().unwrap().port();
    let client = Client::builder().port(port).connect().expect("client");
    let (theirs, _) = listener.accept().expect("accept");
    let options = socket_options(theirs.peer_addr().unwrap(), theirs.local_addr().unwrap());
    assert_eq!(options, expected_options());
    drop(client);
}

#[test]
fn b17_small_writes_are_not_delayed() {
    let _w = watchdog(Duration::from_secs(30));
    // Two small writes then a wait for the reply: with Nagle's algorithm
    // the second write waits for the ACK the peer delays (40 ms on Linux),
    // so 200 rounds would take seconds. TCP_NODELAY makes each round
    // sub-millisecond. The bound only catches such stalls.
    const ROUNDS: u32 = 200;
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    server.set_read_timeout(Some(WAIT));
    let mut peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    let started = Instant::now();
    for _ in 0..ROUNDS {
        server.write(b"p").expect("first half");
        server.write(b"ing\r\n").expect("second half");
        assert_eq!(recv_line(&mut peer), "ping");
        send_line(&mut peer, "pong");
        assert_eq!(server.read_str().expect("reply"), "pong");
    }
    let took = started.elapsed();
    eprintln!("b17: {ROUNDS} split-write round trips in {took:?}");
    assert!(
        took < Duration::from_secs(4),
        "small writes stalled: {took:?} for {ROUNDS} round trips"
    );
}

// ---------------------------------------------------------------- B19

#[test]
fn b19_reconnect_many_times() {
    let _w = watchdog(Duration::from_secs(60));
    const CYCLES: usize = 20;
    let calls = CallbackRecorder::new();
    let server = server_with(&calls);
    for cycle in 0..CYCLES {
        let client = testing::connect_client(&server, true).expect("client");
        calls.assert_next_connected(true, WAIT);
        exchange(&server, &client, &cycle.to_string());
        if cycle % 2 == 0 {
            drop(client);
        } else {
            server.close_client();
            let err = client.read_str().expect_err("the server hung up");
            assert!(err.is_connection_error(), "{err:?}");
        }
        calls.assert_next_connected(false, WAIT);
        assert!(!server.connected(), "cycle {cycle}");
    }
    calls.assert_no_more(QUIET);
    let stats = server.stats();
    assert_eq!(
        (stats.connections_accepted, stats.disconnects),
        (CYCLES as u64, CYCLES as u64)
    );
    assert_eq!(stats.connections_rejected, 0);
}

// ---------------------------------------------------------------- B20

fn exchange_on(host: &str) {
    let Some(server) = start_or_skip_ipv6(OneClientServer::builder().host(host), host) else {
        return;
    };
    let want: IpAddr = host.parse().unwrap();
    assert_eq!(server.local_addrs()[0].ip(), want);
    for round in 0..2 {
        let client = testing::connect_client(&server, true).expect("client");
        assert_eq!(server.peer_addr().expect("peer").ip(), want);
        exchange(&server, &client, &format!("{host} round {round}"));
        server.close_client();
        assert!(client.read_str().unwrap_err().is_connection_error());
    }
}

#[test]
fn b20_ipv4_loopback() {
    let _w = watchdog(Duration::from_secs(30));
    exchange_on(LOCALHOST_IPV4);
}

#[test]
fn b20_ipv6_loopback() {
    let _w = watchdog(Duration::from_secs(30));
    exchange_on(LOCALHOST_IPV6);
}

#[test]
fn b20_any_host_serves_both_families() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let builder = OneClientServer::builder()
        .any_host()
        .connect_callback(calls.callback());
    let Some(server) = start_or_skip_ipv6(builder, "any_host") else {
        return;
    };
    for addr in server.local_addrs() {
        let mut peer = raw_connect(support::loopback(addr));
        calls.assert_next_connected(true, WAIT);
        exchange_raw(&server, &mut peer, &addr.to_string());
        server.close_client();
        expect_eof(peer);
        calls.assert_next_connected(false, WAIT);
    }
}
