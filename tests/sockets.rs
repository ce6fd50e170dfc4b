//! B17: every connection's socket has TCP keepalive and TCP_NODELAY, on
//! the server's side and the client's; keepalive and TCP_USER_TIMEOUT are
//! timed by the dead-peer bound (the KEEPALIVE_* values without one).

mod support;

#[cfg(target_os = "linux")]
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use support::{raw_client, recv_line, send_line, watchdog, WAIT};
use ts_tcpip::testing;
use ts_tcpip::*;

/// Socket options of one of this process's sockets, found by its
/// addresses among /proc/self/fd. Linux only: the crate does not expose
/// its sockets, and this reads them without touching the crate.
#[cfg(target_os = "linux")]
#[derive(Debug, PartialEq)]
struct TcpOptions {
    nodelay: bool,
    keepalive: bool,
    time: Duration,
    interval: Duration,
    retries: u32,
    user_timeout: Option<Duration>,
}

#[cfg(target_os = "linux")]
fn socket_options(local: SocketAddr, peer: SocketAddr) -> TcpOptions {
    use std::os::fd::{BorrowedFd, RawFd};
    let entries = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd");
    for entry in entries.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: only getsockname/getpeername/getsockopt go through this
        // borrow: on an fd closed or reused meanwhile by another test they
        // fail or describe another socket, which the address check skips.
        // The socket we want belongs to a connection this test holds open.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let addrs = (
            sock.local_addr().ok().and_then(|a| a.as_socket()),
            sock.peer_addr().ok().and_then(|a| a.as_socket()),
        );
        if addrs == (Some(local), Some(peer)) {
            return TcpOptions {
                nodelay: sock.tcp_nodelay().expect("TCP_NODELAY"),
                keepalive: sock.keepalive().expect("SO_KEEPALIVE"),
                time: sock.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
                interval: sock.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
                retries: sock.tcp_keepalive_retries().expect("TCP_KEEPCNT"),
                user_timeout: sock.tcp_user_timeout().expect("TCP_USER_TIMEOUT"),
            };
        }
    }
    panic!("no socket {local} -> {peer} in this process");
}

/// With the default dead-peer bound (10 s): keepalive probes after 5 s,
/// 4 of them 1 s apart, and TCP_USER_TIMEOUT 10 s.
#[cfg(target_os = "linux")]
fn expected_options() -> TcpOptions {
    TcpOptions {
        nodelay: true,
        keepalive: true,
        time: DEFAULT_DEAD_PEER_TIMEOUT / 2,
        interval: Duration::from_secs(1),
        retries: KEEPALIVE_PROBES,
        user_timeout: Some(DEFAULT_DEAD_PEER_TIMEOUT),
    }
}

/// `dead_peer_timeout(ZERO)`: the Python reference's keepalive, no user
/// timeout.
#[cfg(target_os = "linux")]
#[test]
fn b17_without_a_dead_peer_bound_the_python_keepalive_is_set() {
    let _w = watchdog(Duration::from_secs(30));
    let builder = OneClientServer::builder().dead_peer_timeout(Duration::ZERO);
    let server = testing::start_server(builder).expect("server starts");
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    let accepted = socket_options(peer.peer_addr().unwrap(), peer.local_addr().unwrap());
    let python = TcpOptions {
        nodelay: true,
        keepalive: true,
        time: KEEPALIVE_TIME,
        interval: KEEPALIVE_INTERVAL,
        retries: KEEPALIVE_PROBES,
        user_timeout: None,
    };
    assert_eq!(accepted, python);
}

#[cfg(target_os = "linux")]
#[test]
fn b17_accepted_socket_has_keepalive_and_nodelay() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    let accepted = socket_options(peer.peer_addr().unwrap(), peer.local_addr().unwrap());
    assert_eq!(accepted, expected_options());
}

#[cfg(target_os = "linux")]
#[test]
fn b17_client_socket_has_keepalive_and_nodelay() {
    let _w = watchdog(Duration::from_secs(30));
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("std listener");
    let port = listener.local_addr().unwrap().port();
    let client = Client::builder().port(port).connect().expect("client");
    let (theirs, _) = listener.accept().expect("accept");
    let options = socket_options(theirs.peer_addr().unwrap(), theirs.local_addr().unwrap());
    assert_eq!(options, expected_options());
    drop(client);
}

#[test]
fn b17_small_writes_are_not_delayed() {
    let _w = watchdog(Duration::from_secs(30));
    // Two small writes then a wait for the reply: with Nagle's algorithm
    // the second write waits for the ACK the peer delays (40 ms on Linux),
    // so 200 rounds would take seconds. TCP_NODELAY makes each round
    // sub-millisecond. The bound only catches such stalls.
    const ROUNDS: u32 = 200;
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    server.set_read_timeout(Some(WAIT));
    let mut peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    let started = Instant::now();
    for _ in 0..ROUNDS {
        server.write(b"p").expect("first half");
        server.write(b"ing\r\n").expect("second half");
        assert_eq!(recv_line(&mut peer), "ping");
        send_line(&mut peer, "pong");
        assert_eq!(server.read_str().expect("reply"), "pong");
    }
    let took = started.elapsed();
    eprintln!("b17: {ROUNDS} split-write round trips in {took:?}");
    assert!(
        took < Duration::from_secs(4),
        "small writes stalled: {took:?} for {ROUNDS} round trips"
    );
}
