//! The server's life with its clients (behaviours of ARCHITECTURE.md): B1
//! (start binds), B2 (one client at a time), B19 (the next client after
//! one left) and B20 (IPv4, IPv6). B3/B4 are in server_monitor.rs, B5-B7
//! in server_close.rs, B8-B10 in concurrency.rs, B17 in sockets.rs.
//!
//! No sleep synchronises anything: waits are channels, `wait_connected`,
//! the callback recorder and blocking reads with timeouts. `QUIET` is only
//! used to assert that something does NOT happen.

mod support;

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use support::{exchange, exchange_raw, expect_eof, raw_client, raw_connect, watchdog, QUIET, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

/// A server on 127.0.0.1, port 0, whose callback feeds `calls`.
fn server_with(calls: &CallbackRecorder) -> OneClientServer {
    testing::start_server(OneClientServer::builder().connect_callback(calls.callback()))
        .expect("server starts")
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

/// `AddrInUse` on every platform. On Windows the crate's listeners set
/// SO_EXCLUSIVEADDRUSE and no SO_REUSEADDR (which there would let a second
/// socket share the port: `socket::address_use`), so a bind to a port in
/// use is WSAEADDRINUSE; against one of our own servers Wine 8 answers
/// WSAEADDRINUSE too. (That a socket which sets SO_REUSEADDR itself is
/// refused as well, what SO_EXCLUSIVEADDRUSE adds on Windows, is the unit
/// test `a_windows_listener_keeps_its_port_from_a_socket_that_…`.)
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
