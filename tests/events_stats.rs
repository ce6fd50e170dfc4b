//! `events()`, the `try_` reads and `stats()` (its disconnects by reason,
//! its serialization); and the order of state and news: when the callback
//! (or an event) hears of a change, `connected()`, `should_be_connected()`
//! and `stats()` already agree with it, whichever way the connection
//! ended.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{raw_client, reset, send_line, watchdog, WAIT};
use ts_tcpip::crossbeam_channel::{self, Receiver};
use ts_tcpip::testing;
use ts_tcpip::*;

fn next(events: &Receiver<ConnectionEvent>) -> ConnectionEvent {
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

/// `events()` in a control loop's `select!`, through the crate's own
/// re-export of crossbeam-channel (no version to guess).
#[test]
fn events_work_in_the_reexported_select() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let events = server.events();
    let (command_tx, commands) = crossbeam_channel::unbounded::<&str>();
    let client = testing::connect_client(&server, true).expect("client");
    command_tx.send("stop").expect("command");
    let (mut connected, mut stopped) = (false, false);
    while !(connected && stopped) {
        crossbeam_channel::select! {
            recv(events) -> event => connected |= event.expect("event").is_connected(),
            recv(commands) -> command => stopped |= command == Ok("stop"),
            default(WAIT) => panic!("neither the event nor the command came"),
        }
    }
    drop(client);
    crossbeam_channel::select! {
        recv(events) -> event => assert!(!event.expect("event").is_connected()),
        default(WAIT) => panic!("no disconnect event"),
    }
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

// ------------------------------------------------------------ state, then news

/// What a callback call saw: (the news, `connected()`,
/// `should_be_connected()`, `stats().disconnects`), read on the callback
/// thread during the call.
type Seen = (bool, bool, bool, u64);

/// A connect callback that reports what it sees, and the reports.
fn observer<L: Link + 'static>() -> (impl FnMut(&L, bool) + Send + 'static, Receiver<Seen>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let callback = move |server: &L, news: bool| {
        let seen = (
            news,
            server.connected(),
            server.should_be_connected(),
            server.stats().disconnects,
        );
        let _ = tx.send(seen);
    };
    (callback, rx)
}

#[track_caller]
fn expect_seen(
    seen: &Receiver<Seen>,
    news: bool,
    should_be_connected: bool,
    disconnects: u64,
    way: &str,
) {
    let got = seen
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{way}: no callback ({news})"));
    assert_eq!(
        got,
        (news, news, should_be_connected, disconnects),
        "{way}: (news, connected(), should_be_connected(), disconnects) inside the callback"
    );
}

/// For every way a connection ends, the callback (on its own thread)
/// already sees the state the news tells of: `connected()` false,
/// `should_be_connected()` cleared unless the peer went or the close was
/// a `basic_` one, the disconnect counted. And `true` likewise.
#[test]
fn state_agrees_with_the_news_inside_the_callback_for_every_way_a_link_ends() {
    let _w = watchdog(Duration::from_secs(60));
    // A server: the peer closes, close_client, basic_close_client, close.
    let (callback, seen) = observer();
    let server = testing::start_server(OneClientServer::builder().connect_callback(callback))
        .expect("server");
    type End = (&'static str, bool, fn(&OneClientServer, TcpStream));
    let ends: [End; 3] = [
        ("the peer closes", true, |_, peer| drop(peer)),
        ("close_client", false, |server, _peer| server.close_client()),
        ("basic_close_client", true, |server, _peer| {
            server.basic_close_client()
        }),
    ];
    let mut disconnects = 0;
    for (way, keeps, end) in ends {
        let peer = raw_client(&server);
        expect_seen(&seen, true, true, disconnects, way);
        end(&server, peer);
        disconnects += 1;
        expect_seen(&seen, false, keeps, disconnects, way);
    }
    let _peer = raw_client(&server);
    expect_seen(&seen, true, true, disconnects, "close");
    server.close();
    expect_seen(&seen, false, false, disconnects + 1, "close");

    // A read-loop server: a handler error, a handler panic, a missed
    // heartbeat.
    let (callback, seen) = observer();
    let server = OneClientReadLoopServer::builder()
        .heartbeat_monitor(Some(Duration::from_millis(300)))
        .connect_callback(callback)
        .start_fn(|server| match server.read_str()?.as_str() {
            "fail" => Err(ts_tcpip::Error::invalid_argument("asked to fail")),
            "panic" => panic!("asked to panic (a test of a panicking handler)"),
            _ => server.handle_received_heartbeat(),
        })
        .expect("read-loop server");
    let ends = [
        ("a handler error", Some("fail")),
        ("a handler panic", Some("panic")),
        ("a missed heartbeat", None),
    ];
    for (n, (way, line)) in (0u64..).zip(ends) {
        let mut peer = raw_client(&server);
        expect_seen(&seen, true, true, n, way);
        if let Some(line) = line {
            send_line(&mut peer, line);
        }
        expect_seen(&seen, false, false, n + 1, way);
    }
}

// ------------------------------------------------------------ stats by reason

/// The reason of the next event, which must be a disconnect.
#[track_caller]
fn next_reason(events: &Receiver<ConnectionEvent>) -> DisconnectReason {
    match next(events) {
        ConnectionEvent::Disconnected { reason, .. } => reason,
        other => panic!("expected a disconnect, got {other:?}"),
    }
}

/// The counters by reason, in `Stats`' order, for one assertion.
fn by_reason(s: &Stats) -> [u64; 8] {
    [
        s.peers_closed,
        s.closed_locally,
        s.heartbeats_missed,
        s.peers_unresponsive,
        s.connection_errors,
        s.handler_failures,
        s.handler_panics,
        s.replaced,
    ]
}

/// Each way a connection ends is counted under its reason, and the
/// reasons add up to `disconnects` (the peer that stops answering is
/// counted in tests/dead_peer.rs, which can cut a connection).
#[test]
fn disconnects_are_counted_by_reason() {
    let _w = watchdog(Duration::from_secs(60));
    let server =
        testing::start_server(OneClientServer::builder().slot_policy(SlotPolicy::ReplaceOld))
            .expect("server");
    let events = server.events();
    let connected = |events: &Receiver<ConnectionEvent>| assert!(next(events).is_connected());

    let peer = raw_client(&server);
    connected(&events);
    drop(peer);
    assert_eq!(next_reason(&events), DisconnectReason::PeerClosed);

    let _peer = raw_client(&server);
    connected(&events);
    server.close_client();
    assert_eq!(next_reason(&events), DisconnectReason::ClosedLocally);

    let _old = raw_client(&server);
    connected(&events);
    let new = raw_client(&server);
    assert_eq!(next_reason(&events), DisconnectReason::Replaced);
    connected(&events);
    reset(new);
    let reason = next_reason(&events);
    assert!(matches!(reason, DisconnectReason::Error(_)), "{reason:?}");

    let stats = server.stats();
    assert_eq!(by_reason(&stats), [1, 1, 0, 0, 1, 0, 0, 1], "{stats:?}");
    assert_eq!(stats.disconnects, 4);

    // A handler that fails, then one that panics, on a server without a
    // heartbeat monitor (so that a slow machine cannot end either
    // connection for a missed heartbeat first); then a client that sends
    // no heartbeat, on a server that watches for them.
    let handler = |server: &OneClientReadLoopServer| match server.read_str()?.as_str() {
        "fail" => Err(ts_tcpip::Error::invalid_argument("asked to fail")),
        "panic" => panic!("asked to panic (a test of a panicking handler)"),
        _ => server.handle_received_heartbeat(),
    };
    let server = OneClientReadLoopServer::builder()
        .heartbeat_monitor(None)
        .start_fn(handler)
        .expect("read-loop server");
    let events = server.events();
    for line in ["fail", "panic"] {
        let mut peer = raw_client(&server);
        connected(&events);
        send_line(&mut peer, line);
        next_reason(&events);
    }
    let stats = server.stats();
    assert_eq!(by_reason(&stats), [0, 0, 0, 0, 0, 1, 1, 0], "{stats:?}");
    assert_eq!(stats.disconnects, 2);

    let server = OneClientReadLoopServer::builder()
        .heartbeat_monitor(Some(Duration::from_millis(300)))
        .start_fn(handler)
        .expect("read-loop server");
    let events = server.events();
    let _silent = raw_client(&server);
    connected(&events);
    assert_eq!(next_reason(&events), DisconnectReason::HeartbeatMissed);
    let stats = server.stats();
    assert_eq!(by_reason(&stats), [0, 0, 1, 0, 0, 0, 0, 0], "{stats:?}");
    assert_eq!(stats.disconnects, 1);
}

/// `Stats` serializes as one flat object with every counter by its field
/// name (checked against the fields `Debug` lists, so a counter added
/// later cannot be left out).
#[test]
fn stats_serialize_every_counter_by_name() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let client = testing::connect_client(&server, true).expect("client");
    client.write_str("counted").expect("write");
    assert_eq!(server.read_str().expect("read"), "counted");
    client.close();
    let deadline = Instant::now() + WAIT;
    while server.stats().disconnects == 0 {
        assert!(Instant::now() < deadline, "the disconnect was not counted");
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = server.stats();
    let json = serde_json::to_value(stats).expect("serializes");
    let object = json.as_object().expect("an object");
    let debug = format!("{stats:?}");
    let fields: Vec<&str> = debug
        .trim_start_matches("Stats {")
        .trim_end_matches('}')
        .split(',')
        .map(|field| field.split(':').next().expect("name").trim())
        .filter(|name| !name.is_empty())
        .collect();
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), fields.len(), "{keys:?} against {fields:?}");
    for field in fields {
        let value = object
            .get(field)
            .unwrap_or_else(|| panic!("{field} missing"));
        let shown = debug
            .split(&format!("{field}: "))
            .nth(1)
            .and_then(|rest| rest.split([',', ' ']).next())
            .expect("a value");
        assert_eq!(value.to_string(), shown, "{field}");
    }
    assert_eq!(object["frames_read"], 1);
    assert_eq!(object["peers_closed"], 1);
    // In the fields' order, as written.
    assert_eq!(
        serde_json::to_string(&Stats::default()).expect("serializes"),
        concat!(
            r#"{"bytes_read":0,"bytes_written":0,"frames_read":0,"frames_written":0,"#,
            r#""connections_accepted":0,"connections_rejected":0,"connections_refused":0,"#,
            r#""disconnects":0,"peers_closed":0,"closed_locally":0,"heartbeats_missed":0,"#,
            r#""peers_unresponsive":0,"connection_errors":0,"handler_failures":0,"#,
            r#""handler_panics":0,"replaced":0}"#,
        )
    );
}
