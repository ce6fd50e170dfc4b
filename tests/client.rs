//! The client, SPEC section 2 B18 and section 4: connecting, closing,
//! heartbeats, its callback (B5), reconnecting (also the first connect,
//! with `start()`) and the backoff.

mod support;

use std::net::TcpListener;
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

/// `start()` returns at once with a client that connects in the
/// background: to a server started later, `wait_connected` returns once
/// it has; the callback and `events()` hear of it.
#[test]
fn start_connects_in_the_background_to_a_server_started_later() {
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
        .start()
        .expect("start() does not need a server");
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

/// `start()` without `reconnect` uses the default backoff; `close()`
/// stops the attempts and releases a `wait_connected` under way with
/// NotConnected. The wait is seen blocked before the close, so a wait that
/// merely began after it cannot pass for a released one.
#[test]
fn start_without_a_server_is_stopped_by_close() {
    let _w = watchdog(Duration::from_secs(30));
    let port = {
        let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = Client::builder()
        .port(port)
        .start()
        .expect("start() does not need a server");
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
        matches!(Client::builder().start(), Err(Error::InvalidArgument(_))),
        "no port: refused by start() too"
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

/// Regression (section 4, `ClientBuilder::reconnect`): a reconnecting client that
/// a busy `OneClientServer` turns away (the TCP connect succeeds, then end
/// of file at once) reconnects in a tight loop, thousands of times a
/// second, with no backoff: `reconnect::run` (src/reconnect.rs) restarts
/// the wait at `initial` and tries "at once" after every drop, and a
/// connect that succeeds counts as success even when the link is gone
/// the next moment. Each round is a callback pair, two events and a
/// warning in the server's log.
///
/// With `initial` 50 ms and `max` 400 ms, 500 ms allow about eight
/// attempts even with the jitter halving every wait; the bound is 20.
#[test]
fn reconnecting_client_turned_away_by_a_busy_server_backs_off() {
    let _w = watchdog(Duration::from_secs(30));
    const WINDOW: Duration = Duration::from_millis(500);
    let server =
        testing::start_server(OneClientServer::builder().name("busy-server")).expect("server");
    let _served = testing::connect_client(&server, true).expect("the served client");
    let turned_away = testing::client_for(&server)
        .name("turned-away")
        .reconnect(Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(400),
        })
        .connect()
        .expect("the TCP connect itself succeeds");
    let events = turned_away.events();
    // An observation window, not synchronisation: count what happens in it.
    let started = Instant::now();
    let mut connects = 0;
    while let Some(left) = WINDOW.checked_sub(started.elapsed()) {
        match events.recv_timeout(left) {
            Ok(event) if event.is_connected() => connects += 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let rejected = server.stats().connections_rejected;
    drop(turned_away);
    assert!(
        rejected <= 20,
        "a client turned away by a busy server reconnected {rejected} times in {WINDOW:?} \
         ({connects} connect events): no backoff between connects that end at once"
    );
}

/// `Duration::MAX` as a timeout means "for ever", not an overflow panic.
#[test]
fn a_wait_of_duration_max_waits_for_ever_without_a_panic() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    std::thread::scope(|s| {
        let waiting = s.spawn(|| server.wait_connected(Duration::MAX));
        let _client = testing::client_for(&server).connect().expect("connects");
        assert!(waiting.join().expect("no panic").is_ok());
    });
    let client = testing::client_for(&server)
        .reconnect(Backoff {
            initial: Duration::from_millis(1),
            max: Duration::MAX,
        })
        .connect();
    assert!(client.is_ok(), "{client:?}");
}
