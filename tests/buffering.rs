//! B11-B13 over a real connection: nothing received is lost, end of file
//! mid-frame hands back the partial bytes, a limit overrun consumes
//! nothing.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use support::{raw_client, watchdog, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

/// A server (with `builder`'s options) and a raw peer; the callback calls
/// are recorded and the connect already taken from the record.
fn served(builder: ServerBuilder) -> (OneClientServer, TcpStream, CallbackRecorder) {
    let calls = CallbackRecorder::new();
    let server = testing::start_server(
        builder
            .read_timeout(Some(WAIT))
            .connect_callback(calls.callback()),
    )
    .expect("server");
    let peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    (server, peer, calls)
}

#[test]
fn b11_bytes_stay_buffered_across_read_methods() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, _calls) = served(OneClientServer::builder());
    peer.write_all(b"a\r\nbcdef").expect("write");
    assert_eq!(server.read_str().expect("line"), "a");
    assert_eq!(server.read(2).expect("two"), b"bc");
    peer.write_all(b"\r\n").expect("write");
    assert_eq!(server.read_str().expect("rest"), "def");
}

#[test]
fn b11_a_timeout_mid_frame_keeps_the_bytes() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, _calls) = served(OneClientServer::builder());
    peer.write_all(b"hel").expect("write");
    server.set_read_timeout(Some(Duration::from_millis(50)));
    assert!(matches!(server.read_str(), Err(Error::Timeout)));
    assert!(server.connected());
    peer.write_all(b"lo\r\n").expect("write");
    server.set_read_timeout(Some(WAIT));
    assert_eq!(server.read_str().expect("whole line"), "hello");
}

#[test]
fn b11_lines_sent_before_the_peer_closed_are_read_then_the_close_is_reported() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, calls) = served(OneClientServer::builder());
    peer.write_all(b"one\r\ntwo\r\nthree\r\n").expect("write");
    drop(peer);
    // Unread bytes keep the link connected, whatever the monitor sees.
    calls.assert_no_more(Duration::from_millis(300));
    assert!(server.connected());
    for want in ["one", "two", "three"] {
        assert_eq!(server.read_str().expect("line"), want);
    }
    // The last byte read, the end of file is reported.
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected() && server.should_be_connected());
}

#[test]
fn b12_eof_inside_a_frame_gives_the_partial_bytes_and_closes_the_client() {
    let _w = watchdog(Duration::from_secs(30));
    type Read = fn(&OneClientServer) -> Result<()>;
    let reads: [(&str, Read); 4] = [
        ("read_exact", |s| s.read_exact(10).map(drop)),
        ("read_until", |s| s.read_until(b";").map(drop)),
        ("read_str", |s| s.read_str().map(drop)),
        ("read_json", |s| {
            s.read_json::<serde_json::Value>().map(drop)
        }),
    ];
    for (name, read) in reads {
        let (server, mut peer, calls) = served(OneClientServer::builder());
        peer.write_all(b"[1, 2").expect("write");
        drop(peer);
        match read(&server) {
            Err(Error::IncompleteRead { partial, .. }) => assert_eq!(partial, b"[1, 2", "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        calls.assert_next_connected(false, WAIT);
        assert!(!server.connected(), "{name}");
    }
}

#[test]
fn b12_read_line_returns_the_partial_line_at_eof() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, calls) = served(OneClientServer::builder());
    peer.write_all(b"whole\npart").expect("write");
    drop(peer);
    assert_eq!(server.read_line().expect("line"), b"whole\n");
    assert_eq!(server.read_line().expect("partial"), b"part");
    calls.assert_next_connected(false, WAIT);
}

#[test]
fn b13_a_line_over_the_limit_is_an_overrun_that_consumes_nothing() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, _calls) = served(OneClientServer::builder().read_limit(16));
    let long = b"0123456789abcdefghijklmnopqrstuvwxyz";
    peer.write_all(long).expect("write");
    assert!(matches!(
        server.read_str(),
        Err(Error::LimitOverrun { limit: 16, .. })
    ));
    assert!(server.connected());
    let mut got = Vec::new();
    while got.len() < long.len() {
        got.extend(server.read(long.len() - got.len()).expect("buffered bytes"));
    }
    assert_eq!(got, long);
    peer.write_all(b"short\r\n").expect("write");
    assert_eq!(server.read_str().expect("the link goes on"), "short");
}
