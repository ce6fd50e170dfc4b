//! `close()` and Drop never hang: they return within 100 ms whatever is
//! under way on the link, a reconnecting client's connect attempt or TLS
//! handshake included (they used to wait for the connect timeout). The
//! connect case needs Linux (a listener whose full queue drops SYNs); the
//! handshake case needs the `tls` feature.
#![cfg(any(
    target_os = "linux",
    all(feature = "tls", not(target_vendor = "apple"))
))]

mod support;

#[cfg(all(feature = "tls", not(target_vendor = "apple")))]
use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::{watchdog, WAIT};
use ts_tcpip::prelude::*;

/// What `close()` and Drop promise.
const PROMPT: Duration = Duration::from_millis(100);

/// Returns how long `f` took.
fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

/// A listener whose queue is full: the system drops the SYNs of further
/// connects (Linux), which then wait for an answer until their timeout.
#[cfg(target_os = "linux")]
struct Unanswered {
    _listener: socket2::Socket,
    _queued: Vec<std::net::TcpStream>,
    port: u16,
}

#[cfg(target_os = "linux")]
fn unanswered() -> Unanswered {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    listener.bind(&addr.into()).expect("bind");
    listener.listen(0).expect("listen");
    let addr = listener
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("ip");
    let mut queued = Vec::new();
    while let Ok(stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        queued.push(stream);
        assert!(queued.len() < 64, "the queue never filled");
    }
    Unanswered {
        _listener: listener,
        _queued: queued,
        port: addr.port(),
    }
}

/// True while a socket of this machine waits in SYN_SENT for `port` on
/// loopback: a connect to it is under way.
#[cfg(target_os = "linux")]
fn connecting_to(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let remote_port = fields
            .get(2)
            .and_then(|r| r.split(':').nth(1))
            .and_then(|p| u16::from_str_radix(p, 16).ok());
        remote_port == Some(port) && fields.get(3) == Some(&"02")
    })
}

/// Waits until a connect to `port` is under way.
#[cfg(target_os = "linux")]
fn until_connecting(port: u16) {
    let deadline = Instant::now() + WAIT;
    while !connecting_to(port) {
        assert!(Instant::now() < deadline, "no connect to {port} under way");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(target_os = "linux")]
fn reconnecting(port: u16) -> Client {
    Client::builder()
        .port(port)
        .connect_timeout(Duration::from_secs(60))
        .start()
        .expect("client")
}

#[cfg(target_os = "linux")]
#[test]
fn close_returns_within_100_ms_while_a_connect_attempt_is_under_way() {
    let _w = watchdog(Duration::from_secs(60));
    let listener = unanswered();
    let client = reconnecting(listener.port);
    until_connecting(listener.port);
    let took = timed(|| client.close());
    assert!(took < PROMPT, "close took {took:?}");
    assert!(client.is_closed() && !client.connected());
}

#[cfg(target_os = "linux")]
#[test]
fn drop_returns_within_100_ms_while_a_connect_attempt_is_under_way() {
    let _w = watchdog(Duration::from_secs(60));
    let listener = unanswered();
    let client = reconnecting(listener.port);
    until_connecting(listener.port);
    let took = timed(|| drop(client));
    assert!(took < PROMPT, "drop took {took:?}");
}

/// A server that accepts and reads the client's hello, then says nothing:
/// the client's handshake waits for an answer.
#[cfg(all(feature = "tls", not(target_vendor = "apple")))]
fn silent_tls_server() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

/// Accepts the client's connection and reads the first bytes of its
/// hello: its handshake is under way, waiting for the server.
#[cfg(all(feature = "tls", not(target_vendor = "apple")))]
fn until_hello(listener: &TcpListener) -> std::net::TcpStream {
    use std::io::Read;
    let (mut stream, _) = listener.accept().expect("accept");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut hello = [0u8; 5];
    stream.read_exact(&mut hello).expect("the client's hello");
    assert_eq!(hello[0], 0x16, "a TLS handshake record");
    stream
}

#[cfg(all(feature = "tls", not(target_vendor = "apple")))]
fn tls_client(port: u16) -> ClientBuilder {
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let mut roots = ts_tcpip::tls::rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).expect("root");
    let provider = std::sync::Arc::new(ts_tcpip::tls::rustls::crypto::ring::default_provider());
    let config = ts_tcpip::tls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Client::builder()
        .port(port)
        .tls_handshake_timeout(Duration::from_secs(60))
        .tls(std::sync::Arc::new(config), "localhost")
}

#[cfg(all(feature = "tls", not(target_vendor = "apple")))]
#[test]
fn close_returns_within_100_ms_while_a_tls_handshake_is_under_way() {
    let _w = watchdog(Duration::from_secs(60));
    let (listener, port) = silent_tls_server();
    let client = tls_client(port).start().expect("client");
    let _server_side = until_hello(&listener);
    let took = timed(|| client.close());
    assert!(took < PROMPT, "close took {took:?}");
}

#[cfg(all(feature = "tls", not(target_vendor = "apple")))]
#[test]
fn drop_returns_within_100_ms_while_a_tls_handshake_is_under_way() {
    let _w = watchdog(Duration::from_secs(60));
    let (listener, port) = silent_tls_server();
    let client = tls_client(port).start().expect("client");
    let _server_side = until_hello(&listener);
    let took = timed(|| drop(client));
    assert!(took < PROMPT, "drop took {took:?}");
}
