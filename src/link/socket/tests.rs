//! Addresses in errors, keepalive timing, address use.

use super::*;

#[test]
fn keepalive_probes_fit_in_the_dead_peer_bound() {
    let s = Duration::from_secs;
    assert_eq!(keepalive_timing(s(10)), (s(5), s(1)));
    assert_eq!(keepalive_timing(s(120)), (s(60), s(15)));
    // Below the kernel's resolution: whole seconds, at least one.
    assert_eq!(keepalive_timing(Duration::from_millis(500)), (s(1), s(1)));
    for bound in 8..300 {
        let (time, interval) = keepalive_timing(s(bound));
        assert!(time + interval * KEEPALIVE_PROBES <= s(bound), "{bound}");
    }
}

#[test]
fn a_refused_connect_names_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let err = connect("127.0.0.1", port, Duration::from_secs(5), None, None).expect_err("refused");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

/// A listener whose queue is full, on Linux: the system drops the SYNs of
/// further connects, which then wait until their timeout.
#[cfg(target_os = "linux")]
fn a_listener_that_answers_no_connect() -> (Vec<Socket>, Vec<TcpStream>, SocketAddr) {
    let listeners =
        bind_listeners(&["127.0.0.1:0".parse().expect("addr")], 0, false).expect("bind");
    let addr = listeners[0]
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("ip");
    let mut queued = Vec::new();
    // The queue holds backlog + 1 connections; the rest wait for a SYN-ACK.
    while queued.len() < 8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => queued.push(stream),
            Err(_) => break,
        }
    }
    (listeners, queued, addr)
}

/// A connect under way ends at once when its wake is set (a client's
/// `close()`), not at its timeout.
#[cfg(target_os = "linux")]
#[test]
fn a_connect_under_way_ends_when_its_wake_is_set() {
    let (_listeners, _queued, addr) = a_listener_that_answers_no_connect();
    let wake = std::sync::Arc::new(Wake::new().expect("wake"));
    let setter = {
        let wake = wake.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            wake.set();
        })
    };
    let t0 = std::time::Instant::now();
    let host = addr.ip().to_string();
    let err = connect(
        &host,
        addr.port(),
        Duration::from_secs(60),
        None,
        Some(&wake),
    )
    .expect_err("cancelled");
    setter.join().expect("setter");
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    let Error::Io(io) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(io.kind(), io::ErrorKind::ConnectionAborted, "{err}");
}

/// With no wake, the same connect gives up at its timeout, naming the
/// address.
#[cfg(target_os = "linux")]
#[test]
fn a_connect_that_gets_no_answer_times_out() {
    let (_listeners, _queued, addr) = a_listener_that_answers_no_connect();
    let host = addr.ip().to_string();
    let err =
        connect(&host, addr.port(), Duration::from_millis(300), None, None).expect_err("no answer");
    let Error::Io(io) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(io.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn a_port_in_use_names_the_address() {
    let first = bind_listeners(&["127.0.0.1:0".parse().expect("addr")], 1, false).expect("bind");
    let addr = first[0]
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("ip");
    let err = bind_listeners(&[addr], 1, false).expect_err("in use");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

/// A listener bound by `bind_listeners` has SO_EXCLUSIVEADDRUSE set, and a
/// second socket that sets SO_REUSEADDR (which on Windows would let it
/// share the port and take the listener's connections) cannot bind its
/// address. Under Wine 8 the second bind is refused even without the
/// option (WSAEACCES; Wine runs on Linux sockets, which cannot show the
/// hijack that Windows allows), so there the option read back is what
/// fails if `exclusive_address_use` was not called.
#[cfg(windows)]
#[test]
fn a_windows_listener_keeps_its_port_from_a_socket_that_reuses_addresses() {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{
        getsockopt, SOCKET, SOCKET_ERROR, SOL_SOCKET, SO_EXCLUSIVEADDRUSE,
    };
    let listeners =
        bind_listeners(&["127.0.0.1:0".parse().expect("addr")], 1, false).expect("bind");
    let listener = &listeners[0];
    let mut value: i32 = 0;
    let mut len = std::mem::size_of_val(&value) as i32;
    #[allow(unsafe_code)]
    // SAFETY: the handle is `listener`'s own (`AsRawSocket` on a live
    // `socket2::Socket`, open until the end of the test); `getsockopt`
    // writes at most `len` bytes, 4, at `optval`, which points to `value`,
    // a live, aligned i32, and writes the length it used into `len`, a
    // live i32. Neither pointer is kept after the call.
    let rc = unsafe {
        getsockopt(
            listener.as_raw_socket() as SOCKET,
            SOL_SOCKET,
            SO_EXCLUSIVEADDRUSE,
            std::ptr::from_mut(&mut value).cast(),
            &mut len,
        )
    };
    assert_ne!(rc, SOCKET_ERROR, "{}", io::Error::last_os_error());
    assert_eq!(value, 1, "SO_EXCLUSIVEADDRUSE is not set");

    let addr = listener.local_addr().expect("addr");
    let intruder = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    intruder.set_reuse_address(true).expect("SO_REUSEADDR");
    let err = intruder
        .bind(&addr)
        .expect_err("the port is the listener's");
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::PermissionDenied | io::ErrorKind::AddrInUse
        ),
        "{err:?}"
    );
}
