//! The read-loop server (Python's `OneClientReadLoopServer`): the handler
//! is called over and over; an error or a panic closes the client (and
//! `events()` says which), a timeout does not; heartbeat monitoring.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{expect_eof, init_log, raw_client, recv_line, send_line, watchdog, QUIET, WAIT};
use ts_tcpip::testing::CallbackRecorder;
use ts_tcpip::*;

/// The reason of the next event, which must be a disconnect.
#[track_caller]
fn disconnect_reason(events: &crossbeam_channel::Receiver<ConnectionEvent>) -> DisconnectReason {
    match events.recv_timeout(WAIT).expect("an event in time") {
        ConnectionEvent::Disconnected { reason, .. } => reason,
        other => panic!("expected a disconnect, got {other:?}"),
    }
}

fn echo(server: &OneClientReadLoopServer) -> Result<()> {
    let line = server.read_str()?;
    match line.as_str() {
        "heartbeat" => server.handle_received_heartbeat(),
        "fail" => Err(Error::invalid_argument("asked to fail")),
        _ => server.write_str(&line),
    }
}

#[test]
fn read_loop_echoes_and_a_handler_error_closes_only_the_client() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server = OneClientReadLoopServer::builder()
        .connect_callback(calls.callback())
        .start(echo)
        .expect("server");
    let events = server.events();
    for _ in 0..3 {
        let client = Client::builder()
            .port(server.port())
            .read_timeout(Some(WAIT))
            .connect()
            .expect("client");
        calls.assert_next_connected(true, WAIT);
        assert!(events.recv_timeout(WAIT).expect("event").is_connected());
        client.write_str("ping").expect("write");
        assert_eq!(client.read_str().expect("echo"), "ping");
        client.write_str("fail").expect("write");
        calls.assert_next_connected(false, WAIT);
        match disconnect_reason(&events) {
            DisconnectReason::HandlerFailed(e) => {
                assert!(matches!(*e, Error::InvalidArgument(_)), "{e:?}");
                assert!(e.to_string().contains("asked to fail"), "{e}");
            }
            other => panic!("expected HandlerFailed, got {other:?}"),
        }
        assert!(client.read_str().unwrap_err().is_connection_error());
        assert!(!server.should_be_connected(), "closed on purpose");
        assert!(!server.is_closed());
    }
}

/// Regression (user fault): a panic in a read-loop handler kills the read-loop
/// thread (`OneClientReadLoopServer::read_loop`, src/read_loop.rs, calls
/// `handler.read_and_dispatch` without `catch_unwind`). The client that
/// triggered it is never closed, and as a read-loop server has no monitor
/// the slot stays taken: every later client is turned away, while the
/// server still listens and looks healthy. A panic should be handled as
/// a handler error is (logged, client closed, next client served), as a
/// callback's panic is, and as Python's read_loop treats any exception.
#[test]
fn read_loop_handler_panic_closes_the_client_and_the_next_is_served() {
    let _w = watchdog(Duration::from_secs(30));
    init_log();
    let server = OneClientReadLoopServer::builder()
        .name("rl-panics")
        .host(LOCALHOST_IPV4)
        .port(0)
        .start(|s: &OneClientReadLoopServer| -> Result<()> {
            let line = s.read_str()?;
            if line == "boom" {
                panic!("deliberate panic in read_and_dispatch");
            }
            s.write_str(&line)
        })
        .expect("read-loop server starts");
    let events = server.events();
    let mut first = raw_client(&server);
    send_line(&mut first, "ping");
    assert_eq!(recv_line(&mut first), "ping");
    assert!(matches!(
        events.recv_timeout(WAIT),
        Ok(ConnectionEvent::Connected { .. })
    ));
    send_line(&mut first, "boom");
    assert_eq!(
        disconnect_reason(&events),
        DisconnectReason::HandlerPanicked,
        "the client whose message made the handler panic is closed"
    );
    expect_eof(&mut first);
    let mut second = raw_client(&server);
    send_line(&mut second, "ping 2");
    assert_eq!(
        recv_line(&mut second),
        "ping 2",
        "the next client is served"
    );
}

/// A handler that fails with `Error::Timeout` (the read timeout ran out
/// on an idle client) is called again: the client stays connected, and
/// is served when it speaks.
#[test]
fn a_handler_timeout_does_not_close_the_client() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (timeouts_tx, timeouts) = crossbeam_channel::unbounded();
    let server = OneClientReadLoopServer::builder()
        .read_timeout(Some(Duration::from_millis(10)))
        .connect_callback(calls.callback())
        .start_fn(move |server| match server.read_str() {
            Ok(line) => server.write_str(&line),
            Err(Error::Timeout) => {
                let _ = timeouts_tx.send(());
                Err(Error::Timeout)
            }
            Err(e) => Err(e),
        })
        .expect("server");
    let mut peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    for _ in 0..3 {
        timeouts.recv_timeout(WAIT).expect("the handler timed out");
    }
    assert!(server.connected() && server.should_be_connected());
    send_line(&mut peer, "still here");
    assert_eq!(recv_line(&mut peer), "still here");
    calls.assert_no_more(Duration::ZERO);
    drop(peer);
    calls.assert_next_connected(false, WAIT);
}

/// `start_fn` takes a closure without a type on its argument (`start`
/// needs `|s: &OneClientReadLoopServer|`: E0282 otherwise).
#[test]
fn start_fn_infers_the_closure_argument() {
    let _w = watchdog(Duration::from_secs(30));
    let server = OneClientReadLoopServer::builder()
        .name("start-fn")
        .start_fn(|server| {
            let line = server.read_str()?;
            server.write_str(&line.to_uppercase())
        })
        .expect("server");
    let client = Client::builder()
        .port(server.port())
        .read_timeout(Some(WAIT))
        .connect()
        .expect("client");
    client.write_str("shout").expect("write");
    assert_eq!(client.read_str().expect("reply"), "SHOUT");
}

// ------------------------------------------------------------ start order

/// A connect callback that holds each `true` call until told, and says
/// when it is entered and whether it has returned.
struct HeldCallback {
    entered: crossbeam_channel::Receiver<()>,
    release: crossbeam_channel::Sender<()>,
    returned: Arc<AtomicBool>,
}

impl HeldCallback {
    fn new() -> (
        HeldCallback,
        impl FnMut(&OneClientServer, bool) + Send + 'static,
    ) {
        let (entered_tx, entered) = crossbeam_channel::unbounded();
        let (release, release_rx) = crossbeam_channel::unbounded::<()>();
        let returned = Arc::new(AtomicBool::new(false));
        let flag = returned.clone();
        let callback = move |_: &OneClientServer, connected: bool| {
            if connected {
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

/// As in Python (whose read loop starts once the callback has returned),
/// the handler is not called for a connection before the callback's
/// `true` call for it has returned, even with a message waiting: the
/// callback can set up what the handler needs.
#[test]
fn the_handler_runs_only_after_the_callback_has_returned() {
    let _w = watchdog(Duration::from_secs(30));
    let (held, callback) = HeldCallback::new();
    let (handled_tx, handled) = crossbeam_channel::unbounded();
    let returned = held.returned.clone();
    let server = OneClientReadLoopServer::builder()
        .read_timeout(Some(WAIT))
        .connect_callback(callback)
        .start_fn(move |server| {
            let line = server.read_str()?;
            let _ = handled_tx.send((line, returned.load(Ordering::SeqCst)));
            Ok(())
        })
        .expect("server");
    let mut peer = raw_client(&server);
    send_line(&mut peer, "first");
    held.entered
        .recv_timeout(WAIT)
        .expect("the callback is called");
    assert!(
        handled.recv_timeout(QUIET).is_err(),
        "the handler ran while the callback held the connection"
    );
    held.release.send(()).expect("release");
    let (line, after) = handled.recv_timeout(WAIT).expect("the handler runs");
    assert_eq!(line, "first");
    assert!(after, "the handler ran before the callback returned");
}

/// A callback that panics has returned too: the handler is called (as
/// in Python, where a callback's exception is logged and the read loop
/// starts).
#[test]
fn a_callback_that_panics_does_not_hold_the_handler() {
    let _w = watchdog(Duration::from_secs(30));
    let server = OneClientReadLoopServer::builder()
        .connect_callback(|_, connected| {
            if connected {
                panic!("deliberate panic in the connect callback");
            }
        })
        .start(echo)
        .expect("server");
    let mut peer = raw_client(&server);
    send_line(&mut peer, "still served");
    assert_eq!(recv_line(&mut peer), "still served");
}

/// The heartbeat monitor's clock starts once the callback has returned,
/// as in Python: a slow callback does not use up the client's time (no
/// message, heartbeats included, is read before it returns).
#[test]
fn the_heartbeat_clock_starts_after_the_callback_has_returned() {
    let _w = watchdog(Duration::from_secs(30));
    const MAX: Duration = Duration::from_millis(300);
    let (held, callback) = HeldCallback::new();
    let server = OneClientReadLoopServer::builder()
        .heartbeat_monitor(Some(MAX))
        .connect_callback(callback)
        .start(echo)
        .expect("server");
    let events = server.events();
    let _peer = raw_client(&server);
    held.entered
        .recv_timeout(WAIT)
        .expect("the callback is called");
    assert!(events.recv_timeout(WAIT).expect("connected").is_connected());
    // Twice the limit, held in the callback: not the client's fault.
    assert!(
        events.recv_timeout(MAX * 2).is_err(),
        "the client was closed while the callback held it"
    );
    let released = Instant::now();
    held.release.send(()).expect("release");
    assert_eq!(
        disconnect_reason(&events),
        DisconnectReason::HeartbeatMissed
    );
    assert!(
        released.elapsed() >= MAX,
        "closed {:?} after the callback returned, before the limit",
        released.elapsed()
    );
}

// ------------------------------------------------------------ heartbeats

#[test]
fn read_loop_heartbeat_monitor_closes_a_silent_client() {
    let _w = watchdog(Duration::from_secs(30));
    let server = OneClientReadLoopServer::builder()
        .heartbeat_monitor(Some(Duration::from_millis(200)))
        .start(echo)
        .expect("server");
    let events = server.events();
    let client = Client::builder()
        .port(server.port())
        .connect()
        .expect("client");
    assert!(events.recv_timeout(WAIT).expect("connected").is_connected());
    match events.recv_timeout(WAIT).expect("disconnected") {
        ConnectionEvent::Disconnected { reason, .. } => {
            assert_eq!(reason, DisconnectReason::HeartbeatMissed)
        }
        other => panic!("{other:?}"),
    }
    client.set_read_timeout(Some(WAIT));
    assert!(client.read_str().unwrap_err().is_connection_error());
}

#[test]
fn read_loop_heartbeats_keep_the_client_connected() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server = OneClientReadLoopServer::builder()
        .heartbeat_monitor(Some(Duration::from_millis(500)))
        .connect_callback(calls.callback())
        .start(echo)
        .expect("server");
    let client = Client::builder()
        .port(server.port())
        .heartbeat(Some(Duration::from_millis(20)))
        .connect()
        .expect("client");
    calls.assert_next_connected(true, WAIT);
    // Three times the longest silence allowed pass without a disconnect.
    calls.assert_no_more(Duration::from_millis(1500));
    assert!(server.connected());
    client.close();
    calls.assert_next_connected(false, WAIT);
}

#[test]
fn read_loop_heartbeat_needs_monitoring_on() {
    let _w = watchdog(Duration::from_secs(30));
    let server = OneClientReadLoopServer::builder()
        .start(|_: &OneClientReadLoopServer| Ok(()))
        .expect("server");
    assert!(matches!(
        server.handle_received_heartbeat(),
        Err(Error::InvalidArgument(_))
    ));
    server.close();
    assert!(server.is_closed());
}
