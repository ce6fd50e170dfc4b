//! What the crate logs, through a capturing `log::Log` (support's
//! `init_log`): the names it logs under, and the level of a client that
//! leaves normally. Its own binary: the logger is the process's.

mod support;

use std::time::Duration;

use support::{init_log, logs_with, wait_logged, watchdog, WAIT};
use ts_tcpip::testing;
use ts_tcpip::*;

/// An unnamed server logs as `OneClientServer(<its address>)`, an unnamed
/// client as `Client(<host>:<port>)`, never with empty parentheses.
#[test]
fn an_unnamed_end_logs_with_its_address() {
    let _w = watchdog(Duration::from_secs(30));
    init_log();
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let addr = server.local_addrs()[0];
    let client = testing::connect_client(&server, true).expect("client");
    let server_name = format!("OneClientServer({addr})");
    let client_name = format!("Client({}:{})", addr.ip(), addr.port());
    for name in [&server_name, &client_name] {
        let record = wait_logged(&[name.as_str(), "connected to"], WAIT);
        assert!(record.is_some(), "nothing logged as {name}");
    }
    drop(client);
    drop(server);
    assert_eq!(logs_with(&["OneClientServer()"]), Vec::<String>::new());
    assert_eq!(logs_with(&["Client()"]), Vec::<String>::new());
}

/// A client that closes its connection between messages is the normal
/// end of a read-loop server's connection: an INFO record, no ERROR, and
/// no talk of "end of file after 0 bytes".
#[test]
fn a_client_leaving_a_read_loop_server_is_logged_at_info() {
    let _w = watchdog(Duration::from_secs(30));
    init_log();
    let name = "rl-client-leaves";
    let server = OneClientReadLoopServer::builder()
        .name(name)
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
    client.write_str("hello").expect("write");
    assert_eq!(client.read_str().expect("echo"), "hello");
    client.close();
    let left = loop {
        match events.recv_timeout(WAIT).expect("an event") {
            ConnectionEvent::Disconnected { reason, .. } => break reason,
            ConnectionEvent::Connected { .. } => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(left, DisconnectReason::PeerClosed);
    let record = wait_logged(&[name, "left"], WAIT).expect("the client's leaving is logged");
    assert!(record.starts_with("INFO "), "{record}");
    let errors: Vec<String> = logs_with(&[name])
        .into_iter()
        .filter(|r| r.starts_with("ERROR ") || r.starts_with("WARN "))
        .collect();
    assert_eq!(
        errors,
        Vec::<String>::new(),
        "a normal leave logged as a fault"
    );
    let eof = logs_with(&[name, "end of file after 0 bytes"]);
    assert_eq!(eof, Vec::<String>::new());
}

/// A reconnecting client whose attempts keep failing for one cause logs
/// the first failure at WARN and the repeats at DEBUG (a loop that fails
/// forever does not flood the log, nor hide), and its recovery at INFO.
#[test]
fn a_reconnect_loop_warns_once_per_cause_and_tells_when_it_recovers() {
    let _w = watchdog(Duration::from_secs(30));
    init_log();
    let name = "reconnect-warns";
    // A port nobody listens on: each attempt is refused at once.
    let port = std::net::TcpListener::bind((LOCALHOST_IPV4, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let client = Client::builder()
        .name(name)
        .port(port)
        .reconnect(Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        })
        .connect_in_background()
        .expect("starts");
    wait_logged(&[name, "connecting failed again (3 attempts)"], WAIT)
        .expect("three refused attempts");
    let failures = logs_with(&[name, "connecting failed"]);
    let warnings: Vec<&String> = failures.iter().filter(|r| r.starts_with("WARN ")).collect();
    assert_eq!(warnings.len(), 1, "{failures:#?}");
    assert!(warnings[0].contains("attempt 1"), "{}", warnings[0]);
    assert!(
        failures[1..].iter().all(|r| r.starts_with("DEBUG ")),
        "{failures:#?}"
    );
    // Someone listens there now: the client gets in and says so.
    let listener = std::net::TcpListener::bind((LOCALHOST_IPV4, port)).expect("the port again");
    let _accepted = listener.accept().expect("the client comes");
    let record = wait_logged(&[name, "connected after"], WAIT).expect("the recovery is logged");
    assert!(record.starts_with("INFO "), "{record}");
    client.close();
}

/// `close()` is idempotent: a second close (and the Drop after it) does
/// nothing, so the end says it is closing once.
#[test]
fn a_second_close_does_nothing_and_is_not_logged() {
    let _w = watchdog(Duration::from_secs(30));
    init_log();
    let name = "closes-twice";
    let server = OneClientServer::builder()
        .name(name)
        .start()
        .expect("server");
    let client = Client::builder()
        .name("closes-twice-client")
        .port(server.port())
        .connect()
        .expect("client");
    for _ in 0..2 {
        server.close();
        client.close();
    }
    drop(server);
    drop(client);
    for end in [name, "closes-twice-client"] {
        let closing = logs_with(&[&format!("({end}): closing")]);
        assert_eq!(closing.len(), 1, "{end}: {closing:#?}");
    }
}
