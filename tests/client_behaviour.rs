//! B18 (the client), the read-loop server and its heartbeats.

mod support;

use std::net::TcpListener;
use std::time::Duration;

use support::{watchdog, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

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
    for _ in 0..3 {
        let client = Client::builder()
            .port(server.port())
            .read_timeout(Some(WAIT))
            .connect()
            .expect("client");
        calls.assert_next_connected(true, WAIT);
        client.write_str("ping").expect("write");
        assert_eq!(client.read_str().expect("echo"), "ping");
        client.write_str("fail").expect("write");
        calls.assert_next_connected(false, WAIT);
        assert!(client.read_str().unwrap_err().is_connection_error());
        assert!(!server.should_be_connected(), "closed on purpose");
        assert!(!server.is_closed());
    }
}

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
        .heartbeat_monitor(Some(Duration::from_millis(300)))
        .connect_callback(calls.callback())
        .start(echo)
        .expect("server");
    let client = Client::builder()
        .port(server.port())
        .heartbeat(Some(Duration::from_millis(30)))
        .connect()
        .expect("client");
    calls.assert_next_connected(true, WAIT);
    // Several heartbeat intervals pass without a disconnect.
    calls.assert_no_more(Duration::from_millis(1000));
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
