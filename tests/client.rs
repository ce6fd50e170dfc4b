//! The client (behaviour B18 of ARCHITECTURE.md): connecting, closing,
//! heartbeats, its callback (B5), reconnecting (also the first connect,
//! with `connect_in_background()`) and the backoff.

mod support;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::blocked::{self, In};
use support::{watchdog, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

fn next(events: &crossbeam_channel::Receiver<ConnectionEvent>) -> ConnectionEvent {
    events.recv_timeout(WAIT).expect("an event in time")
}

// ---------------------------------------------------------------- B18

#[test]
fn b18_connect_fails_clearly_when_nobody_listens() {
    let _w = watchdog(Duration::from_secs(30));
    let port = {
        let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
        listener.local_addr().expect("addr").port()
    };
    match Client::builder().port(port).connect() {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected a refused connection, got {other:?}"),
    }
    assert!(matches!(
        Client::builder().connect(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Client::builder()
            .port(port)
            .connect_timeout(Duration::ZERO)
            .connect(),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn b18_close_clears_should_be_connected_and_basic_close_keeps_it() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    for basic in [false, true] {
        let client = testing::connect_client(&server, true).expect("client");
        assert!(client.connected() && client.should_be_connected() && !client.is_closed());
        if basic {
            client.basic_close();
        } else {
            client.close();
        }
        assert!(client.is_closed() && !client.connected());
        assert_eq!(client.should_be_connected(), basic);
        assert!(client.write_str("x").unwrap_err().is_connection_error());
        // The server frees its slot for the next round.
        assert!(server.read_str().unwrap_err().is_connection_error());
    }
}

#[test]
fn b18_closed_client_is_closed_from_birth() {
    let _w = watchdog(Duration::from_secs(30));
    let client = Client::closed();
    assert!(client.is_closed() && !client.connected() && !client.should_be_connected());
    assert_eq!((client.host(), client.port()), ("", 0));
    assert!(client.read_str().unwrap_err().is_connection_error());
    assert!(client.read(1).unwrap_err().is_connection_error());
    assert!(client.write(b"x").unwrap_err().is_connection_error());
    assert!(client.write_json(&1).unwrap_err().is_connection_error());
    client.close();
}

#[test]
fn b18_heartbeat_client_sends_heartbeat_lines() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    server.set_read_timeout(Some(WAIT));
    let _client = testing::client_for(&server)
        .heartbeat(Some(Duration::from_millis(20)))
        .connect()
        .expect("client");
    server.wait_connected(WAIT).expect("connected");
    for _ in 0..3 {
        assert_eq!(server.read_str().expect("heartbeat").as_bytes(), HEARTBEAT);
    }
}

#[test]
fn b05_client_callback_sees_each_change() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let calls = CallbackRecorder::new();
    let client = testing::client_for(&server)
        .connect_callback(calls.callback())
        .connect()
        .expect("client");
    calls.assert_next_connected(true, WAIT);
    server.wait_connected(WAIT).expect("connected");
    server.close_client();
    calls.assert_next_connected(false, WAIT);
    assert!(client.should_be_connected(), "the server hung up, not us");
    client.close();
    calls.assert_no_more(Duration::from_millis(100));
}

/// A client callback that holds its first `true` call until told, and
/// says when it is entered and whether it has returned.
struct HeldCallback {
    entered: crossbeam_channel::Receiver<()>,
    release: crossbeam_channel::Sender<()>,
    returned: Arc<AtomicBool>,
}

impl HeldCallback {
    fn new() -> (HeldCallback, impl FnMut(&Client, bool) + Send + 'static) {
        let (entered_tx, entered) = crossbeam_channel::unbounded();
        let (release, release_rx) = crossbeam_channel::unbounded::<()>();
        let returned = Arc::new(AtomicBool::new(false));
        let flag = returned.clone();
        let callback = move |_: &Client, connected: bool| {
            if connected && !flag.load(Ordering::SeqCst) {
                let _ = entered_tx.send(());
                // Bounded, so that a broken test fails instead of hanging.
                let _ = release_rx.recv_timeout(WAIT);
                flag.store(true, Ordering::SeqCst);
            }
        };
        let held = HeldCallback {
            entered,
            release,
            returned,
        };
        (held, callback)
    }
}

/// As Python's `start_task`, done once `connect_callback(True)` has run:
/// `connect()` returns only once the callback's `true` call has returned.
/// The call is seen blocked while the callback holds it.
#[test]
fn connect_returns_only_after_the_callback_has_returned() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let (held, callback) = HeldCallback::new();
    let builder = testing::client_for(&server).connect_callback(callback);
    std::thread::scope(|s| {
        let connecting = blocked::spawn(s, "connect()", In::Futex, move || builder.connect());
        held.entered
            .recv_timeout(WAIT)
            .expect("the callback is called");
        connecting.assert_not_returned();
        held.release.send(()).expect("release");
        let client = connecting.join().expect("connects");
        assert!(
            held.returned.load(Ordering::SeqCst),
            "connect() returned before the callback"
        );
        assert!(client.connected());
    });
}

/// A link that drops while `connect()` waits for the callback's `true`
/// call: `connect()` still returns `Ok`, and the callback's `false` call
/// follows once the `true` call has returned.
#[test]
fn connect_returns_ok_when_the_link_drops_during_the_callback() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded::<()>();
    let (calls_tx, calls) = crossbeam_channel::unbounded();
    let callback = move |_: &Client, connected: bool| {
        if connected {
            let _ = entered_tx.send(());
            let _ = release_rx.recv_timeout(WAIT);
        }
        let _ = calls_tx.send(connected);
    };
    let builder = testing::client_for(&server).connect_callback(callback);
    std::thread::scope(|s| {
        let connecting = s.spawn(move || builder.connect());
        entered.recv_timeout(WAIT).expect("the callback is called");
        server
            .wait_connected(WAIT)
            .expect("the server has the client");
        server.close_client();
        release.send(()).expect("release");
        let client = connecting.join().expect("joined").expect("connect() is Ok");
        assert_eq!(calls.recv_timeout(WAIT), Ok(true), "the true call first");
        assert_eq!(calls.recv_timeout(WAIT), Ok(false), "then the drop");
        assert!(!client.connected());
        assert!(client.should_be_connected(), "the server hung up, not us");
    });
}

/// The background-connecting client does not wait for the callback:
/// `connect_in_background()` returns while the callback's `true` call is
/// still running.
#[test]
fn connect_in_background_does_not_wait_for_the_callback() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let (held, callback) = HeldCallback::new();
    let client = testing::client_for(&server)
        .connect_callback(callback)
        .connect_in_background()
        .expect("starts");
    held.entered
        .recv_timeout(WAIT)
        .expect("the callback is called");
    assert!(
        !held.returned.load(Ordering::SeqCst),
        "start() waited for the callback"
    );
    held.release.send(()).expect("release");
    client.wait_connected(WAIT).expect("connected");
}

// ---------------------------------------------------------------- reconnecting

#[test]
fn reconnecting_client_comes_back_after_the_server_restarts() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let port = server.port();
    let backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(100),
    };
    let client = testing::client_for(&server)
        .reconnect(backoff)
        .connect()
        .expect("client");
    let events = client.events();
    server.wait_connected(WAIT).expect("connected");
    server.close();
    assert!(matches!(
        next(&events),
        ConnectionEvent::Disconnected { .. }
    ));
    assert!(matches!(client.write_str("down"), Err(Error::NotConnected)));
    assert!(matches!(client.read_str(), Err(Error::NotConnected)));

    let server = OneClientServer::builder()
        .port(port)
        .start()
        .expect("same port again");
    assert!(next(&events).is_connected());
    server.wait_connected(WAIT).expect("server sees it");
    client.write_str("back").expect("write");
    server.set_read_timeout(Some(WAIT));
    assert_eq!(server.read_str().expect("line"), "back");
    assert!(client.stats().connections_accepted >= 2);

    // close() stops the reconnect thread promptly even while the server is away.
    server.close();
    assert!(matches!(
        next(&events),
        ConnectionEvent::Disconnected { .. }
    ));
    client.close();
    assert!(client.is_closed());
}

/// `connect_in_background()` returns at once with a client that connects in the
/// background: to a server started later, `wait_connected` returns once
/// it has; the callback and `events()` hear of it.
#[test]
fn connect_in_background_reaches_a_server_started_later() {
    let _w = watchdog(Duration::from_secs(30));
    let port = {
        let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let calls = CallbackRecorder::new();
    let client = Client::builder()
        .host(LOCALHOST_IPV4)
        .port(port)
        .reconnect(Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
        })
        .connect_callback(calls.callback())
        .connect_in_background()
        .expect("connect_in_background() does not need a server");
    let events = client.events();
    assert!(!client.connected() && !client.is_closed());
    assert!(matches!(
        client.write_str("early"),
        Err(Error::NotConnected)
    ));
    assert!(matches!(
        client.wait_connected(Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    calls.assert_no_more(Duration::ZERO);

    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(port)
        .start()
        .expect("the server, later");
    client
        .wait_connected(WAIT)
        .expect("connected in the background");
    assert!(client.connected() && client.should_be_connected());
    calls.assert_next_connected(true, WAIT);
    assert!(next(&events).is_connected());
    server.wait_connected(WAIT).expect("the server sees it");
    support::exchange(&server, &client, "started early");
    // Connected already: at once.
    client.wait_connected(Duration::ZERO).expect("connected");
}

/// `connect_in_background()` without `reconnect` uses the default backoff; `close()`
/// stops the attempts and releases a `wait_connected` under way with
/// NotConnected. The wait is seen blocked before the close, so a wait that
/// merely began after it cannot pass for a released one.
#[test]
fn connect_in_background_without_a_server_is_stopped_by_close() {
    let _w = watchdog(Duration::from_secs(30));
    let port = {
        let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = Client::builder()
        .port(port)
        .connect_in_background()
        .expect("connect_in_background() does not need a server");
    std::thread::scope(|s| {
        let waiting = blocked::spawn(s, "wait_connected", In::Futex, || {
            client.wait_connected(Duration::from_secs(60))
        });
        client.close();
        let waited = waiting.join();
        assert!(matches!(waited, Err(Error::NotConnected)), "{waited:?}");
    });
    assert!(client.is_closed() && !client.connected());
    assert!(
        matches!(
            Client::builder().connect_in_background(),
            Err(Error::InvalidArgument(_))
        ),
        "no port: refused by connect_in_background() too"
    );
}

/// A backoff that would retry without a pause, or start above its cap, is
/// refused when connecting rather than spinning a core later.
#[test]
fn reconnect_backoff_is_checked_when_connecting() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    for (initial, max) in [
        (Duration::ZERO, Duration::from_secs(1)),
        (Duration::from_secs(2), Duration::from_secs(1)),
    ] {
        let refused = testing::client_for(&server)
            .reconnect(Backoff { initial, max })
            .connect();
        assert!(
            matches!(refused, Err(Error::InvalidArgument(_))),
            "{initial:?}..{max:?}: {refused:?}"
        );
    }
}

/// The reconnect backoff doubles, from `initial` up to `max`: a peer
/// that accepts each connection and closes it at once (as a busy server
/// does) sees the client's first retry at once, then each after a wait
/// drawn between half and all of `initial`, `2 initial`, `4 initial`, ...
/// up to `max`, which it keeps. (A connect that succeeds and ends at once
/// once counted as a success: the client retried thousands of times a
/// second.)
///
/// The times are taken as each connection is accepted, before it is
/// closed: the client's wait begins only once it sees that close, so each
/// gap is at least half its nominal wait, however late a thread runs.
/// Above, each gap may be late by `SLACK` (noticing the close, the
/// connect, the threads' turns on a loaded machine); `SLACK` is below
/// `max`, so a wait that kept doubling past `max` shows within two gaps.
#[test]
fn reconnect_backoff_doubles_from_initial_up_to_max() {
    let _w = watchdog(Duration::from_secs(60));
    const INITIAL: Duration = Duration::from_millis(40);
    const MAX: Duration = Duration::from_millis(640);
    const SLACK: Duration = Duration::from_millis(320);
    // At once, then 40, 80, 160, 320 ms, and 640 ms (the cap) four times.
    let nominal: Vec<Duration> = std::iter::once(Duration::ZERO)
        .chain((0..8).map(|i| (INITIAL * (1 << i)).min(MAX)))
        .collect();
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (accepted_tx, accepted) = crossbeam_channel::unbounded();
    let attempts = nominal.len() + 1;
    // Not joined: if the client stops coming, the test fails below and
    // this thread ends with the process.
    std::thread::spawn(move || {
        for _ in 0..attempts {
            let (stream, _) = listener.accept().expect("accept");
            let _ = accepted_tx.send(Instant::now());
            drop(stream);
        }
    });
    let client = Client::builder()
        .port(port)
        .name("backing-off")
        .reconnect(Backoff {
            initial: INITIAL,
            max: MAX,
        })
        .connect()
        .expect("the first connect");
    let mut times = Vec::with_capacity(attempts);
    for i in 0..attempts {
        let at = accepted
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("attempt {i} not made within {WAIT:?} of the last"));
        times.push(at);
    }
    drop(client);
    let gaps: Vec<Duration> = times.windows(2).map(|t| t[1] - t[0]).collect();
    for (i, (gap, wait)) in gaps.iter().zip(&nominal).enumerate() {
        assert!(
            *gap >= *wait / 2 && *gap <= *wait + SLACK,
            "retry {i}: {gap:?} after the last, where the wait is drawn between {:?} and \
             {wait:?} (and up to {SLACK:?} late); every gap: {gaps:?}",
            *wait / 2
        );
    }
}

/// `Duration::MAX` as a timeout means "for ever", not an overflow panic.
#[test]
fn a_wait_of_duration_max_waits_for_ever_without_a_panic() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    std::thread::scope(|s| {
        let waiting = blocked::spawn(s, "wait_connected(Duration::MAX)", In::Futex, || {
            server.wait_connected(Duration::MAX)
        });
        let _client = testing::client_for(&server).connect().expect("connects");
        let waited = waiting.join();
        assert!(waited.is_ok(), "{waited:?}");
    });
    let client = testing::client_for(&server)
        .reconnect(Backoff {
            initial: Duration::from_millis(1),
            max: Duration::MAX,
        })
        .connect();
    assert!(client.is_ok(), "{client:?}");
}
