//! Who may connect, the parts that are not TLS: the peer
//! allowlist (ranges and predicates, on both server forms), the slot
//! policy, and ends made from sockets and addresses the caller holds
//! (`listener`, `stream`, `local_addr`, `reuse_port`).
//!
//! Loopback only, port 0 everywhere. A peer "from 127.0.0.2" binds its
//! socket to 127.0.0.2 before connecting: Linux routes all of 127/8 to
//! `lo`; where that address is missing (macOS) those tests say so and
//! return. No sleep synchronises anything: waits are `wait_connected`,
//! events, the callback recorder, the log's condvar and reads with
//! timeouts. `QUIET` only asserts that something does NOT happen.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use support::{
    exchange, exchange_raw, expect_eof, init_log, raw_client, raw_connect, recv_line, send_line,
    wait_logged, watchdog, QUIET, WAIT,
};
use ts_tcpip::testing::CallbackRecorder;
use ts_tcpip::*;

const SECOND_LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A raw peer connected to `to` from `from` (port picked by the system),
/// timeouts [`WAIT`]; None (with a note) when this machine cannot bind
/// `from`.
fn raw_connect_from(from: IpAddr, to: SocketAddr) -> Option<TcpStream> {
    let socket =
        Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP)).expect("socket");
    if let Err(e) = socket.bind(&SocketAddr::new(from, 0).into()) {
        eprintln!("note: skipping: cannot bind {from} ({e})");
        return None;
    }
    // A plain connect, not connect_timeout: on Windows socket2's timed
    // connect polls, and when the server refuses (accepts and closes) at
    // once the poll sees POLLHUP and calls the connect failed ("no error
    // set after POLLHUP", seen under Wine); loopback answers at once.
    socket
        .connect(&to.into())
        .unwrap_or_else(|e| panic!("connect from {from} to {to}: {e}"));
    let stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    stream.set_write_timeout(Some(WAIT)).expect("timeout");
    Some(stream)
}

/// True if this machine can bind a socket to `ip` (else a note).
fn can_bind(ip: IpAddr) -> bool {
    match TcpListener::bind((ip, 0)) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("note: skipping: cannot bind {ip} ({e})");
            false
        }
    }
}

/// True if this machine can bind an IPv6 loopback socket.
fn has_ipv6() -> bool {
    match TcpListener::bind((LOCALHOST_IPV6, 0)) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("note: skipping: IPv6 loopback unavailable ({e})");
            false
        }
    }
}

#[track_caller]
fn next_event(events: &crossbeam_channel::Receiver<ConnectionEvent>) -> ConnectionEvent {
    events.recv_timeout(WAIT).expect("an event in time")
}

// ------------------------------------------------------------ the allowlist

#[test]
fn allowlist_refuses_a_peer_from_another_address_while_the_served_one_goes_on() {
    let _w = watchdog(Duration::from_secs(60));
    init_log();
    let calls = CallbackRecorder::new();
    let server = OneClientServer::builder()
        .name("allow-v4")
        .host(LOCALHOST_IPV4)
        .allow("127.0.0.1/32")
        .connect_callback(calls.callback())
        .start()
        .expect("server starts");
    let addr = server.local_addrs()[0];
    let events = server.events();

    // Refused while the slot is free: it does not take it.
    let Some(early) = raw_connect_from(SECOND_LOOPBACK.into(), addr) else {
        return;
    };
    let early_addr = early.local_addr().expect("local");
    expect_eof(early);
    assert_eq!(server.stats().connections_refused, 1);
    let warned = wait_logged(&["allow-v4", "refusing", &early_addr.to_string()], WAIT)
        .expect("the refusal is logged");
    assert!(warned.starts_with("WARN"), "{warned}");
    assert!(warned.contains("127.0.0.1/32"), "says why: {warned}");
    assert!(!server.connected());

    // 127.0.0.1 is served.
    let mut served = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    calls.assert_next_connected(true, WAIT);
    assert!(next_event(&events).is_connected());
    exchange_raw(&server, &mut served, "before");

    // Refused while a client is served: the served one never hears of it.
    let late = raw_connect_from(SECOND_LOOPBACK.into(), addr).expect("bound once already");
    expect_eof(late);
    exchange_raw(&server, &mut served, "after");
    let stats = server.stats();
    assert_eq!(
        (
            stats.connections_refused,
            stats.connections_rejected,
            stats.connections_accepted,
            stats.disconnects
        ),
        (2, 0, 1, 0)
    );
    calls.assert_no_more(QUIET);
    assert!(events.try_recv().is_err(), "no event for a refused peer");
    assert_eq!(
        server.peer_addr(),
        Some(served.local_addr().expect("local"))
    );
}

#[test]
fn allowlist_of_ipv6_loopback_refuses_ipv4_and_serves_ipv6() {
    let _w = watchdog(Duration::from_secs(60));
    if !has_ipv6() {
        return;
    }
    // Two listeners, one per family: only ::1 is allowed.
    let v4 = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind v4");
    let v6 = TcpListener::bind((LOCALHOST_IPV6, 0)).expect("bind v6");
    let (v4_addr, v6_addr) = (v4.local_addr().unwrap(), v6.local_addr().unwrap());
    let server = OneClientServer::builder()
        .listener(v4)
        .listener(v6)
        .allow("::1/128")
        .start()
        .expect("server starts");
    assert_eq!(server.local_addrs(), vec![v4_addr, v6_addr]);
    expect_eof(raw_connect(v4_addr));
    assert_eq!(server.stats().connections_refused, 1);
    let mut served = raw_connect(v6_addr);
    server.wait_connected(WAIT).expect("served");
    exchange_raw(&server, &mut served, "v6");
    assert_eq!(server.stats().connections_refused, 1);
}

#[test]
fn a_range_elsewhere_refuses_loopback_of_both_families() {
    let _w = watchdog(Duration::from_secs(60));
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .allow("10.0.0.0/8")
        .allow("2001:db8::/32")
        .start()
        .expect("server starts");
    expect_eof(raw_client(&server));
    assert_eq!(server.stats().connections_refused, 1);
    assert!(!server.connected());
    if has_ipv6() {
        let server6 = OneClientServer::builder()
            .host(LOCALHOST_IPV6)
            .allow("2001:db8::/32")
            .start()
            .expect("server starts");
        expect_eof(raw_client(&server6));
        assert_eq!(server6.stats().connections_refused, 1);
    }
}

#[test]
fn a_predicate_decides_and_sees_the_peer_address() {
    let _w = watchdog(Duration::from_secs(60));
    let open = Arc::new(AtomicBool::new(false));
    let (seen_tx, seen) = crossbeam_channel::unbounded::<SocketAddr>();
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .allow_peer({
            let open = open.clone();
            move |peer| {
                let _ = seen_tx.send(peer);
                open.load(Ordering::SeqCst)
            }
        })
        .start()
        .expect("server starts");
    let refused = raw_client(&server);
    let refused_addr = refused.local_addr().expect("local");
    expect_eof(refused);
    assert_eq!(seen.recv_timeout(WAIT).expect("asked"), refused_addr);
    assert_eq!(server.stats().connections_refused, 1);

    open.store(true, Ordering::SeqCst);
    let mut served = raw_client(&server);
    assert_eq!(
        seen.recv_timeout(WAIT).expect("asked"),
        served.local_addr().unwrap()
    );
    server.wait_connected(WAIT).expect("served");
    exchange_raw(&server, &mut served, "predicate");
    assert_eq!(server.stats().connections_refused, 1);
}

#[test]
fn a_panicking_predicate_refuses_and_the_server_keeps_accepting() {
    let _w = watchdog(Duration::from_secs(60));
    init_log();
    let calls = Arc::new(AtomicBool::new(false));
    let server = OneClientServer::builder()
        .name("panicky-predicate")
        .host(LOCALHOST_IPV4)
        .allow_peer({
            let calls = calls.clone();
            // Panics the first time only.
            move |_| calls.swap(true, Ordering::SeqCst) || panic!("predicate bug")
        })
        .start()
        .expect("server starts");
    expect_eof(raw_client(&server));
    wait_logged(&["panicky-predicate", "refusing", "panicked"], WAIT).expect("logged");
    let mut served = raw_client(&server);
    server
        .wait_connected(WAIT)
        .expect("the accept thread lives on");
    exchange_raw(&server, &mut served, "after a panic");
}

#[test]
fn ranges_and_predicates_add_up() {
    let _w = watchdog(Duration::from_secs(60));
    // The range does not hold loopback; the predicate does.
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .allow("10.0.0.0/8")
        .allow_peer(|peer| peer.ip().is_loopback())
        .start()
        .expect("server starts");
    let mut served = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    exchange_raw(&server, &mut served, "either");
    assert_eq!(server.stats().connections_refused, 0);
}

#[test]
fn the_read_loop_server_has_the_allowlist_too() {
    let _w = watchdog(Duration::from_secs(60));
    let server = OneClientReadLoopServer::builder()
        .host(LOCALHOST_IPV4)
        .allow("127.0.0.1/32")
        .start_fn(|server| {
            let line = server.read_str()?;
            server.write_str(&line)
        })
        .expect("server starts");
    let addr = server.local_addrs()[0];
    let Some(refused) = raw_connect_from(SECOND_LOOPBACK.into(), addr) else {
        return;
    };
    expect_eof(refused);
    assert_eq!(server.stats().connections_refused, 1);
    let mut served = raw_connect(addr);
    send_line(&mut served, "echo");
    assert_eq!(recv_line(&mut served), "echo");
}

#[test]
fn a_bad_range_is_an_invalid_argument_from_start() {
    for bad in ["10.0.0.0/33", "10.0.0.1/8", "nonsense", "::1/129", ""] {
        match OneClientServer::builder().allow(bad).start() {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains("CIDR"), "{msg}"),
            other => panic!("{bad:?}: {other:?}"),
        }
        match OneClientReadLoopServer::builder()
            .allow("127.0.0.1/32")
            .allow(bad)
            .start_fn(|_| Ok(()))
        {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("read loop, {bad:?}: {other:?}"),
        }
    }
}

// ------------------------------------------------------------ the slot policy

#[test]
fn replace_policy_serves_the_new_client_and_closes_the_old() {
    let _w = watchdog(Duration::from_secs(60));
    let calls = CallbackRecorder::new();
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .slot_policy(SlotPolicy::ReplaceOld)
        .connect_callback(calls.callback())
        .start()
        .expect("server starts");
    let events = server.events();
    let mut old = raw_client(&server);
    let old_addr = old.local_addr().unwrap();
    server.wait_connected(WAIT).expect("old served");
    calls.assert_next_connected(true, WAIT);
    assert_eq!(
        next_event(&events),
        ConnectionEvent::Connected { peer: old_addr }
    );
    exchange_raw(&server, &mut old, "old");

    let mut new = raw_client(&server);
    let new_addr = new.local_addr().unwrap();
    // The old one's news first, and the stats already agree with it.
    assert_eq!(
        next_event(&events),
        ConnectionEvent::Disconnected {
            peer: old_addr,
            reason: DisconnectReason::Replaced
        }
    );
    assert!(server.stats().disconnects >= 1);
    assert_eq!(
        next_event(&events),
        ConnectionEvent::Connected { peer: new_addr }
    );
    calls.assert_next_connected(false, WAIT);
    calls.assert_next_connected(true, WAIT);
    expect_eof(&mut old);
    assert_eq!(server.peer_addr(), Some(new_addr));
    exchange_raw(&server, &mut new, "new");
    let stats = server.stats();
    assert_eq!(
        (
            stats.connections_accepted,
            stats.connections_rejected,
            stats.disconnects
        ),
        (2, 0, 1)
    );
    assert!(server.should_be_connected());
    calls.assert_no_more(QUIET);
}

#[test]
fn replace_policy_moves_a_crate_client_and_the_read_loop_along() {
    let _w = watchdog(Duration::from_secs(60));
    let server = OneClientReadLoopServer::builder()
        .host(LOCALHOST_IPV4)
        .slot_policy(SlotPolicy::ReplaceOld)
        .start_fn(|server| {
            let line = server.read_str()?;
            server.write_str(&line)
        })
        .expect("server starts");
    let first = Client::builder()
        .port(server.port())
        .read_timeout(Some(WAIT))
        .connect()
        .expect("first");
    let first_events = first.events();
    first.write_str("one").expect("write");
    assert_eq!(first.read_str().expect("echo"), "one");
    let second = Client::builder()
        .port(server.port())
        .read_timeout(Some(WAIT))
        .connect()
        .expect("second");
    // The first client hears the server close it.
    assert!(!next_event(&first_events).is_connected());
    second.write_str("two").expect("write");
    assert_eq!(second.read_str().expect("echo from the new client"), "two");
}

#[test]
fn the_default_policy_rejects_the_new_client() {
    let _w = watchdog(Duration::from_secs(60));
    assert_eq!(SlotPolicy::default(), SlotPolicy::RejectNew);
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .slot_policy(SlotPolicy::RejectNew)
        .start()
        .expect("server starts");
    let mut served = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    expect_eof(raw_client(&server));
    exchange_raw(&server, &mut served, "kept");
    assert_eq!(server.stats().connections_rejected, 1);
}

// ------------------------------------------------------------ existing sockets

#[test]
fn a_server_from_an_existing_listener_serves_and_ignores_host_and_port() {
    let _w = watchdog(Duration::from_secs(60));
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
    let addr = listener.local_addr().unwrap();
    let calls = CallbackRecorder::new();
    let server = OneClientServer::builder()
        .host("192.0.2.1")
        .port(1)
        .listener(listener)
        .connect_callback(calls.callback())
        .start()
        .expect("server starts");
    assert_eq!(server.local_addrs(), vec![addr]);
    assert_eq!(server.port(), addr.port());
    assert_eq!(server.host(), Some(LOCALHOST_IPV4));
    let client = Client::builder()
        .port(addr.port())
        .connect()
        .expect("client");
    server.wait_connected(WAIT).expect("served");
    calls.assert_next_connected(true, WAIT);
    exchange(&server, &client, "listener");
    server.close();
    // The listener was closed with the server: its port is free.
    TcpListener::bind(addr).expect("the port is free again");
}

#[test]
fn a_read_loop_server_from_an_existing_listener_serves() {
    let _w = watchdog(Duration::from_secs(60));
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
    let addr = listener.local_addr().unwrap();
    let _server = OneClientReadLoopServer::builder()
        .listener(listener)
        .start_fn(|server| {
            let line = server.read_str()?;
            server.write_str(&line)
        })
        .expect("server starts");
    let mut peer = raw_connect(addr);
    send_line(&mut peer, "loop");
    assert_eq!(recv_line(&mut peer), "loop");
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[test]
fn a_socket_that_is_not_listening_is_refused() {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    socket
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .expect("bind");
    match OneClientServer::builder()
        .listener(TcpListener::from(socket))
        .start()
    {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains("not listening"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_client_from_an_existing_stream_works() {
    let _w = watchdog(Duration::from_secs(60));
    let server_calls = CallbackRecorder::new();
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .connect_callback(server_calls.callback())
        .start()
        .expect("server starts");
    let stream = TcpStream::connect(server.local_addrs()[0]).expect("connect");
    let local = stream.local_addr().unwrap();
    let calls = CallbackRecorder::new();
    let client = Client::builder()
        .stream(stream)
        .connect_callback(calls.callback())
        .connect()
        .expect("client");
    calls.assert_next_connected(true, WAIT);
    assert_eq!(client.host(), LOCALHOST_IPV4);
    assert_eq!(client.port(), server.port());
    assert_eq!(client.peer_addr(), Some(server.local_addrs()[0]));
    server.wait_connected(WAIT).expect("served");
    server_calls.assert_next_connected(true, WAIT);
    assert_eq!(server.peer_addr(), Some(local));
    let events = client.events();
    exchange(&server, &client, "stream");
    let stats = client.stats();
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!((stats.frames_written, stats.frames_read), (1, 1));
    client.close();
    assert!(!next_event(&events).is_connected());
    calls.assert_next_connected(false, WAIT);
    server_calls.assert_next_connected(false, WAIT);
    assert!(!client.should_be_connected());
}

#[test]
fn a_client_from_a_stream_reconnects_to_host_and_port() {
    let _w = watchdog(Duration::from_secs(60));
    let server_calls = CallbackRecorder::new();
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .connect_callback(server_calls.callback())
        .start()
        .expect("server starts");
    let stream = TcpStream::connect(server.local_addrs()[0]).expect("connect");
    let first_local = stream.local_addr().unwrap();
    let calls = CallbackRecorder::new();
    let client = Client::builder()
        .stream(stream)
        .reconnect(Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
        })
        .connect_callback(calls.callback())
        .connect()
        .expect("client");
    calls.assert_next_connected(true, WAIT);
    server_calls.assert_next_connected(true, WAIT);
    assert_eq!(server.peer_addr(), Some(first_local));
    server.close_client();
    calls.assert_next_connected(false, WAIT);
    server_calls.assert_next_connected(false, WAIT);
    // Connected again, by the reconnect thread, to host:port.
    calls.assert_next_connected(true, WAIT);
    server_calls.assert_next_connected(true, WAIT);
    server.wait_connected(WAIT).expect("served again");
    assert_ne!(server.peer_addr(), Some(first_local));
    exchange(&server, &client, "again");
    assert_eq!(client.stats().connections_accepted, 2);
}

#[test]
fn a_client_connecting_in_the_background_takes_its_stream_at_once() {
    let _w = watchdog(Duration::from_secs(60));
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .start()
        .expect("server starts");
    let stream = TcpStream::connect(server.local_addrs()[0]).expect("connect");
    let client = Client::builder()
        .stream(stream)
        .connect_in_background()
        .expect("client");
    assert!(
        client.connected(),
        "connect_in_background() installs the stream before returning"
    );
    server.wait_connected(WAIT).expect("served");
    exchange(&server, &client, "started");
}

#[test]
fn a_stream_with_no_peer_is_an_invalid_argument() {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    match Client::builder().stream(TcpStream::from(socket)).connect() {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains("not connected"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn local_addr_is_the_client_address_the_server_sees() {
    let _w = watchdog(Duration::from_secs(60));
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .start()
        .expect("server starts");
    if !can_bind(SECOND_LOOPBACK.into()) {
        return;
    }
    let events = server.events();
    let from = SocketAddr::new(SECOND_LOOPBACK.into(), 0);
    let client = Client::builder()
        .port(server.port())
        .local_addr(from)
        .reconnect(Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
        })
        .connect()
        .expect("client");
    assert!(next_event(&events).is_connected());
    let seen = server.peer_addr().expect("served");
    assert_eq!(seen.ip(), IpAddr::from(SECOND_LOOPBACK));
    exchange(&server, &client, "local");
    // Reconnections come from there too.
    server.close_client();
    assert!(!next_event(&events).is_connected());
    match next_event(&events) {
        ConnectionEvent::Connected { peer } => {
            assert_eq!(peer.ip(), IpAddr::from(SECOND_LOOPBACK))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn local_addr_with_a_fixed_port() {
    let _w = watchdog(Duration::from_secs(60));
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .start()
        .expect("server starts");
    // A port nobody uses now (freed again just before the client binds
    // it; the system does not hand it out again that fast).
    let port = TcpListener::bind((LOCALHOST_IPV4, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let from = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
    let client = Client::builder()
        .port(server.port())
        .local_addr(from)
        .connect()
        .expect("client");
    server.wait_connected(WAIT).expect("served");
    assert_eq!(server.peer_addr(), Some(from));
    exchange(&server, &client, "fixed port");
}

#[test]
fn local_addr_of_the_other_family_is_an_invalid_argument() {
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .start()
        .expect("server starts");
    let from: SocketAddr = "[::1]:0".parse().unwrap();
    match Client::builder()
        .port(server.port())
        .local_addr(from)
        .connect()
    {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains("IPv6"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
#[test]
fn reuse_port_lets_two_servers_listen_on_one_port() {
    let _w = watchdog(Duration::from_secs(60));
    let first = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .reuse_port(true)
        .start()
        .expect("first server");
    let port = first.port();
    // Without it the port is taken.
    match OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(port)
        .start()
    {
        Err(Error::Io(_)) => {}
        other => panic!("bound without reuse_port: {other:?}"),
    }
    let second = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(port)
        .reuse_port(true)
        .start()
        .expect("second server on the same port");
    assert_eq!(second.port(), port);
    // Each serves what the system gives it: one connection reaches one of
    // them.
    let (first_events, second_events) = (first.events(), second.events());
    let mut peer = raw_client(&first);
    let served = crossbeam_channel::select! {
        recv(first_events) -> _ => &first,
        recv(second_events) -> _ => &second,
        default(WAIT) => panic!("neither server took the connection"),
    };
    exchange_raw(served, &mut peer, "reuse_port");
}

#[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
#[test]
fn reuse_port_is_an_invalid_argument_where_the_platform_has_none() {
    match OneClientServer::builder().reuse_port(true).start() {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains("SO_REUSEPORT"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------ with TLS

/// The allowlist and the slot policy over TLS, and a client's stream
/// taken through its handshake.
#[cfg(all(feature = "tls", not(target_vendor = "apple")))]
mod with_tls {
    use super::support::pki::{client_config, server_config, Ca, Identity};
    use super::*;

    fn identities() -> (Ca, Identity) {
        let ca = Ca::new("who-connects test CA");
        let server = ca.issue(&["localhost", "127.0.0.1"]);
        (ca, server)
    }

    #[test]
    fn a_peer_not_allowed_is_refused_before_any_handshake() {
        let _w = watchdog(Duration::from_secs(60));
        let (ca, id) = identities();
        let server = OneClientServer::builder()
            .host(LOCALHOST_IPV4)
            .tls(server_config(&id, None))
            .allow("10.0.0.0/8")
            .start()
            .expect("server starts");
        let refused = Client::builder()
            .port(server.port())
            .tls(client_config(&ca, None))
            .tls_server_name("localhost")
            .connect();
        assert!(refused.is_err(), "the handshake cannot succeed");
        let stats = server.stats();
        assert_eq!(
            (stats.connections_refused, stats.connections_rejected),
            (1, 0)
        );
    }

    #[test]
    fn replace_policy_over_tls() {
        let _w = watchdog(Duration::from_secs(60));
        let (ca, id) = identities();
        let server = OneClientServer::builder()
            .host(LOCALHOST_IPV4)
            .tls(server_config(&id, None))
            .slot_policy(SlotPolicy::ReplaceOld)
            .start()
            .expect("server starts");
        let events = server.events();
        let client = || {
            Client::builder()
                .port(server.port())
                .tls(client_config(&ca, None))
                .tls_server_name("localhost")
                .connect()
                .expect("TLS client")
        };
        let old = client();
        let old_peer = match next_event(&events) {
            ConnectionEvent::Connected { peer } => peer,
            other => panic!("{other:?}"),
        };
        let new = client();
        assert_eq!(
            next_event(&events),
            ConnectionEvent::Disconnected {
                peer: old_peer,
                reason: DisconnectReason::Replaced
            }
        );
        assert!(next_event(&events).is_connected());
        exchange(&server, &new, "tls replaced");
        drop(old);
    }

    #[test]
    fn a_client_stream_goes_through_the_handshake() {
        let _w = watchdog(Duration::from_secs(60));
        let (ca, id) = identities();
        let server = OneClientServer::builder()
            .host(LOCALHOST_IPV4)
            .tls(server_config(&id, None))
            .start()
            .expect("server starts");
        let stream = TcpStream::connect(server.local_addrs()[0]).expect("connect");
        let client = Client::builder()
            .stream(stream)
            .tls(client_config(&ca, None))
            .tls_server_name("localhost")
            .connect()
            .expect("TLS over the given stream");
        server.wait_connected(WAIT).expect("served");
        exchange(&server, &client, "tls stream");
    }
}
