//! How a client begins: `Client::connect(addr)` in one line, and what a
//! host that cannot be reached, or a name that does not resolve, gives.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use support::{exchange, watchdog, WAIT};
use ts_tcpip::*;

/// A name under `.invalid`, which no resolver may answer (RFC 6761).
const NO_SUCH_HOST: &str = "no-such-host.invalid";

/// A port nobody listens on: bound, then let go.
fn closed_port() -> u16 {
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
    listener.local_addr().expect("addr").port()
}

/// One way of calling `Client::connect`.
type Connect = Box<dyn Fn() -> Result<Client>>;

#[test]
fn client_connect_takes_an_address_as_tcp_stream_connect_does() {
    let _w = watchdog(Duration::from_secs(30));
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .start()
        .expect("server");
    let port = server.port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let forms: [(&str, Connect); 3] = [
        (
            "(host, port)",
            Box::new(move || Client::connect(("127.0.0.1", port))),
        ),
        (
            "\"host:port\"",
            Box::new(move || Client::connect(format!("127.0.0.1:{port}"))),
        ),
        ("SocketAddr", Box::new(move || Client::connect(addr))),
    ];
    for (form, connect) in forms {
        let client = connect().unwrap_or_else(|e| panic!("{form}: {e}"));
        assert!(client.connected(), "{form}");
        assert_eq!(
            (client.host(), client.port()),
            ("127.0.0.1", port),
            "{form}"
        );
        server.wait_connected(WAIT).expect("served");
        exchange(&server, &client, form);
        client.close();
        // The next form's client must not be turned away by this one.
        let deadline = std::time::Instant::now() + WAIT;
        while server.connected() {
            assert!(std::time::Instant::now() < deadline, "{form}: still served");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn client_connect_fails_as_the_builder_does() {
    let _w = watchdog(Duration::from_secs(30));
    match Client::connect((LOCALHOST_IPV4, closed_port())) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected a refused connection, got {other:?}"),
    }
    assert!(
        matches!(
            Client::connect((LOCALHOST_IPV4, 0)),
            Err(Error::InvalidArgument(_))
        ),
        "port 0 is refused, as by the builder"
    );
    match Client::connect((NO_SUCH_HOST, 5000)) {
        Err(e @ Error::Io(_)) => assert!(e.to_string().contains("resolve"), "{e}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    match Client::connect(Vec::<SocketAddr>::new().as_slice()) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
        other => panic!("no address: expected an I/O error, got {other:?}"),
    }
}

/// A host name that does not resolve is an I/O error naming the host,
/// as a refused connection is (not `InvalidArgument`: the setting may be
/// right and the resolver down), from a client's `connect()` and a
/// server's `start()` alike.
#[test]
fn a_name_that_does_not_resolve_is_an_io_error_naming_the_host() {
    let _w = watchdog(Duration::from_secs(30));
    let client = Client::builder().host(NO_SUCH_HOST).port(5000).connect();
    let server = OneClientServer::builder().host(NO_SUCH_HOST).start();
    for (end, result) in [("client", client.err()), ("server", server.err())] {
        match result {
            Some(e @ Error::Io(_)) => {
                let text = e.to_string();
                assert!(text.contains(NO_SUCH_HOST), "{end}: {text}");
                assert!(!e.is_connection_error(), "{end}: {text}");
            }
            other => panic!("{end}: expected an I/O error, got {other:?}"),
        }
    }
}
