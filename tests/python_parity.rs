//! Behaviours of the Python package (`lsst.ts.tcpip`) that a port meets,
//! each with the crate's promise: the same, or a difference on purpose
//! that the README's "Python names" section gives with its reason.

mod support;

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use support::{raw_client, reset, watchdog, QUIET, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

/// The next event, which must be a disconnect: its reason.
#[track_caller]
fn disconnect_reason(events: &Receiver<ConnectionEvent>) -> DisconnectReason {
    match events.recv_timeout(WAIT).expect("an event in time") {
        ConnectionEvent::Disconnected { reason, .. } => reason,
        other => panic!("expected a disconnect, got {other:?}"),
    }
}

/// Python's `read(n)` returns `b""` at end of file and leaves the link to
/// the monitor, which calls the callback up to its interval later (a
/// read-loop server, which has no monitor, not until the next client).
/// The crate's ends the link at once: when `read` returns the empty
/// vector the link is down and its `Disconnected` told, whether or not a
/// monitor runs (none here).
#[test]
fn read_n_at_end_of_file_returns_nothing_and_ends_the_link_at_once() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server = testing::start_server(
        OneClientServer::builder()
            .monitor_connection_interval(Duration::ZERO)
            .read_timeout(Some(WAIT))
            .connect_callback(calls.callback()),
    )
    .expect("server");
    let events = server.events();
    let peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    assert!(events.recv_timeout(WAIT).expect("connected").is_connected());
    drop(peer);
    assert_eq!(server.read(10).expect("end of file"), b"");
    assert!(!server.connected(), "still connected after end of file");
    match events.try_recv() {
        Ok(ConnectionEvent::Disconnected { reason, .. }) => {
            assert_eq!(reason, DisconnectReason::PeerClosed)
        }
        other => panic!("not told by the time read returned: {other:?}"),
    }
    calls.assert_next_connected(false, WAIT);
    assert!(server.should_be_connected(), "the peer left, not us");
    assert!(server.read(10).unwrap_err().is_connection_error());
}

/// Python's `write` that finds the connection broken raises and leaves
/// the link to the monitor; the crate's ends it at once, as a read does:
/// when the write returns its connection error, the link is down and its
/// `Disconnected` told (no monitor here).
#[test]
fn a_write_that_finds_the_connection_broken_ends_the_link_at_once() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(
        OneClientServer::builder().monitor_connection_interval(Duration::ZERO),
    )
    .expect("server");
    let events = server.events();
    let peer = raw_client(&server);
    assert!(events.recv_timeout(WAIT).expect("connected").is_connected());
    reset(peer);
    // The reset reaches the server when it does: the first write that
    // meets it fails.
    let deadline = Instant::now() + WAIT;
    let err = loop {
        match server.write_str("into the void") {
            Ok(()) => assert!(Instant::now() < deadline, "no write failed"),
            Err(e) => break e,
        }
    };
    assert!(err.is_connection_error(), "{err:?}");
    assert!(!server.connected(), "still connected after a broken write");
    match events.try_recv() {
        Ok(ConnectionEvent::Disconnected { reason, .. }) => {
            assert!(matches!(reason, DisconnectReason::Error(_)), "{reason:?}")
        }
        other => panic!("not told by the time write returned: {other:?}"),
    }
    assert!(server.should_be_connected(), "the peer broke it, not us");
}

/// Python's `connected_task` stays done after a client drops, until
/// `close_client` replaces it; the crate's `wait_connected` follows the
/// live state: once the drop is noticed it waits for the next client.
#[test]
fn wait_connected_waits_again_once_the_client_has_dropped() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let events = server.events();
    let client = testing::connect_client(&server, true).expect("client");
    server.wait_connected(Duration::ZERO).expect("connected");
    assert!(events.recv_timeout(WAIT).expect("connected").is_connected());
    drop(client);
    assert_eq!(disconnect_reason(&events), DisconnectReason::PeerClosed);
    assert!(matches!(
        server.wait_connected(Duration::ZERO),
        Err(Error::Timeout)
    ));
    assert!(server.should_be_connected(), "the drop was not ours");
    let _next = testing::connect_client(&server, false).expect("next client");
    server.wait_connected(WAIT).expect("the next client");
}

/// Python's read loop calls `close_client` on every read error, a client
/// that closed between messages included, so its `should_be_connected`
/// turns false then (after the callback's call). The crate keeps its one
/// rule on every end: it turns false only when this side closes on
/// purpose (a handler error, a missed heartbeat, `close_client`), so a
/// client that leaves reads as it does on a `OneClientServer`.
#[test]
fn should_be_connected_stays_true_after_a_read_loop_client_leaves() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server = OneClientReadLoopServer::builder()
        .connect_callback(calls.callback())
        .start_fn(|server| {
            let line = server.read_str()?;
            server.write_str(&line)
        })
        .expect("server");
    let events = server.events();
    let client = Client::builder()
        .port(server.port())
        .read_timeout(Some(WAIT))
        .connect()
        .expect("client");
    calls.assert_next_connected(true, WAIT);
    client.write_str("hello").expect("write");
    assert_eq!(client.read_str().expect("echo"), "hello");
    client.close();
    assert!(events.recv_timeout(WAIT).expect("connected").is_connected());
    assert_eq!(disconnect_reason(&events), DisconnectReason::PeerClosed);
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
    assert!(server.should_be_connected());
}

/// As in Python: a heartbeat that reaches a read-loop server whose
/// heartbeat monitoring is off makes `handle_received_heartbeat` fail
/// (Python raises `RuntimeError`), the handler returns the error, and the
/// client is closed, on purpose (`should_be_connected` false). End to end:
/// a crate client that sends heartbeats.
#[test]
fn a_heartbeat_with_monitoring_off_closes_the_client() {
    let _w = watchdog(Duration::from_secs(30));
    let server = OneClientReadLoopServer::builder()
        .start_fn(|server| {
            let line = server.read_str()?;
            if line.as_bytes() == HEARTBEAT {
                server.handle_received_heartbeat()
            } else {
                server.write_str(&line)
            }
        })
        .expect("server");
    let events = server.events();
    let client = Client::builder()
        .port(server.port())
        .heartbeat(Some(Duration::from_millis(20)))
        .connect()
        .expect("client");
    let client_events = client.events();
    assert!(events.recv_timeout(WAIT).expect("connected").is_connected());
    match disconnect_reason(&events) {
        DisconnectReason::HandlerFailed(e) => {
            assert!(matches!(*e, Error::InvalidArgument(_)), "{e:?}");
            assert!(e.to_string().contains("heartbeat"), "{e}");
        }
        other => panic!("expected HandlerFailed, got {other:?}"),
    }
    assert!(!server.should_be_connected(), "closed on purpose");
    assert!(!server.is_closed(), "the server goes on listening");
    assert!(matches!(
        client_events.recv_timeout(WAIT),
        Ok(ConnectionEvent::Disconnected { .. })
    ));
}

/// Python keeps the last heartbeat's time across connections (it is
/// cleared only when the monitor closes a client), so a client whose
/// predecessor's last heartbeat is older than the limit is closed at the
/// monitor's first look, at once. The crate counts only the heartbeats of
/// the connection being watched: each client has the whole limit from
/// when it is served.
#[test]
fn a_heartbeat_from_before_a_connection_does_not_shorten_the_next_clients_time() {
    let _w = watchdog(Duration::from_secs(30));
    const MAX: Duration = Duration::from_millis(600);
    let (heartbeats_tx, heartbeats) = crossbeam_channel::unbounded();
    let server = OneClientReadLoopServer::builder()
        .heartbeat_monitor(Some(MAX))
        .start_fn(move |server| {
            let line = server.read_str()?;
            server.handle_received_heartbeat()?;
            let _ = heartbeats_tx.send(line);
            Ok(())
        })
        .expect("server");
    let events = server.events();
    let first = Client::builder()
        .port(server.port())
        .heartbeat(Some(Duration::from_millis(20)))
        .connect()
        .expect("first client");
    for _ in 0..3 {
        let line = heartbeats.recv_timeout(WAIT).expect("a heartbeat handled");
        assert_eq!(line.as_bytes(), HEARTBEAT);
    }
    first.close();
    assert!(events.recv_timeout(WAIT).expect("connected").is_connected());
    assert_eq!(disconnect_reason(&events), DisconnectReason::PeerClosed);
    // Time passing, not a wait for a thread: the first client's last
    // heartbeat is now older than the limit.
    std::thread::sleep(MAX);
    let connecting = Instant::now();
    let _second = raw_client(&server);
    assert!(events.recv_timeout(WAIT).expect("connected").is_connected());
    assert!(
        events.recv_timeout(QUIET).is_err(),
        "the second client was closed for the first one's heartbeats"
    );
    assert_eq!(
        disconnect_reason(&events),
        DisconnectReason::HeartbeatMissed
    );
    assert!(
        connecting.elapsed() >= MAX,
        "closed {:?} after connecting, before the limit",
        connecting.elapsed()
    );
}

/// The Python package's deprecated names are there, deprecated, equal to
/// the names that replace them.
#[test]
#[allow(deprecated)]
fn the_deprecated_python_names_equal_their_replacements() {
    assert_eq!(ts_tcpip::TERMINATOR, DEFAULT_TERMINATOR);
    assert_eq!(ts_tcpip::LOCAL_HOST, DEFAULT_LOCALHOST);
}
