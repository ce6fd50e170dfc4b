//! `close()` and Drop never hang: they return within 100 ms whatever is
//! under way on the link, a reconnecting client's connect attempt or TLS
//! handshake included (they used to wait for the connect timeout), a
//! server's TLS handshakes, and readers and writers blocked on other
//! threads. The connect and blocked-caller cases need Linux (a listener
//! whose full queue drops SYNs; a thread seen blocked in its socket); the
//! handshake cases need the `tls` feature.
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
        .connect_in_background()
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
        .tls(std::sync::Arc::new(config))
        .tls_server_name("localhost")
}

#[cfg(all(feature = "tls", not(target_vendor = "apple")))]
#[test]
fn close_returns_within_100_ms_while_a_tls_handshake_is_under_way() {
    let _w = watchdog(Duration::from_secs(60));
    let (listener, port) = silent_tls_server();
    let client = tls_client(port).connect_in_background().expect("client");
    let _server_side = until_hello(&listener);
    let took = timed(|| client.close());
    assert!(took < PROMPT, "close took {took:?}");
}

#[cfg(all(feature = "tls", not(target_vendor = "apple")))]
#[test]
fn drop_returns_within_100_ms_while_a_tls_handshake_is_under_way() {
    let _w = watchdog(Duration::from_secs(60));
    let (listener, port) = silent_tls_server();
    let client = tls_client(port).connect_in_background().expect("client");
    let _server_side = until_hello(&listener);
    let took = timed(|| drop(client));
    assert!(took < PROMPT, "drop took {took:?}");
}

/// `close` (the end's own) with a reader of `link` blocked in `read_str`
/// (nothing sent) and a writer stuck in a frame the peer does not read,
/// each seen blocked in its socket first: it returns within 100 ms and
/// releases both with a connection error.
#[cfg(target_os = "linux")]
fn closes_within_100_ms_with_a_reader_and_a_writer_blocked<L: Link + Sync>(
    end: &str,
    link: &L,
    close: impl FnOnce(),
) {
    use support::blocked::{self, In};
    std::thread::scope(|s| {
        let reader = blocked::spawn(s, "read_str", In::Socket, || link.read_str());
        let writer = blocked::spawn(s, "write", In::Socket, || link.write(&vec![b'w'; 64 << 20]));
        let took = timed(close);
        assert!(took < PROMPT, "{end}: close took {took:?}");
        let read = reader.join();
        assert!(
            read.as_ref()
                .is_err_and(ts_tcpip::Error::is_connection_error),
            "{end}: {read:?}"
        );
        let written = writer.join();
        assert!(
            written
                .as_ref()
                .is_err_and(ts_tcpip::Error::is_connection_error),
            "{end}: {written:?}"
        );
    });
}

#[cfg(target_os = "linux")]
#[test]
fn close_returns_within_100_ms_with_a_reader_and_a_writer_blocked() {
    let _w = watchdog(Duration::from_secs(60));
    // The server's end, then the client's, each on a link of its own.
    let server = OneClientServer::builder().start().expect("server");
    let _client = Client::builder()
        .port(server.port())
        .connect()
        .expect("client");
    server.wait_connected(WAIT).expect("the server has it");
    closes_within_100_ms_with_a_reader_and_a_writer_blocked("server", &server, || server.close());

    let server = OneClientServer::builder().start().expect("server");
    let client = Client::builder()
        .port(server.port())
        .connect()
        .expect("client");
    server.wait_connected(WAIT).expect("the server has it");
    closes_within_100_ms_with_a_reader_and_a_writer_blocked("client", &client, || client.close());
}

/// A TLS server's `close()` and Drop with a handshake under way (a client
/// that connected and says nothing, its handshake thread seen running):
/// within 100 ms, the handshake's thread gone.
#[cfg(all(target_os = "linux", feature = "tls"))]
#[test]
fn a_tls_servers_close_and_drop_return_within_100_ms_during_a_handshake() {
    let _w = watchdog(Duration::from_secs(60));
    let ca = support::pki::Ca::new("close test CA");
    let id = ca.issue(&["localhost"]);
    for (name, by_drop) in [("hs-close", false), ("hs-drop", true)] {
        let comm: String = format!("tcpip-tls {name}").chars().take(15).collect();
        let handshakes = || {
            support::proc::thread_names()
                .iter()
                .filter(|n| **n == comm)
                .count()
        };
        let server = OneClientServer::builder()
            .name(name)
            .tls(support::pki::server_config(&id, None))
            .tls_handshake_timeout(Duration::from_secs(60))
            .start()
            .expect("server");
        let _silent = std::net::TcpStream::connect(("127.0.0.1", server.port())).expect("tcp");
        let deadline = Instant::now() + WAIT;
        while handshakes() == 0 {
            assert!(Instant::now() < deadline, "{name}: no handshake began");
            std::thread::yield_now();
        }
        let took = if by_drop {
            timed(|| drop(server))
        } else {
            timed(|| server.close())
        };
        assert!(took < PROMPT, "{name}: took {took:?}");
        assert_eq!(handshakes(), 0, "{name}: its handshake thread is joined");
    }
}
