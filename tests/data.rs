//! Nothing received is lost (behaviours B11 to B13 of ARCHITECTURE.md),
//! over a real loopback connection: B11, bytes stay buffered across reads,
//! timeouts and overruns, and after the peer closed; B12, end of file
//! inside a frame hands back the partial bytes; B13, a line over the read
//! limit consumes nothing.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{expect_eof, watchdog, QUIET, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

binary_struct! {
    /// 22 packed bytes, for `read_into`.
    #[derive(Debug, Default)]
    struct Record22 { a: u16, b: u32, c: u64, d: f64 }
}

/// A server with `builder`'s options and reads bounded by `WAIT`, its
/// callback calls recorded.
fn server(builder: ServerBuilder) -> (OneClientServer, CallbackRecorder) {
    let calls = CallbackRecorder::new();
    let builder = builder
        .read_timeout(Some(WAIT))
        .connect_callback(calls.callback());
    (testing::start_server(builder).expect("server"), calls)
}

/// A raw std::net peer, connected once the server's callback said so.
fn connect_peer(server: &OneClientServer, calls: &CallbackRecorder) -> TcpStream {
    let peer = TcpStream::connect(server.local_addrs()[0]).expect("connect");
    peer.set_read_timeout(Some(WAIT)).expect("timeout");
    peer.set_write_timeout(Some(WAIT)).expect("timeout");
    calls.assert_next_connected(true, WAIT);
    peer
}

fn served(builder: ServerBuilder) -> (OneClientServer, TcpStream, CallbackRecorder) {
    let (server, calls) = server(builder);
    let peer = connect_peer(&server, &calls);
    (server, peer, calls)
}

/// `result` is an incomplete read of `want`, the bytes that came, with
/// `expected` the count asked for (if a count was).
#[track_caller]
fn assert_partial<T: std::fmt::Debug>(result: Result<T>, want: &[u8], expected: Option<usize>) {
    match result {
        Err(Error::IncompleteRead(e)) => {
            assert_eq!(e.partial, want);
            assert_eq!(e.expected, expected);
        }
        other => panic!("expected IncompleteRead({want:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_overrun<T: std::fmt::Debug>(result: Result<T>, want_limit: usize) {
    match result {
        Err(Error::LimitOverrun(e2)) => {
            let limit = e2.limit;
            let buffered = e2.buffered;
            assert_eq!(limit, want_limit);
            assert!(buffered > limit, "{buffered} buffered");
        }
        other => panic!("expected LimitOverrun, got {other:?}"),
    }
}

// ---------------------------------------------------------------- B11

#[test]
fn b11_bytes_stay_buffered_across_read_methods() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, _calls) = served(OneClientServer::builder());
    peer.write_all(b"a\r\nbcdef").unwrap();
    assert_eq!(server.read_str().unwrap(), "a");
    assert_eq!(server.read(2).unwrap(), b"bc");
    peer.write_all(b"\r\n").unwrap();
    assert_eq!(server.read_str().unwrap(), "def");

    peer.write_all(b"x;yz\n{\"k\": 1}\r\nw").unwrap();
    assert_eq!(server.read_until(b";").unwrap(), b"x;");
    assert_eq!(server.read_exact(1).unwrap(), b"y");
    assert_eq!(server.read_line().unwrap(), b"z\n");
    let json: Value = server.read_json().unwrap();
    assert_eq!(json, serde_json::json!({"k": 1}));
    assert_eq!(server.read(10).unwrap(), b"w");
}

/// Repeats `read` (which must time out) until the server has taken `n`
/// bytes from the socket, so the partial frame is surely in its buffer.
fn time_out_until_read<T: std::fmt::Debug>(
    server: &OneClientServer,
    n: u64,
    read: impl Fn() -> Result<T>,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        match read() {
            Err(Error::Timeout) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        if server.stats().bytes_read >= n {
            return;
        }
        assert!(Instant::now() < deadline, "the server never read {n} bytes");
    }
}

/// Writes `data` to `peer` on a thread of its own (a large write may wait
/// for the reader).
fn write_in_background(peer: &TcpStream, data: &[u8]) -> thread::JoinHandle<()> {
    let (mut peer, data) = (peer.try_clone().unwrap(), data.to_vec());
    thread::spawn(move || peer.write_all(&data).unwrap())
}

#[test]
fn b11_timeout_mid_frame_leaves_bytes_buffered() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, calls) = served(OneClientServer::builder());
    server.set_read_timeout(Some(Duration::from_millis(50)));

    peer.write_all(b"par").unwrap();
    time_out_until_read(&server, 3, || server.read_str());
    assert!(server.connected() && server.should_be_connected());
    peer.write_all(b"tial\r\n").unwrap();
    server.set_read_timeout(Some(WAIT));
    assert_eq!(server.read_str().unwrap(), "partial");

    server.set_read_timeout(Some(Duration::from_millis(50)));
    peer.write_all(b"123").unwrap();
    time_out_until_read(&server, 12, || server.read_exact(6));
    peer.write_all(b"456").unwrap();
    server.set_read_timeout(Some(WAIT));
    assert_eq!(server.read_exact(6).unwrap(), b"123456");

    // A large block (read past the buffer) cut in two by a timeout.
    server.set_read_timeout(Some(Duration::from_millis(50)));
    let block: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let (first, second) = block.split_at(40_000);
    let writer = write_in_background(&peer, first);
    time_out_until_read(&server, 15 + 40_000, || server.read_exact(block.len()));
    writer.join().unwrap();
    let writer = write_in_background(&peer, second);
    server.set_read_timeout(Some(WAIT));
    assert_eq!(server.read_exact(block.len()).unwrap(), block);
    writer.join().unwrap();
    assert!(server.connected());
    assert!(calls.drain().is_empty(), "no callback on a timeout");
}

#[test]
fn b11_limit_overrun_leaves_bytes_buffered() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, calls) = served(OneClientServer::builder().read_limit(16));
    let line = b"0123456789abcdefghij"; // 20 bytes, no terminator
    peer.write_all(line).unwrap();
    assert_overrun(server.read_str(), 16);
    assert_overrun(server.read_json::<Value>(), 16);
    assert_overrun(server.read_until(b"j"), 16);
    assert_overrun(server.read_line(), 16);
    assert_eq!(server.read_exact(line.len()).unwrap(), line);

    // An endless line, then the peer goes: every byte is still there for
    // read_to_end, and the disconnect comes once they are read.
    const ENDLESS: usize = 200_000;
    let sender = thread::spawn(move || {
        peer.write_all(&[b'x'; ENDLESS]).unwrap();
    });
    assert_overrun(server.read_str(), 16);
    assert_overrun(server.read_json::<Value>(), 16);
    assert!(server.connected());
    sender.join().unwrap();
    let rest = server.read_to_end().unwrap();
    assert_eq!(rest.len(), ENDLESS);
    assert!(rest.iter().all(|&b| b == b'x'));
    calls.assert_next_connected(false, WAIT);
    assert!(matches!(server.read_str(), Err(Error::NotConnected)));
}

/// Bytes that arrived before the peer closed are still read, also when
/// the peer was gone before the server even took it; the disconnect comes
/// once they are consumed, however often the monitor looks meanwhile.
#[test]
fn b11_bytes_sent_before_the_peer_closed_are_read_then_the_close_is_reported() {
    let _w = watchdog(Duration::from_secs(60));
    let (server, calls) = server(OneClientServer::builder());
    for round in 0..20 {
        let mut peer = TcpStream::connect(server.local_addrs()[0]).expect("connect");
        peer.write_all(format!("one {round}\r\ntwo\r\nlate partial").as_bytes())
            .unwrap();
        drop(peer);
        server
            .wait_connected(WAIT)
            .expect("taken despite having gone");
        calls.assert_next_connected(true, WAIT);
        assert_eq!(server.read_str().unwrap(), format!("one {round}"));
        if round == 0 {
            // The peer is gone, but a line is still unread: no disconnect
            // yet (the monitor looks every 100 ms).
            calls.assert_no_more(QUIET);
            assert!(server.connected());
        }
        assert_eq!(server.read_str().unwrap(), "two");
        assert_partial(server.read_str(), b"late partial", None);
        calls.assert_next_connected(false, WAIT);
        assert!(!server.connected(), "round {round}");
        assert!(matches!(server.read_str(), Err(Error::NotConnected)));
    }
    calls.assert_no_more(Duration::from_millis(100));
}

// ---------------------------------------------------------------- B12

/// Every read kind that wants a whole frame: the peer half-closes inside
/// one; the read fails with the bytes that came (and the count asked for,
/// if one was), the client is closed (it sees end of file in turn), the
/// callback hears `false`, and the next client is served (B19).
#[test]
fn b12_eof_inside_a_frame_gives_the_partial_bytes_and_closes_the_client() {
    let _w = watchdog(Duration::from_secs(30));
    type ReadFn = fn(&OneClientServer) -> Result<()>;
    let block = [7u8; 30_000];
    let cases: [(&str, &[u8], ReadFn, Option<usize>); 7] = [
        (
            "read_str",
            b"no terminator here",
            |s| s.read_str().map(drop),
            None,
        ),
        (
            "read_str, half a terminator",
            b"abc\r",
            |s| s.read_str().map(drop),
            None,
        ),
        (
            "read_json",
            b"{\"cut\": 1",
            |s| s.read_json::<Value>().map(drop),
            None,
        ),
        ("read_until", b"abc", |s| s.read_until(b";").map(drop), None),
        ("read_exact", b"abc", |s| s.read_exact(5).map(drop), Some(5)),
        (
            "read_exact of a block larger than the buffer",
            &block,
            |s| s.read_exact(100_000).map(drop),
            Some(100_000),
        ),
        (
            "read_into",
            &[1; 11],
            |s| s.read_into(&mut Record22::default()),
            Some(Record22::SIZE),
        ),
    ];
    let (server, calls) = server(OneClientServer::builder());
    for (name, sent, read, expected) in cases {
        let mut peer = connect_peer(&server, &calls);
        peer.write_all(sent).unwrap();
        peer.shutdown(Shutdown::Write).expect("half-close");
        let result = read(&server);
        assert!(
            result.as_ref().is_err_and(Error::is_connection_error),
            "{name}: {result:?}"
        );
        assert_partial(result, sent, expected);
        assert!(!server.connected(), "{name}");
        // The peer went away: not a close on purpose.
        assert!(server.should_be_connected(), "{name}");
        calls.assert_next_connected(false, WAIT);
        assert!(matches!(server.read_str(), Err(Error::NotConnected)));
        // The server closed its side in turn.
        expect_eof(&mut peer);
    }
}

#[test]
fn b12_read_line_returns_the_partial_line_at_eof_then_the_link_is_closed() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, calls) = served(OneClientServer::builder());
    peer.write_all(b"ab\nxy").unwrap();
    drop(peer);
    assert_eq!(server.read_line().unwrap(), b"ab\n");
    assert_eq!(server.read_line().unwrap(), b"xy");
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
    assert!(server.read_line().is_err_and(|e| e.is_connection_error()));
}

// ---------------------------------------------------------------- B13

#[test]
fn b13_a_line_over_the_limit_is_an_overrun_and_the_connection_stays_open() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, calls) = served(OneClientServer::builder().read_limit(16));
    let long = b"0123456789abcdefXYZ\r\n"; // terminator at offset 19 > 16
    peer.write_all(long).unwrap();
    assert_overrun(server.read_str(), 16);
    assert!(server.connected() && server.should_be_connected());
    assert_eq!(server.read(long.len()).unwrap(), long);

    // Still open both ways.
    peer.write_all(b"short\r\n").unwrap();
    assert_eq!(server.read_str().unwrap(), "short");
    server.write_str("back").unwrap();
    let mut got = [0; 6];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"back\r\n");
    assert!(calls.drain().is_empty(), "no callback on an overrun");
}
