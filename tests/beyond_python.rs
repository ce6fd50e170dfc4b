//! SPEC section 4: events(), try_ reads, auto-reconnect and stats().

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{watchdog, WAIT};
use ts_tcpip::testing;
use ts_tcpip::*;

fn next(events: &crossbeam_channel::Receiver<ConnectionEvent>) -> ConnectionEvent {
    events.recv_timeout(WAIT).expect("an event in time")
}

#[test]
fn events_report_every_change_in_order_with_peer_and_reason() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let (first, second) = (server.events(), server.events());
    let client = testing::connect_client(&server, true).expect("client");
    let peer = server.peer_addr().expect("peer");
    for events in [&first, &second] {
        assert_eq!(next(events), ConnectionEvent::Connected { peer });
    }
    client.close();
    let closed = ConnectionEvent::Disconnected {
        peer,
        reason: DisconnectReason::PeerClosed,
    };
    assert_eq!(next(&first), closed);
    drop(second);
    let _client = testing::connect_client(&server, true).expect("client");
    let peer = server.peer_addr().expect("peer");
    assert_eq!(next(&first), ConnectionEvent::Connected { peer });
    server.close_client();
    let local = ConnectionEvent::Disconnected {
        peer,
        reason: DisconnectReason::ClosedLocally,
    };
    assert_eq!(next(&first), local);
}

/// Polls `try_read_str` until the server has received `n` bytes in all;
/// they hold no terminator, so every try returns `None`.
fn await_bytes(server: &OneClientServer, n: u64) {
    let deadline = Instant::now() + WAIT;
    while server.stats().bytes_read < n {
        assert_eq!(server.try_read_str().expect("no error"), None);
        assert!(Instant::now() < deadline, "bytes never arrived");
        std::thread::yield_now();
    }
}

#[test]
fn try_read_str_returns_whole_lines_only_and_keeps_partial_bytes() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let mut peer = TcpStream::connect(server.local_addrs()[0]).expect("peer");
    server.wait_connected(WAIT).expect("connected");
    assert_eq!(server.try_read_str().expect("nothing yet"), None);
    peer.write_all(b"hel").expect("write");
    await_bytes(&server, 3);
    assert_eq!(server.try_read_str().expect("partial"), None);
    peer.write_all(b"lo\r\n{\"a\":1}\r\n").expect("write");
    server.set_read_timeout(Some(WAIT));
    assert_eq!(server.read_str().expect("whole line"), "hello");
    let value: Option<serde_json::Value> = server.try_read_json().expect("json");
    assert_eq!(value, Some(serde_json::json!({"a": 1})));
    assert_eq!(server.try_read_str().expect("drained"), None);
}

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

#[test]
fn stats_count_bytes_frames_and_connections() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let client = testing::connect_client(&server, true).expect("client");
    let rejected = TcpStream::connect(server.local_addrs()[0]).expect("second");
    support::expect_eof(rejected);
    client.write_str("12345").expect("write");
    assert_eq!(server.read_str().expect("read"), "12345");
    let stats = server.stats();
    assert_eq!((stats.bytes_read, stats.frames_read), (7, 1));
    assert_eq!(
        (stats.connections_accepted, stats.connections_rejected),
        (1, 1)
    );
    assert_eq!(client.stats().bytes_written, 7);
    assert_eq!(client.stats().frames_written, 1);
    let events = server.events();
    client.close();
    assert!(!next(&events).is_connected());
    assert_eq!(server.stats().disconnects, 1);
}
